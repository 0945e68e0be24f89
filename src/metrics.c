/*
 * PYHUGE_METRICS (metrics.h): the Prometheus text file of one process,
 * formatted into a static buffer with fmt.c and written with os.c calls.
 * node_exporter merges every file of the directory into one page, so
 * every sample carries pid="..." (no two processes share a label set) and
 * each HELP text is a constant (the same in every file of every version).
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fmt.h"
#include "log.h"
#include "pyhuge_config.h"
#include "report.h"
#include "state.h"
#include "table.h"

uint64_t metrics_due_ns = UINT64_MAX;

static int busy;        /* atomic: one writer at a time; a busy writer is skipped */
static int owner_pid;   /* the process these metrics are for; 0: none */
static int written_pid; /* the process whose file we wrote, if any */
static bool refresh_warned;
static char text[8192];

#define NS_PER_S 1000000000ull

/* The file of `pid`, or its temporary twin (hidden, and not *.prom, so
 * the textfile collector never reads it half-written). */
static void path_of(char *buf, size_t len, int pid, bool tmp)
{
    struct fmt f;
    fmt_init(&f, buf, len);
    fmt_add(&f, "%s/%spyhuge-%d.prom%s", shim.opt.metrics_dir, tmp ? "." : "", pid,
            tmp ? ".tmp" : "");
}

struct sample_ctx {
    struct fmt *f;
    int pid;
};

