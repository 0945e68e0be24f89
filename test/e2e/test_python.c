/*
 * Real CPythons under the shim: every pyenv 3.6-3.13 on the machine,
 * Debian's /usr/bin/python3.11 (libpython inside the executable) and
 * CPython 3.14.7 built from source (pythons.h). Each runs
 * workload.py with and without the shim; the answers must agree, and the
 * kernel must show the arenas on huge pages, packed.
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

/* The interpreter for a version (pythons.h), or NULL when the machine lacks it. */
static char why[1024];
static const char *find_python(const struct python *p, char *buf, size_t len)
{
    return python_path(p->which, buf, len, why, sizeof why);
}

ParameterizedTestParameters(python, arenas_on_huge_pages_with_same_results)
{
    static struct python versions[] = {{"3.6"},  {"3.7"},  {"3.8"},  {"3.9"}, {"3.10"},
                                       {"3.11"}, {"3.12"}, {"3.13"}, {"3.14"}, {"system"}};
    return cr_make_param_array(struct python, versions, sizeof versions / sizeof versions[0]);
}

/* The pool as the test found it, with the pages it asked for beyond what
 * other processes hold (harness.h). */
static struct pool base;
static void pool_256(void) { base = pool_require(256); }

ParameterizedTest(struct python *p, python, arenas_on_huge_pages_with_same_results,
                  .init = pool_256, .fini = pool_restore, .timeout = 120)
{
    char exe[512];
    if (!find_python(p, exe, sizeof exe))
        cr_skip_test("%s", why);
    char *argv[] = {exe, WORKLOAD_PY, "--deep-frame", NULL};

    static struct run plain, shim;
    char *plain_env[] = {NULL};
    run(&plain, plain_env, argv);
    cr_assert_eq(plain.status, 0, "%s without the shim: %s", exe, plain.err);
    char *env[] = {PRELOAD, "PYHUGE_STATS=1", NULL};
    run(&shim, env, argv);
    cr_assert_eq(shim.status, 0, "%s under the shim exited %d: %s", exe, shim.status, shim.err);

    long sum = field(plain.out, "result", 0, "checksum");
    cr_expect_gt(sum, 0);
    cr_expect_eq(field(shim.out, "result", 0, "checksum"), sum, "same answer with the shim");
    cr_expect_eq(field(plain.out, "result", 0, "hugetlb_kb"), 0);
    long huge_kb = field(shim.out, "result", 0, "hugetlb_kb");
    cr_expect_geq(huge_kb, 32 * 1024, "%s: arenas on huge pages (Private_Hugetlb %ld kB)\n%s", exe,
                  huge_kb, shim.out);

    cr_expect_eq(field(shim.out, "mmap_module", 0, "kernel_page_kb"), 4,
                 "the mmap module's same-sized mapping passes through");
    cr_expect_eq(field(shim.out, "ctypes_mmap", 0, "kernel_page_kb"), 4,
                 "a ctypes mmap of arena size passes through");

    long huge = field(shim.out, "stats", 0, "huge"), fallback = field(shim.out, "stats", 0, "fallback");
    long peak = field(shim.out, "stats", 0, "pages_peak"), size = field(shim.out, "stats", 0, "arena_size");
    cr_expect_eq(field(shim.out, "stats", 0, "loaded"), 1, "pyhuge_get_stats reachable via ctypes");
    cr_expect_eq(fallback, 0, "a roomy pool serves every arena");
    cr_expect_gt(huge, 0);
    cr_expect_eq(size, field(shim.out, "result", 0, "arena"), "%s: the arena size in the stats", exe);
    /* Packed: one 2 MiB page per 2 MiB of arenas, give or take a partly
     * filled page or two, never one page per arena. */
    cr_expect_leq(peak * (2 << 20), huge * size + 2 * (2 << 20),
                  "%ld arenas of %ld bytes took %ld huge pages", huge, size, peak);
    cr_expect(strstr(shim.err, "stats: arenas huge=") != NULL, "PYHUGE_STATS line: %s", shim.err);

    pool_expect_back(&base, "every huge page is back in the pool");
}

