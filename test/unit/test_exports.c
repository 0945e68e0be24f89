/*
 * What the library shows the world: exactly the interposed calls of
 * hooks.h and the public API, nothing else (built with
 * -fvisibility=hidden); and every public header compiles on its own, in C
 * and in C++.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks.h"

#define NAME(ret, name, params, args, raw, gaps) #name,
#define API(name) #name,
static const char *const expected[] = {PYHUGE_HOOKS(NAME) PYHUGE_API_SYMBOLS(API)};
#define NEXPECTED (sizeof expected / sizeof expected[0])

Test(exports, are_exactly_the_hooks_and_the_api)
{
    FILE *p = popen("nm -D --defined-only " PYHUGE_LIB_PATH, "r");
    cr_assert(p, "cannot run nm");
    char line[512];
    int seen[NEXPECTED] = {0};
    while (fgets(line, sizeof line, p)) {
        char addr[64], type[8], name[256];
        if (sscanf(line, "%63s %7s %255s", addr, type, name) != 3)
            continue;
        /* Text and data symbols only: the version nodes (A) are the linker's. */
        if (strchr("TtWDdBbRr", type[0]) == NULL)
            continue;
        char *at = strchr(name, '@');
        if (at)
            *at = '\0';
        size_t i = 0;
        while (i < NEXPECTED && strcmp(expected[i], name) != 0)
            i++;
        cr_expect_lt(i, NEXPECTED, "exported but not in hooks.h or the API: %s", name);
        if (i < NEXPECTED)
            seen[i] = 1;
    }
    cr_assert_eq(pclose(p), 0, "nm failed on " PYHUGE_LIB_PATH);
    for (size_t i = 0; i < NEXPECTED; i++)
        cr_expect(seen[i], "%s is in the list but not exported", expected[i]);
}

/* The calls CPython 3.15 makes on its arenas, each hooked (issue 21):
 * mmap64 (arenas, and MAP_HUGETLB ones in its huge-page build), madvise
 * (MADV_HUGEPAGE after each mmap), prctl (PR_SET_VMA_ANON_NAME under
 * -X dev), munmap. */
Test(exports, include_the_calls_cpython_315_makes_on_arenas)
{
    static const char *const needed[] = {"mmap64", "madvise", "prctl", "munmap"};
    for (size_t n = 0; n < sizeof needed / sizeof needed[0]; n++) {
        size_t i = 0;
        while (i < NEXPECTED && strcmp(expected[i], needed[n]) != 0)
            i++;
        cr_expect_lt(i, NEXPECTED, "%s is not in hooks.h", needed[n]);
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "nm -D --defined-only %s | grep -qw prctl", PYHUGE_LIB_PATH);
    cr_expect_eq(system(cmd), 0, "prctl is exported");
}

static void compiles_alone(const char *compiler, const char *lang, const char *header)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "printf '#include \"%s\"\\n#include \"%s\"\\nint pyhuge_header_check;\\n' | "
             "%s -x %s -fsyntax-only -Wall -Wextra -Werror -pedantic -I%s -", header, header,
             compiler, lang, PYHUGE_INCLUDE_DIR);
    cr_expect_eq(system(cmd), 0, "%s does not compile on its own (twice) as %s: %s", header, lang,
                 cmd);
}

Test(headers, compile_on_their_own_in_c)
{
    compiles_alone(PYHUGE_CC, "c", "pyhuge.h");
}

Test(headers, compile_on_their_own_in_cxx)
{
    if (system("command -v c++ >/dev/null 2>&1") != 0)
        cr_skip_test("no C++ compiler on this machine");
    compiles_alone("c++", "c++", "pyhuge.h");
}
