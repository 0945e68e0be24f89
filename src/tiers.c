/*
 * Where a page's memory comes from (tiers.h): a hugetlb page of the pool,
 * reserved and faulted in before use; else ordinary memory marked for a
 * transparent huge page; else nothing (the arena goes to ordinary pages).
 * Owns the doubling waits after a refusal and the reason each fallback
 * counts under.
 */
#include "tiers.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "os.h"
#include "move.h"
#include "state.h"

/* After the kernel refuses a huge page, the next try waits 1 ms, doubling
 * up to 1 s; a page we give back to the pool ends the wait. */
#define HUGETLB_WAIT_MIN_NS 1000000ull
#define HUGETLB_WAIT_MAX_NS 1000000000ull
/* A THP fault may stop the process while the kernel compacts memory
 * (defrag=always or madvise): one that takes longer than
 * PYHUGE_THP_STALL_US pauses the tier, for 1 s at first, doubling up to
 * 64 s while faults stay slow; arenas go to ordinary pages meanwhile. A
 * fault within the limit ends the doubling. */
#define THP_PAUSE_MIN_NS 1000000000ull
#define THP_PAUSE_MAX_NS 64000000000ull

/* ---- the doubling wait ------------------------------------------------------ */

static bool backoff_waiting(const struct backoff *b)
{
    return b->until_ns && os_now_ns() < b->until_ns;
}

/* Starts the next wait: min at first, doubling up to max. Returns its length. */
static uint64_t backoff_hit(struct backoff *b, uint64_t min_ns, uint64_t max_ns)
{
    b->step_ns = b->step_ns ? b->step_ns * 2 : min_ns;
    if (b->step_ns > max_ns)
        b->step_ns = max_ns;
    b->until_ns = os_now_ns() + b->step_ns;
    return b->step_ns;
}

static void backoff_clear(struct backoff *b) { *b = (struct backoff){0}; }

void tier_page_returned(void) { shim.hugetlb_wait.until_ns = 0; }

void tier_child_forgets_waits(void) { backoff_clear(&shim.hugetlb_wait); }

void tier_detect(void)
{
    if (shim.opt.backend == BACKEND_HUGETLB)
        return;
    char buf[128];
    const char *path = "/sys/kernel/mm/transparent_hugepage/enabled";
    size_t n;
    bool known = os_read_file(path, buf, sizeof buf, &n) == 0 && n > 0;
    shim.thp_usable = known && !strstr(buf, "[never]");
    if (!shim.thp_usable)
        log_info("no THP tier: transparent huge pages are %s",
                 known ? "off (transparent_hugepage/enabled is [never])" : "not in this kernel");
}

/* Why an anonymous mapping was refused: address space (RLIMIT_AS,
 * RLIMIT_DATA, vm.max_map_count), asked of the kernel with a mapping that
 * needs nothing but those, or else the huge page pool. */
static int refusal_reason(void)
{
    uintptr_t probe;
    if (os_mmap(NULL, TABLE_PAGE_SIZE, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &probe) != 0)
        return PYHUGE_FALLBACK_SPACE;
    os_munmap((void *)probe, TABLE_PAGE_SIZE);
    return PYHUGE_FALLBACK_POOL;
}

/* Moves a new page's memory from tmp into FREE page idx. False when it
 * could not: the page is address space again, or the kernel's when not
 * even that could be put back. */
static bool place(uint32_t idx, uintptr_t tmp)
{
    struct page_ref r = table_page(&shim.table, idx);
    bool copied;
    int e = move_over(r, tmp, &copied);
    if (e == 0 && !copied)
        return true;
    if (copied && os_reserve(r.addr, TABLE_PAGE_SIZE) != 0) {
        os_munmap((void *)r.addr, TABLE_PAGE_SIZE);
        table_give_to_kernel(&shim.table, idx);
    }
    return false;
}

/* ---- the hugetlb tier ------------------------------------------------------- */

