/*
 * Prefork servers under the shim, for real: what a forked worker's memory
 * becomes (test/fork/worker_pages.py), and Debian's gunicorn (Django) and
 * uWSGI (Flask) running the demo apps of examples/servers/ on a free
 * loopback port (test/servers/serve.py): every answer right, no worker
 * lost, the workers' own arenas on huge pages.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define PRELOAD PYHUGE_PRELOAD
#define PYTHON "/usr/bin/python3.11"

static struct run r;
static struct pool base;

static void roomy_pool(void)
{
    if (access(PYTHON, X_OK) != 0)
        cr_skip_test("no %s on this machine", PYTHON);
    base = pool_require(200);
}

/* ---- a forked worker's pages ------------------------------------------------ */

TestSuite(worker, .init = roomy_pool, .fini = pool_restore, .timeout = 120);

static void worker_pages_in(char *mode, char *percent, char *verbose, char *fork_mode)
{
    char *argv[] = {PYTHON, WORKER_PAGES_PY, mode, percent, NULL};
    char *env[] = {PRELOAD, verbose, fork_mode, NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_assert_eq(count_lines(r.out, "parent ok status=0"), 1, "%s\n%s", r.out, r.err);
    cr_assert_eq(count_lines(r.out, "child "), 1, "%s", r.out);
}

static void worker_pages(char *mode, char *percent, char *verbose)
{
    worker_pages_in(mode, percent, verbose, "PYHUGE_FORK=copy");
}

/* The master's last page has a free slot when it forks; the child's first
 * arena went there (ordinary memory shared with the master), not onto a
 * huge page of its own. */
Test(worker, a_childs_new_arenas_go_on_huge_pages_not_into_inherited_pages)
{
    worker_pages("new", "0", "PYHUGE_VERBOSE=0");
    cr_expect_eq(field(r.out, "child", 0, "thp"), 0,
                 "no new arena in a page inherited from the master:\n%s", r.out);
    cr_expect_gt(field(r.out, "child", 0, "huge"), 10, "%s", r.out);
    cr_expect_gt(field(r.out, "child", 0, "hugetlb_kb"), 10 * 2048, "%s", r.out);
}

static int collapsed(void)
{
    int n = 0;
    for (const char *p = r.err; (p = strstr(p, "collapsed into a transparent huge page")); p++)
        n++;
    return n;
}

/* A worker that wrote every object of the master's heap owns its copy of
 * nearly every 4 KiB piece of those pages: they are collapsed into
 * transparent huge pages (one per 10 ms of the arena path). */
Test(worker, pages_a_child_has_copied_are_collapsed)
{
    if (access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK) != 0)
        cr_skip_test("no transparent huge pages in this kernel");
    worker_pages("write", "100", "PYHUGE_VERBOSE=2");
    if (strstr(r.err, "no MADV_COLLAPSE"))
        cr_skip_test("no MADV_COLLAPSE in this kernel (6.1+)");
    cr_expect_geq(collapsed(), 5, "pages collapsed:\n%s", r.err);
}

/* A worker that wrote none of it: nothing to collapse (a collapse would
 * copy the whole page: memory the worker did not use). */
Test(worker, pages_still_shared_with_the_master_are_left_alone)
{
    worker_pages("write", "0", "PYHUGE_VERBOSE=2");
    cr_expect_eq(collapsed(), 0, "nothing collapsed:\n%s", r.err);
}

/* PYHUGE_FORK=huge: the child copies the 60 MiB heap it inherits onto huge
 * pages of its own at fork, before it writes anything. */
Test(worker, fork_huge_gives_the_child_its_own_huge_pages_for_what_it_inherits)
{
    worker_pages_in("write", "0", "PYHUGE_VERBOSE=1", "PYHUGE_FORK=huge");
    cr_expect_geq(field(r.out, "child", 0, "hugetlb_kb"), 50 * 1024,
                  "the inherited heap on the child's own huge pages:\n%s\n%s", r.out, r.err);
    cr_expect(strstr(r.err, "copied onto huge pages of this child's own") != NULL, "%s", r.err);
}

/* The same with a pool that covers the master's heap and no more: the
 * child gets what the pool has left (none), the rest stays shared with
 * its parent, and it runs to the end. */
Test(worker, fork_huge_on_a_drained_pool_loses_no_child)
{
    base = pool_require(33); /* the 60 MiB heap takes about 31 pages */
    worker_pages_in("write", "100", "PYHUGE_VERBOSE=1", "PYHUGE_FORK=huge");
    cr_expect(strstr(r.out, "exit=0") != NULL, "%s", r.out);
    cr_expect(strstr(r.err, "left shared with it") != NULL, "%s", r.err);
}

