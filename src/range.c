#include "range.h"

#include <errno.h>
#include <fcntl.h>
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
 * at least 32 MiB. Under a finite RLIMIT_AS, where every reserved byte
 * counts whether used or not, a step is at most a sixteenth of the room
 * left under the limit (at least 8 MiB), so that a process can use nearly
 * all the room stock Python would have. A refused step is halved down to
 * one page, so a process at its limit gets exactly the pages it uses. */
#define RANGE_MIN_STEP 16u
#define RANGE_TIGHT_STEP 4u

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

/* How many pages of address space the range may hold unused: no bound
 * without RLIMIT_AS; under it, a sixteenth of the room left (at least
 * RANGE_TIGHT_STEP pages). */
static uint64_t unused_allowance(void)
{
    uint64_t limit = os_as_limit();
    if (limit == UINT64_MAX)
        return UINT64_MAX;
    int64_t vm = os_vm_size(); /* unknown (no descriptor left): no room */
    uint64_t room = vm >= 0 && (uint64_t)vm < limit ? limit - (uint64_t)vm : 0;
    uint64_t pages = (room / 16) >> TABLE_PAGE_SHIFT;
    return pages > RANGE_TIGHT_STEP ? pages : RANGE_TIGHT_STEP;
}

static bool range_grow(void)
{
    struct table *t = &shim.table;
    if (shim.range_full)
        return false;
    uint32_t step = t->npages / 4 > RANGE_MIN_STEP ? t->npages / 4 : RANGE_MIN_STEP;
    uint64_t allowed = unused_allowance();
    if (step > allowed)
        step = (uint32_t)allowed;
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
            shim.range_full = true; /* for good: not tried again at each new arena */
            log_info("the shim's range is full (%u extents, %u pages)", t->nextents, t->npages);
            return false;
        }
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
    /* MAP_FIXED over our own page: replaced in one step, never a hole.
     * Under a finite RLIMIT_AS, where reserved address space counts as if
     * used, a page past the unused allowance goes back to the kernel
     * instead, as a freed arena does without the shim (the range grows
     * again when it must, into such holes too). */
    if (table_free_pages(&shim.table) > unused_allowance() || os_reserve(pa, TABLE_PAGE_SIZE) != 0) {
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
        log_fatal("a failed mremap (errno %d) left a hole at %p that another mapping took; "
                 "the memory of the arenas there is lost: aborting", (int)-r, (void *)to);
        os_abort();
    }
    memcpy((void *)to, (void *)from, TABLE_PAGE_SIZE);
    os_munmap((void *)from, TABLE_PAGE_SIZE);
    return RANGE_COPIED;
}

