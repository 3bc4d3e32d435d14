/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.gmem1.Region objects under /org/gmem1/region/<id>: properties, the
 * owner's methods, and tracking the owner's bus connection. */
#include <errno.h>
#include <sys/epoll.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-errors.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "numa-nodes.h"
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

/* The worker is done: answer the caller, and free what nobody holds now. */
static void populating_complete(struct populating *p)
{
        struct manager *m = p->manager;
        struct region *r = p->region;
        _cleanup_free_ char *path = NULL;
        int k, result;

        LIST_REMOVE(m->populating, p);
        sd_event_source_disable_unref(p->source);
        result = populate_job_finish(p->job);

        if (atomic_load(&r->released)) {
                (void) sd_bus_reply_method_errorf(p->msg, GMEM_ERROR_NOT_FOUND,
                                                  "region %" PRIu64 " was released while it was being populated",
                                                  r->id);
                if (r->jobs == 0)
                        region_free(r);
        } else if (result < 0) {
                log_warning_errno(result, "Populating region %" PRIu64 " failed: %m", r->id);
                (void) sd_bus_reply_method_errorf(p->msg, gmem_bus_error_from_errno(result == -ENOMEM ? -ENOSPC : result)
                                                          ?: SD_BUS_ERROR_FAILED,
                                                  "populating region %" PRIu64 " failed: %s", r->id, strerror(-result));
                /* A region that was to be created populated is not kept half done. */
                if (p->create)
                        manager_release_region(m, r, "populating it failed");
        } else if (p->create) {
                k = region_object_path(r, &path);
                if (k >= 0)
                        k = sd_bus_reply_method_return(p->msg, "oh", path, r->fd);
                if (k < 0)
                        log_warning_errno(k, "Cannot answer CreateRegion for region %" PRIu64 ": %m", r->id);
        } else
                (void) sd_bus_reply_method_return(p->msg, NULL);

        sd_bus_message_unref(p->msg);
        free(p);
}

static int on_populated(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        populating_complete(userdata);
        return 0;
}

int bus_populate_async(struct manager *m, struct region *r, sd_bus_message *msg, uint64_t offset,
                       uint64_t length, bool create, sd_bus_error *error)
{
        struct populating *p = calloc(1, sizeof(*p));
        int k;

        if (!p)
                return -ENOMEM;
        *p = (struct populating) { .manager = m, .region = r, .create = create };
        k = populate_job_start(r, offset, length, &p->job);
        if (k < 0) {
                free(p);
                return bus_reply_errno(error, k, "cannot start populating: %s", strerror(-k));
        }
        k = sd_event_add_io(sd_bus_get_event(m->bus), &p->source, p->job->event_fd, EPOLLIN, on_populated, p);
        if (k < 0) {
                /* Let the worker run to its end; nobody will be told. */
                atomic_store(&r->released, true);
                populate_job_finish(p->job);
                atomic_store(&r->released, false);
                free(p);
                return bus_reply_errno(error, k, "cannot watch the populating worker: %s", strerror(-k));
        }
        p->msg = sd_bus_message_ref(msg);
        LIST_PREPEND(m->populating, p);
        return 1; /* answered when the worker is done */
}

void manager_finish_populating(struct manager *m)
{
        while (m->populating)
                populating_complete(m->populating);
}

static int region_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                       sd_bus_error *error)
{
        struct manager *m = userdata;
        struct region *r;
        uint64_t id;

        if (region_id_from_path(path, &id) < 0)
                return 0;
        r = manager_find_region(m, id);
        if (!r)
                return 0;
        *found = r;
        return 1;
}

static int region_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error)
{
        struct manager *m = userdata;
        char **list = calloc(m->n_regions + 1, sizeof(char *));
        size_t i = 0;

        if (!list)
                return -ENOMEM;
        for (struct region *r = m->regions; r; r = r->next) {
                if (region_object_path(r, &list[i]) < 0) {
                        while (i > 0)
                                free(list[--i]);
                        free(list);
                        return -ENOMEM;
                }
                i++;
        }
        *nodes = list;
        return 0;
}

