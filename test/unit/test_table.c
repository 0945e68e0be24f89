/* The side table's bookkeeping, with no memory behind the addresses. */
#include <criterion/criterion.h>

#include "table.h"

#define BASE ((uintptr_t)0x40000000000)
#define NPAGES 16
#define MiB ((size_t)1 << 20)
#define KiB ((size_t)1 << 10)

static struct table t;
static struct page pages[NPAGES];

/* Every invariant holds: after every step of every test. */
static void check(void)
{
    const char *why = table_check(&t);
    cr_assert_null(why, "table_check: %s", why ? why : "");
}

static void fresh(uint32_t cache_max)
{
    memset(pages, 0, sizeof pages);
    table_init(&t, pages, NPAGES, cache_max);
    cr_assert(table_add_extent(&t, BASE, NPAGES));
}

static void setup(void) { fresh(0); }

TestSuite(side_table, .init = setup, .fini = check);

/* table_release, checked, with the page's index. */
static enum release release(uintptr_t a, size_t len, uint32_t *idx)
{
    struct page_ref r = {.idx = UINT32_MAX};
    enum release e = table_release(&t, a, len, &r);
    if (r.idx != UINT32_MAX)
        *idx = r.idx;
    check();
    return e;
}

/* What the shim does for an arena: a slot from a mapped page, else a new page. */
static uintptr_t take(int cls, bool *must_zero)
{
    struct slot s;
    if (table_take_slot(&t, cls, &s)) {
        check();
        *must_zero = s.must_zero;
        return s.addr;
    }
    uint32_t idx;
    cr_assert(table_claim_free(&t, &idx), "the range has room");
    check();
    table_add_page(&t, idx, cls, BACK_HUGETLB);
    check();
    cr_assert(table_take_slot(&t, cls, &s), "a new page has room");
    cr_expect_eq(s.backing, BACK_HUGETLB);
    check();
    *must_zero = s.must_zero;
    return s.addr;
}

Test(side_table, knows_only_arena_sizes)
{
    int cls = -7;
    cr_expect(table_class_of(256 * KiB, &cls));
    cr_expect_eq(cls, 0);
    cr_expect(table_class_of(MiB, &cls));
    cr_expect_eq(cls, 1);
    cr_expect(table_class_of(2 * MiB, &cls));
    cr_expect_eq(cls, 2);
    cr_expect_not(table_class_of(512 * KiB, &cls));
    cr_expect_not(table_class_of(MiB + 4096, &cls));
    cr_expect_not(table_class_of(0, &cls));
    cr_expect_eq(cls, 2, "left alone when the size is no arena size");
}

Test(side_table, packs_two_1mib_arenas_per_huge_page)
{
    bool z;
    uintptr_t a = take(1, &z), b = take(1, &z), c = take(1, &z);
    cr_expect_eq(a, BASE);
    cr_expect_eq(b, BASE + MiB);
    cr_expect_eq(c, BASE + 2 * MiB, "a third arena opens a second page");
    cr_expect_eq(t.held[BACK_HUGETLB], 2);
    cr_expect_eq(t.live[BACK_HUGETLB], 3);
}

Test(side_table, packs_eight_256kib_arenas_per_huge_page)
{
    bool z;
    for (unsigned i = 0; i < 8; i++)
        cr_expect_eq(take(0, &z), BASE + i * 256 * KiB);
    cr_expect_eq(t.held[BACK_HUGETLB], 1);
    cr_expect_eq(take(0, &z), BASE + 2 * MiB);
    cr_expect_eq(t.held[BACK_HUGETLB], 2);
}

Test(side_table, frees_page_when_both_halves_are_gone)
{
    bool z;
    uintptr_t a = take(1, &z), b = take(1, &z);
    uint32_t idx;
    cr_expect_eq(release(a, MiB, &idx), RELEASE_KEPT);
    cr_expect_eq(t.held[BACK_HUGETLB], 1);
    cr_expect_eq(release(b, MiB, &idx), RELEASE_UNMAP_PAGE);
    cr_expect_eq(idx, 0);
    cr_expect_eq(t.held[BACK_HUGETLB], 0);
    cr_expect_eq(t.live[BACK_HUGETLB], 0);
    cr_expect_eq(t.peak[BACK_HUGETLB], 1);
}