int range_replace_in_place(uint32_t idx, bool thp)
{
    uintptr_t pa = table_page_addr(&shim.table, idx);
    intptr_t r = os_mmap((void *)pa, TABLE_PAGE_SIZE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (os_failed(r) && !os_is_mapped(pa, TABLE_PAGE_SIZE)) {
        log_fatal("the kernel unmapped huge page %u and mapped nothing in its place (errno %d): "
                  "its arenas cannot be put back: aborting", idx, (int)-r);
        os_abort();
    }
    if (os_failed(r))
        return (int)r;
    if (thp)
        os_madvise((void *)pa, TABLE_PAGE_SIZE, MADV_HUGEPAGE);
    return 0;
}

/* Page idx's live slots written to fd (out) or read back from it, each at
 * its offset in the page. */
static int transfer_live(uint32_t idx, int fd, bool out)
{
    const struct page *p = &shim.table.pages[idx];
    char *pa = (char *)table_page_addr(&shim.table, idx);
    size_t slot = (size_t)1 << p->shift;
    for (unsigned i = 0; i < page_slots(p); i++) {
        if (!(p->live & (1u << i)))
            continue;
        off_t off = (off_t)(i * slot);
        int e = out ? os_pwrite_all(fd, pa + off, slot, off) : os_pread_all(fd, pa + off, slot, off);
        if (e)
            return e;
    }
    return 0;
}

int range_move_through_file(uint32_t idx, bool thp)
{
    /* A write past RLIMIT_FSIZE, even to a memfd, fails with EFBIG and
     * raises SIGXFSZ, which kills a process that does not ignore it. */
    if (os_fsize_limit() < TABLE_PAGE_SIZE)
        return -EFBIG;
    int fd = os_memfd("pyhuge-move");
    if (fd < 0)
        return fd;
    int e = transfer_live(idx, fd, true);
    /* No signal handler may run while the page holds nothing. */
    sigset_t saved;
    os_block_signals(&saved);
    if (e == 0)
        e = range_replace_in_place(idx, thp);
    if (e == 0) {
        int r = transfer_live(idx, fd, false);
        if (r) {
            log_fatal("the arenas of huge page %u could not be read back from the file they "
                      "were moved through (errno %d): aborting", idx, -r);
            os_abort();
        }
        log_debug("huge page %u moved to ordinary memory through a file (no room for a copy)", idx);
    }
    os_restore_signals(&saved);
    os_close(fd);
    return e;
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
        if (!os_failed(tmp)) {
            range_copy_live(idx, (uintptr_t)tmp);
            int e = range_move_over(idx, (uintptr_t)tmp);
            if (e < 0)
                return e;
        } else if (os_thread_count() != 1 || range_move_through_file(idx, false) != 0) {
            /* No room for a copy (RLIMIT_AS, RLIMIT_DATA): in place through
             * a file, with one thread only, since the arenas hold nothing
             * for a moment. */
            return (int)tmp;
        }
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

/* ---- walking a range ------------------------------------------------------ */

/* Calls fn on each piece of [a, end): the part of one page of the range
 * (inside, with its index), or a stretch outside the range. Stops at the
 * first nonzero return, and returns it. */
typedef int (*piece_fn)(bool inside, uint32_t idx, uintptr_t lo, uintptr_t hi, void *ctx);

static int each_piece(uintptr_t a, uintptr_t end, piece_fn fn, void *ctx)
{
    for (uintptr_t p = a; p < end;) {
        bool inside;
        uintptr_t q = table_piece(&shim.table, p, end, &inside);
        while (inside && p < q) {
            uint32_t idx;
            table_lookup(&shim.table, p, &idx);
            uintptr_t page_end = (p & ~(TABLE_PAGE_SIZE - 1)) + TABLE_PAGE_SIZE;
            uintptr_t seg = q < page_end ? q : page_end;
            int r = fn(true, idx, p, seg, ctx);
            if (r)
                return r;
            p = seg;
        }
        if (!inside) {
            int r = fn(false, 0, p, q, ctx);
            if (r)
                return r;
        }
        p = q;
    }
    return 0;
}

/* True when [lo, hi) inside page idx holds part of an arena but not all
 * of it. */
static bool splits_an_arena(uint32_t idx, uintptr_t lo, uintptr_t hi)
{
    const struct page *p = &shim.table.pages[idx];
    if (idx >= shim.table.used || !page_serves(p))
        return false;
    uintptr_t pa = table_page_addr(&shim.table, idx);
    size_t slot = (size_t)1 << p->shift;
    unsigned first = (unsigned)((lo - pa) >> p->shift), last = (unsigned)((hi - 1 - pa) >> p->shift);
    for (unsigned i = first; i <= last; i++) {
        uintptr_t s_lo = pa + i * slot, s_hi = s_lo + slot;
        if ((p->live & (1u << i)) && (lo > s_lo || hi < s_hi))
            return true;
    }
    return false;
}

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

/* The first pass: pages where part of an arena goes become plain memory
 * (the only step that can fail, for want of memory), before anything is
 * unmapped. */
static int unmap_prepare_piece(bool inside, uint32_t idx, uintptr_t lo, uintptr_t hi, void *ctx)
{
    (void)ctx;
    return inside && splits_an_arena(idx, lo, hi) ? range_give_to_kernel(idx) : 0;
}

/* The second: pieces outside the range and pages of the kernel's go to
 * the kernel; whole arenas in our pages are freed; free memory of ours is
 * unmapped already, as far as the caller can know. */
static int unmap_piece(bool inside, uint32_t idx, uintptr_t lo, uintptr_t hi, void *ctx)
{
    (void)ctx;
    struct table *t = &shim.table;
    struct page *p = &t->pages[idx];
    if (!inside || (idx < t->used && p->state == PAGE_KERNEL))
        return os_next_munmap((void *)lo, hi - lo) ? -errno : 0;
    if (idx >= t->used || p->state == PAGE_FREE)
        return 0;
    uintptr_t pa = table_page_addr(t, idx);
    size_t slot = (size_t)1 << p->shift;
    unsigned first = (unsigned)((lo - pa) >> p->shift), last = (unsigned)((hi - 1 - pa) >> p->shift);
    for (unsigned i = first; i <= last && page_serves(p); i++) {
        uint32_t same;
        if ((p->live & (1u << i)) &&
            table_release(t, pa + i * slot, slot, &same) == RELEASE_UNMAP_PAGE)
            range_release_page(idx);
    }
    return 0;
}

static int unmap_locked(uintptr_t a, uintptr_t end)
{
    if (!ends_in_address_space(end))
        return -EINVAL; /* the kernel's answer, asked: nothing changes */
    int e = each_piece(a, end, unmap_prepare_piece, NULL);
    return e ? e : each_piece(a, end, unmap_piece, NULL);
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

struct prepare {
    enum hook_gaps gaps;
    bool stopped;
};

static int prepare_piece(bool inside, uint32_t idx, uintptr_t lo, uintptr_t hi, void *ctx)
{
    struct prepare *pr = ctx;
    if (!inside)
        return 0;
    bool gap = has_gap(idx, lo, hi);
    int e = range_give_to_kernel(idx);
    if (e)
        return e;
    /* The kernel stops at that hole: the rest stays as it is. */
    pr->stopped = gap && pr->gaps == HOOK_STOPS_AT_GAP;
    return pr->stopped;
}

/* Under the lock: gives the pages [a, end) touches to the kernel. */
static int prepare_locked(uintptr_t a, uintptr_t end, enum hook_gaps gaps)
{
    struct prepare pr = {.gaps = gaps};
    int e = each_piece(a, end, prepare_piece, &pr);
    return pr.stopped ? 0 : e;
}

int range_prepare(void *addr, size_t len, enum hook_gaps gaps)
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

/* Before a MAP_FIXED over arenas touches one, ask the kernel whether it
 * would take the mapping at all: the same call at an address of its choosing
 * meets every refusal that does not depend on the address (an unaligned
 * offset, an unknown MAP_SHARED_VALIDATE flag, a file that cannot be
 * mapped), and one that does: a hugetlb mapping's alignment. A probe that
 * fails for want of room (ENOMEM: RLIMIT_AS, a drained pool) proves
 * nothing, since the real call replaces memory instead of adding it. */
static int probe_map(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (flags & MAP_HUGETLB) {
        unsigned bits = ((unsigned)flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
        uintptr_t align = bits ? (uintptr_t)1 << bits : TABLE_PAGE_SIZE;
        if ((uintptr_t)addr & (align - 1))
            return -EINVAL;
    }
    int f = flags & ~(MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_POPULATE | MAP_LOCKED);
    intptr_t r = os_mmap(NULL, len, prot, f, fd, off);
    if (os_failed(r))
        return r == -ENOMEM ? 0 : (int)r;
    os_munmap((void *)r, len);
    return 0;
}

int range_prepare_map(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    int e = probe_map(addr, len, prot, flags, fd, off);
    if (e)
        return e;
    /* The kernel's checks before it replaces anything (mm/mmap.c), for when
     * the probe found no room: a known mapping type, and a file open for
     * what the mapping asks. */
    int type = flags & MAP_TYPE;
    if (type != MAP_SHARED && type != MAP_PRIVATE && type != MAP_SHARED_VALIDATE && type != 0x08)
        return -EINVAL; /* 0x08: MAP_DROPPABLE, kernel 6.11+ */
    if (!(flags & MAP_ANONYMOUS)) {
        int fl = os_fd_flags(fd);
        if (fl < 0)
            return -EBADF;
        if ((fl & O_ACCMODE) == O_WRONLY ||
            (type != MAP_PRIVATE && (prot & PROT_WRITE) && (fl & O_ACCMODE) != O_RDWR))
            return -EACCES;
    }
    return range_prepare(addr, len, HOOK_SKIPS_GAPS);
}

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

/* The old range of an mremap that starts in page idx, where it starts a
 * mapping (starts_a_mapping): an arena of ours, or the kernel's page.
 * old_len 0 asks to duplicate a shared mapping: an arena is private
 * (EINVAL). In place at the same length the kernel does nothing, and
 * neither do we. Otherwise an old range inside its arena: the page goes to
 * the kernel, which then moves or resizes it. One that runs past its arena
 * into live arenas only (one merged mapping on plain pages), or that moves
 * as it is: every page of ours it covers becomes plain memory first, and
 * the kernel answers. To grow across a free slot, or move with
 * MREMAP_DONTUNMAP alone, the kernel refuses (EFAULT: more than one
 * mapping, or a hole). */
static int prepare_old_range(uint32_t idx, uintptr_t a, size_t olen, enum remap_kind kind)
{
    const struct page *p = &shim.table.pages[idx];
    if (p->state == PAGE_KERNEL) /* the kernel's own, but a move as it is takes ours along */
        return kind == REMAP_AS_IS && olen ? prepare_as_is(a, olen) : 0;
    if (olen == 0)
        return -EINVAL;
    if (kind == REMAP_IN_PLACE)
        return RANGE_REMAP_DONE;
    if (olen <= slot_end(p, a) - a)
        return range_give_to_kernel(idx);
    if (kind == REMAP_AS_IS)
        return prepare_as_is(a, olen);
    return all_live_arenas(a, olen) ? prepare_locked(a, a + olen, HOOK_SKIPS_GAPS) : -EFAULT;
}

/* Whether old_addr starts a mapping in the plain world: a live arena, the
 * kernel's memory in our range, or a mapping outside it. */
static bool starts_a_mapping(uintptr_t a)
{
    uint32_t idx;
    if (!table_lookup(&shim.table, a, &idx))
        return os_is_mapped(a, OS_PAGE_SIZE);
    return (idx < shim.table.used && shim.table.pages[idx].state == PAGE_KERNEL) ||
           table_live_at(&shim.table, a, &idx);
}

/* An old range that starts outside the table, or in it. */
static int prepare_old(uintptr_t a, size_t olen, enum remap_kind kind)
{
    uint32_t idx;
    if (table_lookup(&shim.table, a, &idx))
        return prepare_old_range(idx, a, olen, kind);
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
    uint32_t idx;
    if (!table_lookup(&shim.table, a, &idx))
        return !range_overlaps((void *)a, len);
    for (uintptr_t at = a; at - a < len; at = table_page_addr(&shim.table, idx) + TABLE_PAGE_SIZE) {
        if (!table_lookup(&shim.table, at, &idx) || idx >= shim.table.used)
            return false;
        if (shim.table.pages[idx].state != PAGE_KERNEL)
            return at == a && all_live_arenas(a, len);
    }
    return true;
}

int range_prepare_remap(void *old_addr, size_t *old_len, size_t new_len, int flags, void *new_addr)
{
    uintptr_t a = (uintptr_t)old_addr, n = (uintptr_t)new_addr;
    size_t olen = round_len(a, *old_len), nlen = round_len(0, new_len);
    bool fixed = flags & MREMAP_FIXED;
    /* The kernel's checks before it acts (mm/mremap.c): the flags, the
     * lengths (page-rounded; the new one within the address space), the
     * new range. */
    if ((flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP)) ||
        (fixed && !(flags & MREMAP_MAYMOVE)) ||
        ((flags & MREMAP_DONTUNMAP) && (!(flags & MREMAP_MAYMOVE) || olen != nlen)) ||
        (a & (OS_PAGE_SIZE - 1)) || nlen == 0 || (*old_len && olen == 0) ||
        !ends_in_address_space(nlen))
        return -EINVAL;
    if (fixed && ((n & (OS_PAGE_SIZE - 1)) || n + nlen < n || !ends_in_address_space(n + nlen) ||
                  (a + olen > n && n + nlen > a)))
        return -EINVAL;
    if (in_shim)
        return -EAGAIN;
    shim_lock();
    int e = 0;
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
        e = prepare_old(a, olen, remap_kind(olen, nlen, flags));
    else if (!kept_is_one_mapping(a, nlen))
        e = -EFAULT;
    else if (!ends_in_address_space(a + olen))
        e = -EINVAL;
    else
        e = prepare_locked(a, a + olen, HOOK_SKIPS_GAPS);
    if (!e && fixed && range_overlaps(new_addr, nlen))
        e = prepare_locked(n, n + nlen, HOOK_SKIPS_GAPS);
out:
    report_sync();
    shim_unlock();
    return e;
}
