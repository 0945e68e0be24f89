/*
 * The interposed calls (the list is in hooks.h). Each one decides in a few
 * instructions whether the call concerns the shim (an arena-shaped mmap, or
 * a range that meets the shim's) and otherwise passes it on untouched, with
 * the next definition's own result and errno. Nothing here allocates or
 * locks on the pass-through path.
 *
 * Meson compiles with -D_FILE_OFFSET_BITS=64, under which <sys/mman.h>
 * renames mmap to mmap64 and defining both fails to assemble. libpython
 * imports mmap64 (built with _FILE_OFFSET_BITS=64), other code imports
 * mmap: we define both, so this file must not see the macro.
 */
#undef _FILE_OFFSET_BITS

#include <errno.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "advice.h"
#include "ft.h"
#include "hooks.h"
#include "next.h"
#include "os.h"
#include "prepare.h"
#include "range.h"
#include "refuse.h"
#include "shim.h"
#include "table.h"

#define PYHUGE_HOOK __attribute__((visibility("default")))

/* pymalloc's request, every CPython 3.4-3.14: mmap(NULL, ARENA_SIZE,
 * PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0). */
static inline bool arena_shaped(void *addr, size_t len, int prot, int flags, int fd, off_t off,
                                int *cls)
{
    return addr == NULL && prot == (PROT_READ | PROT_WRITE) &&
           flags == (MAP_PRIVATE | MAP_ANONYMOUS) && fd == -1 && off == 0 &&
           table_class_of(len, cls);
}

/* CPython 3.15's --with-pymalloc-hugepages build, first try: the same
 * call with MAP_HUGETLB (the default huge page size, or 2 MiB by name) for
 * a whole 2 MiB arena. */
static inline bool hugetlb_arena_shaped(void *addr, size_t len, int prot, int flags, int fd,
                                        off_t off)
{
    unsigned size_bits = ((unsigned)flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
    int rest = (int)((unsigned)flags & ~((unsigned)MAP_HUGE_MASK << MAP_HUGE_SHIFT));
    return addr == NULL && prot == (PROT_READ | PROT_WRITE) &&
           rest == (MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB) &&
           (size_bits == 0 || size_bits == 21) && fd == -1 && off == 0 && len == (size_t)2 << 20;
}

/* MAP_FIXED replaces whatever is there; MAP_FIXED_NOREPLACE never does (it
 * fails with EEXIST over any mapping, and the range is all mapped), so it
 * goes to the kernel as it is. */
static inline bool replaces(int flags)
{
    return (flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE);
}

static inline void *do_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off,
                            uintptr_t ret, void *(*next)(void *, size_t, int, int, int, off_t))
{
    int cls;
    if (arena_shaped(addr, len, prot, flags, fd, off, &cls)) {
        void *p = shim_arena_mmap(len, cls, ret);
        if (p)
            return p;
    } else if (hugetlb_arena_shaped(addr, len, prot, flags, fd, off)) {
        bool refuse;
        void *p = shim_arena_mmap_hugetlb(len, ret, &refuse);
        if (p)
            return p;
        if (refuse) {
            errno = ENOMEM; /* what an empty pool says: CPython makes its plain call */
            return MAP_FAILED;
        }
    } else if (replaces(flags) && range_overlaps(addr, len)) {
        int e = prepare_map(addr, len, prot, flags, fd, off);
        if (e) {
            errno = -e;
            return MAP_FAILED;
        }
    }
    void *p = next(addr, len, prot, flags, fd, off);
    if (ft_shaped(p, len, flags, fd)) /* a free-threaded CPython's mimalloc: ft.h */
        ft_mapped(p, len, prot, flags, fd, ret);
    return p;
}

PYHUGE_HOOK void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return do_mmap(addr, len, prot, flags, fd, off, (uintptr_t)__builtin_return_address(0),
                   os_next_mmap);
}

PYHUGE_HOOK void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return do_mmap(addr, len, prot, flags, fd, off, (uintptr_t)__builtin_return_address(0),
                   os_next_mmap64);
}

PYHUGE_HOOK int munmap(void *addr, size_t len)
{
    if (!range_overlaps(addr, len))
        return os_next_munmap(addr, len);
    int e = prepare_munmap(addr, len);
    if (e) {
        errno = -e;
        return -1;
    }
    return 0;
}

/* The old range's pages and, with MREMAP_FIXED, the new range's become
 * plain memory of the kernel's; then the kernel moves or resizes (a
 * shrink's tail unmapped first, as munmap would). An arena left in place at
 * its length stays as it is. */
PYHUGE_HOOK void *mremap(void *old_addr, size_t old_len, size_t new_len, int flags, ...)
{
    void *new_addr = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    if (range_overlaps(old_addr, old_len) ||
        ((flags & MREMAP_FIXED) && range_overlaps(new_addr, new_len))) {
        bool done;
        int e = prepare_remap(old_addr, &old_len, new_len, flags, new_addr, &done);
        if (e) {
            errno = -e;
            return MAP_FAILED;
        }
        if (done)
            return old_addr;
    }
    return os_next_mremap(old_addr, old_len, new_len, flags, new_addr);
}

