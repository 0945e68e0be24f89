/*
 * A function's extent from its unwind entry (fnextent.h): the binary search
 * table of .eh_frame_hdr finds the FDE, whose CIE says how its addresses
 * are encoded (LSB 3.0 "Exception Frames"; the encodings GCC, clang and
 * binutils emit). Anything unexpected answers 0: the caller keeps its
 * fixed window.
 */
#include "fnextent.h"

#include <stdbool.h>
#include <string.h>

#define PE_OMIT 0xff
#define PE_ABSPTR 0x00
#define PE_ULEB128 0x01
#define PE_UDATA2 0x02
#define PE_UDATA4 0x03
#define PE_UDATA8 0x04
#define PE_SDATA2 0x0a
#define PE_SDATA4 0x0b
#define PE_SDATA8 0x0c
#define PE_PCREL 0x10
#define PE_DATAREL 0x30

struct reader {
    const uint8_t *p;
    bool ok;
};

static uint64_t uleb(struct reader *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->ok = false;
    return 0;
}

static void skip_leb(struct reader *r)
{
    for (int i = 0; i < 10; i++)
        if (!(*r->p++ & 0x80))
            return;
    r->ok = false;
}

/* A value in encoding enc; datarel relative to `data`. Applied (pcrel,
 * datarel) unless `raw`, as pc_range is. */
static uintptr_t read_enc(struct reader *r, uint8_t enc, uintptr_t data, bool raw)
{
    const uint8_t *at = r->p;
    uint64_t v;
    switch (enc & 0x0f) {
    case PE_ABSPTR: memcpy(&v, r->p, 8); r->p += 8; break;
    case PE_UDATA8:
    case PE_SDATA8: memcpy(&v, r->p, 8); r->p += 8; break;
    case PE_UDATA4: { uint32_t u; memcpy(&u, r->p, 4); r->p += 4; v = u; break; }
    case PE_SDATA4: { int32_t s; memcpy(&s, r->p, 4); r->p += 4; v = (uint64_t)(int64_t)s; break; }
    case PE_UDATA2: { uint16_t u; memcpy(&u, r->p, 2); r->p += 2; v = u; break; }
    case PE_SDATA2: { int16_t s; memcpy(&s, r->p, 2); r->p += 2; v = (uint64_t)(int64_t)s; break; }
    case PE_ULEB128: v = uleb(r); break;
    default: r->ok = false; return 0;
    }
    if (raw)
        return (uintptr_t)v;
    switch (enc & 0x70) {
    case 0: break;
    case PE_PCREL: v += (uintptr_t)at; break;
    case PE_DATAREL: v += data; break;
    default: r->ok = false; return 0;
    }
    if (enc & 0x80) /* indirect: not emitted for these tables */
        r->ok = false;
    return (uintptr_t)v;
}

/* The FDE pointer encoding of the CIE at cie ('R' in "zR..."; absptr
 * without). PE_OMIT when it cannot be read. */
static uint8_t cie_fde_encoding(const uint8_t *cie)
{
    uint32_t len, id;
    memcpy(&len, cie, 4);
    memcpy(&id, cie + 4, 4);
    if (len == 0 || len == 0xffffffffu || id != 0)
        return PE_OMIT;
    struct reader r = {cie + 8, true};
    uint8_t version = *r.p++;
    const char *aug = (const char *)r.p;
    r.p += strlen(aug) + 1;
    skip_leb(&r); /* code alignment */
    skip_leb(&r); /* data alignment */
    if (version == 1)
        r.p++;
    else
        skip_leb(&r);
    if (aug[0] != 'z')
        return aug[0] == '\0' && r.ok ? PE_ABSPTR : PE_OMIT;
    skip_leb(&r); /* augmentation data length */
    for (const char *a = aug + 1; *a && r.ok; a++) {
        switch (*a) {
        case 'R': return *r.p;
        case 'L': r.p++; break;
        case 'P': {
            uint8_t penc = *r.p++;
            read_enc(&r, penc, 0, true);
            break;
        }
        case 'S':
        case 'B': break;
        default: return PE_OMIT;
        }
    }
    return r.ok ? PE_ABSPTR : PE_OMIT;
}

size_t fnextent_after(uintptr_t base, const ElfW(Phdr) *phdr, int phnum, uintptr_t fn)
{
    const uint8_t *hdr = NULL;
    for (int i = 0; i < phnum; i++)
        if (phdr[i].p_type == PT_GNU_EH_FRAME)
            hdr = (const uint8_t *)(base + phdr[i].p_vaddr);
    if (!hdr || hdr[0] != 1 || hdr[1] == PE_OMIT || hdr[2] == PE_OMIT || hdr[3] == PE_OMIT)
        return 0;
    uintptr_t data = (uintptr_t)hdr;
    struct reader r = {hdr + 4, true};
    read_enc(&r, hdr[1], data, false); /* eh_frame_ptr */
    uintptr_t count = read_enc(&r, hdr[2], data, false);
    /* The table: pairs of initial location and FDE address, sorted, in
     * one fixed-size encoding (datarel sdata4 from every linker). */
    if (!r.ok || hdr[3] != (PE_DATAREL | PE_SDATA4) || count == 0)
        return 0;
    const uint8_t *table = r.p;
    uintptr_t lo = 0, hi = count;
    while (hi - lo > 1) { /* the last entry starting at or before fn */
        uintptr_t mid = lo + (hi - lo) / 2;
        int32_t start;
        memcpy(&start, table + mid * 8, 4);
        if (data + (intptr_t)start <= fn)
            lo = mid;
        else
            hi = mid;
    }
    int32_t fde_off;
    memcpy(&fde_off, table + lo * 8 + 4, 4);
    const uint8_t *fde = (const uint8_t *)(data + (intptr_t)fde_off);
    uint32_t len, cie_ptr;
    memcpy(&len, fde, 4);
    memcpy(&cie_ptr, fde + 4, 4);
    if (len == 0 || len == 0xffffffffu || cie_ptr == 0)
        return 0;
    uint8_t enc = cie_fde_encoding(fde + 4 - cie_ptr);
    if (enc == PE_OMIT)
        return 0;
    struct reader f = {fde + 8, true};
    uintptr_t begin = read_enc(&f, enc, 0, false);
    uintptr_t range = read_enc(&f, enc, 0, true);
    if (!f.ok || fn < begin || fn - begin >= range)
        return 0;
    return begin + range - fn;
}
