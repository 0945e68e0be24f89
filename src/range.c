#include "range.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "heap.h"
#include "log.h"
#include "os.h"
#include "report.h"
#include "state.h"
#include "tiers.h"

/* At most 64 GiB of arenas: the side table has an entry per 2 MiB page. */
#define RANGE_MAX_PAGES 32768u
/* Address space is reserved in steps of a quarter of what the range holds,
 * at least 32 MiB: an unused reserve of at most a quarter (or 32 MiB)
 * against RLIMIT_AS. A refused step is halved down to one page, so a
 * process near its limit gets exactly the pages it uses. */
#define RANGE_MIN_STEP 16u

/* ---- lock-free: is this ours? --------------------------------------------- */

/* len rounded up to whole 4 KiB pages, or 0 when that or addr + len wraps. */
static size_t round_len(uintptr_t a, size_t len)
{
    size_t r = (len + OS_PAGE_SIZE - 1) & ~(size_t)(OS_PAGE_SIZE - 1);
    if (r < len || a + r < a)
        return 0;
    return r;
}

bool range_overlaps(const void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr, end = a + len < a ? UINTPTR_MAX : a + len;
    return table_overlaps(&shim.table, a, end);
}

/* ---- growing ---------------------------------------------------------------- */

bool range_init(void)
{
    if (shim.range_tried)
        return shim.table.pages != NULL;
    shim.range_tried = true;
    size_t bytes = RANGE_MAX_PAGES * sizeof(struct page);
    intptr_t pages = os_mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (os_failed(pages)) {
        log_warn("cannot map the side table (errno %d); arenas stay on ordinary pages",
                 (int)-pages);
        return false;
    }
    os_name_range((void *)pages, bytes, "pyhuge-table");
    table_init(&shim.table, (struct page *)pages, RANGE_MAX_PAGES, shim.opt.cache_pages);
    return true;
}

static bool range_grow(void)
{
    struct table *t = &shim.table;
    uint32_t step = t->npages / 4 > RANGE_MIN_STEP ? t->npages / 4 : RANGE_MIN_STEP;
    if (step > t->max_pages - t->npages)
        step = t->max_pages - t->npages;
    int err = 0;
    for (; step > 0; step /= 2) {
        size_t bytes = (size_t)step << TABLE_PAGE_SHIFT;
        intptr_t r = os_reserve_new(bytes, TABLE_PAGE_SIZE);
        if (os_failed(r)) {
            err = (int)-r;
            continue;
        }
        if (!table_add_extent(t, (uintptr_t)r, step)) {
            os_munmap((void *)r, bytes);
            log_info("the shim's range is full (%u extents, %u pages)", t->nextents, t->npages);
            return false;
        }
        os_name_range((void *)r, bytes, "pyhuge");
        log_debug("reserved %zu MiB of address space at %p for huge pages (%u MiB in all)",
                  bytes >> 20, (void *)r, t->npages * 2);
        return true;
    }
    if (err)
        log_debug("cannot reserve address space for huge pages (errno %d)", err);
    return false;
}

int32_t range_claim_page(void)
{
    int32_t idx = table_claim_free(&shim.table);
    if (idx < 0 && range_grow())
        idx = table_claim_free(&shim.table);
    return idx;
}

/* ---- pages ------------------------------------------------------------------ */

void range_release_page(uint32_t idx)
{
    uintptr_t pa = table_page_addr(&shim.table, idx);
    /* MAP_FIXED over our own page: replaced in one step, never a hole. */
    if (os_reserve(pa, TABLE_PAGE_SIZE) != 0) {
        os_munmap((void *)pa, TABLE_PAGE_SIZE);
        table_give_to_kernel(&shim.table, idx);
    }
    tier_page_returned();
    log_debug("page %u back to address space", idx);
}

void range_copy_live_from(uint32_t idx, uintptr_t from, uintptr_t to)
{
    const struct page *p = &shim.table.pages[idx];
    size_t slot = (size_t)1 << p->shift;
    for (unsigned i = 0; i < page_slots(p); i++)
        if (p->live & (1u << i))
            memcpy((char *)to + i * slot, (char *)from + i * slot, slot);
}

void range_copy_live(uint32_t idx, uintptr_t to)
{
    range_copy_live_from(idx, table_page_addr(&shim.table, idx), to);
}

