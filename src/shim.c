#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cpython.h"
#include "log.h"
#include "options.h"
#include "os.h"
#include "table.h"

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

extern char **environ;

#define PAGE_4K 4096u
/* Address space the shim reserves: 64 GiB, at most an eighth of RLIMIT_AS. */
#define REGION_MAX_PAGES 32768u
/* After the kernel refuses a huge page, the next try waits 1 ms, doubling
 * up to 1 s; a page we give back to the pool ends the wait. */
#define BACKOFF_MIN_NS 1000000ull
#define BACKOFF_MAX_NS 1000000000ull

enum state { STATE_NEW, STATE_STARTING, STATE_ACTIVE, STATE_OFF };

static struct {
    int state; /* enum state, atomic */
    struct options opt;
    pthread_mutex_t lock;
    struct table table;   /* under lock */
    uintptr_t lo, hi;     /* the reserved range; published once, read lock-free */
    bool region_tried;
    bool populate_unsupported;
    uint64_t retry_at_ns, backoff_ns;
    int fork_pipe[2];     /* parent waits on [0] until the child has moved its pages */
    bool fork_moves;      /* this fork's child moves its huge pages */
    unsigned reasons_logged;
    struct pyhuge_stats st; /* under lock */
} S = {.lock = PTHREAD_MUTEX_INITIALIZER, .fork_pipe = {-1, -1}};

/* Set while this thread holds S.lock: a signal handler that lands in a hook
 * on the same thread must not wait for the lock. Initial-exec TLS: reading
 * it never allocates. */
static __thread int in_shim __attribute__((tls_model("initial-exec")));

/* in_shim covers the whole of lock and unlock, so that a signal landing
 * between taking the mutex and marking it taken cannot wait for itself. */
static void lock(void)
{
    in_shim = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    pthread_mutex_lock(&S.lock);
}

static void unlock(void)
{
    pthread_mutex_unlock(&S.lock);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    in_shim = 0;
}

static const char *const reason_names[PYHUGE_FALLBACK_COUNT] = {
    [PYHUGE_FALLBACK_POOL] = "pool",   [PYHUGE_FALLBACK_FAULT] = "fault",
    [PYHUGE_FALLBACK_CAP] = "cap",     [PYHUGE_FALLBACK_SPACE] = "space",
    [PYHUGE_FALLBACK_BACKOFF] = "backoff",
};

static const char *const reason_texts[PYHUGE_FALLBACK_COUNT] = {
    [PYHUGE_FALLBACK_POOL] = "the kernel has no free 2 MiB huge page for us "
                             "(HugePages_Free in /proc/meminfo; see `pyhuge reserve`)",
    [PYHUGE_FALLBACK_FAULT] = "a huge page could not be faulted in (hugetlb cgroup limit?)",
    [PYHUGE_FALLBACK_CAP] = "PYHUGE_MAX_PAGES reached",
    [PYHUGE_FALLBACK_SPACE] = "no address space left in the shim's range",
    [PYHUGE_FALLBACK_BACKOFF] = "waiting after a recent refusal",
};

/* ---- start-up ------------------------------------------------------------ */

