/*
 * Our system calls (os.h), each a thin wrapper around one call, made with
 * syscall(2) so that none goes through a libc function another preloaded
 * library may have interposed, and none touches errno.
 */
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/capability.h>
#include <linux/memfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

/* A system call's answer split into os.h's convention: 0 and the value in
 * *out, or the negative errno (the kernel's own split: -4095..-1 are
 * errors, as its IS_ERR_VALUE says). */
static int answer(long r, uintptr_t *out)
{
    if (r < 0 && r >= -4095)
        return (int)r;
    *out = (uintptr_t)r;
    return 0;
}

int os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, uintptr_t *at)
{
    return answer(SYS6(SYS_mmap, addr, len, prot, flags, fd, off), at);
}

int os_munmap(void *addr, size_t len) { return (int)SYS3(SYS_munmap, addr, len, 0); }

int os_mprotect(void *addr, size_t len, int prot)
{
    return (int)SYS3(SYS_mprotect, addr, len, prot);
}

int os_pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
    return (int)SYS6(SYS_pkey_mprotect, addr, len, prot, pkey, 0, 0);
}

int os_mlock2(const void *addr, size_t len, unsigned int flags)
{
    return (int)SYS3(SYS_mlock2, addr, len, flags);
}

int os_madvise(void *addr, size_t len, int advice)
{
    return (int)SYS3(SYS_madvise, addr, len, advice);
}

int os_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr,
              uintptr_t *at)
{
    return answer(SYS6(SYS_mremap, old_addr, old_len, new_len, flags, new_addr, 0), at);
}

int os_reserve(uintptr_t addr, size_t len)
{
    uintptr_t at;
    int e = os_mmap((void *)addr, len, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0, &at);
    if (e)
        return e;
    os_madvise((void *)addr, len, MADV_DONTDUMP);
    os_name_range((void *)addr, len, "pyhuge");
    return 0;
}

/* Maps len + align - page bytes and trims both ends to the alignment. */
static int map_aligned(size_t len, size_t align, int prot, int flags, uintptr_t *at)
{
    size_t extra = align > OS_PAGE_SIZE ? align - OS_PAGE_SIZE : 0;
    if (len + extra < len)
        return -ENOMEM;
    uintptr_t lo;
    int e = os_mmap(NULL, len + extra, prot, flags, -1, 0, &lo);
    if (e)
        return e;
    uintptr_t hi = lo + len + extra, a = (lo + align - 1) & ~(uintptr_t)(align - 1);
    if (a > lo)
        os_munmap((void *)lo, a - lo);
    if (hi > a + len)
        os_munmap((void *)(a + len), hi - (a + len));
    *at = a;
    return 0;
}

int os_reserve_new(size_t len, size_t align, uintptr_t *at)
{
    int e = map_aligned(len, align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, at);
    if (e == 0) {
        os_madvise((void *)*at, len, MADV_DONTDUMP);
        os_name_range((void *)*at, len, "pyhuge");
    }
    return e;
}

int os_scratch_page(bool reserved, uintptr_t *at)
{
    static uintptr_t scratch_rw, scratch_none;
    uintptr_t *slot = reserved ? &scratch_none : &scratch_rw;
    *at = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (*at)
        return 0;
    uintptr_t mine;
    int e = reserved ? os_reserve_new(OS_PAGE_SIZE, OS_PAGE_SIZE, &mine)
                     : os_map_anon(OS_PAGE_SIZE, OS_PAGE_SIZE, false, &mine);
    if (e)
        return e;
    uintptr_t none = 0;
    if (!__atomic_compare_exchange_n(slot, &none, mine, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        os_munmap((void *)mine, OS_PAGE_SIZE);
    *at = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    return 0;
}

int os_map_anon(size_t len, size_t align, bool thp, uintptr_t *at)
{
    int e = map_aligned(len, align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, at);
    if (e == 0 && thp)
        os_madvise((void *)*at, len, MADV_HUGEPAGE);
    return e;
}

bool os_page_exists_at(uintptr_t addr)
{
    uintptr_t at;
    int e = os_mmap((void *)addr, OS_PAGE_SIZE, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0, &at);
    if (e == -EEXIST)
        return true;
    if (e)
        return false;
    os_munmap((void *)at, OS_PAGE_SIZE);
    return at == addr;
}

/* answer() for a result that is an int: a descriptor, flags. */
static int answer_int(long r, int *out)
{
    uintptr_t v;
    int e = answer(r, &v);
    if (e == 0)
        *out = (int)v;
    return e;
}

int os_fd_flags(int fd, int *flags) { return answer_int(SYS3(SYS_fcntl, fd, F_GETFL, 0), flags); }

bool os_is_mapped(uintptr_t addr, size_t len)
{
    unsigned char vec[512];
    for (size_t done = 0; done < len; done += sizeof vec * OS_PAGE_SIZE) {
        size_t n = len - done < sizeof vec * OS_PAGE_SIZE ? len - done : sizeof vec * OS_PAGE_SIZE;
        if (SYS3(SYS_mincore, addr + done, n, vec) != 0)
            return false;
    }
    return true;
}

void os_name_range(void *addr, size_t len, const char *name)
{
    SYS6(SYS_prctl, PR_SET_VMA, PR_SET_VMA_ANON_NAME, addr, len, name, 0);
}

int os_open(const char *path, int flags, int mode, int *fd)
{
    return answer_int(SYS6(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, mode, 0, 0), fd);
}

int os_memfd(const char *name, int *fd)
{
    return answer_int(SYS3(SYS_memfd_create, name, MFD_CLOEXEC, 0), fd);
}

int os_map_memfd(const char *name, size_t len, uintptr_t *at)
{
    int fd;
    int e = os_memfd(name, &fd);
    if (e)
        return e;
    e = (int)SYS3(SYS_ftruncate, fd, len, 0);
    if (e == 0)
        e = os_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0, at);
    os_close(fd);
    return e;
}

int os_close(int fd) { return (int)SYS3(SYS_close, fd, 0, 0); }

/* Files the reports write (report.c, metrics.c). renameat2 with no flags:
 * aarch64 has no plain renameat. */
int os_fstat(int fd, struct stat *st) { return (int)SYS3(SYS_fstat, fd, st, 0); }

int os_rename(const char *from, const char *to)
{
    return (int)SYS6(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 0, 0);
}

int os_unlink(const char *path) { return (int)SYS3(SYS_unlinkat, AT_FDCWD, path, 0); }

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

/* pread64 or pwrite64 until all of len is done: 0, or -errno (-EIO where
 * the file ends first). */
static int transfer_all(long nr, int fd, char *p, size_t len, off_t off)
{
    while (len > 0) {
        long n = SYS6(nr, fd, p, len, off, 0, 0);
        if (n == -EINTR)
            continue;
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EIO;
        p += n;
        off += n;
        len -= (size_t)n;
    }
    return 0;
}

int os_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    return transfer_all(SYS_pwrite64, fd, (char *)buf, len, off);
}