int range_move_over(uint32_t idx, uintptr_t from)
{
    uintptr_t to = table_page_addr(&shim.table, idx);
    intptr_t r = os_mremap((void *)from, TABLE_PAGE_SIZE, TABLE_PAGE_SIZE,
                           MREMAP_MAYMOVE | MREMAP_FIXED, (void *)to);
    if (!os_failed(r))
        return 0;
    if (os_is_mapped(to, TABLE_PAGE_SIZE)) {
        os_munmap((void *)from, TABLE_PAGE_SIZE); /* nothing changed */
        return (int)r;
    }
    /* mremap unmaps the target before it moves, and may then fail (ENOMEM):
     * the contents go where they were expected, into the hole only. */
    intptr_t m = os_mmap((void *)to, TABLE_PAGE_SIZE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (os_failed(m)) {
        log_warn("a failed mremap (errno %d) left a hole at %p that another mapping took; "
                 "the memory of the arenas there is lost: aborting", (int)-r, (void *)to);
        os_abort();
    }
    memcpy((void *)to, (void *)from, TABLE_PAGE_SIZE);
    os_munmap((void *)from, TABLE_PAGE_SIZE);
    return RANGE_COPIED;
}

/* Unmaps the free slots of a serving page: holes, as plain pages would have. */
static void punch_free_slots(uint32_t idx)
{
    const struct page *p = &shim.table.pages[idx];
    uintptr_t pa = table_page_addr(&shim.table, idx);
    size_t slot = (size_t)1 << p->shift;
    for (unsigned i = 0; i < page_slots(p); i++)
        if (!(p->live & (1u << i)))
            os_munmap((void *)(pa + i * slot), slot);
}

int range_give_to_kernel(uint32_t idx)
{
    struct table *t = &shim.table;
    struct page *p = &t->pages[idx];
    uintptr_t pa = table_page_addr(t, idx);
    if (idx < t->used && p->state == PAGE_KERNEL)
        return 0;
    if (idx >= t->used || p->state == PAGE_FREE) {
        os_munmap((void *)pa, TABLE_PAGE_SIZE);
    } else if (p->state == PAGE_HUGE && p->live) {
        /* A hugetlb page cannot be split: its arenas move to ordinary pages
         * at the same addresses, in one mremap over the whole page. */
        intptr_t tmp = os_map_anon(TABLE_PAGE_SIZE, OS_PAGE_SIZE, false);
        if (os_failed(tmp))
            return (int)tmp;
        range_copy_live(idx, (uintptr_t)tmp);
        int e = range_move_over(idx, (uintptr_t)tmp);
        if (e < 0)
            return e;
        punch_free_slots(idx);
        shim.st.pages_demoted++;
        tier_page_returned();
    } else if (p->state == PAGE_HUGE) {
        os_munmap((void *)pa, TABLE_PAGE_SIZE); /* cached: nothing to keep */
        tier_page_returned();
    } else {
        punch_free_slots(idx); /* THP: ordinary memory already */
    }
    table_give_to_kernel(t, idx);
    log_debug("page %u given to the kernel", idx);
    return 0;
}

/* ---- munmap ----------------------------------------------------------------- */

/* munmap of [lo, hi) inside page idx, for anything but one exact slot. */
static int unmap_in_page(uint32_t idx, uintptr_t lo, uintptr_t hi)
{
    struct table *t = &shim.table;
    struct page *p = &t->pages[idx];
    if (idx >= t->used || p->state == PAGE_FREE)
        return 0; /* unmapped memory, as far as the caller can know */
    if (p->state == PAGE_KERNEL)
        return os_next_munmap((void *)lo, hi - lo) ? -errno : 0;

    uintptr_t pa = table_page_addr(t, idx);
    size_t slot = (size_t)1 << p->shift;
    unsigned first = (unsigned)((lo - pa) >> p->shift), last = (unsigned)((hi - 1 - pa) >> p->shift);
    for (unsigned i = first; i <= last; i++) {
        uintptr_t s_lo = pa + i * slot, s_hi = s_lo + slot;
        if ((p->live & (1u << i)) && (lo > s_lo || hi < s_hi)) {
            /* Part of an arena: only plain pages can lose part of it. */
            int e = range_give_to_kernel(idx);
            if (e)
                return e;
            return os_next_munmap((void *)lo, hi - lo) ? -errno : 0;
        }
    }
    for (unsigned i = first; i <= last && page_serves(p); i++) {
        uint32_t same;
        if ((p->live & (1u << i)) &&
            table_release(t, pa + i * slot, slot, &same) == RELEASE_UNMAP_PAGE)
            range_release_page(idx);
    }
    return 0;
}

/* The pieces of [a, end) inside the range go to the side table, the others
 * to the kernel. The kernel first judges the last piece when it lies
 * outside: whether a length is too large depends only on where the range
 * ends, so a length the kernel refuses (past the top of the address space)
 * is refused before anything of ours changes. */
static int unmap_locked(uintptr_t a, uintptr_t end)
{
    uintptr_t tail = end;
    for (uintptr_t p = a; p < end;) {
        bool inside;
        uintptr_t q = table_piece(&shim.table, p, end, &inside);
        if (q == end && !inside)
            tail = p;
        p = q;
    }
    if (tail < end && os_next_munmap((void *)tail, end - tail) != 0)
        return -errno;
    for (uintptr_t p = a; p < tail;) {
        bool inside;
        uintptr_t q = table_piece(&shim.table, p, tail, &inside);
        if (!inside && os_next_munmap((void *)p, q - p) != 0)
            return -errno;
        while (inside && p < q) {
            uint32_t idx;
            table_lookup(&shim.table, p, &idx);
            uintptr_t page_end = (p & ~(TABLE_PAGE_SIZE - 1)) + TABLE_PAGE_SIZE;
            uintptr_t seg = q < page_end ? q : page_end;
            int e = unmap_in_page(idx, p, seg);
            if (e)
                return e;
            p = seg;
        }
        p = q;
    }
    return 0;
}

int range_munmap(void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr;
    size_t plen = round_len(a, len);
    if ((a & (OS_PAGE_SIZE - 1)) || plen == 0)
        return os_next_munmap(addr, len); /* the kernel's EINVAL, untouched */
    if (in_shim) {
        errno = EAGAIN; /* a signal handler while this thread holds the lock */
        return -1;
    }
    shim_lock();
    uint32_t idx;
    int e = 0;
    bool trim = false;
    switch (table_release(&shim.table, a, plen, &idx)) {
    case RELEASE_KEPT: trim = heap_arenas_freed(plen); break;
    case RELEASE_UNMAP_PAGE:
        range_release_page(idx);
        trim = heap_arenas_freed(plen);
        break;
    case RELEASE_NOT_SLOT: e = unmap_locked(a, a + plen); break;
    }
    report_sync();
    shim_unlock();
    if (trim)
        heap_trim(); /* CPython gave back many arenas: many objects died */
    if (e) {
        errno = -e;
        return -1;
    }
    return 0;
}

/* ---- calls that change a range in place ------------------------------------- */

/* True when [lo, hi) inside page idx holds memory a plain-pages caller
 * never mapped: a FREE page, or a free slot of a serving page. */
static bool has_gap(uint32_t idx, uintptr_t lo, uintptr_t hi)
{
    const struct page *p = &shim.table.pages[idx];
    if (idx >= shim.table.used || p->state == PAGE_FREE)
        return true;
    if (!page_serves(p))
        return false;
    uintptr_t pa = table_page_addr(&shim.table, idx);
    unsigned first = (unsigned)((lo - pa) >> p->shift), last = (unsigned)((hi - 1 - pa) >> p->shift);
    for (unsigned i = first; i <= last; i++)
        if (!(p->live & (1u << i)))
            return true;
    return false;
}

int range_prepare(void *addr, size_t len, enum hook_gaps gaps)
{
    uintptr_t a = (uintptr_t)addr;
    size_t plen = round_len(a, len);
    if ((a & (OS_PAGE_SIZE - 1)) || plen == 0)
        return 0; /* let the kernel give its own answer */
    if (in_shim)
        return -EAGAIN;
    int e = 0;
    shim_lock();
    uintptr_t end = a + plen;
    for (uintptr_t p = a; p < end && !e;) {
        bool inside;
        uintptr_t q = table_piece(&shim.table, p, end, &inside);
        while (inside && p < q && !e) {
            uint32_t idx;
            table_lookup(&shim.table, p, &idx);
            uintptr_t page_end = (p & ~(TABLE_PAGE_SIZE - 1)) + TABLE_PAGE_SIZE;
            uintptr_t seg = q < page_end ? q : page_end;
            bool gap = has_gap(idx, p, seg);
            e = range_give_to_kernel(idx);
            if (gap && gaps == HOOK_STOPS_AT_GAP)
                goto done; /* the kernel stops at that hole: the rest stays as it is */
            p = seg;
        }
        p = q;
    }
done:
    report_sync();
    shim_unlock();
    return e;
}
