/*
 * glibc malloc's heap beside the arenas (heap.h says what and why): the two
 * mallopt settings made once in a CPython process, and when to trim.
 */
#include "heap.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "cpython.h"
#include "log.h"
#include "os.h"
#include "state.h"

static int tuned;               /* atomic, set once heap_setup has decided */
static int decided;             /* atomic: heap_setup acts once */
static struct heap_watch watch; /* under the shim's lock */

/* Set by the process's own choice: respected. */
static const char *own_setting(void)
{
    static const char *const vars[] = {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
                                       "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_", NULL};
    for (const char *const *v = vars; *v; v++)
        if (getenv(*v))
            return *v;
    const char *t = getenv("GLIBC_TUNABLES");
    if (t && strstr(t, "glibc.malloc."))
        return "GLIBC_TUNABLES";
    const char *pm = getenv("PYTHONMALLOC");
    if (pm && *pm && strcmp(pm, "pymalloc") != 0 && strcmp(pm, "pymalloc_debug") != 0)
        return "PYTHONMALLOC";
    return NULL;
}

void heap_setup(void)
{
    char what[160];
    if (!shim.opt.enabled || !shim.opt.malloc_tune || !cpython_describe(what, sizeof what))
        return; /* not CPython yet: shim_cpython_found asks again */
    if (__atomic_exchange_n(&decided, 1, __ATOMIC_ACQ_REL))
        return;
    const char *why = own_setting();
    if (why) {
        log_info("glibc malloc left as it is: %s is set", why);
        return;
    }
    int ok = mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD) && mallopt(M_TOP_PAD, HEAP_TOP_PAD);
    watch.last_trim_ns = os_now_ns();
    __atomic_store_n(&tuned, ok, __ATOMIC_RELEASE);
    log_info("glibc malloc: blocks up to %u MiB from its heap, which grows %u MiB at a time%s",
             HEAP_MMAP_THRESHOLD >> 20, HEAP_TOP_PAD >> 20, ok ? "" : " (refused)");
}

void heap_watch_served(struct heap_watch *w, size_t bytes)
{
    w->live += bytes;
    if (w->live > w->peak)
        w->peak = w->live;
}

bool heap_watch_freed(struct heap_watch *w, size_t bytes, uint64_t now_ns)
{
    w->live = bytes < w->live ? w->live - bytes : 0;
    if (w->live > w->peak / 2 || w->peak - w->live < HEAP_TRIM_BYTES ||
        now_ns - w->last_trim_ns < HEAP_TRIM_INTERVAL_NS)
        return false;
    w->last_trim_ns = now_ns;
    w->peak = w->live;
    return true;
}

void heap_arena_served(size_t bytes) { heap_watch_served(&watch, bytes); }

bool heap_arenas_freed(size_t bytes)
{
    return __atomic_load_n(&tuned, __ATOMIC_ACQUIRE) && heap_watch_freed(&watch, bytes, os_now_ns());
}

void heap_trim(void)
{
    uint64_t t0 = os_now_ns();
    malloc_trim(0);
    log_debug("glibc malloc's free memory given back in %u us",
              (unsigned)((os_now_ns() - t0) / 1000));
}
