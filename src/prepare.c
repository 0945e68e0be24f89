/*
 * What callers do to the shim's range (prepare.h): a page at a time, each
 * page resolved once (struct page_ref), pages given to the kernel before
 * the call goes on, the kernel's own refusals asked first.
 */
#include "prepare.h"

#include <errno.h>
#include <sys/mman.h>

#include "heap.h"
#include "log.h"
#include "move.h"
#include "next.h"
#include "os.h"
#include "range.h"
#include "refuse.h"
#include "report.h"
#include "state.h"
#include "tiers.h"

/* len rounded up to whole 4 KiB pages, or 0 when that or addr + len wraps. */
static size_t round_len(uintptr_t a, size_t len)
{
    size_t r = (len + OS_PAGE_SIZE - 1) & ~(size_t)(OS_PAGE_SIZE - 1);
    if (r < len || a + r < a)
        return 0;
    return r;
}

/* ---- giving a page to the kernel --------------------------------------------- */

/* Unmaps the free slots of a serving page: holes, as plain pages would have. */
static void punch_free_slots(struct page_ref r)
{
    size_t slot = (size_t)1 << r.p->shift;
    for_each_slot(i, ~r.p->live & ((1u << page_slots(r.p)) - 1))
        os_munmap((void *)page_slot_addr(r, i), slot);
}

/* A hugetlb page cannot be split: its arenas move to ordinary pages at the
 * same addresses, in one mremap over the whole page; where there is no
 * room for a copy (RLIMIT_AS, RLIMIT_DATA), in place through a file, with
 * one thread only, since the arenas hold nothing for a moment. */
static int huge_to_plain(struct page_ref r)
{
    uintptr_t tmp;
    int e = os_map_anon(TABLE_PAGE_SIZE, OS_PAGE_SIZE, false, &tmp);
    if (e == 0) {
        move_copy_live(r, tmp);
        return move_over(r, tmp, NULL);
    }
    unsigned threads;
    if (os_thread_count(&threads) != 0 || threads != 1 || move_through_file(r, false) != 0)
        return e;
    return 0;
}

/* Makes page r plain memory (its arenas copied to ordinary pages in place,
 * the rest holes) and gives it to the kernel for good. 0, or -errno when
 * the copy cannot be made (the page is then unchanged). */
static int give_to_kernel(struct page_ref r)
{
    struct table *t = &shim.table;
    enum page_state state = table_state(t, r);
    if (state == PAGE_KERNEL)
        return 0;
    if (state == PAGE_FREE) {
        os_munmap((void *)r.addr, TABLE_PAGE_SIZE);
    } else if (state == PAGE_HUGE && r.p->live) {
        int e = huge_to_plain(r);
        if (e)
            return e;
        punch_free_slots(r);
        report_page_demoted();
        tier_page_returned();
    } else if (state == PAGE_HUGE) {
        os_munmap((void *)r.addr, TABLE_PAGE_SIZE); /* cached: nothing to keep */
        tier_page_returned();
    } else {
        punch_free_slots(r); /* THP: ordinary memory already */
    }
    table_give_to_kernel(t, r.idx);
    log_debug("page %u given to the kernel", r.idx);
    return 0;
}

/* ---- walking a range ----------------------------------------------------------- */

/* One piece of [a, end): the part of one page of the range (r), or a
 * stretch outside the range (r NULL). 0 to go on (or to stop without an
 * error: *stop), or -errno to stop with. */
typedef int (*piece_fn)(const struct page_ref *r, uintptr_t lo, uintptr_t hi, void *ctx,
                        bool *stop);

/* Calls fn on each piece of [a, end), each page resolved once. */
static int each_piece(uintptr_t a, uintptr_t end, piece_fn fn, void *ctx)
{
    const struct table *t = &shim.table;
    bool stop = false;
    for (uintptr_t p = a; p < end && !stop;) {
        struct page_ref r;
        bool inside = table_page_at(t, p, &r);
        uintptr_t q = !inside ? table_outside_end(t, p, end)
                      : end - r.addr > TABLE_PAGE_SIZE ? r.addr + TABLE_PAGE_SIZE : end;
        int e = fn(inside ? &r : NULL, p, q, ctx, &stop);
        if (e)
            return e;
        p = q;
    }
    return 0;
}

/* True when [lo, hi) inside page r holds part of an arena but not all of
 * it. */
static bool splits_an_arena(struct page_ref r, uintptr_t lo, uintptr_t hi)
{
    if (r.idx >= shim.table.used || !page_serves(r.p))
        return false;
    return r.p->live & page_slots_touched(r, lo, hi) & ~page_slots_within(r, lo, hi);
}

