/*
 * The pass-through chain: the caller's call handed on to the next
 * definition after ours (normally glibc's), with that function's own
 * return value and errno. Until next_init() has resolved them they are raw
 * system calls, which on Linux/x86_64 and aarch64 is exactly what glibc
 * does for these calls. One for each call in hook_list.h.
 */
#ifndef PYHUGE_NEXT_H
#define PYHUGE_NEXT_H

#include <stddef.h>
#include <sys/types.h>

#include "hook_list.h"

/* Resolves the os_next_* functions. Call once, from a constructor: dlsym may
 * allocate. Safe to call more than once. */
void next_init(void);

#define NEXT_DECLARE(ret, name, params, args, raw, gaps) ret os_next_##name params;
PYHUGE_HOOKS(NEXT_DECLARE)
#undef NEXT_DECLARE

#endif
