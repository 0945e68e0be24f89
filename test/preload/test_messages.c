/*
 * What the shim says, and that it never says too much: warnings have a
 * budget of their own that chatty levels cannot use up, a line counts what
 * the caps left out, and a process that is not a CPython the shim can serve
 * is told what it is.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define PRELOAD PYHUGE_PRELOAD
#define PYTHON27 "/root/.pyenv/versions/2.7.18/bin/python2.7"

static struct run r;

/* 100 arenas of 2 MiB at PYHUGE_VERBOSE=2: a message per page, every one
 * of them (asked for), and the warning at exit about the stats file. */
Test(messages, warnings_outlast_a_chatty_verbose_level)
{
    char *argv[204] = {ARENAS_BIN};
    int n = 1;
    for (int i = 0; i < 100; i++) {
        argv[n++] = "alloc";
        argv[n++] = "2097152";
    }
    argv[n] = NULL;
    char *env[] = {PRELOAD, "PYHUGE_BACKEND=thp", "PYHUGE_VERBOSE=2", "PYHUGE_THP_STALL_US=0",
                   "PYHUGE_STATS=/nonexistent-dir/stats.log", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "cannot open PYHUGE_STATS file /nonexistent-dir/stats.log") != NULL,
              "the warning is printed:\n%s", r.err);
    cr_expect(strstr(r.err, "stats: arenas") != NULL, "the stats go to stderr instead");
    int pages = 0;
    for (const char *p = r.err; (p = strstr(p, "THP page ")); p++)
        pages++;
    cr_expect_eq(pages, 100, "a line per page at level 2:\n%s", r.err);
}

/* A flood of warnings (40 misspelt variables) is capped, and one line says
 * how many were left out. */
Test(messages, a_flood_of_warnings_is_capped_and_counted)
{
    static char names[40][32];
    char *env[44] = {PRELOAD};
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "PYHUGE_TYPO%d=1", i);
        env[i + 1] = names[i];
    }
    env[41] = NULL;
    char *argv[] = {ARENAS_BIN, "alloc", "1048576", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s", r.err);
    int warnings = 0;
    for (const char *p = r.err; (p = strstr(p, "is not a pyhuge variable")); p++)
        warnings++;
    cr_expect_eq(warnings, 32, "the first 32:\n%s", r.err);
    cr_expect(strstr(r.err, "8 warnings and 0 other messages were not printed") != NULL, "%s",
              r.err);
}

Test(messages, python_2_is_told_what_it_is)
{
    if (access(PYTHON27, X_OK) != 0)
        cr_skip_test("no %s on this machine", PYTHON27);
    char *argv[] = {PYTHON27, "-c", "x = [str(i) for i in range(100000)]", NULL};
    char *env[] = {PRELOAD, "PYHUGE_VERBOSE=1", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "Python 2.7.18 in ") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "no arena allocator to recognise") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "no CPython in this process") == NULL, "%s", r.err);
}

Test(messages, a_program_without_python_is_told_so)
{
    char *argv[] = {"/bin/true", NULL};
    char *env[] = {PRELOAD, "PYHUGE_VERBOSE=1", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "nothing was done: no CPython in this process") != NULL, "%s", r.err);
}
