/* Everything done to the shim's range besides handing out arenas: freeing
 * them, moving huge pages to ordinary pages, and the calls that change a
 * range in place (mprotect, madvise, mremap, MAP_FIXED over it). */
#include "shim.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "os.h"
#include "state.h"

/* ---- giving memory back ------------------------------------------------- */

int move_live_slots(uint32_t idx, uintptr_t to)
{
    const struct page *p = &shim.table.pages[idx];
    uintptr_t pa = table_page_addr(&shim.table, idx);
    size_t slot = (size_t)1 << p->shift;
    for (unsigned i = 0; i < 1u << (TABLE_PAGE_SHIFT - p->shift); i++)
        if (p->live & (1u << i))
            memcpy((char *)to + i * slot, (char *)pa + i * slot, slot);
    intptr_t r = os_mremap((void *)to, TABLE_PAGE_SIZE, TABLE_PAGE_SIZE,
                           MREMAP_MAYMOVE | MREMAP_FIXED, (void *)pa);
    if (os_failed(r)) {
        os_munmap((void *)to, TABLE_PAGE_SIZE);
        return (int)r;
    }
    return 0;
}

/* Copies the live slots of a HUGE page to ordinary pages and moves those
 * over it in one mremap, so the arenas keep their addresses and contents.
 * Free slots become reserved address space. */
