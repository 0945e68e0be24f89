/*
 * Hostile arguments to every interposed call, on an arena and elsewhere:
 * prints each call's result and errno, so that a run on plain pages and a
 * run under the shim can be compared line by line. Arena addresses differ
 * between the runs; results must not.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "fakepython.h"

#define ARENA ((size_t)1 << 20)

static void say(const char *what, long rc)
{
    printf("%-40s rc=%ld errno=%d\n", what, rc, rc ? errno : 0);
    errno = 0;
}

static void say_map(const char *what, void *p)
{
    printf("%-40s %s errno=%d\n", what, p == MAP_FAILED ? "failed" : "ok", p == MAP_FAILED ? errno : 0);
    errno = 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    unsigned char *a = fake_arena_alloc(ARENA), *b = fake_arena_alloc(ARENA);
    if (!a || !b)
        return 1;
    memset(a, 7, ARENA);
    memset(b, 8, ARENA);

    say("munmap(NULL, 0)", munmap(NULL, 0));
    say("munmap(1, 4096)", munmap((void *)1, 4096));
    say("munmap(arena, 0)", munmap(a, 0));
    say("munmap(arena + 1, 4096)", munmap(a + 1, 4096));
    say("munmap(arena, SIZE_MAX)", munmap(a, SIZE_MAX));
    say("munmap(arena, SIZE_MAX - 4095)", munmap(a, SIZE_MAX - 4095));
    say("mprotect(NULL, SIZE_MAX, R)", mprotect(NULL, SIZE_MAX, PROT_READ));
    say("mprotect(arena + 1, 10, R)", mprotect(a + 1, 10, PROT_READ));
    say("mprotect(arena, SIZE_MAX, R)", mprotect(a, SIZE_MAX, PROT_READ));
    say("mprotect(arena, 4096, bogus prot)", mprotect(a, 4096, 0x7fff0000));
    say("madvise(arena, SIZE_MAX, DONTNEED)", madvise(a, SIZE_MAX, MADV_DONTNEED));
    say("madvise(arena, 4096, bogus advice)", madvise(a, 4096, 9999));
    say("madvise(arena + 5, 4096, WILLNEED)", madvise(a + 5, 4096, MADV_WILLNEED));
    say("mlock(arena + 3, 0)", mlock(a + 3, 0));
    say_map("mremap(arena, 0, 4096, 0)", mremap(a, 0, 4096, 0));
    say_map("mremap(arena, SIZE_MAX, 4096, MAYMOVE)", mremap(a, SIZE_MAX, 4096, MREMAP_MAYMOVE));
    say_map("mremap(arena, 1M, SIZE_MAX, MAYMOVE)", mremap(a, ARENA, SIZE_MAX, MREMAP_MAYMOVE));
    say_map("mremap(arena, 1M, 0, MAYMOVE)", mremap(a, ARENA, 0, MREMAP_MAYMOVE));
    say_map("mremap(arena + 1, 4096, 4096, 0)", mremap(a + 1, 4096, 4096, 0));
    say_map("mremap(arena, 1M, 2M, FIXED)", mremap(a, ARENA, 2 * ARENA, MREMAP_FIXED, (void *)0x100000));
    say_map("mremap(arena, 1M, 2M, 0xff)", mremap(a, ARENA, 2 * ARENA, 0xff));
    say_map("mmap(NULL, 0, RW, private anon)",
            mmap(NULL, 0, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    say_map("mmap(NULL, SIZE_MAX, RW, private anon)",
            mmap(NULL, SIZE_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    say_map("mmap(NULL, 1M, RW, no private/shared)",
            mmap(NULL, ARENA, PROT_READ | PROT_WRITE, MAP_ANONYMOUS, -1, 0));
    say_map("mmap(NULL, 1M, RW, private, fd 12345)",
            mmap(NULL, ARENA, PROT_READ | PROT_WRITE, MAP_PRIVATE, 12345, 0));
    say_map("mmap(NULL, 1M, RW, private anon, off 1)",
            mmap(NULL, ARENA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 1));

    int intact = 1;
    for (size_t i = 0; i < ARENA; i++)
        intact &= a[i] == 7 && b[i] == 8;
    printf("arenas intact=%d\n", intact);
    fake_arena_free(a, ARENA);
    fake_arena_free(b, ARENA);
    return 0;
}
