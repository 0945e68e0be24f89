/*
 * The counters and what the shim says about them (report.h): the stats
 * page tools read, the reasons for fallbacks, the PYHUGE_STATS line.
 */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "cpython.h"
#include "ft.h"
#include "log.h"
#include "os.h"
#include "state.h"

static const char *const reason_names[PYHUGE_FALLBACK_COUNT] = {
    [PYHUGE_FALLBACK_POOL] = "pool",       [PYHUGE_FALLBACK_FAULT] = "fault",
    [PYHUGE_FALLBACK_CAP] = "cap",         [PYHUGE_FALLBACK_SPACE] = "space",
    [PYHUGE_FALLBACK_BACKOFF] = "backoff", [PYHUGE_FALLBACK_THP] = "thp",
};

static const char *const reason_texts[PYHUGE_FALLBACK_COUNT] = {
    [PYHUGE_FALLBACK_POOL] = "the kernel has no free 2 MiB huge page for us "
                             "(HugePages_Free in /proc/meminfo; see `pyhuge reserve`)",
    [PYHUGE_FALLBACK_FAULT] = "a huge page could not be faulted in (hugetlb cgroup limit?)",
    [PYHUGE_FALLBACK_CAP] = "PYHUGE_MAX_PAGES is reached",
    [PYHUGE_FALLBACK_SPACE] = "the kernel refuses more address space (RLIMIT_AS, RLIMIT_DATA, "
                              "vm.max_map_count), or the shim's 64 GiB range is full",
    [PYHUGE_FALLBACK_BACKOFF] = "the transparent huge page tier is paused after a slow fault "
                                "(PYHUGE_THP_STALL_US)",
    [PYHUGE_FALLBACK_THP] = "transparent huge pages are off or refused (PYHUGE_BACKEND=thp)",
};

const char *report_reason_name(int reason) { return reason_names[reason]; }

void report_sync(void)
{
    const struct table *t = &shim.table;
    shim.st.arenas_live = t->live[BACK_HUGETLB];
    shim.st.pages_now = t->held[BACK_HUGETLB];
    shim.st.pages_peak = t->peak[BACK_HUGETLB];
    shim.st.pages_thp = t->held[BACK_THP];
    shim.st.pages_thp_peak = t->peak[BACK_THP];
    /* hugetlb pages only: the stats line counts them among huge pages */
    shim.st.pages_cached = table_cached_on(t, BACK_HUGETLB);
    if (shim.page)
        shim.page->stats = shim.st;
}

void report_publish_page(void)
{
    uintptr_t r;
    int e = os_map_memfd("pyhuge-stats", OS_PAGE_SIZE, &r);
    struct pyhuge_stats_page *old = shim.page;
    shim.page = NULL;
    if (old)
        os_munmap(old, OS_PAGE_SIZE); /* after fork, the parent's: never written by the child */
    if (e) {
        log_debug("no stats page for tools (errno %d)", -e);
        return;
    }
    shim.page = (struct pyhuge_stats_page *)r;
    memcpy(shim.page->magic, PYHUGE_STATS_PAGE_MAGIC, sizeof PYHUGE_STATS_PAGE_MAGIC);
    shim.page->pid = (uint64_t)os_getpid();
    memcpy(shim.page->arm, shim.opt.arm, sizeof shim.page->arm);
    shim.page->stats = shim.st;
}

void report_child(void)
{
    log_new_process();
    struct pyhuge_stats fresh = {
        .version = PYHUGE_STATS_VERSION,
        .enabled = shim.st.enabled,
        .arena_size = shim.st.arena_size,
    };
    shim.st = fresh;
    struct table *t = &shim.table;
    for (int b = 0; b < BACKINGS; b++)
        t->peak[b] = t->held[b];
    if (shim.page)
        report_publish_page();
    report_sync();
}

void report_start(bool enabled)
{
    shim.st.version = PYHUGE_STATS_VERSION;
    shim.st.enabled = enabled;
}

static void fallback(int reason)
{
    shim.st.arenas_fallback++;
    shim.st.fallbacks[reason]++;
    unsigned bit = 1u << reason;
    if (!(__atomic_fetch_or(&shim.reasons_logged, bit, __ATOMIC_RELAXED) & bit))
        log_info("arenas go to ordinary pages while %s", reason_texts[reason]);
    else
        log_trace("arena to ordinary pages: %s", reason_names[reason]);
}

void report_arena(size_t len, enum arena_fate fate, int reason)
{
    /* The arena allocator also serves 3.11+'s frame stack chunks (16 KiB
     * and up, never above an arena): the arena size is the largest seen. */
    if (len > shim.st.arena_size)
        shim.st.arena_size = len;
    if (fate == ARENA_ON_HUGETLB)
        shim.st.arenas_huge++;
    else if (fate == ARENA_ON_THP)
        shim.st.arenas_thp++;
    else if (fate == ARENA_FELL_BACK)
        fallback(reason);
    report_sync();
}

