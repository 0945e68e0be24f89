/*
 * A real CPython that lowers its own limits after start-up (limits.py), as
 * sandboxes and test harnesses do: under the shim it gets what it gets
 * without it, and the arenas that fall back say why (address space, not
 * the pool).
 */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define PRELOAD PYHUGE_PRELOAD
#define PYTHON "/usr/bin/python3.11"

static struct run stock, shim;

static void have_python(void)
{
    if (access(PYTHON, X_OK) != 0)
        cr_skip_test("no %s on this machine", PYTHON);
}

TestSuite(limits, .init = have_python, .fini = pool_restore, .timeout = 120);

static void both(char *which, char *mib, char *limit)
{
    char *argv[] = {PYTHON, LIMITS_PY, which, mib, limit, NULL};
    char *plain[] = {NULL};
    char *env[] = {PRELOAD, "PYHUGE_STATS=1", NULL};
    run(&stock, plain, argv);
    run(&shim, env, argv);
    cr_assert_eq(stock.status, 0, "%s", stock.err);
    cr_assert_eq(shim.status, 0, "%s", shim.err);
}

/* The reservation of address space grows with the arenas: an absolute
 * RLIMIT_AS set after start-up leaves the program the room it has without
 * the shim (a fixed 64 GiB reservation made every allocation fail). */
Test(limits, rlimit_as_set_after_start_up_leaves_the_program_its_room)
{
    pool_require(0);
    both("as", "300", "600");
    cr_expect(strstr(stock.out, "built mib=300") != NULL, "stock: %s", stock.out);
    cr_expect(strstr(shim.out, "built mib=300") != NULL, "%s\n%s", shim.out, shim.err);
}

Test(limits, rlimit_as_with_a_pool_too)
{
    pool_require(200);
    both("as", "300", "600");
    cr_expect(strstr(shim.out, "built mib=300") != NULL, "%s\n%s", shim.out, shim.err);
    cr_expect_gt(field(shim.err, "pyhuge [", 0, "huge"), 100, "arenas on huge pages: %s", shim.err);
}

/* Both stop with MemoryError, the shim within a tenth of where stock does. */
static void memory_error_near_stock(void)
{
    long at_stock = field(stock.out, "memoryerror", 0, "mib");
    long at_shim = field(shim.out, "memoryerror", 0, "mib");
    cr_assert_gt(at_stock, 50, "stock: %s", stock.out);
    cr_expect_gt(at_shim, 0, "a MemoryError under the shim too: %s", shim.out);
    cr_expect_geq(at_shim, at_stock * 9 / 10, "shim %ld MiB vs stock %ld MiB", at_shim, at_stock);
    cr_expect_leq(at_shim, at_stock * 11 / 10 + 2, "shim %ld MiB vs stock %ld MiB", at_shim, at_stock);
}

/* Too small a limit: MemoryError at about the point stock reaches, and the
 * arenas refused count as `space`, never as the pool's fault. */
Test(limits, rlimit_as_reached_is_a_memory_error_as_without_the_shim)
{
    pool_require(200);
    both("as", "300", "250");
    memory_error_near_stock();
    cr_expect_eq(field(shim.err, "pyhuge [", 0, "pool"), 0, "no pool refusal: %s", shim.err);
    cr_expect_gt(field(shim.err, "pyhuge [", 0, "space"), 0, "said as address space: %s", shim.err);
}

/* limits.py MODE MIB 600 under both: the largest block the shim leaves
 * room for is at most stock's less a `part` of it and 8 MiB. */
static void largest_block_near_stock(char *mode, char *mib, long part)
{
    pool_require(200);
    both(mode, mib, "600");
    long at_stock = field(stock.out, "largest", 0, "mib"), at_shim = field(shim.out, "largest", 0, "mib");
    cr_assert_gt(at_stock, 100, "stock: %s", stock.out);
    cr_expect_geq(at_shim, at_stock - at_stock / part - 8, "%s: the largest block %ld MiB under the "
                  "shim, %ld MiB without:\n%s", mode, at_shim, at_stock, shim.err);
    cr_expect_gt(field(shim.err, "pyhuge [", 0, "huge"), 100, "arenas on huge pages: %s", shim.err);
}

/* Address space the shim holds ahead for arenas counts against RLIMIT_AS
 * as if used: under a limit it holds at most a sixteenth of the room left
 * (or 8 MiB), so that one large block (a bytes object, a NumPy array) finds
 * about the room it finds without the shim. Here a quarter of the range
 * held ahead left 33 MiB less of 211. */
Test(limits, rlimit_as_leaves_a_large_block_its_room)
{
    largest_block_near_stock("asblob", "230", 16);
}

/* A heap that shrinks gives its address space back under RLIMIT_AS, as
 * freed arenas do without the shim: pages the arenas left go to the kernel
 * past a sixteenth of the room left (all of them stayed reserved, and kept
 * 485 MiB of 577 from this program). */
Test(limits, rlimit_as_room_comes_back_when_the_heap_shrinks)
{
    largest_block_near_stock("asfreed", "300", 10);
}

/* Huge pages are private mappings, which RLIMIT_DATA counts: a limit set
 * after start-up stops the heap where it stops it without the shim. */
Test(limits, rlimit_data_limits_the_heap_as_without_the_shim)
{
    pool_require(200);
    both("data", "300", "200");
    memory_error_near_stock();
}
