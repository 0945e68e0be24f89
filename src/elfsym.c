/*
 * Symbol lookup in a loaded object without the dynamic linker's help
 * (elfsym.h): its dynamic section walked in memory, the GNU or SysV hash
 * table read, nothing allocated.
 */
#include "elfsym.h"

#include <elf.h>
#include <string.h>

struct dyn_tables {
    const ElfW(Sym) *symtab;
    const char *strtab;
    const uint32_t *gnu_hash;
    const uint32_t *sysv_hash;
};

/* glibc relocates these d_ptr entries in place when .dynamic is writable
 * (the usual case) and leaves them as offsets when it is read-only. */
static uintptr_t dyn_ptr(const struct dl_phdr_info *info, ElfW(Addr) v)
{
    return v < info->dlpi_addr ? info->dlpi_addr + v : v;
}

static bool find_tables(const struct dl_phdr_info *info, struct dyn_tables *t)
{
    memset(t, 0, sizeof *t);
    const ElfW(Dyn) *dyn = 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    if (!dyn)
        return false;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
        case DT_SYMTAB: t->symtab = (const ElfW(Sym) *)dyn_ptr(info, dyn->d_un.d_ptr); break;
        case DT_STRTAB: t->strtab = (const char *)dyn_ptr(info, dyn->d_un.d_ptr); break;
        case DT_GNU_HASH: t->gnu_hash = (const uint32_t *)dyn_ptr(info, dyn->d_un.d_ptr); break;
        case DT_HASH: t->sysv_hash = (const uint32_t *)dyn_ptr(info, dyn->d_un.d_ptr); break;
        default: break;
        }
    }
    return t->symtab && t->strtab && (t->gnu_hash || t->sysv_hash);
}

static uintptr_t match(const struct dl_phdr_info *info, const struct dyn_tables *t, uint32_t i,
                       const char *name)
{
    const ElfW(Sym) *s = &t->symtab[i];
    int type = ELF64_ST_TYPE(s->st_info);
    if (s->st_shndx == SHN_UNDEF || s->st_value == 0 || (type != STT_FUNC && type != STT_OBJECT))
        return 0;
    if (strcmp(t->strtab + s->st_name, name) != 0)
        return 0;
    return info->dlpi_addr + s->st_value;
}

static uintptr_t lookup_gnu(const struct dl_phdr_info *info, const struct dyn_tables *t,
                            const char *name)
{
    uint32_t h = 5381;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = h * 33 + *c;
    const uint32_t *ht = t->gnu_hash;
    uint32_t nbuckets = ht[0], symoffset = ht[1], bloom_size = ht[2];
    if (nbuckets == 0)
        return 0;
    const uint32_t *buckets = ht + 4 + bloom_size * (sizeof(ElfW(Addr)) / 4);
    const uint32_t *chain = buckets + nbuckets;
    uint32_t i = buckets[h % nbuckets];
    if (i < symoffset)
        return 0;
    for (;; i++) {
        uint32_t h2 = chain[i - symoffset];
        if ((h | 1) == (h2 | 1)) {
            uintptr_t a = match(info, t, i, name);
            if (a)
                return a;
        }
        if (h2 & 1)
            return 0;
    }
}

static uintptr_t lookup_sysv(const struct dl_phdr_info *info, const struct dyn_tables *t,
                             const char *name)
{
    uint32_t h = 0;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
        h = (h << 4) + *c;
        uint32_t g = h & 0xf0000000u;
        if (g)
            h ^= g >> 24;
        h &= ~g;
    }
    const uint32_t *ht = t->sysv_hash;
    uint32_t nbucket = ht[0];
    if (nbucket == 0)
        return 0;
    const uint32_t *bucket = ht + 2, *chain = bucket + nbucket;
    for (uint32_t i = bucket[h % nbucket]; i != STN_UNDEF; i = chain[i]) {
        uintptr_t a = match(info, t, i, name);
        if (a)
            return a;
    }
    return 0;
}

uintptr_t elfsym_lookup(const struct dl_phdr_info *info, const char *name)
{
    struct dyn_tables t;
    if (!find_tables(info, &t))
        return 0;
    return t.gnu_hash ? lookup_gnu(info, &t, name) : lookup_sysv(info, &t, name);
}

bool elfsym_contains(const struct dl_phdr_info *info, uintptr_t addr)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && addr - start < ph->p_memsz)
            return true;
    }
    return false;
}
