/*
 * After fork, parent and child share every huge page. Private hugetlb pages
 * are shared copy-on-write with only the parent holding reservations: the
 * first write by either side needs a free huge page, and with the pool
 * drained the child dies of SIGBUS (FACTS.md; test/fork). So the shim maps
 * its huge pages MAP_SHARED (shim.c, new_huge_page): writes need no new
 * page, nothing can be taken from anyone. Sharing must not outlive fork(),
 * though: the child moves its inherited pages into memory of its own before
 * fork() returns to it, fresh huge pages while the pool has them, ordinary
 * pages after. The forking thread in the parent waits until the child is
 * done (it holds the GIL, so no Python code runs in the parent meanwhile),
 * so the child copies the heap as it was at fork. Threads writing without
 * the GIL (os.read into a new bytes object) may still write during the
 * copy; they only touch objects of threads the child does not have.
 */
#include <errno.h>

#include "log.h"
#include "os.h"
#include "state.h"

/* Moves a live HUGE page into a new hugetlb page of the child's own, with
 * its reservation; false when the pool has none or the kernel refuses. */
static bool rehome_huge(uint32_t idx)
{
    int reason;
    uintptr_t tmp = new_huge_page(&reason);
    if (!tmp || move_live_slots(idx, tmp) != 0)
        return false;
    struct page *p = &shim.table.pages[idx];
    p->dirty = p->live; /* the free slots of the new page are zero */
    return true;
}

static void move_inherited_pages(void)
{
    int32_t cached;
    while ((cached = table_evict_cached(&shim.table)) >= 0)
        reserve(table_page_addr(&shim.table, (uint32_t)cached), TABLE_PAGE_SIZE);
    bool pool_has_pages = true;
    unsigned rehomed = 0, demoted = 0, lost = 0;
    for (uint32_t i = 0; i < shim.table.used; i++) {
        if (shim.table.pages[i].state != PAGE_HUGE)
            continue;
        if (pool_has_pages && rehome_huge(i)) {
            rehomed++;
            continue;
        }
        pool_has_pages = false;
        if (demote(i) == 0)
            demoted++;
        else
            lost++;
    }
    log_debug("fork: child moved %u huge pages to new huge pages, %u to ordinary pages", rehomed,
              demoted);
    if (lost)
        log_warn("fork: %u huge pages could not be copied (out of memory); this child shares "
                 "them with its parent and may get SIGBUS if the pool runs dry", lost);
}

void fork_prepare(void)
{
    shim_lock();
    /* THP pages copy 4 KiB on write, like any memory: only hugetlb needs this. */
    shim.fork_moves = shim.opt.fork == FORK_COPY && shim.table.held[BACK_HUGETLB] > 0;
    shim.fork_pipe[0] = shim.fork_pipe[1] = -1;
    int e = shim.fork_moves ? os_pipe(shim.fork_pipe) : 0;
    if (e) {
        shim.fork_pipe[0] = shim.fork_pipe[1] = -1;
        log_warn("fork: no pipe to wait on (errno %d); the child moves its huge pages unguarded", -e);
    }
}

void fork_parent(void)
{
    if (shim.fork_pipe[0] >= 0) {
        os_close(shim.fork_pipe[1]);
        /* Returns once the child wrote its byte, or died: its end closes. */
        char c;
        while (os_read(shim.fork_pipe[0], &c, 1) == -EINTR)
            ;
        os_close(shim.fork_pipe[0]);
        shim.fork_pipe[0] = shim.fork_pipe[1] = -1;
    }
    shim_unlock();
}

void fork_child(void)
{
    if (shim.page)
        publish_stats_page(); /* the parent's page is shared: the child needs its own */
    if (shim.fork_moves) {
        if (shim.fork_pipe[0] >= 0)
            os_close(shim.fork_pipe[0]);
        move_inherited_pages();
        sync_counters();
        if (shim.fork_pipe[1] >= 0) {
            os_write_all(shim.fork_pipe[1], "1", 1);
            os_close(shim.fork_pipe[1]);
        }
        shim.fork_pipe[0] = shim.fork_pipe[1] = -1;
    }
    shim_unlock();
}

