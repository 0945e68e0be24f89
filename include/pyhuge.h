/*
 * pyhuge: pymalloc arenas on 2 MiB huge pages, for an unmodified CPython.
 *
 * The library does its work as an LD_PRELOAD shim; this header is the small
 * API it exports for reading what it did. Every function here is safe to call
 * from any thread, before or after the shim has seen an arena, and from
 * Python through ctypes:
 *
 *     lib = ctypes.CDLL(None)          # the preloaded copy
 *     lib.pyhuge_version.restype = ctypes.c_char_p
 *
 * All counters are per process. A forked child counts from zero: its totals
 * are its own requests, its gauges (pages now, live arenas) its own memory.
 */
#ifndef PYHUGE_H
#define PYHUGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PYHUGE_VERSION_MAJOR 0
#define PYHUGE_VERSION_MINOR 1
#define PYHUGE_VERSION_PATCH 0

/* Layout version of struct pyhuge_stats; bumped only when fields are
 * appended. Readers pass sizeof their copy, so old readers keep working. */
#define PYHUGE_STATS_VERSION 4

/* Why an arena request was served by ordinary pages. */
enum pyhuge_fallback {
    PYHUGE_FALLBACK_POOL = 0,  /* the kernel refused the huge page (pool empty, reservation limit) */
    PYHUGE_FALLBACK_FAULT,     /* mapped, but the page could not be faulted in (cgroup fault limit) */
    PYHUGE_FALLBACK_CAP,       /* PYHUGE_MAX_PAGES reached */
    PYHUGE_FALLBACK_SPACE,     /* address space refused (RLIMIT_AS, RLIMIT_DATA, map count) or the range full */
    PYHUGE_FALLBACK_BACKOFF,   /* the THP tier paused after a slow fault (PYHUGE_BACKEND=thp) */
    PYHUGE_FALLBACK_THP,       /* PYHUGE_BACKEND=thp, and no THP tier (THP off, or out of memory) */
    PYHUGE_FALLBACK_COUNT
};

struct pyhuge_stats {
    uint64_t version;          /* PYHUGE_STATS_VERSION of the library that filled it */
    uint64_t enabled;          /* 1 when the shim is active in this process */
    uint64_t arena_size;       /* largest arena request seen (bytes): the arena size; 0 if none */
    uint64_t arenas_huge;      /* arena requests served from huge pages, in total */
    uint64_t arenas_fallback;  /* arena requests served by ordinary pages, in total */
    uint64_t arenas_live;      /* arenas on huge pages now */
    uint64_t pages_now;        /* 2 MiB huge pages held now (including cached ones) */
    uint64_t pages_peak;       /* the most huge pages held at once */
    uint64_t pages_cached;     /* empty hugetlb pages kept for reuse */
    uint64_t pages_demoted;    /* huge pages moved to ordinary pages because of a
                                  partial munmap/mprotect/madvise/mremap */
    uint64_t fallbacks[PYHUGE_FALLBACK_COUNT]; /* by enum pyhuge_fallback */
    /* Version 2: the transparent huge page tier (PYHUGE_BACKEND). Arenas
     * counted here are in none of the counters above. */
    uint64_t arenas_thp;       /* arena requests served from THP-backed 2 MiB pages */
    uint64_t pages_thp;        /* THP-backed 2 MiB pages held now */
    uint64_t pages_thp_peak;
    /* Version 3: fork. */
    uint64_t pages_forked;     /* hugetlb pages moved to ordinary memory before a fork
                                  (one thread: the child then shares them as stock) */
    /* Version 4: arena requests the shim could not serve as arenas. */
    uint64_t arenas_unseen;    /* arena-shaped requests from CPython's own code outside
                                  the recognised arena function (an arena function that
                                  PGO/LTO/BOLT inlined or split): passed through */
};

/* Where tools find a running process's counters without its help: the shim
 * keeps a copy in a one-page shared mapping of a memfd named
 * "pyhuge-stats", listed in /proc/PID/maps as "/memfd:pyhuge-stats
 * (deleted)" and readable through /proc/PID/mem by whoever may trace the
 * process (`pyhuge stats PID` does this). Updated after every change. */
#define PYHUGE_STATS_PAGE_MAGIC "pyhuge-stats-v2"
#define PYHUGE_ARM_MAX 64

struct pyhuge_stats_page {
    char magic[16];            /* PYHUGE_STATS_PAGE_MAGIC, NUL-padded */
    uint64_t pid;              /* the process it belongs to */
    char arm[PYHUGE_ARM_MAX];  /* PYHUGE_ARM, NUL-terminated; "" when unset */
    struct pyhuge_stats stats; /* stats.version says how much of it there is */
};

/* Copies the counters into *out, at most `size` bytes of it (pass
 * sizeof *out). Returns 0, or -1 when out is NULL. */
int pyhuge_get_stats(struct pyhuge_stats *out, size_t size);

/* "MAJOR.MINOR.PATCH" of the loaded library. */
const char *pyhuge_version(void);

#ifdef __cplusplus
}
#endif

#endif /* PYHUGE_H */
