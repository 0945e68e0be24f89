/*
 * The `pyhuge` command, end to end: real pool, real processes, bad
 * arguments. Each test runs tools/pyhuge.py (the copy in the source tree)
 * or the copy meson configures into the build directory, as a user would.
 */
#include <criterion/criterion.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The pool as the test found it, with the pages it asked for beyond what
 * other processes hold (harness.h). */
static struct pool base;
/* Twice what `pyhuge check` wants free to say READY: another process may
 * take a few meanwhile. */
static void pool_64(void) { base = pool_require(64); }

TestSuite(cli, .fini = pool_restore, .timeout = 120);

Test(cli, help_on_every_command)
{
    const char *cmds[] = {"check", "reserve", "run", "ab", "stats", "top", "compare"};
    PYHUGE("--help");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "Exit codes") != NULL, "%s", r.out);
    for (int i = 0; i < 7; i++) {
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

Test(cli, check_ready_with_a_pool, .init = pool_64)
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
    base = pool_require(0);
    PYHUGE("check", "/usr/bin/python3.11");
    cr_expect_eq(r.status, 1, "%s", r.out);
    if (base.total == 0) {
        cr_expect(strstr(r.out, "pool is empty") != NULL, "%s", r.out);
    } else {
        char held[96];
        snprintf(held, sizeof held, "only 0 free 2 MiB pages in the pool (%ld held by processes)",
                 pool_held(&base));
        cr_expect(strstr(r.out, held) != NULL, "no page left beside the others' %ld:\n%s",
                  pool_held(&base), r.out);
    }
    cr_expect(strstr(r.out, "pyhuge reserve") != NULL, "the fix is a command: %s", r.out);
}

Test(cli, check_impossible_for_setuid_and_non_python, .init = pool_64)
{
    PYHUGE("check", "/bin/true");
    cr_expect_eq(r.status, 2, "%s", r.out);
    cr_expect(strstr(r.out, "/bin/true is not a Python interpreter") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "Expecting value") == NULL, "no JSON parser's words: %s", r.out);
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

/* reserve makes SIZE free beyond what processes hold (pages in use,
 * reserved or surplus), and never takes theirs. */
Test(cli, reserve_sizes_the_pool_and_says_what_was_granted)
{
    base = pool_require(0);
    PYHUGE("reserve", "64M");
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    struct pool now = pool_now();
    cr_expect_eq(pool_available(&now), 32, "64 MiB free for new mappings:\n%s", r.out);
    cr_expect_eq(pool_held(&now), pool_held(&base), "nobody lost a page");
    /* Other processes on a shared machine take and give pages meanwhile:
     * the pool granted is what the command itself saw held, plus 32. */
    long seen_held = -1;
    const char *asked = strstr(r.out, " free, ");
    cr_assert(asked && sscanf(asked, " free, %ld held by processes", &seen_held) == 1, "%s", r.out);
    char granted[96];
    snprintf(granted, sizeof granted, "granted: pool %ld pages", seen_held + 32);
    cr_expect(strstr(r.out, granted) != NULL, "%s\n%s", granted, r.out);
    cr_expect(strstr(r.out, "MiB), 32 free\n") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "sysctl.d") != NULL, "how to make it persistent: %s", r.out);
    cr_expect(strstr(r.out, "hugepages-2Mi: 64Mi") != NULL, "the Kubernetes resource: %s", r.out);
    PYHUGE("reserve", "40");
    cr_expect_eq(r.status, 0);
    now = pool_now();
    cr_expect_eq(pool_available(&now), 40, "a page count:\n%s", r.out);
    PYHUGE("reserve", "8");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "already enough") != NULL, "%s", r.out);
    now = pool_now();
    cr_expect_eq(pool_available(&now), 40, "reserve never shrinks the pool");
}

Test(cli, reserve_without_root_says_what_needs_root)
{
    base = pool_require(0);
    char *argv[] = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    PY, PYHUGE_CLI, "reserve", "64M", NULL};
    char *env[] = {LIBVAR, NULL};
    run(&r, env, argv);
    if (r.status == 127)
        cr_skip_test("no setpriv to drop root");
    cr_expect_eq(r.status, 2, "%s%s", r.out, r.err);
    cr_expect(strstr(r.err, "needs root") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "sudo") != NULL, "%s", r.err);
    pool_expect_back(&base, "nothing changed");
}