static void head(struct sample_ctx *c, const char *name, const char *type, const char *help)
{
    fmt_add(c->f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{pid="..",arm="..",key="value"} n; key NULL: no third label. */
static void sample(struct sample_ctx *c, const char *name, const char *key, const char *value,
                   uint64_t n)
{
    fmt_add(c->f, "%s{pid=\"%d\",arm=\"%s\"", name, c->pid, shim.opt.arm);
    if (key)
        fmt_add(c->f, ",%s=\"%s\"", key, value);
    fmt_add(c->f, "} %llu\n", (unsigned long long)n);
}

static void one(struct sample_ctx *c, const char *name, const char *type, const char *help,
                uint64_t n)
{
    head(c, name, type, help);
    sample(c, name, NULL, NULL, n);
}

static void format_metrics(struct fmt *f, int pid, bool on)
{
    struct sample_ctx c = {.f = f, .pid = pid};
    head(&c, "pyhuge_info", "gauge",
         "The pyhuge shim in this process: library version, experiment arm (PYHUGE_ARM), "
         "and whether it is switched on (enabled=\"0\" under PYHUGE=off).");
    fmt_add(f, "pyhuge_info{pid=\"%d\",arm=\"%s\",version=\"%s\",enabled=\"%d\"} 1\n", pid,
            shim.opt.arm, PYHUGE_VERSION_STRING, on ? 1 : 0);
    if (!on)
        return;
    struct pyhuge_stats st;
    report_read(&st);
    head(&c, "pyhuge_arenas_total", "counter",
         "CPython arena requests served, by backing: hugetlb (huge pages of the pool), thp "
         "(transparent huge pages), ordinary (fallback to 4 KiB pages).");
    sample(&c, "pyhuge_arenas_total", "backing", "hugetlb", st.arenas_huge);
    sample(&c, "pyhuge_arenas_total", "backing", "thp", st.arenas_thp);
    sample(&c, "pyhuge_arenas_total", "backing", "ordinary", st.arenas_fallback);
    one(&c, "pyhuge_arenas_live", "gauge", "Arenas on hugetlb pages now.", st.arenas_live);
    head(&c, "pyhuge_fallbacks_total", "counter",
         "Arena requests served by ordinary pages, by reason: pool (no free huge page), fault "
         "(hugetlb cgroup limit), cap (PYHUGE_MAX_PAGES), space (address space refused), "
         "backoff (THP tier paused after a slow fault), thp (no THP tier).");
    for (int r = 0; r < PYHUGE_FALLBACK_COUNT; r++)
        sample(&c, "pyhuge_fallbacks_total", "reason", report_reason_name(r), st.fallbacks[r]);
    head(&c, "pyhuge_huge_pages", "gauge",
         "2 MiB hugetlb pages held: now (cached ones included), peak (most at once), cached "
         "(empty, kept for reuse).");
    sample(&c, "pyhuge_huge_pages", "state", "now", st.pages_now);
    sample(&c, "pyhuge_huge_pages", "state", "peak", st.pages_peak);
    sample(&c, "pyhuge_huge_pages", "state", "cached", st.pages_cached);
    head(&c, "pyhuge_thp_pages", "gauge",
         "2 MiB pages of the transparent huge page tier held: now, peak.");
    sample(&c, "pyhuge_thp_pages", "state", "now", st.pages_thp);
    sample(&c, "pyhuge_thp_pages", "state", "peak", st.pages_thp_peak);
    one(&c, "pyhuge_hugetlb_bytes", "gauge",
        "Bytes of hugetlb memory the shim holds now: not in RSS (ps, top), in HugetlbPages "
        "of /proc/PID/status.",
        st.pages_now * TABLE_PAGE_SIZE);
    one(&c, "pyhuge_huge_pages_forked_total", "counter",
        "Hugetlb pages moved to ordinary memory before a fork (the child then shares them "
        "copy-on-write at 4 KiB).",
        st.pages_forked);
    one(&c, "pyhuge_huge_pages_demoted_total", "counter",
        "Huge pages moved to ordinary pages after a partial munmap, mprotect, madvise or "
        "mremap.",
        st.pages_demoted);
    one(&c, "pyhuge_arenas_unseen_total", "counter",
        "Arena-shaped requests from CPython outside its recognised arena function (an arena "
        "function inlined or split by PGO/LTO/BOLT): passed through.",
        st.arenas_unseen);
    one(&c, "pyhuge_arena_size_bytes", "gauge", "The largest arena request seen (bytes).",
        st.arena_size);
    one(&c, "pyhuge_metrics_updated_timestamp_seconds", "gauge",
        "When this process last wrote its metrics (Unix time): a process killed by a signal "
        "or ended with _exit leaves its file behind, no longer updated.",
        os_wall_s());
}

/* Writes the file of this process: 0, or -errno with *step naming what
 * failed. */
static int write_file(int pid, const char **step)
{
    char tmp[OPTIONS_PATH_MAX + 64], path[OPTIONS_PATH_MAX + 64];
    path_of(tmp, sizeof tmp, pid, true);
    path_of(path, sizeof path, pid, false);
    struct fmt f;
    fmt_init(&f, text, sizeof text);
    format_metrics(&f, pid, __atomic_load_n(&shim.state, __ATOMIC_ACQUIRE) == STATE_ACTIVE);
    /* O_NONBLOCK and O_NOFOLLOW: a FIFO or a link planted at the name never
     * blocks us or sends the text elsewhere. */
    int fd;
    int e = os_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_NOFOLLOW, 0644, &fd);
    *step = "create";
    if (e)
        return e;
    struct stat sb;
    e = os_fstat(fd, &sb);
    if (e == 0 && !S_ISREG(sb.st_mode))
        e = -EINVAL;
    *step = e ? "check" : "write";
    if (e == 0)
        e = f.len + 1 >= sizeof text ? -ENOBUFS : os_write_all(fd, text, f.len);
    os_close(fd);
    if (e == 0) {
        *step = "rename";
        e = os_rename(tmp, path);
    }
    if (e) {
        os_unlink(tmp);
        return e;
    }
    written_pid = pid;
    return 0;
}

static bool take(void) { return !__atomic_exchange_n(&busy, 1, __ATOMIC_ACQUIRE); }
static void give(void) { __atomic_store_n(&busy, 0, __ATOMIC_RELEASE); }

static uint64_t next_due(void)
{
    if (__atomic_load_n(&shim.state, __ATOMIC_ACQUIRE) != STATE_ACTIVE)
        return UINT64_MAX; /* PYHUGE=off: the info line never changes */
    return os_now_ns() + (uint64_t)shim.opt.metrics_interval_s * NS_PER_S;
}

void metrics_start(void)
{
    if (!shim.opt.metrics || __atomic_load_n(&owner_pid, __ATOMIC_ACQUIRE) || !take())
        return;
    const char *dir = shim.opt.metrics_dir;
    int pid = os_getpid();
    int fd;
    int e = os_open(dir, O_RDONLY | O_DIRECTORY | O_NONBLOCK, 0, &fd);
    if (e) {
        log_warn("PYHUGE_METRICS=%s: %s (errno %d); no metrics", dir,
                 e == -ENOENT    ? "no such directory"
                 : e == -ENOTDIR ? "not a directory"
                                 : "cannot open the directory",
                 -e);
        give();
        return;
    }
    os_close(fd);
    const char *step;
    e = write_file(pid, &step);
    if (e) {
        log_warn("PYHUGE_METRICS=%s: cannot %s pyhuge-%d.prom there (errno %d); no metrics", dir,
                 step, pid, -e);
        give();
        return;
    }
    __atomic_store_n(&owner_pid, pid, __ATOMIC_RELEASE);
    __atomic_store_n(&metrics_due_ns, next_due(), __ATOMIC_RELAXED);
    give();
}

void metrics_refresh(void)
{
    if (!take())
        return;
    uint64_t due = __atomic_load_n(&metrics_due_ns, __ATOMIC_RELAXED);
    int pid = os_getpid();
    /* A forked child, before metrics_forked adopted it, writes nothing. */
    if (due == UINT64_MAX || os_now_ns() < due || pid != owner_pid) {
        give();
        return;
    }
    __atomic_store_n(&metrics_due_ns, next_due(), __ATOMIC_RELAXED);
    const char *step;
    int e = write_file(pid, &step);
    if (e && !refresh_warned) {
        refresh_warned = true; /* a full disk may have room later: tried again, said once */
        log_warn("PYHUGE_METRICS=%s: cannot %s pyhuge-%d.prom (errno %d); trying again every "
                 "%u s",
                 shim.opt.metrics_dir, step, pid, -e, shim.opt.metrics_interval_s);
    }
    give();
}

void metrics_forked(void)
{
    if (!__atomic_load_n(&owner_pid, __ATOMIC_ACQUIRE))
        return;
    /* One thread now: a parent's thread that was writing is not here. */
    give();
    refresh_warned = false;
    owner_pid = os_getpid();
    __atomic_store_n(&metrics_due_ns, 0, __ATOMIC_RELAXED);
}

void metrics_stop(void)
{
    __atomic_store_n(&metrics_due_ns, UINT64_MAX, __ATOMIC_RELAXED);
    /* A writer on another thread finishes in a few system calls; one that
     * this thread interrupted (exit from a signal handler) never does. */
    bool mine = false;
    for (int i = 0; i < 100000 && !(mine = take()); i++)
        ;
    int pid = os_getpid();
    if (written_pid == pid) {
        char path[OPTIONS_PATH_MAX + 64];
        path_of(path, sizeof path, pid, false);
        os_unlink(path);
        written_pid = 0;
    }
    __atomic_store_n(&owner_pid, 0, __ATOMIC_RELEASE);
    if (mine)
        give();
}
