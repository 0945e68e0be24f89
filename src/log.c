#include "log.h"

#include "os.h"

static int current_level = LOG_WARN;
static unsigned printed;

void log_set_level(int level) { __atomic_store_n(&current_level, level, __ATOMIC_RELAXED); }

int log_level(void) { return __atomic_load_n(&current_level, __ATOMIC_RELAXED); }

void log_prefix(struct fmt *f)
{
    char host[65];
    os_hostname(host, sizeof host);
    fmt_add(f, "pyhuge [%s:%d]: ", host, os_getpid());
}

static const char *const level_names[] = {"WARNING: ", "", "", "trace: "};

void log_msg(enum log_level level, const char *format, ...)
{
    if ((int)level > log_level())
        return;
    if (level < LOG_TRACE && __atomic_fetch_add(&printed, 1, __ATOMIC_RELAXED) >= LOG_MAX_MESSAGES)
        return;
    char buf[512];
    struct fmt f;
    fmt_init(&f, buf, sizeof buf - 1);
    log_prefix(&f);
    fmt_add(&f, "%s", level_names[level]);
    va_list ap;
    va_start(ap, format);
    fmt_vadd(&f, format, ap);
    va_end(ap);
    buf[f.len++] = '\n';
    os_write_all(2, buf, f.len);
}