Test(cli, run_preloads_keeps_ld_preload_and_passes_the_exit_status, .init = pool_64)
{
    char *env[] = {"LD_PRELOAD=/lib/x86_64-linux-gnu/libm.so.6", NULL};
    char *args[] = {"run", "--", "/bin/sh", "-c", "echo \"$LD_PRELOAD\"; exit 7", NULL};
    pyhuge(env, args);
    cr_expect_eq(r.status, 7);
    cr_expect_eq(strncmp(r.out, PYHUGE_LIB_PATH ":/lib/x86_64-linux-gnu/libm.so.6", strlen(PYHUGE_LIB_PATH) + 1), 0,
                 "ours first, theirs kept: %s", r.out);
}

Test(cli, run_stats_reports_every_python_process, .init = pool_64)
{
    PYHUGE("run", "--stats", "--", "/usr/bin/python3.11", "-c",
           "import subprocess, sys; x = [(i,) for i in range(300000)]; "
           "subprocess.run([sys.executable, '-c', 'y = [str(i) for i in range(200000)]'])");
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_eq(count_lines(r.err, "pyhuge ["), 2, "parent and child: %s", r.err);
    cr_expect(strstr(r.err, "2 process(es) under the shim") != NULL, "%s", r.err);
}

Test(cli, ab_gives_a_verdict_json_and_chart, .init = pool_64)
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
    cr_expect(strstr(r.out, "rank test: wall time shift ") != NULL, "%s", r.out);
    cr_expect(strchr(r.err, '\r') == NULL, "no progress lines when stderr is no terminal: %s", r.err);
    cr_expect(strstr(r.err, "run 6/6") == NULL, "%s", r.err);
    char buf[1 << 14] = {0};
    FILE *f = fopen(json, "r");
    cr_assert_not_null(f);
    fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    cr_expect(strstr(buf, "\"verdict\"") && strstr(buf, "\"ratio_ci95\""), "JSON: %.300s", buf);
    cr_expect(strstr(buf, "\"wall_rank_test\"") && strstr(buf, "\"treatment\""), "JSON: %.300s", buf);
    struct stat st;
    if (stat(png, &st) == 0)
        cr_expect_gt(st.st_size, 1000, "a real PNG");
    else
        cr_expect(strstr(r.err, "matplotlib") != NULL, "says why there is no chart: %s", r.err);
    unlink(json);
    unlink(png);
}

/* Each arm's processes, as the command they run sees them: PYHUGE_ARM,
 * PYHUGE and whether LD_PRELOAD holds the library, one line per run. */
static char arm_log[64];
static void ab_arms(const char *const opts[])
{
    snprintf(arm_log, sizeof arm_log, "/tmp/pyhuge-ab-arms-XXXXXX");
    int fd = mkstemp(arm_log);
    cr_assert_geq(fd, 0);
    close(fd);
    char script[256];
    snprintf(script, sizeof script,
             "case \"$LD_PRELOAD\" in *libpyhuge*) p=shim;; *) p=none;; esac; "
             "echo \"$PYHUGE_ARM ${PYHUGE:-unset} $p\" >> %s", arm_log);
    char *args[24] = {"ab", "-n", "3", "--warmup", "0"};
    int n = 5;
    for (int i = 0; opts[i]; i++)
        args[n++] = (char *)opts[i];
    args[n++] = "--";
    args[n++] = "/bin/sh";
    args[n++] = "-c";
    args[n++] = script;
    args[n] = NULL;
    char *env[] = {"PYHUGE=on", NULL}; /* ab sets each arm's own */
    pyhuge(env, args);
}
static int arm_lines(const char *line)
{
    FILE *f = fopen(arm_log, "r");
    cr_assert_not_null(f);
    static char buf[4096];
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    buf[got] = 0;
    fclose(f);
    return count_lines(buf, line);
}

Test(cli, ab_control_off_loads_the_library_switched_off)
{
    const char *opts[] = {"--control", "off", NULL};
    ab_arms(opts);
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_expect_eq(arm_lines("control off shim"), 3, "the control arm: library loaded, PYHUGE=off");
    cr_expect_eq(arm_lines("treatment unset shim"), 3, "the treatment arm: the shim on");
    cr_expect(strstr(r.out, "| PYHUGE=off") != NULL, "the column says what the control is: %s", r.out);
    unlink(arm_log);

    const char *stock[] = {NULL};
    ab_arms(stock);
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_expect_eq(arm_lines("control unset none"), 3, "the default control: no LD_PRELOAD");
    cr_expect_eq(arm_lines("treatment unset shim"), 3);
    unlink(arm_log);

    const char *labels[] = {"--arm-labels", "base,canary", NULL};
    ab_arms(labels);
    cr_expect_eq(arm_lines("base unset none"), 3, "PYHUGE_ARM from --arm-labels");
    cr_expect_eq(arm_lines("canary unset shim"), 3);
    unlink(arm_log);
}

