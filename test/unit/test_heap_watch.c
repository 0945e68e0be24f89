/* When the shim asks glibc for its free memory back (heap.h), as pure
 * bookkeeping: after a fall to half the peak, at most once a minute, never
 * in the first minute. */
#include <criterion/criterion.h>

#include "heap.h"

#define MiB ((size_t)1 << 20)
#define SECOND 1000000000ull

static struct heap_watch w;

static void built(size_t mib)
{
    for (size_t i = 0; i < mib; i++)
        heap_watch_served(&w, MiB);
}

/* Frees mib arenas at `at` seconds; true when any free made a trim due. */
static bool freed(size_t mib, uint64_t at)
{
    bool due = false;
    for (size_t i = 0; i < mib; i++)
        due |= heap_watch_freed(&w, MiB, at * SECOND);
    return due;
}

TestSuite(heap_watch);

Test(heap_watch, a_short_program_is_never_trimmed)
{
    w = (struct heap_watch){.last_trim_ns = 0};
    built(300);
    cr_expect_not(freed(300, 59), "everything freed in the first minute: no trim");
}

Test(heap_watch, a_fall_to_half_the_peak_trims_once_a_minute)
{
    w = (struct heap_watch){.last_trim_ns = 0};
    built(300);
    cr_expect_not(freed(100, 120), "two thirds still held");
    cr_expect(freed(60, 120), "half of the peak");
    cr_expect_not(freed(100, 130), "a minute has not passed");
    built(200);
    cr_expect(freed(200, 190), "a minute later, half of the new peak");
}

Test(heap_watch, small_falls_never_trim)
{
    w = (struct heap_watch){.last_trim_ns = 0};
    built(12);
    cr_expect_not(freed(12, 600), "all of it, but less than 16 MiB");
}
