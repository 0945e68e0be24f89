#include "harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"
#define NR_OVERCOMMIT "/proc/sys/vm/nr_overcommit_hugepages"
#define COMPACT_MEMORY "/proc/sys/vm/compact_memory"

long meminfo(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

struct pool pool_now(void)
{
    return (struct pool){.total = meminfo("HugePages_Total"),
                         .free = meminfo("HugePages_Free"),
                         .rsvd = meminfo("HugePages_Rsvd"),
                         .surp = meminfo("HugePages_Surp")};
}

long pool_available(const struct pool *p) { return p->free - p->rsvd; }

long pool_held(const struct pool *p) { return p->total - p->free + p->rsvd; }

long pool_taken(const struct pool *base, struct pool now)
{
    return pool_available(base) - pool_available(&now);
}

long pool_taken_at(const struct pool *base, long free, long rsvd)
{
    return pool_available(base) - (free - rsvd);
}

void pool_expect_back(const struct pool *base, const char *when)
{
    struct pool now = pool_now();
    cr_expect_eq(now.total, base->total, "HugePages_Total %ld, was %ld: %s", now.total, base->total, when);
    cr_expect_eq(now.free, base->free, "HugePages_Free %ld, was %ld: %s", now.free, base->free, when);
    cr_expect_eq(now.rsvd, base->rsvd, "HugePages_Rsvd %ld, was %ld: %s", now.rsvd, base->rsvd, when);
    cr_expect_eq(now.surp, base->surp, "HugePages_Surp %ld, was %ld: %s", now.surp, base->surp, when);
}

static long read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* 0, or the errno of the failed open, write or close. */
static int write_long(const char *path, long v)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return errno;
    int err = fprintf(f, "%ld\n", v) > 0 ? 0 : errno;
    if (fclose(f) != 0 && !err)
        err = errno;
    return err;
}

/* The settings before this process first sized the pool. */
static struct {
    bool saved;
    long nr, overcommit, surp;
} before;

/* Huge pages this process has faulted in (HugetlbPages in /proc/self/status). */
static long own_pages(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "HugetlbPages: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    long page_kb = meminfo("Hugepagesize");
    return page_kb > 0 ? kb / page_kb : 0;
}

void pool_restore(void)
{
    if (!before.saved)
        return;
    /* Pages others hold now that were not surplus before stay in the
     * persistent pool: shrinking below them would make them surplus pages,
     * freed to the kernel when their holder lets go. This process's own
     * pages (a test that links the shim's code) go when it exits. */
    struct pool now = pool_now();
    long floor = pool_held(&now) - own_pages() - before.surp;
    write_long(NR_HUGEPAGES, before.nr > floor ? before.nr : floor);
    if (before.overcommit > 0)
        write_long(NR_OVERCOMMIT, before.overcommit);
}

static void remember(void)
{
    if (before.saved)
        return;
    before.nr = read_long(NR_HUGEPAGES);
    before.overcommit = read_long(NR_OVERCOMMIT);
    before.surp = meminfo("HugePages_Surp");
    before.saved = true;
    atexit(pool_restore);
}

struct pool pool_require(long n)
{
    remember();
    int err;
    /* With overcommit on, the kernel makes surplus pages on demand and the
     * pool would not run dry at n. */
    if (before.overcommit > 0 && (err = write_long(NR_OVERCOMMIT, 0)) != 0)
        cr_skip_test("cannot turn huge page overcommit off for this test (%s: %s; needs root)",
                     NR_OVERCOMMIT, strerror(err));
    struct pool p = pool_now();
    bool compacted = false;
    for (int tries = 0; pool_available(&p) != n && tries < 4; tries++) {
        /* held + n: every page someone holds (surplus ones included) joins
         * the persistent pool, plus n free ones. The kernel never frees a
         * page that is in use or reserved, whatever is written. */
        long target = pool_held(&p) + n;
        if ((err = write_long(NR_HUGEPAGES, target)) != 0)
            cr_skip_test("cannot size the huge page pool to %ld pages, %ld for this test beside %ld "
                         "held by other processes (%s: %s; needs root)",
                         target, n, pool_held(&p), NR_HUGEPAGES, strerror(err));
        p = pool_now();
        if (pool_available(&p) < n && !compacted) {
            /* Fewer granted: free memory may be fragmented. Compact once. */
            write_long(COMPACT_MEMORY, 1);
            compacted = true;
        }
    }
    if (pool_available(&p) != n)
        cr_skip_test("the kernel grants %ld free huge pages, not the %ld this test needs, beside %ld "
                     "held by other processes (HugePages_Total %ld, Rsvd %ld, Surp %ld): memory is "
                     "short or fragmented",
                     pool_available(&p), n, pool_held(&p), p.total, p.rsvd, p.surp);
    return p;
}

static void slurp(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    ssize_t n;
    while (have + 1 < cap && (n = read(fd, buf + have, cap - 1 - have)) > 0)
        have += (size_t)n;
    buf[have] = '\0';
}

void run(struct run *r, char *const env[], char *const argv[])
{
    char *full_env[64];
    int n = 0;
    for (; env && env[n] && n < 60; n++)
        full_env[n] = env[n];
    full_env[n++] = "PATH=/usr/bin:/bin";
    /* Under a sanitizer build the ASan runtime is preloaded into programs
     * that are not ours: their leaks are not our findings. */
    full_env[n++] = "ASAN_OPTIONS=detect_leaks=0";
    full_env[n] = NULL;

    int out[2];
    char errpath[] = "/tmp/pyhuge-test-err-XXXXXX";
    int errfd = mkstemp(errpath);
    cr_assert(pipe(out) == 0 && errfd >= 0);
    unlink(errpath);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        /* A test that times out is killed; what it ran must not outlive it
         * holding huge pages. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], 1);
        dup2(errfd, 2);
        close(out[0]);
        execve(argv[0], argv, full_env);
        _exit(127);
    }
    close(out[1]);
    slurp(out[0], r->out, sizeof r->out);
    close(out[0]);
    int status = 0;
    pid_t got;
    while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    cr_assert_eq(got, pid, "waitpid for %s: %s", argv[0], strerror(errno));
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    lseek(errfd, 0, SEEK_SET);
    slurp(errfd, r->err, sizeof r->err);
    close(errfd);
}

static const char *nth_line(const char *text, const char *prefix, int nth)
{
    size_t n = strlen(prefix);
    for (const char *l = text; l && *l;) {
        if (strncmp(l, prefix, n) == 0 && nth-- == 0)
            return l;
        l = strchr(l, '\n');
        if (l)
            l++;
    }
    return NULL;
}

static const char *value_of(const char *text, const char *prefix, int nth, const char *key)
{
    const char *l = nth_line(text, prefix, nth);
    if (!l)
        return NULL;
    const char *end = strchr(l, '\n');
    size_t k = strlen(key);
    for (const char *p = l; p && (!end || p < end); p = strchr(p + 1, ' ')) {
        const char *w = *p == ' ' ? p + 1 : p;
        if (strncmp(w, key, k) == 0 && w[k] == '=')
            return w + k + 1;
    }
    return NULL;
}

long field(const char *text, const char *prefix, int nth, const char *key)
{
    const char *v = value_of(text, prefix, nth, key);
    return v ? strtol(v, NULL, 10) : -1;
}

unsigned long field_hex(const char *text, const char *prefix, int nth, const char *key)
{
    const char *v = value_of(text, prefix, nth, key);
    return v ? strtoul(v, NULL, 16) : 0;
}

int count_lines(const char *text, const char *prefix)
{
    int c = 0;
    while (nth_line(text, prefix, c))
        c++;
    return c;
}
