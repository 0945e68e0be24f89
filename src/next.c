/*
 * The pass-through chain (next.h): the next definition of each interposed
 * call, found with dlsym(RTLD_NEXT) once, and the raw system call that
 * stands in for it until then.
 */
#include "next.h"

#include <dlfcn.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* posix_madvise done with madvise, as glibc does it: returns the error
 * number instead of setting errno, and never discards data. */
static int raw_posix_madvise(void *addr, size_t len, int advice)
{
    if (advice == POSIX_MADV_DONTNEED)
        return 0; /* glibc's rule: POSIX_MADV_DONTNEED must not discard data */
    int saved = errno;
    int e = syscall(SYS_madvise, addr, len, advice) < 0 ? errno : 0;
    errno = saved;
    return e;
}

/* mremap is variadic in libc and called here with its five arguments, as
 * glibc's own wrapper reads them; on x86_64 and aarch64 Linux a variadic
 * callee takes fixed arguments the same way. */
#define DECLARE_NEXT(ret, name, params, args, raw, gaps) static ret(*next_##name) params;
PYHUGE_HOOKS(DECLARE_NEXT)
#undef DECLARE_NEXT

void next_init(void)
{
#define RESOLVE_NEXT(ret, name, params, args, raw, gaps)                                         \
    if (!__atomic_load_n(&next_##name, __ATOMIC_ACQUIRE)) {                                     \
        ret(*fn) params;                                                                        \
        *(void **)&fn = dlsym(RTLD_NEXT, #name);                                                \
        __atomic_store_n(&next_##name, fn, __ATOMIC_RELEASE);                                   \
    }
    PYHUGE_HOOKS(RESOLVE_NEXT)
#undef RESOLVE_NEXT
}

#define DEFINE_NEXT(ret, name, params, args, raw, gaps)                                          \
    ret os_next_##name params                                                                   \
    {                                                                                           \
        ret(*fn) params = __atomic_load_n(&next_##name, __ATOMIC_ACQUIRE);                      \
        if (fn)                                                                                 \
            return fn args;                                                                     \
        return raw;                                                                             \
    }
PYHUGE_HOOKS(DEFINE_NEXT)
#undef DEFINE_NEXT
