/*
 * printf-like formatting into a caller's buffer, for code that must not
 * allocate (stdio may, and takes locks). Understands %s %.*s %c %d %i %u %x
 * %p %% with the length modifiers l, ll, z and j. Output is truncated to fit and
 * always NUL-terminated.
 */
#ifndef PYHUGE_FMT_H
#define PYHUGE_FMT_H

#include <stdarg.h>
#include <stddef.h>

struct fmt {
    char *buf;
    size_t cap; /* bytes in buf, including room for the NUL */
    size_t len; /* bytes written so far, excluding the NUL */
};

void fmt_init(struct fmt *f, char *buf, size_t cap);
void fmt_add(struct fmt *f, const char *format, ...) __attribute__((format(printf, 2, 3)));
void fmt_vadd(struct fmt *f, const char *format, va_list ap) __attribute__((format(printf, 2, 0)));

#endif
