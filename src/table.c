/*
 * The side table's bookkeeping (table.h): which page of the range holds
 * which arenas, the lists that find a slot or a free page in one step, and
 * the counters the report reads. No system calls.
 */
#include "table.h"

static const uint8_t class_shift[TABLE_CLASSES] = TABLE_CLASS_SHIFTS;
_Static_assert(TABLE_CLASSES == 3, "TABLE_EMPTY sets one partial list head per class");

static inline uint8_t full_mask(const struct page *p) { return (uint8_t)((1u << page_slots(p)) - 1); }

/* ---- intrusive doubly linked lists of page indices ---------------------- */

static int32_t *list_head(struct table *t, struct page *p)
{
    switch (p->list) {
    case LIST_FREE: return &t->free_head;
    case LIST_CACHE: return &t->cache_head;
    case LIST_PARTIAL: return &t->partial[p->shift == 18 ? 0 : p->shift == 20 ? 1 : 2];
    default: return 0;
    }
}

static void list_push(struct table *t, uint32_t idx, enum page_list which)
{
    struct page *p = &t->pages[idx];
    p->list = (uint8_t)which;
    int32_t *head = list_head(t, p);
    p->prev = -1;
    p->next = *head;
    if (*head >= 0)
        t->pages[*head].prev = (int32_t)idx;
    *head = (int32_t)idx;
    t->free_listed += which == LIST_FREE;
    if (which == LIST_CACHE)
        t->cached_on[page_backing(p)]++;
}

static void list_remove(struct table *t, uint32_t idx)
{
    struct page *p = &t->pages[idx];
    int32_t *head = list_head(t, p);
    if (!head)
        return;
    if (p->prev >= 0)
        t->pages[p->prev].next = p->next;
    else
        *head = p->next;
    if (p->next >= 0)
        t->pages[p->next].prev = p->prev;
    t->free_listed -= p->list == LIST_FREE;
    if (p->list == LIST_CACHE)
        t->cached_on[page_backing(p)]--;
    p->prev = p->next = -1;
    p->list = LIST_NONE;
}

/* ---- life of a page ----------------------------------------------------- */

void table_init(struct table *t, struct page *pages, uint32_t max_pages, uint32_t cache_max)
{
    *t = (struct table)TABLE_EMPTY;
    t->max_pages = max_pages;
    t->cache_max = cache_max;
    t->pages = pages;
    /* Pages past `used` are read only after table_claim_free hands them out,
     * which initialises them: `pages` may be untouched zero memory. */
}

/* ---- extents: page numbers and addresses ---------------------------------- */

static uint32_t extent_pages(const struct table_extent *e)
{
    return (uint32_t)((e->hi - e->lo) >> TABLE_PAGE_SHIFT);
}

bool table_add_extent(struct table *t, uintptr_t lo, uint32_t n)
{
    if (n == 0 || n > t->max_pages - t->npages)
        return false;
    uintptr_t hi = lo + ((uintptr_t)n << TABLE_PAGE_SHIFT);
    uint32_t k = t->nextents;
    if (k > 0 && t->ext[k - 1].hi == lo) {
        /* Right after the last extent: the same run, numbered on. */
        __atomic_store_n(&t->ext[k - 1].hi, hi, __ATOMIC_RELEASE);
    } else {
        if (k == TABLE_MAX_EXTENTS)
            return false;
        t->ext[k].first = t->npages;
        __atomic_store_n(&t->ext[k].lo, lo, __ATOMIC_RELAXED);
        __atomic_store_n(&t->ext[k].hi, hi, __ATOMIC_RELAXED);
        __atomic_store_n(&t->nextents, k + 1, __ATOMIC_RELEASE);
    }
    t->npages += n;
    return true;
}

bool table_overlaps(const struct table *t, uintptr_t lo, uintptr_t end)
{
    uint32_t n = __atomic_load_n(&t->nextents, __ATOMIC_ACQUIRE);
    for (uint32_t k = 0; k < n; k++)
        if (lo < __atomic_load_n(&t->ext[k].hi, __ATOMIC_ACQUIRE) &&
            end > __atomic_load_n(&t->ext[k].lo, __ATOMIC_RELAXED))
            return true;
    return false;
}

/* Newest extent first: a new extent can only be reserved where the kernel
 * had nothing mapped, which inside an older extent means pages given to
 * the kernel whole (holes); those addresses are the new extent's now. */
bool table_lookup(const struct table *t, uintptr_t addr, uint32_t *idx)
{
    for (uint32_t k = t->nextents; k-- > 0;) {
        const struct table_extent *e = &t->ext[k];
        if (addr >= e->lo && addr < e->hi) {
            *idx = e->first + (uint32_t)((addr - e->lo) >> TABLE_PAGE_SHIFT);
            return true;
        }
    }
    return false;
}

