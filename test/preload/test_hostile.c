/*
 * Hostile and unusual calls against a process whose arenas are on huge
 * pages (arenas.c under the shim), each checked against the kernel's own
 * answer and accounts: what a stock process would see, or a loud, safe
 * failure where the kernel leaves no other way.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MiB "1048576"
#define PRELOAD PYHUGE_PRELOAD

static struct run r;

static void pool_40(void) { pool_require(40); }

TestSuite(hostile, .init = pool_40, .fini = pool_restore, .timeout = 60);

/* A length the kernel refuses (the range would run past the top of the
 * address space) changes nothing: stock says EINVAL and unmaps nothing. */
Test(hostile, munmap_past_the_top_of_the_address_space_is_einval_and_frees_nothing)
{
    char *env[] = {PRELOAD, "PYHUGE_STATS=1", NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "alloc", MiB, "munmap-top", "0", "check", "0", "check",
           "1", "check", "2", "stats");
    cr_expect_eq(field(r.out, "arena=", 1, "huge"), 1, "on huge pages to begin with:\n%s", r.out);
    cr_expect_eq(field(r.out, "munmap-top", 0, "rc"), -1);
    cr_expect_eq(field(r.out, "munmap-top", 0, "errno"), EINVAL);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(field(r.out, "check=", i, "ok"), 1, "arena %d intact:\n%s", i, r.out);
    cr_expect_eq(field(r.out, "stats", 0, "live"), 3, "the shim still holds all three");
    cr_expect_eq(field(r.out, "stats", 0, "demoted"), 0, "and moved none of them");
}

/* MAP_FIXED_NOREPLACE never replaces anything: over an arena the kernel says
 * EEXIST, and the arena stays where and what it was. */
Test(hostile, failed_map_fixed_noreplace_over_an_arena_changes_nothing)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "noreplace", "0", "noreplace", "1", "check", "0",
           "smaps", "0", "stats");
    cr_expect_eq(field(r.out, "noreplace", 0, "errno"), EEXIST);
    cr_expect_eq(field(r.out, "noreplace", 1, "errno"), EEXIST);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1);
    cr_expect_eq(field(r.out, "smaps", 0, "page_kb"), 2048, "still a huge page:\n%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "demoted"), 0);
    cr_expect_eq(field(r.out, "stats", 0, "live"), 2);
}

/* After misuse the kernel may place other mappings in the holes it left
 * (here: half an arena unmapped, and file mappings asked for right there):
 * they behave as without the shim, and the file gets every write made
 * through mremap. A mapping of the kernel's is never emulated. */
Test(hostile, file_mappings_in_the_holes_of_misuse_get_their_writes)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "alloc", MiB, "noreplace", "0", "munmap", "0", "0",
           "524288", "files-near", "0", "50", "check", "1", "free", "2", "files", "100");
    cr_expect_eq(field(r.out, "munmap", 0, "rc"), 0);
    cr_expect_gt(field(r.out, "files", 0, "landed"), 0, "some landed in the hole:\n%s", r.out);
    cr_expect_eq(field(r.out, "files", 0, "in_file"), 50, "%s", r.out);
    cr_expect_eq(field(r.out, "files", 1, "in_file"), 100, "%s", r.out);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1, "the neighbour arena is intact");
}

/* At its RLIMIT_AS or RLIMIT_DATA, with no room for a 2 MiB copy, a process
 * with one thread can still mprotect or munmap part of an arena as plain
 * pages allow: the page becomes ordinary memory in place, through a file,
 * and both arenas on it keep their contents. */
static void part_of_an_arena_at(char *limit)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "limit", limit, "mprotect", "0", "0", "4096", "munmap",
           "1", "1040384", "8192", "check", "0", "stats");
    cr_expect_eq(field(r.out, "limit", 0, "rc"), 0, "%s", r.out);
    cr_expect_eq(field(r.out, "mprotect", 0, "rc"), 0, "as on plain pages:\n%s", r.out);
    cr_expect_eq(field(r.out, "munmap", 0, "rc"), 0, "as on plain pages:\n%s", r.out);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1, "the arena kept its contents:\n%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "demoted"), 1, "%s", r.out);
}

