/*
 * Where a function ends, from the unwind tables every x86_64 and aarch64
 * object carries (.eh_frame_hdr, PT_GNU_EH_FRAME): its FDE gives the code
 * range [pc_begin, pc_begin + pc_range). Used to accept every call site of
 * CPython's arena function, however long it is (3.15's tries MAP_HUGETLB,
 * then the plain call, then madvise and prctl), when symbols are
 * stripped and the function is hidden. Reads the loaded object's memory
 * only: no allocation, no lock, no system call.
 */
#ifndef PYHUGE_FNEXTENT_H
#define PYHUGE_FNEXTENT_H

#include <link.h>
#include <stddef.h>
#include <stdint.h>

/* The number of bytes from fn to the end of the function whose unwind
 * entry covers fn, in the object `phdr` (phnum entries) loaded at `base`;
 * 0 when the object has no usable table or no entry covers fn. */
size_t fnextent_after(uintptr_t base, const ElfW(Phdr) *phdr, int phnum, uintptr_t fn);

#endif
