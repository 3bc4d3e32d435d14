/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libFuzzer entry point every tests/fuzz harness defines, and a helper
 * that turns the fuzzer's bytes into the C string the parsers take. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
