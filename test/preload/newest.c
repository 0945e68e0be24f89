/*
 * The driver of test_newest.c: loads one of the fake libpythons of the
 * newest CPythons (fakepython315.c built three ways, fakeunseen.c built
 * two) with dlopen, as an embedding program or a Python executable loads
 * libpython, and runs the commands on its command line against it under
 * LD_PRELOAD=libpyhuge.so, printing one key=value line per command.
 *
 *   load PATH           dlopens the fake
 *   alloc SIZE          an arena through its allocator struct (CPython's
 *                       arena function: mmap, madvise, prctl in dev mode);
 *                       fills it with its number
 *   new SIZE            an arena from fake_new_arena (fakeunseen.c)
 *   free I              gives arena I back through the allocator (a failed
 *                       munmap is fatal there, as in 3.15)
 *   check I             arena I holds its pattern
 *   advise I N ADV      madvise(ADV) on arenas I..I+N-1 (side by side), and
 *                       the same on plain private anonymous memory of the
 *                       same size filled the same way: each result, errno,
 *                       and whether the bytes are kept or zero
 *   name I N NAME       prctl(PR_SET_VMA_ANON_NAME) on arenas I..I+N-1, on
 *                       plain anonymous memory, and on a MAP_HUGETLB
 *                       mapping (when the pool has a page): each result
 *   page I              arena I's 2 MiB page in /proc/self/smaps: how many
 *                       mappings meet it, its Private_Hugetlb and
 *                       AnonHugePages (kB), the arena's kernel page size
 *   stats               the shim's counters (pyhuge_get_stats)
 *   pool                HugePages_Free and HugePages_Rsvd
 *   drain               maps and writes hugetlb pages until the pool is dry
 *   forkwrite N         N children each write every live arena and check
 *                       its pattern; the parent writes them too: how many
 *                       children exited 0, how many died of SIGBUS
 *   freeall             munmap of every live arena, exactly, counting
 *                       failures
 *   padvise I N ADV     posix_madvise(ADV) on arenas I..I+N-1: its result (an
 *                       error number, not errno) and whether the bytes stayed
 *   advise-part I OFF LEN ADV   madvise(ADV) on part of arena I, and the same
 *                       on plain memory: as advise
 *   hugetlb             a 2 MiB MAP_HUGETLB mmap of this program's own (not
 *                       CPython's): where it landed, and its munmap
 *   comm NAME           prctl options that are not the shim's: PR_SET_NAME
 *                       and PR_GET_NAME, PR_GET_DUMPABLE, an unknown option
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pyhuge.h"

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif
#ifndef PR_SET_VMA_ANON_NAME
#define PR_SET_VMA_ANON_NAME 0
#endif

#define MAX_ARENAS 256
#define PAGE_2M ((uintptr_t)2 << 20)

static struct {
    unsigned char *p;
    size_t size;
} arenas[MAX_ARENAS];
static int narenas;

static void *(*arena_alloc)(size_t);
static void (*arena_free)(void *, size_t);
static void *(*new_arena)(size_t);

static unsigned char pattern(int i) { return (unsigned char)(i % 250 + 1); }

static int all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

static int arena_arg(const char *s)
{
    int i = atoi(s);
    if (i < 0 || i >= narenas || !arenas[i].p) {
        fprintf(stderr, "newest: no arena %s\n", s);
        exit(2);
    }
    return i;
}

/* Mappings meeting [lo, hi) in smaps, their Private_Hugetlb and
 * AnonHugePages (kB), and the kernel page size of the one holding lo. */
static void page_of(uintptr_t lo, uintptr_t hi, int *maps, long *hugetlb, long *anon_huge,
                    long *page_kb)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int inside = 0, holds = 0;
    *maps = 0, *hugetlb = 0, *anon_huge = 0, *page_kb = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        long kb;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = a < hi && b > lo;
            holds = lo >= a && lo < b;
            *maps += inside;
            continue;
        }
        if (inside && sscanf(line, "Private_Hugetlb: %ld kB", &kb) == 1)
            *hugetlb += kb;
        if (inside && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            *anon_huge += kb;
        if (holds && sscanf(line, "KernelPageSize: %ld kB", &kb) == 1)
            *page_kb = kb;
    }
    if (f)
        fclose(f);
}

