/*
 * What the shim says, and that it never says too much: warnings have a
 * budget of their own that chatty levels cannot use up, a line counts what
 * the caps left out, and a process that is not a CPython the shim can serve
 * is told what it is. A process that is not CPython hears nothing at all;
 * the exit line and its destination never block and never fail silently;
 * a fallback is counted under its real cause.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define PRELOAD PYHUGE_PRELOAD
#define PYTHON27 "/root/.pyenv/versions/2.7.18/bin/python2.7"
#define PYTHON3 "/usr/bin/python3.11"

static struct run r;

/* 100 arenas of 2 MiB at PYHUGE_VERBOSE=2: a message per page, every one
 * of them (asked for), and the warning at exit about the stats file. */
Test(messages, warnings_outlast_a_chatty_verbose_level)
{
    char *argv[204] = {ARENAS_BIN};
    int n = 1;
    for (int i = 0; i < 100; i++) {
        argv[n++] = "alloc";
        argv[n++] = "2097152";
    }
    argv[n] = NULL;
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=thp", "PYHUGE_VERBOSE=2", "PYHUGE_THP_STALL_US=0",
                   "PYHUGE_STATS=/nonexistent-dir/stats.log", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "cannot open PYHUGE_STATS file /nonexistent-dir/stats.log") != NULL,
              "the warning is printed:\n%s", r.err);
    cr_expect(strstr(r.err, "stats: arenas") != NULL, "the stats go to stderr instead");
    int pages = 0;
    for (const char *p = r.err; (p = strstr(p, "THP page ")); p++)
        pages++;
    cr_expect_eq(pages, 100, "a line per page at level 2:\n%s", r.err);
}

/* A flood of warnings (40 misspelt variables) is capped, and one line says
 * how many were left out. */
Test(messages, a_flood_of_warnings_is_capped_and_counted)
{
    static char names[40][32];
    char *env[44] = {PRELOAD};
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "PYHUGE_TYPO%d=1", i);
        env[i + 1] = names[i];
    }
    env[41] = NULL;
    char *argv[] = {ARENAS_BIN, "alloc", "1048576", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s", r.err);
    int warnings = 0;
    for (const char *p = r.err; (p = strstr(p, "is not a pyhuge variable")); p++)
        warnings++;
    cr_expect_eq(warnings, 32, "the first 32:\n%s", r.err);
    cr_expect(strstr(r.err, "8 warnings and 0 other messages were not printed") != NULL, "%s",
              r.err);
}

Test(messages, python_2_is_told_what_it_is)
{
    if (access(PYTHON27, X_OK) != 0)
        cr_skip_test("no %s on this machine", PYTHON27);
    char *argv[] = {PYTHON27, "-c", "x = [str(i) for i in range(100000)]", NULL};
    char *env[] = {PRELOAD, "PYHUGE_VERBOSE=1", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "Python 2.7.18 in ") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "no arena allocator to recognise") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "no CPython in this process") == NULL, "%s", r.err);
}

Test(messages, a_program_without_python_is_told_so)
{
    char *argv[] = {"/bin/true", NULL};
    char *env[] = {PRELOAD, "PYHUGE_VERBOSE=1", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "nothing was done: no CPython in this process") != NULL, "%s", r.err);
}

/* Misspelt names and bad values are the shim's business only where it has
 * work: sh, sed, grep and true under it print nothing, not even warnings. */
