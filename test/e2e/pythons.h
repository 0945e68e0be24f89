/*
 * The real CPythons the e2e and fork suites run on, by name: "3.6" to
 * "3.13" (pyenv's newest of that minor), "system" (Debian's
 * /usr/bin/python3.11, libpython in the executable), "3.14" and "3.14t"
 * (CPython 3.14.7 and its free-threaded build, which scripts/build-cpython.sh
 * builds once per machine into the cache, CPYTHON_CACHE: meson's
 * cpython_cache option).
 */
#ifndef PYHUGE_TEST_PYTHONS_H
#define PYHUGE_TEST_PYTHONS_H

#include <stddef.h>

struct python {
    char which[16];
};

/* The interpreter's path in buf, or NULL when the machine lacks it; then
 * `why` (why_len bytes) says what is missing and how to get it, ready for
 * cr_skip_test("%s", why). */
const char *python_path(const char *which, char *buf, size_t len, char *why, size_t why_len);

#endif
