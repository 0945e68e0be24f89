/*
 * Finds the real CPythons the e2e and fork suites run on (pythons.h): pyenv's,
 * Debian's, and the 3.14.7 builds scripts/build-cpython.sh caches outside
 * the clone. A missing one is a reason to skip, said in full.
 */
#include "pythons.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The builds of scripts/build-cpython.sh: a tree counts once its `.built`
 * mark is there (a build in progress has its interpreter before it). */
static const char *cached(const char *tree, const char *exe, char *buf, size_t len, char *why,
                          size_t why_len)
{
    char mark[512];
    snprintf(buf, len, "%s/%s/bin/%s", CPYTHON_CACHE, tree, exe);
    snprintf(mark, sizeof mark, "%s/%s/.built", CPYTHON_CACHE, tree);
    if (access(buf, X_OK) == 0 && access(mark, F_OK) == 0)
        return buf;
    snprintf(why, why_len, "no CPython %s at %s: scripts/build-cpython.sh%s builds it (scripts/test.sh "
             "does, when ../shared/cpython has the source)", tree, buf,
             strcmp(tree, "3.14.7t") == 0 ? " --ft" : "");
    return NULL;
}

const char *python_path(const char *which, char *buf, size_t len, char *why, size_t why_len)
{
    if (strcmp(which, "system") == 0) {
        snprintf(buf, len, "/usr/bin/python3.11");
        snprintf(why, why_len, "no %s on this machine", buf);
        return access(buf, X_OK) == 0 ? buf : NULL;
    }
    if (strcmp(which, "3.14") == 0)
        return cached("3.14.7", "python3.14", buf, len, why, why_len);
    if (strcmp(which, "3.14t") == 0)
        return cached("3.14.7t", "python3.14t", buf, len, why, why_len);
    const char *root = getenv("PYENV_ROOT");
    char pattern[512];
    snprintf(pattern, sizeof pattern, "%s/versions/%s.*/bin/python%s",
             root && *root ? root : "/root/.pyenv", which, which);
    snprintf(why, why_len, "no Python %s on this machine (%s)", which, pattern);
    glob_t g;
    const char *found = NULL;
    if (glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        snprintf(buf, len, "%s", g.gl_pathv[g.gl_pathc - 1]);
        found = buf;
    }
    globfree(&g);
    return found;
}
