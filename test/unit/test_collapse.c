/* When a forked child's copy of a page is worth a transparent huge page
 * (collapse.c): nearly every 4 KiB piece present and its own. */
#include <criterion/criterion.h>

#include "collapse.h"

#define PRESENT (1ull << 63)
#define EXCLUSIVE (1ull << 56)

static uint64_t e[512];

static void fill(unsigned own, unsigned shared)
{
    for (unsigned i = 0; i < 512; i++)
        e[i] = i < own ? PRESENT | EXCLUSIVE | i : i < own + shared ? PRESENT | i : 0;
}

Test(collapse, worth_it_when_the_child_owns_nearly_every_piece)
{
    fill(512, 0);
    cr_expect(collapse_worth(e, 512));
    fill(COLLAPSE_MIN_PRIVATE, 512 - COLLAPSE_MIN_PRIVATE);
    cr_expect(collapse_worth(e, 512), "the few shared pieces are what it costs");
}

Test(collapse, not_while_much_is_still_shared_with_the_parent)
{
    fill(COLLAPSE_MIN_PRIVATE - 1, 512 - COLLAPSE_MIN_PRIVATE + 1);
    cr_expect_not(collapse_worth(e, 512));
    fill(0, 512);
    cr_expect_not(collapse_worth(e, 512));
}

Test(collapse, not_over_pieces_never_touched)
{
    fill(256, 0); /* a free slot: collapsing would fault in 1 MiB of zeroes */
    cr_expect_not(collapse_worth(e, 512));
}

Test(collapse, exclusive_without_present_is_not_owned)
{
    for (unsigned i = 0; i < 512; i++)
        e[i] = EXCLUSIVE;
    cr_expect_not(collapse_worth(e, 512));
}
