/*
 * What the kernel would refuse: the checks it makes on a call's arguments
 * before it changes anything, asked of the kernel itself where it can be
 * asked without changing anything (a call with no effect, or the same call
 * somewhere harmless). Each returns 0 (go on: the call may still fail
 * later) or the negative errno the call would fail with. The hooks ask
 * first, so that a call the kernel refuses outright changes nothing of
 * ours.
 */
#ifndef PYHUGE_REFUSE_H
#define PYHUGE_REFUSE_H

#include <stddef.h>
#include <sys/types.h>

/* mlock2(addr, len, flags): the flags, RLIMIT_MEMLOCK. */
int refuse_mlock(const void *addr, size_t len, unsigned int flags);

/* `prot` (and `pkey`, unless -1) for a page of anonymous memory, asked on a
 * page of address space kept for the purpose; 0 too when the kernel cannot
 * be asked. Not for PROT_GROWSDOWN/GROWSUP, which ask about the mapping at
 * an address. */
int refuse_prot(int prot, int pkey);

/* mmap(MAP_FIXED) at addr: the same call tried at an address of the
 * kernel's choosing (an unaligned offset, an unknown flag, a file that
 * cannot be mapped, a hugetlb mapping's alignment); where that finds no
 * room, the mapping type and the file's mode. */
int refuse_map(void *addr, size_t len, int prot, int flags, int fd, off_t off);

#endif
