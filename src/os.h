/*
 * The kernel, as pyhuge sees it. Only os.c makes system calls; nothing above
 * it touches the kernel or libc's memory calls.
 *
 * Two families:
 *  - os_*: our own calls. Each returns 0 (or an address / a count) on success
 *    and a negative errno on failure, never touches errno, never allocates and
 *    is async-signal-safe. Use os_failed() on the intptr_t results.
 *  - os_next_*: the caller's call passed on to the next definition after ours
 *    (normally glibc's), with that function's own return value and errno.
 *    Until os_init() has resolved them they are raw system calls, which on
 *    Linux/x86_64 and aarch64 is exactly what glibc does for these calls.
 */
#ifndef PYHUGE_OS_H
#define PYHUGE_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OS_HUGE_SHIFT 21
#define OS_HUGE_SIZE ((size_t)1 << OS_HUGE_SHIFT)

static inline bool os_failed(intptr_t r) { return r < 0 && r > -4096; }

/* Resolves the os_next_* functions. Call once, from a constructor: dlsym may
 * allocate. Safe to call more than once. */
void os_init(void);

intptr_t os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int os_munmap(void *addr, size_t len);
int os_mprotect(void *addr, size_t len, int prot);
int os_madvise(void *addr, size_t len, int advice);
/* new_addr is used only with MREMAP_FIXED. */
intptr_t os_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr);

/* Names an anonymous range in /proc/PID/maps ("[anon:NAME]"), where the
 * kernel supports it (5.17+); failure is harmless and ignored. */
void os_name_range(void *addr, size_t len, const char *name);

/* A shared, zeroed mapping of len bytes backed by a new memfd called name
 * (its fd closed again): the address, or -errno. */
intptr_t os_map_memfd(const char *name, size_t len);

/* pipe2(O_CLOEXEC): 0 or -errno. */
int os_pipe(int fds[2]);

int os_open(const char *path, int flags, int mode);
int os_close(int fd);
ssize_t os_read(int fd, void *buf, size_t len);
/* Writes all of buf unless the kernel refuses; returns 0 or -errno. */
int os_write_all(int fd, const void *buf, size_t len);
/* Reads a small file (at most len-1 bytes) into buf and NUL-terminates it.
 * Returns the length or -errno. */
ssize_t os_read_file(const char *path, char *buf, size_t len);

/* The mapping holding addr, from /proc/self/maps (streamed through a stack
 * buffer): its bounds and PROT_* bits. Returns 0, or -ENOENT when nothing
 * is mapped there, or another -errno. */
int os_vma_of(uintptr_t addr, uintptr_t *lo, uintptr_t *hi, int *prot);

int os_getpid(void);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t os_now_ns(void);
/* The node name, truncated to len-1 bytes; "" when unknown. */
void os_hostname(char *buf, size_t len);
/* RLIMIT_AS soft limit in bytes; UINT64_MAX when unlimited. */
uint64_t os_address_space_limit(void);

void *os_next_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int os_next_munmap(void *addr, size_t len);
void *os_next_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr);
int os_next_mprotect(void *addr, size_t len, int prot);
int os_next_pkey_mprotect(void *addr, size_t len, int prot, int pkey);
int os_next_madvise(void *addr, size_t len, int advice);
int os_next_posix_madvise(void *addr, size_t len, int advice);
int os_next_mlock(const void *addr, size_t len);
int os_next_mlock2(const void *addr, size_t len, unsigned int flags);
int os_next_munlock(const void *addr, size_t len);

#endif
