/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzzes config_parse() (daemon/config.c): any text must parse or fail with a
 * message, never crash or leak, and a success must yield a sane config. */
#include <errno.h>
#include <stdio.h>

#include "config.h"
#include "fuzz.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *text = fuzz_string(data, size);
        struct config c;
        char msg[512];
        int r;

        if (!text)
                return 0;
        config_init(&c);
        msg[0] = '\0';
        r = config_parse(&c, text, "fuzz.json", msg, sizeof(msg));
        if (r < 0 && (r != -EINVAL && r != -ENOMEM)) {
                fprintf(stderr, "config_parse returned %d, not -EINVAL or -ENOMEM\n", r);
                abort();
        }
        if (r == -EINVAL && strncmp(msg, "fuzz.json: ", 11) != 0) {
                fprintf(stderr, "config_parse failed without naming the source: \"%s\"\n", msg);
                abort();
        }
        /* config_load() refuses a file with a NUL byte before parsing. */
        fuzz_check_verdict(r >= 0 && !memchr(data, '\0', size), msg);
        if (r >= 0 && c.allowed_group && !*c.allowed_group) {
                fprintf(stderr, "config_parse accepted an empty allowed_group\n");
                abort();
        }
        config_done(&c);
        return 0;
}
