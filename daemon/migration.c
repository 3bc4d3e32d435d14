/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Migration lifetime: the threads' shared state under one lock, the eventfds
 * between them and the event loop, joining and releasing the region hold. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "list.h"
#include "log.h"
#include "manager.h"
#include "migration.h"
#include "region.h"
#include "usage.h"

static const char *const state_names[_MIGRATION_STATE_MAX] = {
        [MIGRATION_WAITING] = "waiting", [MIGRATION_RUNNING] = "running", [MIGRATION_COMPLETED] = "completed",
        [MIGRATION_FAILED] = "failed", [MIGRATION_CANCELLED] = "cancelled",
};

const char *migration_state_to_string(enum migration_state s)
{
        return s < _MIGRATION_STATE_MAX ? state_names[s] : "unknown";
}

const char *migration_role_to_string(enum migration_role r)
{
        return r == MIGRATION_SOURCE ? "source" : "destination";
}

static bool terminal(enum migration_state s)
{
        return s >= MIGRATION_COMPLETED;
}

static void signal_fd(int fd)
{
        uint64_t one = 1;

        (void) !write(fd, &one, sizeof(one));
}

/* The VMM's fast channel ends with the verdict (offset ~0, status 0 when
 * every page is present, else the error): a request nobody read any more
 * gets it instead of waiting forever. */
static void say_goodbye(struct migration *mig)
{
        int64_t last[2] = { -1, 0 };

        if (mig->fast_fd < 0)
                return;
        pthread_mutex_lock(&mig->lock);
        last[1] = mig->state == MIGRATION_COMPLETED ? 0 : (mig->error ?: -ECANCELED);
        pthread_mutex_unlock(&mig->lock);
        (void) !send(mig->fast_fd, last, sizeof(last), MSG_DONTWAIT | MSG_NOSIGNAL);
        mig->fast_fd = safe_close(mig->fast_fd);
}

/* The loop's side: a state change, or every thread ended. */
static int on_notify(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct migration *mig = userdata;
        uint64_t v;

        (void) !read(fd, &v, sizeof(v));
        if (atomic_load(&mig->threads_running) > 0) {
                migration_bus_changed(mig);
                return 0;
        }
        for (unsigned i = 0; i < MIGRATION_THREADS_MAX; i++)
                if (mig->thread_started[i]) {
                        pthread_join(mig->threads[i], NULL);
                        mig->thread_started[i] = false;
                }
        mig_digest_stop(&mig->digest); /* before the region's mapping may go */
        if (!mig->finished) {
                mig->finished = true;
                mig->notify_source = sd_event_source_disable_unref(mig->notify_source);
                mig->fault_fd = safe_close(mig->fault_fd);
                if (mig->listen_fd >= 0 && mig->endpoint && strncmp(mig->endpoint, "unix:", 5) == 0)
                        (void) unlink(mig->endpoint + 5); /* the socket gmemd bound */
                mig->listen_fd = safe_close(mig->listen_fd);
                say_goodbye(mig);
                if (mig->region) {
                        mig->region->jobs--;
                        if (atomic_load(&mig->region->released) && mig->region->jobs == 0) {
                                region_free(mig->region);
                                mig->region = NULL;
                        }
                }
                if (mig->region && !atomic_load(&mig->region->released))
                        usage_region_changed(mig->region); /* not measured while it moved (usage.c) */
                mig->reporting = true;
                migration_bus_finished(mig);
                mig->reporting = false;
                /* Its region is gone: so is the migration's object. */
                if (!mig->region || atomic_load(&mig->region->released))
                        migration_free(mig);
        }
        return 0;
}

