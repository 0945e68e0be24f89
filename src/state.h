/*
 * The shim's state, shared by the files that implement it (shim.c: start-up,
 * the range and new arenas; ranges.c: everything else done to the range;
 * fork.c: fork). Internal: nothing outside src/ includes it.
 *
 * Every field below `lock` is read and written under it, except where noted.
 */
#ifndef PYHUGE_STATE_H
#define PYHUGE_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include "options.h"
#include "pyhuge.h"
#include "table.h"

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PAGE_4K 4096u

enum state { STATE_NEW, STATE_STARTING, STATE_ACTIVE, STATE_OFF };

/* A doubling wait: each bad outcome waits twice as long as the last (within
 * a tier's bounds), a good one ends it (shim.c). */
struct backoff {
    uint64_t until_ns; /* 0: not waiting */
    uint64_t step_ns;  /* the last wait; 0 after a good outcome */
};

struct shim_state {
    int state;            /* enum state, atomic */
    struct options opt;   /* written once, before state becomes ACTIVE */
    uintptr_t lo, hi;     /* the reserved range; published once, read lock-free */
    pthread_mutex_t lock;
    struct table table;
    bool region_tried;
    bool populate_unsupported;
    bool thp_usable;      /* the kernel's THP setting is not [never] */
    struct backoff hugetlb_wait; /* after the pool refused a page */
    struct backoff thp_wait;     /* after a slow transparent huge page fault */
    int fork_pipe[2];     /* the parent waits on [0] until the child has moved its pages */
    bool fork_moves;      /* this fork's child moves its huge pages */
    unsigned reasons_logged; /* atomic */
    struct pyhuge_stats st;
    struct pyhuge_stats_page *page; /* the copy tools read; NULL until the first arena */
};

extern struct shim_state shim;

/* Set while this thread holds shim.lock: a signal handler that lands in a
 * hook on the same thread must not wait for the lock. Initial-exec TLS:
 * reading it never allocates. */
extern __thread int in_shim __attribute__((tls_model("initial-exec")));

/* in_shim covers the whole of lock and unlock, so that a signal landing
 * between taking the mutex and marking it taken cannot wait for itself. */
static inline void shim_lock(void)
{
    in_shim = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    pthread_mutex_lock(&shim.lock);
}

static inline void shim_unlock(void)
{
    pthread_mutex_unlock(&shim.lock);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    in_shim = 0;
}

/* Under the lock, all of them. */

/* Maps PROT_NONE address space over [addr, addr+len): gives back whatever
 * backed it and keeps the range ours. 0 or -errno. */
int reserve(uintptr_t addr, size_t len);
/* Copies table counters into shim.st, and shim.st into the stats page. */
void sync_counters(void);
/* Gives this process a stats page of its own (after fork, a new one). */
void publish_stats_page(void);
/* A page of ours went back to the pool: worth trying again at once. */
void note_page_returned(void);
/* A new hugetlb page where the kernel likes, reserved and faulted in; its
 * address, or 0 with *reason set (enum pyhuge_fallback). */
uintptr_t new_huge_page(int *reason);
/* Moves the live slots of a HUGE page to ordinary pages in place. 0 or -errno. */
int demote(uint32_t idx);
/* Copies the live slots of page idx into the 2 MiB mapping at `to` and
 * moves that over the page in one mremap. 0, or -errno with `to` unmapped. */
int move_live_slots(uint32_t idx, uintptr_t to);

/* fork.c: the pthread_atfork handlers. */
void fork_prepare(void);
void fork_parent(void);
void fork_child(void);

#endif
