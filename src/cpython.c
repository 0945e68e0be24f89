/*
 * Recognising CPython's arena function from a return address (cpython.h):
 * the object exporting PyObject_GetArenaAllocator is CPython, the function
 * that allocator hands out is the arena function, and its extent comes from
 * its unwind entry. Also tells CPython's other code apart (arenas_unseen)
 * and describes, at exit, what Python a process has. No allocation, no
 * dlsym: ELF tables are walked directly.
 */
#include "cpython.h"

#include <link.h>
#include <stddef.h>

#include "elfsym.h"
#include "fnextent.h"
#include "fmt.h"
#include "log.h"

/* PyObjectArenaAllocator, as every CPython 3.4+ declares it. */
struct arena_allocator {
    void *ctx;
    void *(*alloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr, size_t size);
};

struct site {
    uintptr_t object; /* load address of the CPython object */
    uintptr_t lo, hi; /* accepted return addresses; empty when none */
    uintptr_t text_lo, text_hi; /* its executable code; empty when the
                                   arena allocator was replaced */
};

#define MAX_SITES 4

static struct site sites[MAX_SITES];
static unsigned nsites; /* entries [0, nsites) are complete (release/acquire) */
static int sites_lock;

static enum cpython_call in_known_site(uintptr_t ret, long *offset)
{
    unsigned n = __atomic_load_n(&nsites, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++)
        if (ret - sites[i].lo < sites[i].hi - sites[i].lo)
            return CPYTHON_ARENA;
    for (unsigned i = 0; i < n; i++) {
        if (ret - sites[i].text_lo < sites[i].text_hi - sites[i].text_lo) {
            *offset = (long)(ret - sites[i].lo);
            return CPYTHON_ELSEWHERE;
        }
    }
    return CPYTHON_NOT;
}

/* Executable code of objects already looked at whose calls are not arena
 * requests (no CPython there, or CPython outside its arena function): a
 * return address there needs no walk of the loaded objects. An object
 * unloaded and another loaded at its address would only see its same-sized
 * mmaps pass through, never a wrong arena. */
struct text {
    uintptr_t lo, hi;
};

#define MAX_OTHERS 16

static struct text others[MAX_OTHERS];
static unsigned nothers; /* release/acquire, as nsites */
static int others_lock;

static bool in_other_text(uintptr_t ret)
{
    unsigned n = __atomic_load_n(&nothers, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++)
        if (ret - others[i].lo < others[i].hi - others[i].lo)
            return true;
    return false;
}

static void add_other_text(uintptr_t lo, uintptr_t hi)
{
    if (lo >= hi || __atomic_exchange_n(&others_lock, 1, __ATOMIC_ACQUIRE))
        return;
    unsigned n = __atomic_load_n(&nothers, __ATOMIC_RELAXED);
    if (n < MAX_OTHERS) {
        others[n] = (struct text){lo, hi};
        __atomic_store_n(&nothers, n + 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&others_lock, 0, __ATOMIC_RELEASE);
}

static bool object_known(uintptr_t object)
{
    unsigned n = __atomic_load_n(&nsites, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++)
        if (sites[i].object == object)
            return true;
    return false;
}

struct query {
    uintptr_t addr;      /* in: an address inside the object wanted (0: any CPython) */
    uintptr_t object;    /* out: its load address */
    const char *name;
    uintptr_t get_allocator; /* out: PyObject_GetArenaAllocator, or 0 */
    uintptr_t text_lo, text_hi;
    const ElfW(Phdr) *phdr;
    int phnum;
    bool found;
};

static int find_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct query *q = data;
    if (q->addr && !elfsym_contains(info, q->addr))
        return 0;
    uintptr_t get = elfsym_lookup(info, "PyObject_GetArenaAllocator");
    if (!q->addr && !get)
        return 0;
    q->found = true;
    q->object = info->dlpi_addr;
    q->name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "the executable";
    q->get_allocator = get;
    q->phdr = info->dlpi_phdr;
    q->phnum = info->dlpi_phnum;
    q->text_lo = UINTPTR_MAX;
    q->text_hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
            if (lo < q->text_lo)
                q->text_lo = lo;
            if (lo + ph->p_memsz > q->text_hi)
                q->text_hi = lo + ph->p_memsz;
        }
    }
    return 1;
}

