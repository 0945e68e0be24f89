#include "options.h"

#include <string.h>
#include <strings.h>

#include "log.h"

static bool word_is(const char *v, const char *const *words)
{
    for (; *words; words++)
        if (strcasecmp(v, *words) == 0)
            return true;
    return false;
}

static const char *const yes_words[] = {"1", "on", "yes", "true", NULL};
static const char *const no_words[] = {"0", "off", "no", "false", NULL};

/* Parses a decimal number in [0, max]; false on anything else. */
static bool parse_u64(const char *v, uint64_t max, uint64_t *out)
{
    uint64_t n = 0;
    if (!*v)
        return false;
    for (; *v; v++) {
        if (*v < '0' || *v > '9')
            return false;
        unsigned d = (unsigned)(*v - '0');
        if (d > max || n > (max - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

static void parse_enabled(struct options *o, const char *v)
{
    if (!v || !*v || word_is(v, yes_words))
        return;
    if (word_is(v, no_words)) {
        o->enabled = false;
        return;
    }
    log_warn("PYHUGE=\"%s\" is not 1|on or 0|off; using on", v);
}

static void parse_verbose(struct options *o, const char *v)
{
    uint64_t n;
    if (!v || !*v)
        return;
    if (!parse_u64(v, 3, &n)) {
        log_warn("PYHUGE_VERBOSE=\"%s\" is not a level 0..3; using %d", v, o->verbose);
        return;
    }
    o->verbose = (int)n;
}

static void parse_stats(struct options *o, const char *v)
{
    if (!v || !*v || word_is(v, no_words))
        return;
    if (word_is(v, yes_words) || strcasecmp(v, "stderr") == 0) {
        o->stats = STATS_STDERR;
        return;
    }
    if (v[0] != '/') {
        log_warn("PYHUGE_STATS=\"%s\" is not 1, 0 or an absolute file path; using 0", v);
        return;
    }
    size_t n = strlen(v);
    if (n >= sizeof o->stats_path) {
        log_warn("PYHUGE_STATS path is longer than %zu bytes; using 0", sizeof o->stats_path - 1);
        return;
    }
    memcpy(o->stats_path, v, n + 1);
    o->stats = STATS_FILE;
}

static void parse_max_pages(struct options *o, const char *v)
{
    uint64_t n;
    if (!v || !*v)
        return;
    if (!parse_u64(v, UINT64_MAX - 1, &n)) {
        log_warn("PYHUGE_MAX_PAGES=\"%s\" is not a page count; using no cap", v);
        return;
    }
    o->max_pages = n;
}

static void parse_cache_pages(struct options *o, const char *v)
{
    uint64_t n;
    if (!v || !*v)
        return;
    if (!parse_u64(v, OPTIONS_CACHE_MAX, &n)) {
        log_warn("PYHUGE_CACHE_PAGES=\"%s\" is not a count 0..%d; using %u", v, OPTIONS_CACHE_MAX,
                 o->cache_pages);
        return;
    }
    o->cache_pages = (unsigned)n;
}

static void parse_fork(struct options *o, const char *v)
{
    if (!v || !*v || strcasecmp(v, "copy") == 0)
        return;
    if (strcasecmp(v, "share") == 0) {
        o->fork = FORK_SHARE;
        return;
    }
    if (strcasecmp(v, "huge") == 0) {
        o->fork = FORK_HUGE;
        return;
    }
    log_warn("PYHUGE_FORK=\"%s\" is not copy, share or huge; using copy", v);
}

static void parse_backend(struct options *o, const char *v)
{
    if (!v || !*v || strcasecmp(v, "auto") == 0)
        return;
    if (strcasecmp(v, "hugetlb") == 0)
        o->backend = BACKEND_HUGETLB;
    else if (strcasecmp(v, "thp") == 0)
        o->backend = BACKEND_THP;
    else if (strcasecmp(v, "off") == 0)
        o->enabled = false;
    else
        log_warn("PYHUGE_BACKEND=\"%s\" is not auto, hugetlb, thp or off; using auto", v);
}

static void parse_thp_stall(struct options *o, const char *v)
{
    uint64_t n;
    if (!v || !*v)
        return;
    if (!parse_u64(v, OPTIONS_THP_STALL_MAX_US, &n)) {
        log_warn("PYHUGE_THP_STALL_US=\"%s\" is not microseconds 0..%d; using %u", v,
                 OPTIONS_THP_STALL_MAX_US, (unsigned)o->thp_stall_us);
        return;
    }
    o->thp_stall_us = n;
}

static void parse_malloc(struct options *o, const char *v)
{
    if (!v || !*v || strcasecmp(v, "tune") == 0)
        return;
    if (strcasecmp(v, "off") == 0 || word_is(v, no_words)) {
        o->malloc_tune = false;
        return;
    }
    log_warn("PYHUGE_MALLOC=\"%s\" is not tune or off; using tune", v);
}

struct variable {
    const char *name;
    void (*parse)(struct options *, const char *);
};

/* PYHUGE_VERBOSE first, so that it governs the messages about the others. */
static const struct variable variables[] = {
    {"PYHUGE_VERBOSE", parse_verbose},
    {"PYHUGE", parse_enabled},
    {"PYHUGE_STATS", parse_stats},
    {"PYHUGE_MAX_PAGES", parse_max_pages},
    {"PYHUGE_CACHE_PAGES", parse_cache_pages},
    {"PYHUGE_FORK", parse_fork},
    {"PYHUGE_BACKEND", parse_backend},
    {"PYHUGE_THP_STALL_US", parse_thp_stall},
    {"PYHUGE_MALLOC", parse_malloc},
};

#define NVARIABLES (sizeof variables / sizeof variables[0])

/* Read by pyhuge's tools, not by the library: not misspellings. */
static const char *const tool_variables[] = {"PYHUGE_LIB", "PYHUGE_DEMO_PAGES"};

static void warn_unknown(char *const *env)
{
    for (; env && *env; env++) {
        const char *e = *env;
        if (strncmp(e, "PYHUGE", 6) != 0)
            continue;
        size_t len = strcspn(e, "=");
        bool known = false;
        for (size_t i = 0; i < NVARIABLES && !known; i++)
            known = strlen(variables[i].name) == len && strncmp(variables[i].name, e, len) == 0;
        for (size_t i = 0; i < sizeof tool_variables / sizeof *tool_variables && !known; i++)
            known = strlen(tool_variables[i]) == len && strncmp(tool_variables[i], e, len) == 0;
        if (!known)
            log_warn("%.*s is not a pyhuge variable (misspelt?); ignored", (int)len, e);
    }
}

void options_parse(struct options *o, options_lookup_fn lookup, void *ctx, char *const *env)
{
    *o = (struct options){
        .enabled = true,
        .verbose = 0,
        .stats = STATS_NONE,
        .max_pages = OPTIONS_NO_CAP,
        .cache_pages = OPTIONS_DEFAULT_CACHE_PAGES,
        .fork = FORK_COPY,
        .backend = BACKEND_AUTO,
        .thp_stall_us = OPTIONS_DEFAULT_THP_STALL_US,
        .malloc_tune = true,
    };
    for (size_t i = 0; i < NVARIABLES; i++) {
        variables[i].parse(o, lookup(variables[i].name, ctx));
        if (variables[i].parse == parse_verbose)
            log_set_level(o->verbose);
    }
    warn_unknown(env);
}
