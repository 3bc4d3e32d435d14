/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.gmem1.Region objects under /org/gmem1/region/<id>: finding them (an
 * unknown path is NotFound), enumerating them, their properties (for the
 * owner uid, root and the allowed group) and the owner's methods. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bus-caller.h"
#include "bus-contract.h"
#include "bus-errors.h"
#include "bus-populate.h"
#include "log.h"
#include "manager.h"
#include "numa-nodes.h"
#include "region-dbus.h"
#include "usage.h"
#include "util.h"

static int region_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                       sd_bus_error *error)
{
        struct manager *m = userdata;
        struct region *region = NULL;
        uint64_t id;

        /* The prefix itself is only a node in the tree, not a region. */
        if (streq(path, GMEM_REGION_PATH_PREFIX))
                return 0;
        if (gmem_region_id_from_path(path, &id) >= 0)
                region = manager_find_region(m, id);
        if (!region)
                return sd_bus_error_setf(error, GMEM_ERROR_NOT_FOUND, "no region %s: it was released, or never "
                                         "existed (ListRegions shows the regions)", path);
        *found = region;
        return 1;
}

static int region_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error)
{
        struct manager *m = userdata;
        char **list = calloc(m->n_regions + 1, sizeof(char *));
        size_t i = 0;

        if (!list)
                return -ENOMEM;
        for (struct region *region = m->regions; region; region = region->next, i++)
                if (gmem_region_path(region->id, &list[i]) < 0) {
                        while (i > 0)
                                free(list[--i]);
                        free(list);
                        return -ENOMEM;
                }
        *nodes = list;
        return 0;
}

/* Populate, PopulateWithOptions (@reply REPORT) and Discard (@reply -1). */
static int method_range(sd_bus_message *msg, struct region *region, int reply, sd_bus_error *error)
{
        struct populate_params p = {};
        char reason[256];
        int r;

        r = bus_check_region_owner(region, msg, reply >= 0 ? "populate" : "discard", error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "tt", &p.offset, &p.length);
        if (r < 0)
                return r;
        if (reply == POPULATE_REPLY_REPORT) {
                p.measure = true;
                r = bus_populate_read_options(msg, &p, error);
                if (r < 0)
                        return r;
        }
        r = region_check_range(region, p.offset, p.length, reason, sizeof(reason));
        if (r < 0)
                return bus_reply_errno(error, r, "%s", reason);
        if (reply >= 0) {
                r = budget_check_populate(region->manager, region, p.offset, p.length, reason, sizeof(reason));
                if (r < 0)
                        return bus_reply_errno(error, r, "%s", reason);
                return bus_populate_async(region, msg, &p, (enum populate_reply) reply, error);
        }
        r = region_discard(region, p.offset, p.length);
        usage_region_changed(region);
        if (r < 0)
                return bus_reply_errno(error, r, "discarding %" PRIu64 "+%" PRIu64 " failed: %m", p.offset, p.length);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_populate(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return method_range(msg, userdata, POPULATE_REPLY_NONE, error);
}

static int method_populate_with_options(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return method_range(msg, userdata, POPULATE_REPLY_REPORT, error);
}

static int method_cancel_populate(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        struct region *region = userdata;
        int r;

        r = bus_check_region_owner(region, msg, "cancel populating", error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "u", bus_populate_cancel(region));
}

static int method_discard(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return method_range(msg, userdata, -1, error);
}

static int method_release(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        struct region *region = userdata;
        int r;

        r = bus_check_region_owner(region, msg, "release", error);
        if (r < 0)
                return r;
        /* Reply first: the object is gone once released. */
        r = sd_bus_reply_method_return(msg, NULL);
        manager_release_region(region->manager, region, "released by its owner");
        return r;
}

static int append_nodes(sd_bus_message *reply, const struct region *region)
{
        int r = sd_bus_message_open_container(reply, 'a', "u");

        for (size_t i = 0; r >= 0 && i < region->placement.n_nodes; i++)
                r = sd_bus_message_append(reply, "u", (uint32_t) region->placement.nodes[i]);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* Measured now for a region up to USAGE_INLINE_MAX, from the refresher's
 * last measurement for a larger one: never a walk of gigabytes here. */
static int append_resident(sd_bus_message *reply, struct region *region, sd_bus_error *error)
{
        unsigned n = node_count_max();
        const uint64_t *per_node = region_usage_per_node_fresh(region);
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(ut)");
        for (unsigned i = 0; r >= 0 && i < n; i++)
                if (per_node[i])
                        r = sd_bus_message_append(reply, "(ut)", (uint32_t) i, per_node[i]);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* Every Region property: checked against the reader first (bus-caller.h). */
static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        struct region *region = userdata;
        int r;

        r = bus_check_region_reader(region, bus, error);
        if (r < 0)
                return r;
        if (streq(property, "Name"))
                return sd_bus_message_append(reply, "s", region->name);
        if (streq(property, "Size"))
                return sd_bus_message_append(reply, "t", region->size);
        if (streq(property, "Policy"))
                return sd_bus_message_append(reply, "s", placement_policy_to_string(region->placement.requested));
        if (streq(property, "Nodes"))
                return append_nodes(reply, region);
        if (streq(property, "OwnerUID"))
                return sd_bus_message_append(reply, "u", (uint32_t) region->owner_uid);
        if (streq(property, "OwnerPID"))
                return sd_bus_message_append(reply, "u", (uint32_t) region->owner_pid);
        if (streq(property, "Resident"))
                return append_resident(reply, region, error);
        if (streq(property, "PlacementReason"))
                return sd_bus_message_append(reply, "s", region->placement.reason[0] ? region->placement.reason :
                                             "restored from the fd store; the reason was not kept");
        if (streq(property, "Populating")) {
                uint64_t done, total;

                bus_populate_progress(region, &done, &total);
                return sd_bus_message_append(reply, "(tt)", done, total);
        }
        return -ENOENT;
}

static const sd_bus_vtable region_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Size", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Policy", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Nodes", "au", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("OwnerUID", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("OwnerPID", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Resident", "a(ut)", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_PROPERTY("PlacementReason", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Populate", SD_BUS_ARGS("t", offset, "t", length), SD_BUS_NO_RESULT,
                                method_populate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Discard", SD_BUS_ARGS("t", offset, "t", length), SD_BUS_NO_RESULT,
                                method_discard, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Release", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                                method_release, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("Populating", "(tt)", property_get, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("PopulateWithOptions",
                                SD_BUS_ARGS("t", offset, "t", length, "a{sv}", options),
                                SD_BUS_RESULT("a(ut)", resident, "a(is)", workers),
                                method_populate_with_options, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CancelPopulate", SD_BUS_NO_ARGS, SD_BUS_RESULT("u", cancelled),
                                method_cancel_populate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("PopulateProgress",
                                SD_BUS_ARGS("t", offset, "t", length, "t", done, "b", final), 0),
        SD_BUS_VTABLE_END
};

int region_bus_register(struct manager *m)
{
        int r;

        r = sd_bus_add_fallback_vtable(m->bus, NULL, GMEM_REGION_PATH_PREFIX, GMEM_REGION_INTERFACE,
                                       region_vtable, region_find, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the Region objects: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, GMEM_REGION_PATH_PREFIX, region_enumerate, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the Region enumerator: %m");
        return 0;
}
