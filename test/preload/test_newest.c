/*
 * The newest CPythons under the shim (issue 21): 3.15's arena function
 * (madvise(MADV_HUGEPAGE) after each arena mmap, prctl naming under -X dev,
 * a fatal error when an arena's munmap fails), its --with-pymalloc-hugepages
 * build (MAP_HUGETLB first), arena functions that PGO/LTO/BOLT inline or
 * split, and the real 3.14.7 advised through ctypes. Fakes: fakepython315.c
 * and fakeunseen.c, driven by newest.c; every claim is checked against
 * /proc/self/smaps and /proc/meminfo, and against what plain private
 * anonymous memory gives for the same call in the same process.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

#define PRELOAD PYHUGE_PRELOAD
#define MiB "1048576"
#define MiB2 "2097152"
#define PYTHON314 "/var/cache/pyhuge/cpython/3.14.7/bin/python3.14"

static struct run r;
static struct pool base;
static void pool_16(void) { base = pool_require(16); }
static void pool_8(void) { base = pool_require(8); }
static void pool_0(void) { base = pool_require(0); }
static void pool_40(void) { base = pool_require(40); } /* advise_arenas.py's heap: ~29 pages */

/* Runs the driver with the commands given, in `env`; fails the test unless
 * it exits 0. */
#define NEWEST(...)                                                                         \
    do {                                                                                    \
        char *argv_[] = {NEWEST_BIN, __VA_ARGS__, NULL};                                    \
        run(&r, env, argv_);                                                                \
        cr_assert_eq(r.status, 0, "newest exited %d\nstdout:\n%s\nstderr:\n%s", r.status,    \
                     r.out, r.err);                                                         \
    } while (0)

TestSuite(newest, .fini = pool_restore, .timeout = 120);

static void expect_kept_on_huge_pages(const char *fake, int page_nth)
{
    cr_expect_eq(field(r.out, "page=", page_nth, "page_kb"), 2048, "%s: still a 2 MiB page:\n%s",
                 fake, r.out);
    cr_expect_eq(field(r.out, "page=", page_nth, "hugetlb"), 2048, "%s: Private_Hugetlb:\n%s", fake,
                 r.out);
    cr_expect_eq(field(r.out, "page=", page_nth, "maps"), 1, "%s: one mapping, not split:\n%s",
                 fake, r.out);
    cr_expect_eq(field(r.out, "stats", 0, "demoted"), 0, "%s: nothing demoted:\n%s", fake, r.out);
}

/* 3.15 calls madvise(MADV_HUGEPAGE) on every new arena: it was a demotion
 * per page (FACTS.md: live=0 demoted=15), at -O2 and at -O3. */
Test(newest, arenas_of_315_keep_their_huge_pages, .init = pool_16)
{
    const char *fakes[] = {FAKE315_O2, FAKE315_O3};
    for (int i = 0; i < 2; i++) {
        char *env[] = {PRELOAD, NULL};
        NEWEST("load", (char *)fakes[i], "alloc", MiB, "alloc", MiB, "alloc", MiB, "page", "0",
               "page", "2", "check", "0", "check", "2", "stats");
        for (int a = 0; a < 3; a++)
            cr_expect_eq(field(r.out, "arena=", a, "page_kb"), 2048, "%s: arena %d:\n%s", fakes[i],
                         a, r.out);
        expect_kept_on_huge_pages(fakes[i], 0);
        expect_kept_on_huge_pages(fakes[i], 1);
        cr_expect_eq(field(r.out, "check=", 0, "ok"), 1);
        cr_expect_eq(field(r.out, "check=", 1, "ok"), 1);
        cr_expect_eq(field(r.out, "stats", 0, "huge"), 3, "%s", r.out);
        cr_expect_eq(field(r.out, "stats", 0, "live"), 3, "%s", r.out);
    }
}

/* Every advice this kernel knows of, on one arena and on two side by side:
 * the result, errno and contents plain private anonymous memory gives. */
