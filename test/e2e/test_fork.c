/*
 * fork() against a drained pool, with a real CPython: a naive shim's
 * children die of SIGBUS; ours survive and compute the right answers. The
 * drained-pool cases run on Debian's 3.11 and on CPython 3.14.7 built from
 * source (pythons.h); the rest on Debian's 3.11.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "pythons.h"

#define PRELOAD PYHUGE_PRELOAD

static struct run r;
static struct pool base;

static void drained_pool(void)
{
    base = pool_require(40); /* the parent's heap needs more: it drains the pool */
}

/* The Pythons of the drained-pool cases. */
static struct python drained_pythons[] = {{"system"}, {"3.14"}};
static char exe[512], why[1024];

static void find(const struct python *p)
{
    if (!python_path(p->which, exe, sizeof exe, why, sizeof why))
        cr_skip_test("%s", why);
}

static void run_drained(char *fork_mode, char *children, char *how)
{
    char *argv[] = {exe, DRAINED_FORK_PY, children, how, NULL};
    char *env[] = {PRELOAD, fork_mode, NULL};
    run(&r, env, argv);
    pool_expect_back(&base, "pool whole again after all exited");
}

TestSuite(fork, .init = drained_pool, .fini = pool_restore, .timeout = 120);

ParameterizedTestParameters(fork, children_of_a_drained_pool_survive_by_default)
{
    return cr_make_param_array(struct python, drained_pythons, 2);
}

ParameterizedTest(struct python *p, fork, children_of_a_drained_pool_survive_by_default)
{
    find(p);
    run_drained("PYHUGE_FORK=copy", "3", "os.fork");
    cr_assert_eq(r.status, 0, "%s\nstdout:\n%s\nstderr:\n%s", exe, r.out, r.err);
    cr_expect_eq(field(r.out, "heap", 0, "pool_free"), 0, "the parent drained the pool:\n%s", r.out);
    cr_expect_eq(count_lines(r.out, "child"), 3);
    cr_expect_eq(count_lines(r.out, "child 0 exit=0") + count_lines(r.out, "child 1 exit=0") +
                     count_lines(r.out, "child 2 exit=0"),
                 3, "every child wrote every object and got the right answer:\n%s", r.out);
    cr_expect_eq(count_lines(r.out, "parent ok"), 1);
}

ParameterizedTestParameters(fork, children_of_a_naive_shim_die_of_sigbus)
{
    return cr_make_param_array(struct python, drained_pythons, 2);
}

ParameterizedTest(struct python *p, fork, children_of_a_naive_shim_die_of_sigbus)
{
    find(p);
    run_drained("PYHUGE_FORK=share", "3", "os.fork");
    cr_expect_eq(field(r.out, "heap", 0, "pool_free"), 0);
    int killed = 0;
    for (const char *q = r.out; (q = strstr(q, "signal=7")); q++)
        killed++;
    cr_expect_geq(killed, 1, "the hazard is real on this kernel (so the default matters):\n%s", r.out);
}

ParameterizedTestParameters(fork, multiprocessing_fork_pool_on_a_drained_pool)
{
    return cr_make_param_array(struct python, drained_pythons, 2);
}

ParameterizedTest(struct python *p, fork, multiprocessing_fork_pool_on_a_drained_pool)
{
    find(p);
    run_drained("PYHUGE_FORK=copy", "3", "multiprocessing");
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_expect_eq(count_lines(r.out, "child"), 3, "%s", r.out);
    cr_expect(strstr(r.out, "exit=3") == NULL, "%s", r.out);
    cr_expect_eq(count_lines(r.out, "parent ok"), 1);
}

/* With no pool the arenas are on transparent huge pages: fork needs no copy
 * (copy-on-write copies 4 KiB and cannot fail), and the children finish. */
Test(fork, children_on_the_thp_tier_need_nothing)
{
    find(&(struct python){"system"});
    base = pool_require(0);
    char *argv[] = {exe, DRAINED_FORK_PY, "3", "os.fork", NULL};
    char *env[] = {PRELOAD, "PYHUGE_STATS=1", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_expect_eq(count_lines(r.out, "child 0 exit=0") + count_lines(r.out, "child 1 exit=0") +
                     count_lines(r.out, "child 2 exit=0"), 3, "%s", r.out);
    cr_expect(strstr(r.err, " thp=0 ") == NULL, "the arenas were on the THP tier: %s", r.err);
}

/* ---- free-threaded 3.14.7t: mimalloc's memory, not arenas ------------------- */

/* THP's mode, from the kernel: "always", "madvise" or "never". */
static void thp_mode(char *buf, size_t len)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char line[128] = {0};
    snprintf(buf, len, "never");
    if (f && fgets(line, sizeof line, f)) {
        char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
        if (a && b)
            snprintf(buf, len, "%.*s", (int)(b - a - 1), a + 1);
    }
    if (f)
        fclose(f);
}