/* Naming a range (PR_SET_VMA_ANON_NAME) that meets ours: whole arenas keep
 * their page (advice.c); anything else becomes plain memory first, as for
 * the range calls below, once the kernel has taken the name. Every other
 * option passes on untouched. */
PYHUGE_HOOK int prctl(int option, ...)
{
    va_list ap;
    va_start(ap, option);
    unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
    unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
    va_end(ap);
    if (option == PR_SET_VMA && a2 == PR_SET_VMA_ANON_NAME && range_overlaps((void *)a3, a4)) {
        bool answered;
        int e = advice_name((void *)a3, a4, (const char *)a5, &answered);
        if (answered && e == 0)
            return 0;
        if (!answered)
            e = prepare_call((void *)a3, a4, HOOK_SKIPS_GAPS);
        if (e < 0) {
            errno = -e;
            return -1;
        }
    }
    return os_next_prctl(option, a2, a3, a4, a5);
}

/* ---- calls that change a range in place -------------------------------------
 *
 * On the shim's range, the pages they touch first become plain memory
 * (prepare_call), so that the kernel answers exactly as it would for
 * plain pages. First, though, the kernel checks the arguments it checks
 * before acting, where a call with no effect lets it: a call it refuses
 * outright changes nothing of ours. Each probe returns 0 (go on) or a
 * negative errno (fail with it). */

/* PROT_GROWSDOWN/GROWSUP ask about the mapping at addr: both at once, or
 * either on a mapping of the shim's (none grows), the kernel refuses. */
static int probe_prot(void *addr, int prot, int pkey)
{
    int grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
    if (grows == (PROT_GROWSDOWN | PROT_GROWSUP))
        return -EINVAL;
    if (grows)
        return range_overlaps(addr, 1) ? -EINVAL : 0;
    return refuse_prot(prot, pkey);
}

static int probe_mprotect(void *addr, size_t len, int prot)
{
    (void)len;
    return probe_prot(addr, prot, -1);
}

static int probe_pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
    (void)len;
    return probe_prot(addr, prot, pkey);
}

static int probe_madvise(void *addr, size_t len, int advice)
{
    (void)len;
    return os_madvise(addr, 0, advice);
}

#define probe_posix_madvise probe_madvise

/* Before the probe, a call may be answered whole (*answered set; 0 or
 * -errno): whole arenas keep their huge page under advice that plain
 * pages can be given on it (advice.c). */
static int keep_madvise(bool *answered, void *addr, size_t len, int advice)
{
    return advice_madvise(addr, len, advice, answered);
}

static int keep_posix_madvise(bool *answered, void *addr, size_t len, int advice)
{
    if (advice == POSIX_MADV_DONTNEED) {
        *answered = true; /* glibc does nothing for it and returns 0 */
        return 0;
    }
    return advice_madvise(addr, len, advice, answered);
}

#define NOT_ANSWERED(answered) (*(answered) = false, 0)
#define keep_mprotect(answered, ...) NOT_ANSWERED(answered)
#define keep_pkey_mprotect(answered, ...) NOT_ANSWERED(answered)
#define keep_mlock(answered, ...) NOT_ANSWERED(answered)
#define keep_mlock2(answered, ...) NOT_ANSWERED(answered)
#define keep_munlock(answered, ...) NOT_ANSWERED(answered)
#define UNPACK(...) __VA_ARGS__

static int probe_mlock(const void *addr, size_t len) { return refuse_mlock(addr, len, 0); }

static int probe_mlock2(const void *addr, size_t len, unsigned int flags)
{
    return refuse_mlock(addr, len, flags);
}

static int probe_munlock(const void *addr, size_t len)
{
    (void)addr, (void)len;
    return 0;
}

static inline int fail_errno(int e)
{
    errno = -e;
    return -1;
}

/* posix_madvise returns the error number instead of setting errno. */
static inline int fail_posix_madvise(int e) { return -e; }
#define fail_mprotect fail_errno
#define fail_pkey_mprotect fail_errno
#define fail_madvise fail_errno
#define fail_mlock fail_errno
#define fail_mlock2 fail_errno
#define fail_munlock fail_errno

#define DEFINE_RANGE_HOOK(ret, name, params, args, raw, gaps)                                    \
    PYHUGE_HOOK ret name params                                                                 \
    {                                                                                           \
        if (range_overlaps(addr, len)) {                                                        \
            bool answered;                                                                      \
            int e = keep_##name(&answered, UNPACK args);                                        \
            if (answered)                                                                       \
                return e ? fail_##name(e) : 0;                                                  \
            e = probe_##name args;                                                              \
            if (e == 0)                                                                         \
                e = prepare_call((void *)(addr), len, gaps);                                   \
            if (e < 0)                                                                          \
                return fail_##name(e);                                                          \
        }                                                                                       \
        return os_next_##name args;                                                             \
    }
PYHUGE_RANGE_HOOKS(DEFINE_RANGE_HOOK)
#undef DEFINE_RANGE_HOOK

__attribute__((constructor)) static void pyhuge_init(void) { shim_constructor(); }

__attribute__((destructor)) static void pyhuge_fini(void) { shim_destructor(); }
