/*
 * The interposed calls: their list is in hook_list.h (which this includes,
 * for hooks.c and the exports test), their definitions in hooks.c.
 */
#ifndef PYHUGE_HOOKS_H
#define PYHUGE_HOOKS_H

#include "hook_list.h"

/* The public API (include/pyhuge.h), exported beside the hooks. */
#define PYHUGE_API_SYMBOLS(X) X(pyhuge_get_stats) X(pyhuge_version)

#endif
