/*
 * The `pyhuge` command, end to end: real pool, real processes, bad
 * arguments. Each test runs tools/pyhuge.py as a user would.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define PY "/usr/bin/python3"
#define LIBVAR "PYHUGE_LIB=" PYHUGE_LIB_PATH

static struct run r;

static void pyhuge(char *const env_extra[], char *const args[])
{
    char *argv[32] = {PY, PYHUGE_CLI};
    int n = 2;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char *env[16] = {LIBVAR};
    int e = 1;
    for (int i = 0; env_extra && env_extra[i] && e < 15; i++)
        env[e++] = env_extra[i];
    env[e] = NULL;
    run(&r, env, argv);
}

#define PYHUGE(...)                                    \
    do {                                               \
        char *args_[] = {__VA_ARGS__, NULL};           \
        pyhuge(NULL, args_);                           \
    } while (0)

static void pool_32(void) { pool_require(32); }

TestSuite(cli, .fini = pool_restore, .timeout = 120);

Test(cli, help_on_every_command)
{
    const char *cmds[] = {"check", "reserve", "run", "ab", "stats", "top"};
    PYHUGE("--help");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "Exit codes") != NULL, "%s", r.out);
    for (int i = 0; i < 6; i++) {
        PYHUGE((char *)cmds[i], "--help");
        cr_expect_eq(r.status, 0, "%s --help", cmds[i]);
        cr_expect(strstr(r.out, "usage: pyhuge") != NULL, "%s --help: %s", cmds[i], r.out);
    }
}

Test(cli, bad_arguments_are_usage_errors)
{
    PYHUGE("frobnicate");
    cr_expect_eq(r.status, 64);
    PYHUGE("reserve", "lots");
    cr_expect_eq(r.status, 64);
    cr_expect(strstr(r.err, "512M") != NULL, "says what a size looks like: %s", r.err);
    PYHUGE("reserve", "0");
    cr_expect_eq(r.status, 64);
    PYHUGE("reserve", "1.5");
    cr_expect_eq(r.status, 64, "half a page");
    PYHUGE("stats", "abc");
    cr_expect_eq(r.status, 64);
    PYHUGE("run");
    cr_expect_eq(r.status, 64);
    cr_expect(strstr(r.err, "after --") != NULL, "%s", r.err);
    PYHUGE("ab", "-n", "1", "--", "/bin/true");
    cr_expect_eq(r.status, 64);
}

Test(cli, check_ready_with_a_pool, .init = pool_32)
{
    PYHUGE("check", "/usr/bin/python3.11");
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_expect(strstr(r.out, "CPython 3.11") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "libpython in the executable") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "imports mmap64") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "verdict: READY") != NULL, "%s", r.out);
}

Test(cli, check_degraded_without_a_pool_names_the_fix)
{
    pool_require(0);
    PYHUGE("check", "/usr/bin/python3.11");
    cr_expect_eq(r.status, 1, "%s", r.out);
    cr_expect(strstr(r.out, "pool is empty") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "pyhuge reserve") != NULL, "the fix is a command: %s", r.out);
}

Test(cli, check_impossible_for_setuid_and_non_python, .init = pool_32)
{
    PYHUGE("check", "/bin/true");
    cr_expect_eq(r.status, 2, "%s", r.out);
    char copy[] = "/tmp/pyhuge-setuid-python-XXXXXX";
    int fd = mkstemp(copy);
    cr_assert_geq(fd, 0);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cp /usr/bin/python3.11 %s && chmod 4755 %s", copy, copy);
    cr_assert_eq(system(cmd), 0);
    PYHUGE("check", copy);
    unlink(copy);
    cr_expect_eq(r.status, 2, "%s", r.out);
    cr_expect(strstr(r.out, "setuid") != NULL, "%s", r.out);
}

Test(cli, reserve_sizes_the_pool_and_says_what_was_granted)
{
    pool_require(0);
    PYHUGE("reserve", "64M");
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_expect_geq(meminfo("HugePages_Free"), 32);
    cr_expect(strstr(r.out, "granted: pool 32 pages") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "sysctl.d") != NULL, "how to make it persistent: %s", r.out);
    cr_expect(strstr(r.out, "hugepages-2Mi: 64Mi") != NULL, "the Kubernetes resource: %s", r.out);
    PYHUGE("reserve", "40");
    cr_expect_eq(r.status, 0);
    cr_expect_eq(meminfo("HugePages_Total"), 40, "a page count");
}

Test(cli, reserve_without_root_says_what_needs_root)
{
    pool_require(0);
    char *argv[] = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    PY, PYHUGE_CLI, "reserve", "64M", NULL};
    char *env[] = {LIBVAR, NULL};
    run(&r, env, argv);
    if (r.status == 127)
        cr_skip_test("no setpriv to drop root");
    cr_expect_eq(r.status, 2, "%s%s", r.out, r.err);
    cr_expect(strstr(r.err, "needs root") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "sudo") != NULL, "%s", r.err);
    cr_expect_eq(meminfo("HugePages_Total"), 0);
}

Test(cli, run_preloads_keeps_ld_preload_and_passes_the_exit_status, .init = pool_32)
{
    char *env[] = {"LD_PRELOAD=/lib/x86_64-linux-gnu/libm.so.6", NULL};
    char *args[] = {"run", "--", "/bin/sh", "-c", "echo \"$LD_PRELOAD\"; exit 7", NULL};
    pyhuge(env, args);
    cr_expect_eq(r.status, 7);
    cr_expect_eq(strncmp(r.out, PYHUGE_LIB_PATH ":/lib/x86_64-linux-gnu/libm.so.6", strlen(PYHUGE_LIB_PATH) + 1), 0,
                 "ours first, theirs kept: %s", r.out);
}

Test(cli, run_stats_reports_every_python_process, .init = pool_32)
{
    PYHUGE("run", "--stats", "--", "/usr/bin/python3.11", "-c",
           "import subprocess, sys; x = [(i,) for i in range(300000)]; "
           "subprocess.run([sys.executable, '-c', 'y = [str(i) for i in range(200000)]'])");
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_eq(count_lines(r.err, "pyhuge ["), 2, "parent and child: %s", r.err);
    cr_expect(strstr(r.err, "2 process(es) under the shim") != NULL, "%s", r.err);
}

Test(cli, ab_gives_a_verdict_json_and_chart, .init = pool_32)
{
    char json[] = "/tmp/pyhuge-ab-XXXXXX";
    int fd = mkstemp(json);
    close(fd);
    char png[64];
    snprintf(png, sizeof png, "%s.png", json);
    PYHUGE("ab", "-n", "3", "--warmup", "0", "--json", json, "--png", png, "--",
           "/usr/bin/python3.11", "-c", "x = [(i, str(i)) for i in range(300000)]");
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_expect(strstr(r.out, "verdict: ") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "minor page faults") != NULL, "%s", r.out);
    cr_expect(strstr(r.err, "run 6/6") != NULL, "a progress line: %s", r.err);
    char buf[1 << 14] = {0};
    FILE *f = fopen(json, "r");
    cr_assert_not_null(f);
    fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    cr_expect(strstr(buf, "\"verdict\"") && strstr(buf, "\"ratio_ci95\""), "JSON: %.300s", buf);
    struct stat st;
    if (stat(png, &st) == 0)
        cr_expect_gt(st.st_size, 1000, "a real PNG");
    else
        cr_expect(strstr(r.err, "matplotlib") != NULL, "says why there is no chart: %s", r.err);
    unlink(json);
    unlink(png);
}

Test(cli, ab_stops_on_a_failing_command)
{
    PYHUGE("ab", "-n", "3", "--", "/bin/sh", "-c", "exit 3");
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "status 3") != NULL, "%s", r.err);
}

Test(cli, stats_and_top_see_a_running_python, .init = pool_32)
{
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ready[1], 1);
        char *argv[] = {"/usr/bin/python3.11", "-c",
                        "import sys, time; x = [(i, str(i)) for i in range(300000)]; "
                        "print('ready', flush=True); time.sleep(30)", NULL};
        char *env[] = {"LD_PRELOAD=" PYHUGE_LIB_PATH, NULL};
        execve(argv[0], argv, env);
        _exit(127);
    }
    char line[16] = {0};
    cr_assert_gt(read(ready[0], line, sizeof line - 1), 0);
    char pid_s[16];
    snprintf(pid_s, sizeof pid_s, "%d", pid);
    PYHUGE("stats", pid_s, "--json");
    int stats_status = r.status;
    static char stats_out[1 << 14];
    memcpy(stats_out, r.out, sizeof stats_out);
    PYHUGE("top", "--once");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_expect_eq(stats_status, 0, "%s", stats_out);
    cr_expect(strstr(stats_out, "on huge pages now") != NULL, "%s", stats_out);
    cr_expect(strstr(stats_out, "\"arenas_huge\"") != NULL, "%s", stats_out);
    cr_expect(strstr(r.out, pid_s) != NULL, "top lists it: %s", r.out);
}

Test(cli, stats_of_a_process_without_the_shim)
{
    char pid_s[16];
    snprintf(pid_s, sizeof pid_s, "%d", getpid());
    PYHUGE("stats", pid_s);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.out, "not running under the shim") != NULL, "%s", r.out);
    PYHUGE("stats", "999999999");
    cr_expect_eq(r.status, 1);
}
