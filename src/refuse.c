/*
 * The kernel's refusals, asked before acting (refuse.h): mlock's limit,
 * mprotect's protections, mmap's arguments. Each question goes to the
 * kernel through os.h; what the kernel checks and in which order is cited
 * beside each.
 */
#include "refuse.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include "os.h"

/* mm/mlock.c, do_mlock: flags and RLIMIT_MEMLOCK are checked before
 * anything is locked. Asked with len 0, the kernel checks the flags, a zero
 * limit (EPERM) and pages locked already past it (ENOMEM). Past that, it
 * takes len more pages, less those of the range locked already (at most
 * len, and at most those locked): more than the limit by len alone is a
 * certain refusal, for a process without CAP_IPC_LOCK. */
int refuse_mlock(const void *addr, size_t len, unsigned int flags)
{
    /* Aligned down: the kernel rounds len 0 at an unaligned address up to
     * one page, and would lock it. */
    int e = os_mlock2((const void *)((uintptr_t)addr & ~(uintptr_t)(OS_PAGE_SIZE - 1)), 0, flags);
    if (e)
        return e;
    uint64_t limit = os_memlock_limit();
    if (limit == UINT64_MAX)
        return 0;
    size_t pages = (len + ((uintptr_t)addr & (OS_PAGE_SIZE - 1)) + OS_PAGE_SIZE - 1) / OS_PAGE_SIZE;
    if (pages <= limit / OS_PAGE_SIZE)
        return 0;
    bool can;
    if (os_capable(CAP_IPC_LOCK, &can) != 0)
        return 0; /* unknown: let the kernel answer */
    return can ? 0 : -ENOMEM;
}

int refuse_prot(int prot, int pkey)
{
    uintptr_t s;
    if (os_scratch_page(true, &s) != 0)
        return 0; /* no page to ask on: the kernel answers the real call */
    int e = pkey < 0 ? os_mprotect((void *)s, OS_PAGE_SIZE, prot)
                     : os_pkey_mprotect((void *)s, OS_PAGE_SIZE, prot, pkey);
    if (e == 0 && pkey >= 0)
        os_pkey_mprotect((void *)s, OS_PAGE_SIZE, PROT_NONE, 0);
    else if (e == 0)
        os_mprotect((void *)s, OS_PAGE_SIZE, PROT_NONE);
    return e == -ENOSYS ? 0 : e;
}

/* The same call at an address of the kernel's choosing meets every refusal
 * that does not depend on the address (an unaligned offset, an unknown
 * MAP_SHARED_VALIDATE flag, a file that cannot be mapped), and one that
 * does: a hugetlb mapping's alignment. A probe that fails for want of room
 * (ENOMEM: RLIMIT_AS, a drained pool) proves nothing, since the real call
 * replaces memory instead of adding it. */
static int probe_map(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (flags & MAP_HUGETLB) {
        unsigned bits = ((unsigned)flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
        uintptr_t align = (uintptr_t)1 << (bits ? bits : 21); /* default: 2 MiB */
        if ((uintptr_t)addr & (align - 1))
            return -EINVAL;
    }
    int f = flags & ~(MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_POPULATE | MAP_LOCKED);
    uintptr_t at;
    int e = os_mmap(NULL, len, prot, f, fd, off, &at);
    if (e)
        return e == -ENOMEM ? 0 : e;
    os_munmap((void *)at, len);
    return 0;
}

int refuse_map(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    int e = probe_map(addr, len, prot, flags, fd, off);
    if (e)
        return e;
    /* The kernel's checks before it replaces anything (mm/mmap.c), for when
     * the probe found no room: a known mapping type, and a file open for
     * what the mapping asks. */
    int type = flags & MAP_TYPE;
    if (type != MAP_SHARED && type != MAP_PRIVATE && type != MAP_SHARED_VALIDATE && type != 0x08)
        return -EINVAL; /* 0x08: MAP_DROPPABLE, kernel 6.11+ */
    if (!(flags & MAP_ANONYMOUS)) {
        int fl;
        if (os_fd_flags(fd, &fl) != 0)
            return -EBADF;
        if ((fl & O_ACCMODE) == O_WRONLY ||
            (type != MAP_PRIVATE && (prot & PROT_WRITE) && (fl & O_ACCMODE) != O_RDWR))
            return -EACCES;
    }
    return 0;
}