Test(hostile, part_of_an_arena_at_the_address_space_limit)
{
    part_of_an_arena_at("as");
}

Test(hostile, part_of_an_arena_at_the_data_limit)
{
    part_of_an_arena_at("data");
}

/* The same with RLIMIT_FSIZE below 2 MiB as well: the page cannot go
 * through a file (a write past the limit raises SIGXFSZ, which would kill
 * this program), so the call fails with ENOMEM and changes nothing. */
Test(hostile, part_of_an_arena_at_the_address_space_and_file_size_limits)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "limit", "fsize", "limit", "as", "mprotect", "0", "0",
           "4096", "check", "0", "check", "1", "stats");
    cr_expect_eq(field(r.out, "mprotect", 0, "rc"), -1, "%s", r.out);
    cr_expect_eq(field(r.out, "mprotect", 0, "errno"), ENOMEM, "%s", r.out);
    cr_expect_eq(field(r.out, "check=", 0, "ok"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "check=", 1, "ok"), 1, "%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "demoted"), 0, "%s", r.out);
}

/* Calls the kernel refuses outright (a bad fd, no mapping type, a file not
 * open for reading, mremap's flag rules, lengths past the top of the
 * address space, a bogus protection or advice, an mremap from nothing, an
 * mlock past RLIMIT_MEMLOCK) get the kernel's answer and leave the arena
 * on its huge page. */
Test(hostile, calls_the_kernel_refuses_change_nothing)
{
    static struct run plain;
    char *argv[] = {ARENAS_BIN, "alloc", MiB, "refused", "0", NULL};
    char *plain_env[] = {NULL};
    run(&plain, plain_env, argv);
    cr_assert_eq(plain.status, 0, "without the shim: exit %d\n%s\n%s", plain.status, plain.out, plain.err);
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "refused", "0", "smaps", "0", "stats");
    int calls = count_lines(plain.out, "refused");
    cr_assert_geq(calls, 10, "%s", plain.out);
    for (int i = 0; i < calls; i++) {
        const char *a = strstr(plain.out, "refused"), *b = strstr(r.out, "refused");
        for (int k = 0; k < i && a && b; k++) {
            a = strstr(a + 1, "refused");
            b = strstr(b + 1, "refused");
        }
        cr_assert(a && b);
        size_t n = strcspn(a, "\n");
        cr_expect(strncmp(a, b, n) == 0, "plain: %.*s\nshim:  %.*s", (int)n, a,
                  (int)strcspn(b, "\n"), b);
    }
    cr_expect_eq(field(r.out, "smaps", 0, "page_kb"), 2048, "still a huge page:\n%s", r.out);
    cr_expect_eq(field(r.out, "stats", 0, "demoted"), 0);
}

/* madvise over pages the shim had freed gives them to the kernel (holes);
 * the range grows again, and the kernel may place the new address space
 * in those holes: every arena there is still freed with its own munmap,
 * and every page goes back to the pool. */
Test(hostile, address_space_reserved_in_old_holes_is_the_new_pages)
{
    static char *argv[128 + 8];
    int n = 0;
    argv[n++] = ARENAS_BIN;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 30; i++) {
            argv[n++] = "alloc";
            argv[n++] = MiB;
        }
        argv[n++] = "free-all";
        if (!round)
            argv[n++] = "span-madvise";
    }
    argv[n++] = "stats";
    argv[n] = NULL;
    char *env[] = {PRELOAD, "PYHUGE_CACHE_PAGES=0", NULL};
    struct pool before = pool_now();
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
    cr_expect_eq(field(r.out, "free-all", 0, "failed"), 0);
    cr_expect_eq(field(r.out, "free-all", 1, "failed"), 0, "every munmap of the second round:\n%s",
                 r.out);
    cr_expect_eq(field(r.out, "stats", 0, "live"), 0, "no arena left behind");
    cr_expect_eq(field(r.out, "stats", 0, "pages"), 0);
    pool_expect_back(&before, "every page back in the pool");
}

