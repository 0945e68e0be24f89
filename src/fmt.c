/*
 * The formatter behind every message (fmt.h): a small printf into a fixed
 * buffer, so that a message from inside a hook allocates nothing.
 */
#include "fmt.h"

#include <stdint.h>

void fmt_init(struct fmt *f, char *buf, size_t cap)
{
    f->buf = buf;
    f->cap = cap;
    f->len = 0;
    if (cap)
        buf[0] = '\0';
}

static void put(struct fmt *f, char c)
{
    if (f->len + 1 < f->cap) {
        f->buf[f->len++] = c;
        f->buf[f->len] = '\0';
    }
}

static void put_str(struct fmt *f, const char *s, int precision)
{
    if (!s)
        s = "(null)";
    for (; *s && precision != 0; precision--)
        put(f, *s++);
}

static void put_unsigned(struct fmt *f, uintmax_t v, unsigned base)
{
    char digits[24];
    int n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        digits[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (n)
        put(f, digits[--n]);
}

enum length { LEN_INT, LEN_LONG, LEN_LLONG, LEN_SIZE, LEN_MAX };

static uintmax_t arg_unsigned(va_list *ap, enum length len)
{
    switch (len) {
    case LEN_LONG: return va_arg(*ap, unsigned long);
    case LEN_LLONG: return va_arg(*ap, unsigned long long);
    case LEN_SIZE: return va_arg(*ap, size_t);
    case LEN_MAX: return va_arg(*ap, uintmax_t);
    default: return va_arg(*ap, unsigned int);
    }
}

static intmax_t arg_signed(va_list *ap, enum length len)
{
    switch (len) {
    case LEN_LONG: return va_arg(*ap, long);
    case LEN_LLONG: return va_arg(*ap, long long);
    case LEN_SIZE: return (intmax_t)va_arg(*ap, size_t);
    case LEN_MAX: return va_arg(*ap, intmax_t);
    default: return va_arg(*ap, int);
    }
}

void fmt_vadd(struct fmt *f, const char *p, va_list ap_in)
{
    va_list ap;
    va_copy(ap, ap_in);
    for (; *p; p++) {
        if (*p != '%') {
            put(f, *p);
            continue;
        }
        enum length len = LEN_INT;
        int precision = -1;
        p++;
        if (p[0] == '.' && p[1] == '*') {
            precision = va_arg(ap, int);
            if (precision < 0)
                precision = -1;
            p += 2;
        }
        if (*p == 'l') {
            len = LEN_LONG;
            if (p[1] == 'l') {
                len = LEN_LLONG;
                p++;
            }
            p++;
        } else if (*p == 'z') {
            len = LEN_SIZE;
            p++;
        } else if (*p == 'j') {
            len = LEN_MAX;
            p++;
        }
        switch (*p) {
        case 's': put_str(f, va_arg(ap, const char *), precision); break;
        case 'c': put(f, (char)va_arg(ap, int)); break;
        case 'd':
        case 'i': {
            intmax_t v = arg_signed(&ap, len);
            if (v < 0) {
                put(f, '-');
                put_unsigned(f, (uintmax_t)0 - (uintmax_t)v, 10);
            } else {
                put_unsigned(f, (uintmax_t)v, 10);
            }
            break;
        }
        case 'u': put_unsigned(f, arg_unsigned(&ap, len), 10); break;
        case 'x': put_unsigned(f, arg_unsigned(&ap, len), 16); break;
        case 'p':
            put_str(f, "0x", -1);
            put_unsigned(f, (uintptr_t)va_arg(ap, void *), 16);
            break;
        case '%': put(f, '%'); break;
        case '\0': p--; break; /* a lone '%' at the end */
        default: put(f, '%'); put(f, *p); break;
        }
    }
    va_end(ap);
}

void fmt_add(struct fmt *f, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    fmt_vadd(f, format, ap);
    va_end(ap);
}