Test(python, empty_pool_gives_same_results_on_ordinary_pages, .fini = pool_restore, .timeout = 120)
{
    struct python p = {"system"};
    char exe[512];
    if (!find_python(&p, exe, sizeof exe) && !find_python(&(struct python){"3.12"}, exe, sizeof exe))
        cr_skip_test("no Python on this machine");
    base = pool_require(0);
    char *argv[] = {exe, WORKLOAD_PY, NULL};
    static struct run plain, shim;
    char *plain_env[] = {NULL};
    run(&plain, plain_env, argv);
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=hugetlb", NULL};
    run(&shim, env, argv);
    cr_assert_eq(shim.status, 0, "%s", shim.err);
    cr_expect_eq(field(shim.out, "result", 0, "checksum"), field(plain.out, "result", 0, "checksum"));
    cr_expect_eq(field(shim.out, "result", 0, "hugetlb_kb"), 0);
    cr_expect_gt(field(shim.out, "stats", 0, "fallback"), 0, "every arena fell back");
    cr_expect_eq(field(shim.out, "stats", 0, "huge"), 0);
    pool_expect_back(&base, "nothing taken from the pool or its neighbours");
}

Test(python, pyhuge_off_leaves_python_alone, .fini = pool_restore, .timeout = 120)
{
    char exe[512];
    if (!find_python(&(struct python){"3.12"}, exe, sizeof exe))
        cr_skip_test("no Python 3.12 on this machine");
    base = pool_require(64);
    char *argv[] = {exe, "-c",
                    "import sys; x = [(i, str(i)) for i in range(300000)]; "
                    "free = [l for l in open('/proc/meminfo') if l.startswith(('HugePages_Free', "
                    "'HugePages_Rsvd'))]; print('ok', sum(range(10**6)), *(l.split()[1] for l in free))",
                    NULL};
    char *env[] = {PRELOAD, "PYHUGE=0", "PYHUGE_VERBOSE=1", NULL};
    static struct run r;
    run(&r, env, argv);
    cr_expect_eq(r.status, 0);
    char want[128];
    snprintf(want, sizeof want, "ok 499999500000 %ld %ld\n", base.free, base.rsvd);
    cr_expect_str_eq(r.out, want, "not one huge page taken while it ran");
    cr_expect(strstr(r.err, "PYHUGE=off: nothing was done") != NULL, "stderr: %s", r.err);
}

Test(python, verbose_says_why_nothing_was_done_in_a_non_python, .timeout = 60)
{
    char *argv[] = {"/bin/true", NULL};
    char *env[] = {PRELOAD, "PYHUGE_VERBOSE=1", "PYHUGE_STATS=1", NULL};
    static struct run r;
    run(&r, env, argv);
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.err, "no CPython in this process") != NULL, "stderr: %s", r.err);
    cr_expect(strstr(r.err, "stats:") == NULL, "no stats line for a non-Python: %s", r.err);
}

/* A CPython that makes no arena request (as the free-threaded build, which
 * uses mimalloc, and PYTHONMALLOC=malloc): the same answers, not one huge
 * page taken, and the reason at PYHUGE_VERBOSE=1. */
Test(python, python_without_arenas_runs_unaffected_and_says_why, .fini = pool_restore,
     .timeout = 120)
{
    char exe[512];
    if (!find_python(&(struct python){"system"}, exe, sizeof exe) &&
        !find_python(&(struct python){"3.12"}, exe, sizeof exe))
        cr_skip_test("no Python on this machine");
    base = pool_require(64);
    char *argv[] = {exe, WORKLOAD_PY, NULL};
    static struct run plain, shim;
    char *plain_env[] = {"PYTHONMALLOC=malloc", NULL};
    run(&plain, plain_env, argv);
    char *env[] = {PRELOAD, "PYTHONMALLOC=malloc", "PYHUGE_VERBOSE=1", NULL};
    run(&shim, env, argv);
    cr_assert_eq(shim.status, 0, "%s", shim.err);
    cr_expect_eq(field(shim.out, "result", 0, "checksum"), field(plain.out, "result", 0, "checksum"));
    cr_expect_eq(field(shim.out, "result", 0, "hugetlb_kb"), 0);
    cr_expect(strstr(shim.err, "CPython made no pymalloc arena request") != NULL, "stderr: %s",
              shim.err);
    pool_expect_back(&base, "after a Python without arenas");
}

/* The kernel's pool counters are back where they were after a Python under
 * the shim is killed with SIGKILL or crashes, huge pages in hand. */
