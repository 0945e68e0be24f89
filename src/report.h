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

/* The counters' writers: each one counts one event (under the lock, but
 * report_start, which runs once before any arena). */
void report_start(bool enabled);
void report_arena_request(size_t len); /* the arena size is the largest request */
void report_arena_served(bool thp);    /* on a hugetlb page, or a THP-tier page */
void report_arena_unseen(void);        /* CPython's code, outside the arena function */
void report_page_demoted(void);        /* given to the kernel as ordinary pages */
void report_page_forked(void);         /* moved to ordinary memory before a fork */

/* An arena went to ordinary pages for `reason`: counted; said once per
 * reason at PYHUGE_VERBOSE=1, every time at 3. */
void report_fallback(int reason);

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
