/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Assertions for the unit tests: each failure names the file, the line and
 * the values, then aborts, so meson reports the test as failed. */
#pragma once

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_TEST_SKIP 77

#define ASSERT(expr)                                                                              \
        do {                                                                                      \
                if (!(expr)) {                                                                    \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #expr); \
                        abort();                                                                  \
                }                                                                                 \
        } while (0)

#define ASSERT_OK(expr)                                                                           \
        do {                                                                                      \
                long _r = (long) (expr);                                                          \
                if (_r < 0) {                                                                     \
                        fprintf(stderr, "%s:%d: %s failed: %ld (%s)\n", __FILE__, __LINE__, #expr,   \
                                _r, strerror((int) -_r));                                         \
                        abort();                                                                  \
                }                                                                                 \
        } while (0)

/* Integer equality, printing both sides. */
#define ASSERT_EQ(a, b)                                                                           \
        do {                                                                                      \
                long long _a = (long long) (a), _b = (long long) (b);                             \
                if (_a != _b) {                                                                   \
                        fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, \
                                #a, #b, _a, _b);                                                  \
                        abort();                                                                  \
                }                                                                                 \
        } while (0)

#define ASSERT_U64_EQ(a, b)                                                                       \
        do {                                                                                      \
                uint64_t _a = (a), _b = (b);                                                      \
                if (_a != _b) {                                                                   \
                        fprintf(stderr, "%s:%d: %s == %s failed: %" PRIu64 " != %" PRIu64 "\n",   \
                                __FILE__, __LINE__, #a, #b, _a, _b);                              \
                        abort();                                                                  \
                }                                                                                 \
        } while (0)

#define ASSERT_STREQ(a, b)                                                                        \
        do {                                                                                      \
                const char *_a = (a), *_b = (b);                                                  \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                          \
                        fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,     \
                                __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");        \
                        abort();                                                                  \
                }                                                                                 \
        } while (0)

/* @haystack contains @needle: for checking that messages name the value. */
#define ASSERT_CONTAINS(haystack, needle)                                                         \
        do {                                                                                      \
                const char *_h = (haystack), *_n = (needle);                                      \
                if (!_h || !strstr(_h, _n)) {                                                     \
                        fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,        \
                                __LINE__, _h ? _h : "(null)", _n);                                \
                        abort();                                                                  \
                }                                                                                 \
        } while (0)