bool table_page_at(const struct table *t, uintptr_t addr, struct page_ref *r)
{
    for (uint32_t k = t->nextents; k-- > 0;) {
        const struct table_extent *e = &t->ext[k];
        if (addr >= e->lo && addr < e->hi) {
            uint32_t off = (uint32_t)((addr - e->lo) >> TABLE_PAGE_SHIFT);
            r->idx = e->first + off;
            r->p = &t->pages[r->idx];
            r->addr = e->lo + ((uintptr_t)off << TABLE_PAGE_SHIFT);
            return true;
        }
    }
    return false;
}

struct page_ref table_page(const struct table *t, uint32_t idx)
{
    return (struct page_ref){.idx = idx, .p = &t->pages[idx], .addr = table_page_addr(t, idx)};
}

bool table_live_at(const struct table *t, uintptr_t addr, uint32_t *idx)
{
    struct page_ref r;
    if (!table_page_at(t, addr, &r) || r.idx >= t->used)
        return false;
    *idx = r.idx;
    return page_serves(r.p) && (r.p->live & (1u << ((addr - r.addr) >> r.p->shift)));
}

uintptr_t table_outside_end(const struct table *t, uintptr_t addr, uintptr_t end)
{
    uintptr_t stop = end;
    for (uint32_t k = 0; k < t->nextents; k++)
        if (t->ext[k].lo > addr && t->ext[k].lo < stop)
            stop = t->ext[k].lo;
    return stop;
}

uintptr_t table_page_addr(const struct table *t, uint32_t idx)
{
    for (uint32_t k = 0; k < t->nextents; k++) {
        const struct table_extent *e = &t->ext[k];
        if (idx - e->first < extent_pages(e))
            return e->lo + ((uintptr_t)(idx - e->first) << TABLE_PAGE_SHIFT);
    }
    return 0;
}

/* ---- life of a page ----------------------------------------------------- */

bool table_claim_free(struct table *t, uint32_t *idx)
{
    if (t->free_head >= 0) {
        *idx = (uint32_t)t->free_head;
        list_remove(t, *idx);
        return true;
    }
    if (t->used >= t->npages)
        return false;
    *idx = t->used++;
    t->pages[*idx] = (struct page){.state = PAGE_FREE, .list = LIST_NONE, .prev = -1, .next = -1};
    return true;
}

void table_put_free(struct table *t, uint32_t idx)
{
    struct page *p = &t->pages[idx];
    list_remove(t, idx);
    *p = (struct page){.state = PAGE_FREE, .prev = -1, .next = -1};
    list_push(t, idx, LIST_FREE);
}

void table_add_page(struct table *t, uint32_t idx, int cls, enum backing b)
{
    struct page *p = &t->pages[idx];
    *p = (struct page){.state = b == BACK_THP ? PAGE_THP : PAGE_HUGE, .shift = class_shift[cls],
                       .prev = -1, .next = -1};
    list_push(t, idx, LIST_PARTIAL);
    if (++t->held[b] > t->peak[b])
        t->peak[b] = t->held[b];
}

void table_rebacked(struct table *t, uint32_t idx, enum backing b)
{
    struct page *p = &t->pages[idx];
    enum backing old = page_backing(p);
    uint64_t n = (uint64_t)__builtin_popcount(p->live);
    if (p->list == LIST_CACHE) {
        t->cached_on[old]--;
        t->cached_on[b]++;
    }
    t->live[old] -= n;
    t->live[b] += n;
    t->held[old]--;
    if (++t->held[b] > t->peak[b])
        t->peak[b] = t->held[b];
    p->state = b == BACK_THP ? PAGE_THP : PAGE_HUGE;
    p->dirty = p->live;
}

static bool take_from(struct table *t, uint32_t idx, struct slot *s)
{
    struct page *p = &t->pages[idx];
    unsigned slot = (unsigned)__builtin_ctz((unsigned)(~p->live & full_mask(p)));
    uint8_t bit = (uint8_t)(1u << slot);
    s->must_zero = (p->dirty & bit) != 0;
    s->backing = page_backing(p);
    p->live |= bit;
    p->dirty |= bit;
    t->live[s->backing]++;
    if (p->live == full_mask(p))
        list_remove(t, idx);
    s->addr = table_page_addr(t, idx) + ((uintptr_t)slot << p->shift);
    return true;
}

