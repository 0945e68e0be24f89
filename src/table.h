/*
 * The side table: which 2 MiB page of the shim's address range holds which
 * arenas. Pages are indexed by (address - base) >> 21, so every lookup is
 * O(1) and an address outside [base, base + npages * 2 MiB) is not ours by
 * two comparisons.
 *
 * Pure bookkeeping: no system calls and no allocation. The caller owns the
 * memory of `pages`, maps and unmaps the pages, and holds the shim's lock
 * around every call.
 *
 * A page is in one of five states:
 *   FREE     only address space (PROT_NONE); may be backed again.
 *   HUGE     a 2 MiB hugetlb page cut into equal slots of one arena size
 *            (8 x 256 KiB, 2 x 1 MiB or 1 x 2 MiB). A HUGE page with no live
 *            slot is either cached (kept mapped for reuse) or released.
 *   THP      the same, backed by ordinary memory marked MADV_HUGEPAGE, for
 *            a transparent huge page where no hugetlb page could be had.
 *   DEMOTED  copied to ordinary pages because something did to part of it
 *            what a hugetlb page cannot do (partial munmap, mprotect, ...).
 *            Its live arenas stay where they are; no new ones are placed.
 *   FOREIGN  someone else mapped over it (MAP_FIXED): never backed again.
 */
#ifndef PYHUGE_TABLE_H
#define PYHUGE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TABLE_PAGE_SHIFT 21
#define TABLE_PAGE_SIZE ((uintptr_t)1 << TABLE_PAGE_SHIFT)
#define TABLE_CLASSES 3 /* arena sizes: 256 KiB, 1 MiB, 2 MiB */
#define TABLE_MAX_SLOTS 8

enum page_state { PAGE_FREE = 0, PAGE_HUGE, PAGE_DEMOTED, PAGE_FOREIGN, PAGE_THP };
/* What backs a page that takes arenas: index of the per-backing counters. */
enum backing { BACK_HUGETLB = 0, BACK_THP = 1, BACKINGS };


enum page_list { LIST_NONE = 0, LIST_FREE, LIST_PARTIAL, LIST_CACHE };

struct page {
    uint8_t state;  /* enum page_state */
    uint8_t list;   /* enum page_list */
    uint8_t shift;  /* log2 of the slot size; 0 when FREE */
    uint8_t live;   /* bit i: slot i is an arena handed out */
    uint8_t dirty;  /* bit i: slot i may hold non-zero bytes */
    int32_t prev, next;
};

/* HUGE and THP pages take arenas; the others do not. */
static inline bool page_serves(const struct page *p)
{
    return p->state == PAGE_HUGE || p->state == PAGE_THP;
}

static inline enum backing page_backing(const struct page *p)
{
    return p->state == PAGE_THP ? BACK_THP : BACK_HUGETLB;
}

struct table {
    uintptr_t base;
    uint32_t npages;       /* capacity */
    uint32_t used;         /* pages [0, used) have been taken at least once */
    uint32_t held[BACKINGS]; /* pages serving arenas, cached ones included */
    uint32_t peak[BACKINGS]; /* most of them at once */
    uint32_t cached;       /* serving pages with no live slot, kept mapped */
    uint32_t cache_max;
    uint64_t live[BACKINGS]; /* live arenas in serving pages */
    int32_t free_head;     /* FREE pages below `used` */
    int32_t cache_head;
    int32_t partial[TABLE_CLASSES];
    struct page *pages;
};

/* Returns the class of an arena size, or -1 for any other size. */
int table_class_of(size_t size);
size_t table_class_size(int cls);

void table_init(struct table *t, uintptr_t base, uint32_t npages, struct page *pages,
                uint32_t cache_max);

static inline bool table_contains(const struct table *t, uintptr_t addr)
{
    return addr - t->base < (uintptr_t)t->npages << TABLE_PAGE_SHIFT;
}

/* Page index of addr, which must satisfy table_contains. */
static inline uint32_t table_index(const struct table *t, uintptr_t addr)
{
    return (uint32_t)((addr - t->base) >> TABLE_PAGE_SHIFT);
}

static inline uintptr_t table_page_addr(const struct table *t, uint32_t idx)
{
    return t->base + ((uintptr_t)idx << TABLE_PAGE_SHIFT);
}

/* Hands out a free slot of class cls from a serving page that is already
 * mapped (partly used first, then cached). Sets *must_zero when the slot
 * may hold old data. Returns 0 when no mapped page has room. */
uintptr_t table_take_slot(struct table *t, int cls, bool *must_zero);

/* Takes a FREE page for the caller to back. Returns its index, or -1 when
 * the address range is full. The page stays FREE (and off every list)
 * until table_add_page or table_put_free. */
int32_t table_claim_free(struct table *t);
void table_put_free(struct table *t, uint32_t idx);

/* Records a freshly mapped, zeroed page with slots of class cls. */
void table_add_page(struct table *t, uint32_t idx, int cls, enum backing b);

enum release {
    RELEASE_NOT_SLOT,   /* [addr, addr+len) is not exactly one live slot */
    RELEASE_KEPT,       /* freed; the page stays mapped (other arenas, or cached) */
    RELEASE_UNMAP_PAGE, /* freed; the page is now FREE: the caller unmaps it */
    RELEASE_UNMAP_SLOT, /* freed from a DEMOTED/FOREIGN page: the caller unmaps the slot */
};

/* Frees the live slot at exactly [addr, addr+len). *idx gets the page. */
enum release table_release(struct table *t, uintptr_t addr, size_t len, uint32_t *idx);

/* Marks a serving page DEMOTED (the caller has moved it to ordinary pages). */
void table_demote(struct table *t, uint32_t idx);
/* Marks a page FOREIGN: someone else's mapping is there now. */
void table_mark_foreign(struct table *t, uint32_t idx);
/* Frees a DEMOTED page whose last slot is gone: it becomes FREE. */
void table_retire_demoted(struct table *t, uint32_t idx);

/* Releases one cached page: returns its index (now FREE; the caller unmaps
 * it) or -1 when the cache is empty. */
int32_t table_evict_cached(struct table *t);

/* True when every byte of [addr, addr+len), which must lie in the table's
 * range, is inside a live slot or a FOREIGN page: that is, would be mapped
 * memory had the arenas been ordinary mappings. */
bool table_range_mapped(const struct table *t, uintptr_t addr, size_t len);

#endif
