/*
 * Helpers shared by the tests that run real processes under the shim: the
 * huge page pool (sized for one test beside whatever else holds pages,
 * read, restored), running a program with a given environment, and
 * reading its key=value output.
 *
 * The pool. Another process (a database, a JVM, a second test run) may
 * hold huge pages while the tests run. A test never takes pages from it,
 * never shrinks the pool below what it holds, and asserts changes from a
 * baseline, never absolute counts:
 *
 *     static struct pool base;
 *     static void pool_16(void) { base = pool_require(16); }
 *     ...
 *     cr_expect_eq(pool_taken(&base, pool_now()), 1, "one page taken");
 *     pool_expect_back(&base, "after the program exited");
 *
 * Counts are in 2 MiB pages, as /proc/meminfo gives them. The kernel's
 * account (Documentation/admin-guide/mm/hugetlbpage.rst):
 *   total  HugePages_Total, persistent pool plus surplus pages;
 *   free   HugePages_Free, not faulted in, *including* reserved pages;
 *   rsvd   HugePages_Rsvd, promised to a mapping (mmap without
 *          MAP_NORESERVE reserves at mmap time), not faulted in yet;
 *   surp   HugePages_Surp, beyond /proc/sys/vm/nr_hugepages (overcommit,
 *          or pages in use when the pool was shrunk below them).
 * So a new mapping can have free - rsvd pages; everything else
 * (total - free + rsvd) is held by someone.
 */
#ifndef PYHUGE_TEST_HARNESS_H
#define PYHUGE_TEST_HARNESS_H

#include <stdbool.h>

/* A field of /proc/meminfo ("HugePages_Free"), or -1. */
long meminfo(const char *key);

/* A snapshot of the kernel's huge page counters. */
struct pool {
    long total, free, rsvd, surp;
};

/* The counters now. */
struct pool pool_now(void);
/* Pages a new mapping can get: free and not reserved. */
long pool_available(const struct pool *p);
/* Pages held (faulted in or reserved) by anyone. */
long pool_held(const struct pool *p);

/* Sizes the pool so that exactly n pages are available to this test beyond
 * what other processes hold, and returns the counters then: the test's
 * baseline. nr_hugepages is only ever set to at least what others hold;
 * overcommit (surplus pages made on demand) is off for the test, so the
 * pool really runs dry at n. Skips the test (cr_skip_test), saying why,
 * only when the kernel cannot grant it: no permission to size the pool, or
 * fewer pages granted than asked (memory short or fragmented). The first
 * call in a process remembers the settings; pool_restore (and exit) puts
 * them back. */
struct pool pool_require(long n);
/* Puts nr_hugepages and nr_overcommit_hugepages back as they were before
 * the first pool_require, but never below what other processes hold now
 * (a page taken since from the enlarged pool is not turned into surplus
 * under its holder). Safe to call when nothing was changed. */
void pool_restore(void);

/* Pages taken from the pool (faulted in or reserved) between base and now;
 * negative when pages came back. */
long pool_taken(const struct pool *base, struct pool now);
/* Same, for a "free=F rsvd=R" reading a test program printed (the `pool`
 * lines of test/preload/arenas). */
long pool_taken_at(const struct pool *base, long free, long rsvd);
/* Expects (cr_expect) every counter back at base: total, free, rsvd and
 * surp, each with its own message naming `when`. */
void pool_expect_back(const struct pool *base, const char *when);

struct run {
    char out[1 << 16];
    char err[1 << 14];
    int status; /* exit code, or 128 + signal */
};

/* Runs argv[0] with the environment env (NULL-terminated "K=V" strings, to
 * which PATH and HOME are added) and captures its output. */
void run(struct run *r, char *const env[], char *const argv[]);

/* The value of `key=` on the nth (0-based) line of text starting with
 * `prefix`, or -1 when there is no such line or key. */
long field(const char *text, const char *prefix, int nth, const char *key);
/* Same, for a hexadecimal value (addresses). */
unsigned long field_hex(const char *text, const char *prefix, int nth, const char *key);
/* How many lines start with prefix. */
int count_lines(const char *text, const char *prefix);

/* Runs the arenas program (test/preload/arenas.c, ARENAS_BIN) with the
 * commands given, in the environment `env` in scope, into the struct run
 * `r` in scope; fails the test unless it exits 0. */
#define ARENAS(...)                                                                         \
    do {                                                                                    \
        char *argv_[] = {ARENAS_BIN, __VA_ARGS__, NULL};                                    \
        run(&r, env, argv_);                                                                \
        cr_assert_eq(r.status, 0, "arenas exited %d\nstdout:\n%s\nstderr:\n%s", r.status,    \
                     r.out, r.err);                                                         \
    } while (0)

#endif