bool table_take_slot(struct table *t, int cls, struct slot *s)
{
    if (t->partial[cls] >= 0)
        return take_from(t, (uint32_t)t->partial[cls], s);
    if (t->cache_head < 0)
        return false;
    uint32_t idx = (uint32_t)t->cache_head;
    struct page *p = &t->pages[idx];
    list_remove(t, idx);
    t->cached--;
    if (p->shift != class_shift[cls]) {
        /* Slot boundaries move: any old data may sit in any new slot. */
        p->shift = class_shift[cls];
        if (p->dirty)
            p->dirty = full_mask(p);
    }
    list_push(t, idx, LIST_PARTIAL);
    return take_from(t, idx, s);
}

enum release table_release(struct table *t, uintptr_t addr, size_t len, struct page_ref *r)
{
    if (!table_page_at(t, addr, r) || r->idx >= t->used)
        return RELEASE_NOT_SLOT;
    struct page *p = r->p;
    if (!page_serves(p) || len != (size_t)1 << p->shift)
        return RELEASE_NOT_SLOT;
    uintptr_t off = addr - r->addr;
    if (off & (len - 1) || !(p->live & (1u << (off >> p->shift))))
        return RELEASE_NOT_SLOT;
    return table_release_slot(t, *r, (unsigned)(off >> p->shift));
}

enum release table_release_slot(struct table *t, struct page_ref r, unsigned i)
{
    struct page *p = r.p;
    bool was_full = p->live == full_mask(p);
    p->live &= (uint8_t)~(1u << i);
    enum backing b = page_backing(p);
    t->live[b]--;
    if (p->live) {
        if (was_full && !p->retired)
            list_push(t, r.idx, LIST_PARTIAL);
        return RELEASE_KEPT;
    }
    list_remove(t, r.idx);
    if (!p->retired && t->cached < t->cache_max) {
        list_push(t, r.idx, LIST_CACHE);
        t->cached++;
        return RELEASE_KEPT;
    }
    t->held[b]--;
    table_put_free(t, r.idx);
    return RELEASE_UNMAP_PAGE;
}

bool table_evict_cached(struct table *t, bool only, enum backing b, uint32_t *idx)
{
    int32_t i = t->cache_head;
    while (i >= 0 && only && page_backing(&t->pages[i]) != b)
        i = t->pages[i].next;
    if (i < 0)
        return false;
    *idx = (uint32_t)i;
    list_remove(t, *idx);
    t->cached--;
    t->held[page_backing(&t->pages[*idx])]--;
    table_put_free(t, *idx);
    return true;
}

bool table_retire(struct table *t, uint32_t idx)
{
    struct page *p = &t->pages[idx];
    if (p->list == LIST_CACHE) {
        list_remove(t, idx);
        t->cached--;
        t->held[page_backing(p)]--;
        table_put_free(t, idx);
        return true;
    }
    list_remove(t, idx);
    p->retired = 1;
    return false;
}

void table_give_to_kernel(struct table *t, uint32_t idx)
{
    /* Never hand it out later from the untouched part of the range. */
    while (t->used <= idx) {
        t->pages[t->used] = (struct page){.prev = -1, .next = -1};
        list_push(t, t->used++, LIST_FREE);
    }
    struct page *p = &t->pages[idx];
    if (page_serves(p)) {
        if (p->list == LIST_CACHE)
            t->cached--;
        enum backing b = page_backing(p);
        t->live[b] -= (uint64_t)__builtin_popcount(p->live);
        t->held[b]--;
    }
    list_remove(t, idx);
    p->state = PAGE_KERNEL;
    p->live = p->dirty = p->retired = 0; /* its arenas are the kernel's memory now */
}

/* ---- the invariants ------------------------------------------------------ */

static const char *check_extents(const struct table *t)
{
    uint32_t n = 0;
    if (t->nextents > TABLE_MAX_EXTENTS)
        return "more extents than the table holds";
    for (uint32_t k = 0; k < t->nextents; k++) {
        const struct table_extent *e = &t->ext[k];
        if (e->lo >= e->hi || (e->lo | e->hi) & (TABLE_PAGE_SIZE - 1))
            return "an extent empty or not made of whole 2 MiB pages";
        if (e->first != n)
            return "an extent's pages not numbered on from the last one's";
        n += extent_pages(e);
    }
    if (n != t->npages || t->npages > t->max_pages || t->used > t->npages)
        return "npages, used and max_pages disagree with the extents";
    /* An older extent's page under a newer extent is the kernel's: the new
     * one could only be reserved where nothing of ours was mapped. */
    for (uint32_t k = 0; k < t->nextents; k++)
        for (uint32_t j = k + 1; j < t->nextents; j++) {
            const struct table_extent *e = &t->ext[k], *f = &t->ext[j];
            for (uintptr_t a = e->lo; a < e->hi; a += TABLE_PAGE_SIZE) {
                uint32_t idx = e->first + (uint32_t)((a - e->lo) >> TABLE_PAGE_SHIFT);
                if (a >= f->lo && a < f->hi && (idx >= t->used || t->pages[idx].state != PAGE_KERNEL))
                    return "extents overlap over a page that is not the kernel's";
            }
        }
    return NULL;
}

