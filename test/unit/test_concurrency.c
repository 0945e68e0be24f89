/*
 * Many threads allocating and freeing arenas through the shim at once, with
 * same-sized mappings of their own in between, and a signal handler that
 * maps and unmaps memory landing on them at random. Links the shim's code
 * directly (so ThreadSanitizer sees every access) and a fake libpython for
 * the call site; needs a small huge page pool.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>

#include "fakepython.h"
#include "harness.h"
#include "os.h"
#include "shim.h"

#define ARENA ((size_t)1 << 20)
#define THREADS 6
#define ROUNDS 600

static uintptr_t arena_site; /* a return address inside "CPython"'s arena function */
static long served_huge, corrupt;

static void find_site(void)
{
    PyObjectArenaAllocator a;
    PyObject_GetArenaAllocator(&a);
    arena_site = (uintptr_t)a.alloc + 16;
}

/* What the interposed mmap does for an arena request from CPython. */
static unsigned char *arena_alloc(bool *huge)
{
    void *p = shim_arena_mmap(ARENA, arena_site);
    *huge = p != NULL;
    if (!p)
        p = os_next_mmap(NULL, ARENA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static int arena_free(void *p)
{
    return shim_overlaps(p, ARENA) ? shim_munmap(p, ARENA) : os_next_munmap(p, ARENA);
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
                    __atomic_add_fetch(&corrupt, 1, __ATOMIC_RELAXED);
            cr_assert_eq(arena_free(mine[k]), 0);
        }
        bool huge;
        mine[k] = arena_alloc(&huge);
        cr_assert_not_null(mine[k]);
        if (huge)
            __atomic_add_fetch(&served_huge, 1, __ATOMIC_RELAXED);
        for (size_t i = 0; i < ARENA; i += 4096)
            cr_assert_eq(mine[k][i], 0, "new arenas are zero-filled");
        memset(mine[k], tag, ARENA);
        /* Someone else's same-sized mapping, in and out. */
        void *other = os_next_mmap(NULL, ARENA, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        cr_assert_neq(other, MAP_FAILED);
        cr_assert_not(shim_overlaps(other, ARENA), "never inside the shim's range: %p", other);
        os_next_munmap(other, ARENA);
    }
    for (int k = 0; k < 4; k++)
        if (mine[k])
            arena_free(mine[k]);
    return NULL;
}

static volatile sig_atomic_t handler_runs;

/* A signal handler that maps memory, lands anywhere, including inside the
 * shim's locked section: it must neither deadlock nor corrupt. */
static void on_alarm(int sig)
{
    (void)sig;
    bool huge;
    void *p = arena_alloc(&huge);
    if (p) {
        ((volatile char *)p)[0] = 1;
        arena_free(p); /* EAGAIN if it interrupted the shim on this thread: a leak, never a hang */
    }
    handler_runs++;
}

static void setup(void)
{
    /* The hugetlb tier alone, so that the small pool makes arenas fall back. */
    setenv("PYHUGE_BACKEND", "hugetlb", 1);
    pool_require(8); /* fewer pages than the threads want: fallback under contention too */
    find_site();
}

TestSuite(concurrency, .init = setup, .fini = pool_restore, .timeout = 120);

Test(concurrency, threads_never_see_each_others_arenas)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    cr_expect_eq(corrupt, 0, "an arena held another thread's data");
    cr_expect_gt(served_huge, 0, "the pool served some arenas");
    struct pyhuge_stats st;
    shim_read_stats(&st);
    cr_expect_eq(st.arenas_live, 0, "every arena given back");
    cr_expect_gt(st.arenas_fallback, 0, "and the small pool made some fall back");
}

Test(concurrency, signal_handler_mapping_memory_does_not_deadlock)
{
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 200}, {0, 200}};
    setitimer(ITIMER_REAL, &it, NULL);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    worker((void *)(uintptr_t)9);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    cr_expect_gt(handler_runs, 10, "the handler ran (%d times)", (int)handler_runs);
    cr_expect_eq(corrupt, 0);
}
