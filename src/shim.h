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

/* Reads the options; idempotent and safe from any thread and from inside a
 * hook. Returns true when the shim is active. */
bool shim_ready(void);

/* Constructor-time set-up: resolves pass-through calls, steps aside for
 * another copy of the library loaded first, registers fork handlers. */
void shim_constructor(void);
/* Exit-time report (PYHUGE_STATS, PYHUGE_VERBOSE). */
void shim_destructor(void);

/* Called once, by cpython.c, when CPython's arena allocator is first
 * recognised: the moment a process is known to be CPython, which for an
 * embedded interpreter (uWSGI's plugin loads libpython late) comes long
 * after the constructor. Outside the shim's lock, never from inside malloc. */
void shim_cpython_found(void);

/* An arena-shaped mmap (NULL, RW, private anonymous, fd -1, offset 0, a
 * known arena size) whose call returns to `ret`. Returns the arena, or NULL
 * when the caller must pass the call on (not CPython's, shim off, or no huge
 * page to be had: the fallback is then counted). Never touches errno. */
void *shim_arena_mmap(size_t len, uintptr_t ret);

/* The counters (pyhuge_get_stats). */
void shim_read_stats(struct pyhuge_stats *out);

#endif