Test(side_table, refuses_anything_but_an_exact_live_slot)
{
    bool z;
    uintptr_t a = take(1, &z);
    uint32_t idx;
    cr_expect_eq(release(a, MiB / 2, &idx), RELEASE_NOT_SLOT, "half an arena");
    cr_expect_eq(release(a + 4096, MiB, &idx), RELEASE_NOT_SLOT, "misaligned");
    cr_expect_eq(release(a + MiB, MiB, &idx), RELEASE_NOT_SLOT, "the free half");
    cr_expect_eq(release(a, 2 * MiB, &idx), RELEASE_NOT_SLOT, "two slots at once");
    cr_expect_eq(release(BASE - MiB, MiB, &idx), RELEASE_NOT_SLOT, "below the range");
    cr_expect_eq(release(BASE + 7 * 2 * MiB, MiB, &idx), RELEASE_NOT_SLOT,
                 "a page never used");
    cr_expect_eq(release(a, MiB, &idx), RELEASE_UNMAP_PAGE);
    cr_expect_eq(release(a, MiB, &idx), RELEASE_NOT_SLOT, "a double free");
}

Test(side_table, knows_which_addresses_lie_in_live_arenas)
{
    bool z;
    uintptr_t a = take(1, &z), b = take(1, &z);
    uint32_t idx, page;
    cr_assert(table_lookup(&t, a, &page));
    cr_expect(table_live_at(&t, a, &idx) && idx == page, "an arena's first byte");
    cr_expect(table_live_at(&t, b + MiB - 1, &idx) && idx == page, "the other arena's last byte");
    release(b, MiB, &idx);
    cr_expect_not(table_live_at(&t, b, &idx), "a freed slot");
    cr_expect_not(table_live_at(&t, a + 2 * MiB, &idx), "a page never used");
    cr_expect_not(table_live_at(&t, BASE - 4096, &idx), "below the range");
}

Test(side_table, reused_slot_must_be_zeroed_fresh_one_not)
{
    bool z;
    uintptr_t a = take(1, &z);
    cr_expect_not(z, "fresh huge pages are zero-filled by the kernel");
    take(1, &z);
    cr_expect_not(z);
    uint32_t idx;
    release(a, MiB, &idx);
    cr_expect_eq(take(1, &z), a, "the freed half is reused");
    cr_expect(z, "and it held data");
}

Test(side_table, caches_empty_page_up_to_limit, .init = NULL)
{
    fresh(1);
    bool z;
    uintptr_t a = take(1, &z), b = take(1, &z), c = take(1, &z), d = take(1, &z);
    uint32_t idx;
    release(a, MiB, &idx);
    cr_expect_eq(release(b, MiB, &idx), RELEASE_KEPT, "kept in the cache");
    cr_expect_eq(t.cached, 1);
    cr_expect_eq(t.held[BACK_HUGETLB], 2);
    release(c, MiB, &idx);
    cr_expect_eq(release(d, MiB, &idx), RELEASE_UNMAP_PAGE, "the cache is full");
    cr_expect_eq(take(1, &z), BASE, "a cached page is reused before a new one");
    cr_expect(z, "with old data in it");
    cr_expect_eq(t.cached, 0);
}

Test(side_table, cached_page_changes_arena_size_and_stays_dirty, .init = NULL)
{
    fresh(1);
    bool z;
    uintptr_t a = take(1, &z);
    uint32_t idx;
    release(a, MiB, &idx);
    uintptr_t s = take(0, &z);
    cr_expect_eq(s, BASE);
    cr_expect(z, "256 KiB slot inside an old 1 MiB arena");
    struct slot next;
    cr_assert(table_take_slot(&t, 0, &next));
    cr_expect_eq(next.addr, BASE + 256 * KiB);
    cr_expect(next.must_zero);
}

Test(side_table, evicts_cached_pages, .init = NULL)
{
    fresh(4);
    bool z;
    uintptr_t a = take(2, &z);
    uint32_t idx;
    cr_expect_eq(release(a, 2 * MiB, &idx), RELEASE_KEPT);
    uint32_t evicted = 99;
    cr_expect_not(table_evict_cached(&t, true, BACK_THP, &evicted), "only pages of one backing");
    cr_assert(table_evict_cached(&t, true, BACK_HUGETLB, &evicted));
    cr_expect_eq(evicted, 0);
    cr_expect_not(table_evict_cached(&t, false, BACK_HUGETLB, &evicted), "the cache is empty");
    cr_expect_eq(t.held[BACK_HUGETLB], 0);
}

