/*
 * A stand-in for a libpython whose arena function the shim cannot see,
 * as PGO, LTO and BOLT builds leave it (issue 21, item 5):
 *
 *   FAKE_INLINED  the arena function inlined into a new_arena-like caller
 *                 (fake_new_arena), while the exported allocator struct
 *                 still points at an out-of-line copy;
 *   FAKE_COLD     its mmap split into a cold part placed in .text.unlikely,
 *                 away from the function the struct points at.
 *
 * In both, the arena's mmap returns far outside the window the shim
 * recognises (8 KiB of padding at least): the shim passes it through and
 * counts it (arenas_unseen). fake_arena_alloc goes through the struct.
 */
#include <sys/mman.h>

#include "fakepython.h"

#define EXPORT __attribute__((visibility("default")))

void *fake_new_arena(size_t size);

#if defined(FAKE_COLD)
/* The cold part: GCC and clang place cold functions in .text.unlikely,
 * which the linker puts before .text. */
__attribute__((noinline, cold)) static void *arena_mmap_cold(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}
#endif

static inline __attribute__((always_inline)) void *arena_body(size_t size)
{
#if defined(FAKE_COLD)
    return arena_mmap_cold(size);
#else
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
#endif
}

__attribute__((noinline)) static void *arena_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return arena_body(size);
}

__attribute__((noinline)) static void arena_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    munmap(p, size);
}

static PyObjectArenaAllocator arena_allocator = {NULL, arena_alloc, arena_free};

EXPORT void PyObject_GetArenaAllocator(PyObjectArenaAllocator *a) { *a = arena_allocator; }

EXPORT void *fake_arena_alloc(size_t size) { return arena_allocator.alloc(NULL, size); }

EXPORT void fake_arena_free(void *p, size_t size) { arena_allocator.free(NULL, p, size); }

/* Far from arena_alloc: 8 KiB of int3 (kept in place with
 * -fno-toplevel-reorder, as in fakepython.c). */
__attribute__((naked, used, noinline)) static void spacer(void) { __asm__(".skip 8192, 0xcc"); }

/* pymalloc's new_arena, with the arena function inlined into it (LTO). */
EXPORT __attribute__((noinline)) void *fake_new_arena(size_t size)
{
#if defined(FAKE_COLD)
    return arena_allocator.alloc(NULL, size);
#else
    return arena_body(size);
#endif
}
