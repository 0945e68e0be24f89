#include "harness.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"

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

static long original = -1;

static bool write_pool(long n)
{
    FILE *f = fopen(NR_HUGEPAGES, "w");
    if (!f)
        return false;
    bool ok = fprintf(f, "%ld\n", n) > 0;
    ok = (fclose(f) == 0) && ok;
    return ok;
}

void pool_restore(void)
{
    if (original >= 0)
        write_pool(original);
}

bool pool_set(long n)
{
    if (original < 0) {
        original = meminfo("HugePages_Total");
        atexit(pool_restore);
    }
    return write_pool(n) && meminfo("HugePages_Total") == n;
}

void pool_require(long n)
{
    if (meminfo("HugePages_Rsvd") > 0 || meminfo("HugePages_Total") != meminfo("HugePages_Free")) {
        if (!pool_set(n + meminfo("HugePages_Total") - meminfo("HugePages_Free")))
            cr_skip_test("huge pages are in use by other processes; cannot size the pool");
    }
    if (!pool_set(n))
        cr_skip_test("cannot set the huge page pool to %ld pages (needs root and free memory)", n);
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
    int status;
    waitpid(pid, &status, 0);
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