int os_pread_all(int fd, void *buf, size_t len, off_t off)
{
    return transfer_all(SYS_pread64, fd, buf, len, off);
}

int os_read_file(const char *path, char *buf, size_t len, size_t *got)
{
    if (len == 0)
        return -EINVAL;
    int fd;
    int e = os_open(path, O_RDONLY, 0, &fd);
    if (e)
        return e;
    size_t have = 0;
    while (have < len - 1) {
        long n = SYS3(SYS_read, fd, buf + have, len - 1 - have);
        if (n == -EINTR)
            continue;
        if (n <= 0) {
            if (n < 0 && have == 0) {
                os_close(fd);
                return (int)n;
            }
            break;
        }
        have += (size_t)n;
    }
    os_close(fd);
    buf[have] = '\0';
    *got = have;
    return 0;
}

/* The number after "key:" in /proc/self/status into *v: 0, or -errno. */
static int status_field(const char *key, uint64_t *v)
{
    char buf[4096];
    size_t n;
    int e = os_read_file("/proc/self/status", buf, sizeof buf, &n);
    if (e)
        return e;
    const char *p = strstr(buf, key);
    if (!p)
        return -ENOENT;
    p += strlen(key);
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p < '0' || *p > '9')
        return -ENOENT;
    for (*v = 0; *p >= '0' && *p <= '9'; p++)
        *v = *v * 10 + (uint64_t)(*p - '0');
    return 0;
}

int os_thread_count(unsigned *n)
{
    uint64_t v;
    int e = status_field("\nThreads:", &v);
    if (e == 0 && v == 0)
        e = -ENOENT;
    if (e == 0)
        *n = (unsigned)v;
    return e;
}

int os_vm_size(uint64_t *bytes)
{
    uint64_t kib;
    int e = status_field("\nVmSize:", &kib);
    if (e == 0)
        *bytes = kib * 1024;
    return e;
}

static uint64_t soft_limit(int resource)
{
    struct rlimit lim;
    if (SYS6(SYS_prlimit64, 0, resource, NULL, &lim, 0, 0) != 0 || lim.rlim_cur == RLIM_INFINITY)
        return UINT64_MAX;
    return lim.rlim_cur;
}

uint64_t os_as_limit(void) { return soft_limit(RLIMIT_AS); }

uint64_t os_fsize_limit(void) { return soft_limit(RLIMIT_FSIZE); }

uint64_t os_memlock_limit(void) { return soft_limit(RLIMIT_MEMLOCK); }

int os_capable(int cap, bool *has)
{
    struct __user_cap_header_struct head = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
    int e = (int)SYS3(SYS_capget, &head, caps, 0);
    if (e)
        return e;
    *has = caps[cap / 32].effective & (1u << (cap % 32));
    return 0;
}

void os_block_signals(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    SYS6(SYS_rt_sigprocmask, SIG_BLOCK, &all, old, _NSIG / 8, 0, 0);
}

void os_restore_signals(const sigset_t *old)
{
    SYS6(SYS_rt_sigprocmask, SIG_SETMASK, old, NULL, _NSIG / 8, 0, 0);
}

_Noreturn void os_abort(void) { abort(); }

int os_getpid(void) { return (int)SYS3(SYS_getpid, 0, 0, 0); }

uint64_t os_wall_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec;
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