Test(newest, advice_on_whole_arenas_answers_as_plain_pages, .init = pool_16)
{
    static const int advice[] = {MADV_NORMAL,  MADV_RANDOM,    MADV_SEQUENTIAL, MADV_WILLNEED,
                                 MADV_DONTNEED, MADV_FREE,     MADV_REMOVE,     MADV_MERGEABLE,
                                 MADV_UNMERGEABLE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, 20 /* COLD */,
                                 21 /* PAGEOUT */, 22 /* POPULATE_READ */, 23 /* POPULATE_WRITE */,
                                 24 /* DONTNEED_LOCKED */, 5, 9999};
    enum { N = sizeof advice / sizeof advice[0] };
    char nums[N][16];
    char *argv[8 + 8 * N + 4];
    int k = 0;
    argv[k++] = NEWEST_BIN;
    char *head[] = {"load", FAKE315_O2, "alloc", MiB, "alloc", MiB};
    for (unsigned i = 0; i < sizeof head / sizeof *head; i++)
        argv[k++] = head[i];
    for (int i = 0; i < N; i++) {
        snprintf(nums[i], sizeof nums[i], "%d", advice[i]);
        char *one[] = {"advise", "0", "1", nums[i], "advise", "0", "2", nums[i]};
        for (int j = 0; j < 8; j++)
            argv[k++] = one[j];
    }
    argv[k++] = "page";
    argv[k++] = "0";
    argv[k++] = "stats";
    argv[k] = NULL;
    char *env[] = {PRELOAD, NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "exited %d\n%s\n%s", r.status, r.out, r.err);
    cr_assert_eq(count_lines(r.out, "advise adv="), 2 * N, "both arenas side by side:\n%s", r.out);
    for (int i = 0; i < 2 * N; i++) {
        long adv = field(r.out, "advise", i, "adv");
        cr_expect_eq(field(r.out, "advise", i, "rc"), field(r.out, "advise", i, "plain_rc"),
                     "advice %ld: result:\n%s", adv, r.out);
        cr_expect_eq(field(r.out, "advise", i, "errno"), field(r.out, "advise", i, "plain_errno"),
                     "advice %ld: errno:\n%s", adv, r.out);
        cr_expect_eq(field(r.out, "advise", i, "zero"), field(r.out, "advise", i, "plain_zero"),
                     "advice %ld: zeroes where plain pages read zeroes:\n%s", adv, r.out);
        if (adv != MADV_FREE) /* lazily freed: either outcome is the kernel's */
            cr_expect_eq(field(r.out, "advise", i, "kept"), field(r.out, "advise", i, "plain_kept"),
                         "advice %ld: contents kept where plain pages keep them:\n%s", adv, r.out);
    }
    expect_kept_on_huge_pages("advice", 0);
}

/* posix_madvise, with its own conventions (the error number returned;
 * POSIX_MADV_DONTNEED does nothing in glibc), on whole arenas. */
Test(newest, posix_madvise_on_whole_arenas_keeps_the_page, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    NEWEST("load", FAKE315_O2, "alloc", MiB, "alloc", MiB, "padvise", "0", "2", "3", "padvise",
           "0", "1", "4", "padvise", "0", "2", "9999", "page", "0", "stats");
    cr_expect_eq(field(r.out, "padvise", 0, "rc"), 0, "POSIX_MADV_WILLNEED:\n%s", r.out);
    cr_expect_eq(field(r.out, "padvise", 1, "rc"), 0, "POSIX_MADV_DONTNEED:\n%s", r.out);
    cr_expect_eq(field(r.out, "padvise", 1, "kept"), 1, "glibc discards nothing:\n%s", r.out);
    cr_expect_eq(field(r.out, "padvise", 2, "rc"), EINVAL, "an unknown advice:\n%s", r.out);
    expect_kept_on_huge_pages("posix_madvise", 0);
}

/* MADV_DONTNEED on one arena of a page: that arena reads zeroes, its
 * neighbour keeps its bytes, the page stays. */
