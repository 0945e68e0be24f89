/*
 * The side table: which 2 MiB page of the shim's address range holds which
 * arenas. The range is a few extents of reserved address space, each a run
 * of 2 MiB-aligned pages, added as arenas need them (so that RLIMIT_AS set
 * after start-up still has room: reserved address space counts against it).
 * Pages are numbered across extents in the order they were added.
 *
 * Pure bookkeeping: no system calls and no allocation. The caller owns the
 * memory of `pages`, maps and unmaps the pages, and holds the shim's lock
 * around every call but table_overlaps.
 *
 * A page is in one of four states:
 *   FREE    only address space (PROT_NONE); may be backed.
 *   HUGE    a 2 MiB hugetlb page cut into equal slots of one arena size
 *           (8 x 256 KiB, 2 x 1 MiB or 1 x 2 MiB). A HUGE page with no live
 *           slot is either cached (kept mapped for reuse) or released.
 *   THP     the same, backed by ordinary memory marked MADV_HUGEPAGE, for a
 *           transparent huge page where no hugetlb page was to be had, or
 *           where a HUGE page was moved before fork.
 *   KERNEL  given to the kernel for good: exactly what plain pages would be
 *           (its arenas ordinary memory in place, the rest holes), because
 *           something did to it what a hugetlb page cannot do, or mapped
 *           over it. Every call on it passes straight to the kernel.
 */
#ifndef PYHUGE_TABLE_H
#define PYHUGE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TABLE_PAGE_SHIFT 21
#define TABLE_PAGE_SIZE ((uintptr_t)1 << TABLE_PAGE_SHIFT)
#define TABLE_CLASSES 3 /* arena sizes: 256 KiB, 1 MiB, 2 MiB */
#define TABLE_MAX_EXTENTS 64

enum page_state { PAGE_FREE = 0, PAGE_HUGE, PAGE_THP, PAGE_KERNEL };
/* What backs a page that takes arenas: index of the per-backing counters. */
enum backing { BACK_HUGETLB = 0, BACK_THP = 1, BACKINGS };

enum page_list { LIST_NONE = 0, LIST_FREE, LIST_PARTIAL, LIST_CACHE };

