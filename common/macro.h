/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers shared by gmemd, libgmem, gmemctl and the tests: cleanup
 * attributes, ownership hand-over and array sizes. No project logic lives here. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _noreturn_ __attribute__((noreturn))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _public_ __attribute__((visibility("default")))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

static inline void freep(void *p)
{
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                close(fd); /* Linux releases the fd even when close() fails. */
                errno = saved;
        }
        return -1;
}

static inline void closep(int *fd)
{
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Take ownership out of a _cleanup_ variable. */
#define TAKE_PTR(p)                                  \
        ({                                           \
                __typeof__(p) *_pp = &(p);           \
                __typeof__(p) _ptr = *_pp;           \
                *_pp = NULL;                         \
                _ptr;                                \
        })
#define TAKE_FD(fd)                                  \
        ({                                           \
                int *_pfd = &(fd);                   \
                int _fd = *_pfd;                     \
                *_pfd = -1;                          \
                _fd;                                 \
        })

/* Take a struct's contents out of a _cleanup_ variable, leaving it zeroed. */
#define TAKE_STRUCT(s)                               \
        ({                                           \
                __typeof__(s) *_ps = &(s);           \
                __typeof__(s) _s = *_ps;             \
                *_ps = (__typeof__(s)) {};           \
                _s;                                  \
        })

/* Negative errno from a libc call that sets errno; never 0 for a failure. */
static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)      \
        static inline void func##p(type *p)          \
        {                                            \
                if (*p)                              \
                        func(*p);                    \
        }
