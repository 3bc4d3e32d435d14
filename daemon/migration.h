/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A migration of one region: its state and counters shared between the
 * worker threads that move the pages and the event loop that reports them.
 *
 * Who calls what: migration-dbus.c creates migrations (ExportRegion,
 * ImportRegion) and starts them here; migrate-source.c and migrate-dest.c
 * run the threads; manager.c cancels a region's migration when it is
 * released; the event loop learns about state changes from notify_fd. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "migrate-digest.h"

struct manager;
struct region;

enum migration_role { MIGRATION_SOURCE, MIGRATION_DESTINATION };

enum migration_state {
        MIGRATION_WAITING,   /* source: listening for the destination */
        MIGRATION_RUNNING,   /* pages moving */
        MIGRATION_COMPLETED, /* every page moved and the digests agree */
        MIGRATION_FAILED,
        MIGRATION_CANCELLED,
        _MIGRATION_STATE_MAX,
};

#define MIGRATION_THREADS_MAX 6
#define MIGRATION_LATENCY_SAMPLES 65536

struct migration {
        struct manager *manager;
        uint64_t id;
        enum migration_role role;
        bool postcopy;
        struct region *region; /* held through region->jobs while threads run */
        uint64_t size, pages_total;
        char *endpoint, *token;
        unsigned reconnect_timeout_ms;

        int listen_fd; /* source */
        int fault_fd;  /* destination with postcopy: the kernel's missing-page reports */
        int fast_fd;   /* destination: the VMM's exit-mode channel (libgmem), or -1 */
        int cancel_fd; /* eventfd: once readable every thread stops */
        int notify_fd; /* eventfd: a thread changed the state or ended */
        sd_event_source *notify_source;

        pthread_t threads[MIGRATION_THREADS_MAX];
        bool thread_started[MIGRATION_THREADS_MAX];
        atomic_int threads_running;
        atomic_int connections; /* source: live connection threads */

        /* destination: one byte per page, set once the page is present */
        atomic_uchar *present;
        atomic_uint_fast64_t pages_present, pages_sent, bytes, faults, reconnects;

        pthread_mutex_t lock; /* state, error and the latency samples */
        enum migration_state state;
        int error;
        char error_message[1024];
        uint32_t *latency_us;
        size_t n_latency, latency_next;

        struct mig_digest digest; /* fed by whichever thread moves the next pages */

        bool finished;             /* threads joined, result reported */
        bool reporting;            /* in migration_bus_finished(): its region may go, it stays */
        sd_bus_message *pending;   /* ImportRegion with precopy_only, answered at the end */
        struct migration *next, *prev;
};

const char *migration_state_to_string(enum migration_state s);
const char *migration_role_to_string(enum migration_role r);

int migration_new(struct manager *m, enum migration_role role, struct region *region, struct migration **ret);
/* Unlink and free; the threads must have been joined (migration_finish). */
void migration_free(struct migration *mig);
/* Start @fn on a thread of @mig (up to MIGRATION_THREADS_MAX). */
int migration_spawn(struct migration *mig, void *(*fn)(void *), void *arg);
/* Thread side: set the state (terminal states keep the first result) and
 * tell the loop. Ending in failure or completion stops every thread. */
void migration_set_state(struct migration *mig, enum migration_state s, int error, const char *fmt, ...)
        _printf_(4, 5);
enum migration_state migration_get_state(struct migration *mig);
bool migration_stopping(struct migration *mig);
void migration_add_latency(struct migration *mig, uint64_t ns);
/* p50 and p99 fault latency in microseconds (0 without samples). */
void migration_latency(struct migration *mig, uint64_t *p50, uint64_t *p99);
/* Called by a thread as its last act. */
void migration_thread_exit(struct migration *mig);
/* Stop every thread (Cancel, region released, daemon stopping). */
void migration_cancel(struct migration *mig, const char *why);
/* The region is going away: cancel the migrations on it. */
void migration_region_released(struct manager *m, struct region *region);
/* Stopping gmemd: cancel all, join all, report and free. */
void migration_stop_all(struct manager *m);
struct migration *migration_find(struct manager *m, uint64_t id);
struct migration *migration_find_by_region(struct manager *m, const struct region *region);
int migration_path(const struct migration *mig, char **ret);

/* The region's tag (keyed Poly1305, migrate-digest.h), computed while the
 * pages move in order: feed it [offset, offset + length) as it is sent or
 * installed (ignored unless it continues what was fed); a helper thread takes
 * it, and final takes the rest from the mapping once, the same value every time after. */
void migration_digest_feed(struct migration *mig, uint64_t offset, uint64_t length);
int migration_digest_final(struct migration *mig, uint8_t out[MIG_DIGEST_LEN]);

/* Implemented in migration-dbus.c: the loop saw the threads end. */
void migration_bus_finished(struct migration *mig);
/* State changed while threads run (PropertiesChanged). */
void migration_bus_changed(struct migration *mig);