/* The list a page of this state and these slots belongs on (LIST_NONE
 * also for a FREE page claimed and not backed yet, or a serving page that
 * is empty but only just added). */
static const char *check_page(const struct table *t, uint32_t idx, uint32_t *held, uint64_t *live)
{
    const struct page *p = &t->pages[idx];
    switch (p->state) {
    case PAGE_FREE:
    case PAGE_KERNEL:
        if (p->live || p->retired)
            return "a page that serves no arena has live slots, or is retired";
        if (p->list != LIST_NONE && !(p->state == PAGE_FREE && p->list == LIST_FREE))
            return "a FREE or KERNEL page on a list other than the free list";
        return NULL;
    case PAGE_HUGE:
    case PAGE_THP:
        break;
    default:
        return "a page in no known state";
    }
    if (p->shift != 18 && p->shift != 20 && p->shift != 21)
        return "a serving page with slots of no arena size";
    if ((p->live | p->dirty) & ~full_mask(p))
        return "slot bits past the page's slots";
    if (p->live & ~p->dirty)
        return "a live slot that is not dirty";
    held[page_backing(p)]++;
    live[page_backing(p)] += (uint64_t)__builtin_popcount(p->live);
    if (p->retired ? p->list != LIST_NONE || !p->live
        : p->live == full_mask(p) ? p->list != LIST_NONE
        : p->live ? p->list != LIST_PARTIAL
                  : p->list != LIST_PARTIAL && p->list != LIST_CACHE)
        return "a serving page on the wrong list for its live slots (or retired)";
    return NULL;
}

/* Walks one list: linked both ways, no loop, every page on it marked so. */
static const char *check_list(const struct table *t, int32_t head, enum page_list which, int shift,
                              uint32_t *count)
{
    int32_t prev = -1;
    *count = 0;
    for (int32_t i = head; i >= 0; prev = i, i = t->pages[i].next) {
        if ((uint32_t)i >= t->used || ++*count > t->used)
            return "a list runs past the pages used, or loops";
        const struct page *p = &t->pages[i];
        if (p->list != which || p->prev != prev)
            return "a list's page is marked for another list, or linked back wrongly";
        if (shift >= 0 && p->shift != shift)
            return "a page on the partial list of another arena size";
    }
    return NULL;
}

const char *table_check(const struct table *t)
{
    const char *why = check_extents(t);
    if (why)
        return why;
    uint32_t held[BACKINGS] = {0}, on[4] = {0}, n;
    uint64_t live[BACKINGS] = {0};
    for (uint32_t i = 0; i < t->used; i++) {
        if ((why = check_page(t, i, held, live)))
            return why;
        on[t->pages[i].list]++;
    }
    if ((why = check_list(t, t->free_head, LIST_FREE, -1, &n)))
        return why;
    if (n != t->free_listed || n != on[LIST_FREE])
        return "free_listed is not the length of the free list";
    if ((why = check_list(t, t->cache_head, LIST_CACHE, -1, &n)))
        return why;
    if (n != t->cached || n != on[LIST_CACHE] || t->cached > t->cache_max)
        return "cached is not the length of the cache list, or past cache_max";
    uint32_t by[BACKINGS] = {0};
    for (int32_t i = t->cache_head; i >= 0; i = t->pages[i].next)
        by[page_backing(&t->pages[i])]++;
    if (by[BACK_HUGETLB] != t->cached_on[BACK_HUGETLB] || by[BACK_THP] != t->cached_on[BACK_THP])
        return "cached_on is not the number of cached pages of each backing";
    uint32_t partial = 0;
    for (int c = 0; c < TABLE_CLASSES; c++) {
        if ((why = check_list(t, t->partial[c], LIST_PARTIAL, class_shift[c], &n)))
            return why;
        partial += n;
    }
    if (partial != on[LIST_PARTIAL])
        return "a page marked partial on no partial list";
    for (int b = 0; b < BACKINGS; b++) {
        if (held[b] != t->held[b] || held[b] > t->peak[b])
            return "held is not the number of serving pages, or above its peak";
        if (live[b] != t->live[b])
            return "live is not the number of live slots";
    }
    return NULL;
}
