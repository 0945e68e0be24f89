/*
 * madvise and prctl(PR_SET_VMA_ANON_NAME) on whole arenas of ours: the
 * caller gets what plain private anonymous pages give, and the arenas keep
 * their huge page (advice.h). The kernel judges the arguments first, on a
 * scratch page of plain private anonymous memory kept for the purpose: an
 * advice or a name it refuses there is refused for the arenas too, with
 * the same errno, and nothing changes.
 */
#include "advice.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "next.h"
#include "os.h"
#include "state.h"
#include "table.h"

/* What an advice does to plain private anonymous memory (mm/madvise.c),
 * and so what it takes to give the same on a whole arena of ours. */
enum kind {
    KIND_PLAIN_ONLY, /* an effect a huge page of ours cannot give: the general way */
    KIND_HINT,       /* no effect on contents: the kernel's answer, nothing else */
    KIND_ZEROES,     /* the arena reads as zeroes afterwards */
    KIND_REFUSED,    /* refused on anonymous memory: the kernel's error */
};

static enum kind kind_of(int advice)
{
    switch (advice) {
    /* Read-ahead, swap-in, reclaim and THP hints, KSM merging (contents
     * unchanged), faulting in (our pages are in already). MADV_FREE frees
     * lazily: until memory is short the old data stays, and reading it is
     * one of the outcomes plain pages give; pymalloc never relies on it. */
    case MADV_NORMAL:
    case MADV_RANDOM:
    case MADV_SEQUENTIAL:
    case MADV_WILLNEED:
    case MADV_HUGEPAGE:
    case MADV_NOHUGEPAGE:
    case MADV_MERGEABLE:
    case MADV_UNMERGEABLE:
    case MADV_FREE:
#ifdef MADV_COLD
    case MADV_COLD:
    case MADV_PAGEOUT:
#endif
#ifdef MADV_POPULATE_READ
    case MADV_POPULATE_READ:
    case MADV_POPULATE_WRITE:
#endif
        return KIND_HINT;
    /* Private anonymous memory reads as zeroes after these. */
    case MADV_DONTNEED:
#ifdef MADV_DONTNEED_LOCKED
    case MADV_DONTNEED_LOCKED:
#endif
        return KIND_ZEROES;
    /* Only for shared, writable file mappings (EINVAL on anonymous memory). */
    case MADV_REMOVE:
        return KIND_REFUSED;
    /* MADV_DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK (what a child sees),
     * DONTDUMP/DODUMP (what a core dump holds), HWPOISON, SOFT_OFFLINE,
     * guard regions, MADV_COLLAPSE (whose answer depends on the range's
     * alignment to 2 MiB, which no scratch page can tell), and advice this
     * file does not know: plain pages. */
    default:
        return KIND_PLAIN_ONLY;
    }
}

/* Under the lock: true when [a, end) is exactly a run of live arenas of
 * ours, each whole, side by side (one or several, on one page or more). */
static bool whole_arenas(uintptr_t a, uintptr_t end)
{
    for (uintptr_t at = a; at < end;) {
        uint32_t idx;
        if (!table_live_at(&shim.table, at, &idx))
            return false;
        uintptr_t slot = (uintptr_t)1 << shim.table.pages[idx].shift;
        if (at & (slot - 1) || end - at < slot)
            return false;
        at += slot;
    }
    return true;
}

/* [addr, addr + len) rounded to whole 4 KiB pages into *end; false when
 * the kernel would refuse it outright (unaligned, wrapping) or it is
 * empty: the general way then gives the kernel's own answer. */
static bool page_range(void *addr, size_t len, uintptr_t *end)
{
    uintptr_t a = (uintptr_t)addr;
    size_t r = (len + OS_PAGE_SIZE - 1) & ~(size_t)(OS_PAGE_SIZE - 1);
    if ((a & (OS_PAGE_SIZE - 1)) || r < len || r == 0 || a + r < a)
        return false;
    *end = a + r;
    return true;
}

int advice_madvise(void *addr, size_t len, int advice, bool *answered)
{
    enum kind k = kind_of(advice);
    uintptr_t a = (uintptr_t)addr, end;
    *answered = false;
    if (k == KIND_PLAIN_ONLY || !page_range(addr, len, &end) || in_shim)
        return 0;
    uintptr_t s;
    if (os_scratch_page(false, &s) != 0)
        return 0;
    shim_lock();
    int e = 0;
    if (whole_arenas(a, end)) {
        e = os_madvise((void *)s, OS_PAGE_SIZE, advice);
        /* Refused on the scratch page: refused here. Taken where a kernel
         * should refuse it: plain pages after all, the general way. */
        *answered = e != 0 || k != KIND_REFUSED;
        if (e == 0 && k == KIND_ZEROES)
            memset((void *)a, 0, end - a);
    }
    shim_unlock();
    if (*answered && e == 0)
        log_debug("madvise(%p, %zu KiB, %d) on whole arenas: %s, huge pages kept", addr,
                  (size_t)(end - a) >> 10, advice, k == KIND_ZEROES ? "zeroed" : "nothing to do");
    return e;
}

int advice_name(void *addr, size_t len, const char *name, bool *answered)
{
    *answered = false;
    uintptr_t s;
    if (in_shim || os_scratch_page(false, &s) != 0)
        return 0;
    /* The name first, as the kernel checks it before the range: a name it
     * refuses changes nothing, whatever the range holds. */
    int saved = errno;
    int e = os_next_prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, s, OS_PAGE_SIZE, (unsigned long)name)
                ? -errno
                : 0;
    errno = saved;
    if (e) {
        *answered = true;
        return e;
    }
    uintptr_t a = (uintptr_t)addr, end;
    if (!page_range(addr, len, &end))
        return 0;
    shim_lock();
    *answered = whole_arenas(a, end);
    shim_unlock();
    if (!*answered)
        return 0;
    /* A hugetlb mapping cannot be named, and naming part of a transparent
     * huge page's mapping splits the page: on plain pages the call would
     * succeed, so it does, and the arenas keep the shim's own naming. */
    log_debug("arenas at %p (%zu KiB) named \"%.79s\": accepted, not applied (huge pages kept)",
              addr, (size_t)(end - a) >> 10, name ? name : "");
    return 0;
}
