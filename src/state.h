/*
 * The shim's state, shared by the files that implement it: shim.c (start-up
 * and new arenas), range.c (the reserved range), prepare.c (what callers do
 * to it), tiers.c (where a page's memory comes from), report.c (counters
 * and messages), fork.c. Internal: nothing outside src/ includes it.
 *
 * Every field below `lock` is read and written under it, except where noted.
 */
#ifndef PYHUGE_STATE_H
#define PYHUGE_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "options.h"
#include "os.h"
#include "pyhuge.h"
#include "table.h"

enum state { STATE_NEW, STATE_STARTING, STATE_ACTIVE, STATE_OFF };

/* A doubling wait: each bad outcome waits twice as long as the last (within
 * a tier's bounds), a good one ends it (tiers.c). */
struct backoff {
    uint64_t until_ns; /* 0: not waiting */
    uint64_t step_ns;  /* the last wait; 0 after a good outcome */
};

struct shim_state {
    int state;            /* enum state, atomic */
    struct options opt;   /* written once, before state becomes ACTIVE */
    pthread_mutex_t lock;
    struct table table;   /* its extents are also read lock-free (range_overlaps) */
    bool range_tried;     /* the side table was mapped, or could not be */
    bool range_full;      /* the side table has no room for another extent */
    bool populate_unsupported;
    bool thp_usable;      /* the kernel's THP setting is not [never] */
    struct backoff hugetlb_wait; /* after the pool refused a page */
    struct backoff thp_wait;     /* after a slow transparent huge page fault */
    int hugetlb_refusal;         /* why the pool last refused (enum pyhuge_fallback): the
                                    reason counted while hugetlb_wait runs */
    unsigned reasons_logged; /* atomic */
    struct pyhuge_stats st;
    struct pyhuge_stats_page *page; /* the copy tools read; NULL until the first arena */
};

extern struct shim_state shim;

/* Reads the options once (shim.c); idempotent and safe from any thread and
 * from inside a hook. Returns true when the shim is active. Declared with
 * the state it brings up, so that rooms below shim.c (ft.c) need not
 * include shim.h. */
bool shim_ready(void);

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

/* PYHUGE_METRICS's refresh, when due (metrics.h declares the same two):
 * declared here rather than included, so that metrics.c, which reads the
 * state, and this header do not include each other. */
extern uint64_t metrics_due_ns;
void metrics_refresh(void);

/* Aborts with a message when the side table breaks one of its invariants
 * (table_check); range.c. Called at every unlock in debug builds
 * (buildtype=debug defines PYHUGE_CHECK_TABLE). */
void shim_check_table(void);

static inline void shim_unlock(void)
{
#ifdef PYHUGE_CHECK_TABLE
    shim_check_table();
#endif
    pthread_mutex_unlock(&shim.lock);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    in_shim = 0;
    /* PYHUGE_METRICS, when due: outside the lock, on every path that took it */
    uint64_t due = __atomic_load_n(&metrics_due_ns, __ATOMIC_RELAXED);
    if (due != UINT64_MAX && os_now_ns() >= due)
        metrics_refresh();
}

#endif