/* True when [lo, hi) inside page r holds memory a plain-pages caller never
 * mapped: a FREE page, or a free slot of a serving page. */
static bool has_gap(struct page_ref r, uintptr_t lo, uintptr_t hi)
{
    enum page_state state = table_state(&shim.table, r);
    if (state == PAGE_FREE)
        return true;
    if (state == PAGE_KERNEL)
        return false;
    return page_slots_touched(r, lo, hi) & ~r.p->live;
}

/* Whether the kernel takes a range that ends at end at all: past the top
 * of the address space it refuses every call (EINVAL, or ENOMEM for mmap)
 * before acting. Anything up to this thread's stack is below the top; past
 * it, the kernel is asked. */
static bool ends_in_address_space(uintptr_t end)
{
    uint32_t idx;
    if (end <= (uintptr_t)__builtin_frame_address(0) || table_lookup(&shim.table, end - 1, &idx))
        return true;
    return os_page_exists_at(end - OS_PAGE_SIZE);
}

/* ---- munmap ----------------------------------------------------------------- */

/* First, the pages where part of an arena goes become plain memory (the
 * only step that can fail, for want of memory), before anything is
 * unmapped. Only the pages at either end can be cut: every page between
 * is covered whole. */
static int give_cut_pages(uintptr_t a, uintptr_t end)
{
    const uintptr_t at[2] = {a, end - 1};
    for (int i = 0; i < 2; i++) {
        struct page_ref r;
        if (!table_page_at(&shim.table, at[i], &r))
            continue;
        uintptr_t lo = a > r.addr ? a : r.addr;
        uintptr_t hi = end - r.addr > TABLE_PAGE_SIZE ? r.addr + TABLE_PAGE_SIZE : end;
        if (splits_an_arena(r, lo, hi)) {
            int e = give_to_kernel(r);
            if (e)
                return e;
        }
    }
    return 0;
}

/* Then, piece by piece: pieces outside the range and pages of the
 * kernel's go to the kernel; whole arenas in our pages are freed; free memory of ours is
 * unmapped already, as far as the caller can know. */
static int unmap_piece(const struct page_ref *r, uintptr_t lo, uintptr_t hi, void *ctx, bool *stop)
{
    (void)ctx, (void)stop;
    struct table *t = &shim.table;
    enum page_state state = r ? table_state(t, *r) : PAGE_KERNEL;
    if (state == PAGE_KERNEL)
        return os_next_munmap((void *)lo, hi - lo) ? -errno : 0;
    if (state == PAGE_FREE)
        return 0;
    for_each_slot(i, page_slots_touched(*r, lo, hi) & r->p->live)
        if (table_release_slot(t, *r, i) == RELEASE_UNMAP_PAGE)
            range_release_page(*r);
    return 0;
}

static int unmap_locked(uintptr_t a, uintptr_t end)
{
    if (!ends_in_address_space(end))
        return -EINVAL; /* the kernel's answer, asked: nothing changes */
    int e = give_cut_pages(a, end);
    return e ? e : each_piece(a, end, unmap_piece, NULL);
}

int prepare_munmap(void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr;
    size_t plen = round_len(a, len);
    if ((a & (OS_PAGE_SIZE - 1)) || plen == 0)
        return os_next_munmap(addr, len) ? -errno : 0; /* the kernel's EINVAL, untouched */
    if (in_shim)
        return -EAGAIN; /* a signal handler while this thread holds the lock */
    shim_lock();
    struct page_ref r;
    int e = 0;
    bool trim = false;
    switch (table_release(&shim.table, a, plen, &r)) {
    case RELEASE_KEPT: trim = heap_arenas_freed(plen); break;
    case RELEASE_UNMAP_PAGE:
        range_release_page(r);
        trim = heap_arenas_freed(plen);
        break;
    case RELEASE_NOT_SLOT: e = unmap_locked(a, a + plen); break;
    }
    report_sync();
    shim_unlock();
    if (trim)
        heap_trim(); /* CPython gave back many arenas: many objects died */
    return e;
}

/* ---- calls that change a range in place ------------------------------------- */

static int prepare_piece(const struct page_ref *r, uintptr_t lo, uintptr_t hi, void *ctx,
                         bool *stop)
{
    const enum hook_gaps *gaps = ctx;
    if (!r)
        return 0;
    bool gap = has_gap(*r, lo, hi);
    int e = give_to_kernel(*r);
    /* The kernel stops at that hole: the rest stays as it is. */
    *stop = gap && *gaps == HOOK_STOPS_AT_GAP;
    return e;
}

