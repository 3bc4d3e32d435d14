/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A TCP relay between a destination and a source gmemd for the migration
 * tests: it can cut the first bulk connection after some bytes (a pulled
 * cable) and hold bulk connections back (so only faults move pages). */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct migrate_proxy {
        const char *upstream;     /* the source's endpoint */
        uint64_t cut_after;       /* 0: never cut */
        bool hold_bulk;           /* bulk connections get no data before migrate_proxy_release() */
        char *endpoint;           /* where destinations connect */
        /* Source-to-destination bytes on the first and the later bulk connections
         * (the handshake included). */
        uint64_t bulk_bytes[2];
        unsigned bulk_connections, fault_connections;
        /* internal */
        int listen_fd, stop[2];
        pthread_mutex_t lock;
        pthread_cond_t released;
        bool go;
        pthread_t thread;
        pthread_t relays[16];
        unsigned n_relays;
};

/* A fresh endpoint to listen on, in a static buffer: "tcp:127.0.0.1:0", or a
 * new "unix:/tmp/.../N.sock" when $GMEM_TEST_MIGRATE_TRANSPORT is "unix", or
 * when it is unset and the kernel has no TCP/IP (the vm tier's guest kernel). */
const char *migrate_test_listen(void);

void migrate_proxy_start(struct migrate_proxy *p);
/* Let held bulk connections through. */
void migrate_proxy_release(struct migrate_proxy *p);
/* Stop relaying, join every thread, free. */
void migrate_proxy_stop(struct migrate_proxy *p);
