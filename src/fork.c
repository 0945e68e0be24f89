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
 *    old copy and be lost). It keeps a shadow of each hugetlb page in
 *    ordinary memory instead, brought up to date just before each fork
 *    (only the 4 KiB pieces that changed are written), and the child moves
 *    the shadows over its inherited pages before fork() returns in it. The
 *    children of one parent thus share the shadows copy-on-write, with each
 *    other and with the parent, as stock children share a heap: the price
 *    is one copy of the hugetlb heap, not one per child. The forking thread
 *    holds the GIL, so a shadow is the heap as the child would have had it;
 *    writes without the GIL meanwhile only touch objects of threads the
 *    child does not have. Shadows not used by a fork for SHADOW_KEEP_NS go
 *    at the next new arena.
 *  - Where the memory for a move or a snapshot cannot be had (RLIMIT_AS,
 *    out of memory), the child stops at once with a message (SIGABRT): it
 *    cannot copy the pages itself, because until it has, a parent writing
 *    into a drained pool takes them from under it (measured: SIGBUS). With
 *    one thread a move needs no address space or RLIMIT_DATA room: it goes
 *    through a free page of the range, or else through a memfd (one file
 *    descriptor too many, at RLIMIT_NOFILE as well, stops the child).
 *
 * Nobody waits for anybody: a child stopped by a debugger holds no one up.
 * Signals are blocked from the prepare handler to the parent and child
 * handlers, so a signal handler cannot fork inside them; a fork from a
 * signal handler that interrupted the shim itself (the lock held by this
 * thread) is left alone: such a child may only exec or exit.
 */
#include "fork.h"

#include <errno.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>

#include "collapse.h"
#include "log.h"
#include "os.h"
#include "move.h"
#include "range.h"
#include "report.h"
#include "state.h"
#include "tiers.h"

#define SHADOW_KEEP_NS 10000000000ull

/* Under the shim's lock, which the forking thread holds from prepare to the
 * parent and child handlers. */
static struct {
    bool own;               /* the child must end up with no hugetlb page of the parent's */
    int error;              /* why memory could not be had, for the child's message */
    uintptr_t *shadow;      /* by page index: its shadow, or 0 (mapped at the first need) */
    uint32_t shadows;       /* how many are mapped */
} plan;

/* Per thread: a fork from a signal handler on another thread is another
 * thread's fork. Initial-exec, as in_shim: reading them never allocates. */
static __thread sigset_t saved_mask __attribute__((tls_model("initial-exec")));
static __thread bool holds_lock __attribute__((tls_model("initial-exec")));

static bool is_hugetlb(uint32_t idx) { return shim.table.pages[idx].state == PAGE_HUGE; }

/* With one thread and no room for a copy elsewhere (RLIMIT_AS or
 * RLIMIT_DATA at their limits): through a FREE page of the range, which is
 * address space already, made shared anonymous memory (which RLIMIT_DATA
 * does not count). Page idx holds no data for a moment, which nobody can
 * see: one thread, signals blocked. */
static int move_through_free_page(uint32_t idx)
{
    uint32_t f;
    if (!table_claim_free(&shim.table, &f))
        return -ENOMEM;
    uintptr_t fa = table_page_addr(&shim.table, f), pa = table_page_addr(&shim.table, idx);
    uintptr_t at;
    int r = os_mmap((void *)fa, TABLE_PAGE_SIZE, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0, &at);
    if (r) {
        /* Kernels before 6.12 unmap first and may then fail: a hole that
         * another mapping could take is no FREE page of ours. */
        if (os_is_mapped(fa, TABLE_PAGE_SIZE))
            table_put_free(&shim.table, f);
        else
            table_give_to_kernel(&shim.table, f);
        return r;
    }
    move_copy_live_from(table_page(&shim.table, idx), pa, fa);
    int e = move_replace_in_place(table_page(&shim.table, idx), tier_thp_wanted());
    if (e == 0) {
        move_copy_live_from(table_page(&shim.table, idx), fa, pa);
        log_debug("fork: huge page %u moved through page %u (no room for a copy elsewhere)", idx, f);
    }
    if (os_reserve(fa, TABLE_PAGE_SIZE) != 0) {
        os_munmap((void *)fa, TABLE_PAGE_SIZE);
        table_give_to_kernel(&shim.table, f);
    } else {
        table_put_free(&shim.table, f);
    }
    return e;
}

/* Page idx's arenas into new ordinary memory at the same address: a copy
 * made elsewhere and moved over, or where that takes more room than the
 * limits leave, through a free page, or else a file (no free page). */