Test(cli, ab_aa_runs_the_control_in_both_arms)
{
    const char *opts[] = {"--aa", "--control", "off", NULL};
    ab_arms(opts);
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_expect_eq(arm_lines("control off shim"), 3, "%s", r.out);
    cr_expect_eq(arm_lines("treatment off shim"), 3, "the second arm is the control too");
    cr_expect(strstr(r.out, "A/A: both arms run") != NULL, "%s", r.out);
    unlink(arm_log);
    const char *bad[] = {"--arm-labels", "same,same", NULL};
    ab_arms(bad);
    cr_expect_eq(r.status, 64, "two labels that differ: %s", r.err);
    unlink(arm_log);
}

Test(cli, ab_stops_on_a_failing_command)
{
    PYHUGE("ab", "-n", "3", "--", "/bin/sh", "-c", "exit 3");
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "status 3") != NULL, "%s", r.err);
}

Test(cli, stats_and_top_see_a_running_python, .init = pool_64)
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
    /* every field of struct pyhuge_stats v4, the two the old copy lacked
     * included, and the page's arm label */
    cr_expect(strstr(stats_out, "\n  pages_forked ") != NULL, "%s", stats_out);
    cr_expect(strstr(stats_out, "\n  arenas_unseen ") != NULL, "%s", stats_out);
    cr_expect(strstr(stats_out, "\"pages_forked\"") != NULL, "%s", stats_out);
    cr_expect(strstr(stats_out, "shim            arm ") != NULL, "%s", stats_out);
    cr_expect(strstr(stats_out, "stats page pyhuge-stats-v2, stats version 4") != NULL, "%s", stats_out);
    cr_expect(strstr(r.out, pid_s) != NULL, "top lists it: %s", r.out);
}

/* Whether the library reads PYHUGE_ARM (it names it among its variables). */
static bool library_knows_arm(void)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "grep -q PYHUGE_ARM '%s'", PYHUGE_LIB_PATH);
    return system(cmd) == 0;
}

Test(cli, stats_and_top_show_the_arm_label, .init = pool_64)
{
    if (!library_knows_arm())
        cr_skip_test("this libpyhuge predates PYHUGE_ARM");
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ready[1], 1);
        char *argv[] = {"/usr/bin/python3.11", "-c",
                        "import time; x = [(i, str(i)) for i in range(300000)]; "
                        "print('ready', flush=True); time.sleep(30)", NULL};
        char *env[] = {"LD_PRELOAD=" PYHUGE_LIB_PATH, "PYHUGE_ARM=canary-7", NULL};
        execve(argv[0], argv, env);
        _exit(127);
    }
    char line[16] = {0};
    cr_assert_gt(read(ready[0], line, sizeof line - 1), 0);
    char pid_s[16];
    snprintf(pid_s, sizeof pid_s, "%d", pid);
    PYHUGE("stats", pid_s, "--json");
    static char stats_out[1 << 14];
    memcpy(stats_out, r.out, sizeof stats_out);
    PYHUGE("top", "--once");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_expect(strstr(stats_out, "shim            arm \"canary-7\"; enabled") != NULL, "%s", stats_out);
    cr_expect(strstr(stats_out, "\"arm\": \"canary-7\"") != NULL, "%s", stats_out);
    char row[64];
    snprintf(row, sizeof row, "%7s %-16s canary-7", pid_s, "python3.11");
    cr_expect(strstr(r.out, row) != NULL, "top's ARM column: %s\n%s", row, r.out);
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
    cr_expect(strstr(r.err, "there is no process 999999999") != NULL, "%s", r.err);
}

/* PID 1 as root: the truth, whichever it is here (not under the shim, or
 * the kernel refuses even root its maps), never "no such process". */