/* ---- real servers -------------------------------------------------------------- */

static void server_or_skip(const char *server)
{
    const char *bin = strcmp(server, "gunicorn") == 0 ? "/usr/bin/gunicorn" : "/usr/bin/uwsgi";
    if (access(bin, X_OK) != 0)
        cr_skip_test("no %s (Debian's gunicorn / uwsgi-core + uwsgi-plugin-python3)", bin);
    if (strcmp(server, "uwsgi") == 0 && access("/usr/lib/uwsgi/plugins/python3_plugin.so", R_OK) != 0)
        cr_skip_test("no uWSGI python3 plugin (uwsgi-plugin-python3)");
    /* Debian's uWSGI 2.0 copies past the end of a heap block of its own at
     * start-up (a memcpy past a uwsgi_malloc'd 787-byte block): the ASan
     * runtime preloaded beside an instrumented shim stops it before it
     * serves. Not the shim's memory: skipped under ASan only. */
    if (strcmp(server, "uwsgi") == 0 && strstr(PRELOAD, "libasan"))
        cr_skip_test("uWSGI itself trips AddressSanitizer at start-up (a heap overflow of its "
                     "own); run under the plain build");
}

static void serve(char *server, char *max_requests)
{
    char *argv[] = {PYTHON, SERVE_PY, server, "--requests", "400", "--max-requests", max_requests,
                    NULL};
    char *env[] = {PRELOAD, "PYHUGE_STATS=1", "PYHUGE_VERBOSE=1", NULL};
    run(&r, env, argv);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_assert_gt(field(r.out, "ready_ms", 0, "ready_ms"), 0, "%s", r.out);
    cr_expect_eq(field(r.out, "answers", 0, "answers"), 400, "every answer:\n%s", r.out);
    cr_expect_eq(field(r.out, "answers", 0, "wrong"), 0, "every checksum right:\n%s", r.out);
    cr_expect_eq(field(r.out, "answers", 0, "failed"), 0, "%s", r.out);
    cr_expect_eq(field(r.out, "deaths", 0, "deaths"), 0, "no worker killed:\n%s", r.out);
    cr_expect_eq(field(r.out, "exit", 0, "exit"), 0, "%s", r.out);
    cr_expect(strstr(r.out, "]: WARNING") == NULL, "no warning from the shim:\n%s", r.out);
}

/* Every worker that served requests before it was measured has arenas of
 * its own on huge pages (a successor forked by recycling a moment ago may
 * not have made one yet: serve.py marks it answered=0). */
static void workers_on_huge_pages(void)
{
    int n = count_lines(r.out, "worker "), served = 0;
    cr_expect_geq(n, 2, "%s", r.out);
    for (int i = 0; i < n; i++) {
        if (field(r.out, "worker ", i, "answered") != 1)
            continue;
        served++;
        cr_expect_geq(field(r.out, "worker ", i, "hugetlb_kb"), 2048,
                      "worker %d's own arenas on huge pages:\n%s", i, r.out);
    }
    cr_expect_geq(served, 1, "a worker measured after serving requests:\n%s", r.out);
}

TestSuite(servers, .init = roomy_pool, .fini = pool_restore, .timeout = 240);

Test(servers, gunicorn_django_workers_on_huge_pages_with_recycling)
{
    server_or_skip("gunicorn");
    serve("gunicorn", "100");
    workers_on_huge_pages();
    cr_expect_gt(field(r.out, "pids_answering", 0, "pids_answering"), 2,
                 "workers were recycled (max_requests):\n%s", r.out);
}

Test(servers, uwsgi_flask_workers_on_huge_pages_and_malloc_settings)
{
    server_or_skip("uwsgi");
    serve("uwsgi", "2000");
    workers_on_huge_pages();
    cr_expect(strstr(r.out, "glibc malloc: blocks up to") != NULL,
              "the embedded libpython got the malloc settings:\n%s", r.out);
}

/* A pool of 4 pages, drained by the master: every worker runs and answers
 * right (its arenas fall back), none is lost. */
static void drained(char *server)
{
    server_or_skip(server);
    base = pool_require(4);
    serve(server, "100");
}

Test(servers, gunicorn_on_a_drained_pool_loses_no_worker) { drained("gunicorn"); }
Test(servers, uwsgi_on_a_drained_pool_loses_no_worker) { drained("uwsgi"); }