/* mimalloc's own huge pages (MIMALLOC_ALLOW_LARGE_OS_PAGES=1) are private
 * hugetlb pages: a child writing while the pool is drained dies of SIGBUS.
 * The hazard the shim's design for these builds must not have. mimalloc
 * asks for whole arenas on huge pages, 1 GiB by default (512 pages, and
 * madvise(MADV_HUGEPAGE) on plain pages when refused): 32 MiB arenas
 * (MIMALLOC_ARENA_RESERVE, KiB) drain the suite's 40 pages within the heap. */
Test(fork, free_threaded_mimalloc_large_pages_lose_children_on_a_drained_pool, .timeout = 180)
{
    find(&(struct python){"3.14t"});
    char *argv[] = {exe, FT_FORK_PY, "200", "3", NULL};
    char *env[] = {"MIMALLOC_ALLOW_LARGE_OS_PAGES=1", "MIMALLOC_ARENA_RESERVE=32768", NULL};
    run(&r, env, argv);
    cr_expect_gt(field(r.out, "heap", 0, "hugetlb_kb"), 0, "arenas on hugetlb pages:\n%s", r.out);
    cr_expect_lt(field(r.out, "heap", 0, "pool_free"), 16, "the pool all but drained:\n%s", r.out);
    cr_expect_geq(count_lines(r.out, "child 0 signal=7") + count_lines(r.out, "child 1 signal=7") +
                      count_lines(r.out, "child 2 signal=7"),
                  1, "the hazard is real on this kernel:\n%s\n%s", r.out, r.err);
    pool_expect_back(&base, "pool whole again after all exited");
}

/* Under the shim, a free-threaded CPython's mimalloc memory is on
 * transparent huge pages (ft.h): most of the heap in AnonHugePages, no
 * pool page taken, and every child of a drained pool computes its answer. */
Test(fork, free_threaded_heap_on_thp_and_children_survive_a_drained_pool, .timeout = 180)
{
    find(&(struct python){"3.14t"});
    char mode[32];
    thp_mode(mode, sizeof mode);
    if (strcmp(mode, "never") == 0)
        cr_skip_test("transparent huge pages are off here (enabled: never)");
    base = pool_require(0);
    char *argv[] = {exe, FT_FORK_PY, "200", "3", NULL};
    static struct run stock;
    char *plain[] = {NULL};
    run(&stock, plain, argv);
    cr_assert_eq(stock.status, 0, "%s", stock.err);
    char *env[] = {PRELOAD, "PYHUGE_VERBOSE=1", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    long thp = field(r.out, "heap", 0, "thp_kb");
    cr_expect_geq(thp, 32 * 1024, "the heap on transparent huge pages (THP %s): %ld kB\n%s\n%s",
                  mode, thp, r.out, r.err);
    cr_log_info("3.14t heap: AnonHugePages %ld kB under the shim, %ld kB stock (THP %s); minor "
                "faults %ld vs %ld", thp, field(stock.out, "heap", 0, "thp_kb"), mode,
                field(r.out, "heap", 0, "minflt"), field(stock.out, "heap", 0, "minflt"));
    cr_expect_eq(field(r.out, "heap", 0, "hugetlb_kb"), 0);
    cr_expect_eq(count_lines(r.out, "child 0 exit=0") + count_lines(r.out, "child 1 exit=0") +
                     count_lines(r.out, "child 2 exit=0"),
                 3, "every child wrote every object and got the right answer:\n%s", r.out);
    cr_expect_eq(count_lines(r.out, "parent ok"), 1);
    cr_expect(strstr(r.err, "free-threaded CPython in") != NULL, "says what it did: %s", r.err);
    pool_expect_back(&base, "no pool page taken");
}

/* Another thread writes into arena memory with the GIL released (os.read
 * into a fresh bytes object) while the main thread forks: private huge
 * pages let the parent take a page from the copying child; ours cannot. */
static void run_gil_free(char *fork_mode)
{
    find(&(struct python){"system"});
    char *argv[] = {exe, GIL_FREE_WRITER_PY, "8", NULL};
    char *env[] = {PRELOAD, fork_mode, NULL};
    run(&r, env, argv);
}

static int deaths(void)
{
    int n = 0;
    for (const char *p = r.out; (p = strstr(p, "signal=")); p++)
        n++;
    return n;
}

Test(fork, children_survive_a_parent_thread_writing_without_the_gil)
{
    run_gil_free("PYHUGE_FORK=copy");
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_expect_eq(field(r.out, "heap", 0, "pool_free"), 0, "drained:\n%s", r.out);
    cr_expect_eq(deaths(), 0, "no child killed:\n%s", r.out);
    cr_expect(strstr(r.out, "exit=3") == NULL, "every child saw its own heap:\n%s", r.out);
    cr_expect_eq(count_lines(r.out, "child"), 8);
}

Test(fork, private_huge_pages_lose_children_to_a_gil_free_writer)
{
    /* Whether the parent's write comes before a child's read is timing:
     * killed children in any of four runs show the hazard. */
    int killed = 0;
    for (int i = 0; i < 4 && !killed; i++) {
        run_gil_free("PYHUGE_FORK=share");
        killed = deaths();
    }
    cr_expect_geq(killed, 1, "the hazard is real on this kernel:\n%s", r.out);
}

/* ---- fork at the limits, and what fork costs in memory -------------------- */

static int count_children(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p++)
        n++;
    return n;
}

