/*
 * Every PYHUGE_* variable, read once into one struct; all other code reads
 * the struct. One table in options.c describes each variable (name, kind,
 * range or words, default, the field it sets, what it is for) and one
 * parser reads them all. A bad value gets one warning naming the variable
 * and the default used instead; it never stops the program.
 */
#ifndef PYHUGE_OPTIONS_H
#define PYHUGE_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "pyhuge.h"

enum stats_dest { STATS_NONE, STATS_STDERR, STATS_FILE };
/* Where arenas go: huge pages of the pool, then transparent huge pages. */
enum backend { BACKEND_AUTO, BACKEND_HUGETLB, BACKEND_THP };

/* What a forked child does with the huge pages it shares with its parent. */
enum fork_mode {
    FORK_COPY,  /* moves them to memory of its own before fork() returns (safe) */
    FORK_SHARE, /* keeps them copy-on-write: a drained pool can SIGBUS it */
    FORK_HUGE,  /* as copy, then copies what it inherited onto huge pages of its own
                   from the pool, as far as the pool goes (fork.c) */
};

#define OPTIONS_PATH_MAX 256
#define OPTIONS_CACHE_MAX 64
#define OPTIONS_NO_CAP UINT64_MAX

struct options {
    bool enabled;                 /* PYHUGE: 1|on (default) or 0|off; PYHUGE_BACKEND=off too */
    enum backend backend;         /* PYHUGE_BACKEND: auto (default), hugetlb, thp, off */
    int verbose;                  /* PYHUGE_VERBOSE: 0..3, default 0 */
    enum stats_dest stats;        /* PYHUGE_STATS: unset|0, 1|stderr, or /abs/path */
    char stats_path[OPTIONS_PATH_MAX];
    uint64_t max_pages;           /* PYHUGE_MAX_PAGES: huge pages per process, default no cap */
    unsigned cache_pages;         /* PYHUGE_CACHE_PAGES: empty huge pages kept, 0..64 */
    enum fork_mode fork;          /* PYHUGE_FORK: copy (default), share or huge */
    uint64_t thp_stall_us;        /* PYHUGE_THP_STALL_US: a slower THP fault pauses the tier; 0: never */
    bool malloc_tune;             /* PYHUGE_MALLOC: tune (default) or off (heap.h) */
    char arm[PYHUGE_ARM_MAX];     /* PYHUGE_ARM: the experiment arm's label; "" when unset */
    bool metrics;                 /* PYHUGE_METRICS: /abs/dir for pyhuge-<pid>.prom (metrics.h) */
    char metrics_dir[OPTIONS_PATH_MAX];
    unsigned metrics_interval_s;  /* PYHUGE_METRICS_INTERVAL: seconds between refreshes, 1..3600 */
};

#define OPTIONS_DEFAULT_CACHE_PAGES 1
#define OPTIONS_DEFAULT_THP_STALL_US 10000
#define OPTIONS_THP_STALL_MAX_US 10000000
#define OPTIONS_DEFAULT_METRICS_INTERVAL_S 5
#define OPTIONS_METRICS_INTERVAL_MAX_S 3600

/* Where the values come from: getenv in the library, a table in tests. */
typedef const char *(*options_lookup_fn)(const char *name, void *ctx);

/* Fills *o from lookup, warning (log_warn) about each bad value. When
 * environ is non-NULL, also warns about PYHUGE_* names that are not ours. */
void options_parse(struct options *o, options_lookup_fn lookup, void *ctx, char *const *environ);

/* True when s is a label PYHUGE_ARM accepts: 1..PYHUGE_ARM_MAX-1 bytes of
 * A-Z a-z 0-9 and . _ - : + (nothing a Prometheus label value, a log line
 * or a shell would need to quote). */
bool options_label_ok(const char *s);

#endif
