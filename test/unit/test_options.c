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

static const char *stderr_text(void)
{
    static char buf[2048];
    memset(buf, 0, sizeof buf);
    fread(buf, 1, sizeof buf - 1, cr_get_redirected_stderr());
    return buf;
}

Test(options, arm_label_is_kept)
{
    cr_expect_str_eq(parse((struct env){{0}, {0}}).arm, "", "unset by default");
    cr_expect_str_eq(parse((struct env){{"PYHUGE_ARM"}, {"treatment-2.a:x+y_Z"}}).arm,
                     "treatment-2.a:x+y_Z");
    char longest[PYHUGE_ARM_MAX];
    memset(longest, 'a', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    cr_expect_str_eq(parse((struct env){{"PYHUGE_ARM"}, {longest}}).arm, longest, "63 bytes fit");
    cr_expect_stderr_eq_str("");
}

Test(options, bad_arm_label_warns_and_stays_unset)
{
    char toolong[PYHUGE_ARM_MAX + 1];
    memset(toolong, 'a', sizeof toolong - 1);
    toolong[sizeof toolong - 1] = '\0';
    const char *bad[] = {toolong, "a b", "a\"b", "x\ny", "a\\b", "arm=1", "caf\xc3\xa9", "a}b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_str_eq(parse((struct env){{"PYHUGE_ARM"}, {bad[i]}}).arm, "", "refused: %s",
                         bad[i]);
    const char *s = stderr_text();
    int warnings = 0;
    for (const char *p = s; (p = strstr(p, "PYHUGE_ARM=")); p++)
        warnings++;
    cr_expect_eq(warnings, 8, "one warning each:\n%s", s);
    cr_expect(strstr(s, "x?y") != NULL, "a newline is shown as '?', never written: %s", s);
    cr_expect(strstr(s, "using unset") != NULL, "%s", s);
}

Test(options, metrics_directory)
{
    struct options o = parse((struct env){{0}, {0}});
    cr_expect_not(o.metrics, "off by default");
    cr_expect_eq(o.metrics_interval_s, OPTIONS_DEFAULT_METRICS_INTERVAL_S);
    o = parse((struct env){{"PYHUGE_METRICS", "PYHUGE_METRICS_INTERVAL"}, {"/var/lib/prom", "1"}});
    cr_expect(o.metrics);
    cr_expect_str_eq(o.metrics_dir, "/var/lib/prom");
    cr_expect_eq(o.metrics_interval_s, 1);
    cr_expect_not(parse((struct env){{"PYHUGE_METRICS"}, {"0"}}).metrics);
    cr_expect_stderr_eq_str("");
}

Test(options, relative_metrics_directory_and_bad_interval_are_refused)
{
    cr_expect_not(parse((struct env){{"PYHUGE_METRICS"}, {"prom"}}).metrics);
    cr_expect_eq(parse((struct env){{"PYHUGE_METRICS_INTERVAL"}, {"0"}}).metrics_interval_s,
                 OPTIONS_DEFAULT_METRICS_INTERVAL_S, "0 s would rewrite the file on every arena");
    cr_expect_eq(parse((struct env){{"PYHUGE_METRICS_INTERVAL"}, {"3601"}}).metrics_interval_s,
                 OPTIONS_DEFAULT_METRICS_INTERVAL_S);
    const char *s = stderr_text();
    cr_expect(strstr(s, "PYHUGE_METRICS=\"prom\" is not 0 or an absolute directory path") != NULL,
              "%s", s);
    cr_expect(strstr(s, "PYHUGE_METRICS_INTERVAL=\"0\" is not seconds 1..3600; using 5") != NULL,
              "%s", s);
}

/* The warnings the per-variable parsers gave, word for word. */
Test(options, warnings_read_as_before)
{
    parse((struct env){{"PYHUGE_VERBOSE", "PYHUGE_CACHE_PAGES", "PYHUGE_THP_STALL_US",
                        "PYHUGE_MAX_PAGES", "PYHUGE_FORK", "PYHUGE_BACKEND", "PYHUGE_MALLOC",
                        "PYHUGE_STATS"},
                       {"x", "65", "5ms", "-5", "yolo", "1g", "jemalloc", "rel"}});
    const char *s = stderr_text();
    const char *want[] = {
        "PYHUGE_VERBOSE=\"x\" is not a level 0..3; using 0",
        "PYHUGE_CACHE_PAGES=\"65\" is not a count 0..64; using 1",
        "PYHUGE_THP_STALL_US=\"5ms\" is not microseconds 0..10000000; using 10000",
        "PYHUGE_MAX_PAGES=\"-5\" is not a page count; using no cap",
        "PYHUGE_FORK=\"yolo\" is not copy, share or huge; using copy",
        "PYHUGE_BACKEND=\"1g\" is not auto, hugetlb, thp or off; using auto",
        "PYHUGE_MALLOC=\"jemalloc\" is not tune or off; using tune",
        "PYHUGE_STATS=\"rel\" is not 1, 0 or an absolute file path; using 0",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_expect(strstr(s, want[i]) != NULL, "missing: %s\ngot:\n%s", want[i], s);
}

Test(options, a_long_hostile_value_is_cut_and_made_printable)
{
    char v[400];
    memset(v, 'z', sizeof v - 1);
    v[sizeof v - 1] = '\0';
    v[3] = '\033';
    parse((struct env){{"PYHUGE_FORK"}, {v}});
    const char *s = stderr_text();
    cr_expect(strstr(s, "zzz?zzz") != NULL, "%s", s);
    cr_expect(strstr(s, "...\" is not copy, share or huge") != NULL, "cut: %s", s);
    cr_expect(strchr(s, '\033') == NULL);
}
