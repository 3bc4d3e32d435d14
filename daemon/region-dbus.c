/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.gmem1.Region objects under /org/gmem1/region/<id>: properties, the
 * owner's methods, and tracking the owner's bus connection. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "manager.h"
#include "numa-nodes.h"

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
        k = populate ? region_populate(r, offset, length) : region_discard(r, offset, length);
        if (k < 0)
                return bus_reply_errno(error, k == -ENOMEM ? -ENOSPC : k, "%s of %" PRIu64 "+%" PRIu64 " failed: %s",
                                       populate ? "populating" : "discarding", offset, length, strerror(-k));
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