static const char *env_lookup(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

bool shim_ready(void)
{
    int s = __atomic_load_n(&S.state, __ATOMIC_ACQUIRE);
    if (s == STATE_ACTIVE)
        return true;
    if (s != STATE_NEW)
        return false; /* off, or another thread is starting us: pass through */
    if (!environ)
        return false; /* too early in process start-up even for getenv */
    int expected = STATE_NEW;
    if (!__atomic_compare_exchange_n(&S.state, &expected, STATE_STARTING, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return expected == STATE_ACTIVE;
    options_parse(&S.opt, env_lookup, NULL, environ);
    S.st.version = PYHUGE_STATS_VERSION;
    S.st.enabled = S.opt.enabled;
    s = S.opt.enabled ? STATE_ACTIVE : STATE_OFF;
    __atomic_store_n(&S.state, s, __ATOMIC_RELEASE);
    return s == STATE_ACTIVE;
}

static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

void shim_constructor(void)
{
    os_init();
    shim_ready();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ---- the reserved range ------------------------------------------------- */

/* Maps PROT_NONE address space over [addr, addr+len): gives back whatever
 * backed it and keeps the range ours. */
static int reserve(uintptr_t addr, size_t len)
{
    intptr_t r = os_mmap((void *)addr, len, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    return os_failed(r) ? (int)r : 0;
}

static bool setup_region(void)
{
    if (S.region_tried)
        return S.lo != 0;
    S.region_tried = true;

    uint64_t n = REGION_MAX_PAGES;
    if (S.opt.max_pages < n)
        n = S.opt.max_pages;
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
    table_init(&S.table, base, (uint32_t)n, (struct page *)pages, S.opt.cache_pages);
    __atomic_store_n(&S.hi, base + bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&S.lo, base, __ATOMIC_RELEASE);
    log_debug("reserved %zu MiB of address space at %p for huge pages", bytes >> 20, (void *)base);
    return true;
}

bool shim_overlaps(const void *addr, size_t len)
{
    uintptr_t lo = __atomic_load_n(&S.lo, __ATOMIC_ACQUIRE);
    if (!lo)
        return false;
    uintptr_t a = (uintptr_t)addr, hi = __atomic_load_n(&S.hi, __ATOMIC_RELAXED);
    uintptr_t end = a + len < a ? UINTPTR_MAX : a + len;
    return a < hi && end > lo;
}

/* ---- huge pages ----------------------------------------------------------- */

static void sync_counters(void)
{
    S.st.arenas_live = S.table.live;
    S.st.pages_now = S.table.held;
    S.st.pages_peak = S.table.peak;
    S.st.pages_cached = S.table.cached;
}

static void note_refusal(void)
{
    S.backoff_ns = S.backoff_ns ? S.backoff_ns * 2 : BACKOFF_MIN_NS;
    if (S.backoff_ns > BACKOFF_MAX_NS)
        S.backoff_ns = BACKOFF_MAX_NS;
    S.retry_at_ns = os_now_ns() + S.backoff_ns;
}

/* A page of ours went back to the pool: worth trying again at once. */
static void note_page_returned(void) { S.retry_at_ns = 0; }

/* A new hugetlb page where the kernel likes, reserved and faulted in.
 * Returns its address, or 0 with *reason set. Never MAP_NORESERVE: without
 * it the kernel reserves the page at mmap time and says ENOMEM cleanly
 * instead of SIGBUS later. */
static uintptr_t new_huge_page(int *reason)
{
    intptr_t r = os_mmap(NULL, TABLE_PAGE_SIZE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
    if (os_failed(r)) {
        log_debug("hugetlb mmap refused (errno %d)", (int)-r);
        *reason = PYHUGE_FALLBACK_POOL;
        return 0;
    }
    /* A hugetlb cgroup's fault-time limit lets the mmap succeed and kills
     * the first touch with SIGBUS; populating now turns that into an error
     * while falling back is still possible (kernel 5.14+). */
    if (!S.populate_unsupported) {
        int e;
        do
            e = os_madvise((void *)r, TABLE_PAGE_SIZE, MADV_POPULATE_WRITE);
        while (e == -EINTR);
        if (e == -EINVAL) {
            S.populate_unsupported = true;
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
    uintptr_t a = table_page_addr(&S.table, idx);
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
            table_mark_foreign(&S.table, idx); /* a hole we cannot fill: never reuse */
        return PYHUGE_FALLBACK_POOL;
    }
    return -1;
}

/* Adds a freshly backed page for arenas of class cls. Returns -1 on
 * success, or why there is none. */
static int add_page(int cls)
{
    if (S.table.held >= S.opt.max_pages)
        return PYHUGE_FALLBACK_CAP;
    if (S.retry_at_ns && os_now_ns() < S.retry_at_ns)
        return PYHUGE_FALLBACK_BACKOFF;
    int32_t idx = table_claim_free(&S.table);
    if (idx < 0)
        return PYHUGE_FALLBACK_SPACE;
    int reason = back_page((uint32_t)idx);
    if (reason >= 0) {
        if (S.table.pages[idx].state == PAGE_FREE)
            table_put_free(&S.table, (uint32_t)idx);
        note_refusal();
        return reason;
    }
    S.backoff_ns = 0;
    S.retry_at_ns = 0;
    table_add_page(&S.table, (uint32_t)idx, cls);
    log_debug("huge page %d backed at %p", idx, (void *)table_page_addr(&S.table, (uint32_t)idx));
    return -1;
}

static void log_fallback(int reason)
{
    unsigned bit = 1u << reason;
    if (!(__atomic_fetch_or(&S.reasons_logged, bit, __ATOMIC_RELAXED) & bit))
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

    lock();
    S.st.arena_size = len;
    if (S.opt.max_pages == 0)
        reason = PYHUGE_FALLBACK_CAP;
    else if (!setup_region())
        reason = PYHUGE_FALLBACK_SPACE;
    else if (!(a = table_take_slot(&S.table, cls, &must_zero)) && (reason = add_page(cls)) < 0)
        a = table_take_slot(&S.table, cls, &must_zero);
    if (a) {
        S.st.arenas_huge++;
    } else {
        S.st.arenas_fallback++;
        S.st.fallbacks[reason]++;
    }
    sync_counters();
    unlock();

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

/* Copies the live slots of a HUGE page to ordinary pages and moves those
 * over it in one mremap, so the arenas keep their addresses and contents.
 * Free slots become reserved address space. */
static int demote(uint32_t idx)
{
    struct page *p = &S.table.pages[idx];
    uintptr_t pa = table_page_addr(&S.table, idx);
    size_t slot = (size_t)1 << p->shift;
    unsigned n = 1u << (TABLE_PAGE_SHIFT - p->shift);

    /* MAP_POPULATE: one fault-in pass instead of 512 faults during the copy. */
    intptr_t tmp = os_mmap(NULL, TABLE_PAGE_SIZE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (os_failed(tmp))
        return (int)tmp;
    for (unsigned i = 0; i < n; i++)
        if (p->live & (1u << i))
            memcpy((char *)tmp + i * slot, (char *)pa + i * slot, slot);
    intptr_t r = os_mremap((void *)tmp, TABLE_PAGE_SIZE, TABLE_PAGE_SIZE,
                           MREMAP_MAYMOVE | MREMAP_FIXED, (void *)pa);
    if (os_failed(r)) {
        os_munmap((void *)tmp, TABLE_PAGE_SIZE);
        return (int)r;
    }
    for (unsigned i = 0; i < n; i++)
        if (!(p->live & (1u << i)))
            reserve(pa + i * slot, slot);
    table_demote(&S.table, idx);
    S.st.pages_demoted++;
    note_page_returned();
    log_debug("huge page %u moved to ordinary pages", idx);
    return 0;
}

static void release_page(uint32_t idx)
{
    uintptr_t pa = table_page_addr(&S.table, idx);
    if (reserve(pa, TABLE_PAGE_SIZE) != 0)
        table_mark_foreign(&S.table, idx);
    note_page_returned();
    log_debug("huge page %u back to the pool", idx);
}

/* After a slot of a DEMOTED page went: retire the page when it is empty. */
static void retire_if_empty(uint32_t idx)
{
    struct page *p = &S.table.pages[idx];
    if (p->state == PAGE_DEMOTED && p->live == 0) {
        reserve(table_page_addr(&S.table, idx), TABLE_PAGE_SIZE);
        table_retire_demoted(&S.table, idx);
    }
}

/* munmap of [lo, hi) inside page idx, for anything but an exact slot. */
static int unmap_in_page(uint32_t idx, uintptr_t lo, uintptr_t hi)
{
    struct page *p = &S.table.pages[idx];
    if (idx >= S.table.used || p->state == PAGE_FREE)
        return 0; /* nothing mapped there, as far as the caller can know */
    if (p->state == PAGE_FOREIGN) {
        int e = os_munmap((void *)lo, hi - lo);
        if (e || p->shift == 0)
            return e;
    }
    uintptr_t pa = table_page_addr(&S.table, idx);
    size_t slot = (size_t)1 << p->shift;
    unsigned first = (unsigned)((lo - pa) >> p->shift), last = (unsigned)((hi - 1 - pa) >> p->shift);
    bool partial = false;
    for (unsigned i = first; i <= last; i++) {
        uintptr_t s_lo = pa + i * slot, s_hi = s_lo + slot;
        bool whole = lo <= s_lo && hi >= s_hi;
        if ((p->live & (1u << i)) && !whole)
            partial = true;
    }
    if (p->state == PAGE_HUGE && partial) {
        int e = demote(idx);
        if (e)
            return e;
    }
    for (unsigned i = first; i <= last; i++) {
        uintptr_t s_lo = pa + i * slot, s_hi = s_lo + slot;
        uintptr_t c_lo = lo > s_lo ? lo : s_lo, c_hi = hi < s_hi ? hi : s_hi;
        bool whole = c_lo == s_lo && c_hi == s_hi;
        if (!(p->live & (1u << i)))
            continue;
        if (whole) {
            uint32_t ignored;
            switch (table_release(&S.table, s_lo, slot, &ignored)) {
            case RELEASE_UNMAP_PAGE: release_page(idx); break;
            case RELEASE_UNMAP_SLOT:
                if (p->state == PAGE_DEMOTED)
                    reserve(s_lo, slot);
                break;
            default: break;
            }
        } else if (p->state == PAGE_DEMOTED) {
            /* A real hole, as plain pages would have: mprotect or madvise
             * across it must fail with ENOMEM as the kernel's do. Freeing the
             * whole arena later fills it with reserved space again. */
            int e = os_munmap((void *)c_lo, c_hi - c_lo);
            if (e)
                return e;
        }
    }
    retire_if_empty(idx);
    return 0;
}

static uintptr_t round_up_4k(size_t len, uintptr_t a)
{
    size_t r = (len + PAGE_4K - 1) & ~(size_t)(PAGE_4K - 1);
    if (r < len || a + r < a)
        return 0;
    return r;
}

/* munmap under the lock; the range may run past ours on either side. */
static int unmap_locked(uintptr_t a, size_t len)
{
    uint32_t idx;
    switch (table_release(&S.table, a, len, &idx)) {
    case RELEASE_KEPT: return 0;
    case RELEASE_UNMAP_PAGE: release_page(idx); return 0;
    case RELEASE_UNMAP_SLOT:
        if (S.table.pages[idx].state == PAGE_FOREIGN)
            os_munmap((void *)a, len);
        else
            reserve(a, len);
        retire_if_empty(idx);
        return 0;
    case RELEASE_NOT_SLOT: break;
    }

    uintptr_t end = a + len, lo = S.lo, hi = S.hi;
    uintptr_t in_lo = a > lo ? a : lo, in_hi = end < hi ? end : hi;
    if (a < in_lo)
        os_next_munmap((void *)a, in_lo - a);
    if (end > in_hi)
        os_next_munmap((void *)in_hi, end - in_hi);
    for (uintptr_t p = in_lo; p < in_hi;) {
        uint32_t i = table_index(&S.table, p);
        uintptr_t page_end = table_page_addr(&S.table, i) + TABLE_PAGE_SIZE;
        uintptr_t seg_hi = in_hi < page_end ? in_hi : page_end;
        int e = unmap_in_page(i, p, seg_hi);
        if (e)
            return e;
        p = seg_hi;
    }
    return 0;
}

int shim_munmap(void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr;
    size_t plen = round_up_4k(len, a);
    if ((a & (PAGE_4K - 1)) || plen == 0)
        return os_next_munmap(addr, len); /* the kernel's EINVAL, untouched */
    if (in_shim) {
        errno = EAGAIN;
        return -1;
    }
    lock();
    int e = unmap_locked(a, plen);
    sync_counters();
    unlock();
    if (e) {
        errno = -e;
        return -1;
    }
    return 0;
}

/* ---- other calls on our range ------------------------------------------- */

int shim_prepare_range(void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr;
    size_t plen = round_up_4k(len, a);
    if ((a & (PAGE_4K - 1)) || plen == 0)
        return 0; /* let the kernel give its own answer */
    if (in_shim)
        return -EAGAIN;
    int e = 0;
    lock();
    uintptr_t end = a + plen;
    uintptr_t in_lo = a > S.lo ? a : S.lo, in_hi = end < S.hi ? end : S.hi;
    if (!table_range_mapped(&S.table, in_lo, in_hi - in_lo)) {
        e = -ENOMEM; /* what the kernel says of unmapped memory */
    } else {
        for (uintptr_t p = in_lo & ~(TABLE_PAGE_SIZE - 1); p < in_hi && !e; p += TABLE_PAGE_SIZE) {
            uint32_t i = table_index(&S.table, p);
            if (S.table.pages[i].state == PAGE_HUGE)
                e = demote(i) ? -ENOMEM : 0;
        }
    }
    sync_counters();
    unlock();
    return e;
}

void shim_give_up_range(void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr;
    size_t plen = round_up_4k(len, a);
    if ((a & (PAGE_4K - 1)) || plen == 0 || in_shim)
        return;
    lock();
    uintptr_t end = a + plen;
    uintptr_t in_lo = a > S.lo ? a : S.lo, in_hi = end < S.hi ? end : S.hi;
    for (uintptr_t p = in_lo & ~(TABLE_PAGE_SIZE - 1); p < in_hi; p += TABLE_PAGE_SIZE) {
        uint32_t i = table_index(&S.table, p);
        if (i < S.table.used && S.table.pages[i].state == PAGE_HUGE)
            demote(i);
        table_mark_foreign(&S.table, i);
        log_debug("page %u given up to a MAP_FIXED mapping", i);
    }
    sync_counters();
    unlock();
}

void *shim_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr)
{
    uintptr_t a = (uintptr_t)old_addr;
    size_t olen = round_up_4k(old_len, a), nlen = round_up_4k(new_len, 0);
    int e = 0;
    if ((a & (PAGE_4K - 1)) || olen == 0 || nlen == 0 ||
        (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED)) ||
        ((flags & MREMAP_FIXED) && !(flags & MREMAP_MAYMOVE)) ||
        ((flags & MREMAP_FIXED) && shim_overlaps(new_addr, nlen))) {
        e = EINVAL; /* MREMAP_DONTUNMAP on our range is not emulated: a clean error */
        goto fail;
    }
    if (in_shim) {
        e = EAGAIN;
        goto fail;
    }
    lock();
    /* In the plain world an arena is one mapping: the old range must lie in
     * one live slot, as it must lie in one mapping for the kernel. */
    bool ok = a >= S.lo && a + olen <= S.hi && table_range_mapped(&S.table, a, olen);
    if (ok) {
        const struct page *p = &S.table.pages[table_index(&S.table, a)];
        if (p->state != PAGE_FOREIGN)
            ok = (a >> p->shift) == ((a + olen - 1) >> p->shift);
    }
    /* Pages that are no longer huge may have been mprotect'ed or partly
     * unmapped: the kernel's own map says what the old range is. */
    int prot = PROT_READ | PROT_WRITE;
    if (ok && S.table.pages[table_index(&S.table, a)].state != PAGE_HUGE) {
        uintptr_t v_lo, v_hi;
        ok = os_vma_of(a, &v_lo, &v_hi, &prot) == 0 && a + olen <= v_hi;
    }
    if (!ok) {
        unlock();
        e = EFAULT;
        goto fail;
    }
    if (!(flags & MREMAP_FIXED) && nlen <= olen) {
        if (nlen < olen)
            e = -unmap_locked(a + nlen, olen - nlen);
        sync_counters();
        unlock();
        if (e)
            goto fail;
        return old_addr;
    }
    unlock();
    if (!(flags & MREMAP_MAYMOVE)) {
        e = ENOMEM; /* cannot grow in place: the next slot is ours */
        goto fail;
    }
    void *n = os_next_mmap((flags & MREMAP_FIXED) ? new_addr : NULL, nlen, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | ((flags & MREMAP_FIXED) ? MAP_FIXED : 0),
                           -1, 0);
    if (n == MAP_FAILED)
        return n;
    if (prot & PROT_READ)
        memcpy(n, old_addr, olen < nlen ? olen : nlen);
    if (prot != (PROT_READ | PROT_WRITE))
        os_mprotect(n, nlen, prot); /* the mapping keeps its protection, as mremap does */
    shim_munmap(old_addr, olen);
    return n;
fail:
    errno = e;
    return MAP_FAILED;
}

/* ---- fork ------------------------------------------------------------------ */

/*
 * After fork, parent and child share every private huge page copy-on-write,
 * and only the parent holds reservations for them: the first write by
 * either side needs a free huge page, and with the pool drained the child
 * dies of SIGBUS (FACTS.md, reproduced in test/fork). So the child moves its
 * inherited huge pages into memory of its own before fork() returns to it:
 * fresh reserved huge pages while the pool has them, ordinary pages after.
 * It only reads the shared pages, which needs no page. The forking parent
 * thread waits (atfork parent handler) until the child is done, so that the
 * parent cannot write, copy and, with no free page, take a page from under
 * the child mid-copy. In CPython that thread holds the GIL, so no other
 * Python thread runs meanwhile either.
 */

/* Moves a live HUGE page into a new hugetlb page of the child's own, with
 * its reservation; false when the pool has none or the kernel refuses. */
static bool rehome_huge(uint32_t idx)
{
    struct page *p = &S.table.pages[idx];
    uintptr_t pa = table_page_addr(&S.table, idx);
    size_t slot = (size_t)1 << p->shift;
    unsigned n = 1u << (TABLE_PAGE_SHIFT - p->shift);
    int reason;
    uintptr_t tmp = new_huge_page(&reason);
    if (!tmp)
        return false;
    for (unsigned i = 0; i < n; i++)
        if (p->live & (1u << i))
            memcpy((char *)tmp + i * slot, (char *)pa + i * slot, slot);
    intptr_t r = os_mremap((void *)tmp, TABLE_PAGE_SIZE, TABLE_PAGE_SIZE,
                           MREMAP_MAYMOVE | MREMAP_FIXED, (void *)pa);
    if (os_failed(r)) {
        os_munmap((void *)tmp, TABLE_PAGE_SIZE);
        return false;
    }
    p->dirty = p->live; /* the free slots of the new page are zero */
    return true;
}

static void move_inherited_pages(void)
{
    int32_t cached;
    while ((cached = table_evict_cached(&S.table)) >= 0)
        reserve(table_page_addr(&S.table, (uint32_t)cached), TABLE_PAGE_SIZE);
    bool pool_has_pages = true;
    unsigned rehomed = 0, demoted = 0, lost = 0;
    for (uint32_t i = 0; i < S.table.used; i++) {
        if (S.table.pages[i].state != PAGE_HUGE)
            continue;
        if (pool_has_pages && rehome_huge(i)) {
            rehomed++;
            continue;
        }
        pool_has_pages = false;
        if (demote(i) == 0)
            demoted++;
        else
            lost++;
    }
    log_debug("fork: child moved %u huge pages to new huge pages, %u to ordinary pages", rehomed,
              demoted);
    if (lost)
        log_warn("fork: %u huge pages could not be copied (out of memory); this child shares "
                 "them with its parent and may get SIGBUS if the pool runs dry", lost);
}

static void fork_prepare(void)
{
    lock();
    S.fork_moves = S.opt.fork == FORK_COPY && S.table.held > 0;
    S.fork_pipe[0] = S.fork_pipe[1] = -1;
    int e = S.fork_moves ? os_pipe(S.fork_pipe) : 0;
    if (e) {
        S.fork_pipe[0] = S.fork_pipe[1] = -1;
        log_warn("fork: no pipe to wait on (errno %d); the child moves its huge pages unguarded", -e);
    }
}

static void fork_parent(void)
{
    if (S.fork_pipe[0] >= 0) {
        os_close(S.fork_pipe[1]);
        /* Returns once the child wrote its byte, or died: its end closes. */
        char c;
        while (os_read(S.fork_pipe[0], &c, 1) == -EINTR)
            ;
        os_close(S.fork_pipe[0]);
        S.fork_pipe[0] = S.fork_pipe[1] = -1;
    }
    unlock();
}

static void fork_child(void)
{
    if (S.fork_moves) {
        if (S.fork_pipe[0] >= 0)
            os_close(S.fork_pipe[0]);
        move_inherited_pages();
        sync_counters();
        if (S.fork_pipe[1] >= 0) {
            os_write_all(S.fork_pipe[1], "1", 1);
            os_close(S.fork_pipe[1]);
        }
        S.fork_pipe[0] = S.fork_pipe[1] = -1;
    }
    unlock();
}

/* ---- reporting ------------------------------------------------------------ */

void shim_read_stats(struct pyhuge_stats *out)
{
    shim_ready();
    if (in_shim) {
        *out = S.st; /* from a signal handler inside the shim: best effort */
        return;
    }
    lock();
    *out = S.st;
    unlock();
    out->version = PYHUGE_STATS_VERSION;
}

static void format_stats(struct fmt *f, const struct pyhuge_stats *st)
{
    log_prefix(f);
    fmt_add(f,
            "stats: arenas huge=%lu fallback=%lu live=%lu size=%luK; "
            "huge pages now=%lu peak=%lu (%lu MiB) cached=%lu demoted=%lu; fallbacks",
            (unsigned long)st->arenas_huge, (unsigned long)st->arenas_fallback,
            (unsigned long)st->arenas_live, (unsigned long)(st->arena_size >> 10),
            (unsigned long)st->pages_now, (unsigned long)st->pages_peak,
            (unsigned long)(st->pages_peak * 2), (unsigned long)st->pages_cached,
            (unsigned long)st->pages_demoted);
    for (int r = 0; r < PYHUGE_FALLBACK_COUNT; r++)
        fmt_add(f, " %s=%lu", reason_names[r], (unsigned long)st->fallbacks[r]);
    fmt_add(f, "\n");
}

void shim_destructor(void)
{
    int s = __atomic_load_n(&S.state, __ATOMIC_ACQUIRE);
    if (s == STATE_OFF) {
        log_info("PYHUGE=off: nothing was done");
        return;
    }
    if (s != STATE_ACTIVE)
        return;
    struct pyhuge_stats st;
    shim_read_stats(&st);
    if (st.arenas_huge + st.arenas_fallback == 0) {
        bool python = cpython_present();
        if (!python)
            log_info("nothing was done: no CPython in this process");
        else
            log_info("nothing was done: CPython made no pymalloc arena request "
                     "(free-threaded build, or PYTHONMALLOC=malloc?)");
        if (!python)
            return;
    }
    if (S.opt.stats == STATS_NONE)
        return;
    char buf[512];
    struct fmt f;
    fmt_init(&f, buf, sizeof buf);
    format_stats(&f, &st);
    if (S.opt.stats == STATS_STDERR) {
        os_write_all(2, buf, f.len);
        return;
    }
    int fd = os_open(S.opt.stats_path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) {
        log_warn("cannot open PYHUGE_STATS file %s (errno %d); stats go to stderr",
                 S.opt.stats_path, -fd);
        os_write_all(2, buf, f.len);
        return;
    }
    os_write_all(fd, buf, f.len); /* one write with O_APPEND: lines never interleave */
    os_close(fd);
}
