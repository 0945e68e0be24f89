/*
 * fnextent.c against the compiler's and the linker's own account: the
 * size the ELF symbol table gives a function (dladdr1's st_size) is the
 * extent its unwind entry gives, from its start and from inside it.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>

#include "fnextent.h"

__attribute__((visibility("default"), noinline)) int fnextent_probe_target(int x);
__attribute__((visibility("default"), noinline)) int fnextent_probe_target(int x)
{
    int s = 0;
    for (int i = 0; i < x; i++)
        s += i * x ^ (s >> 3);
    return s;
}

struct found {
    uintptr_t addr, base;
    const ElfW(Phdr) *phdr;
    int phnum;
};

static int find(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct found *f = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && f->addr - lo < ph->p_memsz) {
            f->base = info->dlpi_addr;
            f->phdr = info->dlpi_phdr;
            f->phnum = info->dlpi_phnum;
            return 1;
        }
    }
    return 0;
}

Test(fnextent, matches_the_symbol_size)
{
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    uintptr_t fn = (uintptr_t)&fnextent_probe_target;
    cr_assert(dladdr1((void *)fn, &info, (void **)&sym, RTLD_DL_SYMENT) && sym,
              "the test's own symbol table");
    struct found f = {.addr = fn};
    cr_assert(dl_iterate_phdr(find, &f), "the test program is loaded");
    cr_expect_eq(fnextent_after(f.base, f.phdr, f.phnum, fn), sym->st_size);
    cr_expect_eq(fnextent_after(f.base, f.phdr, f.phnum, fn + 4), sym->st_size - 4, "from inside");
}

Test(fnextent, answers_zero_outside_any_function)
{
    struct found f = {.addr = (uintptr_t)&fnextent_probe_target};
    cr_assert(dl_iterate_phdr(find, &f));
    static const char data[64] = {0};
    cr_expect_eq(fnextent_after(f.base, f.phdr, f.phnum, (uintptr_t)data), 0);
    cr_expect_eq(fnextent_after(f.base, NULL, 0, (uintptr_t)&fnextent_probe_target), 0,
                 "no program headers, no table");
}
