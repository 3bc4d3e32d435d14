/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libFuzzer entry point every tests/fuzz harness defines, and a helper
 * that turns the fuzzer's bytes into the C string the parsers take. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a corpus input must do, by its file name: bad-* be refused, valid-*
 * be accepted; any other (what libFuzzer finds) only not crash. fuzz-main.c
 * sets it for the regression runs; under libFuzzer it stays FUZZ_EXPECT_ANY.
 * Weak, so both builds link without fuzz-main.c defining it. */
enum fuzz_expect { FUZZ_EXPECT_ANY, FUZZ_EXPECT_VALID, FUZZ_EXPECT_INVALID };
__attribute__((weak)) enum fuzz_expect fuzz_expect;

/* Abort when the parser's verdict contradicts the input's name. */
static inline void fuzz_check_verdict(bool accepted, const char *detail)
{
        if (fuzz_expect == FUZZ_EXPECT_ANY || accepted == (fuzz_expect == FUZZ_EXPECT_VALID))
                return;
        fprintf(stderr, "%s input was %s: %s\n", accepted ? "a bad-*" : "a valid-*",
                accepted ? "accepted" : "refused", detail);
        abort();
}

/* A NUL-terminated copy of @data (NULs inside end the string early, as
 * they would for any C caller), or NULL when out of memory. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
        char *s = malloc(size + 1);

        if (!s)
                return NULL;
        memcpy(s, data, size);
        s[size] = '\0';
        return s;
}