Test(messages, programs_that_are_not_cpython_hear_nothing)
{
    char *env[] = {PRELOAD, "PYHUGE_VERBSE=1", "PYHUGE_FORK=yolo", "PYHUGE_ARM=bad label",
                   "PYHUGE_STATS=relative", "PYHUGE_METRICS=relative", NULL};
    char *cmds[][6] = {
        {"/bin/true", NULL},
        {"/bin/sh", "-c", "echo abc | sed s/b/x/ | grep -q axc", NULL},
        {"/bin/sed", "-n", "1p", "/proc/self/status", NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        run(&r, env, cmds[i]);
        cr_expect_eq(r.status, 0, "%s: %s", cmds[i][0], r.err);
        cr_expect_str_eq(r.err, "", "%s says nothing", cmds[i][0]);
    }
    char *off[] = {PRELOAD, "PYHUGE=off", "PYHUGE_TYPO=1", NULL};
    run(&r, off, cmds[0]);
    cr_expect_str_eq(r.err, "", "nor with PYHUGE=off");
}

/* ... and CPython still hears every one of them, once. */
Test(messages, cpython_still_hears_each_warning_once)
{
    if (access(PYTHON3, X_OK) != 0)
        cr_skip_test("no %s on this machine", PYTHON3);
    char *argv[] = {PYTHON3, "-c", "pass", NULL};
    char *env[] = {PRELOAD, "PYHUGE_VERBSE=1", "PYHUGE_FORK=yolo", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_eq(count_lines(r.err, "pyhuge ["), 2, "%s", r.err);
    cr_expect(strstr(r.err, "PYHUGE_VERBSE is not a pyhuge variable") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "PYHUGE_FORK=\"yolo\"") != NULL, "%s", r.err);
    char *off[] = {PRELOAD, "PYHUGE=off", "PYHUGE_VERBSE=1", NULL};
    run(&r, off, argv);
    cr_expect(strstr(r.err, "PYHUGE_VERBSE is not a pyhuge variable") != NULL,
              "PYHUGE=off, but CPython: %s", r.err);
}

/* A FIFO nobody reads: the open would wait forever. timeout(1) ends the
 * run after 20 s (status 124) if it does. */
Test(messages, a_stats_fifo_without_reader_never_blocks_the_exit)
{
    char dir[] = "/tmp/pyhuge-fifo-XXXXXX", fifo[64], var[96];
    cr_assert(mkdtemp(dir));
    snprintf(fifo, sizeof fifo, "%s/stats", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    snprintf(var, sizeof var, "PYHUGE_STATS=%s", fifo);
    char *env[] = {PRELOAD, var, NULL};
    char *argv[] = {"/usr/bin/timeout", "20", ARENAS_BIN, "alloc", "1048576", NULL};
    run(&r, env, argv);
    unlink(fifo);
    rmdir(dir);
    cr_expect_eq(r.status, 0, "exit status %d (124: it hung)\n%s", r.status, r.err);
    cr_expect(strstr(r.err, "not a regular file") != NULL, "one warning: %s", r.err);
    cr_expect_eq(count_lines(r.err, "pyhuge ["), 2, "the warning and the line: %s", r.err);
    cr_expect(strstr(r.err, "stats: arenas") != NULL, "the line goes to stderr: %s", r.err);
}

Test(messages, a_stats_file_that_cannot_be_written_says_so)
{
    char *env[] = {PRELOAD, "PYHUGE_STATS=/dev/full", NULL};
    char *argv[] = {ARENAS_BIN, "alloc", "1048576", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "WARNING") && strstr(r.err, "PYHUGE_STATS file /dev/full"),
              "a warning: %s", r.err);
    cr_expect(strstr(r.err, "stats: arenas") != NULL, "the line goes to stderr: %s", r.err);
}

/* A full file system: the write itself fails (ENOSPC), on a 64 KiB tmpfs
 * filled to the last block. */
Test(messages, a_full_disk_loses_no_stats_line_silently)
{
    char dir[] = "/tmp/pyhuge-full-XXXXXX", fill[64], var[96];
    cr_assert(mkdtemp(dir));
    if (mount("tmpfs", dir, "tmpfs", 0, "size=64k") != 0) {
        rmdir(dir);
        cr_skip_test("cannot mount a tmpfs (%s; needs root)", strerror(errno));
    }
    snprintf(fill, sizeof fill, "%s/fill", dir);
    int fd = open(fill, O_WRONLY | O_CREAT, 0600);
    static char block[4096];
    while (fd >= 0 && write(fd, block, sizeof block) > 0)
        ;
    close(fd);
    snprintf(var, sizeof var, "PYHUGE_STATS=%s/stats.log", dir);
    char *env[] = {PRELOAD, var, NULL};
    char *argv[] = {ARENAS_BIN, "alloc", "1048576", NULL};
    run(&r, env, argv);
    umount(dir);
    rmdir(dir);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "cannot write PYHUGE_STATS file") != NULL, "a warning: %s", r.err);
    cr_expect(strstr(r.err, "stats: arenas") != NULL, "the line goes to stderr: %s", r.err);
}

