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

struct populating {
        struct manager *manager;
        struct region *region;
        sd_bus_message *msg;
        bool create;
        struct populate_job *job;
        sd_event_source *source;
        struct populating *next, *prev;
};

int bus_reply_created(sd_bus_message *msg, struct region *r)
{
        _cleanup_free_ char *path = NULL;
        int k;

        fdstore_add_region(r);
        k = gmem_region_path(r->id, &path);
        if (k < 0)
                return k;
        return sd_bus_reply_method_return(msg, "oh", path, r->fd);
}

static void reply_populated(struct populating *p, int result)
{
        struct region *r = p->region;
        const char *name;
        int k = 0;

        if (atomic_load(&r->released)) {
                (void) sd_bus_reply_method_errorf(p->msg, GMEM_ERROR_NOT_FOUND,
                                                  "region %" PRIu64 " was released, or gmemd stopped, while it "
                                                  "was being populated", r->id);
                return;
        }
        if (result < 0) {
                log_warning_errno(result, "Populating region %" PRIu64 " failed: %m", r->id);
                name = gmem_bus_error_from_errno(result == -ENOMEM ? -ENOSPC : result);
                (void) sd_bus_reply_method_errorf(p->msg, name ?: SD_BUS_ERROR_FAILED, "populating region %" PRIu64
                                                  " failed: %s", r->id, strerror(-result));
                /* A region that was to be created populated is not kept half done. */
                if (p->create)
                        manager_release_region(p->manager, r, "populating it failed");
                return;
        }
        if (p->create)
                k = bus_reply_created(p->msg, r);
        else
                k = sd_bus_reply_method_return(p->msg, NULL);
        if (k < 0)
                log_warning_errno(k, "Cannot answer the caller populating region %" PRIu64 ": %m", r->id);
}

/* The worker is done: answer the caller, and free what nobody holds now. */
static void populating_complete(struct populating *p)
{
        struct region *r = p->region;
        bool released;
        int result;

        LIST_REMOVE(p->manager->populating, p);
        sd_event_source_disable_unref(p->source);
        result = populate_job_finish(p->job);
        released = atomic_load(&r->released);
        reply_populated(p, result);
        /* Released meanwhile: the registry left freeing it to the last job. */
        if (released && r->jobs == 0)
                region_free(r);
        sd_bus_message_unref(p->msg);
        free(p);
}

static int on_populated(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        populating_complete(userdata);
        return 0;
}

int bus_populate_async(struct region *r, sd_bus_message *msg, uint64_t offset, uint64_t length, bool create,
                       sd_bus_error *error)
{
        struct manager *m = r->manager;
        _cleanup_free_ struct populating *p = calloc(1, sizeof(*p));
        int k;

        if (!p)
                return -ENOMEM;
        *p = (struct populating) { .manager = m, .region = r, .create = create };
        k = populate_job_start(r, offset, length, &p->job);
        if (k < 0)
                return bus_reply_errno(error, k, "cannot start populating: %m");
        k = sd_event_add_io(sd_bus_get_event(m->bus), &p->source, p->job->event_fd, EPOLLIN, on_populated, p);
        if (k < 0) {
                /* Let the worker run to its end; nobody will be told. */
                atomic_store(&r->released, true);
                populate_job_finish(p->job);
                atomic_store(&r->released, false);
                return bus_reply_errno(error, k, "cannot watch the populating worker: %m");
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
