/*
 * The shim in a real process against the real kernel: tests/preload/arenas
 * runs under LD_PRELOAD with a fake libpython, and every claim is checked
 * against /proc/self/smaps and /proc/meminfo.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define MiB "1048576"
#define KiB256 "262144"
#define PRELOAD PYHUGE_PRELOAD

static struct run r;

/* The pool as the test found it, with exactly n pages for it beyond what
 * other processes hold (harness.h). */
static struct pool base;
static void pool_16(void) { base = pool_require(16); }
static void pool_3(void) { base = pool_require(3); }
static void pool_1(void) { base = pool_require(1); }
static void pool_0(void) { base = pool_require(0); }

/* Pages the program had taken from the pool at its nth `pool` line. */
static long taken_at(int nth)
{
    return pool_taken_at(&base, field(r.out, "pool", nth, "free"), field(r.out, "pool", nth, "rsvd"));
}

TestSuite(preload, .fini = pool_restore, .timeout = 60);

Test(preload, arenas_land_on_huge_pages_two_per_page, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "pool", "stats");
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(field(r.out, "arena=", i, "huge"), 1, "arena %d on a 2 MiB page:\n%s", i, r.out);
        cr_expect_eq(field(r.out, "arena=", i, "zero"), 1, "arena %d zero-filled", i);
    }
    unsigned long a = field_hex(r.out, "arena=", 0, "addr"), b = field_hex(r.out, "arena=", 1, "addr");
    cr_expect_eq(a >> 21, b >> 21, "both arenas share one huge page: %lx %lx", a, b);
    cr_expect_eq(taken_at(0), 1, "one huge page taken from the pool:\n%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "pages"), 1);
    cr_expect_eq(field(r.out, "stats", 0, "huge"), 2);
}

Test(preload, eight_256k_arenas_share_one_page, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", KiB256, "alloc", KiB256, "alloc", KiB256, "alloc", KiB256, "alloc", KiB256,
           "alloc", KiB256, "alloc", KiB256, "alloc", KiB256, "alloc", KiB256, "pool");
    unsigned long first = field_hex(r.out, "arena=", 0, "addr");
    for (int i = 0; i < 8; i++) {
        cr_expect_eq(field(r.out, "arena=", i, "huge"), 1);
        cr_expect_eq(field_hex(r.out, "arena=", i, "addr") >> 21, first >> 21, "arena %d", i);
    }
    cr_expect_neq(field_hex(r.out, "arena=", 8, "addr") >> 21, first >> 21, "the ninth opens a page");
    cr_expect_eq(taken_at(0), 2, "two pages for nine arenas:\n%s", r.out);
}

Test(preload, two_mib_arenas_take_a_page_each, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", "2097152", "alloc", "2097152", "pool");
    cr_expect_eq(field(r.out, "arena=", 0, "huge"), 1);
    cr_expect_eq(field(r.out, "arena=", 1, "huge"), 1);
    cr_expect_eq(taken_at(0), 2, "a page each:\n%s", r.out);
}

Test(preload, page_goes_back_to_pool_when_both_arenas_are_gone, .init = pool_16)
{
    char *env[] = {PRELOAD, "PYHUGE_CACHE_PAGES=0", NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "free", "0", "pool", "free", "1", "pool");
    cr_expect_eq(taken_at(0), 1, "one arena left: the page stays");
    cr_expect_eq(taken_at(1), 0, "no arena left: the page is back");
}

Test(preload, cached_page_is_kept_then_reused, .init = pool_16)
{
    char *env[] = {PRELOAD, "PYHUGE_CACHE_PAGES=1", NULL};
    ARENAS("alloc", MiB, "free", "0", "pool", "alloc", MiB, "pool", "stats");
    cr_expect_eq(taken_at(0), 1, "the empty page is cached");
    cr_expect_eq(field(r.out, "arena=", 1, "huge"), 1);
    cr_expect_eq(field(r.out, "arena=", 1, "zero"), 1, "reused memory is zero-filled");
    cr_expect_eq(taken_at(1), 1, "reused, not a second page");
}

