/*
 * A small program for preload tests: it runs the commands on its command
 * line against a fake CPython (fakepython.c) under LD_PRELOAD=libpyhuge.so
 * and prints one line of key=value results per command, checked by
 * test_preload.c against the kernel's own accounts.
 *
 *   alloc SIZE        an arena from "CPython"; fills it with its number
 *   free I            gives arena I back as CPython would
 *   check I           arena I still holds its pattern
 *   other SIZE        a same-shaped mmap from elsewhere in "libpython"
 *   direct SIZE       a same-shaped mmap from this program
 *   munmap|mprotect|madvise|mlock I OFF LEN   on part of arena I
 *   mremap I LEN      moves/resizes arena I (MREMAP_MAYMOVE)
 *   mremap-pair LEN   arenas 0 and 1, when side by side, resized as one
 *   mremap-fixed I OLEN NLEN   mremap(MREMAP_MAYMOVE | MREMAP_FIXED) of OLEN
 *                     bytes from arena I to NLEN at a new place of its own
 *   mremap-shrink I LEN   resizes (no flags) arena I to LEN from an old length
 *                     that runs to the end of its 2 MiB page, past the arena
 *                     when it starts the page (LEN that length: a call that
 *                     does nothing): says whether it kept its bytes and
 *                     whether the old range past LEN is gone
 *   raw-munmap ADDR LEN, raw-mprotect ADDR LEN   bad input straight through
 *   stats             the shim's counters, through its public API
 *   pool              HugePages_Free and HugePages_Rsvd
 *   naive N           what a naive shim does: maps N huge pages and writes them
 *   munmap-top I      munmap from inside arena I with a length past the top of
 *                     the address space (1 << 63), which the kernel refuses
 *   noreplace I       mmap(MAP_FIXED_NOREPLACE) over arena I
 *   files N           N file mappings, each written through, grown with
 *                     mremap, written again and read back from the file
 *   files-near I N    the same, each asked for at arena I's address (a hint)
 *   smaps I           how the kernel maps arena I, and whether the shim's
 *                     address space is left out of core dumps
 *   core DIR          dumps core in DIR (RLIMIT_CORE raised) by abort()
 *   fork              forks a child that exits at once; does not wait for it
 *   refused I         calls on arena I that the kernel refuses (bad fd, mapping
 *                     type, file mode, mremap flags and lengths, protection,
 *                     advice), each with its result and errno
 *   span-madvise      madvise(MADV_NORMAL) from the lowest arena's 2 MiB page
 *                     to the end of the highest's (freed ones too), every
 *                     page between included
 *   free-all          munmap of every live arena, counting failures
 *   limit as|data     RLIMIT_AS (RLIMIT_DATA) down to what is mapped (counted)
 *                     now: not one more page
 *   limit fsize       RLIMIT_FSIZE down to 256 KiB (SIGXFSZ left at its default)
 *   mark              remembers the mappings the process has now
 *   new-mappings      how many mappings it has now that lie in none of those
 *   mapped I OFF LEN  how many 4 KiB pages of [OFF, OFF+LEN) of arena I are
 *                     mapped, per mincore
 *   forkstorm N       N rounds of a 2 MiB arena, fork, wait, free, while a
 *                     timer's signal handler forks too, once per round at
 *                     a moment that varies (inside fork, or inside the shim);
 *                     says how many times it landed
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fakepython.h"
#include "pyhuge.h"


#define MAX_ARENAS 4096

static struct {
    unsigned char *p;
    unsigned char *at; /* where it was, kept after it is freed */
    size_t size;
} arenas[MAX_ARENAS];
static int narenas;

/* 1 when the mapping holding addr uses 2 MiB hugetlb pages, 2 when it
 * holds transparent huge pages, per /proc/self/smaps. */
