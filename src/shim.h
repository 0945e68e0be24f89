/*
 * The shim's state and the operations the interposed calls delegate to.
 *
 * The shim owns one reserved, 2 MiB-aligned address range. Arenas it serves
 * live only there; the range is never unmapped (freed pages are mapped back
 * as PROT_NONE), so the kernel never hands an address in it to anyone else,
 * and "is this ours?" is a range check that needs no lock. Everything that
 * touches the range goes through here; everything else passes straight on.
 */
#ifndef PYHUGE_SHIM_H
#define PYHUGE_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyhuge.h"

/* Reads the options; idempotent and safe from any thread and from inside a
 * hook. Returns true when the shim is active. */
bool shim_ready(void);

/* Constructor-time set-up: resolves pass-through calls, registers fork
 * handlers. Calls shim_ready(). */
void shim_constructor(void);
/* Exit-time report (PYHUGE_STATS, PYHUGE_VERBOSE). */
void shim_destructor(void);

/* An arena-shaped mmap (NULL, RW, private anonymous, fd -1, offset 0, a
 * known arena size) whose call returns to `ret`. Returns the arena, or NULL
 * when the caller must pass the call on (not CPython's, shim off, or no huge
 * page to be had: the fallback is then counted). Never touches errno. */
void *shim_arena_mmap(size_t len, uintptr_t ret);

/* True when [addr, addr+len) meets the shim's range. Lock-free. */
bool shim_overlaps(const void *addr, size_t len);

/* munmap of a range that meets ours: libc semantics (0, or -1 and errno). */
int shim_munmap(void *addr, size_t len);

/* Before mprotect/madvise/mlock & co. on a range that meets ours: makes the
 * affected pages ordinary so the kernel can do exactly what it would for
 * plain memory. Returns 0 (now pass the call on) or a negative errno to fail
 * the call with (ENOMEM: part of the range would be unmapped memory). */
int shim_prepare_range(void *addr, size_t len);

/* Before someone maps over part of our range (MAP_FIXED, MREMAP_FIXED): the
 * pages there are given up for good. */
void shim_give_up_range(void *addr, size_t len);

/* mremap whose old range meets ours: libc semantics. */
void *shim_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr);

/* The counters, under the shim's lock. */
void shim_read_stats(struct pyhuge_stats *out);

#endif