/* Under the lock: gives the pages [a, end) touches to the kernel. */
static int prepare_locked(uintptr_t a, uintptr_t end, enum hook_gaps gaps)
{
    return each_piece(a, end, prepare_piece, &gaps);
}

int prepare_call(void *addr, size_t len, enum hook_gaps gaps)
{
    uintptr_t a = (uintptr_t)addr;
    size_t plen = round_len(a, len);
    if ((a & (OS_PAGE_SIZE - 1)) || plen == 0 || !ends_in_address_space(a + plen))
        return 0; /* let the kernel give its own answer */
    if (in_shim)
        return -EAGAIN;
    shim_lock();
    int e = prepare_locked(a, a + plen, gaps);
    report_sync();
    shim_unlock();
    return e;
}

int prepare_map(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    int e = refuse_map(addr, len, prot, flags, fd, off);
    return e ? e : prepare_call(addr, len, HOOK_SKIPS_GAPS);
}

/* ---- mremap ------------------------------------------------------------------- */

/* The end of page p's slot that holds at. */
static uintptr_t slot_end(const struct page *p, uintptr_t at)
{
    return (at | (((uintptr_t)1 << p->shift) - 1)) + 1;
}

/* True when every slot that [a, a + len) touches is a live arena of ours:
 * in the plain world, arenas side by side, one mapping. */
static bool all_live_arenas(uintptr_t a, size_t len)
{
    uint32_t idx;
    for (uintptr_t at = a; at - a < len; at = slot_end(&shim.table.pages[idx], at))
        if (!table_live_at(&shim.table, at, &idx))
            return false;
    return true;
}

/* What mremap does with an old range of length olen <= nlen (a shrink is
 * dealt with before) that runs past its first mapping. */
enum remap_kind {
    REMAP_IN_PLACE, /* same length, not moved: the kernel does nothing */
    REMAP_AS_IS,    /* same length to MREMAP_FIXED: since 6.17 holes and all */
    REMAP_ONE,      /* grows, or moves with MREMAP_DONTUNMAP: one mapping only */
};

static enum remap_kind remap_kind(size_t olen, size_t nlen, int flags)
{
    if (olen != nlen)
        return REMAP_ONE;
    if (flags & MREMAP_FIXED)
        return REMAP_AS_IS;
    return flags & MREMAP_DONTUNMAP ? REMAP_ONE : REMAP_IN_PLACE;
}

/* A move as it is: every page of ours in the old range becomes plain
 * memory, if the range ends in the address space (or the kernel refuses). */
static int prepare_as_is(uintptr_t a, size_t olen)
{
    return ends_in_address_space(a + olen) ? prepare_locked(a, a + olen, HOOK_SKIPS_GAPS) : -EINVAL;
}

/* The old range of an mremap that starts in page r, where it starts a
 * mapping (starts_a_mapping): an arena of ours, or the kernel's page.
 * old_len 0 asks to duplicate a shared mapping: an arena is private
 * (EINVAL). In place at the same length the kernel does nothing, and
 * neither do we (*done). Otherwise an old range inside its arena: the page
 * goes to the kernel, which then moves or resizes it. One that runs past
 * its arena into live arenas only (one merged mapping on plain pages), or
 * that moves as it is: every page of ours it covers becomes plain memory
 * first, and the kernel answers. To grow across a free slot, or move with
 * MREMAP_DONTUNMAP alone, the kernel refuses (EFAULT: more than one
 * mapping, or a hole). */
static int prepare_old_range(struct page_ref r, uintptr_t a, size_t olen, enum remap_kind kind,
                             bool *done)
{
    if (table_state(&shim.table, r) == PAGE_KERNEL) /* the kernel's, but a move as it is takes ours */
        return kind == REMAP_AS_IS && olen ? prepare_as_is(a, olen) : 0;
    if (olen == 0)
        return -EINVAL;
    if (kind == REMAP_IN_PLACE) {
        *done = true;
        return 0;
    }
    if (olen <= slot_end(r.p, a) - a)
        return give_to_kernel(r);
    if (kind == REMAP_AS_IS)
        return prepare_as_is(a, olen);
    return all_live_arenas(a, olen) ? prepare_locked(a, a + olen, HOOK_SKIPS_GAPS) : -EFAULT;
}

/* Whether old_addr starts a mapping in the plain world: a live arena, the
 * kernel's memory in our range, or a mapping outside it. */
static bool starts_a_mapping(uintptr_t a)
{
    struct page_ref r;
    if (!table_page_at(&shim.table, a, &r))
        return os_is_mapped(a, OS_PAGE_SIZE);
    enum page_state state = table_state(&shim.table, r);
    return state == PAGE_KERNEL ||
           (page_serves(r.p) && state != PAGE_FREE && (r.p->live & (1u << ((a - r.addr) >> r.p->shift))));
}