static int is_huge(const void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int inside = 0, huge = 0;
    uintptr_t a = (uintptr_t)addr;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = a >= lo && a < hi;
            continue;
        }
        unsigned long kb;
        if (inside && sscanf(line, "KernelPageSize: %lu kB", &kb) == 1 && kb == 2048)
            huge = 1;
        if (inside && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1 && kb > 0)
            huge = 2;
        if (inside && strncmp(line, "VmFlags:", 8) == 0)
            break;
    }
    if (f)
        fclose(f);
    return huge;
}

/* The number after "key:" in a /proc file of "Key: value" lines, or -1. */
static long proc_field(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
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

static long meminfo(const char *key) { return proc_field("/proc/meminfo", key); }

static int all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

/* smaps fields of the mapping holding addr, and whether the mapping 2 MiB
 * past addr's 2 MiB page (free address space of the shim's, when only that
 * page is used) is left out of core dumps (VmFlags dd). */
static void smaps_of(const void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int inside = 0, next = 0, next_dd = -1;
    unsigned long private_huge = 0, shared_huge = 0, page_kb = 0;
    uintptr_t a = (uintptr_t)addr, n = (a & ~(uintptr_t)0x1fffff) + 0x200000;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi, kb;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = a >= lo && a < hi;
            next = n >= lo && n < hi;
            continue;
        }
        if (inside && sscanf(line, "Private_Hugetlb: %lu kB", &kb) == 1)
            private_huge = kb;
        if (inside && sscanf(line, "Shared_Hugetlb: %lu kB", &kb) == 1)
            shared_huge = kb;
        if (inside && sscanf(line, "KernelPageSize: %lu kB", &kb) == 1)
            page_kb = kb;
        if (next && strncmp(line, "VmFlags:", 8) == 0)
            next_dd = strstr(line, " dd") != NULL;
    }
    if (f)
        fclose(f);
    printf("smaps page_kb=%lu private_hugetlb=%lu shared_hugetlb=%lu next_dd=%d\n", page_kb,
           private_huge, shared_huge, next_dd);
}

/* N file mappings written through mmap and mremap, checked with read(2);
 * placed near `hint` when it is not NULL (the kernel takes a free hint). */
static void files(int n, unsigned char *hint)
{
    int landed = 0;
    char path[] = "/tmp/pyhuge-files-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    if (fd < 0 || ftruncate(fd, (off_t)n * 2 * 65536) != 0) {
        printf("files failed errno=%d\n", errno);
        return;
    }
    int good = 0;
    for (int i = 0; i < n; i++) {
        off_t off = (off_t)i * 2 * 65536;
        char *p = mmap(hint, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
        if (p == MAP_FAILED)
            continue;
        landed += hint && (unsigned char *)p >= hint && (unsigned char *)p < hint + ((size_t)1 << 20);
        memset(p, 'a', 65536);
        char *q = mremap(p, 65536, 2 * 65536, MREMAP_MAYMOVE);
        if (q == MAP_FAILED) {
            munmap(p, 65536);
            continue;
        }
        memset(q + 65536, 'b', 65536);
        munmap(q, 2 * 65536);
        char back[2 * 65536];
        good += pread(fd, back, sizeof back, off) == (ssize_t)sizeof back && back[0] == 'a' &&
                back[65535] == 'a' && back[65536] == 'b' && back[sizeof back - 1] == 'b';
    }
    close(fd);
    printf("files n=%d in_file=%d landed=%d\n", n, good, landed);
}