int migration_new(struct manager *m, enum migration_role role, struct region *region, struct migration **ret)
{
        _cleanup_free_ struct migration *mig = calloc(1, sizeof(*mig));
        int r;

        if (!mig)
                return -ENOMEM;
        *mig = (struct migration) {
                .manager = m, .id = m->next_migration_id++, .role = role, .region = region,
                .size = region->size, .pages_total = region->size / 4096, .listen_fd = -1, .fault_fd = -1,
                .fast_fd = -1, .reconnect_timeout_ms = 30000,
                .state = role == MIGRATION_SOURCE ? MIGRATION_WAITING : MIGRATION_RUNNING,
        };
        mig->present = calloc(mig->pages_total ?: 1, 1);
        mig->latency_us = calloc(MIGRATION_LATENCY_SAMPLES, sizeof(uint32_t));
        mig->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        mig->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (!mig->present || !mig->latency_us || mig_digest_init(&mig->digest, mig->size, true) < 0 ||
            mig->cancel_fd < 0 || mig->notify_fd < 0) {
                r = mig->cancel_fd < 0 || mig->notify_fd < 0 ? negative_errno() : -ENOMEM;
                goto fail;
        }
        r = sd_event_add_io(m->event, &mig->notify_source, mig->notify_fd, EPOLLIN, on_notify, mig);
        if (r < 0)
                goto fail;
        pthread_mutex_init(&mig->lock, NULL);
        region->jobs++;
        LIST_PREPEND(m->migrations, mig);
        *ret = TAKE_PTR(mig);
        return 0;
fail:
        mig_digest_done(&mig->digest);
        free(mig->present);
        free(mig->latency_us);
        safe_close(mig->cancel_fd);
        safe_close(mig->notify_fd);
        return r;
}

void migration_free(struct migration *mig)
{
        if (!mig)
                return;
        LIST_REMOVE(mig->manager->migrations, mig);
        sd_event_source_disable_unref(mig->notify_source);
        sd_bus_message_unref(mig->pending);
        safe_close(mig->listen_fd);
        safe_close(mig->fault_fd);
        safe_close(mig->fast_fd);
        safe_close(mig->cancel_fd);
        safe_close(mig->notify_fd);
        pthread_mutex_destroy(&mig->lock);
        mig_digest_done(&mig->digest);
        free(mig->present);
        free(mig->latency_us);
        free(mig->endpoint);
        if (mig->token)
                explicit_bzero(mig->token, strlen(mig->token));
        free(mig->token);
        free(mig);
}

int migration_spawn(struct migration *mig, void *(*fn)(void *), void *arg)
{
        for (unsigned i = 0; i < MIGRATION_THREADS_MAX; i++) {
                int r;

                if (mig->thread_started[i])
                        continue;
                atomic_fetch_add(&mig->threads_running, 1);
                r = -pthread_create(&mig->threads[i], NULL, fn, arg);
                if (r < 0) {
                        atomic_fetch_sub(&mig->threads_running, 1);
                        return r;
                }
                mig->thread_started[i] = true;
                return 0;
        }
        return -EBUSY;
}

void migration_set_state(struct migration *mig, enum migration_state s, int error, const char *fmt, ...)
{
        bool stop = terminal(s), changed = false;
        va_list ap;

        pthread_mutex_lock(&mig->lock);
        if (!terminal(mig->state) && mig->state != s) {
                mig->state = s;
                mig->error = error;
                if (fmt) {
                        va_start(ap, fmt);
                        vsnprintf(mig->error_message, sizeof(mig->error_message), fmt, ap);
                        va_end(ap);
                }
                changed = true;
        }
        pthread_mutex_unlock(&mig->lock);
        if (stop && changed)
                signal_fd(mig->cancel_fd);
        if (changed)
                signal_fd(mig->notify_fd);
}

enum migration_state migration_get_state(struct migration *mig)
{
        enum migration_state s;

        pthread_mutex_lock(&mig->lock);
        s = mig->state;
        pthread_mutex_unlock(&mig->lock);
        return s;
}

bool migration_stopping(struct migration *mig)
{
        return terminal(migration_get_state(mig));
}

