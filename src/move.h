/*
 * Moving a page's contents: the arenas of a page of the range copied or
 * moved to other memory at the same addresses. Below the tiers (which
 * move a new page into place), fork (which moves hugetlb pages to ordinary
 * memory) and prepare.c (which gives pages to the kernel); it knows
 * nothing of them, nor of the table's states. Under the shim's lock.
 */
#ifndef PYHUGE_MOVE_H
#define PYHUGE_MOVE_H

#include <stdbool.h>
#include <stdint.h>

#include "table.h"

/* Copies the live slots of page r into the 2 MiB at `to`; from the 2 MiB
 * at `from` instead of the page itself with move_copy_live_from. */
void move_copy_live(struct page_ref r, uintptr_t to);
void move_copy_live_from(struct page_ref r, uintptr_t from, uintptr_t to);

/* Moves the 2 MiB mapping at `from` over page r in one mremap. 0 with
 * *copied false: moved. 0 with *copied true: the kernel unmapped the page
 * and then failed, and `from`'s contents were copied into ordinary memory
 * there instead (`from` is gone either way). -errno: `from` unmapped, the
 * page unchanged. copied may be NULL. */
int move_over(struct page_ref r, uintptr_t from, bool *copied);

/* Ordinary memory (marked MADV_HUGEPAGE when thp) in place of hugetlb page
 * r, one for one under both RLIMIT_AS and RLIMIT_DATA, so that it needs no
 * room under either. The page's contents are gone: the caller has them
 * elsewhere. 0, or -errno with the hugetlb page still there. */
int move_replace_in_place(struct page_ref r, bool thp);

/* The same with page r's arenas kept, written to a memfd and read back (no
 * address space needed: only a descriptor, and RLIMIT_FSIZE of 2 MiB at
 * least). The page holds no data in between, with signals blocked: only
 * for a process with one thread. 0, or -errno with the page unchanged. */
int move_through_file(struct page_ref r, bool thp);

#endif