static int move_to_ordinary(uint32_t idx)
{
    uintptr_t tmp;
    if (tier_new_ordinary(&tmp) != 0) {
        int e = move_through_free_page(idx);
        if (e)
            e = move_through_file(table_page(&shim.table, idx), tier_thp_wanted());
        if (e == 0)
            table_rebacked(&shim.table, idx, BACK_THP);
        return e;
    }
    move_copy_live(table_page(&shim.table, idx), tmp);
    int e = move_over(table_page(&shim.table, idx), tmp, NULL);
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
            log_warn("fork: no memory to move the arenas of huge page %u to (errno %d: RLIMIT_AS, "
                     "or out of memory); the child will stop", i, plan.error);
            return;
        }
        report_page_forked();
    }
    log_debug("fork: %lu huge pages moved to ordinary memory before fork (one thread)",
              (unsigned long)shim.st.pages_forked);
}

static void drop_shadow(uint32_t i)
{
    if (!plan.shadow || !plan.shadow[i])
        return;
    os_munmap((void *)plan.shadow[i], TABLE_PAGE_SIZE);
    plan.shadow[i] = 0;
    plan.shadows--;
}

static void drop_all_shadows(void)
{
    for (uint32_t i = 0; plan.shadows && i < shim.table.used; i++)
        drop_shadow(i);
}

/* Brings the live slots of page idx's shadow up to date, writing only the
 * 4 KiB pieces that differ, so that pages the children already share stay
 * shared. */
static void refresh_shadow(uint32_t idx)
{
    const struct page *p = &shim.table.pages[idx];
    const char *pa = (const char *)table_page_addr(&shim.table, idx);
    char *sh = (char *)plan.shadow[idx];
    size_t slot = (size_t)1 << p->shift;
    for (unsigned i = 0; i < page_slots(p); i++) {
        if (!(p->live & (1u << i)))
            continue;
        for (size_t off = i * slot; off < (i + 1) * slot; off += OS_PAGE_SIZE)
            if (memcmp(sh + off, pa + off, OS_PAGE_SIZE) != 0)
                memcpy(sh + off, pa + off, OS_PAGE_SIZE);
    }
}

static void update_shadows(void)
{
    if (!plan.shadow) {
        uintptr_t at;
        int e = os_mmap(NULL, (size_t)shim.table.max_pages * sizeof *plan.shadow,
                        PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0,
                        &at);
        if (e) {
            plan.error = -e;
            return;
        }
        plan.shadow = (uintptr_t *)at;
    }
    uint32_t made = 0, kept = 0;
    for (uint32_t i = 0; i < shim.table.used; i++) {
        if (!is_hugetlb(i)) {
            drop_shadow(i);
            continue;
        }
        if (plan.shadow[i]) {
            refresh_shadow(i);
            kept++;
            continue;
        }
        uintptr_t r;
        int e = tier_new_ordinary(&r);
        if (e) {
            plan.error = -e;
            /* The shadows made so far go at the next arena, unless a fork
             * uses them first. */
            if (plan.shadows && fork_shadows_stale_ns == UINT64_MAX)
                fork_shadows_stale_ns = 0;
            log_warn("fork: no memory for a copy of the arenas on huge page %u (errno %d: "
                     "RLIMIT_AS, or out of memory); the child will stop", i, plan.error);
            return;
        }
        plan.shadow[i] = r;
        plan.shadows++;
        move_copy_live(table_page(&shim.table, i), r);
        made++;
    }
    fork_shadows_stale_ns = plan.shadows ? os_now_ns() + SHADOW_KEEP_NS : UINT64_MAX;
    log_debug("fork: %u shadows of huge pages made, %u brought up to date", made, kept);
}

uint64_t fork_shadows_stale_ns = UINT64_MAX;

void fork_drop_stale_shadows(void)
{
    drop_all_shadows();
    fork_shadows_stale_ns = UINT64_MAX;
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
    plan.own = shim.opt.fork != FORK_SHARE && shim.table.pages;
    plan.error = 0;
    if (!plan.own)
        return;
    uint32_t cached;
    while (table_evict_cached(&shim.table, true, BACK_HUGETLB, &cached))
        range_release_page(table_page(&shim.table, cached)); /* empty: back to the pool, not into the child */
    if (shim.table.held[BACK_HUGETLB] == 0)
        return;
    /* The count is read from /proc; without a descriptor left it is unknown,
     * and the snapshot, which needs none, is the safe way. */
    unsigned threads;
    if (os_thread_count(&threads) == 0 && threads == 1) {
        move_all();
        drop_all_shadows(); /* the pages they mirrored are ordinary memory now */
    } else {
        update_shadows();
    }
}

