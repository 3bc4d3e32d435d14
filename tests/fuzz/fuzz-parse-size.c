/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzzes parse_size(), parse_uint() and format_bytes() (common/util.c):
 * only -EINVAL/-ERANGE may fail, and accepted input must mean its digits
 * times a power of two. */
#include <errno.h>
#include <stdio.h>

#include "fuzz.h"
#include "macro.h"
#include "util.h"

_noreturn_ static void fail(const char *what, const char *input)
{
        fprintf(stderr, "%s for input \"%s\"\n", what, input);
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *s = fuzz_string(data, size);
        char buf[FORMAT_BYTES_MAX];
        uint64_t v = 0;
        unsigned u = 0;
        int r;

        if (!s)
                return 0;

        r = parse_size(s, &v);
        if (r < 0 && r != -EINVAL && r != -ERANGE)
                fail("parse_size returned an unexpected error", s);
        if (r >= 0) {
                /* Digits first, and the value is those digits shifted by the unit. */
                const char *p = s;
                unsigned long long digits = strtoull(s, NULL, 10);
                unsigned shift = 0;

                while (*p >= '0' && *p <= '9')
                        p++;
                if (p == s)
                        fail("parse_size accepted no digits", s);
                shift = *p == 'K' ? 10 : *p == 'M' ? 20 : *p == 'G' ? 30 : *p == 'T' ? 40 : 0;
                if (shift && (digits > (UINT64_MAX >> shift) || v != (uint64_t) digits << shift))
                        fail("parse_size value does not match its unit", s);
                if (!shift && v != digits)
                        fail("parse_size value does not match its digits", s);
                format_bytes(buf, sizeof(buf), v);
                if (strnlen(buf, sizeof(buf)) >= sizeof(buf))
                        fail("format_bytes did not terminate", s);
        }

        r = parse_uint(s, &u);
        if (r < 0 && r != -EINVAL && r != -ERANGE)
                fail("parse_uint returned an unexpected error", s);
        if (r >= 0 && (parse_size(s, &v) < 0 || v != u))
                fail("parse_uint accepted what parse_size reads differently", s);

        /* Tiny buffers must stay terminated too. */
        format_bytes(buf, 1 + (size % sizeof(buf)), size ? data[0] * (uint64_t) size << (size % 48) : 0);
        if (strnlen(buf, sizeof(buf)) > size % sizeof(buf))
                fail("format_bytes overran a short buffer", s);
        return 0;
}