/* An old range that starts outside the table, or in it. */
static int prepare_old(uintptr_t a, size_t olen, enum remap_kind kind, bool *done)
{
    struct page_ref r;
    if (table_page_at(&shim.table, a, &r))
        return prepare_old_range(r, a, olen, kind, done);
    if (olen == 0 || kind == REMAP_IN_PLACE || !range_overlaps((void *)a, olen))
        return 0;
    return kind == REMAP_AS_IS ? prepare_as_is(a, olen) : -EFAULT;
}

/* Whether the part [a, a + len) that an MREMAP_FIXED shrink keeps and
 * moves is one mapping in the plain world, as the kernel requires before
 * anything else (since 6.17 only that part; the tail may have holes):
 * within an arena or arenas side by side; within the kernel's pages of our
 * range (the kernel then judges); or outside our range. */
static bool kept_is_one_mapping(uintptr_t a, size_t len)
{
    const struct table *t = &shim.table;
    struct page_ref r;
    if (!table_page_at(t, a, &r))
        return !range_overlaps((void *)a, len);
    for (uintptr_t at = a; at - a < len; at = r.addr + TABLE_PAGE_SIZE) {
        if (!table_page_at(t, at, &r) || r.idx >= t->used)
            return false;
        if (r.p->state != PAGE_KERNEL)
            return at == a && all_live_arenas(a, len);
    }
    return true;
}

/* The kernel's checks before it acts (mm/mremap.c): the flags, the lengths
 * (page-rounded; the new one within the address space), the new range. */
static int refuse_remap(uintptr_t a, size_t old_len, size_t olen, size_t nlen, int flags,
                        uintptr_t n)
{
    bool fixed = flags & MREMAP_FIXED;
    if ((flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP)) ||
        (fixed && !(flags & MREMAP_MAYMOVE)) ||
        ((flags & MREMAP_DONTUNMAP) && (!(flags & MREMAP_MAYMOVE) || olen != nlen)) ||
        (a & (OS_PAGE_SIZE - 1)) || nlen == 0 || (old_len && olen == 0) ||
        !ends_in_address_space(nlen))
        return -EINVAL;
    if (fixed && ((n & (OS_PAGE_SIZE - 1)) || n + nlen < n || !ends_in_address_space(n + nlen) ||
                  (a + olen > n && n + nlen > a)))
        return -EINVAL;
    return 0;
}

int prepare_remap(void *old_addr, size_t *old_len, size_t new_len, int flags, void *new_addr,
                  bool *done)
{
    uintptr_t a = (uintptr_t)old_addr, n = (uintptr_t)new_addr;
    size_t olen = round_len(a, *old_len), nlen = round_len(0, new_len);
    bool fixed = flags & MREMAP_FIXED;
    *done = false;
    int e = refuse_remap(a, *old_len, olen, nlen, flags, n);
    if (e)
        return e;
    if (in_shim)
        return -EAGAIN;
    shim_lock();
    /* The old range must start in a mapping, or the kernel refuses (EFAULT)
     * before it touches anything. A shrink unmaps the old range's tail,
     * whatever lies there: in place, we do it as munmap would (whole
     * arenas freed, their pages kept; parts outside ours to the kernel),
     * and the kernel is left an old range of the new length. One that
     * moves (MREMAP_FIXED) must keep one mapping, checked first; then
     * every page of ours in the old range becomes plain memory and the
     * kernel does the rest. Otherwise the old range may run past its first
     * page, with holes, and reach into ours (6.17+ moves several mappings
     * at once as they are): see prepare_old_range. */
    if (!starts_a_mapping(a))
        e = -EFAULT;
    else if (olen > nlen && !fixed) {
        e = unmap_locked(a + nlen, a + olen);
        *old_len = olen = nlen;
    }
    if (e)
        goto out;
    if (olen <= nlen)
        e = prepare_old(a, olen, remap_kind(olen, nlen, flags), done);
    else if (!kept_is_one_mapping(a, nlen))
        e = -EFAULT;
    else if (!ends_in_address_space(a + olen))
        e = -EINVAL;
    else
        e = prepare_locked(a, a + olen, HOOK_SKIPS_GAPS);
    if (!e && !*done && fixed && range_overlaps(new_addr, nlen))
        e = prepare_locked(n, n + nlen, HOOK_SKIPS_GAPS);
out:
    report_sync();
    shim_unlock();
    return e;
}