/* The arm in the exit line and on the stats page tools read (found in
 * /proc/self/maps, read through /proc/self/mem). */
Test(messages, the_arm_is_in_the_exit_line_and_on_the_stats_page)
{
    if (access(PYTHON3, X_OK) != 0)
        cr_skip_test("no %s on this machine", PYTHON3);
    char *argv[] = {PYTHON3, "-c",
                    "x = [str(i) for i in range(300000)]\n"
                    "for l in open('/proc/self/maps'):\n"
                    "    if 'pyhuge-stats' in l:\n"
                    "        a = int(l.split('-')[0], 16)\n"
                    "        with open('/proc/self/mem', 'rb') as m:\n"
                    "            m.seek(a); p = m.read(88)\n"
                    "        print('magic=%s arm=%s' % (p[:15].decode(), p[24:88].split(b'\\0')[0].decode()))\n",
                    NULL};
    char *env[] = {PRELOAD, "PYHUGE_STATS=1", "PYHUGE_ARM=treatment-1", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "magic=pyhuge-stats-v2 arm=treatment-1") != NULL, "page: %s", r.out);
    cr_expect(strstr(r.err, "; arm=treatment-1\n") != NULL, "exit line: %s", r.err);
    char *bad[] = {PRELOAD, "PYHUGE_STATS=1", "PYHUGE_ARM=a\"b", NULL};
    run(&r, bad, argv);
    cr_expect(strstr(r.out, "arm=\n") != NULL, "a bad label is unset: %s", r.out);
    cr_expect(strstr(r.err, "WARNING: PYHUGE_ARM=") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "; arm=") == NULL, "%s", r.err);
}

/* With the pool dry and the default backend, the THP tier paused by a slow
 * fault (a limit of 1 us: every fault is slow), arenas fall back while the
 * hugetlb tier waits after the pool's refusal: the cause is the pool. */
Test(messages, a_dry_pool_is_counted_as_pool_not_backoff, .fini = pool_restore)
{
    if (access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK) != 0)
        cr_skip_test("no transparent huge pages in this kernel");
    pool_require(0);
    char *env[] = {PRELOAD, "PYHUGE_STATS=1", "PYHUGE_THP_STALL_US=1", NULL};
    char *argv[16] = {ARENAS_BIN};
    for (int i = 0; i < 6; i++) {
        argv[1 + 2 * i] = "alloc";
        argv[2 + 2 * i] = "1048576";
    }
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s", r.err);
    long fallback = field(r.err, "pyhuge [", 0, "fallback");
    cr_expect_gt(fallback, 0, "some arenas fell back: %s", r.err);
    cr_expect_eq(field(r.err, "pyhuge [", 0, "pool"), fallback, "%s", r.err);
    cr_expect_eq(field(r.err, "pyhuge [", 0, "backoff"), 0, "%s", r.err);
}

/* Where the pool is not asked (PYHUGE_BACKEND=thp), a paused THP tier is
 * what the arenas wait for: backoff. */
Test(messages, a_paused_thp_tier_alone_is_backoff)
{
    char *env[] = {PRELOAD, "PYHUGE_STATS=1", "PYHUGE_THP_STALL_US=1", "PYHUGE_BACKEND=thp", NULL};
    char *argv[16] = {ARENAS_BIN};
    for (int i = 0; i < 6; i++) {
        argv[1 + 2 * i] = "alloc";
        argv[2 + 2 * i] = "1048576";
    }
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s", r.err);
    if (field(r.err, "pyhuge [", 0, "thp") == 0 && field(r.err, "pyhuge [", 0, "backoff") == 0)
        cr_skip_test("no THP tier here: %s", r.err);
    long fallback = field(r.err, "pyhuge [", 0, "fallback");
    cr_expect_gt(fallback, 0, "%s", r.err);
    cr_expect_eq(field(r.err, "pyhuge [", 0, "backoff"), fallback, "%s", r.err);
}
