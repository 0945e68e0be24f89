/*
 * What callers do to the shim's range, for the hooks: munmap, the calls
 * that change a range in place, mmap(MAP_FIXED) over it, mremap. Whatever
 * a caller does that a hugetlb page cannot do (munmap or mprotect part of
 * it, madvise, mremap, map over it), the pages it touches are first made
 * exactly what plain pages would be and given to the kernel for good
 * (PAGE_KERNEL); then the kernel answers the call itself. Nothing is
 * emulated, and a page the kernel has is never touched again, whatever it
 * maps there.
 *
 * Each takes the shim's lock (or fails with EAGAIN in a signal handler
 * that interrupted it) and returns 0 or a negative errno; the hooks turn
 * that into libc's convention.
 */
#ifndef PYHUGE_PREPARE_H
#define PYHUGE_PREPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "hook_list.h"

/* munmap of a range that meets ours. The kernel judges the part outside
 * the range first: a length it refuses changes nothing. */
int prepare_munmap(void *addr, size_t len);

/* Before a call that changes [addr, addr+len) in place (`gaps` as in
 * hook_list.h), or maps over it (HOOK_SKIPS_GAPS): gives the pages it
 * touches to the kernel. 0: now pass the call on. Arguments the kernel
 * would refuse are left to it. */
int prepare_call(void *addr, size_t len, enum hook_gaps gaps);

/* Before mmap(MAP_FIXED) over the range: the kernel's own refusals of the
 * arguments first (refuse_map), so that a call it refuses changes nothing;
 * then prepare_call. */
int prepare_map(void *addr, size_t len, int prot, int flags, int fd, off_t off);

/* Before an mremap whose old range or (MREMAP_FIXED) new range meets ours:
 * the kernel's refusals of the arguments first; an old range that the
 * kernel would refuse in the plain world (unmapped memory of ours, more
 * than one mapping) is EFAULT without anything changed. A shrink's tail is
 * unmapped as munmap would, *old_len becoming new_len. Then the pages left
 * are given to the kernel: 0, and the kernel does the rest, unless *done
 * (an arena in place at the same length: the kernel would do nothing, the
 * call returns old_addr). */
int prepare_remap(void *old_addr, size_t *old_len, size_t new_len, int flags, void *new_addr,
                  bool *done);

#endif