Test(newest, dontneed_zeroes_the_arena_and_keeps_the_page, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    NEWEST("load", FAKE315_O2, "alloc", MiB, "alloc", MiB, "advise", "1", "1", "4", "check", "0",
           "page", "0", "stats");
    cr_expect_eq(field(r.out, "advise", 0, "zero"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "advise", 0, "plain_zero"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1, "the neighbour is untouched:\n%s", r.out);
    expect_kept_on_huge_pages("dontneed", 0);
}

/* Advice on part of an arena keeps the general way: the page becomes plain
 * memory first, then the kernel answers (README: "the kernel answers"). */
Test(newest, advice_on_part_of_an_arena_gives_the_page_to_the_kernel, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    NEWEST("load", FAKE315_O2, "alloc", MiB, "alloc", MiB, "advise-part", "0", "65536", "65536",
           "4", "check", "1", "stats");
    cr_expect_eq(field(r.out, "advise", 0, "rc"), 0, "%s", r.out);
    cr_expect_eq(field(r.out, "advise", 0, "zero"), 0, "%s", r.out);
    cr_expect_eq(field(r.out, "advise-part", 0, "head_kept"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1, "the neighbour keeps its bytes:\n%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "demoted"), 1, "%s", r.out);
}

/* Under -X dev, 3.15 names each arena. With the THP tier (no pool) the
 * arenas share one transparent huge page: naming one split the mapping. */
Test(newest, naming_arenas_splits_nothing_and_succeeds_as_on_plain_pages, .init = pool_0)
{
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=thp", "PYTHONDEVMODE=1", NULL};
    NEWEST("load", FAKE315_O3, "alloc", MiB, "alloc", MiB, "name", "0", "1", "cpython:pymalloc",
           "name", "0", "2", "x", "name", "0", "1", "bad[name", "page", "0", "check", "0", "stats");
    cr_expect_eq(field(r.out, "stats", 0, "thp"), 2, "on the THP tier:\n%s", r.out);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(field(r.out, "name", i, "errno"), field(r.out, "name", i, "plain_errno"),
                     "name %d: what plain anonymous memory gives:\n%s", i, r.out);
    cr_expect_neq(field(r.out, "name", 2, "errno"), 0, "a name the kernel refuses:\n%s", r.out);
    cr_expect_eq(field(r.out, "page=", 0, "maps"), 1, "one mapping, not split:\n%s", r.out);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1);
    cr_expect_eq(field(r.out, "stats", 0, "demoted"), 0);
}

/* The same on hugetlb pages, where the kernel refuses to name a hugetlb
 * mapping at all (hugetlb_errno: asked of the kernel on one of its own). */
Test(newest, naming_hugetlb_arenas_succeeds_as_on_plain_pages, .init = pool_16)
{
    char *env[] = {PRELOAD, "PYTHONDEVMODE=1", NULL};
    NEWEST("load", FAKE315_O2, "alloc", MiB, "alloc", MiB, "name", "0", "1", "cpython:pymalloc",
           "page", "0", "stats");
    cr_expect_eq(field(r.out, "name", 0, "errno"), field(r.out, "name", 0, "plain_errno"), "%s",
                 r.out);
    cr_log_info("the kernel's answer for a hugetlb mapping: errno %ld",
                field(r.out, "name", 0, "hugetlb_errno"));
    expect_kept_on_huge_pages("naming", 0);
}

/* prctl's other options pass through with the next definition's result
 * and errno. */
Test(newest, other_prctl_options_pass_through, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    NEWEST("load", FAKE315_O2, "alloc", MiB, "comm", "pyhuge-comm", "stats");
    cr_expect_eq(field(r.out, "comm", 0, "set"), 0, "%s", r.out);
    cr_expect_eq(field(r.out, "comm", 0, "get"), 0, "%s", r.out);
    cr_expect_eq(field(r.out, "comm", 0, "same"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "comm", 0, "dumpable"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "comm", 0, "bad"), -1, "%s", r.out);
    cr_expect_eq(field(r.out, "comm", 0, "bad_errno"), EINVAL, "%s", r.out);
}

/* 3.15 aborts when an arena's munmap fails: it never does, whatever was
 * done to the arenas before (advice, naming, 2 MiB arenas, THP tier). */
Test(newest, exact_arena_munmap_never_fails, .init = pool_16)
{
    char *modes[][4] = {{PRELOAD, "PYTHONDEVMODE=1", NULL, NULL},
                        {PRELOAD, "PYTHONDEVMODE=1", "PYHUGE_BACKEND=thp", NULL}};
    for (int m = 0; m < 2; m++) {
        char **env = modes[m];
        char *argv[] = {NEWEST_BIN, "load", FAKE315_O2, "alloc", MiB, "alloc", MiB, "alloc", MiB2,
                        "alloc", MiB2, "alloc", MiB, "advise", "0", "2", "4", "advise", "2", "1",
                        "14", "advise", "3", "1", "8", "advise", "4", "1", "9", "name", "0", "2",
                        "y", "name", "2", "2", "z", "free", "0", "free", "2", "freeall", "stats",
                        NULL};
        run(&r, env, argv);
        cr_expect_eq(r.status, 0, "%s: no fatal error:\nstdout:\n%s\nstderr:\n%s", env[2] ? env[2] : "hugetlb", r.out, r.err);
        cr_expect_eq(field(r.out, "freeall", 0, "freed"), 3, "%s", r.out);
        cr_expect_eq(field(r.out, "freeall", 0, "failed"), 0, "%s", r.out);
        cr_expect_eq(field(r.out, "stats", 0, "demoted"), 0, "%s", r.out);
    }
}

/* ---- 3.15's --with-pymalloc-hugepages build, PYTHON_PYMALLOC_HUGEPAGES=1 ---- */

Test(newest, hugepage_build_arenas_are_served_as_ours, .init = pool_16)
{
    char *env[] = {PRELOAD, "PYTHON_PYMALLOC_HUGEPAGES=1", NULL};
    NEWEST("load", FAKE315_HUGEPAGES, "alloc", MiB2, "alloc", MiB2, "alloc", MiB2, "page", "1",
           "pool", "free", "1", "stats", "freeall");
    for (int a = 0; a < 3; a++)
        cr_expect_eq(field(r.out, "arena=", a, "page_kb"), 2048, "arena %d:\n%s", a, r.out);
    cr_expect_eq(field(r.out, "stats", 0, "huge"), 3, "the shim's, with its stats:\n%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "fallback"), 0, "%s", r.out);
    cr_expect_eq(field(r.out, "page=", 0, "hugetlb"), 2048, "%s", r.out);
    unsigned long a0 = field_hex(r.out, "arena=", 0, "addr"), a1 = field_hex(r.out, "arena=", 1, "addr"),
                  a2 = field_hex(r.out, "arena=", 2, "addr");
    cr_expect(a0 % (2 << 20) == 0 && a1 % (2 << 20) == 0 && a2 % (2 << 20) == 0 && a0 != a1 &&
                  a1 != a2 && a0 != a2,
              "a whole 2 MiB page each:\n%s", r.out);
    cr_expect_eq(field(r.out, "freeall", 0, "failed"), 0);
}

/* With no huge page to be had (PYHUGE_MAX_PAGES=0: the pool is shared with
 * other processes, which may give pages back meanwhile), the first try
 * fails as an empty pool's does, and CPython's plain call is the arena:
 * one fallback, not two. */
Test(newest, hugepage_build_falls_back_through_its_plain_call, .init = pool_0)
{
    char *env[] = {PRELOAD, "PYTHON_PYMALLOC_HUGEPAGES=1", "PYHUGE_BACKEND=hugetlb",
                   "PYHUGE_MAX_PAGES=0", NULL};
    NEWEST("load", FAKE315_HUGEPAGES, "alloc", MiB2, "check", "0", "stats", "freeall");
    cr_expect_eq(field(r.out, "arena=", 0, "zero"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1);
    cr_expect_eq(field(r.out, "stats", 0, "fallback"), 1, "counted once:\n%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "huge"), 0, "%s", r.out);
    cr_expect_eq(field(r.out, "freeall", 0, "failed"), 0);
}

/* CPython's docs warn of it: a fork with a drained pool kills children
 * with SIGBUS. Without the shim (the control) they die; with it, none. */
Test(newest, hugepage_build_children_survive_a_drained_pool, .init = pool_8)
{
    char *env[] = {PRELOAD, "PYTHON_PYMALLOC_HUGEPAGES=1", NULL};
    NEWEST("load", FAKE315_HUGEPAGES, "alloc", MiB2, "alloc", MiB2, "alloc", MiB2, "drain",
           "forkwrite", "3", "stats");
    cr_expect_eq(field(r.out, "stats", 0, "huge"), 3, "%s", r.out);
    cr_expect_eq(field(r.out, "drain", 0, "free") - field(r.out, "drain", 0, "rsvd"), 0,
                 "the pool is dry:\n%s", r.out);
    cr_expect_eq(field(r.out, "forkwrite", 0, "ok"), 3, "every child wrote its arenas:\n%s\n%s",
                 r.out, r.err);
    cr_expect_eq(field(r.out, "forkwrite", 0, "sigbus"), 0, "%s", r.out);
    cr_expect_eq(field(r.out, "forkwrite", 0, "parent_ok"), 1, "%s", r.out);
}

Test(newest, hugepage_build_without_the_shim_children_die_of_sigbus, .init = pool_8)
{
    /* An ASan build of the driver would turn the SIGBUS into a report. */
    char *env[] = {"PYTHON_PYMALLOC_HUGEPAGES=1", "ASAN_OPTIONS=handle_sigbus=0", NULL};
    NEWEST("load", FAKE315_HUGEPAGES, "alloc", MiB2, "alloc", MiB2, "alloc", MiB2, "drain",
           "forkwrite", "3");
    cr_expect_eq(field(r.out, "arena=", 0, "page_kb"), 2048, "CPython's own hugetlb arena:\n%s",
                 r.out);
    cr_expect_geq(field(r.out, "forkwrite", 0, "sigbus"), 1,
                  "the hazard is real on this kernel:\n%s", r.out);
}

/* With no pool but a THP tier, the MAP_HUGETLB request is served there:
 * the arena is ours either way, never a refusal and a second call. */
Test(newest, hugepage_build_arenas_go_to_the_thp_tier_without_a_pool, .init = pool_0)
{
    char *env[] = {PRELOAD, "PYTHON_PYMALLOC_HUGEPAGES=1", "PYHUGE_BACKEND=thp", NULL};
    NEWEST("load", FAKE315_HUGEPAGES, "alloc", MiB2, "check", "0", "stats", "freeall");
    cr_expect_eq(field(r.out, "stats", 0, "thp"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "fallback"), 0, "%s", r.out);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "freeall", 0, "failed"), 0, "%s", r.out);
}

/* A MAP_HUGETLB mapping of anyone else's is theirs: passed through. */
Test(newest, hugetlb_requests_from_other_code_pass_through, .init = pool_16)
{
    char *env[] = {PRELOAD, "PYTHON_PYMALLOC_HUGEPAGES=1", NULL};
    NEWEST("load", FAKE315_HUGEPAGES, "alloc", MiB2, "hugetlb", "stats");
    cr_expect_eq(field(r.out, "hugetlb", 0, "page_kb"), 2048, "%s", r.out);
    cr_expect_eq(field(r.out, "hugetlb", 0, "munmap"), 0, "%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "huge"), 1, "CPython's arena only:\n%s", r.out);
}

/* ---- arena functions the shim cannot see -------------------------------- */

/* A long arena function (3.15's tries MAP_HUGETLB, names, advises; a build
 * may inline more there): every call site in it is accepted, where its
 * unwind entry says the function ends, not only the first 256 bytes. */
Test(newest, every_call_site_of_a_long_arena_function_is_accepted, .init = pool_16)
{
    char *env[] = {PRELOAD, "PYHUGE_VERBOSE=1", NULL};
    NEWEST("load", FAKE315_LONG, "alloc", MiB2, "alloc", MiB, "stats");
    cr_expect_eq(field(r.out, "arena=", 0, "page_kb"), 2048, "%s\n%s", r.out, r.err);
    cr_expect_eq(field(r.out, "arena=", 1, "page_kb"), 2048, "%s\n%s", r.out, r.err);
    cr_expect_eq(field(r.out, "stats", 0, "huge"), 2, "%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "unseen"), 0, "%s", r.out);
}

static void expect_unseen(const char *fake, long unseen, long huge)
{
    cr_expect_eq(field(r.out, "stats", 0, "unseen"), unseen, "%s:\n%s", fake, r.out);
    cr_expect_eq(field(r.out, "stats", 0, "huge"), huge, "%s:\n%s", fake, r.out);
    int said = 0;
    for (const char *p = r.err; (p = strstr(p, "counted as arenas_unseen")); p++)
        said++;
    cr_expect_eq(said, 1, "%s: said once, at PYHUGE_VERBOSE=1:\n%s", fake, r.err);
    cr_expect(strstr(r.err, "returns at offset") != NULL, "%s: says where:\n%s", fake,
              r.err);
}

/* The exit line says so too, where an operator reads it. */
static void expect_unseen_in_exit_line(long unseen)
{
    char want[32];
    snprintf(want, sizeof want, "; unseen=%ld", unseen);
    cr_expect(strstr(r.err, want) != NULL, "the stats line has %s:\n%s", want, r.err);
}

Test(newest, inlined_arena_function_is_counted, .init = pool_16)
{
    char *env[] = {PRELOAD, "PYHUGE_VERBOSE=1", "PYHUGE_STATS=1", NULL};
    NEWEST("load", FAKE_INLINED, "alloc", MiB, "new", MiB, "new", MiB, "check", "1", "stats");
    cr_expect_eq(field(r.out, "arena=", 0, "page_kb"), 2048, "through the struct:\n%s", r.out);
    cr_expect_eq(field(r.out, "arena=", 1, "page_kb"), 4, "inlined: passed through:\n%s", r.out);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1);
    expect_unseen("inlined", 2, 1);
    expect_unseen_in_exit_line(2);
}

Test(newest, arena_function_split_into_a_cold_part_is_counted, .init = pool_16)
{
    char *env[] = {PRELOAD, "PYHUGE_VERBOSE=1", NULL};
    NEWEST("load", FAKE_COLD, "alloc", MiB, "alloc", MiB, "stats");
    cr_expect_eq(field(r.out, "arena=", 0, "page_kb"), 4, "%s", r.out);
    expect_unseen("cold", 2, 0);
}

/* ---- the real 3.14.7, advised as 3.15 does, through ctypes ---------------- */

Test(newest, real_314_arenas_advised_keep_their_huge_pages, .init = pool_40, .timeout = 300)
{
    if (access(PYTHON314, X_OK) != 0)
        cr_skip_test("no %s (scripts/build-cpython.sh builds it)", PYTHON314);
    char *env[] = {PRELOAD, NULL};
    char *argv[] = {PYTHON314, ADVISE_ARENAS_PY, NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_expect_geq(field(r.out, "advised", 0, "arenas"), 4, "live arenas found:\n%s", r.out);
    cr_expect_eq(field(r.out, "advised", 0, "failed"), 0, "%s", r.out);
    cr_expect_eq(field(r.out, "advised", 0, "demoted"), 0, "%s", r.out);
    cr_expect_eq(field(r.out, "advised", 0, "still_hugetlb"), field(r.out, "advised", 0, "pages"),
                 "every advised page still Private_Hugetlb in smaps:\n%s", r.out);
    cr_expect_eq(field(r.out, "advised", 0, "intact"), 1, "%s", r.out);
}
