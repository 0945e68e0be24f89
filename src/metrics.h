/*
 * PYHUGE_METRICS=/dir: each CPython process keeps /dir/pyhuge-<pid>.prom,
 * its counters in the Prometheus text exposition format, for
 * node_exporter's textfile collector (doc/metrics.md lists every metric).
 *
 * The file is written whole to a hidden temporary file in the same
 * directory and renamed over the last one, so a reader sees a whole file or
 * the one before. It is written when the process is known to be CPython,
 * then at most once every PYHUGE_METRICS_INTERVAL seconds while arenas come
 * and go (on the shim's own paths, after its lock is released: no thread,
 * no allocation), and removed when the process exits cleanly. A process
 * with PYHUGE=off publishes pyhuge_info{enabled="0"} alone. A forked child
 * writes its own file at its first arena, never touching its parent's.
 */
#ifndef PYHUGE_METRICS_H
#define PYHUGE_METRICS_H

#include <stdint.h>

#include "os.h"

/* When the next refresh is due (os_now_ns); UINT64_MAX: none. */
extern uint64_t metrics_due_ns;

/* The process is CPython: the first file (its directory checked; one
 * warning and no metrics when it cannot be written). Idempotent. */
void metrics_start(void);

/* Writes the file again if it is due. Outside the shim's lock. */
void metrics_refresh(void);

static inline void metrics_tick(void)
{
    uint64_t due = __atomic_load_n(&metrics_due_ns, __ATOMIC_RELAXED);
    if (due != UINT64_MAX && os_now_ns() >= due)
        metrics_refresh();
}

/* In a forked child (pthread_atfork): a file of its own at its next arena. */
void metrics_forked(void);

/* At a clean exit: removes this process's file. */
void metrics_stop(void);

#endif