Test(preload, reused_slot_is_zero_filled, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "free", "0", "alloc", MiB, "check", "1");
    cr_expect_eq(field_hex(r.out, "arena=", 2, "addr"), field_hex(r.out, "arena=", 0, "addr"),
                 "the freed slot is reused");
    cr_expect_eq(field(r.out, "arena=", 2, "zero"), 1, "mmap promises zeroed memory");
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1, "the neighbour is untouched");
}

Test(preload, empty_pool_falls_back_to_ordinary_pages, .init = pool_0)
{
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=hugetlb", NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "check", "0", "stats");
    cr_expect_eq(field(r.out, "arena=", 0, "huge"), 0);
    cr_expect_eq(field(r.out, "arena=", 0, "zero"), 1);
    cr_expect_eq(field(r.out, "arena=", 0, "errno_kept"), 1, "the failed hugetlb try leaves errno alone");
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1);
    cr_expect_eq(field(r.out, "stats", 0, "fallback"), 2);
    cr_expect_geq(field(r.out, "stats", 0, "pool"), 1, "the reason is counted");
}

Test(preload, pool_that_runs_out_midway, .init = pool_3)
{
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=hugetlb", NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "alloc", MiB, "alloc", MiB, "alloc", MiB, "alloc", MiB,
           "alloc", MiB, "alloc", MiB, "alloc", MiB, "alloc", MiB, "check", "0", "check", "9",
           "stats", "pool");
    for (int i = 0; i < 6; i++)
        cr_expect_eq(field(r.out, "arena=", i, "huge"), 1, "arena %d while pages last", i);
    for (int i = 6; i < 10; i++) {
        cr_expect_eq(field(r.out, "arena=", i, "huge"), 0, "arena %d after the pool ran dry", i);
        cr_expect_eq(field(r.out, "arena=", i, "errno_kept"), 1);
    }
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1);
    cr_expect_eq(field(r.out, "check=", 1, "ok"), 1);
    cr_expect_eq(field(r.out, "stats", 0, "huge"), 6);
    cr_expect_eq(field(r.out, "stats", 0, "fallback"), 4);
    cr_expect_eq(taken_at(0), 3, "every page it was given");
    cr_expect_eq(field(r.out, "pool", 0, "free") - field(r.out, "pool", 0, "rsvd"), 0,
                 "and the pool ran dry:\n%s", r.out);
}

Test(preload, huge_pages_come_back_into_use_after_a_refusal, .init = pool_1)
{
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=hugetlb", "PYHUGE_CACHE_PAGES=0", NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "alloc", MiB, "free", "0", "free", "1", "alloc", MiB);
    cr_expect_eq(field(r.out, "arena=", 2, "huge"), 0, "the pool had one page");
    cr_expect_eq(field(r.out, "arena=", 3, "huge"), 1, "a page given back is used again at once");
}

Test(preload, same_object_other_call_site_passes_through, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "other", MiB, "pool");
    cr_expect_eq(field(r.out, "arena=", 0, "huge"), 1);
    cr_expect_eq(field(r.out, "other", 0, "huge"), 0, "not CPython's arena allocator");
    cr_expect_eq(taken_at(0), 1, "the arena's page only");
}

Test(preload, non_cpython_caller_passes_through, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("direct", MiB, "direct", KiB256, "pool", "stats");
    cr_expect_eq(field(r.out, "direct", 0, "huge"), 0);
    cr_expect_eq(field(r.out, "direct", 1, "huge"), 0);
    cr_expect_eq(taken_at(0), 0, "no page taken");
    cr_expect_eq(field(r.out, "stats", 0, "huge"), 0);
    cr_expect_eq(field(r.out, "stats", 0, "fallback"), 0, "not counted as a fallback either");
}

