/*
 * The range itself (range.h): the side table mapped once, address space
 * reserved in steps as arenas need it, FREE pages handed out to be backed
 * and taken back when their arenas are gone.
 */
#include "range.h"

#include <errno.h>
#include <sys/mman.h>

#include "log.h"
#include "os.h"
#include "state.h"
#include "tiers.h"

/* At most 64 GiB of arenas: the side table has an entry per 2 MiB page. */
#define RANGE_MAX_PAGES 32768u
/* Address space is reserved in steps of a quarter of what the range holds,
 * at least 32 MiB. Under a finite RLIMIT_AS, where every reserved byte
 * counts whether used or not, a step is at most a sixteenth of the room
 * left under the limit (at least 8 MiB), so that a process can use nearly
 * all the room stock Python would have. A refused step is halved down to
 * one page, so a process at its limit gets exactly the pages it uses. */
#define RANGE_MIN_STEP 16u
#define RANGE_TIGHT_STEP 4u

/* ---- growing ---------------------------------------------------------------- */

int range_init(void)
{
    if (shim.range_tried)
        return shim.table.pages ? 0 : -ENOMEM;
    shim.range_tried = true;
    size_t bytes = RANGE_MAX_PAGES * sizeof(struct page);
    uintptr_t pages, scratch;
    int e = os_mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                    -1, 0, &pages);
    if (e) {
        log_warn("cannot map the side table (errno %d); arenas stay on ordinary pages", -e);
        return e;
    }
    os_name_range((void *)pages, bytes, "pyhuge-table");
    table_init(&shim.table, (struct page *)pages, RANGE_MAX_PAGES, shim.opt.cache_pages);
    /* The kernel checks' scratch pages, now, while no arena can have a
     * hole for them to land in (os_scratch_page). */
    os_scratch_page(false, &scratch);
    os_scratch_page(true, &scratch);
    return 0;
}

/* How many pages of address space the range may hold unused: no bound
 * without RLIMIT_AS; under it, a sixteenth of the room left (at least
 * RANGE_TIGHT_STEP pages). */
static uint64_t unused_allowance(void)
{
    uint64_t limit = os_as_limit();
    if (limit == UINT64_MAX)
        return UINT64_MAX;
    uint64_t vm;
    /* Unknown (no descriptor left): no room. */
    uint64_t room = os_vm_size(&vm) == 0 && vm < limit ? limit - vm : 0;
    uint64_t pages = (room / 16) >> TABLE_PAGE_SHIFT;
    return pages > RANGE_TIGHT_STEP ? pages : RANGE_TIGHT_STEP;
}

static bool range_grow(void)
{
    struct table *t = &shim.table;
    if (shim.range_full)
        return false;
    uint32_t step = t->npages / 4 > RANGE_MIN_STEP ? t->npages / 4 : RANGE_MIN_STEP;
    uint64_t allowed = unused_allowance();
    if (step > allowed)
        step = (uint32_t)allowed;
    if (step > t->max_pages - t->npages)
        step = t->max_pages - t->npages;
    int err = 0;
    for (; step > 0; step /= 2) {
        size_t bytes = (size_t)step << TABLE_PAGE_SHIFT;
        uintptr_t r;
        int e = os_reserve_new(bytes, TABLE_PAGE_SIZE, &r);
        if (e) {
            err = -e;
            continue;
        }
        if (!table_add_extent(t, r, step)) {
            os_munmap((void *)r, bytes);
            shim.range_full = true; /* for good: not tried again at each new arena */
            log_info("the shim's range is full (%u extents, %u pages)", t->nextents, t->npages);
            return false;
        }
        log_debug("reserved %zu MiB of address space at %p for huge pages (%u MiB in all)",
                  bytes >> 20, (void *)r, t->npages * 2);
        return true;
    }
    if (err)
        log_debug("cannot reserve address space for huge pages (errno %d)", err);
    return false;
}

int range_claim_page(uint32_t *idx)
{
    if (table_claim_free(&shim.table, idx) || (range_grow() && table_claim_free(&shim.table, idx)))
        return 0;
    return -ENOMEM;
}

/* ---- pages ------------------------------------------------------------------ */

void range_release_page(struct page_ref r)
{
    uintptr_t pa = r.addr;
    /* MAP_FIXED over our own page: replaced in one step, never a hole.
     * Under a finite RLIMIT_AS, where reserved address space counts as if
     * used, a page past the unused allowance goes back to the kernel
     * instead, as a freed arena does without the shim (the range grows
     * again when it must, into such holes too). */
    if (table_free_pages(&shim.table) > unused_allowance() || os_reserve(pa, TABLE_PAGE_SIZE) != 0) {
        os_munmap((void *)pa, TABLE_PAGE_SIZE);
        table_give_to_kernel(&shim.table, r.idx);
    }
    tier_page_returned();
    log_debug("page %u back to address space", r.idx);
}

/* ---- debug builds: the table checked at every unlock ------------------------ */

void shim_check_table(void)
{
    const char *why = table_check(&shim.table);
    if (why) {
        log_fatal("the side table is inconsistent: %s: aborting", why);
        os_abort();
    }
}

