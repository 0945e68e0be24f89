/*
 * The PYHUGE_* variables: one descriptor per variable (what it sets, which
 * values it takes, its default, what it is for) and one parser for all of
 * them. Adding a variable is adding a row to `variables`.
 */
#include "options.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "fmt.h"
#include "log.h"

enum kind {
    KIND_NUMBER, /* decimal in [min, max] */
    KIND_WORDS,  /* one of words (case-insensitive) */
    KIND_PATH,   /* one of words, else an absolute path: path_value, path copied */
    KIND_LABEL,  /* options_label_ok, copied into the field */
};

/* A word and the value it sets; TURNS_OFF switches the shim off instead. */
struct word {
    const char *word;
    int value;
};
#define TURNS_OFF (-1)

struct variable {
    const char *name;
    enum kind kind;
    size_t offset, size; /* the field it sets */
    uint64_t min, max;   /* KIND_NUMBER */
    const struct word *words;
    int path_value;              /* KIND_PATH: the field's value for a path */
    size_t path_offset, path_size;
    uint64_t dflt;               /* the field's value when unset or bad */
    const char *expect;          /* what a good value is, for the warning */
    const char *dflt_text;       /* the default as the warning names it; NULL: dflt */
    const char *help;
};

#define FIELD(f) offsetof(struct options, f), sizeof(((struct options *)0)->f)
#define PATH_FIELD(f) .path_offset = offsetof(struct options, f), \
                      .path_size = sizeof(((struct options *)0)->f)
#define NO_MAX (UINT64_MAX - 1)

static const struct word switch_words[] = {
    {"1", 1}, {"on", 1}, {"yes", 1}, {"true", 1}, {"0", 0}, {"off", 0}, {"no", 0}, {"false", 0},
    {NULL, 0}};
static const struct word stats_words[] = {
    {"0", STATS_NONE},     {"off", STATS_NONE},   {"no", STATS_NONE},  {"false", STATS_NONE},
    {"1", STATS_STDERR},   {"on", STATS_STDERR},  {"yes", STATS_STDERR}, {"true", STATS_STDERR},
    {"stderr", STATS_STDERR}, {NULL, 0}};
static const struct word metrics_words[] = {
    {"0", 0}, {"off", 0}, {"no", 0}, {"false", 0}, {NULL, 0}};
static const struct word fork_words[] = {
    {"copy", FORK_COPY}, {"share", FORK_SHARE}, {"huge", FORK_HUGE}, {NULL, 0}};
static const struct word backend_words[] = {{"auto", BACKEND_AUTO}, {"hugetlb", BACKEND_HUGETLB},
                                            {"thp", BACKEND_THP},   {"off", TURNS_OFF},
                                            {NULL, 0}};
static const struct word malloc_words[] = {{"tune", 1}, {"off", 0}, {"0", 0},
                                           {"no", 0},   {"false", 0}, {NULL, 0}};

/* PYHUGE_VERBOSE first, so that it governs the messages about the others. */
static const struct variable variables[] = {
    {.name = "PYHUGE_VERBOSE", .kind = KIND_NUMBER, FIELD(verbose), .max = 3, .dflt = 0,
     .expect = "a level", .help = "messages: 0 warnings, 1 what was done, 2 every page, 3 every arena"},
    {.name = "PYHUGE", .kind = KIND_WORDS, FIELD(enabled), .words = switch_words, .dflt = 1,
     .expect = "1|on or 0|off", .dflt_text = "on",
     .help = "switches the shim on (default) or off; off passes every call through"},
    {.name = "PYHUGE_STATS", .kind = KIND_PATH, FIELD(stats), .words = stats_words,
     .path_value = STATS_FILE, PATH_FIELD(stats_path), .dflt = STATS_NONE,
     .expect = "1, 0 or an absolute file path", .dflt_text = "0",
     .help = "the counters at exit: 1 (stderr), or appended to an absolute file path"},
    {.name = "PYHUGE_MAX_PAGES", .kind = KIND_NUMBER, FIELD(max_pages), .max = NO_MAX,
     .dflt = OPTIONS_NO_CAP, .expect = "a page count", .dflt_text = "no cap",
     .help = "the most 2 MiB huge pages this process takes from the pool"},
    {.name = "PYHUGE_CACHE_PAGES", .kind = KIND_NUMBER, FIELD(cache_pages),
     .max = OPTIONS_CACHE_MAX, .dflt = OPTIONS_DEFAULT_CACHE_PAGES, .expect = "a count",
     .help = "empty huge pages kept for reuse instead of given back to the pool"},
    {.name = "PYHUGE_FORK", .kind = KIND_WORDS, FIELD(fork), .words = fork_words,
     .dflt = FORK_COPY, .expect = "copy, share or huge", .dflt_text = "copy",
     .help = "copy: a forked child owns its memory before fork returns; share: copy-on-write; "
             "huge: as copy, then the child copies what it inherits onto huge pages of its own"},
    {.name = "PYHUGE_BACKEND", .kind = KIND_WORDS, FIELD(backend), .words = backend_words,
     .dflt = BACKEND_AUTO, .expect = "auto, hugetlb, thp or off", .dflt_text = "auto",
     .help = "where arenas go: hugetlb pages, then THP (auto); one of them; or off"},
    {.name = "PYHUGE_THP_STALL_US", .kind = KIND_NUMBER, FIELD(thp_stall_us),
     .max = OPTIONS_THP_STALL_MAX_US, .dflt = OPTIONS_DEFAULT_THP_STALL_US,
     .expect = "microseconds", .help = "a slower THP fault pauses the THP tier; 0: never"},
    {.name = "PYHUGE_MALLOC", .kind = KIND_WORDS, FIELD(malloc_tune), .words = malloc_words,
     .dflt = 1, .expect = "tune or off", .dflt_text = "tune",
     .help = "tune glibc malloc's heap in CPython processes (heap.h), or leave it"},
    {.name = "PYHUGE_ARM", .kind = KIND_LABEL, FIELD(arm), .expect = "a label",
     .dflt_text = "unset", .help = "the experiment arm: in the exit line, the stats page, the metrics"},
    {.name = "PYHUGE_METRICS", .kind = KIND_PATH, FIELD(metrics), .words = metrics_words,
     .path_value = 1, PATH_FIELD(metrics_dir), .dflt = 0,
     .expect = "0 or an absolute directory path", .dflt_text = "no metrics",
     .help = "a directory: each CPython process keeps pyhuge-<pid>.prom there (Prometheus text)"},
    {.name = "PYHUGE_METRICS_INTERVAL", .kind = KIND_NUMBER, FIELD(metrics_interval_s), .min = 1,
     .max = OPTIONS_METRICS_INTERVAL_MAX_S, .dflt = OPTIONS_DEFAULT_METRICS_INTERVAL_S,
     .expect = "seconds", .help = "the least time between two refreshes of the metrics file"},
};

