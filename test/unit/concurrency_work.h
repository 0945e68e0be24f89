/*
 * The concurrency scenarios, in plain C so that they run both as Criterion
 * tests (test_concurrency.c) and on their own under ThreadSanitizer
 * (tsan_concurrency.c: Criterion's sandbox cannot start under TSan, its
 * shared arena lands at addresses TSan refuses).
 */
#ifndef PYHUGE_TEST_CONCURRENCY_WORK_H
#define PYHUGE_TEST_CONCURRENCY_WORK_H

struct concurrency_result {
    long served_huge;   /* arenas the pool served */
    long corrupt;       /* arenas that held another thread's data */
    long not_zeroed;    /* new arenas that were not zero-filled */
    long inside_range;  /* someone else's mmap landed in the shim's range */
    long errors;        /* failed mmap/munmap */
    int handler_runs;   /* signal handler invocations */
};

/* Finds "CPython"'s arena call site in the fake libpython. */
void concurrency_setup(void);
/* THREADS threads allocating and freeing arenas and mappings of their own. */
void concurrency_threads(struct concurrency_result *r);
/* The same on 3 threads with a SIGALRM handler mapping memory every
 * interval_us (longer under TSan, whose handlers are slow enough to starve
 * a 200 us timer). */
void concurrency_signals(struct concurrency_result *r, long interval_us);

#endif
