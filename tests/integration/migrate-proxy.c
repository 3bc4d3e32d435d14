/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration tests' relay: one thread accepting, one per connection; the
 * destination's HELLO tells a bulk connection from a fault channel. */
#include <endian.h>
#include <fcntl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "macro.h"
#include "migrate-io.h"
#include "migrate-proxy.h"
#include "util.h"

struct relay {
        struct migrate_proxy *p;
        int client;
};

/* The HELLO's channel field (its payload's second word). */
static bool read_hello(int client, uint8_t *hello, size_t n, bool *bulk)
{
        size_t got = 0;
        uint32_t channel;

        while (got < n) {
                ssize_t k = read(client, hello + got, n - got);

                if (k <= 0)
                        return false;
                got += (size_t) k;
        }
        memcpy(&channel, hello + MIG_HEADER_SIZE + 4, 4);
        *bulk = be32toh(channel) == MIG_CHANNEL_BULK;
        return true;
}

static void wait_released(struct migrate_proxy *p)
{
        pthread_mutex_lock(&p->lock);
        while (p->hold_bulk && !p->go)
                pthread_cond_wait(&p->released, &p->lock);
        pthread_mutex_unlock(&p->lock);
}

/* The source's CHALLENGE and READY: a held bulk connection gets through its
 * handshake, then waits for its data. */
#define HANDSHAKE_BYTES (2 * MIG_HEADER_SIZE + 16 + MIG_NONCE_SIZE + MIG_PROOF_SIZE)

/* Copy both ways until either side ends, the proxy stops or the cut comes;
 * a held bulk connection stops after the handshake until released. */
static void pump(struct migrate_proxy *p, int client, int up, uint64_t *counter, uint64_t cut, bool hold)
{
        uint8_t buf[65536];

        for (;;) {
                struct pollfd f[3] = { { .fd = client, .events = POLLIN }, { .fd = up, .events = POLLIN },
                                       { .fd = p->stop[0], .events = POLLIN } };
                size_t want = sizeof(buf);
                ssize_t n;

                if (poll(f, 3, -1) <= 0 || f[2].revents)
                        return;
                if (f[0].revents) {
                        n = read(client, buf, sizeof(buf));
                        if (n <= 0 || send(up, buf, (size_t) n, MSG_NOSIGNAL) != n)
                                return;
                }
                if (f[1].revents) {
                        if (hold && *counter >= HANDSHAKE_BYTES) {
                                wait_released(p);
                                hold = false;
                        }
                        if (hold && HANDSHAKE_BYTES - *counter < want)
                                want = HANDSHAKE_BYTES - *counter;
                        if (cut && cut - *counter < want)
                                want = cut - *counter;
                        n = read(up, buf, want);
                        if (n <= 0 || send(client, buf, (size_t) n, MSG_NOSIGNAL) != n)
                                return;
                        *counter += (uint64_t) n;
                        if (cut && *counter >= cut)
                                return; /* the cable is pulled */
                }
        }
}

static void *relay_thread(void *arg)
{
        struct relay *r = arg;
        struct migrate_proxy *p = r->p;
        uint8_t hello[MIG_HEADER_SIZE + 8 + MIG_NONCE_SIZE];
        uint64_t *counter, cut = 0, fault_bytes = 0;
        struct mig_conn up;
        bool bulk = false;

        ASSERT_OK(mig_conn_init(&up, -1, -1, 10000));
        if (read_hello(r->client, hello, sizeof(hello), &bulk)) {
                pthread_mutex_lock(&p->lock);
                if (bulk) {
                        counter = &p->bulk_bytes[p->bulk_connections ? 1 : 0];
                        cut = p->bulk_connections ? 0 : p->cut_after;
                        p->bulk_connections++;
                } else {
                        counter = &fault_bytes;
                        p->fault_connections++;
                }
                pthread_mutex_unlock(&p->lock);
                /* The source may be gone: then the destination sees this one drop. */
                if (mig_connect(&up, p->upstream) >= 0 &&
                    send(up.fd, hello, sizeof(hello), MSG_NOSIGNAL) == (ssize_t) sizeof(hello))
                        pump(p, r->client, up.fd, counter, cut, bulk && p->hold_bulk);
        }
        mig_conn_done(&up);
        close(r->client);
        free(r);
        return NULL;
}

static void *accept_thread(void *arg)
{
        struct migrate_proxy *p = arg;

        for (;;) {
                struct pollfd f[2] = { { .fd = p->listen_fd, .events = POLLIN }, { .fd = p->stop[0], .events = POLLIN } };
                struct relay *r;

                ASSERT(poll(f, 2, -1) > 0);
                if (f[1].revents)
                        return NULL;
                r = malloc(sizeof(*r));
                ASSERT(r);
                *r = (struct relay) { .p = p, .client = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC) };
                ASSERT_OK(r->client);
                ASSERT(p->n_relays < ELEMENTSOF(p->relays));
                ASSERT_EQ(pthread_create(&p->relays[p->n_relays++], NULL, relay_thread, r), 0);
        }
}

const char *migrate_test_listen(void)
{
        static char dir[64], endpoint[128];
        static unsigned n;
        const char *transport = getenv("GMEM_TEST_MIGRATE_TRANSPORT");
        int fd;

        /* Unset: TCP where the kernel has it (the vm tier's guest kernel has no TCP/IP). */
        if (!transport) {
                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                ASSERT(fd >= 0 || errno == EAFNOSUPPORT);
                transport = fd >= 0 ? "tcp" : "unix";
                safe_close(fd);
                setenv("GMEM_TEST_MIGRATE_TRANSPORT", transport, 1);
                printf("migration transport: %s\n", transport);
        }
        if (streq(transport, "tcp"))
                return "tcp:127.0.0.1:0";
        ASSERT(streq(transport, "unix"));
        if (!dir[0]) {
                snprintf(dir, sizeof(dir), "/tmp/gmem-migrate-XXXXXX");
                ASSERT(mkdtemp(dir));
        }
        snprintf(endpoint, sizeof(endpoint), "unix:%s/%u.sock", dir, n++);
        return endpoint;
}

void migrate_proxy_start(struct migrate_proxy *p)
{
        char msg[256];

        ASSERT_OK(pipe2(p->stop, O_CLOEXEC));
        ASSERT_OK(mig_listen(migrate_test_listen(), &p->listen_fd, &p->endpoint, msg, sizeof(msg)));
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->released, NULL);
        ASSERT_EQ(pthread_create(&p->thread, NULL, accept_thread, p), 0);
}

void migrate_proxy_release(struct migrate_proxy *p)
{
        pthread_mutex_lock(&p->lock);
        p->go = true;
        pthread_cond_broadcast(&p->released);
        pthread_mutex_unlock(&p->lock);
}

void migrate_proxy_stop(struct migrate_proxy *p)
{
        migrate_proxy_release(p);
        ASSERT_EQ(write(p->stop[1], "x", 1), 1);
        pthread_join(p->thread, NULL);
        for (unsigned i = 0; i < p->n_relays; i++)
                pthread_join(p->relays[i], NULL);
        close(p->listen_fd);
        close(p->stop[0]);
        close(p->stop[1]);
        free(p->endpoint);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->released);
}
