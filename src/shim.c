#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "cpython.h"
#include "log.h"
#include "os.h"
#include "state.h"

extern char **environ;

/* Address space the shim reserves: 64 GiB, at most an eighth of RLIMIT_AS. */
#define REGION_MAX_PAGES 32768u
/* After the kernel refuses a huge page, the next try waits 1 ms, doubling
 * up to 1 s; a page we give back to the pool ends the wait. */
#define BACKOFF_MIN_NS 1000000ull
#define BACKOFF_MAX_NS 1000000000ull

struct shim_state shim = {.lock = PTHREAD_MUTEX_INITIALIZER, .fork_pipe = {-1, -1}};
__thread int in_shim __attribute__((tls_model("initial-exec")));

static const char *const reason_names[PYHUGE_FALLBACK_COUNT] = {
    [PYHUGE_FALLBACK_POOL] = "pool",   [PYHUGE_FALLBACK_FAULT] = "fault",
    [PYHUGE_FALLBACK_CAP] = "cap",     [PYHUGE_FALLBACK_SPACE] = "space",
    [PYHUGE_FALLBACK_BACKOFF] = "backoff", [PYHUGE_FALLBACK_THP] = "thp",
};

static const char *const reason_texts[PYHUGE_FALLBACK_COUNT] = {
    [PYHUGE_FALLBACK_POOL] = "the kernel has no free 2 MiB huge page for us "
                             "(HugePages_Free in /proc/meminfo; see `pyhuge reserve`)",
    [PYHUGE_FALLBACK_FAULT] = "a huge page could not be faulted in (hugetlb cgroup limit?)",
    [PYHUGE_FALLBACK_CAP] = "PYHUGE_MAX_PAGES reached",
    [PYHUGE_FALLBACK_SPACE] = "no address space left in the shim's range",
    [PYHUGE_FALLBACK_BACKOFF] = "waiting after a recent refusal, or after a slow transparent "
                                "huge page fault (PYHUGE_THP_STALL_US)",
    [PYHUGE_FALLBACK_THP] = "transparent huge pages are off or refused (PYHUGE_BACKEND=thp)",
};

/* ---- start-up ------------------------------------------------------------ */