static long meminfo(const char *key)
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

/* Arenas i..i+n-1 side by side: their start, or NULL. */
static unsigned char *run_of(int i, int n)
{
    for (int k = 1; k < n; k++)
        if (i + k >= narenas || arenas[i + k].p != arenas[i].p + (size_t)k * arenas[i].size)
            return NULL;
    return arenas[i].p;
}

static void advise_at(int i, int n, unsigned char *a, size_t off, size_t len, int adv)
{
    unsigned char *plain = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(plain, pattern(i), len);
    errno = 0;
    int rc = madvise(a + off, len - off, adv), e = rc ? errno : 0;
    errno = 0;
    int prc = madvise(plain + off, len - off, adv), pe = prc ? errno : 0;
    int kept = 1, zero = 1;
    for (int k = 0; k < n; k++) {
        kept &= all_bytes(arenas[i + k].p, arenas[i + k].size, pattern(i + k));
        zero &= all_bytes(arenas[i + k].p, arenas[i + k].size, 0);
    }
    printf("advise adv=%d rc=%d errno=%d kept=%d zero=%d plain_rc=%d plain_errno=%d "
           "plain_kept=%d plain_zero=%d\n",
           adv, rc, e, kept, zero, prc, pe, all_bytes(plain, len, pattern(i)),
           all_bytes(plain, len, 0));
    if (off) /* the part before off kept, on both */
        printf("advise-part head_kept=%d plain_head_kept=%d\n", all_bytes(a, off, pattern(i)),
               all_bytes(plain, off, pattern(i)));
    munmap(plain, len);
    for (int k = 0; k < n; k++) /* as before, for the next command */
        memset(arenas[i + k].p, pattern(i + k), arenas[i + k].size);
}

static void advise(int i, int n, int adv)
{
    unsigned char *a = run_of(i, n);
    if (!a) {
        printf("advise adjacent=0\n");
        return;
    }
    advise_at(i, n, a, 0, (size_t)n * arenas[i].size, adv);
}

static int name_result(void *p, size_t len, const char *name)
{
    errno = 0;
    int rc = prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, len, name);
    return rc ? errno : 0;
}

static void name(int i, int n, const char *nm)
{
    unsigned char *a = run_of(i, n);
    if (!a) {
        printf("name adjacent=0\n");
        return;
    }
    size_t len = (size_t)n * arenas[i].size;
    int e = name_result(a, len, nm);
    void *plain = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int pe = name_result(plain, len, nm);
    munmap(plain, len);
    void *huge = mmap(NULL, PAGE_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
                      -1, 0);
    int he = huge == MAP_FAILED ? -1 : name_result(huge, PAGE_2M, nm);
    if (huge != MAP_FAILED)
        munmap(huge, PAGE_2M);
    printf("name errno=%d plain_errno=%d hugetlb_errno=%d kept=%d\n", e, pe, he,
           all_bytes(a, arenas[i].size, pattern(i)));
}

