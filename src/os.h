/*
 * The kernel, as pyhuge sees it: system calls only, each one thin. Only
 * os.c makes our own system calls (next.c passes the caller's on); nothing
 * above it touches the kernel or libc's memory calls.
 *
 * Each returns 0 on success and a negative errno on failure, with what it
 * finds (an address, a descriptor, a count) through its last argument,
 * written only on success; never touches errno, never allocates and is
 * async-signal-safe. A few answer a plain yes or no (bool), or a value
 * with a stated meaning for "unknown".
 */
#ifndef PYHUGE_OS_H
#define PYHUGE_OS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* Kernel constants that older C library headers lack, written once here
 * for every room. */
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#define MAP_HUGE_MASK 0x3f
#endif
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1 */
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41 /* Linux 5.17 */
#endif
#ifndef PR_SET_VMA_ANON_NAME
#define PR_SET_VMA_ANON_NAME 0
#endif

#define OS_PAGE_SIZE 4096u

int os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, uintptr_t *at);
int os_munmap(void *addr, size_t len);
int os_mprotect(void *addr, size_t len, int prot);
int os_pkey_mprotect(void *addr, size_t len, int prot, int pkey);
int os_mlock2(const void *addr, size_t len, unsigned int flags);
int os_madvise(void *addr, size_t len, int advice);
/* new_addr is used only with MREMAP_FIXED. */
int os_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr,
              uintptr_t *at);

/* Address space only: PROT_NONE, MAP_NORESERVE, left out of core dumps
 * (MADV_DONTDUMP: gcore would otherwise write every reserved byte), named
 * [anon:pyhuge] in /proc/PID/maps.
 * os_reserve replaces whatever is at [addr, addr+len) (MAP_FIXED): only for
 * ranges the caller owns. os_reserve_new places len bytes where the kernel
 * likes, aligned to `align` (a power of two). */
int os_reserve(uintptr_t addr, size_t len);
int os_reserve_new(size_t len, size_t align, uintptr_t *at);

/* Private anonymous read-write memory, len bytes aligned to `align`, marked
 * MADV_HUGEPAGE when `thp` (a transparent huge page needs a whole aligned
 * 2 MiB inside one such mapping). Not faulted in. */
int os_map_anon(size_t len, size_t align, bool thp, uintptr_t *at);

/* One of two 4 KiB pages kept for the process's life, for the kernel's
 * checks to act on: read-write anonymous memory, or a PROT_NONE
 * reservation when `reserved`. The range makes both with its side table,
 * before the first arena (range_init): made later, in the middle of a run,
 * a page could land in a hole the program has just unmapped from an arena
 * and take an address the program counts on being free. Made here on first
 * use if that failed; of two threads racing, the loser's page is unmapped. */
int os_scratch_page(bool reserved, uintptr_t *at);

/* True when the 4 KiB page at addr lies inside the address space the
 * kernel gives this process (asked with a mapping there that is undone at
 * once, or refused because something is mapped there already). */
bool os_page_exists_at(uintptr_t addr);

/* The file status flags of fd (fcntl F_GETFL). */
int os_fd_flags(int fd, int *flags);

/* True when every page of [addr, addr+len) is mapped (mincore). */
bool os_is_mapped(uintptr_t addr, size_t len);

/* Names an anonymous range in /proc/PID/maps ("[anon:NAME]"), where the
 * kernel supports it (5.17+); failure is harmless and ignored. */
void os_name_range(void *addr, size_t len, const char *name);

/* A new memfd called name (close-on-exec). */
int os_memfd(const char *name, int *fd);

/* A shared, zeroed mapping of len bytes backed by a new memfd called name
 * (its fd closed again). */
int os_map_memfd(const char *name, size_t len, uintptr_t *at);

/* openat(AT_FDCWD), always close-on-exec. */
int os_open(const char *path, int flags, int mode, int *fd);
int os_close(int fd);
/* fstat(2); renameat2 with no flags (replaces `to` in one step); unlink(2).
 * 0 or -errno. */
int os_fstat(int fd, struct stat *st);
int os_rename(const char *from, const char *to);
int os_unlink(const char *path);
/* Writes all of buf unless the kernel refuses; returns 0 or -errno. */
int os_write_all(int fd, const void *buf, size_t len);
/* All of len bytes at file offset off, or -errno (-EIO: the file ended). */
int os_pwrite_all(int fd, const void *buf, size_t len, off_t off);
int os_pread_all(int fd, void *buf, size_t len, off_t off);
/* Reads a small file (at most len-1 bytes) into buf, NUL-terminates it and
 * sets *got to its length. */
int os_read_file(const char *path, char *buf, size_t len, size_t *got);

/* Threads in this process (/proc/self/status); -errno when unknown (no
 * descriptor left, no /proc). */
int os_thread_count(unsigned *n);

/* VmSize, the address space RLIMIT_AS counts, in bytes (/proc/self/status). */
int os_vm_size(uint64_t *bytes);
/* RLIMIT_AS's and RLIMIT_FSIZE's soft limits in bytes: UINT64_MAX for none
 * (or unknown). */
uint64_t os_as_limit(void);
uint64_t os_fsize_limit(void);
/* RLIMIT_MEMLOCK's soft limit in bytes: UINT64_MAX for none (or unknown). */
uint64_t os_memlock_limit(void);

/* Whether this thread has capability cap (CAP_*) in its effective set:
 * 0 and *has, or -errno when the kernel cannot say. */
int os_capable(int cap, bool *has);

/* Blocks every signal this thread can block, saving the old mask in *old;
 * os_restore_signals puts it back. */
void os_block_signals(sigset_t *old);
void os_restore_signals(const sigset_t *old);

/* Ends the process with SIGABRT (after a message the caller wrote). */
_Noreturn void os_abort(void);

int os_getpid(void);
/* CLOCK_MONOTONIC in nanoseconds (0 when unknown). Inline: the arena paths
 * read it for their timers; the vDSO answers, with no system call. */
static inline uint64_t os_now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
/* CLOCK_REALTIME in whole seconds since the epoch; 0 when unknown. */
uint64_t os_wall_s(void);
/* The node name, truncated to len-1 bytes; "" when unknown. */
void os_hostname(char *buf, size_t len);

#endif
