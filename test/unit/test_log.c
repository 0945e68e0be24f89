/* The message budgets: a forked child gets its own, and the line a process
 * stops after is never left out. Messages go to stderr, read back through
 * a pipe. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int saved_stderr = -1, rd = -1;
static char got[1 << 16];

static void capture(void)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_NONBLOCK), 0);
    fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    saved_stderr = dup(2);
    dup2(p[1], 2);
    close(p[1]);
    rd = p[0];
}

static const char *captured(void)
{
    dup2(saved_stderr, 2);
    ssize_t n = read(rd, got, sizeof got - 1);
    got[n > 0 ? n : 0] = '\0';
    close(rd);
    return got;
}

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

/* A parent that used up its warnings: its child's warnings, and above all
 * the one a child stops after, still print. */
Test(log, a_child_has_its_own_budget_and_a_fatal_line_always_prints)
{
    capture();
    for (int i = 0; i < LOG_MAX_WARNINGS + 8; i++)
        log_warn("parent warning");
    log_fatal("first fatal");
    log_new_process();
    log_warn("child warning");
    log_flush_dropped();
    const char *s = captured();
    cr_expect_eq(count(s, "parent warning"), LOG_MAX_WARNINGS, "%s", s);
    cr_expect_eq(count(s, "first fatal"), 1, "a fatal line past the cap prints");
    cr_expect_eq(count(s, "child warning"), 1, "the child's own budget");
    cr_expect_eq(count(s, "not printed"), 0, "the parent's dropped count is not the child's: %s", s);
}

/* Before the process is known to be CPython, warnings wait: printed in
 * order once it is, never in a process that is not. Asked-for messages
 * and a fatal line never wait. */
Test(log, held_warnings_print_on_release_and_vanish_otherwise)
{
    capture();
    log_set_level(LOG_INFO);
    log_hold_warnings();
    cr_expect_not(log_warnings_held(), "nothing held yet");
    log_warn("first held");
    log_info("asked for");
    log_fatal("fatal now");
    log_warn("second held");
    cr_expect(log_warnings_held());
    log_release_warnings(true);
    log_warn("after release");
    const char *s = captured();
    const char *a = strstr(s, "asked for"), *f = strstr(s, "fatal now");
    const char *h1 = strstr(s, "first held"), *h2 = strstr(s, "second held");
    const char *after = strstr(s, "after release");
    cr_assert(a && f && h1 && h2 && after, "%s", s);
    cr_expect(a < h1 && f < h1, "held until released: %s", s);
    cr_expect(h1 < h2 && h2 < after, "in order: %s", s);
    log_set_level(LOG_WARN);
}

Test(log, held_warnings_of_a_process_that_is_not_cpython_are_never_seen)
{
    capture();
    log_hold_warnings();
    for (int i = 0; i < LOG_MAX_WARNINGS + 5; i++)
        log_warn("never seen");
    log_release_warnings(false);
    log_flush_dropped();
    const char *s = captured();
    cr_expect_str_eq(s, "", "not a word, not even how many were dropped");
}