void migration_add_latency(struct migration *mig, uint64_t ns)
{
        uint64_t us = ns / 1000;

        pthread_mutex_lock(&mig->lock);
        mig->latency_us[mig->latency_next] = us > UINT32_MAX ? UINT32_MAX : (uint32_t) us;
        mig->latency_next = (mig->latency_next + 1) % MIGRATION_LATENCY_SAMPLES;
        if (mig->n_latency < MIGRATION_LATENCY_SAMPLES)
                mig->n_latency++;
        pthread_mutex_unlock(&mig->lock);
}

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

        return x < y ? -1 : x > y;
}

void migration_latency(struct migration *mig, uint64_t *p50, uint64_t *p99)
{
        _cleanup_free_ uint32_t *copy = malloc(MIGRATION_LATENCY_SAMPLES * sizeof(uint32_t));
        size_t n;

        *p50 = *p99 = 0;
        if (!copy)
                return;
        pthread_mutex_lock(&mig->lock);
        n = mig->n_latency;
        memcpy(copy, mig->latency_us, n * sizeof(uint32_t));
        pthread_mutex_unlock(&mig->lock);
        if (n == 0)
                return;
        qsort(copy, n, sizeof(uint32_t), cmp_u32);
        *p50 = copy[(n - 1) / 2];
        *p99 = copy[(n - 1) * 99 / 100];
}

void migration_thread_exit(struct migration *mig)
{
        atomic_fetch_sub(&mig->threads_running, 1);
        signal_fd(mig->notify_fd);
}

void migration_cancel(struct migration *mig, const char *why)
{
        migration_set_state(mig, MIGRATION_CANCELLED, -ECANCELED, "%s", why);
        /* No thread may have started: the loop still needs to finish it. */
        signal_fd(mig->cancel_fd);
        signal_fd(mig->notify_fd);
}

void migration_region_released(struct manager *m, struct region *region)
{
        struct migration *next;

        for (struct migration *mig = m->migrations; mig; mig = next) {
                next = mig->next;
                if (mig->region != region)
                        continue;
                if (mig->reporting)
                        mig->region = NULL; /* on_notify() frees it once it reported */
                else if (mig->finished)
                        migration_free(mig);
                else
                        migration_cancel(mig, "the region was released");
        }
}

void migration_stop_all(struct manager *m)
{
        LIST_FOREACH(mig, m->migrations)
                if (!mig->finished)
                        migration_cancel(mig, "gmemd is stopping");
        /* The regions were released or closed before (manager_stop()). */
        while (m->migrations) {
                struct migration *mig = m->migrations;

                if (!mig->finished) {
                        for (unsigned i = 0; i < MIGRATION_THREADS_MAX; i++)
                                if (mig->thread_started[i])
                                        pthread_join(mig->threads[i], NULL);
                        memset(mig->thread_started, 0, sizeof(mig->thread_started));
                        atomic_store(&mig->threads_running, 0);
                        (void) on_notify(NULL, mig->notify_fd, 0, mig);
                }
                if (m->migrations == mig)
                        migration_free(mig);
        }
}

struct migration *migration_find(struct manager *m, uint64_t id)
{
        LIST_FOREACH(mig, m->migrations)
                if (mig->id == id)
                        return mig;
        return NULL;
}

struct migration *migration_find_by_region(struct manager *m, const struct region *region)
{
        LIST_FOREACH(mig, m->migrations)
                if (mig->region == region)
                        return mig;
        return NULL;
}

int migration_path(const struct migration *mig, char **ret)
{
        return asprintf(ret, "/org/gmem1/migration/%" PRIu64, mig->id) < 0 ? -ENOMEM : 0;
}

void migration_digest_feed(struct migration *mig, uint64_t offset, uint64_t length)
{
        mig_digest_feed(&mig->digest, mig->region->map, offset, length);
}

int migration_digest_final(struct migration *mig, uint8_t out[MIG_DIGEST_LEN])
{
        return mig_digest_final(&mig->digest, mig->region->map, out);
}
