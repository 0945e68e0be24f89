#include "table.h"

static const uint8_t class_shift[TABLE_CLASSES] = {18, 20, 21};

int table_class_of(size_t size)
{
    for (int c = 0; c < TABLE_CLASSES; c++)
        if (size == (size_t)1 << class_shift[c])
            return c;
    return -1;
}

size_t table_class_size(int cls) { return (size_t)1 << class_shift[cls]; }

static inline unsigned nslots(const struct page *p) { return 1u << (TABLE_PAGE_SHIFT - p->shift); }

static inline uint8_t full_mask(const struct page *p) { return (uint8_t)((1u << nslots(p)) - 1); }

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
    p->prev = p->next = -1;
    p->list = LIST_NONE;
}

/* ---- life of a page ----------------------------------------------------- */

void table_init(struct table *t, uintptr_t base, uint32_t npages, struct page *pages,
                uint32_t cache_max)
{
    *t = (struct table){
        .base = base,
        .npages = npages,
        .cache_max = cache_max,
        .free_head = -1,
        .cache_head = -1,
        .partial = {-1, -1, -1},
        .pages = pages,
    };
    /* Pages past `used` are read only after table_claim_free hands them out,
     * which initialises them: `pages` may be untouched zero memory. */
}

int32_t table_claim_free(struct table *t)
{
    if (t->free_head >= 0) {
        uint32_t idx = (uint32_t)t->free_head;
        list_remove(t, idx);
        return (int32_t)idx;
    }
    if (t->used == t->npages)
        return -1;
    uint32_t idx = t->used++;
    t->pages[idx] = (struct page){.state = PAGE_FREE, .list = LIST_NONE, .prev = -1, .next = -1};
    return (int32_t)idx;
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

static uintptr_t take_from(struct table *t, uint32_t idx, bool *must_zero)
{
    struct page *p = &t->pages[idx];
    unsigned slot = (unsigned)__builtin_ctz((unsigned)(~p->live & full_mask(p)));
    uint8_t bit = (uint8_t)(1u << slot);
    *must_zero = (p->dirty & bit) != 0;
    p->live |= bit;
    p->dirty |= bit;
    t->live[page_backing(p)]++;
    if (p->live == full_mask(p))
        list_remove(t, idx);
    return table_page_addr(t, idx) + ((uintptr_t)slot << p->shift);
}

uintptr_t table_take_slot(struct table *t, int cls, bool *must_zero)
{
    if (t->partial[cls] >= 0)
        return take_from(t, (uint32_t)t->partial[cls], must_zero);
    if (t->cache_head < 0)
        return 0;
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
    return take_from(t, idx, must_zero);
}

enum release table_release(struct table *t, uintptr_t addr, size_t len, uint32_t *idx_out)
{
    if (!table_contains(t, addr))
        return RELEASE_NOT_SLOT;
    uint32_t idx = table_index(t, addr);
    struct page *p = &t->pages[idx];
    *idx_out = idx;
    if (idx >= t->used || p->state == PAGE_FREE || len != (size_t)1 << p->shift)
        return RELEASE_NOT_SLOT;
    uintptr_t off = addr - table_page_addr(t, idx);
    if (off & (len - 1))
        return RELEASE_NOT_SLOT;
    uint8_t bit = (uint8_t)(1u << (off >> p->shift));
    if (!(p->live & bit))
        return RELEASE_NOT_SLOT;
    bool was_full = p->live == full_mask(p);
    p->live &= (uint8_t)~bit;

    if (!page_serves(p))
        return RELEASE_UNMAP_SLOT;
    enum backing b = page_backing(p);
    t->live[b]--;
    if (p->live) {
        if (was_full)
            list_push(t, idx, LIST_PARTIAL);
        return RELEASE_KEPT;
    }
    list_remove(t, idx);
    if (t->cached < t->cache_max) {
        list_push(t, idx, LIST_CACHE);
        t->cached++;
        return RELEASE_KEPT;
    }
    t->held[b]--;
    table_put_free(t, idx);
    return RELEASE_UNMAP_PAGE;
}

int32_t table_evict_cached(struct table *t)
{
    if (t->cache_head < 0)
        return -1;
    uint32_t idx = (uint32_t)t->cache_head;
    list_remove(t, idx);
    t->cached--;
    t->held[page_backing(&t->pages[idx])]--;
    table_put_free(t, idx);
    return (int32_t)idx;
}

void table_demote(struct table *t, uint32_t idx)
{
    struct page *p = &t->pages[idx];
    if (!page_serves(p))
        return;
    if (p->list == LIST_CACHE)
        t->cached--;
    list_remove(t, idx);
    enum backing b = page_backing(p);
    t->live[b] -= (uint64_t)__builtin_popcount(p->live);
    t->held[b]--;
    p->state = PAGE_DEMOTED;
}

void table_mark_foreign(struct table *t, uint32_t idx)
{
    /* Never hand it out later from the untouched part of the range. */
    while (t->used <= idx) {
        t->pages[t->used] = (struct page){.prev = -1, .next = -1};
        list_push(t, t->used++, LIST_FREE);
    }
    struct page *p = &t->pages[idx];
    if (page_serves(p))
        table_demote(t, idx);
    list_remove(t, idx);
    p->state = PAGE_FOREIGN;
}

void table_retire_demoted(struct table *t, uint32_t idx)
{
    if (t->pages[idx].state == PAGE_DEMOTED && t->pages[idx].live == 0)
        table_put_free(t, idx);
}

bool table_range_mapped(const struct table *t, uintptr_t addr, size_t len)
{
    uintptr_t end = addr + len;
    while (addr < end) {
        uint32_t idx = table_index(t, addr);
        if (idx >= t->used)
            return false;
        const struct page *p = &t->pages[idx];
        uintptr_t page_end = table_page_addr(t, idx) + TABLE_PAGE_SIZE;
        if (p->state == PAGE_FREE)
            return false;
        if (p->state != PAGE_FOREIGN) {
            uintptr_t slot_size = (uintptr_t)1 << p->shift;
            unsigned slot = (unsigned)((addr - table_page_addr(t, idx)) >> p->shift);
            if (!(p->live & (1u << slot)))
                return false;
            page_end = table_page_addr(t, idx) + (slot + 1) * slot_size;
        }
        addr = page_end;
    }
    return true;
}