/* A new hugetlb page where the kernel likes, reserved and faulted in, at
 * *at: 0, or -ENOMEM with *reason set. Never MAP_NORESERVE: without
 * it the kernel reserves the page at mmap time and says ENOMEM cleanly
 * instead of SIGBUS later. MAP_PRIVATE, as plain memory is: it counts
 * against RLIMIT_DATA and goes into core dumps (the default
 * coredump_filter leaves shared hugetlb out); fork.c keeps children off
 * these pages. */
static int new_hugetlb(uintptr_t *at, int *reason)
{
    uintptr_t r;
    int e = os_mmap(NULL, TABLE_PAGE_SIZE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0, &r);
    if (e) {
        *reason = refusal_reason();
        log_debug("hugetlb mmap refused (errno %d)", -e);
        return -ENOMEM;
    }
    /* A hugetlb cgroup's fault-time limit lets the mmap succeed and kills
     * the first touch with SIGBUS; populating now turns that into an error
     * while falling back is still possible (kernel 5.14+). */
    if (!shim.populate_unsupported) {
        do
            e = os_madvise((void *)r, TABLE_PAGE_SIZE, MADV_POPULATE_WRITE);
        while (e == -EINTR);
        if (e == -EINVAL) {
            shim.populate_unsupported = true;
            log_info("MADV_POPULATE_WRITE unsupported (kernel before 5.14): a hugetlb cgroup "
                     "fault limit cannot be detected at allocation time");
        } else if (e != 0) {
            log_debug("huge page could not be faulted in (errno %d)", -e);
            os_munmap((void *)r, TABLE_PAGE_SIZE);
            *reason = PYHUGE_FALLBACK_FAULT;
            return -ENOMEM;
        }
    }
    *at = r;
    return 0;
}

int tier_new_hugetlb(uintptr_t *at)
{
    int reason;
    if (shim.opt.backend == BACKEND_THP || shim.table.held[BACK_HUGETLB] >= shim.opt.max_pages)
        return -ENOMEM;
    return new_hugetlb(at, &reason);
}

/* True, with the reason, when the hugetlb tier is not to be asked now: off
 * (PYHUGE_BACKEND=thp), at PYHUGE_MAX_PAGES, or waiting after a refusal
 * (then the refusal's cause, not the wait: a dry pool says pool). */
static bool hugetlb_closed(int *reason)
{
    if (shim.opt.backend == BACKEND_THP)
        *reason = PYHUGE_FALLBACK_THP;
    else if (shim.table.held[BACK_HUGETLB] >= shim.opt.max_pages)
        *reason = PYHUGE_FALLBACK_CAP;
    else if (backoff_waiting(&shim.hugetlb_wait))
        *reason = shim.hugetlb_refusal;
    else
        return false;
    return true;
}

/* 0, or -ENOMEM with *reason saying why not. The page is made elsewhere and
 * moved into place:
 * a MAP_FIXED hugetlb mmap over our range that fails (as it does whenever
 * the pool is empty) can leave a hole, and another thread's mmap could land
 * in it before we fill it again. mremap replaces the reserved space in one
 * step. */
static int add_hugetlb(uint32_t idx, int cls, int *reason)
{
    if (hugetlb_closed(reason))
        return -ENOMEM;
    uintptr_t tmp;
    int e = new_hugetlb(&tmp, reason);
    if (e == 0 && !place(idx, tmp)) {
        e = -ENOMEM;
        *reason = refusal_reason();
    }
    if (e) {
        backoff_hit(&shim.hugetlb_wait, HUGETLB_WAIT_MIN_NS, HUGETLB_WAIT_MAX_NS);
        shim.hugetlb_refusal = *reason;
        return e;
    }
    backoff_clear(&shim.hugetlb_wait);
    table_add_page(&shim.table, idx, cls, BACK_HUGETLB);
    log_debug("huge page %u backed at %p", idx, (void *)table_page_addr(&shim.table, idx));
    return 0;
}

/* ---- the THP tier ------------------------------------------------------------ */

