/*
 * glibc malloc's heap beside the arenas. Under the shim, pymalloc's arenas
 * fault once per 2 MiB; what still faults 4 KiB at a time in a real program
 * is glibc's heap (objects over 512 bytes, list and dict storage, large
 * strings), which glibc maps with its own brk and mmap calls, out of any
 * shim's reach. Two settings, made once with mallopt from the constructor
 * of a CPython process, keep that memory in use instead of giving it back
 * and faulting it in again (doc/bench-mallopt.md has the measurements):
 *
 *   M_MMAP_THRESHOLD 4 MiB  blocks up to 4 MiB come from the heap, where
 *                           freed memory is used again, not from mmap
 *   M_TOP_PAD 2 MiB         the heap grows 2 MiB at a time
 *
 * The price is memory kept after a peak: glibc gives back only the top of
 * its heap (doc/bench-mallopt.md: about a tenth to a fifth of a peak). A
 * long-running process gets it back: when the arenas the shim holds fall
 * to half their peak since the last time (by HEAP_TRIM_BYTES at least), a
 * sign that many objects died, the shim asks glibc to return its free
 * memory (malloc_trim), outside its own lock and only on the path of
 * CPython's arena frees, never on an ordinary call; at most once every
 * HEAP_TRIM_INTERVAL_NS, the first time that long after start-up. A
 * program that builds and frees the same structures over and over would
 * otherwise give the memory back and fault it in again each time
 * (measured: one trim in a two-second program undid the whole gain), so
 * programs shorter than that are never trimmed.
 *
 * Not done when PYHUGE_MALLOC=off, when the process sets glibc's malloc
 * itself (GLIBC_TUNABLES glibc.malloc.*, MALLOC_*_ variables), or when
 * PYTHONMALLOC sends Python's objects elsewhere (no arenas, so no sign of
 * when to trim).
 */
#ifndef PYHUGE_HEAP_H
#define PYHUGE_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEAP_MMAP_THRESHOLD (4u << 20)
#define HEAP_TOP_PAD (2u << 20)
#define HEAP_TRIM_BYTES ((size_t)16 << 20)
#define HEAP_TRIM_INTERVAL_NS 60000000000ull

/* When to trim, as pure bookkeeping (unit-tested): the bytes of arenas the
 * shim holds, their most since the last trim, and when that was. */
struct heap_watch {
    size_t live, peak;
    uint64_t last_trim_ns;
};

void heap_watch_served(struct heap_watch *w, size_t bytes);
/* True when a trim is due at now_ns after bytes of arenas went back. */
bool heap_watch_freed(struct heap_watch *w, size_t bytes, uint64_t now_ns);

/* From the constructor, and again when CPython is first recognised (an
 * interpreter embedded after start-up): makes the settings once, when they
 * apply to this process (a CPython, the shim on, the heap not set by the
 * process). */
void heap_setup(void);

/* The shim served an arena of `bytes` (under the shim's lock). */
void heap_arena_served(size_t bytes);

/* CPython gave back `bytes` of arenas (under the shim's lock). True when a
 * trim is due: call heap_trim once the lock is released. */
bool heap_arenas_freed(size_t bytes);

/* Returns glibc's free memory to the system; outside the shim's lock. */
void heap_trim(void);

#endif
