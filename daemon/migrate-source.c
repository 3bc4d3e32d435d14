/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The source side: an acceptor thread and one thread per authenticated
 * connection, serving REQUESTs from the region's mapping until the
 * destination confirms completion with DONE. Blocking work stays off the loop. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "migrate-io.h"
#include "migrate-source.h"
#include "migration.h"
#include "region.h"

#define HANDSHAKE_TIMEOUT_MS 10000

struct source_conn {
        struct migration *mig;
        int fd;
};

static int serve_request(struct migration *mig, struct mig_conn *c, const struct mig_msg *m)
{
        uint64_t len = (uint64_t) m->request.count * MIG_PAGE_SIZE;
        int r;

        if (m->request.offset > mig->size || len > mig->size - m->request.offset) {
                snprintf(c->error, sizeof(c->error), "REQUEST of %u pages at %" PRIu64 " reaches past the region's "
                         "%" PRIu64 " bytes", m->request.count, m->request.offset, mig->size);
                return -EPROTO;
        }
        r = mig_send_data(c, m->request.offset, m->request.count, (const uint8_t *) mig->region->map + m->request.offset);
        if (r < 0)
                return r;
        migration_digest_feed(mig, m->request.offset, len);
        atomic_fetch_add(&mig->pages_sent, m->request.count);
        atomic_fetch_add(&mig->bytes, len);
        return 0;
}

static int serve_finish(struct migration *mig, struct mig_conn *c, struct mig_msg *m)
{
        int r;

        m->type = MIG_DIGEST;
        r = migration_digest_final(mig, m->digest.digest);
        if (r < 0)
                return r;
        return mig_send(c, m);
}

/* Serve one destination connection until it ends; 1 once DONE came. */
static int serve(struct migration *mig, struct mig_conn *c)
{
        _cleanup_free_ struct mig_msg *m = malloc(sizeof(*m));
        enum mig_channel channel;
        int r;

        if (!m)
                return -ENOMEM;
        r = mig_handshake_src(c, mig->token, mig->size, mig->digest.salt, &channel);
        if (r < 0)
                return r;
        c->timeout_ms = -1; /* the destination asks when it wants */
        migration_set_state(mig, MIGRATION_RUNNING, 0, NULL);
        for (;;) {
                r = mig_recv(c, m);
                if (r < 0)
                        return r;
                switch (m->type) {
                case MIG_REQUEST:
                        r = serve_request(mig, c, m);
                        break;
                case MIG_FINISH:
                        r = serve_finish(mig, c, m);
                        break;
                case MIG_DONE:
                        if (m->done.status != 0) {
                                snprintf(c->error, sizeof(c->error), "the destination reports %s",
                                         mig_error_name(m->done.status));
                                return mig_error_to_errno(m->done.status);
                        }
                        return 1;
                case MIG_ERROR:
                        snprintf(c->error, sizeof(c->error), "the destination gave up: %s: %s",
                                 mig_error_name(m->error.code), m->error.text);
                        return mig_error_to_errno(m->error.code);
                default:
                        snprintf(c->error, sizeof(c->error), "unexpected %s frame from the destination",
                                 mig_type_name(m->type));
                        r = -EPROTO;
                }
                if (r < 0)
                        return r;
        }
}

static void *connection_thread(void *arg)
{
        struct source_conn *sc = arg;
        struct migration *mig = sc->mig;
        struct mig_conn c;
        int r;

        r = mig_conn_init(&c, sc->fd, mig->cancel_fd, HANDSHAKE_TIMEOUT_MS);
        free(sc);
        if (r >= 0)
                r = serve(mig, &c);
        if (r == 1)
                migration_set_state(mig, MIGRATION_COMPLETED, 0, NULL);
        else if (r == -ECONNRESET || r == -ETIMEDOUT)
                log_info("Migration %" PRIu64 ": a destination connection ended: %s", mig->id, c.error);
        else if (r != -ECANCELED && r < 0) {
                /* A stranger with a wrong token is refused; the migration waits on. */
                log_warning_errno(r, "Migration %" PRIu64 ": refused a destination: %s", mig->id,
                                  c.error[0] ? c.error : strerror(-r));
                mig_send_error(&c, r);
                if (r != -EKEYREJECTED && r != -EPROTONOSUPPORT && r != -EPROTO && r != -EMSGSIZE && r != -ENODATA)
                        migration_set_state(mig, MIGRATION_FAILED, r, "%s", c.error[0] ? c.error : strerror(-r));
        }
        mig_conn_done(&c);
        atomic_fetch_sub(&mig->connections, 1);
        migration_thread_exit(mig);
        return NULL;
}

/* A connection for its own thread, or refused when all are taken. */
static void accept_one(struct migration *mig)
{
        struct source_conn *sc;
        int fd = accept4(mig->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd < 0)
                return;
        sc = malloc(sizeof(*sc));
        if (!sc || atomic_load(&mig->connections) >= MIGRATION_THREADS_MAX - 2) {
                free(sc);
                close(fd);
                return;
        }
        *sc = (struct source_conn) { .mig = mig, .fd = fd };
        atomic_fetch_add(&mig->connections, 1);
        if (migration_spawn(mig, connection_thread, sc) < 0) {
                atomic_fetch_sub(&mig->connections, 1);
                close(fd);
                free(sc);
        }
}

static void *acceptor_thread(void *arg)
{
        struct migration *mig = arg;

        while (!migration_stopping(mig)) {
                struct pollfd p[2] = { { .fd = mig->listen_fd, .events = POLLIN },
                                       { .fd = mig->cancel_fd, .events = POLLIN } };

                if (poll(p, 2, -1) < 0 && errno != EINTR)
                        break;
                if (p[1].revents)
                        break;
                if (p[0].revents & POLLIN)
                        accept_one(mig);
        }
        migration_thread_exit(mig);
        return NULL;
}

int migrate_source_start(struct migration *mig)
{
        uint8_t salt[MIG_SALT_SIZE];
        int r;

        /* A fresh salt per migration: a fresh one-time key for its region tag,
         * even when the caller reuses a token (docs/migration.md, Security). */
        r = mig_nonce_new(salt);
        if (r >= 0)
                r = mig_digest_key(&mig->digest, mig->token, salt);
        if (r >= 0)
                r = migration_spawn(mig, acceptor_thread, mig);
        return r;
}