void report_arena_unseen(void) { shim.st.arenas_unseen++; }

void report_page_demoted(void) { shim.st.pages_demoted++; }

void report_page_forked(void) { shim.st.pages_forked++; }

void report_read(struct pyhuge_stats *out)
{
    if (in_shim) {
        *out = shim.st; /* from a signal handler inside the shim: best effort */
        return;
    }
    shim_lock();
    *out = shim.st;
    shim_unlock();
    out->version = PYHUGE_STATS_VERSION;
}

static void format_stats(struct fmt *f, const struct pyhuge_stats *st)
{
    log_prefix(f);
    fmt_add(f,
            "stats: arenas huge=%lu fallback=%lu thp=%lu live=%lu size=%luK; "
            "huge pages now=%lu peak=%lu (%lu MiB) cached=%lu demoted=%lu forked=%lu; "
            "thp pages now=%lu peak=%lu; fallbacks",
            (unsigned long)st->arenas_huge, (unsigned long)st->arenas_fallback,
            (unsigned long)st->arenas_thp, (unsigned long)st->arenas_live,
            (unsigned long)(st->arena_size >> 10), (unsigned long)st->pages_now,
            (unsigned long)st->pages_peak, (unsigned long)(st->pages_peak * 2),
            (unsigned long)st->pages_cached, (unsigned long)st->pages_demoted,
            (unsigned long)st->pages_forked, (unsigned long)st->pages_thp,
            (unsigned long)st->pages_thp_peak);
    for (int r = 0; r < PYHUGE_FALLBACK_COUNT; r++)
        fmt_add(f, " %s=%lu", reason_names[r], (unsigned long)st->fallbacks[r]);
    /* Only when it happened: CPython's code made arena-shaped requests
     * outside the arena function the shim recognises (PGO/LTO/BOLT). */
    if (st->arenas_unseen)
        fmt_add(f, "; unseen=%lu", (unsigned long)st->arenas_unseen);
    if (shim.opt.arm[0])
        fmt_add(f, "; arm=%s", shim.opt.arm);
    fmt_add(f, "\n");
}

/* Appends the line to the PYHUGE_STATS file; 0, or -errno with *what
 * saying what went wrong. Never blocks: a FIFO without a reader, a
 * terminal, a device are refused after one non-blocking open. */
static int append_line(const char *line, size_t len, const char **what)
{
    *what = "cannot open";
    int fd;
    int e = os_open(shim.opt.stats_path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK, 0644, &fd);
    if (e == -ENXIO)
        *what = "not a regular file (a FIFO without a reader):";
    if (e)
        return e;
    struct stat sb;
    e = os_fstat(fd, &sb);
    if (e == 0 && !S_ISREG(sb.st_mode)) {
        *what = "not a regular file (a FIFO, a device?):";
        e = -EINVAL;
    }
    if (e == 0) {
        *what = "cannot write";
        e = os_write_all(fd, line, len); /* one write with O_APPEND: lines never interleave */
    }
    os_close(fd);
    return e;
}

static void write_stats_line(const struct pyhuge_stats *st)
{
    char buf[512];
    struct fmt f;
    fmt_init(&f, buf, sizeof buf);
    format_stats(&f, st);
    if (shim.opt.stats == STATS_STDERR) {
        os_write_all(2, buf, f.len);
        return;
    }
    const char *what;
    int e = append_line(buf, f.len, &what);
    if (e == 0)
        return;
    log_warn("%s PYHUGE_STATS file %s (errno %d); stats go to stderr", what, shim.opt.stats_path,
             -e);
    os_write_all(2, buf, f.len);
}

void report_exit(void)
{
    int s = __atomic_load_n(&shim.state, __ATOMIC_ACQUIRE);
    struct pyhuge_stats st = {0};
    if (s == STATE_ACTIVE)
        report_read(&st);
    bool any = st.arenas_huge + st.arenas_fallback + st.arenas_thp + st.pages_forked > 0;
    char what[160] = "";
    bool python = any;
    if (!python && (s == STATE_ACTIVE || log_warnings_held()))
        python = cpython_describe(what, sizeof what);
    /* Warnings kept since start-up: a CPython process hears them now, any
     * other (sh, sed, a compiler) never does. */
    log_release_warnings(python);
    if (s == STATE_OFF) {
        log_info("PYHUGE=off: nothing was done");
    } else if (s == STATE_ACTIVE) {
        if (!any && ft_found())
            log_info("no pymalloc arena request: a free-threaded CPython, whose mimalloc memory "
                     "was advised for transparent huge pages");
        else if (!any)
            log_info("nothing was done: %s", python ? "CPython made no pymalloc arena request "
                                                      "(PYTHONMALLOC=malloc, or an embedder's "
                                                      "own allocator?)"
                                                    : what);
        if (python && shim.opt.stats != STATS_NONE)
            write_stats_line(&st);
    }
    log_flush_dropped();
}
