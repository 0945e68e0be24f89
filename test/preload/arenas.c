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
 *   raw-munmap ADDR LEN, raw-mprotect ADDR LEN   bad input straight through
 *   stats             the shim's counters, through its public API
 *   pool              HugePages_Free and HugePages_Rsvd
 *   naive N           what a naive shim does: maps N huge pages and writes them
 */
#include <dlfcn.h>
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

static int all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
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
            arenas[i].p = p;
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
        } else if (!strcmp(cmd, "pool")) {
            printf("pool free=%ld rsvd=%ld\n", meminfo("HugePages_Free"), meminfo("HugePages_Rsvd"));
        } else {
            fprintf(stderr, "arenas: unknown command %s\n", cmd);
            return 2;
        }
    }
    return 0;
}