static void fork_parent(void)
{
    if (holds_lock) {
        report_sync();
        shim_unlock();
    }
    os_restore_signals(&saved_mask);
}

/* Moves the shadows over the inherited pages; the others, stale, go. A
 * page left without one (no memory for it) stops the child. */
static void make_pages_own(void)
{
    for (uint32_t i = 0; i < shim.table.used; i++) {
        uintptr_t sh = plan.shadow ? plan.shadow[i] : 0;
        if (!is_hugetlb(i)) {
            drop_shadow(i);
            continue;
        }
        int e = sh ? move_over(table_page(&shim.table, i), sh, NULL) : -(plan.error ? plan.error : ENOMEM);
        if (e < 0) {
            log_fatal("fork: this child cannot have memory of its own for its parent's arenas on "
                     "huge pages (errno %d: RLIMIT_AS, or out of memory); it stops here rather "
                     "than share them with its parent (PYHUGE_FORK=share takes that risk "
                     "instead)", -e);
            os_abort();
        }
        if (sh) {
            plan.shadow[i] = 0;
            plan.shadows--;
        }
        table_rebacked(&shim.table, i, BACK_THP);
        struct page *p = &shim.table.pages[i];
        p->dirty = (uint8_t)((1u << page_slots(p)) - 1); /* a shadow's free slots may hold old data */
    }
}

/* PYHUGE_FORK=huge: a worker writes most of the heap it inherits (reference
 * counts, the collector) and so copies it, 4 KiB at a time, anyway. Here
 * the child copies its inherited pages at once onto hugetlb pages of its
 * own, each reserved and faulted in before use: a pool that runs short
 * refuses the next one cleanly (ENOMEM), and the pages left stay shared
 * with the parent at 4 KiB, as by default. The child owns the reservation
 * of each copy: no write by anyone can take it away (no SIGBUS risk). It
 * reads only its own view of the old pages, which the parent's writes no
 * longer reach. The price: a whole copy of the parent's heap per child,
 * where one that calls gc.freeze() before forking would have copied less
 * (doc/servers.md has the measurements). */
static void copy_onto_own_huge_pages(void)
{
    uint32_t made = 0, left = 0;
    for (uint32_t i = 0; i < shim.table.used; i++) {
        struct page *p = &shim.table.pages[i];
        if (p->state != PAGE_THP || !p->live)
            continue;
        uintptr_t tmp;
        if (left || tier_new_hugetlb(&tmp) != 0) {
            left++;
            continue;
        }
        move_copy_live(table_page(&shim.table, i), tmp);
        bool copied;
        int e = move_over(table_page(&shim.table, i), tmp, &copied);
        if (e != 0 || copied) { /* the page is unchanged, or ordinary memory with its arenas */
            left++;
            continue;
        }
        table_rebacked(&shim.table, i, BACK_HUGETLB);
        made++;
    }
    log_info("fork: %u pages of the parent's arenas copied onto huge pages of this child's own "
             "(PYHUGE_FORK=huge), %u left shared with it (the pool refused)", made, left);
}

/* The pages a child inherits take no new arenas: its own go on pages of
 * its own (hugetlb first) from its first one, instead of into free slots
 * of pages it shares with its parent copy-on-write, where they would be
 * 4 KiB pages. A free slot left there costs nothing: never written, or
 * still the parent's. Empty cached pages go back to address space. */
static void retire_inherited(void)
{
    for (uint32_t i = 0; i < shim.table.used; i++) {
        const struct page *p = &shim.table.pages[i];
        bool shared = p->state == PAGE_THP || shim.opt.fork == FORK_SHARE;
        if (page_serves(p) && shared && table_retire(&shim.table, i))
            range_release_page(table_page(&shim.table, i));
    }
}

static void fork_child(void)
{
    if (holds_lock) {
        report_child();
        if (plan.own)
            make_pages_own();
        if (shim.table.pages && shim.opt.fork == FORK_HUGE)
            copy_onto_own_huge_pages();
        if (shim.table.pages) {
            retire_inherited();
            collapse_child_start();
        }
        tier_child_forgets_waits();
        report_sync();
        shim_unlock();
    }
    os_restore_signals(&saved_mask);
}

void fork_register(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }
