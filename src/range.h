/*
 * The shim's range: the address space its arenas live in. The range is a
 * few extents of reserved address space (table.h), added as arenas need
 * them and never given back while ours, so the kernel never hands an
 * address in a FREE, HUGE or THP page to anyone else and "is this ours?"
 * is a check that needs no lock. What callers do to the range is in
 * prepare.h; what backs a page, in tiers.h.
 */
#ifndef PYHUGE_RANGE_H
#define PYHUGE_RANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"
#include "table.h"

/* True when [addr, addr+len) meets the range. Lock-free; inline, since
 * every interposed call asks it first. */
static inline bool range_overlaps(const void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr, end = a + len < a ? UINTPTR_MAX : a + len;
    return table_overlaps(&shim.table, a, end);
}

/* ---- under the shim's lock ------------------------------------------------- */

/* Maps the side table once: 0, or -errno when it cannot be had (then and
 * at every later call). */
int range_init(void);

/* A FREE page to back, reserving more address space when every page is
 * taken: 0 and *idx, or -ENOMEM when no more can be had. */
int range_claim_page(uint32_t *idx);

/* An empty serving page (table_release said RELEASE_UNMAP_PAGE, or it was
 * evicted from the cache) goes back to being address space. */
void range_release_page(struct page_ref r);

#endif
