/*
 * A forked worker's copies of its parent's heap, on transparent huge pages.
 *
 * Before a one-thread parent forks, fork.c moves its hugetlb pages to
 * ordinary memory, so parent and child share them copy-on-write at 4 KiB
 * (FACTS.md, "Copy-on-write granularity"). A Python worker then writes
 * most of what it reads (reference counts, the collector): within minutes
 * a prefork worker holds a private 4 KiB copy of most of the master's
 * heap, with or without the shim, and those copies are 4 KiB pages.
 *
 * Where the child already owns nearly every 4 KiB piece of such a 2 MiB
 * page (pagemap bit 56, "exclusively mapped", set on its own copies and
 * clear on pieces still shared with the parent), MADV_COLLAPSE (6.1+)
 * puts the page on one transparent huge page: the pieces it owned are
 * replaced, the few still shared (at most 512 - COLLAPSE_MIN_PRIVATE) are
 * copied, which is the memory this costs. No pool page is involved (a THP
 * is never shared with the parent as a hugetlb page would be): no SIGBUS
 * risk, whatever the pool holds. The kernel copies under its own locks;
 * a failure (no huge page to be had) changes nothing.
 *
 * Done on the arena path, without a thread: at most every
 * COLLAPSE_INTERVAL_NS, COLLAPSE_SCAN pages are looked at (one 4 KiB read
 * of /proc/self/pagemap each) and at most COLLAPSE_BUDGET collapsed.
 */
#include "collapse.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>

#include "log.h"
#include "os.h"
#include "state.h"

/* A collapse takes 2 to 13 ms on this VM (a fresh huge page from the host,
 * FACTS.md): one per interval at most, on the arena path. */
#define COLLAPSE_INTERVAL_NS 10000000ull /* 10 ms */
#define COLLAPSE_SCAN 16u
#define COLLAPSE_BUDGET 1u
#define PIECES (TABLE_PAGE_SIZE / OS_PAGE_SIZE)
#define PM_PRESENT (1ull << 63)
#define PM_EXCLUSIVE (1ull << 56)

/* Under the shim's lock. */
static struct {
    bool on;            /* a child with inherited pages to watch */
    bool unsupported;   /* the kernel has no MADV_COLLAPSE (before 6.1) */
    uint32_t cursor;    /* the next page to look at */
    uint32_t collapsed; /* pages collapsed in this process */
    uint8_t done[32768 / 8]; /* bit per page: collapsed, or not to be tried again */
} c;

static bool is_done(uint32_t i) { return c.done[i / 8] & (1u << (i % 8)); }
static void set_done(uint32_t i) { c.done[i / 8] |= (uint8_t)(1u << (i % 8)); }

bool collapse_worth(const uint64_t *e, unsigned n)
{
    unsigned own = 0;
    for (unsigned i = 0; i < n; i++)
        own += (e[i] & (PM_PRESENT | PM_EXCLUSIVE)) == (PM_PRESENT | PM_EXCLUSIVE);
    return own >= COLLAPSE_MIN_PRIVATE;
}

static bool watched(uint32_t i)
{
    const struct page *p = &shim.table.pages[i];
    return i < sizeof c.done * 8 && p->retired && p->state == PAGE_THP && p->live && !is_done(i);
}

void collapse_child_start(void)
{
    for (uint32_t i = 0; i < sizeof c.done; i++)
        c.done[i] = 0;
    c.on = false;
    c.cursor = 0;
    c.collapsed = 0;
    for (uint32_t i = 0; i < shim.table.used && !c.on; i++)
        c.on = watched(i);
    collapse_due_ns = c.on && !c.unsupported ? 0 : UINT64_MAX;
}

/* Collapses page i if the child owns nearly all of it. True when it did. */
static bool try_page(int fd, uint32_t i)
{
    uint64_t e[PIECES];
    uintptr_t a = table_page_addr(&shim.table, i);
    if (os_pread_all(fd, e, sizeof e, (off_t)(a / OS_PAGE_SIZE * sizeof e[0])) != 0 ||
        !collapse_worth(e, PIECES))
        return false;
    uint64_t t0 = os_now_ns();
    int r = os_madvise((void *)a, TABLE_PAGE_SIZE, MADV_COLLAPSE);
    if (r == -EINVAL) {
        c.unsupported = true;
        log_info("no MADV_COLLAPSE in this kernel (6.1+): a worker's copies of its parent's heap "
                 "stay on 4 KiB pages");
        return false;
    }
    set_done(i); /* collapsed, or the kernel had no huge page: not again */
    if (r != 0) {
        log_debug("page %u not collapsed (errno %d)", i, -r);
        return false;
    }
    c.collapsed++;
    log_debug("page %u collapsed into a transparent huge page in %u us (%u so far)", i,
              (unsigned)((os_now_ns() - t0) / 1000), c.collapsed);
    return true;
}

uint64_t collapse_due_ns = UINT64_MAX;

void collapse_look(void)
{
    collapse_due_ns = os_now_ns() + COLLAPSE_INTERVAL_NS;
    int fd;
    if (os_open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0, &fd) != 0)
        return;
    uint32_t looked = 0, made = 0, left = 0;
    for (uint32_t n = 0; n < shim.table.used && looked < COLLAPSE_SCAN && made < COLLAPSE_BUDGET;
         n++) {
        uint32_t i = c.cursor;
        c.cursor = c.cursor + 1 < shim.table.used ? c.cursor + 1 : 0;
        if (!watched(i))
            continue;
        looked++;
        made += try_page(fd, i);
        if (c.unsupported)
            break;
    }
    os_close(fd);
    for (uint32_t i = 0; i < shim.table.used && !left; i++)
        left = watched(i);
    c.on = left && !c.unsupported;
    if (!c.on)
        collapse_due_ns = UINT64_MAX;
}