Test(cli, stats_of_process_1_says_why)
{
    if (geteuid() != 0)
        cr_skip_test("needs root");
    PYHUGE("stats", "1");
    cr_expect(strstr(r.out, "no such process") == NULL, "%s", r.out);
    bool not_shim = strstr(r.out, "process 1 (") && strstr(r.out, "no libpyhuge mapped");
    bool refused = strstr(r.out, "refuses even root the memory map of process 1 (") != NULL;
    cr_expect(not_shim || refused, "%s", r.out);
    cr_expect_eq(r.status, not_shim ? 1 : 2, "%s", r.out);
}

/* ---- finding the library ------------------------------------------------ */

/* The build directory: the library's (PYHUGE_LIB_PATH is its real file,
 * libpyhuge.so.0.1.0; libpyhuge.so links to it). */
static const char *build_dir(void)
{
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s", PYHUGE_LIB_PATH);
    return dirname(dir);
}

/* The command meson configures into the build directory, next to the
 * library (which is what lets it find the library beside itself). */
static const char *built_cli(void)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/pyhuge", build_dir());
    cr_assert_eq(access(path, R_OK), 0, "no configured command at %s", path);
    return path;
}

/* Runs cmd from directory dir, with only env (and what run() adds). */
static void run_in(const char *dir, char *const env[], char *const cmd[])
{
    char *argv[40] = {"/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", (char *)dir};
    int n = 4;
    for (int i = 0; cmd[i] && n < 39; i++)
        argv[n++] = cmd[i];
    argv[n] = NULL;
    run(&r, env, argv);
}

/* A private directory, removed with everything in it by rm_tmpdir. */
static char tmpdir[64];
static const char *make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pyhuge-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    return tmpdir;
}
static void rm_tmpdir(void)
{
    if (!tmpdir[0])
        return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    tmpdir[0] = 0;
}
static void copy_file(const char *from, const char *to)
{
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

#define PY311 "/usr/bin/python3.11"
#define SMALL_HEAP "x = [(i, str(i)) for i in range(300000)]"

/* `meson setup /tmp/b`: the command in /tmp/b, run from anywhere with no
 * PYHUGE_LIB, finds /tmp/b/libpyhuge.so and puts arenas on huge pages. */
Test(cli, built_command_finds_the_library_beside_itself, .init = pool_64)
{
    const char *cli = built_cli();
    char *no_env[] = {NULL};
    char *check[] = {PY, (char *)cli, "check", PY311, NULL};
    run_in("/", no_env, check);
    char want[8600];
    snprintf(want, sizeof want, "libpyhuge       %s/libpyhuge.so; looked in, in order:\n"
                                "                  beside the command  %s/libpyhuge.so: found\n",
             build_dir(), build_dir());
    cr_expect(strstr(r.out, want) != NULL, "found first, beside itself:\n%s", r.out);
    cr_expect_eq(r.status, 0, "verdict READY:\n%s%s", r.out, r.err);

    char *runs[] = {PY, (char *)cli, "run", "--stats", "--", PY311, "-c", SMALL_HEAP, NULL};
    run_in("/", no_env, runs);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "stats: arenas huge=") && !strstr(r.err, "stats: arenas huge=0 "),
              "arenas on huge pages: %s", r.err);
}

/* The copy in the source tree, from another directory, takes PYHUGE_LIB
 * when there is no library beside it. */
Test(cli, source_command_takes_pyhuge_lib, .init = pool_64)
{
    char *env[] = {LIBVAR, NULL};
    char *check[] = {PY, PYHUGE_CLI, "check", PY311, NULL};
    run_in("/", env, check);
    char tools[4096], want[8400];
    snprintf(tools, sizeof tools, "%s", PYHUGE_CLI);
    snprintf(want, sizeof want, "                  beside the command  %s/libpyhuge.so: no such file\n"
                                "                  PYHUGE_LIB          %s: found\n",
             dirname(tools), PYHUGE_LIB_PATH);
    cr_expect(strstr(r.out, want) != NULL, "beside itself first, then PYHUGE_LIB:\n%s", r.out);
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);

    char *runs[] = {PY, PYHUGE_CLI, "run", "--stats", "--", PY311, "-c", SMALL_HEAP, NULL};
    run_in("/", env, runs);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "stats: arenas huge=") && !strstr(r.err, "stats: arenas huge=0 "),
              "arenas on huge pages: %s", r.err);
}

