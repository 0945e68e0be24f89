/* The side table's bookkeeping, with no memory behind the addresses. */
#include <criterion/criterion.h>

#include "table.h"

#define BASE ((uintptr_t)0x40000000000)
#define NPAGES 16
#define MiB ((size_t)1 << 20)
#define KiB ((size_t)1 << 10)

static struct table t;
static struct page pages[NPAGES];

static void fresh(uint32_t cache_max)
{
    memset(pages, 0, sizeof pages);
    table_init(&t, BASE, NPAGES, pages, cache_max);
}

static void setup(void) { fresh(0); }

TestSuite(side_table, .init = setup);

/* What the shim does for an arena: a slot from a mapped page, else a new page. */
static uintptr_t take(int cls, bool *must_zero)
{
    uintptr_t a = table_take_slot(&t, cls, must_zero);
    if (a)
        return a;
    int32_t idx = table_claim_free(&t);
    cr_assert_geq(idx, 0, "the range has room");
    table_add_page(&t, (uint32_t)idx, cls, BACK_HUGETLB);
    return table_take_slot(&t, cls, must_zero);
}

Test(side_table, knows_only_arena_sizes)
{
    cr_expect_eq(table_class_of(256 * KiB), 0);
    cr_expect_eq(table_class_of(MiB), 1);
    cr_expect_eq(table_class_of(2 * MiB), 2);
    cr_expect_eq(table_class_of(512 * KiB), -1);
    cr_expect_eq(table_class_of(MiB + 4096), -1);
    cr_expect_eq(table_class_of(0), -1);
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
    cr_expect_eq(table_release(&t, a, MiB, &idx), RELEASE_KEPT);
    cr_expect_eq(t.held[BACK_HUGETLB], 1);
    cr_expect_eq(table_release(&t, b, MiB, &idx), RELEASE_UNMAP_PAGE);
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
    cr_expect_eq(table_release(&t, a, MiB / 2, &idx), RELEASE_NOT_SLOT, "half an arena");
    cr_expect_eq(table_release(&t, a + 4096, MiB, &idx), RELEASE_NOT_SLOT, "misaligned");
    cr_expect_eq(table_release(&t, a + MiB, MiB, &idx), RELEASE_NOT_SLOT, "the free half");
    cr_expect_eq(table_release(&t, a, 2 * MiB, &idx), RELEASE_NOT_SLOT, "two slots at once");
    cr_expect_eq(table_release(&t, BASE - MiB, MiB, &idx), RELEASE_NOT_SLOT, "below the range");
    cr_expect_eq(table_release(&t, BASE + 7 * 2 * MiB, MiB, &idx), RELEASE_NOT_SLOT,
                 "a page never used");
    cr_expect_eq(table_release(&t, a, MiB, &idx), RELEASE_UNMAP_PAGE);
    cr_expect_eq(table_release(&t, a, MiB, &idx), RELEASE_NOT_SLOT, "a double free");
}

Test(side_table, reused_slot_must_be_zeroed_fresh_one_not)
{
    bool z;
    uintptr_t a = take(1, &z);
    cr_expect_not(z, "fresh huge pages are zero-filled by the kernel");
    take(1, &z);
    cr_expect_not(z);
    uint32_t idx;
    table_release(&t, a, MiB, &idx);
    cr_expect_eq(take(1, &z), a, "the freed half is reused");
    cr_expect(z, "and it held data");
}

Test(side_table, caches_empty_page_up_to_limit, .init = NULL)
{
    fresh(1);
    bool z;
    uintptr_t a = take(1, &z), b = take(1, &z), c = take(1, &z), d = take(1, &z);
    uint32_t idx;
    table_release(&t, a, MiB, &idx);
    cr_expect_eq(table_release(&t, b, MiB, &idx), RELEASE_KEPT, "kept in the cache");
    cr_expect_eq(t.cached, 1);
    cr_expect_eq(t.held[BACK_HUGETLB], 2);
    table_release(&t, c, MiB, &idx);
    cr_expect_eq(table_release(&t, d, MiB, &idx), RELEASE_UNMAP_PAGE, "the cache is full");
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
    table_release(&t, a, MiB, &idx);
    uintptr_t s = take(0, &z);
    cr_expect_eq(s, BASE);
    cr_expect(z, "256 KiB slot inside an old 1 MiB arena");
    cr_expect_eq(table_take_slot(&t, 0, &z), BASE + 256 * KiB);
    cr_expect(z);
}

Test(side_table, evicts_cached_pages, .init = NULL)
{
    fresh(4);
    bool z;
    uintptr_t a = take(2, &z);
    uint32_t idx;
    cr_expect_eq(table_release(&t, a, 2 * MiB, &idx), RELEASE_KEPT);
    cr_expect_eq(table_evict_cached(&t), 0);
    cr_expect_eq(table_evict_cached(&t), -1);
    cr_expect_eq(t.held[BACK_HUGETLB], 0);
}

Test(side_table, freed_page_index_is_reused_before_new_space)
{
    bool z;
    uintptr_t a = take(2, &z);
    uint32_t idx;
    table_release(&t, a, 2 * MiB, &idx);
    cr_expect_eq(take(2, &z), BASE);
    cr_expect_eq(t.used, 1);
}

Test(side_table, reports_full_range)
{
    for (int i = 0; i < NPAGES; i++)
        cr_expect_geq(table_claim_free(&t), 0);
    cr_expect_eq(table_claim_free(&t), -1);
}

Test(side_table, demoted_page_gives_slots_back_one_by_one)
{
    bool z;
    uintptr_t a = take(1, &z), b = take(1, &z);
    table_demote(&t, 0);
    cr_expect_eq(t.held[BACK_HUGETLB], 0, "no longer a huge page");
    cr_expect_eq(t.live[BACK_HUGETLB], 0, "its arenas are no longer on huge pages");
    cr_expect_eq(take(1, &z), BASE + 2 * MiB, "no new arena goes into a demoted page");
    uint32_t idx;
    cr_expect_eq(table_release(&t, a, MiB, &idx), RELEASE_UNMAP_SLOT);
    cr_expect_eq(table_release(&t, b, MiB, &idx), RELEASE_UNMAP_SLOT);
    table_retire_demoted(&t, 0);
    cr_expect_eq(pages[0].state, PAGE_FREE);
}

Test(side_table, foreign_page_is_never_handed_out_again)
{
    table_mark_foreign(&t, 3);
    for (int i = 0; i < NPAGES - 1; i++)
        cr_expect_neq(table_claim_free(&t), 3);
    cr_expect_eq(table_claim_free(&t), -1);
}

Test(side_table, knows_which_ranges_would_be_mapped)
{
    bool z;
    uintptr_t a = take(0, &z);
    take(0, &z);
    cr_expect(table_range_mapped(&t, a, 512 * KiB), "two live neighbours");
    cr_expect(table_range_mapped(&t, a + 4096, 4096));
    cr_expect_not(table_range_mapped(&t, a, 768 * KiB), "runs into a free slot");
    cr_expect_not(table_range_mapped(&t, BASE + 2 * MiB, 4096), "an unused page");
}
