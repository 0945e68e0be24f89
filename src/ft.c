/*
 * Transparent huge pages for a free-threaded CPython's mimalloc (ft.h).
 *
 * A free-threaded build makes no pymalloc arena request: mimalloc, built
 * into libpython, reserves 1 GiB arenas and 32 MiB segments with
 * mmap(hint, len, PROT_NONE or PROT_READ|PROT_WRITE,
 * MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0) (Objects/mimalloc/prim/
 * unix/prim.c, unix_mmap; NORESERVE where the kernel overcommits), commits
 * with mprotect and gives pages back with MADV_DONTNEED. Its own huge-page
 * switch, MIMALLOC_ALLOW_LARGE_OS_PAGES=1, maps segments MAP_HUGETLB
 * instead: private hugetlb pages, whose copy-on-write after fork needs a
 * free pool page, so a forked child writing while the pool is drained dies
 * of SIGBUS (FACTS.md, "the newest Pythons"; doc/pythons-matrix.md shows
 * it). Serving mimalloc from the shim's hugetlb range would need the shim's
 * fork copy for every segment mimalloc commits and decommits page by page:
 * not a small change.
 *
 * What is done instead: each of those mappings, once the kernel has made
 * it, is advised MADV_HUGEPAGE, which is what mimalloc itself does when
 * MAP_HUGETLB is refused. The kernel then backs every aligned 2 MiB of it
 * with a transparent huge page where it has one (THP "madvise" or
 * "always"), and copy-on-write after fork copies 4 KiB at a time, which
 * cannot fail for want of a pool page. MADV_DONTNEED still gives pages
 * back (splitting a huge page where it covers part of one).
 *
 * Which mappings: exactly mimalloc's shape above, at least 2 MiB long,
 * made by code in an object that exports both PyObject_GetArenaAllocator
 * (CPython) and _Py_MergeZeroLocalRefcount (exported only by free-threaded
 * builds: Include/refcount.h, under Py_GIL_DISABLED), with the shim on and
 * its THP tier allowed (not PYHUGE_BACKEND=hugetlb). A default build's
 * mimalloc (PYTHONMALLOC=mimalloc) and other libraries' mappings (glibc's
 * thread heaps are NORESERVE too) are left alone.
 */
#include "ft.h"

#include <link.h>
#include <stdbool.h>
#include <sys/mman.h>

#include "elfsym.h"
#include "log.h"
#include "os.h"
#include "state.h"


struct text {
    uintptr_t lo, hi;
};

/* The free-threaded CPython's code, once found (release/acquire on ft_set). */
static struct text ft_text;
static int ft_set, ft_lock;

/* Code of objects looked at that are not a free-threaded CPython. */
#define MAX_OTHERS 16
static struct text others[MAX_OTHERS];
static unsigned nothers;
static int others_lock;

static bool in(const struct text *t, uintptr_t a)
{
    return a - t->lo < t->hi - t->lo;
}

static bool in_others(uintptr_t ret)
{
    unsigned n = __atomic_load_n(&nothers, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++)
        if (in(&others[i], ret))
            return true;
    return false;
}

/* A try-lock: a signal handler landing here on the same thread must not
 * spin; the object is then looked at again next time. */
static void add_other(struct text t)
{
    if (t.lo >= t.hi || __atomic_exchange_n(&others_lock, 1, __ATOMIC_ACQUIRE))
        return;
    unsigned n = __atomic_load_n(&nothers, __ATOMIC_RELAXED);
    if (n < MAX_OTHERS) {
        others[n] = t;
        __atomic_store_n(&nothers, n + 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&others_lock, 0, __ATOMIC_RELEASE);
}

struct query {
    uintptr_t addr;
    struct text text;
    const char *name;
    bool found, ft;
};

static int find(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct query *q = data;
    if (!elfsym_contains(info, q->addr))
        return 0;
    q->found = true;
    q->name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "the executable";
    q->ft = elfsym_lookup(info, "PyObject_GetArenaAllocator") &&
            elfsym_lookup(info, "_Py_MergeZeroLocalRefcount");
    q->text = (struct text){UINTPTR_MAX, 0};
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
            if (lo < q->text.lo)
                q->text.lo = lo;
            if (lo + ph->p_memsz > q->text.hi)
                q->text.hi = lo + ph->p_memsz;
        }
    }
    return 1;
}

static bool from_ft_cpython(uintptr_t ret)
{
    if (__atomic_load_n(&ft_set, __ATOMIC_ACQUIRE))
        return in(&ft_text, ret);
    if (in_others(ret))
        return false;
    struct query q = {.addr = ret};
    dl_iterate_phdr(find, &q);
    if (!q.found || q.text.lo >= q.text.hi)
        return false;
    if (!q.ft) {
        add_other(q.text);
        return false;
    }
    if (!__atomic_exchange_n(&ft_lock, 1, __ATOMIC_ACQUIRE)) {
        if (!__atomic_load_n(&ft_set, __ATOMIC_RELAXED)) {
            ft_text = q.text;
            __atomic_store_n(&ft_set, 1, __ATOMIC_RELEASE);
            log_info("free-threaded CPython in %s: its mimalloc's memory is advised "
                     "MADV_HUGEPAGE (transparent huge pages: no pool page needed at fork)", q.name);
        }
        __atomic_store_n(&ft_lock, 0, __ATOMIC_RELEASE);
    }
    return in(&q.text, ret);
}

bool ft_found(void) { return __atomic_load_n(&ft_set, __ATOMIC_ACQUIRE); }

void ft_mapped(void *p, size_t len, int prot, int flags, int fd, uintptr_t ret)
{
    if (!ft_shaped(p, len, flags, fd) ||
        (prot != PROT_NONE && prot != (PROT_READ | PROT_WRITE)))
        return;
    /* PYHUGE_BACKEND=hugetlb asks for no transparent huge pages. */
    if (!shim_ready() || shim.opt.backend == BACKEND_HUGETLB || !from_ft_cpython(ret))
        return;
    /* A refusal (THP not built into this kernel: EINVAL) changes nothing:
     * the memory is mimalloc's as before. */
    os_madvise(p, len, MADV_HUGEPAGE);
}
