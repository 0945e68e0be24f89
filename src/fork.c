/*
 * After fork, parent and child share every private hugetlb page
 * copy-on-write, and only the parent holds reservations for them: the
 * first write by either side needs a free huge page, and with the pool
 * drained the kernel takes the page from the child, which dies of SIGBUS
 * when it next touches it (the README's "fork" section has the measured
 * case). So before fork() returns, no hugetlb page of the parent's arenas
 * may be left shared with the child:
 *
 *  - A process with one thread (every prefork server's master at fork
 *    time) moves its hugetlb pages to ordinary memory, marked for
 *    transparent huge pages, before the fork: with one thread and signals
 *    blocked nothing can write to them during the copy. The fork is then
 *    stock: the child shares the heap copy-on-write at 4 KiB, as it would
 *    without the shim, and the pool pages go back for new arenas. Only
 *    pages made since the last fork are moved again.
 *  - A process with other threads cannot move its pages (a thread writing
 *    without the GIL, os.read into a bytes object, would write into the
 *    old copy and be lost). It copies them into a snapshot just before the
 *    fork instead; the child moves the snapshot over its inherited pages
 *    before fork() returns in it, and the parent unmaps its side. The
 *    forking thread holds the GIL, so the snapshot is the heap as the child
 *    would have had it; writes without the GIL meanwhile only touch objects
 *    of threads the child does not have.
 *  - Where that memory cannot be had (RLIMIT_AS, out of memory), the child
 *    copies the pages left over itself, and stops with a message when it
 *    cannot: it never goes on sharing them.
 *
 * Nobody waits for anybody: a child stopped by a debugger holds no one up.
 * Signals are blocked from the prepare handler to the parent and child
 * handlers, so a signal handler cannot fork inside them; a fork from a
 * signal handler that interrupted the shim itself (the lock held by this
 * thread) is left alone: such a child may only exec or exit.
 */
#include "fork.h"

#include <errno.h>
#include <pthread.h>

#include "log.h"
#include "os.h"
#include "range.h"
#include "report.h"
#include "state.h"
#include "tiers.h"

/* Under the shim's lock, which the forking thread holds from prepare to the
 * parent and child handlers. */
static struct {
    uintptr_t snapshot;     /* the multi-threaded case: a copy per hugetlb page, in table order */
    uint32_t snapshot_pages;
    int error;              /* why memory could not be had, for the child's message */
} plan;

/* Per thread: a fork from a signal handler on another thread is another
 * thread's fork. */
static __thread sigset_t saved_mask;
static __thread bool holds_lock;

static bool is_hugetlb(uint32_t idx) { return shim.table.pages[idx].state == PAGE_HUGE; }

/* Page idx's arenas into new ordinary memory at the same address. */
static int move_to_ordinary(uint32_t idx)
{
    intptr_t tmp = tier_new_ordinary();
    if (os_failed(tmp))
        return (int)tmp;
    range_copy_live(idx, (uintptr_t)tmp);
    int e = range_move_over(idx, (uintptr_t)tmp);
    if (e < 0)
        return e;
    table_rebacked(&shim.table, idx, BACK_THP);
    return 0;
}

static void move_all(void)
{
    for (uint32_t i = 0; i < shim.table.used; i++) {
        if (!is_hugetlb(i))
            continue;
        int e = move_to_ordinary(i);
        if (e) {
            plan.error = -e;
            return;
        }
        shim.st.pages_forked++;
    }
    log_debug("fork: %lu huge pages moved to ordinary memory before fork (one thread)",
              (unsigned long)shim.st.pages_forked);
}

static void take_snapshot(void)
{
    uint32_t n = shim.table.held[BACK_HUGETLB];
    bool thp = shim.thp_usable && shim.opt.backend != BACKEND_HUGETLB;
    intptr_t r = os_map_anon((size_t)n << TABLE_PAGE_SHIFT, TABLE_PAGE_SIZE, thp);
    if (os_failed(r)) {
        plan.error = (int)-r;
        log_debug("fork: no memory for a snapshot of %u huge pages (errno %d); the child copies "
                  "them itself", n, plan.error);
        return;
    }
    plan.snapshot = (uintptr_t)r;
    plan.snapshot_pages = n;
    uint32_t k = 0;
    for (uint32_t i = 0; i < shim.table.used && k < n; i++)
        if (is_hugetlb(i))
            range_copy_live(i, plan.snapshot + ((uintptr_t)k++ << TABLE_PAGE_SHIFT));
}

static void fork_prepare(void)
{
    sigset_t old;
    os_block_signals(&old);
    saved_mask = old;
    holds_lock = !in_shim;
    if (!holds_lock)
        return;
    shim_lock();
    plan.snapshot = 0;
    plan.snapshot_pages = 0;
    plan.error = 0;
    if (shim.opt.fork != FORK_COPY || !shim.table.pages)
        return;
    int32_t cached;
    while ((cached = table_evict_cached(&shim.table, true, BACK_HUGETLB)) >= 0)
        range_release_page((uint32_t)cached); /* empty: back to the pool, not into the child */
    if (shim.table.held[BACK_HUGETLB] == 0)
        return;
    /* The count is read from /proc; without a descriptor left it is unknown,
     * and the snapshot, which needs none, is the safe way. */
    if (os_thread_count() == 1)
        move_all();
    else
        take_snapshot();
}

static void fork_parent(void)
{
    if (holds_lock) {
        if (plan.snapshot)
            os_munmap((void *)plan.snapshot, (size_t)plan.snapshot_pages << TABLE_PAGE_SHIFT);
        report_sync();
        shim_unlock();
    }
    os_restore_signals(&saved_mask);
}

/* Moves the snapshot over the inherited pages, then copies whatever is left. */
static void make_pages_own(void)
{
    uint32_t k = 0, copied = 0;
    for (uint32_t i = 0; i < shim.table.used; i++) {
        if (!is_hugetlb(i))
            continue;
        int e = -ENOMEM;
        if (k < plan.snapshot_pages) {
            e = range_move_over(i, plan.snapshot + ((uintptr_t)k++ << TABLE_PAGE_SHIFT));
            e = e < 0 ? e : 0;
            if (!e)
                table_rebacked(&shim.table, i, BACK_THP);
        }
        if (e) {
            e = move_to_ordinary(i);
            copied++;
        }
        if (e) {
            log_warn("fork: this child cannot have memory of its own for its parent's arenas on "
                     "huge pages (errno %d%s); it stops here rather than share them with its "
                     "parent (PYHUGE_FORK=share takes that risk instead)",
                     -e, plan.error ? ", and RLIMIT_AS or memory refused a snapshot" : "");
            os_abort();
        }
    }
    if (copied)
        log_debug("fork: child copied %u huge pages itself", copied);
}

static void fork_child(void)
{
    if (holds_lock) {
        report_child();
        make_pages_own();
        shim.hugetlb_wait = (struct backoff){0};
        report_sync();
        shim_unlock();
    }
    os_restore_signals(&saved_mask);
}

void fork_register(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }
