/*
 * fork() with hugetlb pages: what the shim does so that no process, parent
 * or child, ever depends on a free huge page after fork (fork.c).
 */
#ifndef PYHUGE_FORK_H
#define PYHUGE_FORK_H

/* Registers the pthread_atfork handlers (from the constructor). */
void fork_register(void);

/* On the path of new arenas, under the shim's lock: unmaps the shadows of
 * huge pages that no fork has used for a while, and in a forked child
 * collapses inherited pages it has mostly copied (collapse.c). */
void fork_forget_stale_shadows(void);

#endif