Test(preload, max_pages_caps_one_process, .init = pool_16)
{
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=hugetlb", "PYHUGE_MAX_PAGES=1", NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "alloc", MiB, "alloc", MiB, "stats");
    cr_expect_eq(field(r.out, "stats", 0, "huge"), 2);
    cr_expect_eq(field(r.out, "stats", 0, "cap"), 2);
    cr_expect_eq(field(r.out, "stats", 0, "peak"), 1);
}

/* Most processes that load the shim never make an arena: a shell script, a
 * make, a `timeout` that a Python program starts inherits LD_PRELOAD. They
 * fork as without it (the fork handlers once read a side table that was
 * never made, and every such fork crashed the parent). */
Test(preload, a_process_without_arenas_forks_as_without_the_shim, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("fork", "direct", MiB, "fork", "stats");
    cr_expect_eq(field(r.out, "stats", 0, "huge"), 0, "%s", r.out);
    char *off[] = {PRELOAD, "PYHUGE=off", NULL};
    char *argv[] = {ARENAS_BIN, "fork", NULL};
    run(&r, off, argv);
    cr_expect_eq(r.status, 0, "PYHUGE=off: exited %d\n%s", r.status, r.err);
    char *sh[] = {"/bin/bash", "-c", "/bin/true; echo forked", NULL};
    run(&r, env, sh);
    cr_expect_eq(r.status, 0, "bash: exited %d\n%s", r.status, r.err);
    cr_expect(strstr(r.out, "forked") != NULL, "%s", r.out);
}

/* Two arenas side by side (the shim packs them so) are one mapping on plain
 * pages, where adjacent anonymous mappings merge: an mremap that takes both
 * at once resizes them as one (it was EFAULT). */
Test(preload, mremap_of_two_arenas_side_by_side_works_as_on_plain_pages, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "mremap-pair", "4194304", "stats");
    cr_expect_eq(field(r.out, "mremap-pair", 0, "rc"), 0, "as on plain pages:\n%s", r.out);
    cr_expect_eq(field(r.out, "mremap-pair", 0, "content_kept"), 1, "%s", r.out);
}

/* A shrink never refuses: the kernel unmaps the old range's tail, whatever
 * lies there (here the page's free slot, a hole on plain pages). */
Test(preload, mremap_shrinking_past_an_arena_works_as_on_plain_pages, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "mremap-shrink", "0", "524288", "stats");
    cr_assert_eq(field(r.out, "arena=", 0, "huge"), 1, "%s", r.out);
    cr_assert_eq(field(r.out, "mremap-shrink", 0, "rc"), 0, "as on plain pages:\n%s", r.out);
    cr_expect_eq(field(r.out, "mremap-shrink", 0, "past"), 1, "the old range ran past the arena:\n%s",
                 r.out);
    cr_expect_eq(field(r.out, "mremap-shrink", 0, "same_addr"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "mremap-shrink", 0, "content_kept"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "mremap-shrink", 0, "tail_gone"), 1, "%s", r.out);
}

/* mremap(arena 0, to the end of its page, len): an arena that starts its
 * page keeps its huge page and its bytes, at the same address. */
static void arena_keeps_its_page_after_mremap_to(char *len)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "mremap-shrink", "0", len, "smaps", "0", "check", "0", "stats");
    cr_assert_eq(field(r.out, "mremap-shrink", 0, "rc"), 0, "as on plain pages:\n%s", r.out);
    cr_expect_eq(field(r.out, "mremap-shrink", 0, "past"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "mremap-shrink", 0, "same_addr"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "mremap-shrink", 0, "content_kept"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "smaps", 0, "page_kb"), 2048, "still a huge page:\n%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "demoted"), 0, "%s", r.out);
}

/* Its tail only the page's free slot (a hole on plain pages). */
Test(preload, mremap_shrinking_to_the_arena_keeps_its_huge_page, .init = pool_16)
{
    arena_keeps_its_page_after_mremap_to(MiB);
}