struct page {
    uint8_t state;  /* enum page_state */
    uint8_t list;   /* enum page_list */
    uint8_t shift;  /* log2 of the slot size; 0 when FREE */
    uint8_t live;   /* bit i: slot i is an arena handed out */
    uint8_t dirty;  /* bit i: slot i may hold non-zero bytes */
    uint8_t retired; /* takes no new arenas: FREE when its last one goes */
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

static inline unsigned page_slots(const struct page *p) { return 1u << (TABLE_PAGE_SHIFT - p->shift); }

/* A page resolved once: its index, its entry and its address, so that the
 * callers that act on a page never turn an address into an index and back
 * (each a walk of the extents). `p` is only meaningful below table.used
 * (table_state). */
struct page_ref {
    uint32_t idx;
    struct page *p;
    uintptr_t addr;
};

/* Slot i of a serving page: its address. */
static inline uintptr_t page_slot_addr(struct page_ref r, unsigned i)
{
    return r.addr + ((uintptr_t)i << r.p->shift);
}

/* The slots of serving page r that [lo, hi) (within the page, lo < hi)
 * touches, as a mask: bit i for slot i. */
static inline unsigned page_slots_touched(struct page_ref r, uintptr_t lo, uintptr_t hi)
{
    unsigned first = (unsigned)((lo - r.addr) >> r.p->shift);
    unsigned last = (unsigned)((hi - 1 - r.addr) >> r.p->shift);
    return ((2u << last) - 1) & ~((1u << first) - 1);
}

/* The slots that [lo, hi) covers whole. */
static inline unsigned page_slots_within(struct page_ref r, uintptr_t lo, uintptr_t hi)
{
    uintptr_t size = (uintptr_t)1 << r.p->shift;
    unsigned first = (unsigned)((lo - r.addr + size - 1) >> r.p->shift);
    unsigned end = (unsigned)((hi - r.addr) >> r.p->shift);
    return end > first ? ((1u << end) - 1) & ~((1u << first) - 1) : 0;
}

/* Runs the statement after it once for each slot i in mask, lowest first:
 * for_each_slot(i, p->live) visits the live slots. */
#define for_each_slot(i, mask)                                                                   \
    for (unsigned i##_left = (mask), i = 0;                                                     \
         i##_left && ((i = (unsigned)__builtin_ctz(i##_left)), 1); i##_left &= i##_left - 1)

/* [lo, hi): pages [first, first + (hi - lo) / 2 MiB). lo and hi are read
 * without the lock (table_overlaps), so they are written atomically. */
struct table_extent {
    uintptr_t lo, hi;
    uint32_t first;
};

struct table {
    struct table_extent ext[TABLE_MAX_EXTENTS];
    uint32_t nextents;       /* published with release after the extent is complete */
    uint32_t npages;         /* pages in all extents */
    uint32_t max_pages;      /* entries in `pages` */
    uint32_t used;           /* pages [0, used) have been taken at least once */
    uint32_t held[BACKINGS]; /* pages serving arenas, cached ones included */
    uint32_t peak[BACKINGS]; /* most of them at once */
    uint32_t cached;         /* serving pages with no live slot, kept mapped */
    uint32_t cached_on[BACKINGS]; /* of them, by backing */
    uint32_t cache_max;
    uint64_t live[BACKINGS]; /* live arenas in serving pages */
    int32_t free_head;       /* FREE pages below `used` */
    uint32_t free_listed;    /* how many of them */
    int32_t cache_head;
    int32_t partial[TABLE_CLASSES];
    struct page *pages;
};

/* A table with no pages and empty lists: what a table is before table_init
 * (a process that never makes an arena keeps it so), safe to read. */
#define TABLE_EMPTY {.free_head = -1, .cache_head = -1, .partial = {-1, -1, -1}}

/* The arena sizes of the classes, as shifts. */
#define TABLE_CLASS_SHIFTS {18, 20, 21}

/* True, with its class in *cls, for an arena size; false for any other
 * size. Inline: every mmap of the right shape asks. */
static inline bool table_class_of(size_t size, int *cls)
{
    static const uint8_t shifts[TABLE_CLASSES] = TABLE_CLASS_SHIFTS;
    for (int c = 0; c < TABLE_CLASSES; c++) {
        if (size == (size_t)1 << shifts[c]) {
            *cls = c;
            return true;
        }
    }
    return false;
}

/* An empty table: no extents yet, room for max_pages pages in `pages`
 * (whose memory may be untouched zeroes). */
void table_init(struct table *t, struct page *pages, uint32_t max_pages, uint32_t cache_max);

/* Adds n pages of address space at lo (2 MiB-aligned) as FREE pages.
 * False when the table has no room for them. */
bool table_add_extent(struct table *t, uintptr_t lo, uint32_t n);

/* True when [lo, end) meets an extent. Lock-free: safe beside
 * table_add_extent on another thread. */
bool table_overlaps(const struct table *t, uintptr_t lo, uintptr_t end);

/* The page holding addr: true and *idx, or false when addr is in no extent.
 * Where extents overlap (a new one reserved in holes of an old one's pages
 * given to the kernel), the newest holds the address. */
bool table_lookup(const struct table *t, uintptr_t addr, uint32_t *idx);

/* True when addr lies in a live arena (of a page that serves arenas);
 * *idx is then its page. */
bool table_live_at(const struct table *t, uintptr_t addr, uint32_t *idx);

/* The page holding addr, resolved once: true and *r, or false when addr
 * is in no extent (newest extent first, as table_lookup). */
bool table_page_at(const struct table *t, uintptr_t addr, struct page_ref *r);

/* Page idx (below npages), resolved once. */
struct page_ref table_page(const struct table *t, uint32_t idx);

/* Where [addr, end), with addr in no extent, first meets one: the lowest
 * extent start inside it, or end. */
uintptr_t table_outside_end(const struct table *t, uintptr_t addr, uintptr_t end);

uintptr_t table_page_addr(const struct table *t, uint32_t idx);

/* A page's state; PAGE_FREE for one never taken (idx >= used), whose entry
 * is not written yet. */
static inline enum page_state table_state(const struct table *t, struct page_ref r)
{
    return r.idx < t->used ? (enum page_state)r.p->state : PAGE_FREE;
}

/* A slot handed out for an arena. */
struct slot {
    uintptr_t addr;
    bool must_zero;       /* it may hold old data */
    enum backing backing; /* what its page is */
};

/* Hands out a free slot of class cls from a serving page that is already
 * mapped (partly used first, then cached); false when no mapped page has
 * room. */
bool table_take_slot(struct table *t, int cls, struct slot *s);

/* Takes a FREE page for the caller to back, its index in *idx; false when
 * every page of every extent is taken. The page stays FREE (and off every
 * list) until table_add_page or table_put_free. */
bool table_claim_free(struct table *t, uint32_t *idx);
void table_put_free(struct table *t, uint32_t idx);

/* Records a freshly mapped, zeroed page with slots of class cls. */
void table_add_page(struct table *t, uint32_t idx, int cls, enum backing b);

/* A serving page now has other memory behind it, with its live slots copied
 * and its free slots zero. */
void table_rebacked(struct table *t, uint32_t idx, enum backing b);

enum release {
    RELEASE_NOT_SLOT,   /* [addr, addr+len) is not exactly one live slot of a serving page */
    RELEASE_KEPT,       /* freed; the page stays mapped (other arenas, or cached) */
    RELEASE_UNMAP_PAGE, /* freed; the page is now FREE: the caller unmaps it */
};

/* Page idx, serving arenas, takes no new ones from now on (a forked
 * child's inherited pages: fork.c): off the partial and cache lists; it
 * goes FREE (RELEASE_UNMAP_PAGE) when its last arena is freed. An empty
 * cached page is FREE at once: true then, and the caller unmaps it. */
bool table_retire(struct table *t, uint32_t idx);

/* Frees the live slot at exactly [addr, addr+len). *r gets the page when
 * addr is in the table. */
enum release table_release(struct table *t, uintptr_t addr, size_t len, struct page_ref *r);

/* Frees live slot i of serving page r. */
enum release table_release_slot(struct table *t, struct page_ref r, unsigned i);

/* Gives page idx to the kernel: its arenas are no longer counted and the
 * page is never backed again. Pages never taken up to idx become FREE pages
 * on the free list, so the untouched part of the range is handed out in
 * order. */
void table_give_to_kernel(struct table *t, uint32_t idx);

/* FREE pages: address space of the range that no arena uses. */
static inline uint32_t table_free_pages(const struct table *t)
{
    return t->npages - t->used + t->free_listed;
}

/* Cached pages backed by b. */
static inline uint32_t table_cached_on(const struct table *t, enum backing b)
{
    return t->cached_on[b];
}

/* Releases one cached page, its index in *idx (now FREE; the caller unmaps
 * it); false when the cache is empty. Only pages backed by b when `only`
 * is true. */
bool table_evict_cached(struct table *t, bool only, enum backing b, uint32_t *idx);

/* NULL when every invariant of the table holds, else the first that does
 * not, in words: the extents numbered on, each in the range and any
 * overlap only over pages of the kernel's; each page's list agrees with
 * its state and slots; the lists linked both ways, without a loop; the
 * counters equal to what they count; live slots a subset of dirty ones.
 * O(pages used); the unit tests call it after every step, debug builds
 * at every unlock of the shim's lock (state.h). */
const char *table_check(const struct table *t);

#endif
