/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzzes parse_node_list() (common/util.c): a success is a non-empty,
 * strictly ascending list of nodes below 1024; a failure leaves no output. */
#include <errno.h>
#include <stdio.h>

#include "fuzz.h"
#include "macro.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *s = fuzz_string(data, size);
        unsigned *nodes = NULL;
        size_t n = 0;
        int r;

        if (!s)
                return 0;
        r = parse_node_list(s, &nodes, &n);
        if (r < 0) {
                if ((r != -EINVAL && r != -ERANGE && r != -ENOMEM) || nodes || n) {
                        fprintf(stderr, "parse_node_list(\"%s\") = %d with output\n", s, r);
                        abort();
                }
                return 0;
        }
        if (n == 0 || n > 1024) {
                fprintf(stderr, "parse_node_list(\"%s\") returned %zu nodes\n", s, n);
                abort();
        }
        for (size_t i = 0; i < n; i++)
                if (nodes[i] >= 1024 || (i > 0 && nodes[i - 1] >= nodes[i])) {
                        fprintf(stderr, "parse_node_list(\"%s\"): node[%zu] = %u out of order or range\n",
                                s, i, nodes[i]);
                        abort();
                }
        free(nodes);
        return 0;
}
