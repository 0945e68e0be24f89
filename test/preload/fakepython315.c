/*
 * A stand-in for CPython 3.15's libpython, for the preload tests of the
 * newest Pythons (test_newest.c): its arena function does what 3.15's
 * _PyMem_ArenaAlloc does on Linux (written from the description of its
 * source in doc/pythons.md, not copied):
 *
 *   - with FAKE_HUGEPAGES (the --with-pymalloc-hugepages build) and
 *     PYTHON_PYMALLOC_HUGEPAGES=1, when Hugepagesize divides the arena
 *     size: mmap(NULL, size, PROT_READ|PROT_WRITE,
 *     MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB, -1, 0) first;
 *   - otherwise, or when that fails, the plain private anonymous mmap,
 *     then madvise(MADV_HUGEPAGE) on the arena;
 *   - in dev mode (PYTHONDEVMODE=1, as -X dev sets), the arena named with
 *     prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, ..., "cpython:pymalloc"),
 *     its result ignored;
 *   - an arena whose munmap fails is a fatal error: a message and abort().
 *
 * Built at -O2 and -O3, and -O2 the huge-page way (test/meson.build); and
 * once with FAKE_LONG, 1 KiB of code before the plain call, as a build
 * that inlines more there would have (it runs as no-ops). It
 * exports PyObject_GetArenaAllocator, which is how the shim recognises
 * CPython, and the same fake_arena_* entry points as fakepython.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "fakepython.h"

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif
#ifndef PR_SET_VMA_ANON_NAME
#define PR_SET_VMA_ANON_NAME 0
#endif

#define EXPORT __attribute__((visibility("default")))

/* Read once at start-up, as CPython reads its configuration. */
static int dev_mode;
static int use_hugepages;
static size_t hugepage_size;

__attribute__((constructor)) static void read_config(void)
{
    const char *dev = getenv("PYTHONDEVMODE");
    dev_mode = dev && *dev && strcmp(dev, "0") != 0;
    const char *huge = getenv("PYTHON_PYMALLOC_HUGEPAGES");
    use_hugepages = huge && atoi(huge) != 0;
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    unsigned long kb;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Hugepagesize: %lu kB", &kb) == 1)
            hugepage_size = (size_t)kb << 10;
    if (f)
        fclose(f);
}

static void annotate(void *p, size_t size)
{
    if (!dev_mode)
        return;
    int saved = errno;
    prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, size, "cpython:pymalloc");
    errno = saved; /* the kernel may not name anything: not an error */
}

__attribute__((noinline)) static void *arena_alloc(void *ctx, size_t size)
{
    (void)ctx;
    void *p;
#ifdef FAKE_HUGEPAGES
    if (use_hugepages && hugepage_size && size % hugepage_size == 0) {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1,
                 0);
        if (p != MAP_FAILED) {
            annotate(p, size);
            return p;
        }
    }
#endif
#ifdef FAKE_LONG
    __asm__ volatile(".skip 1024, 0x90");
#endif
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, size, MADV_HUGEPAGE);
    annotate(p, size);
    return p;
}

__attribute__((noinline)) static void arena_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    if (munmap(p, size) < 0) {
        fprintf(stderr, "Fatal Python error: arena_free: munmap(%p, %zu) failed with errno %d\n",
                p, size, errno);
        abort();
    }
}

static PyObjectArenaAllocator arena_allocator = {NULL, arena_alloc, arena_free};

EXPORT void PyObject_GetArenaAllocator(PyObjectArenaAllocator *a) { *a = arena_allocator; }

EXPORT void *fake_arena_alloc(size_t size) { return arena_allocator.alloc(NULL, size); }

EXPORT void fake_arena_free(void *p, size_t size) { arena_allocator.free(NULL, p, size); }
