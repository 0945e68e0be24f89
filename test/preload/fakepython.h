/* The fake libpython's exports (fakepython.c). */
#ifndef PYHUGE_TEST_FAKEPYTHON_H
#define PYHUGE_TEST_FAKEPYTHON_H

#include <stddef.h>

typedef struct {
    void *ctx;
    void *(*alloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr, size_t size);
} PyObjectArenaAllocator;

void PyObject_GetArenaAllocator(PyObjectArenaAllocator *a);
void *fake_arena_alloc(size_t size);
void fake_arena_free(void *p, size_t size);
void *fake_other_mmap(size_t size);

#endif
