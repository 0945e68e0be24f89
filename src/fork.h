/*
 * fork() with hugetlb pages: what the shim does so that no process, parent
 * or child, ever depends on a free huge page after fork (fork.c).
 */
#ifndef PYHUGE_FORK_H
#define PYHUGE_FORK_H

/* Registers the pthread_atfork handlers (from the constructor). */
void fork_register(void);

/* Unmaps the shadows of huge pages that no fork has used for a while
 * (fork.c); under the shim's lock, on the path of new arenas. */
void fork_forget_stale_shadows(void);

#endif