int demote(uint32_t idx)
{
    struct page *p = &shim.table.pages[idx];
    uintptr_t pa = table_page_addr(&shim.table, idx);
    size_t slot = (size_t)1 << p->shift;
    unsigned n = 1u << (TABLE_PAGE_SHIFT - p->shift);
    if (p->state == PAGE_THP) {
        /* Already ordinary memory: the kernel can do anything to part of
         * it. It only stops taking arenas, whose slots it could not trust. */
        for (unsigned i = 0; i < n; i++)
            if (!(p->live & (1u << i)))
                reserve(pa + i * slot, slot);
        table_demote(&shim.table, idx);
        return 0;
    }

    /* MAP_POPULATE: one fault-in pass instead of 512 faults during the copy. */
    intptr_t tmp = os_mmap(NULL, TABLE_PAGE_SIZE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (os_failed(tmp))
        return (int)tmp;
    int e = move_live_slots(idx, (uintptr_t)tmp);
    if (e)
        return e;
    for (unsigned i = 0; i < n; i++)
        if (!(p->live & (1u << i)))
            reserve(pa + i * slot, slot);
    table_demote(&shim.table, idx);
    shim.st.pages_demoted++;
    note_page_returned();
    log_debug("huge page %u moved to ordinary pages", idx);
    return 0;
}

static void release_page(uint32_t idx)
{
    uintptr_t pa = table_page_addr(&shim.table, idx);
    if (reserve(pa, TABLE_PAGE_SIZE) != 0)
        table_mark_foreign(&shim.table, idx);
    note_page_returned();
    log_debug("huge page %u back to the pool", idx);
}

/* After a slot of a DEMOTED page went: retire the page when it is empty. */
static void retire_if_empty(uint32_t idx)
{
    struct page *p = &shim.table.pages[idx];
    if (p->state == PAGE_DEMOTED && p->live == 0) {
        reserve(table_page_addr(&shim.table, idx), TABLE_PAGE_SIZE);
        table_retire_demoted(&shim.table, idx);
    }
}

/* munmap of [lo, hi) inside page idx, for anything but an exact slot. */
static int unmap_in_page(uint32_t idx, uintptr_t lo, uintptr_t hi)
{
    struct page *p = &shim.table.pages[idx];
    if (idx >= shim.table.used || p->state == PAGE_FREE)
        return 0; /* nothing mapped there, as far as the caller can know */
    if (p->state == PAGE_FOREIGN) {
        int e = os_munmap((void *)lo, hi - lo);
        if (e || p->shift == 0)
            return e;
    }
    uintptr_t pa = table_page_addr(&shim.table, idx);
    size_t slot = (size_t)1 << p->shift;
    unsigned first = (unsigned)((lo - pa) >> p->shift), last = (unsigned)((hi - 1 - pa) >> p->shift);
    bool partial = false;
    for (unsigned i = first; i <= last; i++) {
        uintptr_t s_lo = pa + i * slot, s_hi = s_lo + slot;
        bool whole = lo <= s_lo && hi >= s_hi;
        if ((p->live & (1u << i)) && !whole)
            partial = true;
    }
    if (page_serves(p) && partial) {
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
            switch (table_release(&shim.table, s_lo, slot, &ignored)) {
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
    switch (table_release(&shim.table, a, len, &idx)) {
    case RELEASE_KEPT: return 0;
    case RELEASE_UNMAP_PAGE: release_page(idx); return 0;
    case RELEASE_UNMAP_SLOT:
        if (shim.table.pages[idx].state == PAGE_FOREIGN)
            os_munmap((void *)a, len);
        else
            reserve(a, len);
        retire_if_empty(idx);
        return 0;
    case RELEASE_NOT_SLOT: break;
    }

    uintptr_t end = a + len, lo = shim.lo, hi = shim.hi;
    uintptr_t in_lo = a > lo ? a : lo, in_hi = end < hi ? end : hi;
    if (a < in_lo)
        os_next_munmap((void *)a, in_lo - a);
    if (end > in_hi)
        os_next_munmap((void *)in_hi, end - in_hi);
    for (uintptr_t p = in_lo; p < in_hi;) {
        uint32_t i = table_index(&shim.table, p);
        uintptr_t page_end = table_page_addr(&shim.table, i) + TABLE_PAGE_SIZE;
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
    shim_lock();
    int e = unmap_locked(a, plen);
    sync_counters();
    shim_unlock();
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
    shim_lock();
    uintptr_t end = a + plen;
    uintptr_t in_lo = a > shim.lo ? a : shim.lo, in_hi = end < shim.hi ? end : shim.hi;
    if (!table_range_mapped(&shim.table, in_lo, in_hi - in_lo)) {
        e = -ENOMEM; /* what the kernel says of unmapped memory */
    } else {
        for (uintptr_t p = in_lo & ~(TABLE_PAGE_SIZE - 1); p < in_hi && !e; p += TABLE_PAGE_SIZE) {
            uint32_t i = table_index(&shim.table, p);
            if (page_serves(&shim.table.pages[i]))
                e = demote(i) ? -ENOMEM : 0;
        }
    }
    sync_counters();
    shim_unlock();
    return e;
}

void shim_give_up_range(void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr;
    size_t plen = round_up_4k(len, a);
    if ((a & (PAGE_4K - 1)) || plen == 0 || in_shim)
        return;
    shim_lock();
    uintptr_t end = a + plen;
    uintptr_t in_lo = a > shim.lo ? a : shim.lo, in_hi = end < shim.hi ? end : shim.hi;
    for (uintptr_t p = in_lo & ~(TABLE_PAGE_SIZE - 1); p < in_hi; p += TABLE_PAGE_SIZE) {
        uint32_t i = table_index(&shim.table, p);
        if (i < shim.table.used && page_serves(&shim.table.pages[i]))
            demote(i);
        table_mark_foreign(&shim.table, i);
        log_debug("page %u given up to a MAP_FIXED mapping", i);
    }
    sync_counters();
    shim_unlock();
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
    shim_lock();
    /* In the plain world an arena is one mapping: the old range must lie in
     * one live slot, as it must lie in one mapping for the kernel. */
    bool ok = a >= shim.lo && a + olen <= shim.hi && table_range_mapped(&shim.table, a, olen);
    if (ok) {
        const struct page *p = &shim.table.pages[table_index(&shim.table, a)];
        if (p->state != PAGE_FOREIGN)
            ok = (a >> p->shift) == ((a + olen - 1) >> p->shift);
    }
    /* Pages that are no longer huge may have been mprotect'ed or partly
     * unmapped: the kernel's own map says what the old range is. */
    int prot = PROT_READ | PROT_WRITE;
    if (ok && !page_serves(&shim.table.pages[table_index(&shim.table, a)])) {
        uintptr_t v_lo, v_hi;
        ok = os_vma_of(a, &v_lo, &v_hi, &prot) == 0 && a + olen <= v_hi;
    }
    if (!ok) {
        shim_unlock();
        e = EFAULT;
        goto fail;
    }
    if (!(flags & MREMAP_FIXED) && nlen <= olen) {
        if (nlen < olen)
            e = -unmap_locked(a + nlen, olen - nlen);
        sync_counters();
        shim_unlock();
        if (e)
            goto fail;
        return old_addr;
    }
    shim_unlock();
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

