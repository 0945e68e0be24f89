/*
 * Many threads allocating and freeing arenas through the shim at once, with
 * same-sized mappings of their own in between, and a signal handler that
 * maps and unmaps memory landing on them at random (concurrency_work.c).
 * Links the shim's code directly and a fake libpython for the call site;
 * needs a small huge page pool.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "concurrency_work.h"
#include "harness.h"
#include "shim.h"

static void setup(void)
{
    /* The hugetlb tier alone, so that the small pool makes arenas fall back. */
    setenv("PYHUGE_BACKEND", "hugetlb", 1);
    pool_require(8);
    concurrency_setup();
}

TestSuite(concurrency, .init = setup, .fini = pool_restore, .timeout = 120);

Test(concurrency, threads_never_see_each_others_arenas)
{
    struct concurrency_result r = {0};
    concurrency_threads(&r);
    cr_expect_eq(r.corrupt, 0, "an arena held another thread's data");
    cr_expect_eq(r.not_zeroed, 0, "new arenas are zero-filled");
    cr_expect_eq(r.inside_range, 0, "someone else's mapping inside the shim's range");
    cr_expect_eq(r.errors, 0);
    cr_expect_gt(r.served_huge, 0, "the pool served some arenas");
    struct pyhuge_stats st;
    shim_read_stats(&st);
    cr_expect_eq(st.arenas_live, 0, "every arena given back");
    cr_expect_gt(st.arenas_fallback, 0, "and the small pool made some fall back");
}

Test(concurrency, signal_handler_mapping_memory_does_not_deadlock)
{
    struct concurrency_result r = {0};
    concurrency_signals(&r, 200);
    cr_expect_gt(r.handler_runs, 10, "the handler ran (%d times)", r.handler_runs);
    cr_expect_eq(r.corrupt, 0);
    cr_expect_eq(r.inside_range, 0);
}