/* Calls the kernel refuses outright, on arena i: each result and errno. */
static void refused(unsigned char *a)
{
    int wronly = open("/dev/null", O_WRONLY);
    void *p;
    errno = 0;
    p = mmap(a, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, 12345, 0);
    printf("refused mmap-bad-fd failed=%d errno=%d\n", p == MAP_FAILED, errno);
    p = mmap(a, 4096, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("refused mmap-no-type failed=%d errno=%d\n", p == MAP_FAILED, errno);
    p = mmap(a, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, wronly, 0);
    printf("refused mmap-write-only-fd failed=%d errno=%d\n", p == MAP_FAILED, errno);
    p = mremap(a, 4096, 4096, MREMAP_FIXED, a + ((size_t)64 << 20));
    printf("refused mremap-fixed-not-maymove failed=%d errno=%d\n", p == MAP_FAILED, errno);
    p = mremap(a, 4096, 0, MREMAP_MAYMOVE);
    printf("refused mremap-to-zero failed=%d errno=%d\n", p == MAP_FAILED, errno);
    p = mremap(a, 4096, 8192, 0x80);
    printf("refused mremap-bogus-flag failed=%d errno=%d\n", p == MAP_FAILED, errno);
    p = mremap(a, (size_t)1 << 62, 4096, 0); /* runs past any address space */
    printf("refused mremap-huge-old-length failed=%d errno=%d\n", p == MAP_FAILED, errno);
    p = mremap(a, (size_t)1 << 62, (size_t)1 << 62, 0); /* in place, but the new length too */
    printf("refused mremap-huge-same-length failed=%d errno=%d\n", p == MAP_FAILED, errno);
    p = mremap(a, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)((uintptr_t)1 << 62));
    printf("refused mremap-past-the-top failed=%d errno=%d\n", p == MAP_FAILED, errno);
    int file = open("/proc/self/exe", O_RDONLY), dir = open("/", O_RDONLY | O_DIRECTORY);
    p = mmap(a, 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED, file, 1);
    printf("refused mmap-unaligned-offset failed=%d errno=%d\n", p == MAP_FAILED, errno);
    p = mmap(a, 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED, dir, 0);
    printf("refused mmap-directory failed=%d errno=%d\n", p == MAP_FAILED, errno);
    p = mmap(a, 4096, PROT_READ, MAP_SHARED_VALIDATE | MAP_FIXED | MAP_SYNC, file, 0);
    printf("refused mmap-validate-map-sync failed=%d errno=%d\n", p == MAP_FAILED, errno);
    /* Inside the arena, never on a 2 MiB boundary wherever ASLR put it (on
     * one, the kernel would map a huge page over whatever lies above). */
    unsigned char *unaligned = a + 4096;
    if (!((uintptr_t)unaligned & 0x1fffff))
        unaligned += 4096;
    p = mmap(unaligned, 4096, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_FIXED, -1, 0);
    printf("refused mmap-hugetlb-unaligned failed=%d errno=%d\n", p == MAP_FAILED, errno);
    close(file);
    close(dir);
    int rc = mprotect(a, 4096, 0x7fff0000);
    printf("refused mprotect-bogus-prot rc=%d errno=%d\n", rc, rc ? errno : 0);
    rc = madvise(a, 4096, 9999);
    printf("refused madvise-bogus-advice rc=%d errno=%d\n", rc, rc ? errno : 0);
    rc = madvise(a, (size_t)1 << 62, MADV_NORMAL);
    printf("refused madvise-past-the-top rc=%d errno=%d\n", rc, rc ? errno : 0);
    /* From an old address with nothing mapped: EFAULT, whatever the new. */
    void *gone = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, 4096);
    p = mremap(gone, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, a);
    printf("refused mremap-fixed-from-nothing failed=%d errno=%d\n", p == MAP_FAILED, errno);
    /* Past RLIMIT_MEMLOCK without CAP_IPC_LOCK (as any user but root). */
    struct __user_cap_header_struct head = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3], nolock[_LINUX_CAPABILITY_U32S_3];
    struct rlimit memlock;
    if (syscall(SYS_capget, &head, caps) == 0 && getrlimit(RLIMIT_MEMLOCK, &memlock) == 0) {
        memcpy(nolock, caps, sizeof caps);
        nolock[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
        syscall(SYS_capset, &head, nolock);
        struct rlimit low = {64 << 10, memlock.rlim_max};
        setrlimit(RLIMIT_MEMLOCK, &low);
        rc = mlock(a, (size_t)1 << 20);
        printf("refused mlock-past-its-limit rc=%d errno=%d\n", rc, rc ? errno : 0);
        setrlimit(RLIMIT_MEMLOCK, &memlock);
        syscall(SYS_capset, &head, caps);
    }
    close(wronly);
}