Test(side_table, freed_page_index_is_reused_before_new_space)
{
    bool z;
    uintptr_t a = take(2, &z);
    uint32_t idx;
    release(a, 2 * MiB, &idx);
    cr_expect_eq(take(2, &z), BASE);
    cr_expect_eq(t.used, 1);
}

Test(side_table, reports_full_range)
{
    uint32_t idx;
    for (int i = 0; i < NPAGES; i++)
        cr_expect(table_claim_free(&t, &idx));
    cr_expect_not(table_claim_free(&t, &idx));
}

Test(side_table, page_given_to_the_kernel_takes_no_arena_and_frees_none)
{
    bool z;
    uintptr_t a = take(1, &z);
    take(1, &z);
    table_give_to_kernel(&t, 0);
    cr_expect_eq(pages[0].state, PAGE_KERNEL);
    cr_expect_eq(t.held[BACK_HUGETLB], 0, "no longer a huge page");
    cr_expect_eq(t.live[BACK_HUGETLB], 0, "its arenas are no longer counted");
    cr_expect_eq(take(1, &z), BASE + 2 * MiB, "no new arena goes into it");
    uint32_t idx;
    cr_expect_eq(release(a, MiB, &idx), RELEASE_NOT_SLOT,
                 "its arenas are the kernel's to free");
}

Test(side_table, page_given_to_the_kernel_is_never_handed_out_again)
{
    table_give_to_kernel(&t, 3);
    uint32_t idx;
    for (int i = 0; i < NPAGES - 1; i++) {
        cr_assert(table_claim_free(&t, &idx));
        cr_expect_neq(idx, 3);
    }
    cr_expect_not(table_claim_free(&t, &idx));
}

Test(side_table, moved_page_changes_counters_and_forgets_old_data)
{
    bool z;
    uintptr_t a = take(1, &z);
    take(1, &z);
    uint32_t idx;
    release(a, MiB, &idx);
    table_rebacked(&t, 0, BACK_THP);
    cr_expect_eq(pages[0].state, PAGE_THP);
    cr_expect_eq(t.held[BACK_HUGETLB], 0);
    cr_expect_eq(t.held[BACK_THP], 1);
    cr_expect_eq(t.live[BACK_THP], 1);
    cr_expect_eq(t.peak[BACK_THP], 1);
    cr_expect_eq(take(1, &z), a, "the free slot is used again");
    cr_expect_not(z, "its new memory is zero");
}

/* ---- extents --------------------------------------------------------------- */

#define FAR ((uintptr_t)0x50000000000)

Test(extents, number_pages_on_across_extents)
{
    struct page many[40];
    memset(many, 0, sizeof many);
    table_init(&t, many, 40, 0);
    cr_assert(table_add_extent(&t, BASE, 4));
    cr_assert(table_add_extent(&t, FAR, 4));
    cr_expect_eq(t.nextents, 2);
    uint32_t idx;
    cr_expect(table_lookup(&t, FAR + 2 * MiB + 5, &idx));
    cr_expect_eq(idx, 5);
    cr_expect_eq(table_page_addr(&t, 5), FAR + 2 * MiB);
    cr_expect_eq(table_page_addr(&t, 3), BASE + 6 * MiB);
    cr_expect_not(table_lookup(&t, BASE + 8 * MiB, &idx), "between the extents");
    for (uint32_t i = 0; i < 8; i++) {
        cr_assert(table_claim_free(&t, &idx));
        cr_expect_eq(idx, i);
    }
    cr_expect_not(table_claim_free(&t, &idx), "every page of both extents taken");
}

Test(extents, one_right_after_the_last_extends_it)
{
    struct page many[40];
    table_init(&t, many, 40, 0);
    cr_assert(table_add_extent(&t, BASE, 4));
    cr_assert(table_add_extent(&t, BASE + 8 * MiB, 4));
    cr_expect_eq(t.nextents, 1);
    cr_expect_eq(t.ext[0].hi, BASE + 16 * MiB);
    uint32_t idx;
    cr_expect(table_lookup(&t, BASE + 9 * MiB, &idx));
    cr_expect_eq(idx, 4);
}

