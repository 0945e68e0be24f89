/* The public API of include/pyhuge.h. */
#include "pyhuge.h"

#include <string.h>

#include "pyhuge_config.h"
#include "shim.h"

#define PYHUGE_API __attribute__((visibility("default")))

PYHUGE_API int pyhuge_get_stats(struct pyhuge_stats *out, size_t size)
{
    if (!out)
        return -1;
    struct pyhuge_stats st;
    shim_read_stats(&st);
    memcpy(out, &st, size < sizeof st ? size : sizeof st);
    return 0;
}

PYHUGE_API const char *pyhuge_version(void) { return PYHUGE_VERSION_STRING; }
