#include "log.h"

#include "os.h"

static int current_level = LOG_WARN;
static unsigned printed[2];  /* warnings; level 1 */
static unsigned dropped[2];

void log_set_level(int level) { __atomic_store_n(&current_level, level, __ATOMIC_RELAXED); }

int log_level(void) { return __atomic_load_n(&current_level, __ATOMIC_RELAXED); }

void log_prefix(struct fmt *f)
{
    char host[65];
    os_hostname(host, sizeof host);
    fmt_add(f, "pyhuge [%s:%d]: ", host, os_getpid());
}

static const char *const level_names[] = {"WARNING: ", "", "", "trace: "};

__attribute__((format(printf, 2, 0))) static void write_line(const char *prefix, const char *format,
                                                          va_list ap)
{
    char buf[512];
    struct fmt f;
    fmt_init(&f, buf, sizeof buf - 1);
    log_prefix(&f);
    fmt_add(&f, "%s", prefix);
    fmt_vadd(&f, format, ap);
    buf[f.len++] = '\n';
    os_write_all(2, buf, f.len);
}

void log_msg(enum log_level level, const char *format, ...)
{
    if ((int)level > log_level())
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
    write_line(level_names[level], format, ap);
    va_end(ap);
}

void log_fatal(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    write_line(level_names[LOG_WARN], format, ap);
    va_end(ap);
}

void log_new_process(void)
{
    __atomic_store_n(&printed[0], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&printed[1], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&dropped[0], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&dropped[1], 0, __ATOMIC_RELAXED);
}

__attribute__((format(printf, 1, 2))) static void say_dropped(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    write_line("", format, ap);
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
