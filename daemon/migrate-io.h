/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Migration transport: endpoints (tcp:HOST:PORT, unix:PATH), listening and
 * connecting, framed I/O that a cancel eventfd interrupts, and the handshake. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "migrate-proto.h"

#define MIG_ENDPOINT_MAX 300

/* "tcp:HOST:PORT" (HOST a name, an IPv4 address or [IPv6]) or "unix:PATH". */
int mig_endpoint_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len, char *msg, size_t msg_size);
/* Bound and listening, non-blocking; *ret_endpoint (malloc()ed) names the
 * port the kernel chose for tcp:HOST:0. */
int mig_listen(const char *endpoint, int *ret_fd, char **ret_endpoint, char *msg, size_t msg_size);

struct mig_conn {
        int fd;
        int cancel_fd;       /* readable: give up at once with -ECANCELED */
        int timeout_ms;      /* for one read or write to make progress; -1 forever */
        uint8_t *buf;        /* MIG_HEADER_SIZE + MIG_FRAME_MAX */
        uint64_t bytes_in, bytes_out;
        /* Where DATA's pages may be read to directly (e.g. the region's own
         * mapping), or NULL for c->buf; may be NULL itself. */
        uint8_t *(*data_sink)(void *userdata, uint64_t offset, uint32_t count);
        void *sink_userdata;
        char error[1024];    /* why the last call failed */
};

int mig_conn_init(struct mig_conn *c, int fd, int cancel_fd, int timeout_ms);
void mig_conn_done(struct mig_conn *c);
/* Connect to @endpoint within the connection's timeout. */
int mig_connect(struct mig_conn *c, const char *endpoint);

/* 0, or -ECANCELED, -ETIMEDOUT, -ECONNRESET (peer gone, also in mid-frame),
 * or a protocol failure of mig_header_decode()/mig_payload_decode(). A DATA
 * message points into c->buf until the next call. */
int mig_recv(struct mig_conn *c, struct mig_msg *m);
int mig_send(struct mig_conn *c, const struct mig_msg *m);
/* DATA for @count pages at @pages (the region's memory, sent without a copy). */
int mig_send_data(struct mig_conn *c, uint64_t offset, uint32_t count, const uint8_t *pages);
/* Tell the peer why we stop: MIG_ERROR with the code for @r and c->error. */
void mig_send_error(struct mig_conn *c, int r);
/* Receive one message of @type; an ERROR from the peer becomes its errno. */
int mig_expect(struct mig_conn *c, enum mig_type type, struct mig_msg *m);

/* The destination's side of the handshake on @channel: HELLO, check the
 * source's proof, AUTH, READY. *region_size and @salt (the migration's, for
 * the region tag) from the CHALLENGE. */
int mig_handshake_dst(struct mig_conn *c, const char *token, enum mig_channel channel, uint64_t *region_size,
                      uint8_t salt[MIG_SALT_SIZE]);
/* The source's side, sending the migration's @salt; *channel from the HELLO. */
int mig_handshake_src(struct mig_conn *c, const char *token, uint64_t region_size, const uint8_t salt[MIG_SALT_SIZE],
                      enum mig_channel *channel);
