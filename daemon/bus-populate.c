/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Asynchronous population replies: a populate job per waiting call, watched
 * by the event loop through the job's eventfd, with rate-limited progress
 * signals, the caller's connection tracked to cancel when it goes. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "bus-caller.h"
#include "bus-contract.h"
#include "bus-errors.h"
#include "bus-populate.h"
#include "fdstore.h"
#include "list.h"
#include "log.h"
#include "manager.h"
#include "populate.h"
#include "usage.h"
#include "util.h"

/* At most this often a PopulateProgress signal per call (plus the final one). */
#define PROGRESS_INTERVAL_USEC (100 * 1000ULL)

struct populating {
        struct manager *manager;
        struct region *region;
        sd_bus_message *msg;
        enum populate_reply reply;
        struct populate_job *job;
        sd_event_source *source, *timer;
        sd_bus_track *caller;
        const char *cancelled_by; /* why the job was cancelled, if it was */
        uint64_t started_usec, last_signal_usec, last_signal_done;
        uint64_t changed_seq; /* the region's when the job started (usage_region_populated()) */
        struct populating *next, *prev;
};

int bus_reply_created(sd_bus_message *msg, struct region *region)
{
        _cleanup_free_ char *path = NULL;
        int r;

        fdstore_add_region(region);
        r = gmem_region_path(region->id, &path);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "oh", path, region->fd);
}

static void emit_progress(struct populating *p, bool final)
{
        struct populate_job *j = p->job;
        uint64_t done = atomic_load(&j->done);
        _cleanup_free_ char *path = NULL;
        int r;

        if (!final && done == p->last_signal_done)
                return;
        (void) sd_event_now(sd_bus_get_event(p->manager->bus), CLOCK_MONOTONIC, &p->last_signal_usec);
        p->last_signal_done = done;
        r = gmem_region_path(p->region->id, &path);
        if (r >= 0)
                r = sd_bus_emit_signal(p->manager->bus, path, GMEM_REGION_INTERFACE, "PopulateProgress", "tttb",
                                       j->offset, j->length, done, final);
        if (r < 0)
                log_debug_errno(r, "Cannot send PopulateProgress for region %" PRIu64 ": %m", p->region->id);
}

/* "node 0: 64.0 MiB, node 1: 2.0 MiB" of what the range holds now. */
static void format_resident(const struct populate_job *j, char *buf, size_t size)
{
        char bytes[FORMAT_BYTES_MAX];
        size_t used = 0;

        buf[0] = '\0';
        if (!j->resident) {
                snprintf(buf, size, "what the guest owns (private memory, not measurable)");
                return;
        }
        if (!j->measured) {
                if (j->present_counted)
                        snprintf(buf, size, "%s (by node not measurable now: %s)",
                                 format_bytes(bytes, sizeof(bytes), j->present), strerror(-j->measure_error));
                else
                        snprintf(buf, size, "an unmeasured amount (%s)", strerror(-j->measure_error));
                return;
        }
        for (unsigned i = 0; i < j->n_resident && used < size; i++)
                if (j->resident[i])
                        used += (size_t) snprintf(buf + used, size - used, "%snode %u: %s", used ? ", " : "", i,
                                                  format_bytes(bytes, sizeof(bytes), j->resident[i]));
        if (!buf[0])
                snprintf(buf, size, "nothing");
}

static void reply_failed(struct populating *p, int result)
{
        struct populate_job *j = p->job;
        char done[FORMAT_BYTES_MAX], total[FORMAT_BYTES_MAX], where[32], resident[256];
        int node = atomic_load(&j->failed_node);

        format_bytes(done, sizeof(done), atomic_load(&j->done));
        format_bytes(total, sizeof(total), j->length);
        if (result == -ECANCELED) {
                (void) sd_bus_reply_method_errorf(p->msg, GMEM_ERROR_CANCELLED, "populating region %" PRIu64
                                                  " was cancelled (%s) after %s of %s; what was allocated stays in "
                                                  "the region", p->region->id, p->cancelled_by ?: "cancelled",
                                                  done, total);
                return;
        }
        log_warning_errno(result, "Populating region %" PRIu64 " failed: %m", p->region->id);
        format_resident(j, resident, sizeof(resident));
        if (node >= 0)
                snprintf(where, sizeof(where), "on node %d", node);
        else
                snprintf(where, sizeof(where), "(no node in particular)");
        (void) sd_bus_reply_method_errorf(
                p->msg, gmem_bus_error_from_errno(result == -ENOMEM ? -ENOSPC : result) ?: SD_BUS_ERROR_FAILED,
                "populating region %" PRIu64 " failed %s: %s, after %s of %s in whole chunks; the range holds %s. "
                "%s", p->region->id, where, strerror(-result), done, total, resident,
                p->reply == POPULATE_REPLY_CREATED ? "The region is released." :
                                                     "What was allocated stays in the region; Discard frees it.");
}

