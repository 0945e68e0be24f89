/*
 * A hugetlb cgroup whose fault-time limit is below what the process wants,
 * as Kubernetes sets for hugepages-2Mi: mmap succeeds and the first touch
 * is refused. A naive user of huge pages dies of SIGBUS; under the shim a
 * real CPython falls back to ordinary pages and finishes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define PRELOAD PYHUGE_PRELOAD
#define PYTHON "/usr/bin/python3.11"
#define LIMIT_PAGES 4

static char mnt[] = "/tmp/pyhuge-cg-XXXXXX";
static char group[256], limit_file[320];
static bool mounted;
static struct run r;
/* The pool as the suite found it, with 64 pages for the tests beyond what
 * other processes hold (harness.h). */
static struct pool base;

static bool write_file(const char *path, const char *value)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fputs(value, f) >= 0;
    return (fclose(f) == 0) && ok;
}

/* A v1 hugetlb hierarchy of our own, with a child group limited to
 * LIMIT_PAGES pages at fault time. */
static void limited_group(void)
{
    base = pool_require(64);
    if (!mkdtemp(mnt))
        cr_skip_test("mkdtemp: %s", strerror(errno));
    if (mount("none", mnt, "cgroup", 0, "hugetlb") != 0) {
        rmdir(mnt);
        cr_skip_test("cannot mount the hugetlb cgroup controller (v1): %s; needs root and a "
                     "controller not bound to cgroup v2", strerror(errno));
    }
    mounted = true;
    snprintf(group, sizeof group, "%s/limited", mnt);
    snprintf(limit_file, sizeof limit_file, "%s/hugetlb.2MB.limit_in_bytes", group);
    char limit[32];
    snprintf(limit, sizeof limit, "%d", LIMIT_PAGES * 2 * 1024 * 1024);
    if (mkdir(group, 0755) != 0 || !write_file(limit_file, limit))
        cr_skip_test("cannot make a limited hugetlb group: %s", strerror(errno));
}

static void cleanup(void)
{
    if (group[0])
        rmdir(group);
    if (mounted)
        umount(mnt);
    rmdir(mnt);
    pool_restore();
}

TestSuite(cgroup, .init = limited_group, .fini = cleanup, .timeout = 120);

/* Runs argv inside the limited group. */
static void run_in_group(char *const env[], char *cmd[])
{
    char procs[320];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", group);
    char script[400];
    snprintf(script, sizeof script, "echo $$ > %s && exec \"$@\"", procs);
    char *argv[64] = {"/bin/sh", "-c", script, "sh"};
    int n = 4;
    for (int i = 0; cmd[i] && n < 63; i++)
        argv[n++] = cmd[i];
    argv[n] = NULL;
    run(&r, env, argv);
}

Test(cgroup, naive_huge_page_user_dies_of_sigbus)
{
    char *env[] = {NULL};
    char *cmd[] = {ARENAS_BIN, "naive", "16", NULL};
    run_in_group(env, cmd);
    cr_expect_eq(r.status, 128 + 7, "mmap succeeds, the touch past the limit is SIGBUS (status %d)\n%s",
                 r.status, r.out);
    pool_expect_back(&base, "after the SIGBUS");
}

Test(cgroup, python_under_the_shim_falls_back_and_finishes)
{
    if (access(PYTHON, X_OK) != 0)
        cr_skip_test("no %s", PYTHON);
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=hugetlb", "PYHUGE_STATS=1", NULL};
    char *cmd[] = {PYTHON, WORKLOAD_PY, NULL};
    run_in_group(env, cmd);
    cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
    cr_expect_eq(field(r.out, "result", 0, "checksum"), 90001988890L);
    cr_expect_leq(field(r.out, "result", 0, "hugetlb_kb"), LIMIT_PAGES * 2048);
    cr_expect_gt(field(r.out, "stats", 0, "huge"), 0, "used what the limit allows");
    cr_expect_gt(field(r.out, "stats", 0, "fallback"), 0);
    cr_expect(strstr(r.err, "fault=0 ") == NULL, "fallbacks counted as fault: %s", r.err);
    pool_expect_back(&base, "after Python exited");
}

Test(cgroup, preload_program_falls_back_at_the_limit)
{
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=hugetlb", NULL};
    char *cmd[] = {ARENAS_BIN, "alloc", "1048576", "alloc", "1048576", "alloc", "1048576",
                   "alloc", "1048576", "alloc", "1048576", "alloc", "1048576", "alloc", "1048576",
                   "alloc", "1048576", "alloc", "1048576", "alloc", "1048576", "check", "9",
                   "stats", NULL};
    run_in_group(env, cmd);
    cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
    cr_expect_eq(field(r.out, "stats", 0, "huge"), 2 * LIMIT_PAGES);
    cr_expect_eq(field(r.out, "stats", 0, "fallback"), 10 - 2 * LIMIT_PAGES);
    cr_expect_geq(field(r.out, "stats", 0, "fault"), 1);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1);
}

/* In the default mode the arenas the limit refuses go to the THP tier. */
Test(cgroup, auto_mode_moves_on_to_thp_at_the_limit)
{
    char *env[] = {PRELOAD, NULL};
    char *cmd[] = {ARENAS_BIN, "alloc", "1048576", "alloc", "1048576", "alloc", "1048576",
                   "alloc", "1048576", "alloc", "1048576", "alloc", "1048576", "alloc", "1048576",
                   "alloc", "1048576", "alloc", "1048576", "alloc", "1048576", "check", "9",
                   "stats", NULL};
    run_in_group(env, cmd);
    cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
    cr_expect_eq(field(r.out, "stats", 0, "huge"), 2 * LIMIT_PAGES);
    cr_expect_eq(field(r.out, "stats", 0, "thp"), 10 - 2 * LIMIT_PAGES, "%s", r.out);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1);
}