/* The same length in place does nothing, past the arena or not: nothing
 * moves (a copy would race with other threads writing the page). */
Test(preload, mremap_in_place_at_the_same_length_changes_nothing, .init = pool_16)
{
    arena_keeps_its_page_after_mremap_to("2097152");
}

/* A shrink that moves keeps one mapping or none: its first part, here an
 * arena and the free slot after it, is a hole in the plain world: EFAULT,
 * and nothing changes (its tail, the next page's arenas, stays). */
Test(preload, mremap_fixed_shrink_keeping_a_hole_is_refused_and_changes_nothing, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "alloc", MiB, "alloc", MiB, "free", "1", "mremap-fixed", "0",
           "4194304", "1572864", "check", "0", "check", "2", "check", "3", "stats");
    cr_expect_eq(field(r.out, "mremap-fixed", 0, "rc"), -1, "as on plain pages:\n%s", r.out);
    cr_expect_eq(field(r.out, "mremap-fixed", 0, "errno"), EFAULT, "%s", r.out);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(field(r.out, "check=", i, "ok"), 1, "arena %d kept:\n%s", i, r.out);
    cr_expect_eq(field(r.out, "stats", 0, "live"), 3, "%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "demoted"), 0, "%s", r.out);
}

/* The same, with a part kept that is one arena: moved, as on plain pages. */
Test(preload, mremap_fixed_shrink_of_an_arena_moves_it, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "free", "1", "mremap-fixed", "0", "2097152", "524288", "check",
           "0", "stats");
    cr_expect_eq(field(r.out, "mremap-fixed", 0, "rc"), 0, "as on plain pages:\n%s", r.out);
    cr_expect_eq(field(r.out, "mremap-fixed", 0, "moved"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "mremap-fixed", 0, "content_kept"), 1, "%s", r.out);
}

Test(preload, pyhuge_off_passes_everything_through, .init = pool_16)
{
    char *env[] = {PRELOAD, "PYHUGE=off", NULL};
    ARENAS("alloc", MiB, "pool", "stats");
    cr_expect_eq(field(r.out, "arena=", 0, "huge"), 0);
    cr_expect_eq(taken_at(0), 0, "no page taken");
    cr_expect_eq(field(r.out, "stats", 0, "enabled"), 0);
}

Test(preload, partial_munmap_spares_the_neighbour, .init = pool_16)
{
    char *env[] = {PRELOAD, "PYHUGE_CACHE_PAGES=0", NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "munmap", "0", "0", "524288", "check", "1", "stats", "pool",
           "free", "0", "free", "1", "pool");
    cr_expect_eq(field(r.out, "munmap", 0, "rc"), 0, "plain pages allow half an arena to go");
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1, "the other arena keeps its data");
    cr_expect_eq(field(r.out, "stats", 0, "demoted"), 1);
    cr_expect_eq(taken_at(0), 0, "the demoted page went back to the pool");
    cr_expect_eq(taken_at(1), 0);
}

Test(preload, mprotect_on_an_arena_works_like_plain_pages, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "mprotect", "0", "0", MiB, "check", "0", "check", "1");
    cr_expect_eq(field(r.out, "mprotect", 0, "rc"), 0);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1, "read-only arena still readable");
    cr_expect_eq(field(r.out, "check=", 1, "ok"), 1);
}

Test(preload, mprotect_past_the_arena_is_enomem, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "mprotect", "0", MiB, "4096", "mprotect", "0", "4096", MiB);
    cr_expect_eq(field(r.out, "mprotect", 0, "errno"), ENOMEM, "a free slot is unmapped memory");
    cr_expect_eq(field(r.out, "mprotect", 1, "errno"), ENOMEM, "running off the arena's end");
}

