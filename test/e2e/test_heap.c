/*
 * glibc malloc's heap under the shim's settings (src/heap.h), in a real
 * CPython (heap.py): fewer page faults when the same kinds of objects are
 * made and freed over and over, and the process's own choice respected.
 * When memory goes back (after a minute) is test/unit/test_heap.c's; what
 * a peak leaves behind is measured by bench/bench_retain.py.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define PRELOAD PYHUGE_PRELOAD
#define PYTHON "/usr/bin/python3.11"

static struct run off, tuned;

static void roomy(void)
{
    if (access(PYTHON, X_OK) != 0)
        cr_skip_test("no %s on this machine", PYTHON);
    pool_require(200);
}

TestSuite(heap, .init = roomy, .fini = pool_restore, .timeout = 120);

static void both(char *mode)
{
    char *argv[] = {PYTHON, HEAP_PY, mode, NULL};
    char *env_off[] = {PRELOAD, "PYHUGE_MALLOC=off", NULL};
    char *env[] = {PRELOAD, "PYHUGE_VERBOSE=1", NULL};
    run(&off, env_off, argv);
    run(&tuned, env, argv);
    cr_assert_eq(off.status, 0, "%s", off.err);
    cr_assert_eq(tuned.status, 0, "%s", tuned.err);
}

Test(heap, fewer_faults_when_objects_come_and_go)
{
    both("churn");
    long f_off = field(off.out, "faults", 0, "faults"), f = field(tuned.out, "faults", 0, "faults");
    cr_expect(strstr(tuned.err, "glibc malloc: blocks up to 4 MiB") != NULL, "%s", tuned.err);
    cr_expect_lt(f, f_off * 3 / 4, "faults: %ld tuned, %ld with PYHUGE_MALLOC=off", f, f_off);
}

Test(heap, the_processs_own_settings_are_left_alone)
{
    char *argv[] = {PYTHON, "-c", "pass", NULL};
    char *env[] = {PRELOAD, "PYHUGE_VERBOSE=1", "GLIBC_TUNABLES=glibc.malloc.top_pad=65536", NULL};
    run(&tuned, env, argv);
    cr_assert_eq(tuned.status, 0, "%s", tuned.err);
    cr_expect(strstr(tuned.err, "glibc malloc left as it is: GLIBC_TUNABLES is set") != NULL, "%s",
              tuned.err);
    cr_expect(strstr(tuned.err, "blocks up to 4 MiB") == NULL, "%s", tuned.err);
}