Test(extents, refuses_more_pages_than_the_table_holds)
{
    struct page few[6];
    table_init(&t, few, 6, 0);
    cr_expect(table_add_extent(&t, BASE, 4));
    cr_expect_not(table_add_extent(&t, FAR, 4));
    cr_expect(table_add_extent(&t, FAR, 2));
    cr_expect_not(table_add_extent(&t, FAR + 64 * MiB, 0), "no empty extents");
}

Test(extents, overlap_test_sees_every_extent_and_nothing_else)
{
    struct page many[40];
    table_init(&t, many, 40, 0);
    cr_expect_not(table_overlaps(&t, 0, UINTPTR_MAX), "no extent yet");
    table_add_extent(&t, BASE, 4);
    table_add_extent(&t, FAR, 4);
    cr_expect(table_overlaps(&t, FAR + 4096, FAR + 8192));
    cr_expect(table_overlaps(&t, BASE - 4096, BASE + 1), "ends one byte in");
    cr_expect_not(table_overlaps(&t, BASE - 4096, BASE), "ends where it starts");
    cr_expect_not(table_overlaps(&t, BASE + 8 * MiB, FAR), "the gap between");
    cr_expect(table_overlaps(&t, 0, UINTPTR_MAX));
}

Test(extents, split_a_range_at_extent_boundaries)
{
    struct page many[40];
    table_init(&t, many, 40, 0);
    table_add_extent(&t, BASE, 4);
    table_add_extent(&t, FAR, 4);
    cr_expect_eq(table_outside_end(&t, BASE - MiB, FAR + MiB), BASE);
    cr_expect_eq(table_outside_end(&t, BASE + 8 * MiB, FAR + MiB), FAR);
    cr_expect_eq(table_outside_end(&t, FAR + 8 * MiB, FAR + 64 * MiB), FAR + 64 * MiB, "none past it");
    check();
}

/* One walk of the extents gives index, entry and address together, the
 * same as table_lookup and table_page_addr each give one of them. */
Test(extents, a_page_resolved_once_agrees_with_lookup_and_address)
{
    struct page many[40];
    memset(many, 0, sizeof many);
    table_init(&t, many, 40, 0);
    table_add_extent(&t, BASE, 4);
    table_add_extent(&t, FAR, 4);
    for (uintptr_t a = FAR - 4 * MiB; a < FAR + 10 * MiB; a += MiB / 2) {
        struct page_ref r;
        uint32_t idx;
        bool in = table_lookup(&t, a, &idx);
        cr_expect_eq(table_page_at(&t, a, &r), in);
        if (!in)
            continue;
        cr_expect_eq(r.idx, idx);
        cr_expect_eq(r.addr, table_page_addr(&t, idx));
        cr_expect_eq(r.p, &many[idx]);
        struct page_ref again = table_page(&t, idx);
        cr_expect(again.idx == r.idx && again.addr == r.addr && again.p == r.p);
    }
    struct page_ref r;
    cr_expect(table_page_at(&t, BASE + 3 * MiB, &r));
    cr_expect_eq(r.idx, 1);
    cr_expect_eq(r.addr, BASE + 2 * MiB);
    cr_expect_eq(table_state(&t, r), PAGE_FREE, "a page never taken is FREE");
}

/* ---- slots of a page ------------------------------------------------------- */

Test(side_table, names_the_slots_a_range_touches_and_covers)
{
    bool z;
    uintptr_t a = take(0, &z); /* a page of eight 256 KiB slots */
    struct page_ref r;
    cr_assert(table_page_at(&t, a, &r));
    cr_expect_eq(page_slots_touched(r, BASE, BASE + 2 * MiB), 0xffu);
    cr_expect_eq(page_slots_within(r, BASE, BASE + 2 * MiB), 0xffu);
    cr_expect_eq(page_slots_touched(r, BASE + 4096, BASE + 256 * KiB + 1), 0x03u);
    cr_expect_eq(page_slots_within(r, BASE + 4096, BASE + 256 * KiB + 1), 0u, "neither whole");
    cr_expect_eq(page_slots_within(r, BASE + 4096, BASE + 768 * KiB), 0x06u);
    cr_expect_eq(page_slots_touched(r, BASE + 1792 * KiB, BASE + 2 * MiB), 0x80u, "the last slot");
    cr_expect_eq(page_slot_addr(r, 3), BASE + 768 * KiB);
}

