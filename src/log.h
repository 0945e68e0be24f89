/*
 * Messages to stderr, formatted on the stack and written with one write(2):
 * safe on any path, including inside an interposed mmap.
 *
 *   pyhuge [host:pid]: WARNING: PYHUGE_VERBOSE="x" is not a level 0..3; using 0
 *
 * Level 0 (warnings) always prints; higher levels print when PYHUGE_VERBOSE
 * is at least that level. So that a misbehaving environment cannot flood a
 * service's log, at most LOG_MAX_WARNINGS warnings and LOG_MAX_MESSAGES
 * messages of level 1 are printed, each level with a budget of its own (so
 * a chatty level never uses up the warnings'); levels 2 and 3 (every huge
 * page, every arena) are asked for by name and not capped.
 * log_flush_dropped says how many were left out.
 *
 * The shim says nothing in a process that is not CPython (sh, sed, a
 * compiler): warnings made before the process is known to be CPython are
 * kept in a static buffer (log_hold_warnings) and printed, or dropped
 * unseen, once it is known (log_release_warnings).
 */
#ifndef PYHUGE_LOG_H
#define PYHUGE_LOG_H

#include <stdbool.h>

#include "fmt.h"

enum log_level { LOG_WARN = 0, LOG_INFO = 1, LOG_DEBUG = 2, LOG_TRACE = 3 };

#define LOG_MAX_WARNINGS 32
#define LOG_MAX_MESSAGES 64

void log_set_level(int level);
void log_msg(enum log_level level, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* PYHUGE_VERBOSE's level: written by log_set_level only, read inline so
 * that a message below it costs a compare, not a call, on the arena paths. */
extern int log_current_level;

static inline bool log_on(enum log_level level)
{
    return (int)level <= __atomic_load_n(&log_current_level, __ATOMIC_RELAXED);
}

#define log_at(level, ...) (log_on(level) ? log_msg(level, __VA_ARGS__) : (void)0)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
#define log_trace(...) log_at(LOG_TRACE, __VA_ARGS__)

/* A warning the process stops after: never capped. */
void log_fatal(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* From now on warnings are kept, not printed (start-up, before the process
 * is known to be CPython). */
void log_hold_warnings(void);
/* True while warnings are kept and some are waiting. */
bool log_warnings_held(void);
/* Ends the holding: the kept warnings are printed (print) or dropped with
 * their dropped count, unseen. Later warnings print as they come. */
void log_release_warnings(bool print);

/* A forked child's own budgets: what its parent printed is not its own. */
void log_new_process(void);

/* One line saying how many messages the caps left out, if any (at exit). */
void log_flush_dropped(void);

/* The "pyhuge [host:pid]: " prefix, for other one-line reports. */
void log_prefix(struct fmt *f);

#endif