Test(python, pool_whole_after_kill_9_and_crash, .fini = pool_restore, .timeout = 120)
{
    char exe[512];
    if (!find_python(&(struct python){"system"}, exe, sizeof exe) &&
        !find_python(&(struct python){"3.12"}, exe, sizeof exe))
        cr_skip_test("no Python on this machine");
    base = pool_require(128);
    const char *endings[] = {"os.kill(os.getpid(), 9)", "ctypes.string_at(0)", "os.abort()"};
    int want[] = {128 + 9, 128 + 11, 128 + 6};
    for (int i = 0; i < 3; i++) {
        char code[512];
        snprintf(code, sizeof code,
                 "import os, ctypes\n"
                 "x = [(i, str(i)) for i in range(500000)]\n"
                 "free = [l for l in open('/proc/meminfo') if l.startswith('HugePages_Free')]\n"
                 "print('held', int(free[0].split()[1]) < %ld, flush=True)\n"
                 "%s\n",
                 base.free, endings[i]);
        char *argv[] = {exe, "-c", code, NULL};
        char *env[] = {PRELOAD, NULL};
        static struct run r;
        run(&r, env, argv);
        cr_expect_eq(r.status, want[i], "%s ended with status %d", endings[i], r.status);
        cr_expect_str_eq(r.out, "held True\n", "it held huge pages when it died");
        pool_expect_back(&base, endings[i]);
    }
}

/* No pool at all: the THP tier puts the arenas on transparent huge pages. */
Test(python, thp_tier_without_a_pool, .fini = pool_restore, .timeout = 120)
{
    char exe[512];
    if (!find_python(&(struct python){"3.12"}, exe, sizeof exe) &&
        !find_python(&(struct python){"system"}, exe, sizeof exe))
        cr_skip_test("no Python on this machine");
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char mode[128] = {0};
    if (!f || !fgets(mode, sizeof mode, f) || strstr(mode, "[never]"))
        cr_skip_test("transparent huge pages are off here: %s", mode);
    fclose(f);
    base = pool_require(0);
    char *argv[] = {exe, WORKLOAD_PY, NULL};
    static struct run plain, shim;
    char *plain_env[] = {NULL};
    run(&plain, plain_env, argv);
    /* On this kind of VM a fresh transparent huge page can take the host
     * longer to back than the tier's default stall limit (10 ms), which
     * would pause the tier for a second: the pause has its own test in the
     * preload suite; here the tier is asked to keep going. */
    char *env[] = {PRELOAD, "PYHUGE_THP_STALL_US=0", NULL};
    run(&shim, env, argv);
    cr_assert_eq(shim.status, 0, "%s", shim.err);
    cr_expect_eq(field(shim.out, "result", 0, "checksum"), field(plain.out, "result", 0, "checksum"));
    cr_expect_geq(field(shim.out, "result", 0, "thp_kb"), 32 * 1024,
                  "arenas in AnonHugePages:\n%s", shim.out);
    cr_expect_gt(field(shim.out, "stats", 0, "thp"), 0);
    cr_expect_eq(field(shim.out, "stats", 0, "huge"), 0);
    cr_expect_eq(field(shim.out, "result", 0, "hugetlb_kb"), 0);
    pool_expect_back(&base, "the THP tier takes nothing from the pool");
}

/* The free-threaded 3.14.7t: objects come from its own mimalloc, never from
 * pymalloc arenas (FACTS.md, "the newest Pythons"). Under the shim: the same
 * answers, not one huge page taken, and the reason at PYHUGE_VERBOSE=1. */
Test(python, free_threaded_314t_passes_through_and_says_why, .fini = pool_restore,
     .timeout = 180)
{
    char exe[512];
    if (!find_python(&(struct python){"3.14t"}, exe, sizeof exe))
        cr_skip_test("%s", why);
    base = pool_require(64);
    char *argv[] = {exe, WORKLOAD_PY, NULL};
    static struct run plain, shim;
    char *plain_env[] = {NULL};
    run(&plain, plain_env, argv);
    cr_assert_eq(plain.status, 0, "%s without the shim: %s", exe, plain.err);
    char *env[] = {PRELOAD, "PYHUGE_VERBOSE=1", "PYHUGE_STATS=1", NULL};
    run(&shim, env, argv);
    cr_assert_eq(shim.status, 0, "%s", shim.err);
    long sum = field(plain.out, "result", 0, "checksum");
    cr_expect_gt(sum, 0);
    cr_expect_eq(field(shim.out, "result", 0, "checksum"), sum, "same answer with the shim");
    cr_expect_eq(field(shim.out, "result", 0, "hugetlb_kb"), 0);
    cr_expect_eq(field(shim.out, "stats", 0, "huge"), 0, "no arena: %s", shim.out);
    cr_expect(strstr(shim.err, "no pymalloc arena request: a free-threaded CPython") != NULL,
              "stderr: %s", shim.err);
    pool_expect_back(&base, "after the free-threaded build");
}