static int reply_report(struct populating *p)
{
        struct populate_job *j = p->job;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(p->msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ut)");
        for (unsigned i = 0; r >= 0 && j->measured && i < j->n_resident; i++)
                if (j->resident[i])
                        r = sd_bus_message_append(reply, "(ut)", i, j->resident[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(is)");
        for (unsigned i = 0; r >= 0 && i < j->n_workers; i++)
                r = sd_bus_message_append(reply, "(is)", populate_job_worker_node(j, i),
                                          populate_job_worker_cpus(j, i) ?: "");
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}

static void reply_populated(struct populating *p, int result)
{
        struct region *region = p->region;
        int r = 0;

        if (atomic_load(&region->released)) {
                (void) sd_bus_reply_method_errorf(p->msg, GMEM_ERROR_NOT_FOUND,
                                                  "region %" PRIu64 " was released, or gmemd stopped, while it "
                                                  "was being populated", region->id);
                return;
        }
        if (result < 0) {
                reply_failed(p, result);
                /* A region that was to be created populated is not kept half done. */
                if (p->reply == POPULATE_REPLY_CREATED)
                        manager_release_region(p->manager, region, "populating it failed");
                return;
        }
        if (p->reply == POPULATE_REPLY_CREATED)
                r = bus_reply_created(p->msg, region);
        else if (p->reply == POPULATE_REPLY_REPORT)
                r = reply_report(p);
        else
                r = sd_bus_reply_method_return(p->msg, NULL);
        if (r < 0)
                log_warning_errno(r, "Cannot answer the caller populating region %" PRIu64 ": %m", region->id);
}

static void log_populated(struct populating *p, int result)
{
        struct populate_job *j = p->job;
        char bytes[FORMAT_BYTES_MAX];
        uint64_t now = 0;

        (void) sd_event_now(sd_bus_get_event(p->manager->bus), CLOCK_MONOTONIC, &now);
        log_info("Populated region %" PRIu64 " %" PRIu64 "+%" PRIu64 ": %s in %" PRIu64 " ms with %u worker(s)%s%s",
                 p->region->id, j->offset, j->length, format_bytes(bytes, sizeof(bytes), atomic_load(&j->done)),
                 (now - p->started_usec) / 1000, j->n_workers, result < 0 ? ", stopped: " : "",
                 result < 0 ? strerror(-result) : "");
}

/* The workers are done: answer the caller, and free what nobody holds now. */
static void populating_complete(struct populating *p)
{
        struct region *region = p->region;
        bool released;
        int result;

        LIST_REMOVE(p->manager->populating, p);
        sd_event_source_disable_unref(p->source);
        sd_event_source_disable_unref(p->timer);
        p->caller = sd_bus_track_unref(p->caller);
        result = populate_job_join(p->job);
        /* Accounting: the job's measurement as Resident, or measure it again (usage.c). */
        usage_region_populated(region, p->changed_seq,
                               p->job->region_measured ? TAKE_PTR(p->job->region_resident) : NULL);
        log_populated(p, result);
        emit_progress(p, true);
        reply_populated(p, result);
        /* Released meanwhile, or by the reply (a failed CreateRegion): the
         * registry left freeing it to the last job. */
        released = atomic_load(&region->released);
        populate_job_free(p->job);
        if (released && region->jobs == 0)
                region_free(region);
        else if (released && region->jobs == region->usage_holds)
                region_drop_memory(region); /* only the refresher has it: it lets go now */
        sd_bus_message_unref(p->msg);
        free(p);
}

static int on_progress_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        emit_progress(userdata, false);
        return 0;
}

/* A chunk done (or the end): at most one signal per interval, the rest
 * folded into a timer at the interval's end. */
static void progress_tick(struct populating *p)
{
        uint64_t now, due = p->last_signal_usec + PROGRESS_INTERVAL_USEC;

        if (sd_event_now(sd_bus_get_event(p->manager->bus), CLOCK_MONOTONIC, &now) < 0 || now >= due) {
                emit_progress(p, false);
                return;
        }
        if (!p->timer) {
                if (sd_event_add_time(sd_bus_get_event(p->manager->bus), &p->timer, CLOCK_MONOTONIC, due, 0,
                                      on_progress_timer, p) < 0)
                        return; /* the next chunk tries again */
        } else
                (void) sd_event_source_set_time(p->timer, due);
        (void) sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT);
}

