/*
 * Finding a symbol in an object the dynamic linker has loaded, by walking its
 * dynamic section in memory. Unlike dlsym it never allocates, never sets
 * dlerror state and takes no lock, so it may run inside an interposed mmap.
 */
#ifndef PYHUGE_ELFSYM_H
#define PYHUGE_ELFSYM_H

#include <link.h>
#include <stdbool.h>
#include <stdint.h>

/* Address of the defined function or object `name` exported by the object
 * that `info` describes, or 0. */
uintptr_t elfsym_lookup(const struct dl_phdr_info *info, const char *name);

/* True when addr lies in one of the object's loaded segments. */
bool elfsym_contains(const struct dl_phdr_info *info, uintptr_t addr);

#endif
