/*
 * The interposed calls. Each one decides in a few instructions whether the
 * call concerns the shim (an arena-shaped mmap, or a range that meets the
 * shim's reserved range) and otherwise passes it on untouched, with the next
 * definition's own result and errno. Nothing here allocates or locks on the
 * pass-through path.
 *
 * Meson compiles with -D_FILE_OFFSET_BITS=64, under which <sys/mman.h>
 * renames mmap to mmap64 and defining both fails to assemble. libpython
 * imports mmap64 (FACTS.md), other code imports mmap: we define both, so
 * this file must not see the macro.
 */
#undef _FILE_OFFSET_BITS

#include <errno.h>
#include <stdarg.h>
#include <sys/mman.h>

#include "shim.h"
#include "os.h"
#include "table.h"

#define PYHUGE_HOOK __attribute__((visibility("default")))

/* pymalloc's request, every CPython 3.4-3.14: mmap(NULL, ARENA_SIZE,
 * PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0). */
static inline int arena_shaped(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return addr == NULL && prot == (PROT_READ | PROT_WRITE) &&
           flags == (MAP_PRIVATE | MAP_ANONYMOUS) && fd == -1 && off == 0 &&
           table_class_of(len) >= 0;
}

static inline void *do_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off,
                            uintptr_t ret)
{
    if (arena_shaped(addr, len, prot, flags, fd, off)) {
        void *p = shim_arena_mmap(len, ret);
        if (p)
            return p;
    } else if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && shim_overlaps(addr, len)) {
        shim_give_up_range(addr, len);
    }
    return os_next_mmap(addr, len, prot, flags, fd, off);
}

PYHUGE_HOOK void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return do_mmap(addr, len, prot, flags, fd, off, (uintptr_t)__builtin_return_address(0));
}

PYHUGE_HOOK void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
    return do_mmap(addr, len, prot, flags, fd, off, (uintptr_t)__builtin_return_address(0));
}

PYHUGE_HOOK int munmap(void *addr, size_t len)
{
    if (!shim_overlaps(addr, len))
        return os_next_munmap(addr, len);
    return shim_munmap(addr, len);
}

PYHUGE_HOOK void *mremap(void *old_addr, size_t old_len, size_t new_len, int flags, ...)
{
    void *new_addr = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    if (shim_overlaps(old_addr, old_len))
        return shim_mremap(old_addr, old_len, new_len, flags, new_addr);
    if ((flags & MREMAP_FIXED) && shim_overlaps(new_addr, new_len))
        shim_give_up_range(new_addr, new_len);
    return os_next_mremap(old_addr, old_len, new_len, flags, new_addr);
}

/* Calls that change a range in place: on ours, the shim first makes the
 * pages ordinary (or refuses as the kernel would), then the call goes on. */
#define RANGE_HOOK(ret, name, params, addr, len, args, fail)                     \
    PYHUGE_HOOK ret name params                                                 \
    {                                                                           \
        if (shim_overlaps(addr, len)) {                                         \
            int e = shim_prepare_range((void *)(addr), len);                   \
            if (e)                                                              \
                fail;                                                           \
        }                                                                       \
        return os_next_##name args;                                             \
    }

#define FAIL_ERRNO  \
    do {            \
        errno = -e; \
        return -1;  \
    } while (0)

RANGE_HOOK(int, mprotect, (void *addr, size_t len, int prot), addr, len, (addr, len, prot),
           FAIL_ERRNO)
RANGE_HOOK(int, pkey_mprotect, (void *addr, size_t len, int prot, int pkey), addr, len,
           (addr, len, prot, pkey), FAIL_ERRNO)
RANGE_HOOK(int, madvise, (void *addr, size_t len, int advice), addr, len, (addr, len, advice),
           FAIL_ERRNO)
/* posix_madvise returns the error number instead of setting errno. */
RANGE_HOOK(int, posix_madvise, (void *addr, size_t len, int advice), addr, len,
           (addr, len, advice), return -e)
RANGE_HOOK(int, mlock, (const void *addr, size_t len), addr, len, (addr, len), FAIL_ERRNO)
RANGE_HOOK(int, mlock2, (const void *addr, size_t len, unsigned int flags), addr, len,
           (addr, len, flags), FAIL_ERRNO)
RANGE_HOOK(int, munlock, (const void *addr, size_t len), addr, len, (addr, len), FAIL_ERRNO)

__attribute__((constructor)) static void pyhuge_init(void) { shim_constructor(); }

__attribute__((destructor)) static void pyhuge_fini(void) { shim_destructor(); }