static volatile sig_atomic_t landed; /* forkstorm's handler runs */

static void on_alarm_fork(int sig)
{
    (void)sig;
    int saved = errno;
    landed++;
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    errno = saved;
}

static void forkstorm(int rounds)
{
    struct sigaction sa = {.sa_handler = on_alarm_fork, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    int ok = 0;
    for (int i = 0; i < rounds; i++) {
        /* One signal at most per round, a different moment each round: a
         * repeating timer whose handler outlasts its period (a loaded
         * machine, a sanitizer) would leave the loop no time to run. */
        struct itimerval once = {{0, 0}, {0, 50 + (i * 7919) % 4000}};
        setitimer(ITIMER_REAL, &once, NULL);
        void *p = fake_arena_alloc((size_t)2 << 20);
        if (!p)
            continue;
        memset(p, 3, (size_t)2 << 20);
        pid_t pid = fork();
        if (pid == 0)
            _exit(all_bytes(p, (size_t)2 << 20, 3) ? 0 : 3);
        int status = 0;
        while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        ok += pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        fake_arena_free(p, (size_t)2 << 20);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("forkstorm rounds=%d ok=%d landed=%d\n", rounds, ok, (int)landed);
}

/* The process's mappings as [start, end) pairs, read from /proc/self/maps
 * without stdio or malloc, so that reading them maps nothing; the count. */
#define MAX_MAPS 4096
static uintptr_t marked[MAX_MAPS][2];
static int nmarked;

static int read_maps(uintptr_t (*out)[2])
{
    static char buf[1 << 20];
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t have = 0;
    ssize_t n;
    while (have < sizeof buf - 1 && (n = read(fd, buf + have, sizeof buf - 1 - have)) > 0)
        have += (size_t)n;
    close(fd);
    buf[have] = 0;
    int count = 0;
    for (char *line = buf; *line && count < MAX_MAPS;) {
        char *end;
        out[count][0] = strtoul(line, &end, 16);
        out[count][1] = strtoul(end + 1, &end, 16);
        count++;
        char *nl = strchr(end, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    return count;
}

static void new_mappings(void)
{
    static uintptr_t now[MAX_MAPS][2];
    int n = read_maps(now), fresh = 0;
    for (int i = 0; i < n; i++) {
        int inside = 0;
        for (int j = 0; j < nmarked && !inside; j++)
            inside = now[i][0] >= marked[j][0] && now[i][1] <= marked[j][1];
        if (!inside) {
            printf("new mapping %#lx-%#lx\n", (unsigned long)now[i][0], (unsigned long)now[i][1]);
            fresh++;
        }
    }
    printf("new-mappings n=%d\n", n < 0 ? -1 : fresh);
}

static void mapped_pages(unsigned char *a, size_t len)
{
    int mapped = 0;
    unsigned char vec;
    for (size_t off = 0; off < len; off += 4096)
        mapped += mincore(a + off, 4096, &vec) == 0;
    printf("mapped pages=%d\n", mapped);
}

static unsigned char pattern(int i) { return (unsigned char)(i % 250 + 1); }

static int arena_arg(const char *s)
{
    int i = atoi(s);
    if (i < 0 || i >= narenas || !arenas[i].p) {
        fprintf(stderr, "arenas: no arena %s\n", s);
        exit(2);
    }
    return i;
}

static void print_result(const char *what, int rc)
{
    printf("%s rc=%d errno=%d\n", what, rc, rc ? errno : 0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int k = 1; k < argc; k++) {
        const char *cmd = argv[k];
        if (!strcmp(cmd, "alloc")) {
            size_t size = strtoul(argv[++k], NULL, 0);
            errno = 4242;
            unsigned char *p = fake_arena_alloc(size);
            int saved = errno;
            if (!p) {
                printf("alloc failed errno=%d\n", saved);
                continue;
            }
            int i = narenas++;
            int zero = all_bytes(p, size, 0);
            memset(p, pattern(i), size);
            arenas[i].p = arenas[i].at = p;
            arenas[i].size = size;
            printf("arena=%d addr=%p huge=%d zero=%d errno_kept=%d\n", i, (void *)p, is_huge(p),
                   zero, saved == 4242);
        } else if (!strcmp(cmd, "free")) {
            int i = arena_arg(argv[++k]);
            fake_arena_free(arenas[i].p, arenas[i].size);
            arenas[i].p = NULL;
            printf("freed=%d\n", i);
        } else if (!strcmp(cmd, "check")) {
            int i = arena_arg(argv[++k]);
            printf("check=%d ok=%d zero=%d\n", i, all_bytes(arenas[i].p, arenas[i].size, pattern(i)),
                   all_bytes(arenas[i].p, arenas[i].size, 0));
        } else if (!strcmp(cmd, "other") || !strcmp(cmd, "direct")) {
            size_t size = strtoul(argv[++k], NULL, 0);
            void *p = !strcmp(cmd, "other")
                          ? fake_other_mmap(size)
                          : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            memset(p, 1, size);
            printf("%s addr=%p huge=%d\n", cmd, p, is_huge(p));
            munmap(p, size);
        } else if (!strcmp(cmd, "munmap") || !strcmp(cmd, "mprotect") || !strcmp(cmd, "madvise") ||
                   !strcmp(cmd, "mlock")) {
            int i = arena_arg(argv[++k]);
            size_t off = strtoul(argv[++k], NULL, 0), len = strtoul(argv[++k], NULL, 0);
            void *a = arenas[i].p + off;
            int rc = !strcmp(cmd, "munmap")     ? munmap(a, len)
                     : !strcmp(cmd, "mprotect") ? mprotect(a, len, PROT_READ)
                     : !strcmp(cmd, "madvise")  ? madvise(a, len, MADV_DONTNEED)
                                                : mlock(a, len);
            print_result(cmd, rc);
        } else if (!strcmp(cmd, "mremap")) {
            int i = arena_arg(argv[++k]);
            size_t len = strtoul(argv[++k], NULL, 0);
            void *p = mremap(arenas[i].p, arenas[i].size, len, MREMAP_MAYMOVE);
            if (p == MAP_FAILED) {
                print_result("mremap", -1);
                continue;
            }
            size_t keep = len < arenas[i].size ? len : arenas[i].size;
            int ok = all_bytes(p, keep, pattern(i)) && all_bytes((unsigned char *)p + keep, len - keep, 0);
            arenas[i].p = p;
            arenas[i].size = len;
            memset(p, pattern(i), len);
            printf("mremap rc=0 addr=%p content_kept=%d\n", p, ok);
        } else if (!strcmp(cmd, "mremap-shrink")) {
            int i = arena_arg(argv[++k]);
            size_t len = strtoul(argv[++k], NULL, 0);
            uintptr_t a = (uintptr_t)arenas[i].p, end = (a | 0x1fffff) + 1;
            unsigned char vec[1];
            void *p = mremap(arenas[i].p, end - a, len, 0);
            if (p == MAP_FAILED) {
                print_result("mremap-shrink", -1);
                continue;
            }
            size_t keep = len < arenas[i].size ? len : arenas[i].size;
            int kept = p == arenas[i].p && all_bytes(p, keep, pattern(i));
            int gone = mincore((void *)(a + len), 4096, vec) != 0 && mincore((void *)(end - 4096), 4096, vec) != 0;
            printf("mremap-shrink rc=0 past=%d same_addr=%d content_kept=%d tail_gone=%d\n",
                   end - a > arenas[i].size, p == arenas[i].p, kept, gone);
            arenas[i].size = keep;
        } else if (!strcmp(cmd, "mremap-fixed")) {
            int i = arena_arg(argv[++k]);
            size_t olen = strtoul(argv[++k], NULL, 0);
            size_t nlen = strtoul(argv[++k], NULL, 0);
            void *dst = mmap(NULL, nlen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            void *p = mremap(arenas[i].p, olen, nlen, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
            if (p == MAP_FAILED) {
                print_result("mremap-fixed", -1);
                munmap(dst, nlen);
                continue;
            }
            size_t keep = nlen < arenas[i].size ? nlen : arenas[i].size;
            printf("mremap-fixed rc=0 moved=%d content_kept=%d\n", p == dst,
                   all_bytes(p, keep, pattern(i)));
            arenas[i].p = p;
            arenas[i].size = keep;
        } else if (!strcmp(cmd, "mremap-pair")) {
            /* Arenas 0 and 1, side by side, resized as one to LEN. */
            size_t len = strtoul(argv[++k], NULL, 0), size = arenas[0].size;
            int lo = arenas[0].p < arenas[1].p ? 0 : 1, hi = 1 - lo;
            if (arenas[lo].p + size != arenas[hi].p || arenas[hi].size != size) {
                printf("mremap-pair adjacent=0\n");
                continue;
            }
            unsigned char *p = mremap(arenas[lo].p, 2 * size, len, MREMAP_MAYMOVE);
            if (p == MAP_FAILED) {
                print_result("mremap-pair", -1);
                continue;
            }
            int ok = all_bytes(p, size, pattern(lo)) && all_bytes(p + size, size, pattern(hi));
            arenas[lo].p = arenas[hi].p = NULL;
            printf("mremap-pair rc=0 content_kept=%d\n", ok);
        } else if (!strcmp(cmd, "raw-munmap") || !strcmp(cmd, "raw-mprotect")) {
            void *a = (void *)strtoul(argv[++k], NULL, 0);
            size_t len = strtoul(argv[++k], NULL, 0);
            int rc = !strcmp(cmd, "raw-munmap") ? munmap(a, len) : mprotect(a, len, PROT_READ);
            print_result(cmd, rc);
        } else if (!strcmp(cmd, "stats")) {
            int (*get)(struct pyhuge_stats *, size_t);
            *(void **)&get = dlsym(RTLD_DEFAULT, "pyhuge_get_stats");
            struct pyhuge_stats st = {0};
            if (!get) {
                printf("stats none\n");
                continue;
            }
            get(&st, sizeof st);
            printf("stats enabled=%lu huge=%lu fallback=%lu live=%lu pages=%lu peak=%lu cached=%lu "
                   "demoted=%lu pool=%lu fault=%lu cap=%lu thp=%lu thp_pages=%lu\n",
                   (unsigned long)st.enabled, (unsigned long)st.arenas_huge,
                   (unsigned long)st.arenas_fallback, (unsigned long)st.arenas_live,
                   (unsigned long)st.pages_now, (unsigned long)st.pages_peak,
                   (unsigned long)st.pages_cached, (unsigned long)st.pages_demoted,
                   (unsigned long)st.fallbacks[PYHUGE_FALLBACK_POOL],
                   (unsigned long)st.fallbacks[PYHUGE_FALLBACK_FAULT],
                   (unsigned long)st.fallbacks[PYHUGE_FALLBACK_CAP], (unsigned long)st.arenas_thp,
                   (unsigned long)st.pages_thp);
        } else if (!strcmp(cmd, "naive")) {
            size_t len = strtoul(argv[++k], NULL, 0) << 21;
            void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
            if (p == MAP_FAILED) {
                print_result("naive", -1);
                continue;
            }
            memset(p, 1, len);
            printf("naive rc=0 written=%zu\n", len);
        } else if (!strcmp(cmd, "munmap-top")) {
            int i = arena_arg(argv[++k]);
            print_result("munmap-top", munmap(arenas[i].p + 4096, (size_t)1 << 63));
        } else if (!strcmp(cmd, "noreplace")) {
            int i = arena_arg(argv[++k]);
            void *p = mmap(arenas[i].p, 4096, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            print_result("noreplace", p == MAP_FAILED ? -1 : 0);
        } else if (!strcmp(cmd, "files")) {
            files(atoi(argv[++k]), NULL);
        } else if (!strcmp(cmd, "files-near")) {
            int i = arena_arg(argv[++k]);
            files(atoi(argv[++k]), arenas[i].p);
        } else if (!strcmp(cmd, "smaps")) {
            smaps_of(arenas[arena_arg(argv[++k])].p);
        } else if (!strcmp(cmd, "core")) {
            struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
            setrlimit(RLIMIT_CORE, &rl);
            if (chdir(argv[++k]) != 0)
                return 2;
            abort();
        } else if (!strcmp(cmd, "fork")) {
            pid_t pid = fork();
            if (pid == 0)
                _exit(0);
            printf("forked pid=%d\n", (int)pid);
        } else if (!strcmp(cmd, "refused")) {
            refused(arenas[arena_arg(argv[++k])].p);
        } else if (!strcmp(cmd, "span-madvise")) {
            uintptr_t lo = UINTPTR_MAX, hi = 0;
            for (int i = 0; i < narenas; i++) {
                uintptr_t a = (uintptr_t)arenas[i].at;
                lo = a < lo ? a : lo;
                hi = a + arenas[i].size > hi ? a + arenas[i].size : hi;
            }
            lo &= ~(uintptr_t)0x1fffff;
            hi = (hi + 0x1fffff) & ~(uintptr_t)0x1fffff;
            int rc = madvise((void *)lo, hi - lo, MADV_NORMAL);
            printf("span-madvise rc=%d errno=%d\n", rc, rc ? errno : 0);
        } else if (!strcmp(cmd, "free-all")) {
            int failed = 0, freed = 0;
            for (int i = 0; i < narenas; i++) {
                if (!arenas[i].p)
                    continue;
                failed += munmap(arenas[i].p, arenas[i].size) != 0;
                arenas[i].p = NULL;
                freed++;
            }
            printf("free-all freed=%d failed=%d\n", freed, failed);
        } else if (!strcmp(cmd, "limit")) {
            const char *which = argv[++k];
            int resource = !strcmp(which, "as") ? RLIMIT_AS : !strcmp(which, "data") ? RLIMIT_DATA
                                                                                   : RLIMIT_FSIZE;
            long kb = resource == RLIMIT_FSIZE ? 256
                                               : proc_field("/proc/self/status",
                                                            resource == RLIMIT_AS ? "VmSize" : "VmData");
            struct rlimit rl = {(rlim_t)kb << 10, RLIM_INFINITY};
            int rc = setrlimit(resource, &rl);
            printf("limit %s kb=%ld rc=%d\n", which, kb, rc);
        } else if (!strcmp(cmd, "mark")) {
            nmarked = read_maps(marked);
        } else if (!strcmp(cmd, "new-mappings")) {
            new_mappings();
        } else if (!strcmp(cmd, "mapped")) {
            int i = arena_arg(argv[++k]);
            size_t off = strtoul(argv[++k], NULL, 0), len = strtoul(argv[++k], NULL, 0);
            mapped_pages(arenas[i].at + off, len);
        } else if (!strcmp(cmd, "forkstorm")) {
            forkstorm(atoi(argv[++k]));
        } else if (!strcmp(cmd, "pool")) {
            printf("pool free=%ld rsvd=%ld\n", meminfo("HugePages_Free"), meminfo("HugePages_Rsvd"));
        } else {
            fprintf(stderr, "arenas: unknown command %s\n", cmd);
            return 2;
        }
    }
    return 0;
}
