/*
 * fork() with hugetlb pages: what the shim does so that no process, parent
 * or child, ever depends on a free huge page after fork (fork.c).
 */
#ifndef PYHUGE_FORK_H
#define PYHUGE_FORK_H

#include <stdint.h>

#include "os.h"

/* Registers the pthread_atfork handlers (from the constructor). */
void fork_register(void);

/* When the shadows of huge pages (kept for the forks of a multithreaded
 * process) have gone unused long enough to be dropped: UINT64_MAX while
 * there are none. Written by fork.c only, under the shim's lock. */
extern uint64_t fork_shadows_stale_ns;
void fork_drop_stale_shadows(void);

/* On the path of new arenas, under the shim's lock: unmaps the shadows
 * once stale. Inline: without shadows, a compare. */
static inline void fork_forget_stale_shadows(void)
{
    if (fork_shadows_stale_ns != UINT64_MAX && os_now_ns() >= fork_shadows_stale_ns)
        fork_drop_stale_shadows();
}

#endif
