/*
 * A stand-in for libpython in preload tests: it exports
 * PyObject_GetArenaAllocator and allocates arenas exactly as CPython's
 * _PyObject_ArenaMmap does, through the allocator struct. other_mmap makes
 * the same-shaped call from elsewhere in the object, as the mmap module
 * would in a Python whose modules are linked into the executable.
 */
#include "fakepython.h"

#include <sys/mman.h>

#define EXPORT __attribute__((visibility("default")))

/* noinline: clang would otherwise fold the call through the static struct
 * into fake_arena_alloc, and the mmap would return elsewhere than CPython's. */
__attribute__((noinline)) static void *arena_mmap(void *ctx, size_t size)
{
    (void)ctx;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

__attribute__((noinline)) static void arena_munmap(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    munmap(ptr, size);
}

static PyObjectArenaAllocator arena_allocator = {NULL, arena_mmap, arena_munmap};

EXPORT void PyObject_GetArenaAllocator(PyObjectArenaAllocator *a) { *a = arena_allocator; }

EXPORT void *fake_arena_alloc(size_t size) { return arena_allocator.alloc(NULL, size); }

EXPORT void fake_arena_free(void *p, size_t size) { arena_allocator.free(NULL, p, size); }

/* Keeps other_mmap well outside the shim's accepted call-site window (the
 * first 256 bytes of the arena function): 8 KiB of int3 between them. A
 * function, not top-level asm, so that clang (which emits top-level asm
 * first) keeps it in place too; both compilers keep source order with
 * -fno-toplevel-reorder, and clang keeps it by default. */
__attribute__((naked, used, noinline)) static void spacer(void) { __asm__(".skip 8192, 0xcc"); }

EXPORT __attribute__((noinline)) void *fake_other_mmap(size_t size)
{
    return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}