Test(preload, madvise_dontneed_zeroes_only_that_arena, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "madvise", "0", "0", MiB, "check", "0", "check", "1");
    cr_expect_eq(field(r.out, "madvise", 0, "rc"), 0);
    cr_expect_eq(field(r.out, "check=", 0, "zero"), 1, "MADV_DONTNEED on private memory zeroes it");
    cr_expect_eq(field(r.out, "check=", 1, "ok"), 1, "and never the neighbour");
}

Test(preload, unaligned_munmap_is_einval, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "munmap", "0", "1", "4096", "munmap", "0", "0", "0", "check", "0");
    cr_expect_eq(field(r.out, "munmap", 0, "errno"), EINVAL);
    cr_expect_eq(field(r.out, "munmap", 1, "errno"), EINVAL, "zero length");
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1);
}

Test(preload, mremap_moves_an_arena_with_its_contents, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "mremap", "0", "3145728", "check", "0", "check", "1",
           "mremap", "1", "524288", "check", "1");
    cr_expect_eq(field(r.out, "mremap", 0, "rc"), 0);
    cr_expect_eq(field(r.out, "mremap", 0, "content_kept"), 1);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1);
    cr_expect_eq(field(r.out, "check=", 1, "ok"), 1);
    cr_expect_eq(field(r.out, "mremap", 1, "content_kept"), 1, "shrinking in place");
    cr_expect_eq(field(r.out, "check=", 2, "ok"), 1);
}

Test(preload, pool_counters_return_to_where_they_were, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "alloc", MiB, "alloc", KiB256, "munmap", "0", "0", "4096",
           "pool");
    cr_expect_gt(taken_at(0), 0, "the process held pages:\n%s", r.out);
    pool_expect_back(&base, "after the process exited");
}

Test(preload, stats_line_at_exit_on_stderr_and_in_a_file, .init = pool_16)
{
    char path[] = "/tmp/pyhuge-stats-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    char statsvar[64];
    snprintf(statsvar, sizeof statsvar, "PYHUGE_STATS=%s", path);
    char *env[] = {PRELOAD, "PYHUGE_STATS=1", NULL};
    ARENAS("alloc", MiB, "alloc", MiB);
    cr_expect(strstr(r.err, "stats: arenas huge=2 fallback=0") != NULL, "stderr: %s", r.err);
    cr_expect(strstr(r.err, "huge pages now=1 peak=1") != NULL, "stderr: %s", r.err);

    char *env2[] = {PRELOAD, statsvar, NULL};
    char *argv[] = {ARENAS_BIN, "alloc", MiB, NULL};
    run(&r, env2, argv);
    run(&r, env2, argv);
    char buf[2048] = {0};
    cr_assert(read(fd, buf, sizeof buf - 1) > 0);
    close(fd);
    unlink(path);
    cr_expect_eq(count_lines(buf, "pyhuge ["), 2, "one line appended per process: %s", buf);
}

Test(preload, bad_values_warn_and_never_fail, .init = pool_16)
{
    char *env[] = {PRELOAD, "PYHUGE_VERBOSE=loud", "PYHUGE_MAX_PAGES=lots", "PYHUGE_STATS=rel/path",
                   "PYHUGE_CACHE=3", NULL};
    ARENAS("alloc", MiB);
    cr_expect_eq(field(r.out, "arena=", 0, "huge"), 1, "defaults are used");
    cr_expect(strstr(r.err, "PYHUGE_VERBOSE=\"loud\"") != NULL, "stderr: %s", r.err);
    cr_expect(strstr(r.err, "PYHUGE_MAX_PAGES=\"lots\"") != NULL, "stderr: %s", r.err);
    cr_expect(strstr(r.err, "PYHUGE_STATS=\"rel/path\"") != NULL, "stderr: %s", r.err);
    cr_expect(strstr(r.err, "PYHUGE_CACHE is not a pyhuge variable") != NULL, "stderr: %s", r.err);
}

