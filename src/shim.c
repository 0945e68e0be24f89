/*
 * Start-up and new arenas (shim.h): the options read once, the moment the
 * process is known to be CPython, the exit report; and the arena mmap that
 * takes a slot of a huge page.
 */
#include "shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "collapse.h"
#include "cpython.h"
#include "fork.h"
#include "heap.h"
#include "log.h"
#include "metrics.h"
#include "os.h"
#include "next.h"
#include "range.h"
#include "report.h"
#include "state.h"
#include "tiers.h"

extern char **environ;

struct shim_state shim = {.lock = PTHREAD_MUTEX_INITIALIZER, .table = TABLE_EMPTY};
__thread int in_shim __attribute__((tls_model("initial-exec")));

/* ---- start-up --------------------------------------------------------------- */

static const char *env_lookup(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

/* Set when a PYHUGE=off process may yet turn out to be CPython (an
 * interpreter embedded after start-up) and something waits for that: its
 * warnings, its info metric. */
static bool watch_off;

static void off_process_call(void);

bool shim_ready(void)
{
    int s = __atomic_load_n(&shim.state, __ATOMIC_ACQUIRE);
    if (s == STATE_ACTIVE)
        return true;
    if (s == STATE_OFF) {
        off_process_call();
        return false;
    }
    if (s != STATE_NEW)
        return false; /* another thread is starting us: pass through */
    if (!environ)
        return false; /* too early in process start-up even for getenv */
    int expected = STATE_NEW;
    if (!__atomic_compare_exchange_n(&shim.state, &expected, STATE_STARTING, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return expected == STATE_ACTIVE;
    /* Not a word in a process that is not CPython: held until it is known. */
    log_hold_warnings();
    options_parse(&shim.opt, env_lookup, NULL, environ);
    report_start(shim.opt.enabled);
    s = shim.opt.enabled ? STATE_ACTIVE : STATE_OFF;
    __atomic_store_n(&shim.state, s, __ATOMIC_RELEASE);
    return s == STATE_ACTIVE;
}

/* The process is CPython: the warnings held since start-up are printed,
 * PYHUGE_METRICS starts. Once. */
static void cpython_known(void)
{
    static int known;
    if (__atomic_exchange_n(&known, 1, __ATOMIC_ACQ_REL))
        return;
    __atomic_store_n(&watch_off, false, __ATOMIC_RELEASE);
    log_release_warnings(true);
    metrics_start();
}

static int loaded_count(struct dl_phdr_info *info, size_t size, void *data)
{
    if (size >= offsetof(struct dl_phdr_info, dlpi_adds) + sizeof info->dlpi_adds)
        *(unsigned long long *)data = info->dlpi_adds;
    return 1; /* the first object tells: dlpi_adds counts every load so far */
}

/* An arena-shaped mmap in a PYHUGE=off process: its metrics when due, and
 * whether CPython has arrived since start-up. Only while something waits
 * for the answer, and only when objects were loaded since the last look:
 * otherwise one step of dl_iterate_phdr. */
static void off_process_call(void)
{
    static unsigned long long seen_adds;
    metrics_tick();
    if (!__atomic_load_n(&watch_off, __ATOMIC_ACQUIRE) || in_shim)
        return;
    unsigned long long adds = 0;
    dl_iterate_phdr(loaded_count, &adds);
    if (adds && adds == __atomic_load_n(&seen_adds, __ATOMIC_RELAXED))
        return;
    __atomic_store_n(&seen_adds, adds, __ATOMIC_RELAXED);
    char what[160];
    if (cpython_describe(what, sizeof what))
        cpython_known();
}

/* Two copies of the library in one process (LD_PRELOAD naming a build and
 * an installed copy): the dynamic linker sends every call to the first, and
 * the second would only print an empty report. The second steps aside. */
static bool another_copy_first(void)
{
    static const char here; /* any address inside this copy */
    Dl_info mine, first;
    void *sym = dlsym(RTLD_DEFAULT, "pyhuge_version");
    return sym && dladdr(&here, &mine) && dladdr(sym, &first) && mine.dli_fbase != first.dli_fbase;
}

static bool stepped_aside;

void shim_constructor(void)
{
    next_init();
    if (another_copy_first()) {
        stepped_aside = true;
        __atomic_store_n(&shim.state, STATE_OFF, __ATOMIC_RELEASE);
        return;
    }
    shim_ready();
    heap_setup();
    fork_register();
    if (shim.opt.metrics)
        pthread_atfork(NULL, NULL, metrics_forked); /* after fork.c's: the child's counters */
    /* CPython linked in, or libpython loaded with the program: known now.
     * Otherwise an interpreter embedded later is found at its first arena
     * (shim_cpython_found), or, with PYHUGE=off, by off_process_call. */
    char what[160];
    bool waiting = log_warnings_held() || shim.opt.metrics;
    if (waiting && cpython_describe(what, sizeof what))
        cpython_known();
    else if (waiting && __atomic_load_n(&shim.state, __ATOMIC_ACQUIRE) == STATE_OFF)
        __atomic_store_n(&watch_off, true, __ATOMIC_RELEASE);
}

/* Once, when CPython's arena function is first recognised
 * (cpython_newly_found): the moment a process is known to be CPython, which
 * for an embedded interpreter (uWSGI's plugin loads libpython late) comes
 * long after the constructor. Outside the shim's lock, never from inside
 * malloc. */
static void shim_cpython_found(void)
{
    /* The constructor made the malloc settings if libpython was loaded
     * then; an interpreter embedded later gets them now. */
    heap_setup();
    cpython_known();
}

void shim_destructor(void)
{
    if (stepped_aside)
        return;
    report_exit();
    metrics_stop();
}

/* ---- new arenas -------------------------------------------------------------- */

/* The first arena: the side table, a stats page for tools, the THP setting. */
static bool setup_once(void)
{
    if (shim.range_tried)
        return shim.table.pages != NULL;
    if (range_init() != 0)
        return false;
    report_publish_page();
    tier_detect();
    return true;
}

/* A slot for an arena of class cls: from a mapped page, else from a new
 * one. 0, or -ENOMEM with *reason set. */
static int take_slot(int cls, struct slot *s, int *reason)
{
    if (table_take_slot(&shim.table, cls, s))
        return 0;
    uint32_t idx;
    if (range_claim_page(&idx) != 0) {
        *reason = PYHUGE_FALLBACK_SPACE;
        return -ENOMEM;
    }
    if (tier_back_page(idx, cls, reason) != 0)
        return -ENOMEM;
    table_take_slot(&shim.table, cls, s); /* a new page: always room */
    return 0;
}

/* An arena-shaped request from CPython's own code outside its arena
 * function's window: counted, and said once with where it came from. */
static void count_unseen(size_t len, long offset)
{
    static int said;
    shim_lock();
    report_arena_unseen();
    report_sync();
    shim_unlock();
    if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
        log_info("an arena-shaped mmap of %zu KiB from CPython's own code returns at offset %ld "
                 "from its arena function, outside the function (an arena function inlined or split "
                 "by PGO, LTO or BOLT?): passed through to ordinary pages, counted as "
                 "arenas_unseen", len >> 10, offset);
}

/* hugetlb: the request is CPython 3.15's MAP_HUGETLB first try (its
 * --with-pymalloc-hugepages build), which CPython follows with the plain
 * call when it fails: a fallback is counted at that call, not twice. */
static void *arena_mmap(size_t len, int cls, uintptr_t ret, bool hugetlb, enum cpython_call *who)
{
    /* CPython first recognised where the shim cannot act on it (a signal
     * handler that landed inside the shim): acted on at the next arena. */
    static int found_pending;
    *who = CPYTHON_NOT;
    /* Inside the shim (a signal handler that landed there), only a
     * MAP_HUGETLB request is classified: it is refused if CPython's. */
    if (!shim_ready() || (in_shim && !hugetlb))
        return NULL;
    long offset = 0;
    bool found_now;
    *who = cpython_classify(ret, &offset, &found_now);
    if (in_shim) {
        if (found_now)
            __atomic_store_n(&found_pending, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    if (found_now || __atomic_exchange_n(&found_pending, 0, __ATOMIC_RELAXED))
        shim_cpython_found();
    if (*who == CPYTHON_ELSEWHERE && !hugetlb)
        count_unseen(len, offset);
    if (*who != CPYTHON_ARENA)
        return NULL;
    struct slot s = {0};
    int reason = PYHUGE_FALLBACK_SPACE;
    int e = -ENOMEM;

    shim_lock();
    if (setup_once()) {
        fork_forget_stale_shadows();
        collapse_tick();
        e = take_slot(cls, &s, &reason);
    }
    enum arena_fate fate = e == 0 ? (s.backing == BACK_THP ? ARENA_ON_THP : ARENA_ON_HUGETLB)
                           : hugetlb ? ARENA_ASKED_AGAIN
                                     : ARENA_FELL_BACK;
    report_arena(len, fate, reason);
    if (e == 0)
        heap_arena_served(len);
    shim_unlock();

    if (e)
        return NULL;
    /* mmap's contract is zero-filled memory; a reused slot is not. */
    if (s.must_zero)
        memset((void *)s.addr, 0, len);
    log_trace("arena %p, %zu KiB%s", (void *)s.addr, len >> 10,
              hugetlb ? " (asked for MAP_HUGETLB)" : "");
    return (void *)s.addr;
}

void *shim_arena_mmap(size_t len, int cls, uintptr_t ret)
{
    enum cpython_call who;
    return arena_mmap(len, cls, ret, false, &who);
}

void *shim_arena_mmap_hugetlb(size_t len, uintptr_t ret, bool *refuse)
{
    int cls;
    enum cpython_call who = CPYTHON_NOT;
    void *p = table_class_of(len, &cls) ? arena_mmap(len, cls, ret, true, &who) : NULL;
    /* Any hugetlb request from CPython's code that we do not serve fails:
     * a private hugetlb mapping of its own would be shared with a child at
     * fork, and kill it with SIGBUS once the pool runs dry. */
    *refuse = !p && who != CPYTHON_NOT;
    return p;
}

void shim_read_stats(struct pyhuge_stats *out)
{
    shim_ready();
    report_read(out);
}
