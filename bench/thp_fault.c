/*
 * How long an arena takes to become usable memory, one by one, and the worst
 * of them: the question for the THP tier, whose first fault may stop to
 * compact memory (defrag settings). It allocates N 1 MiB arenas through the
 * fake libpython's arena allocator (so the shim serves them when preloaded)
 * and writes every 4 KiB page of each, timing each arena from the request
 * to its last page written. Prints the median, the 99th percentile and the
 * worst, and how much of the arena memory the kernel mapped with
 * transparent huge pages (AnonHugePages, /proc/self/smaps_rollup).
 *
 *   thp_fault [N]      (default 1024 arenas, 1 GiB)
 *
 * bench/bench_thp.sh runs it under each defrag setting, with memory
 * fragmented and not, with and without the shim.
 */
#include "fakepython.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ARENA (1u << 20)
#define PAGE 4096u

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long anon_huge_kib(void)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long kib = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "AnonHugePages: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1024;
    if (n < 1 || n > 65536) {
        fprintf(stderr, "usage: thp_fault [N arenas, 1 to 65536]\n");
        return 64;
    }
    char **arenas = calloc((size_t)n, sizeof *arenas);
    double *us = calloc((size_t)n, sizeof *us);
    if (!arenas || !us)
        return 1;
    double t0 = now_us();
    for (long i = 0; i < n; i++) {
        double a = now_us();
        arenas[i] = fake_arena_alloc(ARENA);
        if (!arenas[i]) {
            fprintf(stderr, "thp_fault: arena %ld: out of memory\n", i);
            return 1;
        }
        for (unsigned off = 0; off < ARENA; off += PAGE)
            arenas[i][off] = 1;
        us[i] = now_us() - a;
    }
    double total = now_us() - t0;
    long thp = anon_huge_kib();
    qsort(us, (size_t)n, sizeof *us, cmp);
    printf("arenas=%ld median_us=%.1f p99_us=%.1f max_us=%.1f total_ms=%.1f anon_huge_mib=%ld\n", n,
           us[n / 2], us[(n * 99) / 100], us[n - 1], total / 1e3, thp < 0 ? -1 : thp / 1024);
    for (long i = 0; i < n; i++)
        fake_arena_free(arenas[i], ARENA);
    free(arenas);
    free(us);
    return 0;
}
