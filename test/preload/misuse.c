/*
 * A random sequence of operations on arenas, printed so that two runs can be
 * compared: once on plain pages (no shim) and once under the shim, with the
 * same seed, the output must be identical. Operations: new arenas, CPython's
 * own free, and munmap/mprotect/madvise/mremap of random parts of arenas.
 * After every operation each live arena is probed page by page: readable,
 * writable, and whether it holds its pattern, zeros or something else.
 *
 *   misuse SEED STEPS ARENA_SIZE
 *
 * One difference is by design and left out: the memory of an arena freed
 * while its huge page holds another arena stays mapped until the page goes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fakepython.h"

#define PAGE 4096u
#define MAX_LIVE 6

struct arena {
    unsigned char *p;
    size_t size;
    unsigned char pattern;
    int pristine; /* one mapping, one protection: mremap is deterministic */
};

static struct arena live[MAX_LIVE];
static int nlive;
static uint64_t rng;
/* Once an arena has a hole, plain pages may see the kernel place a later
 * mapping in it: from then on no new mapping is made, so both runs stay
 * comparable. */
static int holes;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static size_t pick(size_t n) { return n ? (size_t)(next() % n) : 0; }

static char probe(unsigned char *addr, unsigned char pattern)
{
    unsigned char b;
    struct iovec local = {&b, 1}, remote = {addr, 1};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != 1)
        return '-'; /* unreadable: unmapped or PROT_NONE */
    unsigned char page[PAGE];
    memcpy(page, addr, PAGE);
    int all_pat = 1, all_zero = 1;
    for (unsigned i = 0; i < PAGE; i++) {
        all_pat &= page[i] == pattern;
        all_zero &= page[i] == 0;
    }
    int writable = process_vm_writev(getpid(), &local, 1, &remote, 1, 0) == 1;
    if (all_pat)
        return writable ? 'P' : 'p';
    if (all_zero)
        return writable ? 'Z' : 'z';
    return writable ? 'X' : 'x';
}

static void show(int step)
{
    printf("step %d:", step);
    for (int i = 0; i < nlive; i++) {
        printf(" [");
        for (size_t off = 0; off < live[i].size; off += PAGE) {
            /* Compress runs: "Px64" for 64 pages of P. */
            char c = probe(live[i].p + off, live[i].pattern);
            size_t run = 1;
            while (off + run * PAGE < live[i].size &&
                   probe(live[i].p + off + run * PAGE, live[i].pattern) == c)
                run++;
            printf("%c%zu", c, run);
            off += (run - 1) * PAGE;
        }
        printf("]");
    }
    printf("\n");
}

static void result(const char *what, int rc) { printf("  %s rc=%d errno=%d\n", what, rc, rc ? errno : 0); }

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: misuse SEED STEPS ARENA_SIZE\n");
        return 2;
    }
    rng = strtoull(argv[1], NULL, 0) * 2654435761u + 1;
    int steps = atoi(argv[2]);
    size_t asize = strtoul(argv[3], NULL, 0);
    unsigned char next_pattern = 1;

    for (int step = 0; step < steps; step++) {
        int op = (int)pick(nlive ? 8 : 1);
        if (holes && (op == 0 || op % 4 == 3))
            op = 2;
        if (op == 0 && nlive < MAX_LIVE) {
            unsigned char *p = fake_arena_alloc(asize);
            if (!p) {
                printf("alloc failed\n");
                return 1;
            }
            live[nlive] = (struct arena){p, asize, next_pattern++, 1};
            memset(p, live[nlive].pattern, asize);
            nlive++;
            printf("alloc\n");
        } else if (op == 1 && nlive) {
            int i = (int)pick((size_t)nlive);
            if (live[i].pristine && live[i].size == asize)
                fake_arena_free(live[i].p, asize);
            else
                munmap(live[i].p, live[i].size);
            live[i] = live[--nlive];
            printf("free %d\n", i);
        } else if (nlive) {
            int i = (int)pick((size_t)nlive);
            struct arena *a = &live[i];
            size_t pages = a->size / PAGE;
            size_t first = pick(4) == 0 ? 0 : pick(pages);
            size_t count = pick(4) == 0 ? pages - first : 1 + pick(pages - first);
            unsigned char *addr = a->p + first * PAGE;
            size_t len = count * PAGE;
            printf("arena %d pages %zu+%zu: ", i, first, count);
            switch (op % 4) {
            case 0:
                result("munmap", munmap(addr, len));
                a->pristine = 0;
                /* All of it gone is a free: memory of a freed arena whose
                 * huge page still holds another arena stays mapped (as after
                 * any allocator's free); it is never probed again. */
                if (first == 0 && count == pages)
                    live[i] = live[--nlive];
                else
                    holes = 1;
                break;
            case 1:
                result("mprotect", mprotect(addr, len, PROT_READ));
                a->pristine &= first == 0 && count == pages;
                break;
            case 2:
                result("madvise", madvise(addr, len, MADV_DONTNEED));
                break;
            case 3: {
                if (!a->pristine) {
                    result("madvise-free-range", madvise(addr, len, MADV_DONTNEED));
                    break;
                }
                size_t sizes[] = {a->size / 2, a->size, a->size * 2, a->size + 3 * PAGE};
                size_t nsize = sizes[pick(4)];
                int flags = nsize <= a->size && pick(2) ? 0 : MREMAP_MAYMOVE;
                void *np = mremap(a->p, a->size, nsize, flags);
                if (np == MAP_FAILED) {
                    result("mremap", -1);
                    break;
                }
                size_t keep = nsize < a->size ? nsize : a->size;
                int kept = 1;
                for (size_t k = 0; k < keep; k++)
                    kept &= ((unsigned char *)np)[k] == a->pattern;
                printf("  mremap rc=0 size=%zu moved=%d kept=%d\n", nsize,
                       flags ? -1 : np != (void *)a->p, kept);
                memset((unsigned char *)np + keep, a->pattern, nsize - keep);
                a->p = np;
                a->size = nsize;
                break;
            }
            }
        }
        show(step);
    }
    return 0;
}