/* A try-lock: a signal handler landing here on the same thread must not
 * spin forever; the site is then simply learnt on a later call. */
static bool add_site(uintptr_t object, uintptr_t lo, uintptr_t hi, uintptr_t text_lo,
                     uintptr_t text_hi)
{
    if (__atomic_exchange_n(&sites_lock, 1, __ATOMIC_ACQUIRE))
        return false;
    unsigned n = __atomic_load_n(&nsites, __ATOMIC_RELAXED);
    bool added = n < MAX_SITES && !object_known(object);
    if (added) {
        sites[n] = (struct site){
            .object = object, .lo = lo, .hi = hi, .text_lo = text_lo, .text_hi = text_hi};
        __atomic_store_n(&nsites, n + 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&sites_lock, 0, __ATOMIC_RELEASE);
    return added;
}

enum cpython_call cpython_classify(uintptr_t ret, long *offset, bool *found_now)
{
    *found_now = false;
    enum cpython_call c = in_known_site(ret, offset);
    if (c != CPYTHON_NOT)
        return c;
    if (in_other_text(ret))
        return CPYTHON_NOT;
    struct query q = {.addr = ret};
    dl_iterate_phdr(find_object, &q);
    if (!q.found)
        return CPYTHON_NOT;
    if (!q.get_allocator || object_known(q.object)) {
        add_other_text(q.text_lo, q.text_hi);
        return CPYTHON_NOT;
    }

    /* Called outside dl_iterate_phdr's lock: CPython 3.12+ takes a lock of
     * its own in here, and no arena allocation ever holds that lock. */
    struct arena_allocator a = {0};
    ((void (*)(struct arena_allocator *))q.get_allocator)(&a);
    uintptr_t fn = (uintptr_t)a.alloc;
    if (fn - q.text_lo < q.text_hi - q.text_lo) {
        /* The whole function where its unwind entry says where it ends
         * (3.15's tries MAP_HUGETLB before its plain call), at least the
         * fixed window. */
        size_t window = fnextent_after(q.object, q.phdr, q.phnum, fn);
        if (window > CPYTHON_MAX_WINDOW)
            window = 0;
        if (window < CPYTHON_CALLSITE_WINDOW)
            window = CPYTHON_CALLSITE_WINDOW;
        *found_now = add_site(q.object, fn, fn + window, q.text_lo, q.text_hi);
        log_info("CPython found in %s; arena allocator at %p (%zu bytes accepted), this call site "
                 "at offset %ld", q.name, (void *)fn, window, (long)(ret - fn));
    } else {
        /* An embedder installed its own arena allocator: CPython's own
         * mmaps are not arenas then. Remember the object, accept nothing. */
        add_site(q.object, 0, 0, 0, 0);
        log_info("CPython found in %s, but its arena allocator was replaced; not serving arenas",
                 q.name);
    }
    return in_known_site(ret, offset);
}

struct older {
    const char *name;
    const char *(*get_version)(void);
};

static int find_older(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct older *o = data;
    uintptr_t get = elfsym_lookup(info, "Py_GetVersion");
    if (!get)
        return 0;
    o->name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "the executable";
    *(void **)&o->get_version = (void *)get;
    return 1;
}

bool cpython_describe(char *buf, size_t len)
{
    struct fmt f;
    fmt_init(&f, buf, len);
    if (__atomic_load_n(&nsites, __ATOMIC_ACQUIRE))
        return true;
    struct query q = {.addr = 0};
    dl_iterate_phdr(find_object, &q);
    if (q.found)
        return true;
    struct older o = {0};
    dl_iterate_phdr(find_older, &o);
    if (!o.get_version) {
        fmt_add(&f, "no CPython in this process");
        return false;
    }
    /* Py_GetVersion formats into a static buffer: no allocation. */
    const char *v = o.get_version();
    size_t n = 0;
    while (v && v[n] && v[n] != ' ')
        n++;
    fmt_add(&f, "Python %.*s in %s has no arena allocator to recognise (CPython 3.4 or later "
            "is needed)", (int)n, v ? v : "", o.name);
    return false;
}
