/*
 * Helpers shared by the tests that run real processes under the shim: the
 * huge page pool (set, read, restored), running a program with a given
 * environment, and reading its key=value output.
 */
#ifndef PYHUGE_TEST_HARNESS_H
#define PYHUGE_TEST_HARNESS_H

#include <stdbool.h>

/* A field of /proc/meminfo ("HugePages_Free"), or -1. */
long meminfo(const char *key);

/* Sets /proc/sys/vm/nr_hugepages to n; true when the kernel granted all of
 * it. The first call remembers the value to restore at exit. */
bool pool_set(long n);
/* Skips the current test (cr_skip_test) unless the pool can be set to n. */
void pool_require(long n);
void pool_restore(void);

struct run {
    char out[1 << 16];
    char err[1 << 14];
    int status; /* exit code, or 128 + signal */
};

/* Runs argv[0] with the environment env (NULL-terminated "K=V" strings, to
 * which PATH and HOME are added) and captures its output. */
void run(struct run *r, char *const env[], char *const argv[]);

/* The value of `key=` on the nth (0-based) line of text starting with
 * `prefix`, or -1 when there is no such line or key. */
long field(const char *text, const char *prefix, int nth, const char *key);
/* Same, for a hexadecimal value (addresses). */
unsigned long field_hex(const char *text, const char *prefix, int nth, const char *key);
/* How many lines start with prefix. */
int count_lines(const char *text, const char *prefix);

#endif
