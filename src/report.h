/*
 * What the shim tells: the counters (struct pyhuge_stats, mirrored on a
 * shared page that tools read), why arenas fell back, and the line at exit.
 * Under the shim's lock, all of them but report_exit.
 */
#ifndef PYHUGE_REPORT_H
#define PYHUGE_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "pyhuge.h"

/* Copies the table's gauges into shim.st, and shim.st into the stats page. */
void report_sync(void);

/* Gives this process a stats page of its own. */
void report_publish_page(void);

/* In a forked child: counts from zero, on a page of its own (the parent's
 * is shared with it). */
void report_child(void);

/* What became of an arena request. */
enum arena_fate {
    ARENA_ON_HUGETLB,  /* a slot of a hugetlb page */
    ARENA_ON_THP,      /* a slot of a THP-tier page */
    ARENA_FELL_BACK,   /* ordinary pages, for a reason (enum pyhuge_fallback) */
    ARENA_ASKED_AGAIN, /* not served, and CPython asks again at once (3.15's MAP_HUGETLB
                          first try): its fallback is counted at that call */
};

/* One arena request of len bytes from CPython's arena function and its
 * fate (reason: why it fell back), then the stats synced. A fallback is
 * said once per reason at PYHUGE_VERBOSE=1, every time at 3. The arena
 * size is the largest request. */
void report_arena(size_t len, enum arena_fate fate, int reason);

/* The counters' other writers: each one counts one event (under the lock,
 * but report_start, which runs once before any arena). */
void report_start(bool enabled);
void report_arena_unseen(void);        /* CPython's code, outside the arena function */
void report_page_demoted(void);        /* given to the kernel as ordinary pages */
void report_page_forked(void);         /* moved to ordinary memory before a fork */

/* "pool", "fault", ...: a fallback reason's name in the stats line and the
 * metrics. */
const char *report_reason_name(int reason);

/* The counters, for pyhuge_get_stats. Takes the lock itself. */
void report_read(struct pyhuge_stats *out);

/* At exit: the warnings held since start-up (printed in a CPython
 * process, dropped in any other), the PYHUGE_STATS line, and what was done
 * (PYHUGE_VERBOSE). */
void report_exit(void);

#endif
