/*
 * Recognising CPython's arena allocator from a return address.
 *
 * Every CPython from 3.4 on allocates arenas in _PyObject_ArenaMmap, which is
 * reached through the PyObjectArenaAllocator that the exported function
 * PyObject_GetArenaAllocator hands out. The object that exports that function
 * (a libpython*.so, or the executable when libpython is linked in) is
 * CPython; the call sites we accept are those of its arena function
 * (below), so that same-sized mmaps from elsewhere in the same
 * object (the mmap module linked into the executable, say) pass through.
 *
 * Lookups never allocate and never call dlsym/dladdr. A hit costs a few
 * compares; a miss walks the loaded objects (dl_iterate_phdr) once.
 *
 * PGO, LTO and BOLT builds may inline the arena function into its caller
 * or split its mmap into a cold part placed elsewhere: its mmap then
 * returns outside the window, from CPython's own code. Such calls are told
 * apart (CPYTHON_ELSEWHERE) so that they can be counted and reported.
 */
#ifndef PYHUGE_CPYTHON_H
#define PYHUGE_CPYTHON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The call sites accepted: the arena function from its start to its end
 * as its unwind entry gives it (fnextent.h), or the first
 * CPYTHON_CALLSITE_WINDOW bytes where that is shorter or unknown; an
 * extent above CPYTHON_MAX_WINDOW is not believed. */
#define CPYTHON_CALLSITE_WINDOW 256
#define CPYTHON_MAX_WINDOW 65536

enum cpython_call {
    CPYTHON_NOT,       /* not CPython's code (or its arena allocator was replaced) */
    CPYTHON_ARENA,     /* within the window of CPython's arena function */
    CPYTHON_ELSEWHERE, /* elsewhere in the executable code of CPython's object */
};

/* Where a call returning to `ret` comes from; for CPYTHON_ELSEWHERE,
 * *offset is ret's distance from the start of the arena function.
 * *found_now is set in the one call that first recognised CPython's arena
 * function: the moment a process is known to be CPython (the shim reacts
 * outside this room). */
enum cpython_call cpython_classify(uintptr_t ret, long *offset, bool *found_now);

/* True when a loaded object exports PyObject_GetArenaAllocator (CPython
 * 3.4 or later). Otherwise false, with buf saying what there is instead:
 * an older Python (2.7 exports Py_GetVersion but no arena allocator), or
 * no Python at all. */
bool cpython_describe(char *buf, size_t len);

#endif