/* A signal handler forks while the main thread forks and uses arenas (a
 * new huge page each round, moved before each fork): the handler may land
 * inside fork() or inside the shim; nothing may hang. */
Test(hostile, fork_from_a_signal_handler_never_deadlocks, .timeout = 120)
{
    char *env[] = {PRELOAD, "PYHUGE_CACHE_PAGES=0", "PYHUGE_BACKEND=hugetlb", "PYHUGE_STATS=1", NULL};
    ARENAS("forkstorm", "400");
    cr_expect_eq(field(r.out, "forkstorm", 0, "ok"), 400, "every child saw its arena:\n%s", r.out);
    cr_expect_geq(field(r.out, "forkstorm", 0, "landed"), 100, "the handler forked in many rounds:\n%s",
                  r.out);
    cr_expect_gt(field(r.err, "pyhuge [", 0, "forked"), 100, "huge pages were moved at fork:\n%s",
                 r.err);
}

/* The child a debugger holds at fork (gdb's detach-on-fork off; here a
 * tracer with PTRACE_O_TRACEFORK that never resumes it) must not hold the
 * parent up: fork() returns in the parent and the parent runs to the end. */
Test(hostile, a_child_held_by_a_debugger_holds_nobody_up)
{
    /* LeakSanitizer (preloaded in the sanitizer build) cannot run under ptrace. */
    char *env[] = {PRELOAD, "ASAN_OPTIONS=detect_leaks=0", NULL};
    char *argv[] = {ARENAS_BIN, "alloc", MiB, "alloc", MiB, "fork", "check", "0", NULL};
    pid_t tracee = fork();
    cr_assert_geq(tracee, 0);
    if (tracee == 0) {
        ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        raise(SIGSTOP);
        execve(ARENAS_BIN, argv, env);
        _exit(127);
    }
    int status;
    cr_assert_eq(waitpid(tracee, &status, 0), tracee);
    cr_assert(WIFSTOPPED(status));
    ptrace(PTRACE_SETOPTIONS, tracee, NULL, (void *)(long)(PTRACE_O_TRACEFORK | PTRACE_O_EXITKILL));
    ptrace(PTRACE_CONT, tracee, NULL, NULL);
    pid_t held = 0;
    int exited = 0;
    time_t deadline = time(NULL) + 20;
    while (!exited && time(NULL) < deadline) {
        pid_t w = waitpid(-1, &status, __WALL | WNOHANG);
        if (w == 0) {
            usleep(10000);
            continue;
        }
        if (w < 0)
            break;
        if (w == tracee && (WIFEXITED(status) || WIFSIGNALED(status))) {
            exited = 1;
        } else if (w == tracee && WIFSTOPPED(status)) {
            unsigned long msg = 0; /* PTRACE_GETEVENTMSG writes an unsigned long */
            if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_FORK << 8)) &&
                ptrace(PTRACE_GETEVENTMSG, tracee, NULL, &msg) == 0)
                held = (pid_t)msg;
            int sig = WSTOPSIG(status);
            ptrace(PTRACE_CONT, tracee, NULL,
                   (void *)(long)(sig == SIGTRAP || sig == SIGSTOP ? 0 : sig));
        } /* the new child stops at birth and is left stopped */
    }
    cr_expect_gt(held, 0, "the tracer saw the fork");
    cr_expect(exited, "the parent finished while its child was held");
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    if (held > 0) {
        kill(held, SIGKILL);
        waitpid(held, &status, __WALL);
    }
    if (!exited) {
        kill(tracee, SIGKILL);
        waitpid(tracee, &status, __WALL);
    }
}

/* A crash dump of a process under the shim holds its arenas, as a stock
 * one does (private hugetlb is in the default coredump_filter, shared is
 * not), and the shim's reserved address space is left out of it. */
