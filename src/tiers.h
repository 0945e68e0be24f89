/*
 * Where a page's memory comes from: the hugetlb pool first, then a
 * transparent huge page, each with a doubling wait after the kernel
 * refuses (or, for THP, after a fault slow enough to mean compaction).
 * Under the shim's lock, all of them.
 */
#ifndef PYHUGE_TIERS_H
#define PYHUGE_TIERS_H

#include <stdbool.h>
#include <stdint.h>

/* Reads the kernel's THP setting once (the THP tier is there unless it is
 * [never]). */
void tier_detect(void);

/* Backs FREE page idx for arenas of class cls: a hugetlb page, else a
 * transparent huge page. Returns 0; or -ENOMEM with *reason saying why
 * neither (enum pyhuge_fallback), the page FREE again then. */
int tier_back_page(uint32_t idx, int cls, int *reason);

/* A new hugetlb page, 2 MiB, reserved and faulted in (a clean refusal, never
 * a SIGBUS later), mapped where the kernel likes, for the caller to move
 * into the range: 0, or -ENOMEM when the pool, PYHUGE_MAX_PAGES or a
 * cgroup limit refuses it. */
int tier_new_hugetlb(uintptr_t *at);

/* A page of ours went back to the pool: worth trying again at once. */
void tier_page_returned(void);

/* In a forked child: the pool's state is not the parent's, so no wait is
 * inherited (tiers.c owns the waits; fork.c asks). */
void tier_child_forgets_waits(void);

/* Whether ordinary memory for arenas is marked for transparent huge pages:
 * THP is not [never] and PYHUGE_BACKEND is not hugetlb. */
bool tier_thp_wanted(void);

/* 2 MiB of private anonymous memory, 2 MiB-aligned and marked for a
 * transparent huge page unless THP is off or PYHUGE_BACKEND=hugetlb: where
 * a hugetlb page's arenas go when they must leave it (fork). Without the
 * room to align it, any 2 MiB. Not faulted in. */
int tier_new_ordinary(uintptr_t *at);

#endif
