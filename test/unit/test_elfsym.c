/* Symbol lookup in loaded objects, checked against the dynamic linker's own. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <link.h>

#include "elfsym.h"

struct q {
    const char *name;
    uintptr_t want_in; /* an address inside the object to search */
    uintptr_t got;
    int seen;
};

static int cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct q *q = data;
    if (!elfsym_contains(info, q->want_in))
        return 0;
    q->seen = 1;
    q->got = elfsym_lookup(info, q->name);
    return 1;
}

static uintptr_t lookup_in_object_of(uintptr_t addr, const char *name)
{
    struct q q = {.name = name, .want_in = addr};
    dl_iterate_phdr(cb, &q);
    cr_assert(q.seen, "some object holds %p", (void *)addr);
    return q.got;
}

Test(elfsym, finds_libc_functions_where_dlsym_does)
{
    void *want = dlsym(RTLD_DEFAULT, "getpid");
    cr_assert_not_null(want);
    cr_expect_eq(lookup_in_object_of((uintptr_t)want, "getpid"), (uintptr_t)want);
    void *ge = dlsym(RTLD_DEFAULT, "getenv");
    cr_expect_eq(lookup_in_object_of((uintptr_t)want, "getenv"), (uintptr_t)ge);
}

Test(elfsym, misses_names_an_object_does_not_define)
{
    uintptr_t in_libc = (uintptr_t)dlsym(RTLD_DEFAULT, "getpid");
    cr_expect_eq(lookup_in_object_of(in_libc, "PyObject_GetArenaAllocator"), 0);
    cr_expect_eq(lookup_in_object_of(in_libc, ""), 0);
}

Test(elfsym, object_ranges_contain_their_code)
{
    uintptr_t here = (uintptr_t)&lookup_in_object_of;
    struct q q = {.name = "main", .want_in = here};
    dl_iterate_phdr(cb, &q);
    cr_expect(q.seen, "the test executable's own code is in one of its segments");
}