static int on_job_event(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct populating *p = userdata;
        uint64_t count;

        (void) !read(fd, &count, sizeof(count));
        if (atomic_load(&p->job->finished))
                populating_complete(p);
        else
                progress_tick(p);
        return 0;
}

static int on_caller_gone(sd_bus_track *track, void *userdata)
{
        struct populating *p = userdata;

        p->cancelled_by = "its caller's bus connection went away";
        log_info("Cancelling the populate of region %" PRIu64 ": %s", p->region->id, p->cancelled_by);
        populate_job_cancel(p->job, -ECANCELED);
        return 0;
}

static int populating_watch(struct populating *p, sd_bus_message *msg)
{
        sd_event *event = sd_bus_get_event(p->manager->bus);
        int r;

        r = sd_event_add_io(event, &p->source, p->job->event_fd, EPOLLIN, on_job_event, p);
        if (r >= 0)
                r = sd_bus_track_new(p->manager->bus, &p->caller, on_caller_gone, p);
        if (r >= 0)
                r = sd_bus_track_add_sender(p->caller, msg);
        if (r >= 0)
                r = sd_event_now(event, CLOCK_MONOTONIC, &p->started_usec);
        return r;
}

int bus_populate_async(struct region *region, sd_bus_message *msg, const struct populate_params *params,
                       enum populate_reply reply, sd_bus_error *error)
{
        struct manager *m = region->manager;
        _cleanup_free_ struct populating *p = calloc(1, sizeof(*p));
        int r;

        if (!p)
                return -ENOMEM;
        *p = (struct populating) { .manager = m, .region = region, .reply = reply,
                                   .changed_seq = region->changed_seq };
        r = populate_job_start(region, params, m->config.populate_workers, &p->job);
        if (r < 0)
                return bus_reply_errno(error, r, "cannot start populating: %m");
        r = populating_watch(p, msg);
        if (r < 0) {
                /* Stop the workers; nobody will be told. */
                populate_job_cancel(p->job, -ECANCELED);
                populate_job_free(p->job);
                sd_event_source_disable_unref(p->source);
                sd_bus_track_unref(p->caller);
                return bus_reply_errno(error, r, "cannot watch the populating workers: %m");
        }
        log_debug("Populating region %" PRIu64 " %" PRIu64 "+%" PRIu64 " with %u worker(s)", region->id,
                  params->offset, params->length, p->job->n_workers);
        p->msg = sd_bus_message_ref(msg);
        LIST_PREPEND(m->populating, TAKE_PTR(p));
        return 1;
}

/* One option of PopulateWithOptions, its key read (bus_read_dict()). */
static int read_populate_option(sd_bus_message *msg, const char *key, void *userdata, sd_bus_error *error)
{
        struct populate_params *p = userdata;
        int r;

        if (!streq(key, "workers"))
                return bus_reply_errno(error, -EINVAL, "unknown option '%s' (known: workers)", key);
        if (sd_bus_message_enter_container(msg, 'v', "u") <= 0)
                return bus_reply_errno(error, -EINVAL, "option 'workers' must be a 'u'");
        r = sd_bus_message_read(msg, "u", &p->workers_per_node);
        if (r < 0)
                return r;
        if (p->workers_per_node < 1 || p->workers_per_node > POPULATE_WORKERS_MAX)
                return bus_reply_errno(error, -EINVAL, "option 'workers' is %u; give 1 to %u workers per node",
                                       p->workers_per_node, POPULATE_WORKERS_MAX);
        return sd_bus_message_exit_container(msg);
}

int bus_populate_read_options(sd_bus_message *msg, struct populate_params *p, sd_bus_error *error)
{
        return bus_read_dict(msg, read_populate_option, p, error);
}

unsigned bus_populate_cancel(struct region *region)
{
        unsigned n = 0;

        LIST_FOREACH(p, region->manager->populating)
                if (p->region == region && !p->cancelled_by) {
                        p->cancelled_by = "CancelPopulate";
                        populate_job_cancel(p->job, -ECANCELED);
                        n++;
                }
        return n;
}

void bus_populate_progress(struct region *region, uint64_t *ret_done, uint64_t *ret_total)
{
        uint64_t done = 0, total = 0;

        LIST_FOREACH(p, region->manager->populating)
                if (p->region == region) {
                        done += atomic_load(&p->job->done);
                        total += p->job->length;
                }
        *ret_done = done;
        *ret_total = total;
}

void bus_populate_finish_all(struct manager *m)
{
        LIST_FOREACH(p, m->populating)
                populate_job_cancel(p->job, -ECANCELED);
        while (m->populating)
                populating_complete(m->populating);
}
