/*
 * Advice and names on whole arenas, kept on their huge pages.
 *
 * CPython 3.15 calls madvise(arena, ARENA_SIZE, MADV_HUGEPAGE) right after
 * each arena mmap, and under -X dev names it with prctl(PR_SET_VMA,
 * PR_SET_VMA_ANON_NAME, arena, ARENA_SIZE, "cpython:pymalloc"). Given to
 * the kernel, a hugetlb page refuses the half-page call and a transparent
 * huge page is split; made plain first (prepare_call), every arena loses
 * its huge page. On whole arenas of ours, these functions give the caller
 * exactly what plain private anonymous pages give and keep the page.
 *
 * Each sets *answered when it has answered the call: it returns 0, or the
 * negative errno the call fails with, nothing changed. It leaves it false
 * (and returns 0) when the call is not one it answers (part of an arena, a
 * free slot, memory not ours, an advice with an effect a huge page cannot
 * give): the caller then goes the general way (prepare.h).
 */
#ifndef PYHUGE_ADVICE_H
#define PYHUGE_ADVICE_H

#include <stdbool.h>
#include <stddef.h>

/* madvise(addr, len, advice) on a range that meets ours. */
int advice_madvise(void *addr, size_t len, int advice, bool *answered);

/* prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, addr, len, name) on a range that
 * meets ours. A name the kernel refuses (too long, a character it does not
 * take, an address it cannot read) is refused here too, before anything
 * changes, whatever the range. */
int advice_name(void *addr, size_t len, const char *name, bool *answered);

#endif
