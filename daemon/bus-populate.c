/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Asynchronous population replies: a populate job per waiting call, watched
 * by the event loop through the job's eventfd. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

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

struct populating {
        struct manager *manager;
        struct region *region;
        sd_bus_message *msg;
        bool create;
        struct populate_job *job;
        sd_event_source *source;
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

static void reply_populated(struct populating *p, int result)
{
        struct region *region = p->region;
        const char *name;
        int r = 0;

        if (atomic_load(&region->released)) {
                (void) sd_bus_reply_method_errorf(p->msg, GMEM_ERROR_NOT_FOUND,
                                                  "region %" PRIu64 " was released, or gmemd stopped, while it "
                                                  "was being populated", region->id);
                return;
        }
        if (result < 0) {
                log_warning_errno(result, "Populating region %" PRIu64 " failed: %m", region->id);
                name = gmem_bus_error_from_errno(result == -ENOMEM ? -ENOSPC : result);
                (void) sd_bus_reply_method_errorf(p->msg, name ?: SD_BUS_ERROR_FAILED, "populating region %" PRIu64
                                                  " failed: %s", region->id, strerror(-result));
                /* A region that was to be created populated is not kept half done. */
                if (p->create)
                        manager_release_region(p->manager, region, "populating it failed");
                return;
        }
        if (p->create)
                r = bus_reply_created(p->msg, region);
        else
                r = sd_bus_reply_method_return(p->msg, NULL);
        if (r < 0)
                log_warning_errno(r, "Cannot answer the caller populating region %" PRIu64 ": %m", region->id);
}

/* The worker is done: answer the caller, and free what nobody holds now. */
static void populating_complete(struct populating *p)
{
        struct region *region = p->region;
        bool released;
        int result;

        LIST_REMOVE(p->manager->populating, p);
        sd_event_source_disable_unref(p->source);
        result = populate_job_finish(p->job);
        released = atomic_load(&region->released);
        usage_region_changed(region); /* accounting: measure it again (usage.c) */
        reply_populated(p, result);
        /* Released meanwhile: the registry left freeing it to the last job. */
        if (released && region->jobs == 0)
                region_free(region);
        sd_bus_message_unref(p->msg);
        free(p);
}

static int on_populated(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        populating_complete(userdata);
        return 0;
}

int bus_populate_async(struct region *region, sd_bus_message *msg, uint64_t offset, uint64_t length, bool create,
                       sd_bus_error *error)
{
        struct manager *m = region->manager;
        _cleanup_free_ struct populating *p = calloc(1, sizeof(*p));
        int r;

        if (!p)
                return -ENOMEM;
        *p = (struct populating) { .manager = m, .region = region, .create = create };
        r = populate_job_start(region, offset, length, &p->job);
        if (r < 0)
                return bus_reply_errno(error, r, "cannot start populating: %m");
        r = sd_event_add_io(sd_bus_get_event(m->bus), &p->source, p->job->event_fd, EPOLLIN, on_populated, p);
        if (r < 0) {
                /* Let the worker run to its end; nobody will be told. */
                atomic_store(&region->released, true);
                populate_job_finish(p->job);
                atomic_store(&region->released, false);
                return bus_reply_errno(error, r, "cannot watch the populating worker: %m");
        }
        p->msg = sd_bus_message_ref(msg);
        LIST_PREPEND(m->populating, TAKE_PTR(p));
        return 1;
}

void bus_populate_finish_all(struct manager *m)
{
        while (m->populating)
                populating_complete(m->populating);
}
