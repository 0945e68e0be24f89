/* PYHUGE_* parsing: defaults, good values, and one clear warning per bad one. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "log.h"
#include "options.h"

struct env {
    const char *names[8];
    const char *values[8];
};

static const char *lookup(const char *name, void *ctx)
{
    const struct env *e = ctx;
    for (int i = 0; i < 8 && e->names[i]; i++)
        if (strcmp(e->names[i], name) == 0)
            return e->values[i];
    return NULL;
}

static struct options parse(struct env e)
{
    struct options o;
    log_set_level(0);
    options_parse(&o, lookup, &e, NULL);
    fflush(stderr);
    return o;
}

static void capture(void) { cr_redirect_stderr(); }

TestSuite(options, .init = capture);

Test(options, defaults_when_nothing_is_set)
{
    struct options o = parse((struct env){{0}, {0}});
    cr_expect(o.enabled);
    cr_expect_eq(o.verbose, 0);
    cr_expect_eq(o.stats, STATS_NONE);
    cr_expect_eq(o.max_pages, OPTIONS_NO_CAP);
    cr_expect_eq(o.cache_pages, OPTIONS_DEFAULT_CACHE_PAGES);
    cr_expect_stderr_eq_str("");
}

Test(options, pyhuge_off_and_on_words)
{
    cr_expect_not(parse((struct env){{"PYHUGE"}, {"0"}}).enabled);
    cr_expect_not(parse((struct env){{"PYHUGE"}, {"off"}}).enabled);
    cr_expect_not(parse((struct env){{"PYHUGE"}, {"OFF"}}).enabled);
    cr_expect(parse((struct env){{"PYHUGE"}, {"on"}}).enabled);
    cr_expect(parse((struct env){{"PYHUGE"}, {"1"}}).enabled);
    cr_expect_stderr_eq_str("");
}

Test(options, bad_switch_warns_and_stays_on)
{
    cr_expect(parse((struct env){{"PYHUGE"}, {"maybe"}}).enabled);
    cr_expect_stderr_neq_str("");
}

Test(options, bad_switch_message_names_variable_and_default)
{
    parse((struct env){{"PYHUGE"}, {"maybe"}});
    char buf[512] = {0};
    FILE *f = cr_get_redirected_stderr();
    fread(buf, 1, sizeof buf - 1, f);
    cr_expect(strstr(buf, "WARNING: PYHUGE=\"maybe\"") != NULL, "got: %s", buf);
    cr_expect(strstr(buf, "using on") != NULL, "got: %s", buf);
}

Test(options, stats_destinations)
{
    cr_expect_eq(parse((struct env){{"PYHUGE_STATS"}, {"1"}}).stats, STATS_STDERR);
    cr_expect_eq(parse((struct env){{"PYHUGE_STATS"}, {"stderr"}}).stats, STATS_STDERR);
    cr_expect_eq(parse((struct env){{"PYHUGE_STATS"}, {"0"}}).stats, STATS_NONE);
    struct options o = parse((struct env){{"PYHUGE_STATS"}, {"/tmp/pyhuge.log"}});
    cr_expect_eq(o.stats, STATS_FILE);
    cr_expect_str_eq(o.stats_path, "/tmp/pyhuge.log");
    cr_expect_stderr_eq_str("");
}

Test(options, relative_stats_path_is_refused)
{
    cr_expect_eq(parse((struct env){{"PYHUGE_STATS"}, {"stats.log"}}).stats, STATS_NONE);
    cr_expect_stderr_neq_str("");
}

Test(options, overlong_stats_path_is_refused)
{
    char path[OPTIONS_PATH_MAX + 10];
    memset(path, 'a', sizeof path);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    cr_expect_eq(parse((struct env){{"PYHUGE_STATS"}, {path}}).stats, STATS_NONE);
    cr_expect_stderr_neq_str("");
}

Test(options, verbose_levels)
{
    cr_expect_eq(parse((struct env){{"PYHUGE_VERBOSE"}, {"3"}}).verbose, 3);
    cr_expect_eq(parse((struct env){{"PYHUGE_VERBOSE"}, {"0"}}).verbose, 0);
    cr_expect_stderr_eq_str("");
}

Test(options, verbose_out_of_range_keeps_default)
{
    cr_expect_eq(parse((struct env){{"PYHUGE_VERBOSE"}, {"4"}}).verbose, 0);
    cr_expect_eq(parse((struct env){{"PYHUGE_VERBOSE"}, {"-1"}}).verbose, 0);
    cr_expect_stderr_neq_str("");
}

Test(options, max_pages_numbers_and_garbage)
{
    cr_expect_eq(parse((struct env){{"PYHUGE_MAX_PAGES"}, {"0"}}).max_pages, 0);
    cr_expect_eq(parse((struct env){{"PYHUGE_MAX_PAGES"}, {"512"}}).max_pages, 512);
    cr_expect_eq(parse((struct env){{"PYHUGE_MAX_PAGES"}, {"12abc"}}).max_pages, OPTIONS_NO_CAP);
    cr_expect_eq(parse((struct env){{"PYHUGE_MAX_PAGES"}, {"99999999999999999999999"}}).max_pages,
                 OPTIONS_NO_CAP, "overflow is refused, not wrapped");
    cr_expect_eq(parse((struct env){{"PYHUGE_MAX_PAGES"}, {"-5"}}).max_pages, OPTIONS_NO_CAP);
}

Test(options, cache_pages_bounded)
{
    cr_expect_eq(parse((struct env){{"PYHUGE_CACHE_PAGES"}, {"0"}}).cache_pages, 0);
    cr_expect_eq(parse((struct env){{"PYHUGE_CACHE_PAGES"}, {"64"}}).cache_pages, 64);
    cr_expect_eq(parse((struct env){{"PYHUGE_CACHE_PAGES"}, {"65"}}).cache_pages,
                 OPTIONS_DEFAULT_CACHE_PAGES);
}

Test(options, thp_stall_limit_in_microseconds)
{
    cr_expect_eq(parse((struct env){{0}, {0}}).thp_stall_us, OPTIONS_DEFAULT_THP_STALL_US);
    cr_expect_eq(parse((struct env){{"PYHUGE_THP_STALL_US"}, {"0"}}).thp_stall_us, 0, "0: never pause");
    cr_expect_eq(parse((struct env){{"PYHUGE_THP_STALL_US"}, {"2500"}}).thp_stall_us, 2500);
    cr_expect_eq(parse((struct env){{"PYHUGE_THP_STALL_US"}, {"10000001"}}).thp_stall_us,
                 OPTIONS_DEFAULT_THP_STALL_US, "over 10 s is refused");
    cr_expect_eq(parse((struct env){{"PYHUGE_THP_STALL_US"}, {"5ms"}}).thp_stall_us,
                 OPTIONS_DEFAULT_THP_STALL_US);
}

Test(options, misspelt_variable_is_named)
{
    struct options o;
    char *env[] = {"PATH=/bin", "PYHUGE_VERBSE=2", "PYHUGE_STATS=1", "PYHUGE_LIB=/x.so", NULL};
    struct env e = {{0}, {0}};
    options_parse(&o, lookup, &e, env);
    fflush(stderr);
    char buf[512] = {0};
    fread(buf, 1, sizeof buf - 1, cr_get_redirected_stderr());
    cr_expect(strstr(buf, "PYHUGE_VERBSE is not a pyhuge variable") != NULL, "got: %s", buf);
    cr_expect(strstr(buf, "PYHUGE_STATS is not") == NULL, "got: %s", buf);
    cr_expect(strstr(buf, "PYHUGE_LIB") == NULL, "the tools' own variable: %s", buf);
}

Test(options, fork_modes)
{
    cr_expect_eq(parse((struct env){{0}, {0}}).fork, FORK_COPY, "safe by default");
    cr_expect_eq(parse((struct env){{"PYHUGE_FORK"}, {"share"}}).fork, FORK_SHARE);
    cr_expect_eq(parse((struct env){{"PYHUGE_FORK"}, {"COPY"}}).fork, FORK_COPY);
    cr_expect_eq(parse((struct env){{"PYHUGE_FORK"}, {"huge"}}).fork, FORK_HUGE);
    cr_expect_stderr_eq_str("");
}

Test(options, unknown_fork_mode_stays_safe)
{
    cr_expect_eq(parse((struct env){{"PYHUGE_FORK"}, {"yolo"}}).fork, FORK_COPY);
    cr_expect_stderr_neq_str("");
}

Test(options, backends)
{
    cr_expect_eq(parse((struct env){{0}, {0}}).backend, BACKEND_AUTO);
    cr_expect_eq(parse((struct env){{"PYHUGE_BACKEND"}, {"thp"}}).backend, BACKEND_THP);
    cr_expect_eq(parse((struct env){{"PYHUGE_BACKEND"}, {"hugetlb"}}).backend, BACKEND_HUGETLB);
    cr_expect_not(parse((struct env){{"PYHUGE_BACKEND"}, {"off"}}).enabled, "off is pass-through");
    cr_expect_stderr_eq_str("");
}

Test(options, unknown_backend_is_auto)
{
    cr_expect_eq(parse((struct env){{"PYHUGE_BACKEND"}, {"1g"}}).backend, BACKEND_AUTO);
    cr_expect_stderr_neq_str("");
}

Test(options, malloc_tuning_on_unless_turned_off)
{
    cr_expect(parse((struct env){{0}, {0}}).malloc_tune, "tuned by default");
    cr_expect(parse((struct env){{"PYHUGE_MALLOC"}, {"TUNE"}}).malloc_tune);
    cr_expect_not(parse((struct env){{"PYHUGE_MALLOC"}, {"off"}}).malloc_tune);
    cr_expect_not(parse((struct env){{"PYHUGE_MALLOC"}, {"0"}}).malloc_tune);
    cr_expect_stderr_eq_str("");
}

Test(options, unknown_malloc_word_warns_and_tunes)
{
    cr_expect(parse((struct env){{"PYHUGE_MALLOC"}, {"jemalloc"}}).malloc_tune);
    cr_expect_stderr_neq_str("");
}
