/*
 * Start-up and new arenas: the shim's entry points besides the range's
 * (range.h). An arena-shaped mmap from CPython's arena allocator gets a
 * slot of a 2 MiB page in the shim's range; every other call passes on.
 */
#ifndef PYHUGE_SHIM_H
#define PYHUGE_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyhuge.h"

/* Constructor-time set-up: resolves pass-through calls, steps aside for
 * another copy of the library loaded first, registers fork handlers. */
void shim_constructor(void);
/* Exit-time report (PYHUGE_STATS, PYHUGE_VERBOSE). */
void shim_destructor(void);


/* An arena-shaped mmap (NULL, RW, private anonymous, fd -1, offset 0, an
 * arena size, of class cls: table_class_of) whose call returns to `ret`.
 * Returns the arena, or NULL when the caller must pass the call on (not
 * CPython's, shim off, or no huge page to be had: the fallback is then
 * counted). Never touches errno. */
void *shim_arena_mmap(size_t len, int cls, uintptr_t ret);

/* CPython 3.15's huge-page build asks for each 2 MiB arena with
 * mmap(NULL, 2 MiB, PROT_READ|PROT_WRITE,
 * MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB, -1, 0) first, then the plain call.
 * Returns the arena (a slot of ours, hugetlb or THP) as shim_arena_mmap
 * does. Otherwise NULL, with *refuse set when the call comes from
 * CPython's code: the caller fails it (ENOMEM, as an empty pool does) and
 * CPython makes its plain call, served or counted then; *refuse clear when
 * it is not CPython's (or the shim is off): pass it on. */
void *shim_arena_mmap_hugetlb(size_t len, uintptr_t ret, bool *refuse);

/* The counters (pyhuge_get_stats). */
void shim_read_stats(struct pyhuge_stats *out);

#endif
