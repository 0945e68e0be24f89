/*
 * Free-threaded CPython (--disable-gil, 3.13t and later): its objects come
 * from the mimalloc inside libpython, not from pymalloc arenas. mimalloc's
 * memory is put on transparent huge pages instead (ft.c says why not
 * hugetlb pages).
 */
#ifndef PYHUGE_FT_H
#define PYHUGE_FT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

/* Called after every mmap the kernel made (p is its answer, MAP_FAILED
 * included), with the caller's return address: when the mapping is one of
 * mimalloc's reservations in a free-threaded CPython, advises it
 * MADV_HUGEPAGE. Never allocates, never changes errno, never fails the
 * call; costs a few compares for any other mapping. */
void ft_mapped(void *p, size_t len, int prot, int flags, int fd, uintptr_t ret);

/* mimalloc's shape (ft.c says why), inline so that every other mmap the
 * hooks pass on pays a few compares, not a call. */
#define FT_SHAPE (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)
#define FT_MIN_LEN ((size_t)2 << 20)
static inline bool ft_shaped(void *p, size_t len, int flags, int fd)
{
    return p != MAP_FAILED && fd == -1 && len >= FT_MIN_LEN && (flags & ~MAP_FIXED) == FT_SHAPE;
}

/* True once a free-threaded CPython's mimalloc memory has been recognised
 * in this process. */
bool ft_found(void);

#endif