static const char *env_lookup(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

bool shim_ready(void)
{
    int s = __atomic_load_n(&shim.state, __ATOMIC_ACQUIRE);
    if (s == STATE_ACTIVE)
        return true;
    if (s != STATE_NEW)
        return false; /* off, or another thread is starting us: pass through */
    if (!environ)
        return false; /* too early in process start-up even for getenv */
    int expected = STATE_NEW;
    if (!__atomic_compare_exchange_n(&shim.state, &expected, STATE_STARTING, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return expected == STATE_ACTIVE;
    options_parse(&shim.opt, env_lookup, NULL, environ);
    shim.st.version = PYHUGE_STATS_VERSION;
    shim.st.enabled = shim.opt.enabled;
    s = shim.opt.enabled ? STATE_ACTIVE : STATE_OFF;
    __atomic_store_n(&shim.state, s, __ATOMIC_RELEASE);
    return s == STATE_ACTIVE;
}

void shim_constructor(void)
{
    os_init();
    shim_ready();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ---- the reserved range ------------------------------------------------- */

int reserve(uintptr_t addr, size_t len)
{
    intptr_t r = os_mmap((void *)addr, len, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    return os_failed(r) ? (int)r : 0;
}

/* The THP tier is there unless the kernel's setting is [never]. */
static void detect_thp(void)
{
    if (shim.opt.backend == BACKEND_HUGETLB)
        return;
    char buf[128];
    ssize_t n = os_read_file("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf);
    shim.thp_usable = n > 0 && !strstr(buf, "[never]");
    if (!shim.thp_usable)
        log_info("no THP tier: transparent huge pages are %s",
                 n > 0 ? "off (transparent_hugepage/enabled is [never])" : "not in this kernel");
}

static bool setup_region(void)
{
    if (shim.region_tried)
        return shim.lo != 0;
    shim.region_tried = true;

    uint64_t n = REGION_MAX_PAGES;
    uint64_t as = os_address_space_limit();
    if (as != UINT64_MAX && as / 8 / TABLE_PAGE_SIZE < n) {
        n = as / 8 / TABLE_PAGE_SIZE;
        log_info("RLIMIT_AS is %lu MiB: reserving only %lu huge pages of address space",
                 (unsigned long)(as >> 20), (unsigned long)n);
    }
    if (n == 0)
        return false;

    size_t bytes = (size_t)n << TABLE_PAGE_SHIFT;
    intptr_t r = os_mmap(NULL, bytes + TABLE_PAGE_SIZE, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (os_failed(r)) {
        log_warn("cannot reserve %zu MiB of address space (errno %d); arenas stay on ordinary pages",
                 bytes >> 20, (int)-r);
        return false;
    }
    uintptr_t raw_lo = (uintptr_t)r, raw_hi = raw_lo + bytes + TABLE_PAGE_SIZE;
    uintptr_t base = (raw_lo + TABLE_PAGE_SIZE - 1) & ~(TABLE_PAGE_SIZE - 1);
    if (base > raw_lo)
        os_munmap((void *)raw_lo, base - raw_lo);
    if (raw_hi > base + bytes)
        os_munmap((void *)(base + bytes), raw_hi - (base + bytes));

    intptr_t pages = os_mmap(NULL, (size_t)n * sizeof(struct page), PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (os_failed(pages)) {
        os_munmap((void *)base, bytes);
        log_warn("cannot map the side table (errno %d); arenas stay on ordinary pages", (int)-pages);
        return false;
    }
    os_name_range((void *)base, bytes, "pyhuge");
    os_name_range((void *)pages, (size_t)n * sizeof(struct page), "pyhuge-table");
    table_init(&shim.table, base, (uint32_t)n, (struct page *)pages, shim.opt.cache_pages);
    publish_stats_page();
    detect_thp();
    __atomic_store_n(&shim.hi, base + bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&shim.lo, base, __ATOMIC_RELEASE);
    log_debug("reserved %zu MiB of address space at %p for huge pages", bytes >> 20, (void *)base);
    return true;
}

bool shim_overlaps(const void *addr, size_t len)
{
    uintptr_t lo = __atomic_load_n(&shim.lo, __ATOMIC_ACQUIRE);
    if (!lo)
        return false;
    uintptr_t a = (uintptr_t)addr, hi = __atomic_load_n(&shim.hi, __ATOMIC_RELAXED);
    uintptr_t end = a + len < a ? UINTPTR_MAX : a + len;
    return a < hi && end > lo;
}

/* ---- huge pages ----------------------------------------------------------- */

void sync_counters(void)
{
    shim.st.arenas_live = shim.table.live[BACK_HUGETLB];
    shim.st.pages_now = shim.table.held[BACK_HUGETLB];
    shim.st.pages_peak = shim.table.peak[BACK_HUGETLB];
    shim.st.pages_thp = shim.table.held[BACK_THP];
    shim.st.pages_thp_peak = shim.table.peak[BACK_THP];
    shim.st.pages_cached = shim.table.cached;
    if (shim.page)
        shim.page->stats = shim.st;
}

void publish_stats_page(void)
{
    intptr_t r = os_map_memfd("pyhuge-stats", PAGE_4K);
    if (os_failed(r)) {
        log_debug("no stats page for tools (errno %d)", (int)-r);
        return;
    }
    struct pyhuge_stats_page *old = shim.page;
    shim.page = (struct pyhuge_stats_page *)r;
    memcpy(shim.page->magic, PYHUGE_STATS_PAGE_MAGIC, sizeof PYHUGE_STATS_PAGE_MAGIC);
    shim.page->pid = (uint64_t)os_getpid();
    shim.page->stats = shim.st;
    if (old)
        os_munmap(old, PAGE_4K);
}

static bool backoff_waiting(const struct backoff *b)
{
    return b->until_ns && os_now_ns() < b->until_ns;
}

/* Starts the next wait: min at first, doubling up to max. Returns its length. */
static uint64_t backoff_hit(struct backoff *b, uint64_t min_ns, uint64_t max_ns)
{
    b->step_ns = b->step_ns ? b->step_ns * 2 : min_ns;
    if (b->step_ns > max_ns)
        b->step_ns = max_ns;
    b->until_ns = os_now_ns() + b->step_ns;
    return b->step_ns;
}

static void backoff_clear(struct backoff *b) { *b = (struct backoff){0}; }

/* A page back in the pool: the next arena may try it at once. */
void note_page_returned(void) { shim.hugetlb_wait.until_ns = 0; }

/* A new hugetlb page where the kernel likes, reserved and faulted in.
 * Returns its address, or 0 with *reason set. Never MAP_NORESERVE: without
 * it the kernel reserves the page at mmap time and says ENOMEM cleanly
 * instead of SIGBUS later.
 *
 * MAP_SHARED, unless PYHUGE_FORK=share: a private hugetlb page is shared
 * copy-on-write after fork, and a write by the parent while the pool is dry
 * takes the page away from the child. Some parent writes cannot be stopped
 * (a thread filling a bytes object with the GIL released: os.read, recv),
 * and they killed children mid-copy (test/fork/gil_free_writer.py). A shared
 * page needs no copy when either side writes, so nothing can be taken; the
 * child replaces it with memory of its own before fork() returns to it
 * (fork.c), so neither ever sees the other's writes to live objects. */
uintptr_t new_huge_page(int *reason)
{
    int share = shim.opt.fork == FORK_SHARE ? MAP_PRIVATE : MAP_SHARED;
    intptr_t r = os_mmap(NULL, TABLE_PAGE_SIZE, PROT_READ | PROT_WRITE,
                         share | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
    if (os_failed(r)) {
        log_debug("hugetlb mmap refused (errno %d)", (int)-r);
        *reason = PYHUGE_FALLBACK_POOL;
        return 0;
    }
    /* A hugetlb cgroup's fault-time limit lets the mmap succeed and kills
     * the first touch with SIGBUS; populating now turns that into an error
     * while falling back is still possible (kernel 5.14+). */
    if (!shim.populate_unsupported) {
        int e;
        do
            e = os_madvise((void *)r, TABLE_PAGE_SIZE, MADV_POPULATE_WRITE);
        while (e == -EINTR);
        if (e == -EINVAL) {
            shim.populate_unsupported = true;
            log_info("MADV_POPULATE_WRITE unsupported (kernel before 5.14): a hugetlb cgroup "
                     "fault limit cannot be detected at allocation time");
        } else if (e != 0) {
            log_debug("huge page could not be faulted in (errno %d)", -e);
            os_munmap((void *)r, TABLE_PAGE_SIZE);
            *reason = PYHUGE_FALLBACK_FAULT;
            return 0;
        }
    }
    return (uintptr_t)r;
}

/* Backs page idx with a new huge page. Returns -1, or the fallback reason.
 * The page is made elsewhere and moved into place: a MAP_FIXED hugetlb mmap
 * over our range that fails (as it does whenever the pool is empty) can
 * leave a hole, and another thread's mmap could land in it before we fill
 * it again. mremap replaces the reserved space in one step. */
static int back_page(uint32_t idx)
{
    uintptr_t a = table_page_addr(&shim.table, idx);
    int reason;
    uintptr_t tmp = new_huge_page(&reason);
    if (!tmp)
        return reason;
    intptr_t r = os_mremap((void *)tmp, TABLE_PAGE_SIZE, TABLE_PAGE_SIZE,
                           MREMAP_MAYMOVE | MREMAP_FIXED, (void *)a);
    if (os_failed(r)) {
        log_debug("cannot move a huge page into place (errno %d)", (int)-r);
        os_munmap((void *)tmp, TABLE_PAGE_SIZE);
        if (reserve(a, TABLE_PAGE_SIZE) != 0)
            table_mark_foreign(&shim.table, idx); /* a hole we cannot fill: never reuse */
        return PYHUGE_FALLBACK_POOL;
    }
    return -1;
}

/* The hugetlb tier: a page from the pool. Returns -1, or why not. */
static int add_hugetlb(uint32_t idx, int cls)
{
    if (shim.opt.backend == BACKEND_THP)
        return PYHUGE_FALLBACK_THP;
    if (shim.table.held[BACK_HUGETLB] >= shim.opt.max_pages)
        return PYHUGE_FALLBACK_CAP;
    if (backoff_waiting(&shim.hugetlb_wait))
        return PYHUGE_FALLBACK_BACKOFF;
    int reason = back_page(idx);
    if (reason >= 0) {
        backoff_hit(&shim.hugetlb_wait, BACKOFF_MIN_NS, BACKOFF_MAX_NS);
        return reason;
    }
    backoff_clear(&shim.hugetlb_wait);
    table_add_page(&shim.table, idx, cls, BACK_HUGETLB);
    log_debug("huge page %u backed at %p", idx, (void *)table_page_addr(&shim.table, idx));
    return -1;
}

/* A THP fault may stop the process while the kernel compacts memory
 * (defrag=always or madvise): one that takes longer than
 * PYHUGE_THP_STALL_US pauses the tier, for 1 s at first, doubling up to
 * 64 s while faults stay slow; arenas go to ordinary pages meanwhile. A
 * fault within the limit ends the doubling. */
#define THP_PAUSE_MIN_NS 1000000000ull
#define THP_PAUSE_MAX_NS 64000000000ull

static void note_thp_fault(uint64_t took_ns)
{
    uint64_t limit = shim.opt.thp_stall_us * 1000;
    if (!limit)
        return;
    if (took_ns <= limit) {
        backoff_clear(&shim.thp_wait);
        return;
    }
    uint64_t pause = backoff_hit(&shim.thp_wait, THP_PAUSE_MIN_NS, THP_PAUSE_MAX_NS);
    log_info("a transparent huge page took %u us to fault in (limit %u us, "
             "PYHUGE_THP_STALL_US): THP tier paused for %u s",
             (unsigned)(took_ns / 1000), (unsigned)shim.opt.thp_stall_us,
             (unsigned)(pause / 1000000000ull));
}

/* The THP tier: ordinary memory, 2 MiB-aligned, marked MADV_HUGEPAGE, so
 * that the kernel maps it with one transparent huge page when it has one.
 * A 1 MiB arena on its own never gets one: a THP needs a whole aligned
 * 2 MiB inside one MADV_HUGEPAGE mapping (FACTS.md). Made elsewhere and
 * moved into place, as hugetlb pages are, so the range never has a hole.
 * Returns -1, or why not. */
static int add_thp(uint32_t idx, int cls)
{
    if (!shim.thp_usable || shim.opt.backend == BACKEND_HUGETLB)
        return PYHUGE_FALLBACK_THP;
    if (backoff_waiting(&shim.thp_wait))
        return PYHUGE_FALLBACK_BACKOFF;
    uintptr_t a = table_page_addr(&shim.table, idx);
    intptr_t tmp = os_mmap(NULL, TABLE_PAGE_SIZE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (os_failed(tmp))
        return PYHUGE_FALLBACK_THP;
    intptr_t r = os_mremap((void *)tmp, TABLE_PAGE_SIZE, TABLE_PAGE_SIZE,
                           MREMAP_MAYMOVE | MREMAP_FIXED, (void *)a);
    if (os_failed(r)) {
        os_munmap((void *)tmp, TABLE_PAGE_SIZE);
        return PYHUGE_FALLBACK_THP;
    }
    os_madvise((void *)a, TABLE_PAGE_SIZE, MADV_HUGEPAGE);
    /* Fault it in now, in one go: one huge page where the kernel has one
     * (with defrag=madvise it may compact memory for it first), 4 KiB pages
     * where it has none; ENOMEM here is a clean fallback. */
    uint64_t t0 = os_now_ns();
    int e = os_madvise((void *)a, TABLE_PAGE_SIZE, MADV_POPULATE_WRITE);
    note_thp_fault(os_now_ns() - t0);
    if (e && e != -EINVAL) {
        reserve(a, TABLE_PAGE_SIZE);
        return PYHUGE_FALLBACK_THP;
    }
    table_add_page(&shim.table, idx, cls, BACK_THP);
    log_debug("THP page %u backed at %p", idx, (void *)a);
    return -1;
}

/* Adds a freshly backed page for arenas of class cls: hugetlb, else THP.
 * Returns -1 on success, or why there is none. */
static int add_page(int cls)
{
    int32_t idx = table_claim_free(&shim.table);
    if (idx < 0)
        return PYHUGE_FALLBACK_SPACE;
    int reason = add_hugetlb((uint32_t)idx, cls);
    if (reason < 0)
        return -1;
    if (shim.table.pages[idx].state == PAGE_FREE) {
        int thp = add_thp((uint32_t)idx, cls);
        if (thp < 0)
            return -1;
        if (thp == PYHUGE_FALLBACK_BACKOFF) /* else the hugetlb tier's reason says more */
            reason = thp;
        table_put_free(&shim.table, (uint32_t)idx);
    }
    return reason;
}

static void log_fallback(int reason)
{
    unsigned bit = 1u << reason;
    if (!(__atomic_fetch_or(&shim.reasons_logged, bit, __ATOMIC_RELAXED) & bit))
        log_info("arenas go to ordinary pages while %s", reason_texts[reason]);
    else
        log_trace("arena to ordinary pages: %s", reason_names[reason]);
}

void *shim_arena_mmap(size_t len, uintptr_t ret)
{
    if (in_shim || !shim_ready() || !cpython_is_arena_caller(ret))
        return NULL;
    int cls = table_class_of(len);
    uintptr_t a = 0;
    bool must_zero = false;
    int reason = -1;

    shim_lock();
    shim.st.arena_size = len;
    if (!setup_region())
        reason = PYHUGE_FALLBACK_SPACE;
    else if (!(a = table_take_slot(&shim.table, cls, &must_zero)) && (reason = add_page(cls)) < 0)
        a = table_take_slot(&shim.table, cls, &must_zero);
    if (a && shim.table.pages[table_index(&shim.table, a)].state == PAGE_THP) {
        shim.st.arenas_thp++;
    } else if (a) {
        shim.st.arenas_huge++;
    } else {
        shim.st.arenas_fallback++;
        shim.st.fallbacks[reason]++;
    }
    sync_counters();
    shim_unlock();

    if (!a) {
        log_fallback(reason);
        return NULL;
    }
    /* mmap's contract is zero-filled memory; a reused slot is not. */
    if (must_zero)
        memset((void *)a, 0, len);
    log_trace("arena %p, %zu KiB", (void *)a, len >> 10);
    return (void *)a;
}

/* ---- giving memory back ------------------------------------------------- */

/* ---- reporting ------------------------------------------------------------ */

void shim_read_stats(struct pyhuge_stats *out)
{
    shim_ready();
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
            "huge pages now=%lu peak=%lu (%lu MiB) cached=%lu demoted=%lu; "
            "thp pages now=%lu peak=%lu; fallbacks",
            (unsigned long)st->arenas_huge, (unsigned long)st->arenas_fallback,
            (unsigned long)st->arenas_thp,
            (unsigned long)st->arenas_live, (unsigned long)(st->arena_size >> 10),
            (unsigned long)st->pages_now, (unsigned long)st->pages_peak,
            (unsigned long)(st->pages_peak * 2), (unsigned long)st->pages_cached,
            (unsigned long)st->pages_demoted, (unsigned long)st->pages_thp,
            (unsigned long)st->pages_thp_peak);
    for (int r = 0; r < PYHUGE_FALLBACK_COUNT; r++)
        fmt_add(f, " %s=%lu", reason_names[r], (unsigned long)st->fallbacks[r]);
    fmt_add(f, "\n");
}

void shim_destructor(void)
{
    int s = __atomic_load_n(&shim.state, __ATOMIC_ACQUIRE);
    if (s == STATE_OFF) {
        log_info("PYHUGE=off: nothing was done");
        return;
    }
    if (s != STATE_ACTIVE)
        return;
    struct pyhuge_stats st;
    shim_read_stats(&st);
    if (st.arenas_huge + st.arenas_fallback + st.arenas_thp == 0) {
        bool python = cpython_present();
        if (!python)
            log_info("nothing was done: no CPython in this process");
        else
            log_info("nothing was done: CPython made no pymalloc arena request "
                     "(free-threaded build, or PYTHONMALLOC=malloc?)");
        if (!python)
            return;
    }
    if (shim.opt.stats == STATS_NONE)
        return;
    char buf[512];
    struct fmt f;
    fmt_init(&f, buf, sizeof buf);
    format_stats(&f, &st);
    if (shim.opt.stats == STATS_STDERR) {
        os_write_all(2, buf, f.len);
        return;
    }
    int fd = os_open(shim.opt.stats_path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) {
        log_warn("cannot open PYHUGE_STATS file %s (errno %d); stats go to stderr",
                 shim.opt.stats_path, -fd);
        os_write_all(2, buf, f.len);
        return;
    }
    os_write_all(fd, buf, f.len); /* one write with O_APPEND: lines never interleave */
    os_close(fd);
}
