/*
 * Leaves free memory in 4 KiB pieces, as a long-running machine's is: maps
 * MiB mebibytes, writes every page, then gives back every second 4 KiB page,
 * so that no free 2 MiB block is left where it was, and holds the rest
 * until its standard input closes. A transparent huge page fault after
 * this must compact memory (migrate pages) or fall back to 4 KiB pages.
 *
 *   fragment MiB        prints "ready" when the memory is fragmented
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long mib = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    if (mib < 1) {
        fprintf(stderr, "usage: fragment MiB\n");
        return 64;
    }
    size_t len = (size_t)mib << 20;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("fragment: mmap");
        return 1;
    }
    madvise(p, len, MADV_NOHUGEPAGE); /* 4 KiB pages, each its own allocation */
    for (size_t off = 0; off < len; off += 4096)
        p[off] = 1;
    for (size_t off = 0; off < len; off += 8192)
        madvise(p + off, 4096, MADV_DONTNEED);
    puts("ready");
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0)
        ;
    return 0;
}
