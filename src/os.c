/* The only file that talks to the kernel: see os.h for the contract. */
#include "os.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <linux/memfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(off_t) == 8, "pyhuge supports 64-bit Linux only");

/* libc's syscall() sets errno; our own calls must leave the caller's alone. */
static long raw(long nr, long a, long b, long c, long d, long e, long f)
{
    int saved = errno;
    long r = syscall(nr, a, b, c, d, e, f);
    if (r == -1) {
        r = -errno;
        errno = saved;
    }
    return r;
}

#define SYS6(nr, a, b, c, d, e, f) \
    raw(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define SYS3(nr, a, b, c) SYS6(nr, a, b, c, 0, 0, 0)

intptr_t os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return SYS6(SYS_mmap, addr, len, prot, flags, fd, off);
}

int os_munmap(void *addr, size_t len) { return (int)SYS3(SYS_munmap, addr, len, 0); }

int os_mprotect(void *addr, size_t len, int prot)
{
    return (int)SYS3(SYS_mprotect, addr, len, prot);
}

int os_madvise(void *addr, size_t len, int advice)
{
    return (int)SYS3(SYS_madvise, addr, len, advice);
}

intptr_t os_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr)
{
    return SYS6(SYS_mremap, old_addr, old_len, new_len, flags, new_addr, 0);
}

void os_name_range(void *addr, size_t len, const char *name)
{
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif
    SYS6(SYS_prctl, PR_SET_VMA, PR_SET_VMA_ANON_NAME, addr, len, name, 0);
}

int os_open(const char *path, int flags, int mode)
{
    return (int)SYS6(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, mode, 0, 0);
}

intptr_t os_map_memfd(const char *name, size_t len)
{
    int fd = (int)SYS3(SYS_memfd_create, name, MFD_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    intptr_t r = SYS3(SYS_ftruncate, fd, len, 0);
    if (r == 0)
        r = os_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    os_close(fd);
    return r;
}

int os_pipe(int fds[2]) { return (int)SYS3(SYS_pipe2, fds, O_CLOEXEC, 0); }

int os_close(int fd) { return (int)SYS3(SYS_close, fd, 0, 0); }

ssize_t os_read(int fd, void *buf, size_t len) { return SYS3(SYS_read, fd, buf, len); }

int os_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        long n = SYS3(SYS_write, fd, p, len);
        if (n == -EINTR)
            continue;
        if (n < 0)
            return (int)n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t os_read_file(const char *path, char *buf, size_t len)
{
    if (len == 0)
        return -EINVAL;
    int fd = os_open(path, O_RDONLY, 0);
    if (fd < 0)
        return fd;
    size_t have = 0;
    while (have < len - 1) {
        ssize_t n = os_read(fd, buf + have, len - 1 - have);
        if (n == -EINTR)
            continue;
        if (n <= 0) {
            if (n < 0 && have == 0) {
                os_close(fd);
                return n;
            }
            break;
        }
        have += (size_t)n;
    }
    os_close(fd);
    buf[have] = '\0';
    return (ssize_t)have;
}

static uintptr_t parse_hex(const char **p)
{
    uintptr_t v = 0;
    for (;; (*p)++) {
        char c = **p;
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                                            : 16;
        if (d == 16)
            return v;
        v = v * 16 + d;
    }
}

/* One line of /proc/self/maps: "lo-hi rwxp ...". */
static bool vma_line(const char *l, uintptr_t addr, uintptr_t *lo, uintptr_t *hi, int *prot)
{
    uintptr_t a = parse_hex(&l);
    if (*l++ != '-')
        return false;
    uintptr_t b = parse_hex(&l);
    if (*l++ != ' ' || addr < a || addr >= b)
        return false;
    *lo = a;
    *hi = b;
    *prot = (l[0] == 'r' ? PROT_READ : 0) | (l[1] == 'w' ? PROT_WRITE : 0) |
            (l[2] == 'x' ? PROT_EXEC : 0);
    return true;
}

int os_vma_of(uintptr_t addr, uintptr_t *lo, uintptr_t *hi, int *prot)
{
    int fd = os_open("/proc/self/maps", O_RDONLY, 0);
    if (fd < 0)
        return fd;
    char buf[4096];
    size_t have = 0;
    int result = -ENOENT;
    for (;;) {
        ssize_t n = os_read(fd, buf + have, sizeof buf - 1 - have);
        if (n == -EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = memchr(line, '\n', have - (size_t)(line - buf)))) {
            *nl = '\0';
            if (vma_line(line, addr, lo, hi, prot)) {
                result = 0;
                goto out;
            }
            line = nl + 1;
        }
        have -= (size_t)(line - buf);
        memmove(buf, line, have);
        if (have == sizeof buf - 1)
            have = 0; /* a line longer than the buffer: a path we do not need */
    }
out:
    os_close(fd);
    return result;
}