#define NVARIABLES (sizeof variables / sizeof variables[0])

/* Read by pyhuge's tools, not by the library: not misspellings. */
static const char *const tool_variables[] = {"PYHUGE_LIB", "PYHUGE_DEMO_PAGES"};

static void store(struct options *o, size_t offset, size_t size, uint64_t v)
{
    char *p = (char *)o + offset;
    if (size == 1) {
        uint8_t x = (uint8_t)v;
        memcpy(p, &x, 1);
    } else if (size == 4) {
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, 4);
    } else {
        memcpy(p, &v, 8);
    }
}

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

static const struct word *find_word(const struct word *w, const char *v)
{
    for (; w && w->word; w++)
        if (strcasecmp(v, w->word) == 0)
            return w;
    return NULL;
}

bool options_label_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-' || c == ':' || c == '+';
        if (!ok || n + 1 >= PYHUGE_ARM_MAX)
            return false;
    }
    return n > 0;
}

/* The value as a warning may show it: at most 64 bytes, anything but
 * printable ASCII as '?', so that a hostile value cannot forge log lines. */
static const char *shown(const char *v, char *buf, size_t len)
{
    size_t i = 0;
    for (; v[i] && i + 4 < len && i < 64; i++)
        buf[i] = v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?';
    if (v[i])
        memcpy(buf + i, "...", 3), i += 3;
    buf[i] = '\0';
    return buf;
}

static void warn_bad(const struct variable *d, const char *v)
{
    char expect[96], dflt[24], show[72];
    struct fmt f;
    fmt_init(&f, expect, sizeof expect);
    fmt_add(&f, "%s", d->expect);
    if (d->kind == KIND_NUMBER && d->max != NO_MAX)
        fmt_add(&f, " %llu..%llu", (unsigned long long)d->min, (unsigned long long)d->max);
    if (d->kind == KIND_LABEL)
        fmt_add(&f, " (1..%d characters of A-Z a-z 0-9 . _ - : +)", PYHUGE_ARM_MAX - 1);
    fmt_init(&f, dflt, sizeof dflt);
    if (d->dflt_text)
        fmt_add(&f, "%s", d->dflt_text);
    else
        fmt_add(&f, "%llu", (unsigned long long)d->dflt);
    log_warn("%s=\"%s\" is not %s; using %s", d->name, shown(v, show, sizeof show), expect, dflt);
}

static void parse_one(struct options *o, const struct variable *d, const char *v)
{
    if (!v || !*v)
        return;
    uint64_t n;
    const struct word *w;
    switch (d->kind) {
    case KIND_NUMBER:
        if (parse_u64(v, d->max, &n) && n >= d->min)
            store(o, d->offset, d->size, n);
        else
            warn_bad(d, v);
        return;
    case KIND_WORDS:
    case KIND_PATH:
        if ((w = find_word(d->words, v))) {
            if (w->value == TURNS_OFF)
                o->enabled = false;
            else
                store(o, d->offset, d->size, (uint64_t)w->value);
            return;
        }
        if (d->kind == KIND_WORDS || v[0] != '/') {
            warn_bad(d, v);
            return;
        }
        size_t len = strlen(v);
        if (len >= d->path_size) {
            log_warn("%s path is longer than %zu bytes; using %s", d->name, d->path_size - 1,
                     d->dflt_text);
            return;
        }
        memcpy((char *)o + d->path_offset, v, len + 1);
        store(o, d->offset, d->size, (uint64_t)d->path_value);
        return;
    case KIND_LABEL:
        if (options_label_ok(v))
            memcpy((char *)o + d->offset, v, strlen(v) + 1);
        else
            warn_bad(d, v);
        return;
    }
}

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
        if (!known) {
            char show[72], name[80];
            size_t n = len < sizeof name - 1 ? len : sizeof name - 1;
            memcpy(name, e, n);
            name[n] = '\0';
            log_warn("%s is not a pyhuge variable (misspelt?); ignored",
                     shown(name, show, sizeof show));
        }
    }
}

void options_parse(struct options *o, options_lookup_fn lookup, void *ctx, char *const *env)
{
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < NVARIABLES; i++)
        if (variables[i].kind != KIND_LABEL)
            store(o, variables[i].offset, variables[i].size, variables[i].dflt);
    for (size_t i = 0; i < NVARIABLES; i++) {
        parse_one(o, &variables[i], lookup(variables[i].name, ctx));
        if (variables[i].offset == offsetof(struct options, verbose))
            log_set_level(o->verbose);
    }
    warn_unknown(env);
}
