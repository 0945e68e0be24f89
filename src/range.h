/*
 * The shim's range: the address space its arenas live in, and everything
 * done to it. The range is a few extents of reserved address space
 * (table.h), added as arenas need them and never given back, so the kernel
 * never hands an address in a FREE, HUGE or THP page to anyone else and "is
 * this ours?" is a check that needs no lock.
 *
 * Whatever a caller does to the range that a hugetlb page cannot do
 * (munmap or mprotect part of it, madvise, mremap, map over it), the pages
 * it touches are first made exactly what plain pages would be and given to
 * the kernel for good (PAGE_KERNEL); then the kernel answers the call
 * itself. Nothing is emulated, and a page the kernel has is never touched
 * again, whatever it maps there.
 */
#ifndef PYHUGE_RANGE_H
#define PYHUGE_RANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hooks.h"

/* ---- for the hooks: lock-free check, then libc semantics ------------------ */

/* True when [addr, addr+len) meets the range. Lock-free. */
bool range_overlaps(const void *addr, size_t len);

/* munmap of a range that meets ours: libc semantics (0, or -1 and errno).
 * The kernel judges the part outside the range first: a length it refuses
 * changes nothing. */
int range_munmap(void *addr, size_t len);

/* Before a call that changes [addr, addr+len) in place (`gaps` as in
 * hooks.h), or maps over it (HOOK_SKIPS_GAPS): gives the pages it touches
 * to the kernel. Returns 0 (now pass the call on) or a negative errno to
 * fail the call with. Arguments the kernel would refuse are left to it. */
int range_prepare(void *addr, size_t len, enum hook_gaps gaps);

/* Before mmap(MAP_FIXED) over the range: the kernel's own refusals of the
 * arguments first (the same call tried at an address of its choosing; the
 * mapping type and the file's mode where that finds no room), so that a
 * call it refuses changes nothing; then range_prepare. */
int range_prepare_map(void *addr, size_t len, int prot, int flags, int fd, off_t off);

/* Before an mremap whose old range or (MREMAP_FIXED) new range meets ours:
 * the kernel's refusals of the arguments first; an old range that the
 * kernel would refuse in the plain world (unmapped memory of ours, more
 * than one mapping) is EFAULT without anything changed. A shrink's tail is
 * unmapped as munmap would, *old_len becoming new_len. Then the pages left
 * are given to the kernel: 0, and the kernel does the rest; or
 * RANGE_REMAP_DONE when it would do nothing (an arena in place at the same
 * length: the call returns old_addr); or a negative errno. */
#define RANGE_REMAP_DONE 1
int range_prepare_remap(void *old_addr, size_t *old_len, size_t new_len, int flags, void *new_addr);

/* ---- for the shim, under its lock ----------------------------------------- */

/* Maps the side table; false when it cannot be had. */
bool range_init(void);

/* A FREE page to back, reserving more address space when every page is
 * taken. -1 when no more can be had. */
int32_t range_claim_page(void);

/* An empty serving page (table_release said RELEASE_UNMAP_PAGE, or it was
 * evicted from the cache) goes back to being address space. */
void range_release_page(uint32_t idx);

/* Copies the live slots of page idx into the 2 MiB at `to`; from the 2 MiB
 * at `from` instead of the page itself with range_copy_live_from. */
void range_copy_live(uint32_t idx, uintptr_t to);
void range_copy_live_from(uint32_t idx, uintptr_t from, uintptr_t to);

/* Moves the 2 MiB mapping at `from` over page idx in one mremap. Returns 0;
 * or -errno with `from` unmapped and the page unchanged; or RANGE_COPIED
 * when the kernel unmapped the page and then failed, and `from`'s contents
 * were copied into ordinary memory there instead. */
#define RANGE_COPIED 1
int range_move_over(uint32_t idx, uintptr_t from);

/* Ordinary memory (marked MADV_HUGEPAGE when thp) in place of hugetlb page
 * idx, one for one under both RLIMIT_AS and RLIMIT_DATA, so that it needs
 * no room under either. The page's contents are gone: the caller has them
 * elsewhere. 0, or -errno with the hugetlb page still there. */
int range_replace_in_place(uint32_t idx, bool thp);

/* The same with page idx's arenas kept, written to a memfd and read back
 * (no address space needed: only a descriptor, and RLIMIT_FSIZE of 2 MiB
 * at least). The page holds no data in between, with signals blocked: only
 * for a process with one thread. 0, or -errno with the page unchanged. */
int range_move_through_file(uint32_t idx, bool thp);

/* Makes page idx plain memory (its arenas copied to ordinary pages in
 * place, the rest holes) and gives it to the kernel. 0, or -errno when the
 * copy cannot be made (the page is then unchanged). */
int range_give_to_kernel(uint32_t idx);

#endif
