/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzzes the migration frame codec (daemon/migrate-proto.c): a byte stream
 * of frames is parsed whole; every decoded message must encode and decode
 * back to itself, and only the documented errors may come out. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "macro.h"
#include "migrate-proto.h"

static uint8_t frame[MIG_HEADER_SIZE + MIG_FRAME_MAX];

static int same(const struct mig_msg *again, void *userdata)
{
        const struct mig_msg *m = userdata;

        if (again->type != m->type)
                abort();
        if (m->type == MIG_DATA) {
                if (again->data.offset != m->data.offset || again->data.count != m->data.count ||
                    memcmp(again->data.pages, m->data.pages, (size_t) m->data.count * MIG_PAGE_SIZE) != 0)
                        abort();
        } else if (m->type == MIG_ERROR) {
                if (again->error.code != m->error.code || strcmp(again->error.text, m->error.text) != 0)
                        abort();
        } else if (memcmp(again, m, sizeof(*m)) != 0)
                abort();
        return 0;
}

/* Encode what was decoded and decode it again: the same message. */
static int round_trip(const struct mig_msg *m, void *userdata)
{
        char msg[256];
        int n = mig_frame_encode(m, frame, sizeof(frame));

        if (n < 0) {
                fprintf(stderr, "a decoded %s frame does not encode: %d\n", mig_type_name(m->type), n);
                abort();
        }
        if (mig_stream_parse(frame, (size_t) n, same, (void *) m, msg, sizeof(msg)) < 0) {
                fprintf(stderr, "a re-encoded %s frame does not decode: %s\n", mig_type_name(m->type), msg);
                abort();
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char msg[512] = "";
        int r;

        r = mig_stream_parse(data, size, round_trip, NULL, msg, sizeof(msg));
        if (r < 0 && r != -EPROTO && r != -EMSGSIZE && r != -ENODATA && r != -EBADMSG) {
                fprintf(stderr, "unexpected error %d: %s\n", r, msg);
                abort();
        }
        if (r < 0 && !msg[0])
                abort(); /* every refusal says why */
        fuzz_check_verdict(r >= 0, msg);
        return 0;
}
