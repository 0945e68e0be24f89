/*
 * Huge pages again for the part of a parent's heap that a forked worker
 * copies anyway (collapse.c).
 */
#ifndef PYHUGE_COLLAPSE_H
#define PYHUGE_COLLAPSE_H

#include <stdbool.h>
#include <stdint.h>

#include "os.h"

/* 4 KiB pieces of a 2 MiB page, of 512, that must be the child's own copy
 * already before the page is collapsed: the rest (at most 1/16, 128 KiB)
 * is what the collapse costs in memory. */
#define COLLAPSE_MIN_PRIVATE 480u

/* In a forked child, under the shim's lock: the pages it inherited
 * (retired: they take no new arenas) are watched from now on. */
void collapse_child_start(void);

/* When the next look is due: UINT64_MAX while no page is watched (in a
 * parent, or a child with none left). Written by collapse.c only, under
 * the shim's lock. */
extern uint64_t collapse_due_ns;

/* Looks at a few watched pages and collapses those the child has mostly
 * copied; the next look COLLAPSE_INTERVAL_NS later. */
void collapse_look(void);

/* On the arena path, under the shim's lock: a look when one is due.
 * Inline: outside a forked child, a compare. */
static inline void collapse_tick(void)
{
    if (collapse_due_ns != UINT64_MAX && os_now_ns() >= collapse_due_ns)
        collapse_look();
}

/* Pure: whether a page whose pagemap entries are `e` (512 of them) is
 * worth collapsing: COLLAPSE_MIN_PRIVATE of them present and exclusive. */
bool collapse_worth(const uint64_t *e, unsigned n);

#endif
