#include "concurrency_work.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>

#include "fakepython.h"
#include "next.h"
#include "prepare.h"
#include "range.h"
#include "shim.h"

#define ARENA ((size_t)1 << 20)
#define THREADS 6
#define ROUNDS 600

static uintptr_t arena_site; /* a return address inside "CPython"'s arena function */
static struct concurrency_result *res;

void concurrency_setup(void)
{
    /* Pass-through calls then go through libc (and TSan's interceptors,
     * which forget an unmapped range's history), as in a real process. */
    next_init();
    PyObjectArenaAllocator a;
    PyObject_GetArenaAllocator(&a);
    arena_site = (uintptr_t)a.alloc + 16;
}

static void count(long *c) { __atomic_add_fetch(c, 1, __ATOMIC_RELAXED); }

/* What the interposed mmap does for an arena request from CPython. */
static unsigned char *arena_alloc(int *huge)
{
    int cls;
    void *p = table_class_of(ARENA, &cls) ? shim_arena_mmap(ARENA, cls, arena_site) : NULL;
    *huge = p != NULL;
    if (!p)
        p = os_next_mmap(NULL, ARENA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static int arena_free(void *p)
{
    if (!range_overlaps(p, ARENA))
        return os_next_munmap(p, ARENA);
    int e = prepare_munmap(p, ARENA);
    if (e)
        errno = -e;
    return e ? -1 : 0;
}

static void *worker(void *arg)
{
    unsigned char tag = (unsigned char)(uintptr_t)arg;
    unsigned char *mine[4] = {0};
    for (int round = 0; round < ROUNDS; round++) {
        int k = round % 4;
        if (mine[k]) {
            for (size_t i = 0; i < ARENA; i += 4096)
                if (mine[k][i] != tag || mine[k][ARENA - 1] != tag)
                    count(&res->corrupt);
            if (arena_free(mine[k]) != 0)
                count(&res->errors);
        }
        int huge;
        mine[k] = arena_alloc(&huge);
        if (!mine[k]) {
            count(&res->errors);
            continue;
        }
        if (huge)
            count(&res->served_huge);
        for (size_t i = 0; i < ARENA; i += 4096)
            if (mine[k][i] != 0)
                count(&res->not_zeroed);
        memset(mine[k], tag, ARENA);
        /* Someone else's same-sized mapping, in and out. */
        void *other = os_next_mmap(NULL, ARENA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (other == MAP_FAILED) {
            count(&res->errors);
            continue;
        }
        if (range_overlaps(other, ARENA))
            count(&res->inside_range);
        os_next_munmap(other, ARENA);
    }
    for (int k = 0; k < 4; k++)
        if (mine[k])
            arena_free(mine[k]);
    return NULL;
}

static void run_workers(int n)
{
    pthread_t t[THREADS];
    for (int i = 0; i < n - 1; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    worker((void *)(uintptr_t)99);
    for (int i = 0; i < n - 1; i++)
        pthread_join(t[i], NULL);
}

void concurrency_threads(struct concurrency_result *r)
{
    res = r;
    run_workers(THREADS);
}

/* A signal handler that maps memory, landing anywhere, including inside the
 * shim's locked section: it must neither deadlock nor corrupt. */
static void on_alarm(int sig)
{
    (void)sig;
    int huge;
    void *p = arena_alloc(&huge);
    if (p) {
        ((volatile char *)p)[0] = 1;
        arena_free(p); /* EAGAIN if it interrupted the shim on this thread: a leak, never a hang */
    }
    __atomic_add_fetch(&res->handler_runs, 1, __ATOMIC_RELAXED);
}

void concurrency_signals(struct concurrency_result *r, long interval_us)
{
    res = r;
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, interval_us}, {0, interval_us}};
    setitimer(ITIMER_REAL, &it, NULL);
    run_workers(3);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
}
