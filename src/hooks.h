/*
 * The one list of the calls pyhuge interposes. Everything else is generated
 * from it: the pointers to the next definitions and their resolution and
 * pass-through wrappers (os.c), the hooks that change a range in place
 * (hooks.c), and the exports test (test/unit/test_exports.c). memray keeps
 * its hooks the same way.
 *
 * X(ret, name, params, args, raw, gaps)
 *   params  the prototype's parameter list
 *   args    the same names, to pass the call on
 *   raw     the system call that does the job before os_init() has found
 *           the next definition (what glibc's wrapper does on Linux)
 *   gaps    for range calls, what the kernel does at unmapped memory inside
 *           the range: HOOK_STOPS_AT_GAP, it acts up to the first hole and fails
 *           with ENOMEM there (mprotect, mlock); HOOK_SKIPS_GAPS, it acts on
 *           every mapped part, then fails with ENOMEM (madvise). HOOK_MAP for
 *           the others.
 *
 * PYHUGE_MAP_HOOKS: calls with hooks of their own in hooks.c (mmap64 is
 * mmap with a 64-bit offset, which every 64-bit Linux has; libpython
 * imports mmap64, built with _FILE_OFFSET_BITS=64). mremap is variadic in
 * libc; passing new_addr always is what glibc's wrapper does. prctl is
 * variadic too (`int prctl(int option, ...)`): glibc's wrapper reads four
 * unsigned longs whatever the option, and so do we; only PR_SET_VMA
 * (CPython 3.15 names its arenas with it under -X dev) concerns the shim.
 * PYHUGE_RANGE_HOOKS: calls that change a range in place, all made by one
 * macro: on the shim's range, its pages first become plain memory.
 */
#ifndef PYHUGE_HOOKS_H
#define PYHUGE_HOOKS_H

#define PYHUGE_MAP_HOOKS(X)                                                                     \
    X(void *, mmap, (void *addr, size_t len, int prot, int flags, int fd, off_t off),          \
      (addr, len, prot, flags, fd, off), (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off), HOOK_MAP) \
    X(void *, mmap64, (void *addr, size_t len, int prot, int flags, int fd, off_t off),        \
      (addr, len, prot, flags, fd, off), (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off), HOOK_MAP) \
    X(int, munmap, (void *addr, size_t len), (addr, len), (int)syscall(SYS_munmap, addr, len), HOOK_MAP)  \
    X(void *, mremap, (void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr), \
      (old_addr, old_len, new_len, flags, new_addr),                                           \
      (void *)syscall(SYS_mremap, old_addr, old_len, new_len, flags, new_addr), HOOK_MAP)       \
    X(int, prctl, (int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5), \
      (option, a2, a3, a4, a5), (int)syscall(SYS_prctl, option, a2, a3, a4, a5), HOOK_MAP)

#define PYHUGE_RANGE_HOOKS(X)                                                                   \
    X(int, mprotect, (void *addr, size_t len, int prot), (addr, len, prot),                    \
      (int)syscall(SYS_mprotect, addr, len, prot), HOOK_STOPS_AT_GAP)                                             \
    X(int, pkey_mprotect, (void *addr, size_t len, int prot, int pkey), (addr, len, prot, pkey), \
      (int)syscall(SYS_pkey_mprotect, addr, len, prot, pkey), HOOK_STOPS_AT_GAP)                                  \
    X(int, madvise, (void *addr, size_t len, int advice), (addr, len, advice),                 \
      (int)syscall(SYS_madvise, addr, len, advice), HOOK_SKIPS_GAPS)                                            \
    X(int, posix_madvise, (void *addr, size_t len, int advice), (addr, len, advice),           \
      os_raw_posix_madvise(addr, len, advice), HOOK_SKIPS_GAPS)                                                 \
    X(int, mlock, (const void *addr, size_t len), (addr, len), (int)syscall(SYS_mlock, addr, len), HOOK_STOPS_AT_GAP) \
    X(int, mlock2, (const void *addr, size_t len, unsigned int flags), (addr, len, flags),     \
      (int)syscall(SYS_mlock2, addr, len, flags), HOOK_STOPS_AT_GAP)                                              \
    X(int, munlock, (const void *addr, size_t len), (addr, len), (int)syscall(SYS_munlock, addr, len), HOOK_STOPS_AT_GAP)

/* What a range call does at a hole (the `gaps` column). */
enum hook_gaps { HOOK_MAP, HOOK_STOPS_AT_GAP, HOOK_SKIPS_GAPS };

#define PYHUGE_HOOKS(X) PYHUGE_MAP_HOOKS(X) PYHUGE_RANGE_HOOKS(X)

/* The public API (include/pyhuge.h), exported beside the hooks. */
#define PYHUGE_API_SYMBOLS(X) X(pyhuge_get_stats) X(pyhuge_version)

#endif