Test(side_table, visits_each_slot_of_a_mask_once_lowest_first)
{
    unsigned seen[8], n = 0;
    for_each_slot(i, 0xa5u)
        seen[n++] = i;
    cr_assert_eq(n, 4);
    cr_expect(seen[0] == 0 && seen[1] == 2 && seen[2] == 5 && seen[3] == 7);
    for_each_slot(i, 0u)
        n += i + 1;
    cr_expect_eq(n, 4, "an empty mask has no slot");
}

Test(side_table, frees_a_slot_of_a_resolved_page)
{
    bool z;
    uintptr_t a = take(1, &z), b = take(1, &z);
    struct page_ref r;
    cr_assert(table_page_at(&t, a, &r));
    cr_expect_eq(table_release_slot(&t, r, 1), RELEASE_KEPT);
    check();
    cr_expect_eq(r.p->live, 1u);
    cr_expect_eq(table_release_slot(&t, r, 0), RELEASE_UNMAP_PAGE);
    check();
    (void)b;
}

/* ---- the invariants --------------------------------------------------------- */

/* A table with a bit of everything: partial, full and cached pages. */
static void busy(void)
{
    fresh(2);
    bool z;
    uintptr_t a[6];
    for (int i = 0; i < 6; i++)
        a[i] = take(1, &z);
    take(0, &z);
    uint32_t idx;
    release(a[0], MiB, &idx);
    release(a[2], MiB, &idx);
    release(a[3], MiB, &idx); /* page 1 empty: cached */
}

Test(table_check, holds_on_a_busy_table) { busy(); }

Test(table_check, finds_a_counter_that_is_off)
{
    busy();
    t.held[BACK_HUGETLB]++;
    cr_expect_not_null(table_check(&t));
    t.held[BACK_HUGETLB]--;
    t.live[BACK_HUGETLB]--;
    cr_expect_not_null(table_check(&t));
    t.live[BACK_HUGETLB]++;
    t.cached++;
    cr_expect_not_null(table_check(&t));
    t.cached--;
    t.cached_on[BACK_THP]++;
    cr_expect_not_null(table_check(&t), "a cached page counted under the wrong backing");
    t.cached_on[BACK_THP]--;
    t.free_listed++;
    cr_expect_not_null(table_check(&t));
}

Test(table_check, finds_a_list_that_disagrees_with_its_pages)
{
    busy();
    struct page *p = &pages[t.cache_head];
    p->next = t.cache_head; /* a loop */
    cr_expect_not_null(table_check(&t));
    p->next = -1;
    p->list = LIST_PARTIAL;
    cr_expect_not_null(table_check(&t), "a cached page marked partial");
}

Test(table_check, finds_slots_that_contradict_the_state)
{
    busy();
    pages[0].dirty = 0;
    cr_expect_not_null(table_check(&t), "a live slot that is not dirty");
    pages[0].dirty = pages[0].live;
    cr_expect_null(table_check(&t));
    pages[0].live = 0x3; /* page 0 had one live arena of two, on the partial list */
    cr_expect_not_null(table_check(&t), "a full page on the partial list");
}

Test(table_check, finds_extents_out_of_order_or_overlapping_pages_of_ours)
{
    busy();
    t.ext[0].first = 1;
    cr_expect_not_null(table_check(&t));
    t.ext[0].first = 0;
    struct page many[40];
    memset(many, 0, sizeof many);
    table_init(&t, many, 40, 0);
    table_add_extent(&t, BASE, 16);
    uint32_t idx;
    for (int i = 0; i < 8; i++)
        cr_assert(table_claim_free(&t, &idx));
    cr_expect_null(table_check(&t));
    t.ext[1] = (struct table_extent){.lo = BASE + 8 * MiB, .hi = BASE + 16 * MiB, .first = 16};
    t.nextents = 2;
    t.npages += 4;
    cr_expect_not_null(table_check(&t), "a new extent over pages that are not the kernel's");
}

