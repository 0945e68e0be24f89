/*
 * Moving a page's contents (move.h): copies of live arenas, one mremap
 * over a whole page, a page replaced in place or through a file. Every
 * hole the kernel may leave on the way is filled at once or ends the
 * process with a message.
 */
#include "move.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "os.h"

void move_copy_live_from(struct page_ref r, uintptr_t from, uintptr_t to)
{
    size_t slot = (size_t)1 << r.p->shift;
    for_each_slot(i, r.p->live)
        memcpy((char *)to + i * slot, (char *)from + i * slot, slot);
}

void move_copy_live(struct page_ref r, uintptr_t to) { move_copy_live_from(r, r.addr, to); }

int move_over(struct page_ref r, uintptr_t from, bool *copied)
{
    if (copied)
        *copied = false;
    uintptr_t at;
    int e = os_mremap((void *)from, TABLE_PAGE_SIZE, TABLE_PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED,
                      (void *)r.addr, &at);
    if (e == 0)
        return 0;
    if (os_is_mapped(r.addr, TABLE_PAGE_SIZE)) {
        os_munmap((void *)from, TABLE_PAGE_SIZE); /* nothing changed */
        return e;
    }
    /* mremap unmaps the target before it moves, and may then fail (ENOMEM):
     * the contents go where they were expected, into the hole only. */
    if (os_mmap((void *)r.addr, TABLE_PAGE_SIZE, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0, &at) != 0) {
        log_fatal("a failed mremap (errno %d) left a hole at %p that another mapping took; "
                  "the memory of the arenas there is lost: aborting", -e, (void *)r.addr);
        os_abort();
    }
    memcpy((void *)r.addr, (void *)from, TABLE_PAGE_SIZE);
    os_munmap((void *)from, TABLE_PAGE_SIZE);
    if (copied)
        *copied = true;
    return 0;
}

int move_replace_in_place(struct page_ref r, bool thp)
{
    uintptr_t at;
    int e = os_mmap((void *)r.addr, TABLE_PAGE_SIZE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0, &at);
    if (e && !os_is_mapped(r.addr, TABLE_PAGE_SIZE)) {
        log_fatal("the kernel unmapped huge page %u and mapped nothing in its place (errno %d): "
                  "its arenas cannot be put back: aborting", r.idx, -e);
        os_abort();
    }
    if (e)
        return e;
    if (thp)
        os_madvise((void *)r.addr, TABLE_PAGE_SIZE, MADV_HUGEPAGE);
    return 0;
}

/* Page r's live slots written to fd (out) or read back from it, each at
 * its offset in the page. */
static int transfer_live(struct page_ref r, int fd, bool out)
{
    char *pa = (char *)r.addr;
    size_t slot = (size_t)1 << r.p->shift;
    for_each_slot(i, r.p->live) {
        off_t off = (off_t)(i * slot);
        int e = out ? os_pwrite_all(fd, pa + off, slot, off) : os_pread_all(fd, pa + off, slot, off);
        if (e)
            return e;
    }
    return 0;
}

int move_through_file(struct page_ref r, bool thp)
{
    /* A write past RLIMIT_FSIZE, even to a memfd, fails with EFBIG and
     * raises SIGXFSZ, which kills a process that does not ignore it. */
    if (os_fsize_limit() < TABLE_PAGE_SIZE)
        return -EFBIG;
    int fd;
    int e = os_memfd("pyhuge-move", &fd);
    if (e)
        return e;
    e = transfer_live(r, fd, true);
    /* No signal handler may run while the page holds nothing. */
    sigset_t saved;
    os_block_signals(&saved);
    if (e == 0)
        e = move_replace_in_place(r, thp);
    if (e == 0) {
        int back = transfer_live(r, fd, false);
        if (back) {
            log_fatal("the arenas of huge page %u could not be read back from the file they "
                      "were moved through (errno %d): aborting", r.idx, -back);
            os_abort();
        }
        log_debug("huge page %u moved to ordinary memory through a file (no room for a copy)", r.idx);
    }
    os_restore_signals(&saved);
    os_close(fd);
    return e;
}