Test(hostile, core_dump_holds_the_arenas_and_not_the_reserve)
{
    char *env[] = {PRELOAD, NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "smaps", "0");
    cr_expect_eq(field(r.out, "smaps", 0, "private_hugetlb"), 2048, "%s", r.out);
    cr_expect_eq(field(r.out, "smaps", 0, "shared_hugetlb"), 0);
    cr_expect_eq(field(r.out, "smaps", 0, "next_dd"), 1, "the reserve is MADV_DONTDUMP");

    FILE *cp = fopen("/proc/sys/kernel/core_pattern", "r");
    char pattern[256] = {0};
    if (!cp || !fgets(pattern, sizeof pattern, cp) || strcmp(pattern, "core\n") != 0)
        cr_skip_test("core_pattern is not \"core\" here: dumps go elsewhere");
    fclose(cp);
    char dir[] = "/tmp/pyhuge-core-XXXXXX";
    cr_assert(mkdtemp(dir));
    char *argv[] = {ARENAS_BIN, "alloc", MiB, "alloc", MiB, "core", dir, NULL};
    run(&r, env, argv);
    cr_expect_eq(r.status, 128 + SIGABRT, "%s", r.err);
    char path[512];
    snprintf(path, sizeof path, "%s/core", dir);
    FILE *f = fopen(path, "rb");
    cr_assert(f, "no core file in %s (status %d)", dir, r.status);
    struct stat sb;
    fstat(fileno(f), &sb);
    cr_expect_lt(sb.st_size, 64L << 20, "a small dump: %ld bytes", (long)sb.st_size);
    /* arenas.c fills arena i with byte i % 250 + 1. */
    static unsigned char buf[4096];
    long pages1 = 0, pages2 = 0;
    while (fread(buf, 1, sizeof buf, f) == sizeof buf) {
        int all1 = 1, all2 = 1;
        for (size_t i = 0; i < sizeof buf; i++) {
            all1 &= buf[i] == 1;
            all2 &= buf[i] == 2;
        }
        pages1 += all1;
        pages2 += all2;
    }
    fclose(f);
    unlink(path);
    rmdir(dir);
    cr_expect_geq(pages1, 256, "all of arena 0 is in the dump (%ld pages)", pages1);
    cr_expect_geq(pages2, 256, "all of arena 1 is in the dump (%ld pages)", pages2);
}

/* Two copies of the library preloaded (a build and an installed one): the
 * first does the work, the second stays out of the way and prints nothing. */
Test(hostile, a_second_copy_of_the_library_stays_quiet)
{
    char copy[] = "/tmp/pyhuge-copy-XXXXXX";
    cr_assert(mkdtemp(copy));
    char lib[600], cmd[1400];
    snprintf(lib, sizeof lib, "%s/libpyhuge.so", copy);
    const char *first = strchr(PRELOAD, '=') + 1;
    const char *last = strrchr(first, ':');
    snprintf(cmd, sizeof cmd, "cp %s %s", last ? last + 1 : first, lib);
    cr_assert_eq(system(cmd), 0);
    char preload[1400];
    snprintf(preload, sizeof preload, "%s:%s", PRELOAD, lib);
    char *env[] = {preload, "PYHUGE_STATS=1", "PYHUGE_VERBOSE=1", NULL};
    ARENAS("alloc", MiB, "alloc", MiB, "stats");
    unlink(lib);
    rmdir(copy);
    cr_expect_eq(field(r.out, "arena=", 0, "huge"), 1, "%s", r.out);
    int stats_lines = 0;
    for (const char *p = r.err; (p = strstr(p, "stats: arenas")); p++)
        stats_lines++;
    cr_expect_eq(stats_lines, 1, "one stats line, from the copy that worked:\n%s", r.err);
    cr_expect(strstr(r.err, "stats: arenas huge=2") != NULL, "%s", r.err);
}
