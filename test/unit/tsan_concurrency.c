/*
 * The concurrency scenarios under ThreadSanitizer, without Criterion (its
 * sandbox arena cannot be placed under TSan). Prints TAP; a data race makes
 * TSan end the process with status 66, which meson reports as a failure.
 * Sizes the huge page pool to 8 pages itself and restores it.
 */
#include <stdio.h>
#include <stdlib.h>

#include "concurrency_work.h"

#define NR "/proc/sys/vm/nr_hugepages"

static long read_pool(void)
{
    FILE *f = fopen(NR, "r");
    long n = -1;
    if (f && fscanf(f, "%ld", &n) != 1)
        n = -1;
    if (f)
        fclose(f);
    return n;
}

static int write_pool(long n)
{
    FILE *f = fopen(NR, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%ld\n", n) > 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int main(void)
{
    long before = read_pool();
    printf("TAP version 13\n1..2\n");
    if (write_pool(8) != 0) {
        printf("ok 1 # SKIP cannot size the pool (needs root)\nok 2 # SKIP same\n");
        return 0;
    }
    setenv("PYHUGE_BACKEND", "hugetlb", 1);
    concurrency_setup();
    struct concurrency_result t = {0}, s = {0};
    concurrency_threads(&t);
    int ok1 = t.corrupt == 0 && t.not_zeroed == 0 && t.inside_range == 0 && t.errors == 0 && t.served_huge > 0;
    printf("%s 1 - threads: %ld arenas served huge, %ld corrupt, %ld not zeroed, %ld foreign in range, %ld errors\n",
           ok1 ? "ok" : "not ok", t.served_huge, t.corrupt, t.not_zeroed, t.inside_range, t.errors);
    concurrency_signals(&s, 5000);
    int ok2 = s.corrupt == 0 && s.inside_range == 0 && s.handler_runs > 3;
    printf("%s 2 - signal handler mapping memory: %d runs, %ld corrupt\n", ok2 ? "ok" : "not ok",
           s.handler_runs, s.corrupt);
    write_pool(before);
    return ok1 && ok2 ? 0 : 1;
}
