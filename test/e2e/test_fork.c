/*
 * fork() against a drained pool, with a real CPython: a naive shim's
 * children die of SIGBUS; ours survive and compute the right answers.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define PRELOAD PYHUGE_PRELOAD
#define PYTHON "/usr/bin/python3.11"

static struct run r;

static void drained_pool(void)
{
    if (access(PYTHON, X_OK) != 0)
        cr_skip_test("no %s on this machine", PYTHON);
    pool_require(40); /* the parent's heap needs more: it drains the pool */
}

static void run_drained(char *fork_mode, char *children, char *how)
{
    char *argv[] = {PYTHON, DRAINED_FORK_PY, children, how, NULL};
    char *env[] = {PRELOAD, fork_mode, NULL};
    long free0 = meminfo("HugePages_Free");
    run(&r, env, argv);
    cr_expect_eq(meminfo("HugePages_Free"), free0, "pool whole again after all exited");
    cr_expect_eq(meminfo("HugePages_Rsvd"), 0);
}

TestSuite(fork, .init = drained_pool, .fini = pool_restore, .timeout = 120);

Test(fork, children_of_a_drained_pool_survive_by_default)
{
    run_drained("PYHUGE_FORK=copy", "3", "os.fork");
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_expect_eq(field(r.out, "heap", 0, "pool_free"), 0, "the parent drained the pool:\n%s", r.out);
    cr_expect_eq(count_lines(r.out, "child"), 3);
    cr_expect_eq(count_lines(r.out, "child 0 exit=0") + count_lines(r.out, "child 1 exit=0") +
                     count_lines(r.out, "child 2 exit=0"),
                 3, "every child wrote every object and got the right answer:\n%s", r.out);
    cr_expect_eq(count_lines(r.out, "parent ok"), 1);
}

Test(fork, children_of_a_naive_shim_die_of_sigbus)
{
    run_drained("PYHUGE_FORK=share", "3", "os.fork");
    cr_expect_eq(field(r.out, "heap", 0, "pool_free"), 0);
    int killed = 0;
    for (const char *p = r.out; (p = strstr(p, "signal=7")); p++)
        killed++;
    cr_expect_geq(killed, 1, "the hazard is real on this kernel (so the default matters):\n%s", r.out);
}

Test(fork, multiprocessing_fork_pool_on_a_drained_pool)
{
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
    pool_require(0);
    char *argv[] = {PYTHON, DRAINED_FORK_PY, "3", "os.fork", NULL};
    char *env[] = {PRELOAD, "PYHUGE_STATS=1", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_expect_eq(count_lines(r.out, "child 0 exit=0") + count_lines(r.out, "child 1 exit=0") +
                     count_lines(r.out, "child 2 exit=0"), 3, "%s", r.out);
    cr_expect(strstr(r.err, " thp=0 ") == NULL, "the arenas were on the THP tier: %s", r.err);
}

/* Another thread writes into arena memory with the GIL released (os.read
 * into a fresh bytes object) while the main thread forks: private huge
 * pages let the parent take a page from the copying child; ours cannot. */
static void run_gil_free(char *fork_mode)
{
    char *argv[] = {PYTHON, GIL_FREE_WRITER_PY, "8", NULL};
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