/* The kernel's checks act on scratch pages of the shim's own. Made in the
 * middle of a run, one could land in a hole the program has just unmapped
 * from an arena, taking an address the program counts on being free: they
 * are made before the first arena, and nothing new is mapped after it. */
Test(preload, no_page_of_the_shims_lands_in_a_hole_the_program_made, .init = pool_16)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "alloc", MiB, "mark", "munmap", "0", "32768", "65536",
           "madvise", "2", "0", MiB, "mprotect", "2", "0", "4096", "new-mappings", "mapped", "0",
           "32768", "65536");
    cr_expect_eq(field(r.out, "arena=", 2, "huge"), 1, "the arenas were on huge pages:\n%s", r.out);
    cr_expect_eq(field(r.out, "munmap", 0, "rc"), 0);
    cr_expect_eq(field(r.out, "madvise", 0, "rc"), 0);
    cr_expect_eq(field(r.out, "mprotect", 0, "rc"), 0);
    cr_expect_eq(field(r.out, "new-mappings", 0, "n"), 0, "the shim mapped something:\n%s", r.out);
    cr_expect_eq(field(r.out, "mapped", 0, "pages"), 0, "the hole stays a hole:\n%s", r.out);
}

/* Same random operations on plain pages and under the shim (misuse.c):
 * identical results, errno and memory contents, page by page. */
Test(preload, random_misuse_matches_plain_pages, .init = pool_16, .timeout = 300)
{
    static struct run plain, shim;
    char *sizes[] = {MiB, KiB256};
    long huge = 0, demoted = 0;
    for (int seed = 1; seed <= 40; seed++) {
        for (int s = 0; s < 2; s++) {
            char seed_s[16];
            snprintf(seed_s, sizeof seed_s, "%d", seed);
            char *argv[] = {MISUSE_BIN, seed_s, "50", sizes[s], NULL};
            char *plain_env[] = {NULL};
            char *shim_env[] = {PRELOAD, "PYHUGE_STATS=1", NULL};
            run(&plain, plain_env, argv);
            run(&shim, shim_env, argv);
            cr_assert_eq(plain.status, 0, "seed %d on plain pages: %s", seed, plain.err);
            cr_assert_eq(shim.status, 0, "seed %d under the shim: %s", seed, shim.err);
            cr_assert_str_eq(shim.out, plain.out, "seed %d, arena size %s differs", seed, sizes[s]);
            huge += field(shim.err, "pyhuge [", 0, "huge");
            demoted += field(shim.err, "pyhuge [", 0, "demoted");
        }
    }
    cr_expect_gt(huge, 40, "the runs did put arenas on huge pages");
    cr_expect_gt(demoted, 10, "and exercised demotion");
}

/* NULL, zero and overflowing lengths, unaligned addresses, bogus flags:
 * under the shim every call gets the answer plain pages get (badinput.c). */
Test(preload, bad_input_gets_the_kernels_own_answers, .init = pool_16)
{
    static struct run plain, shim;
    char *argv[] = {BADINPUT_BIN, NULL};
    char *plain_env[] = {NULL};
    char *shim_env[] = {PRELOAD, "PYHUGE_STATS=1", NULL};
    run(&plain, plain_env, argv);
    run(&shim, shim_env, argv);
    cr_assert_eq(plain.status, 0, "%s", plain.err);
    cr_assert_eq(shim.status, 0, "under the shim: status %d\n%s", shim.status, shim.err);
    cr_expect_str_eq(shim.out, plain.out);
    cr_expect_eq(field(shim.out, "arenas", 0, "intact"), 1);
    cr_expect_eq(field(shim.err, "pyhuge [", 0, "huge"), 2, "the arenas were on huge pages: %s",
                 shim.err);
}

/* ---- the transparent huge page tier ------------------------------------- */

#define THP_DIR "/sys/kernel/mm/transparent_hugepage/"

static char thp_before[32], defrag_before[32];

/* Sets one of the kernel's THP settings (the file under THP_DIR) for one
 * test, keeping the first value seen in saved; thp_restore puts it back. */