static int check_owner(struct manager *m, struct region *r, sd_bus_message *msg, const char *verb,
                       sd_bus_error *error)
{
        struct client *caller;
        int k = bus_check_caller(m, msg, &caller, error);

        if (k < 0)
                return k;
        if (caller->uid != 0 && caller->uid != r->owner_uid)
                return bus_reply_errno(error, -EACCES, "region %" PRIu64 " ('%s') belongs to uid %u; uid %u may not %s it",
                                       r->id, r->name, (unsigned) r->owner_uid, (unsigned) caller->uid, verb);
        return 0;
}

static struct manager *region_manager(struct region *r, sd_bus_message *msg)
{
        return sd_bus_slot_get_userdata(sd_bus_get_current_slot(sd_bus_message_get_bus(msg)));
}

static int method_range(sd_bus_message *msg, struct region *r, bool populate, sd_bus_error *error)
{
        struct manager *m = region_manager(r, msg);
        uint64_t offset, length;
        char reason[256];
        int k;

        k = check_owner(m, r, msg, populate ? "populate" : "discard", error);
        if (k < 0)
                return k;
        k = sd_bus_message_read(msg, "tt", &offset, &length);
        if (k < 0)
                return k;
        k = region_check_range(r, offset, length, reason, sizeof(reason));
        if (k < 0)
                return bus_reply_errno(error, k, "%s", reason);
        if (populate)
                return bus_populate_async(m, r, msg, offset, length, false, error);
        k = region_discard(r, offset, length);
        if (k < 0)
                return bus_reply_errno(error, k, "discarding %" PRIu64 "+%" PRIu64 " failed: %s", offset, length,
                                       strerror(-k));
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_populate(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return method_range(msg, userdata, true, error);
}

static int method_discard(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return method_range(msg, userdata, false, error);
}

static int method_release(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        struct region *r = userdata;
        struct manager *m = region_manager(r, msg);
        int k;

        k = check_owner(m, r, msg, "release", error);
        if (k < 0)
                return k;
        /* Reply first: the object is gone once released. */
        k = sd_bus_reply_method_return(msg, NULL);
        manager_release_region(m, r, "released by its owner");
        return k;
}

static int property_get_policy(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        struct region *r = userdata;

        return sd_bus_message_append(reply, "s", placement_policy_to_string(r->placement.requested));
}

static int property_get_nodes(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        struct region *r = userdata;
        uint32_t nodes[r->placement.n_nodes + 1];

        for (size_t i = 0; i < r->placement.n_nodes; i++)
                nodes[i] = r->placement.nodes[i];
        return sd_bus_message_append_array(reply, 'u', nodes, r->placement.n_nodes * sizeof(uint32_t));
}

static int property_get_resident(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        struct region *r = userdata;
        unsigned n = node_count_max();
        _cleanup_free_ uint64_t *per_node = calloc(n, sizeof(*per_node));
        int k;

        if (!per_node)
                return -ENOMEM;
        k = region_measure_resident(r, per_node, n);
        if (k < 0)
                return bus_reply_errno(error, k, "cannot measure residency: %s", strerror(-k));
        k = sd_bus_message_open_container(reply, 'a', "(ut)");
        if (k < 0)
                return k;
        for (unsigned i = 0; i < n; i++) {
                if (!per_node[i])
                        continue;
                k = sd_bus_message_append(reply, "(ut)", (uint32_t) i, per_node[i]);
                if (k < 0)
                        return k;
        }
        return sd_bus_message_close_container(reply);
}

static const sd_bus_vtable region_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", NULL, offsetof(struct region, name), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Size", "t", NULL, offsetof(struct region, size), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Policy", "s", property_get_policy, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Nodes", "au", property_get_nodes, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("OwnerUID", "u", NULL, offsetof(struct region, owner_uid), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("OwnerPID", "u", NULL, offsetof(struct region, owner_pid), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Resident", "a(ut)", property_get_resident, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("Populate", SD_BUS_ARGS("t", offset, "t", length), SD_BUS_NO_RESULT,
                                method_populate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Discard", SD_BUS_ARGS("t", offset, "t", length), SD_BUS_NO_RESULT,
                                method_discard, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Release", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                                method_release, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

int region_bus_register(struct manager *m)
{
        int r;

        r = sd_bus_add_fallback_vtable(m->bus, NULL, REGION_PATH_PREFIX, "org.gmem1.Region", region_vtable,
                                       region_find, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the Region objects: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, REGION_PATH_PREFIX, region_enumerate, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the Region enumerator: %m");
        return 0;
}