static void note_thp_fault(uint64_t took_ns)
{
    uint64_t limit = shim.opt.thp_stall_us * 1000;
    if (!limit)
        return;
    if (took_ns <= limit) {
        backoff_clear(&shim.thp_wait);
        return;
    }
    uint64_t pause = backoff_hit(&shim.thp_wait, THP_PAUSE_MIN_NS, THP_PAUSE_MAX_NS);
    log_info("a transparent huge page took %u us to fault in (limit %u us, "
             "PYHUGE_THP_STALL_US): THP tier paused for %u s",
             (unsigned)(took_ns / 1000), (unsigned)shim.opt.thp_stall_us,
             (unsigned)(pause / 1000000000ull));
}

bool tier_thp_wanted(void) { return shim.thp_usable && shim.opt.backend != BACKEND_HUGETLB; }

int tier_new_ordinary(uintptr_t *at)
{
    int e = os_map_anon(TABLE_PAGE_SIZE, TABLE_PAGE_SIZE, tier_thp_wanted(), at);
    if (e) /* aligning needs 2 MiB more address space for a moment */
        e = os_map_anon(TABLE_PAGE_SIZE, OS_PAGE_SIZE, false, at);
    return e;
}

/* Ordinary memory, 2 MiB-aligned, marked MADV_HUGEPAGE, so that the kernel
 * maps it with one transparent huge page when it has one. A 1 MiB arena on
 * its own never gets one: a THP needs a whole aligned 2 MiB inside one
 * MADV_HUGEPAGE mapping. Moved into place, as hugetlb pages are, so the
 * range never has a hole. 0, or -ENOMEM with *reason saying why not. */
static int add_thp(uint32_t idx, int cls, int *reason)
{
    *reason = PYHUGE_FALLBACK_THP;
    if (!tier_thp_wanted())
        return -ENOMEM;
    if (backoff_waiting(&shim.thp_wait)) {
        *reason = PYHUGE_FALLBACK_BACKOFF;
        return -ENOMEM;
    }
    uintptr_t tmp;
    int e = os_map_anon(TABLE_PAGE_SIZE, OS_PAGE_SIZE, false, &tmp);
    if (e == 0 && !place(idx, tmp))
        e = refusal_reason() == PYHUGE_FALLBACK_SPACE ? -ENOMEM : -EAGAIN;
    if (e) {
        if (e == -ENOMEM)
            *reason = PYHUGE_FALLBACK_SPACE;
        return -ENOMEM;
    }
    uintptr_t a = table_page_addr(&shim.table, idx);
    os_madvise((void *)a, TABLE_PAGE_SIZE, MADV_HUGEPAGE);
    /* Fault it in now, in one go: one huge page where the kernel has one
     * (with defrag=madvise it may compact memory for it first), 4 KiB pages
     * where it has none; ENOMEM here is a clean fallback. */
    uint64_t t0 = os_now_ns();
    e = os_madvise((void *)a, TABLE_PAGE_SIZE, MADV_POPULATE_WRITE);
    note_thp_fault(os_now_ns() - t0);
    if (e && e != -EINVAL) {
        if (os_reserve(a, TABLE_PAGE_SIZE) != 0) {
            os_munmap((void *)a, TABLE_PAGE_SIZE);
            table_give_to_kernel(&shim.table, idx);
        }
        return -ENOMEM;
    }
    table_add_page(&shim.table, idx, cls, BACK_THP);
    log_debug("THP page %u backed at %p", idx, (void *)a);
    return 0;
}

/* The reason that says most: address space refused is the root of any
 * other refusal; then why the pool gave no page; the THP tier's own
 * reason (a pause, none to be had) only where the pool was not asked. */
int tier_back_page(uint32_t idx, int cls, int *reason)
{
    int why, thp;
    if (add_hugetlb(idx, cls, &why) == 0)
        return 0;
    thp = why;
    if (shim.table.pages[idx].state == PAGE_FREE && add_thp(idx, cls, &thp) == 0)
        return 0;
    if (thp == PYHUGE_FALLBACK_SPACE ||
        (thp == PYHUGE_FALLBACK_BACKOFF && why == PYHUGE_FALLBACK_THP))
        why = thp;
    if (shim.table.pages[idx].state == PAGE_FREE)
        table_put_free(&shim.table, idx);
    *reason = why;
    return -ENOMEM;
}