int os_getpid(void) { return (int)SYS3(SYS_getpid, 0, 0, 0); }

uint64_t os_now_ns(void)
{
    struct timespec ts;
    /* vDSO: no system call, no allocation. */
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void os_hostname(char *buf, size_t len)
{
    struct utsname u;
    if (len == 0)
        return;
    buf[0] = '\0';
    if (SYS3(SYS_uname, &u, 0, 0) != 0)
        return;
    size_t i = 0;
    for (; i + 1 < len && u.nodename[i]; i++)
        buf[i] = u.nodename[i];
    buf[i] = '\0';
}

uint64_t os_address_space_limit(void)
{
    struct rlimit rl;
    if (SYS3(SYS_getrlimit, RLIMIT_AS, &rl, 0) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return UINT64_MAX;
    return (uint64_t)rl.rlim_cur;
}

/* ---- pass-through: the next definition in the chain --------------------- */

/* One list of the calls we pass on; memray keeps its hooks the same way. */
#define PYHUGE_NEXT_CALLS(X)                                                     \
    X(void *, mmap, (void *, size_t, int, int, int, off_t))                     \
    X(int, munmap, (void *, size_t))                                            \
    X(void *, mremap, (void *, size_t, size_t, int, ...))                       \
    X(int, mprotect, (void *, size_t, int))                                     \
    X(int, pkey_mprotect, (void *, size_t, int, int))                           \
    X(int, madvise, (void *, size_t, int))                                      \
    X(int, posix_madvise, (void *, size_t, int))                                \
    X(int, mlock, (const void *, size_t))                                       \
    X(int, mlock2, (const void *, size_t, unsigned int))                        \
    X(int, munlock, (const void *, size_t))

#define DECLARE_NEXT(ret, name, args) static ret(*next_##name) args;
PYHUGE_NEXT_CALLS(DECLARE_NEXT)
#undef DECLARE_NEXT

void os_init(void)
{
#define RESOLVE_NEXT(ret, name, args)                                            \
    if (!__atomic_load_n(&next_##name, __ATOMIC_ACQUIRE)) {                      \
        ret(*fn) args;                                                           \
        *(void **)&fn = dlsym(RTLD_NEXT, #name);                                 \
        __atomic_store_n(&next_##name, fn, __ATOMIC_RELEASE);                    \
    }
    PYHUGE_NEXT_CALLS(RESOLVE_NEXT)
#undef RESOLVE_NEXT
}

#define NEXT(name) __atomic_load_n(&next_##name, __ATOMIC_ACQUIRE)

void *os_next_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (NEXT(mmap))
        return NEXT(mmap)(addr, len, prot, flags, fd, off);
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int os_next_munmap(void *addr, size_t len)
{
    if (NEXT(munmap))
        return NEXT(munmap)(addr, len);
    return (int)syscall(SYS_munmap, addr, len);
}

void *os_next_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr)
{
    if (NEXT(mremap))
        return NEXT(mremap)(old_addr, old_len, new_len, flags, new_addr);
    return (void *)syscall(SYS_mremap, old_addr, old_len, new_len, flags, new_addr);
}

int os_next_mprotect(void *addr, size_t len, int prot)
{
    if (NEXT(mprotect))
        return NEXT(mprotect)(addr, len, prot);
    return (int)syscall(SYS_mprotect, addr, len, prot);
}

int os_next_pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
    if (NEXT(pkey_mprotect))
        return NEXT(pkey_mprotect)(addr, len, prot, pkey);
    return (int)syscall(SYS_pkey_mprotect, addr, len, prot, pkey);
}

int os_next_madvise(void *addr, size_t len, int advice)
{
    if (NEXT(madvise))
        return NEXT(madvise)(addr, len, advice);
    return (int)syscall(SYS_madvise, addr, len, advice);
}

int os_next_posix_madvise(void *addr, size_t len, int advice)
{
    if (NEXT(posix_madvise))
        return NEXT(posix_madvise)(addr, len, advice);
    /* glibc's own rule: POSIX_MADV_DONTNEED must not discard data. */
    if (advice == POSIX_MADV_DONTNEED)
        return 0;
    long r = raw(SYS_madvise, (long)addr, (long)len, advice, 0, 0, 0);
    return r < 0 ? (int)-r : 0;
}

int os_next_mlock(const void *addr, size_t len)
{
    if (NEXT(mlock))
        return NEXT(mlock)(addr, len);
    return (int)syscall(SYS_mlock, addr, len);
}

int os_next_mlock2(const void *addr, size_t len, unsigned int flags)
{
    if (NEXT(mlock2))
        return NEXT(mlock2)(addr, len, flags);
    return (int)syscall(SYS_mlock2, addr, len, flags);
}

int os_next_munlock(const void *addr, size_t len)
{
    if (NEXT(munlock))
        return NEXT(munlock)(addr, len);
    return (int)syscall(SYS_munlock, addr, len);
}
