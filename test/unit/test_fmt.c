/* The allocation-free formatter behind every message. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "fmt.h"

static const char *format(char *buf, size_t cap, const char *f, ...)
{
    struct fmt out;
    fmt_init(&out, buf, cap);
    va_list ap;
    va_start(ap, f);
    fmt_vadd(&out, f, ap);
    va_end(ap);
    return buf;
}

#define FMT_SAME(...)                                                  \
    do {                                                               \
        char got[128], want[128];                                      \
        format(got, sizeof got, __VA_ARGS__);                          \
        snprintf(want, sizeof want, __VA_ARGS__);                      \
        cr_expect_str_eq(got, want);                                   \
    } while (0)

Test(fmt, agrees_with_printf)
{
    FMT_SAME("%d %i %u %x", -42, 7, 3000000000u, 0xbeefu);
    FMT_SAME("%ld %lu %lld %llu", LONG_MIN, ULONG_MAX, LLONG_MIN, ULLONG_MAX);
    FMT_SAME("%zu %jd", (size_t)123456789, (intmax_t)-1);
    FMT_SAME("[%s] [%.*s] %c %%", "arena", 3, "pymalloc", 'x');
    FMT_SAME("%p", (void *)0x7fff12345000);
}

Test(fmt, truncates_and_terminates)
{
    char buf[8];
    format(buf, sizeof buf, "%s", "0123456789");
    cr_expect_str_eq(buf, "0123456");
}

Test(fmt, null_string_does_not_crash)
{
    char buf[16];
    format(buf, sizeof buf, "%s", (char *)NULL);
    cr_expect_str_eq(buf, "(null)");
}