/* The kernel may place a new extent in the holes of pages an older extent
 * gave it: those addresses belong to the new extent's pages from then on. */
Test(extents, a_new_extent_in_old_holes_holds_its_addresses)
{
    struct page many[40];
    memset(many, 0, sizeof many);
    table_init(&t, many, 40, 0);
    table_add_extent(&t, BASE, 16);
    for (uint32_t i = 4; i < 8; i++)
        table_give_to_kernel(&t, i);
    cr_assert(table_add_extent(&t, BASE + 8 * MiB, 4));
    uint32_t idx;
    cr_expect(table_lookup(&t, BASE + 9 * MiB, &idx));
    cr_expect_eq(idx, 16, "the new extent's first page, not old page 4");
    cr_expect(table_lookup(&t, BASE + 17 * MiB, &idx));
    cr_expect_eq(idx, 8, "the old extent past the new one");
    check();
}

/* A process that made no arena has a table that was never initialised
 * (TABLE_EMPTY): the fork handlers' bookkeeping reads it as empty. */
Test(side_table, a_table_never_initialised_has_nothing_cached)
{
    struct table none = TABLE_EMPTY;
    cr_expect_eq(table_cached_on(&none, BACK_HUGETLB), 0);
    cr_expect_eq(table_cached_on(&none, BACK_THP), 0);
}

/* The free pages a range holds (what RLIMIT_AS counts beside the arenas):
 * untouched ones and those released, not pages serving arenas or given to
 * the kernel. */
Test(side_table, counts_its_free_pages)
{
    cr_expect_eq(table_free_pages(&t), NPAGES);
    bool z;
    uintptr_t a = take(1, &z), b = take(1, &z), c = take(2, &z);
    cr_expect_eq(table_free_pages(&t), NPAGES - 2, "two 1 MiB arenas share a page, one takes a page");
    uint32_t idx = 0;
    cr_expect_eq(release(a, MiB, &idx), RELEASE_KEPT);
    cr_expect_eq(release(b, MiB, &idx), RELEASE_UNMAP_PAGE);
    cr_expect_eq(table_free_pages(&t), NPAGES - 1);
    table_give_to_kernel(&t, idx);
    cr_expect_eq(table_free_pages(&t), NPAGES - 2, "a page given to the kernel is no free page");
    (void)c;
}

/* A forked child's inherited pages (fork.c): its new arenas go elsewhere. */
Test(side_table, retired_page_takes_no_new_arena)
{
    bool z;
    uintptr_t a = take(1, &z); /* page 0: one live slot, one free */
    cr_expect_not(table_retire(&t, 0), "a page with a live arena stays mapped");
    check();
    cr_expect_eq(take(1, &z), BASE + 2 * MiB, "the free slot of a retired page is not used");
    uint32_t idx;
    cr_expect_eq(release(a, MiB, &idx), RELEASE_UNMAP_PAGE,
                 "its last arena gone, the page is released");
    cr_expect_eq(idx, 0);
    cr_expect_eq(t.held[BACK_HUGETLB], 1);
}

Test(side_table, retired_full_page_is_not_listed_again_when_a_slot_frees)
{
    bool z;
    uintptr_t a = take(1, &z);
    take(1, &z); /* page 0 full */
    table_retire(&t, 0);
    uint32_t idx;
    cr_expect_eq(release(a, MiB, &idx), RELEASE_KEPT);
    cr_expect_eq(take(1, &z), BASE + 2 * MiB, "the slot freed in a retired page is not reused");
}

Test(side_table, retired_cached_page_is_free_at_once, .init = NULL)
{
    fresh(1);
    bool z;
    uintptr_t a = take(1, &z), b = take(1, &z);
    uint32_t idx;
    release(a, MiB, &idx);
    release(b, MiB, &idx);
    cr_assert_eq(t.cached, 1);
    cr_expect(table_retire(&t, 0), "an empty cached page: the caller unmaps it");
    cr_expect_eq(t.cached, 0);
    cr_expect_eq(t.held[BACK_HUGETLB], 0);
    cr_expect_eq(t.pages[0].state, PAGE_FREE);
}