static void forkwrite(int n)
{
    int ok = 0, sigbus = 0, other = 0;
    pid_t pids[16];
    for (int c = 0; c < n && c < 16; c++) {
        pids[c] = fork();
        if (pids[c] == 0) {
            int good = 1;
            for (int i = 0; i < narenas; i++) {
                if (!arenas[i].p)
                    continue;
                good &= all_bytes(arenas[i].p, arenas[i].size, pattern(i));
                memset(arenas[i].p, pattern(i), arenas[i].size);
            }
            _exit(good ? 0 : 3);
        }
    }
    for (int i = 0; i < narenas; i++)
        if (arenas[i].p)
            memset(arenas[i].p, pattern(i), arenas[i].size);
    for (int c = 0; c < n && c < 16; c++) {
        int st = 0;
        if (pids[c] < 0 || waitpid(pids[c], &st, 0) < 0)
            other++;
        else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            ok++;
        else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS)
            sigbus++;
        else
            other++;
    }
    int parent_ok = 1;
    for (int i = 0; i < narenas; i++)
        if (arenas[i].p)
            parent_ok &= all_bytes(arenas[i].p, arenas[i].size, pattern(i));
    printf("forkwrite children=%d ok=%d sigbus=%d other=%d parent_ok=%d\n", n, ok, sigbus, other,
           parent_ok);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int k = 1; k < argc; k++) {
        const char *cmd = argv[k];
        if (!strcmp(cmd, "load")) {
            void *h = dlopen(argv[++k], RTLD_NOW);
            if (!h) {
                fprintf(stderr, "newest: %s\n", dlerror());
                return 2;
            }
            *(void **)&arena_alloc = dlsym(h, "fake_arena_alloc");
            *(void **)&arena_free = dlsym(h, "fake_arena_free");
            *(void **)&new_arena = dlsym(h, "fake_new_arena");
            printf("loaded new_arena=%d\n", new_arena != NULL);
        } else if (!strcmp(cmd, "alloc") || !strcmp(cmd, "new")) {
            size_t size = strtoul(argv[++k], NULL, 0);
            unsigned char *p = !strcmp(cmd, "alloc") ? arena_alloc(size) : new_arena(size);
            if (!p) {
                printf("%s failed errno=%d\n", cmd, errno);
                continue;
            }
            int i = narenas++;
            int zero = all_bytes(p, size, 0);
            memset(p, pattern(i), size);
            arenas[i].p = p;
            arenas[i].size = size;
            int maps;
            long hugetlb, anon_huge, page_kb;
            page_of((uintptr_t)p, (uintptr_t)p + 1, &maps, &hugetlb, &anon_huge, &page_kb);
            printf("arena=%d addr=%p page_kb=%ld anon_huge=%ld zero=%d\n", i, (void *)p, page_kb,
                   anon_huge, zero);
        } else if (!strcmp(cmd, "free")) {
            int i = arena_arg(argv[++k]);
            arena_free(arenas[i].p, arenas[i].size);
            arenas[i].p = NULL;
            printf("freed=%d\n", i);
        } else if (!strcmp(cmd, "check")) {
            int i = arena_arg(argv[++k]);
            printf("check=%d ok=%d\n", i, all_bytes(arenas[i].p, arenas[i].size, pattern(i)));
        } else if (!strcmp(cmd, "advise")) {
            int i = arena_arg(argv[++k]);
            int n = atoi(argv[++k]);
            advise(i, n, atoi(argv[++k]));
        } else if (!strcmp(cmd, "padvise")) {
            int i = arena_arg(argv[++k]);
            int n = atoi(argv[++k]), adv = atoi(argv[++k]);
            unsigned char *a = run_of(i, n);
            int rc = a ? posix_madvise(a, (size_t)n * arenas[i].size, adv) : -1;
            printf("padvise adv=%d rc=%d kept=%d\n", adv, rc,
                   a && all_bytes(a, arenas[i].size, pattern(i)));
        } else if (!strcmp(cmd, "advise-part")) {
            int i = arena_arg(argv[++k]);
            size_t off = strtoul(argv[++k], NULL, 0), len = strtoul(argv[++k], NULL, 0);
            advise_at(i, 1, arenas[i].p, off, off + len, atoi(argv[++k]));
        } else if (!strcmp(cmd, "hugetlb")) {
            void *p = mmap(NULL, PAGE_2M, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
            if (p == MAP_FAILED) {
                printf("hugetlb failed errno=%d\n", errno);
                continue;
            }
            memset(p, 7, PAGE_2M);
            int maps;
            long hugetlb, anon_huge, page_kb;
            page_of((uintptr_t)p, (uintptr_t)p + 1, &maps, &hugetlb, &anon_huge, &page_kb);
            printf("hugetlb page_kb=%ld hugetlb_kb=%ld munmap=%d\n", page_kb, hugetlb,
                   munmap(p, PAGE_2M));
        } else if (!strcmp(cmd, "name")) {
            int i = arena_arg(argv[++k]);
            int n = atoi(argv[++k]);
            name(i, n, argv[++k]);
        } else if (!strcmp(cmd, "page")) {
            int i = arena_arg(argv[++k]);
            uintptr_t lo = (uintptr_t)arenas[i].p & ~(PAGE_2M - 1);
            int maps;
            long hugetlb, anon_huge, page_kb;
            page_of(lo, lo + PAGE_2M, &maps, &hugetlb, &anon_huge, &page_kb);
            page_of((uintptr_t)arenas[i].p, (uintptr_t)arenas[i].p + 1, &(int){0}, &(long){0},
                    &(long){0}, &page_kb);
            printf("page=%d maps=%d hugetlb=%ld anon_huge=%ld page_kb=%ld\n", i, maps, hugetlb,
                   anon_huge, page_kb);
        } else if (!strcmp(cmd, "stats")) {
            int (*get)(struct pyhuge_stats *, size_t);
            *(void **)&get = dlsym(RTLD_DEFAULT, "pyhuge_get_stats");
            struct pyhuge_stats st = {0};
            if (!get) {
                printf("stats none\n");
                continue;
            }
            get(&st, sizeof st);
            printf("stats huge=%lu fallback=%lu thp=%lu live=%lu pages=%lu demoted=%lu unseen=%lu "
                   "pool=%lu\n",
                   (unsigned long)st.arenas_huge, (unsigned long)st.arenas_fallback,
                   (unsigned long)st.arenas_thp, (unsigned long)st.arenas_live,
                   (unsigned long)st.pages_now, (unsigned long)st.pages_demoted,
                   (unsigned long)st.arenas_unseen,
                   (unsigned long)st.fallbacks[PYHUGE_FALLBACK_POOL]);
        } else if (!strcmp(cmd, "pool")) {
            printf("pool free=%ld rsvd=%ld\n", meminfo("HugePages_Free"), meminfo("HugePages_Rsvd"));
        } else if (!strcmp(cmd, "drain")) {
            int n = 0;
            for (;;) {
                void *p = mmap(NULL, PAGE_2M, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
                if (p == MAP_FAILED)
                    break;
                memset(p, 1, PAGE_2M);
                n++;
            }
            printf("drain pages=%d free=%ld rsvd=%ld\n", n, meminfo("HugePages_Free"),
                   meminfo("HugePages_Rsvd"));
        } else if (!strcmp(cmd, "forkwrite")) {
            forkwrite(atoi(argv[++k]));
        } else if (!strcmp(cmd, "comm")) {
            const char *want = argv[++k];
            char got[17] = {0};
            int set = prctl(PR_SET_NAME, want, 0, 0, 0);
            int get = prctl(PR_GET_NAME, got, 0, 0, 0);
            int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
            errno = 0;
            int bad = prctl(0x7ffffff0, 0, 0, 0, 0), bad_errno = errno;
            printf("comm set=%d get=%d same=%d dumpable=%d bad=%d bad_errno=%d\n", set, get,
                   strncmp(got, want, 15) == 0, dumpable, bad, bad_errno);
        } else if (!strcmp(cmd, "freeall")) {
            int failed = 0, freed = 0;
            for (int i = 0; i < narenas; i++) {
                if (!arenas[i].p)
                    continue;
                errno = 0;
                if (munmap(arenas[i].p, arenas[i].size) != 0) {
                    failed++;
                    printf("freeall failed arena=%d errno=%d\n", i, errno);
                }
                arenas[i].p = NULL;
                freed++;
            }
            printf("freeall freed=%d failed=%d\n", freed, failed);
        } else {
            fprintf(stderr, "newest: unknown command %s\n", cmd);
            return 2;
        }
    }
    return 0;
}