static void thp_write(const char *file, const char *mode, char *saved, size_t saved_len)
{
    char path[128];
    snprintf(path, sizeof path, THP_DIR "%s", file);
    FILE *f = fopen(path, "r");
    char line[128] = {0};
    if (!f || !fgets(line, sizeof line, f))
        cr_skip_test("no %s: this kernel has no THP", path);
    fclose(f);
    char *open_b = strchr(line, '['), *close_b = open_b ? strchr(open_b, ']') : NULL;
    if (!saved[0] && open_b && close_b)
        snprintf(saved, saved_len, "%.*s", (int)(close_b - open_b - 1), open_b + 1);
    f = fopen(path, "w");
    if (!f || fputs(mode, f) < 0 || fclose(f) != 0)
        cr_skip_test("cannot set %s to %s (needs root)", path, mode);
}

static void thp_set(const char *mode) { thp_write("enabled", mode, thp_before, sizeof thp_before); }

static void thp_put_back(const char *file, char *saved)
{
    if (!saved[0])
        return;
    char path[128];
    snprintf(path, sizeof path, THP_DIR "%s", file);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(saved, f);
        fclose(f);
    }
    saved[0] = 0;
}

static void thp_restore(void)
{
    thp_put_back("enabled", thp_before);
    thp_put_back("defrag", defrag_before);
    pool_restore();
}

Test(thp, backend_thp_packs_arenas_into_transparent_huge_pages, .fini = thp_restore)
{
    thp_set("madvise");
    base = pool_now();
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=thp", NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "check", "0", "pool", "stats");
    cr_expect_eq(field(r.out, "arena=", 0, "huge"), 2, "AnonHugePages in smaps:\n%s", r.out);
    cr_expect_eq(field(r.out, "arena=", 1, "huge"), 2);
    cr_expect_eq(field_hex(r.out, "arena=", 0, "addr") >> 21, field_hex(r.out, "arena=", 1, "addr") >> 21,
                 "two arenas in one 2 MiB page");
    cr_expect_eq(field(r.out, "arena=", 0, "zero"), 1);
    cr_expect_eq(field(r.out, "stats", 0, "thp"), 2);
    cr_expect_eq(field(r.out, "stats", 0, "thp_pages"), 1);
    cr_expect_eq(field(r.out, "stats", 0, "huge"), 0, "no hugetlb page taken");
    cr_expect_eq(taken_at(0), 0, "none from the pool either");
}

Test(thp, auto_goes_to_thp_when_the_pool_is_empty, .fini = thp_restore)
{
    thp_set("madvise");
    base = pool_require(1);
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "alloc", MiB, "alloc", MiB, "stats");
    cr_expect_eq(field(r.out, "arena=", 0, "huge"), 1, "hugetlb while the pool has pages");
    cr_expect_eq(field(r.out, "arena=", 2, "huge"), 2, "then THP:\n%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "huge"), 2);
    cr_expect_eq(field(r.out, "stats", 0, "thp"), 2);
    cr_expect_eq(field(r.out, "stats", 0, "fallback"), 0);
}

Test(thp, works_with_thp_always, .fini = thp_restore)
{
    thp_set("always");
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=thp", NULL};
    ARENAS("alloc", KiB256, "alloc", KiB256, "stats");
    cr_expect_eq(field(r.out, "arena=", 0, "huge"), 2, "%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "thp"), 2);
}

/* Every defrag setting: the tier works (on memory compacted first, so that
 * the settings that never compact have a free 2 MiB block to find). */
struct defrag {
    char mode[16]; /* Criterion copies parameters into the test's process: no pointers */
};

ParameterizedTestParameters(thp, works_under_every_defrag_setting)
{
    static struct defrag settings[] = {{"always"}, {"defer"}, {"defer+madvise"}, {"madvise"}, {"never"}};
    return cr_make_param_array(struct defrag, settings, sizeof settings / sizeof settings[0]);
}

ParameterizedTest(struct defrag *defrag, thp, works_under_every_defrag_setting, .fini = thp_restore)
{
    thp_set("madvise");
    thp_write("defrag", defrag->mode, defrag_before, sizeof defrag_before);
    FILE *f = fopen("/proc/sys/vm/compact_memory", "w");
    if (f) {
        fputs("1", f);
        fclose(f);
    }
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=thp", NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "check", "0", "stats");
    cr_expect_eq(field(r.out, "arena=", 0, "huge"), 2, "defrag=%s:\n%s", defrag->mode, r.out);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1);
    cr_expect_eq(field(r.out, "stats", 0, "thp"), 2);
}