/* The install libdir meson wrote into the configured command. */
static void installed_libdir(const char *cli, char *out, size_t len)
{
    FILE *f = fopen(cli, "r");
    cr_assert_not_null(f);
    char line[4096];
    out[0] = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "INSTALLED_LIBDIR = \"%4095[^\"]\"", out) == 1)
            break;
    fclose(f);
    out[len - 1] = 0;
    cr_assert(out[0] == '/', "the configured command has the install libdir written in: %s", out);
}

/* The configured command moved away from its library: check names every
 * place it tried, in order, up to the one that has it: the install libdir
 * when pyhuge is installed there, else nowhere; and run says the same. */
Test(cli, check_says_where_it_looked, .fini = rm_tmpdir)
{
    const char *dir = make_tmpdir();
    char cli[128], libdir[4096], installed[4200];
    snprintf(cli, sizeof cli, "%s/pyhuge", dir);
    copy_file(built_cli(), cli);
    installed_libdir(built_cli(), libdir, sizeof libdir);
    snprintf(installed, sizeof installed, "%s/libpyhuge.so.0", libdir);
    bool is_installed = access(installed, F_OK) == 0;
    char *no_env[] = {NULL};
    char *check[] = {PY, cli, "check", PY311, NULL};
    run_in("/", no_env, check);
    char want[8800];
    if (is_installed)
        snprintf(want, sizeof want,
                 "libpyhuge       %s; looked in, in order:\n"
                 "                  beside the command  %s/libpyhuge.so: no such file\n"
                 "                  install libdir      %s: found\n",
                 installed, dir, installed);
    else
        snprintf(want, sizeof want,
                 "libpyhuge       NOT FOUND; looked in, in order:\n"
                 "                  beside the command  %s/libpyhuge.so: no such file\n"
                 "                  install libdir      %s/libpyhuge.so.0: no such file\n"
                 "                  install libdir      %s/libpyhuge.so: no such file\n"
                 "                  PYHUGE_LIB          (not set)\n",
                 dir, libdir, libdir);
    cr_expect(strstr(r.out, want) != NULL, "want:\n%s\ngot:\n%s", want, r.out);
    if (!is_installed) {
        cr_expect_eq(r.status, 2, "verdict IMPOSSIBLE:\n%s", r.out);
        cr_expect(strstr(r.out, "--lib PATH or PYHUGE_LIB=PATH") != NULL, "the fix: %s", r.out);
    }

    char *runs[] = {PY, cli, "run", "--", "/bin/true", NULL};
    run_in("/", no_env, runs);
    if (is_installed) {
        cr_expect_eq(r.status, 0, "%s", r.err);
    } else {
        cr_expect_eq(r.status, 2);
        cr_expect(strstr(r.err, "libpyhuge.so not found; looked in beside the command") != NULL,
                  "%s", r.err);
    }
}

/* --lib overrides everything: the library beside the command and
 * PYHUGE_LIB alike; a --lib that does not exist is an error, not a
 * fallback. */
Test(cli, lib_flag_overrides_everything, .init = pool_64, .fini = rm_tmpdir)
{
    char copy[128];
    snprintf(copy, sizeof copy, "%s/libpyhuge-copy.so", make_tmpdir());
    copy_file(PYHUGE_LIB_PATH, copy);
    char *env[] = {LIBVAR, NULL};
    char *check[] = {PY, (char *)built_cli(), "check", "--lib", copy, PY311, NULL};
    run_in("/", env, check);
    char want[512];
    snprintf(want, sizeof want, "libpyhuge       %s; looked in, in order:\n"
                                "                  --lib               %s: found\n", copy, copy);
    cr_expect(strstr(r.out, want) != NULL, "want:\n%s\ngot:\n%s", want, r.out);
    cr_expect_eq(r.status, 0, "%s", r.out);

    char *runs[] = {PY, (char *)built_cli(), "run", "--lib", copy, "--", "/bin/sh", "-c",
                    "echo \"$LD_PRELOAD\"", NULL};
    run_in("/", env, runs);
    cr_expect_eq(r.status, 0, "%s", r.err);
    snprintf(want, sizeof want, "%s\n", copy);
    cr_expect_str_eq(r.out, want, "the --lib copy is preloaded");

    char *missing[] = {PY, (char *)built_cli(), "run", "--lib", "/nonexistent/libpyhuge.so", "--",
                       "/bin/true", NULL};
    run_in("/", env, missing);
    cr_expect_eq(r.status, 64, "%s", r.err);
    cr_expect(strstr(r.err, "--lib /nonexistent/libpyhuge.so: no such file") != NULL, "%s", r.err);
}