static void roomy_pool(void)
{
    find(&(struct python){"system"});
    base = pool_require(320);
}

TestSuite(fork_limits, .init = roomy_pool, .fini = pool_restore, .timeout = 180);

/* No descriptor left: the shim cannot read its thread count (or make any
 * file); fork must still give every child the heap as it was. */
Test(fork_limits, no_file_descriptor_left)
{
    char *argv[] = {exe, LIMITS_FORK_PY, "nofile", "5", NULL};
    char *env[] = {PRELOAD, NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_expect_eq(count_children(r.out, "exit=0"), 5, "every child saw its heap:\n%s", r.out);
    cr_expect_eq(field(r.out, "parent changed", 0, "changed"), 0, "%s", r.out);
    cr_expect_eq(count_lines(r.out, "parent ok"), 1);
}

/* RLIMIT_AS too low for a copy of the heap, with a second thread: a child
 * either has memory of its own or stops with a message (SIGABRT); it never
 * shares the parent's, and no child's write reaches the parent. */
Test(fork_limits, address_space_limit_never_shares_the_heap)
{
    char *argv[] = {exe, LIMITS_FORK_PY, "as", "5", NULL};
    char *env[] = {PRELOAD, NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    int ok = count_children(r.out, "exit=0"), stopped = count_children(r.out, "signal=6");
    cr_expect_eq(ok + stopped, 5, "each child right, or stopped:\n%s\n%s", r.out, r.err);
    cr_expect(stopped == 0 || strstr(r.err, "cannot have memory of its own") != NULL,
              "a stopped child says why:\n%s", r.err);
    cr_expect_eq(field(r.out, "parent changed", 0, "changed"), 0, "%s", r.out);
    cr_expect_eq(count_lines(r.out, "parent ok"), 1);
}

/* One thread at a limit: the pages move through free pages of the shim's
 * range, needing no room under the limit, and every child runs. */
static void one_thread_at_limit(char *mode)
{
    char *argv[] = {exe, LIMITS_FORK_PY, mode, "5", NULL};
    char *env[] = {PRELOAD, "PYHUGE_STATS=1", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_expect_eq(count_children(r.out, "exit=0"), 5, "every child right:\n%s\n%s", r.out, r.err);
    cr_expect_eq(field(r.out, "parent changed", 0, "changed"), 0, "%s", r.out);
    cr_expect_eq(count_lines(r.out, "parent ok"), 1);
    cr_expect_gt(field(r.err, "pyhuge [", 0, "forked"), 0, "pages were moved:\n%s", r.err);
}

/* 1 MiB of address space to spare. */
Test(fork_limits, one_thread_at_its_address_space_limit)
{
    one_thread_at_limit("as1");
}

/* Every page of the range holding arenas, so none is free to move through
 * (and no cached page to free one): the pages go through a file, and every
 * child runs where stock's would. */
Test(fork_limits, one_thread_at_its_address_space_limit_with_a_full_range)
{
    char *argv[] = {exe, LIMITS_FORK_PY, "asfull", "5", NULL};
    char *env[] = {PRELOAD, "PYHUGE_STATS=1", "PYHUGE_CACHE_PAGES=0", NULL};
    run(&r, env, argv);
    cr_assert(strstr(r.out, "range full=yes"), "the range was filled:\n%s\n%s", r.out, r.err);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_expect_eq(count_children(r.out, "exit=0"), 5, "every child right:\n%s\n%s", r.out, r.err);
    cr_expect_eq(field(r.out, "parent changed", 0, "changed"), 0, "%s", r.out);
    cr_expect_eq(count_lines(r.out, "parent ok"), 1);
    cr_expect_gt(field(r.err, "pyhuge [", 0, "forked"), 0, "pages were moved:\n%s", r.err);
}

/* RLIMIT_DATA: moving a page needs no room in it either. */
Test(fork_limits, one_thread_at_its_data_limit)
{
    one_thread_at_limit("data1");
}

/* A prefork server (prefork.py): the workers share the master's heap
 * instead of each holding a copy of it, and the arenas they make on their
 * own are on huge pages. `thread`: a second thread alive in the master at
 * fork (a metrics or heartbeat thread), where the pages cannot move. */
static void prefork(const char *mode, double most_of_stock)
{
    static struct run stock;
    char *argv[] = {exe, PREFORK_PY, "150", "4", "20", "10", (char *)mode, NULL};
    char *plain[] = {NULL};
    char *env[] = {PRELOAD, "PYHUGE_STATS=1", NULL};
    run(&stock, plain, argv);
    run(&r, env, argv);
    cr_assert_eq(stock.status, 0, "%s", stock.err);
    cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
    const char *t = strstr(stock.out, "\"total_mib\": ");
    const char *u = strstr(r.out, "\"total_mib\": ");
    cr_assert(t && u, "%s\n%s", stock.out, r.out);
    double total_stock = strtod(t + 13, NULL), total = strtod(u + 13, NULL);
    cr_expect_leq(total, total_stock * most_of_stock, "Pss + hugetlb of all processes: %.0f MiB "
                  "under the shim, %.0f MiB stock", total, total_stock);
    cr_log_info("prefork %s: %.0f MiB under the shim, %.0f MiB stock", mode, total, total_stock);
    cr_expect(strstr(r.out, "\"workers_ok\": 4") != NULL, "%s", r.out);
    /* One thread: the master's pages moved before its first fork; with a
     * thread: they stay on huge pages. */
    double heap = 0;
    const char *m = strstr(r.out, "\"master\"");
    if (m && (m = strstr(m, "\"hugetlb\": ")))
        heap = strtod(m + 11, NULL);
    if (strcmp(mode, "thread") == 0)
        cr_expect_gt(heap, 100, "the master's heap stays on huge pages:\n%s", r.out);
    else
        cr_expect_gt(field(r.err, "pyhuge [", 0, "forked"), 50, "moved before fork:\n%s", r.err);
    /* Each worker's own memory is what it built and wrote, not the heap. */
    int workers = 0, huge_workers = 0;
    for (const char *p = strstr(r.out, "\"workers_mem\""); p && (p = strstr(p, "\"private\": ")); p++) {
        double private_mib = strtod(p + 11, NULL);
        cr_expect_lt(private_mib, 150 / 2, "a worker holds %.0f MiB of its own: a copy of the "
                     "master's heap?", private_mib);
        workers++;
    }
    for (const char *p = strstr(r.out, "\"workers_mem\""); p && (p = strstr(p, "\"hugetlb\": ")); p++)
        huge_workers += strtod(p + 11, NULL) >= 10;
    cr_expect_eq(workers, 4);
    cr_expect_eq(huge_workers, 4, "every worker's own arenas on huge pages:\n%s", r.out);
}

Test(fork_limits, prefork_workers_share_the_masters_heap, .timeout = 300)
{
    prefork("one-thread", 1.25);
}

/* With a thread alive the master keeps its hugetlb heap and the workers
 * share one copy of it: the memory of two heaps, never one per worker. */
Test(fork_limits, prefork_workers_share_one_copy_with_a_thread_alive, .timeout = 300)
{
    prefork("thread", 2.2);
}

/* A child counts from zero: its PYHUGE_STATS line is its own. */
Test(fork_limits, a_childs_stats_line_is_its_own)
{
    char *argv[] = {exe, "-c",
                    "import os, sys\n"
                    "heap = [[(i, str(i)) for i in range(10000)] for _ in range(40)]\n"
                    "pid = os.fork()\n"
                    "if pid == 0:\n"
                    "    sys.exit(0)\n"
                    "os.waitpid(pid, 0)\n",
                    NULL};
    char *env[] = {PRELOAD, "PYHUGE_STATS=1", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(count_lines(r.err, "pyhuge ["), 2, "one line per process:\n%s", r.err);
    long a = field(r.err, "pyhuge [", 0, "huge"), b = field(r.err, "pyhuge [", 1, "huge");
    long child = a < b ? a : b, parent = a < b ? b : a;
    cr_expect_gt(parent, 40, "the parent's arenas:\n%s", r.err);
    cr_expect_lt(child, 10, "the child made few arenas of its own, and does not repeat the "
                 "parent's:\n%s", r.err);
}