/* A THP fault slower than PYHUGE_THP_STALL_US pauses the tier: with a
 * limit of 1 us every fault is slow (zeroing 2 MiB alone takes longer), so
 * the first page is the last until the pause ends; the next arenas go to
 * ordinary pages, saying why. With 0 the tier never pauses. */
Test(thp, a_slow_fault_pauses_the_tier, .fini = thp_restore)
{
    thp_set("madvise");
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=thp", "PYHUGE_THP_STALL_US=1", "PYHUGE_VERBOSE=1", NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "alloc", MiB, "alloc", MiB, "check", "2", "stats");
    cr_expect_eq(field(r.out, "arena=", 0, "huge"), 2, "the first page is THP:\n%s", r.out);
    cr_expect_eq(field(r.out, "arena=", 2, "huge"), 0, "then ordinary pages");
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1);
    cr_expect_eq(field(r.out, "stats", 0, "thp"), 2);
    cr_expect_eq(field(r.out, "stats", 0, "fallback"), 2);
    cr_expect(strstr(r.err, "THP tier paused for 1 s") != NULL, "stderr: %s", r.err);
}

Test(thp, no_stall_limit_never_pauses, .fini = thp_restore)
{
    thp_set("madvise");
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=thp", "PYHUGE_THP_STALL_US=0", NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "alloc", MiB, "alloc", MiB, "stats");
    cr_expect_eq(field(r.out, "arena=", 2, "huge"), 2, "%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "thp"), 4);
    cr_expect_eq(field(r.out, "stats", 0, "fallback"), 0);
}

Test(thp, thp_never_is_a_clean_no_op_with_a_reason, .fini = thp_restore)
{
    thp_set("never");
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=thp", "PYHUGE_VERBOSE=1", NULL};
    ARENAS("alloc", MiB, "check", "0", "stats");
    cr_expect_eq(field(r.out, "arena=", 0, "huge"), 0, "ordinary pages");
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1);
    cr_expect_eq(field(r.out, "stats", 0, "thp"), 0);
    cr_expect_eq(field(r.out, "stats", 0, "fallback"), 1);
    cr_expect(strstr(r.err, "no THP tier: transparent huge pages are off") != NULL, "%s", r.err);
}

Test(thp, random_misuse_matches_plain_pages_on_thp_too, .fini = thp_restore, .timeout = 300)
{
    thp_set("madvise");
    static struct run plain, shim;
    long thp = 0;
    for (int seed = 1; seed <= 25; seed++) {
        char seed_s[16];
        snprintf(seed_s, sizeof seed_s, "%d", seed);
        char *argv[] = {MISUSE_BIN, seed_s, "50", MiB, NULL};
        char *plain_env[] = {NULL};
        char *shim_env[] = {PRELOAD, "PYHUGE_BACKEND=thp", "PYHUGE_STATS=1", NULL};
        run(&plain, plain_env, argv);
        run(&shim, shim_env, argv);
        cr_assert_str_eq(shim.out, plain.out, "seed %d differs", seed);
        thp += field(shim.err, "pyhuge [", 0, "thp");
    }
    cr_expect_gt(thp, 25, "the runs used the THP tier");
}
