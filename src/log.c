/*
 * Messages to stderr without allocating (log.h): one stack buffer and one
 * write(2) per line, budgets per level, and the warnings held back until
 * the process is known to be CPython.
 */
#include "log.h"

#include <string.h>

#include "os.h"

int log_current_level = LOG_WARN;
static unsigned printed[2];  /* warnings; level 1 */
static unsigned dropped[2];

void log_set_level(int level) { __atomic_store_n(&log_current_level, level, __ATOMIC_RELAXED); }

void log_prefix(struct fmt *f)
{
    char host[65];
    os_hostname(host, sizeof host);
    fmt_add(f, "pyhuge [%s:%d]: ", host, os_getpid());
}

/* Warnings kept until the process is known to be CPython: room for every
 * warning the budget lets through, at the most a line can take. */
#define HELD_MAX (LOG_MAX_WARNINGS * 512)
static char held[HELD_MAX];
static size_t held_len;
static int holding;   /* atomic */
static int held_lock; /* atomic; a try-lock: a signal handler never waits */

static void held_take(void)
{
    while (__atomic_exchange_n(&held_lock, 1, __ATOMIC_ACQUIRE))
        ;
}

static void held_give(void) { __atomic_store_n(&held_lock, 0, __ATOMIC_RELEASE); }

/* True when the line was kept (or lost to a busy buffer) instead of printed. */
static bool keep(const char *line, size_t len)
{
    if (!__atomic_load_n(&holding, __ATOMIC_ACQUIRE))
        return false;
    if (__atomic_exchange_n(&held_lock, 1, __ATOMIC_ACQUIRE)) {
        __atomic_fetch_add(&dropped[0], 1, __ATOMIC_RELAXED);
        return true;
    }
    bool kept = __atomic_load_n(&holding, __ATOMIC_RELAXED);
    if (kept && held_len + len <= sizeof held) {
        memcpy(held + held_len, line, len);
        held_len += len;
    } else if (kept) {
        __atomic_fetch_add(&dropped[0], 1, __ATOMIC_RELAXED);
    }
    held_give();
    return kept;
}

void log_hold_warnings(void) { __atomic_store_n(&holding, 1, __ATOMIC_RELEASE); }

bool log_warnings_held(void)
{
    return __atomic_load_n(&holding, __ATOMIC_ACQUIRE) &&
           (__atomic_load_n(&held_len, __ATOMIC_RELAXED) ||
            __atomic_load_n(&dropped[0], __ATOMIC_RELAXED));
}

void log_release_warnings(bool print)
{
    if (!__atomic_load_n(&holding, __ATOMIC_ACQUIRE))
        return;
    held_take();
    __atomic_store_n(&holding, 0, __ATOMIC_RELEASE);
    if (print)
        os_write_all(2, held, held_len);
    else
        __atomic_store_n(&dropped[0], 0, __ATOMIC_RELAXED);
    held_len = 0;
    held_give();
}

static const char *const level_names[] = {"WARNING: ", "", "", "trace: "};

__attribute__((format(printf, 3, 0))) static void write_line(bool may_keep, const char *prefix,
                                                          const char *format, va_list ap)
{
    char buf[512];
    struct fmt f;
    fmt_init(&f, buf, sizeof buf - 1);
    log_prefix(&f);
    fmt_add(&f, "%s", prefix);
    fmt_vadd(&f, format, ap);
    buf[f.len++] = '\n';
    if (may_keep && keep(buf, f.len))
        return;
    os_write_all(2, buf, f.len);
}

void log_msg(enum log_level level, const char *format, ...)
{
    if (!log_on(level))
        return;
    if (level <= LOG_INFO) {
        unsigned k = level == LOG_WARN ? 0 : 1;
        unsigned cap = level == LOG_WARN ? LOG_MAX_WARNINGS : LOG_MAX_MESSAGES;
        if (__atomic_fetch_add(&printed[k], 1, __ATOMIC_RELAXED) >= cap) {
            __atomic_fetch_add(&dropped[k], 1, __ATOMIC_RELAXED);
            return;
        }
    }
    va_list ap;
    va_start(ap, format);
    write_line(level == LOG_WARN, level_names[level], format, ap);
    va_end(ap);
}

void log_fatal(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    write_line(false, level_names[LOG_WARN], format, ap);
    va_end(ap);
}

void log_new_process(void)
{
    /* The parent's kept warnings are the parent's to print. */
    held_take();
    held_len = 0;
    held_give();
    __atomic_store_n(&printed[0], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&printed[1], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&dropped[0], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&dropped[1], 0, __ATOMIC_RELAXED);
}

__attribute__((format(printf, 1, 2))) static void say_dropped(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    write_line(false, "", format, ap);
    va_end(ap);
}

void log_flush_dropped(void)
{
    unsigned w = __atomic_exchange_n(&dropped[0], 0, __ATOMIC_RELAXED);
    unsigned m = __atomic_exchange_n(&dropped[1], 0, __ATOMIC_RELAXED);
    if (w || m)
        say_dropped("%u warnings and %u other messages were not printed (at most %d warnings "
                    "and %d other messages per process)",
                    w, m, LOG_MAX_WARNINGS, LOG_MAX_MESSAGES);
}
