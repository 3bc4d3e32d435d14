/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemd's state and its region registry.
 *
 * Who calls what: main.c creates, restores, stops and frees the manager
 * (after it waited for the populate workers and freed the clients); the
 * bus objects (create-region.c, manager-dbus.c, region-dbus.c) and the caller
 * tracking (bus-caller.c) look regions up, add and release them. Nothing here
 * checks callers or builds replies: that is bus-caller.c and bus-populate.c. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "kernel-features.h"
#include "macro.h"
#include "placement.h"
#include "region.h"

struct client;     /* bus-caller.h */
struct populating; /* bus-populate.c */
struct usage_refresher; /* usage.c */
struct migration;  /* migration.h */

struct manager {
        sd_event *event;
        sd_bus *bus;
        struct config config;
        bool have_allowed_gid;
        gid_t allowed_gid;

        int kvm_fd;
        struct kernel_features features;

        struct region *regions;
        unsigned n_regions;
        unsigned n_restored; /* regions this gmemd took over from the fd store at start and kept */
        uint64_t next_id;

        struct client *clients;        /* bus-caller.c */
        struct populating *populating; /* bus-populate.c */
        struct usage_refresher *usage; /* usage.c */
        struct migration *migrations;  /* migration.c */
        uint64_t next_migration_id;
};

int manager_new(struct manager **ret);
struct manager *manager_free(struct manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct manager *, manager_free);

struct region *manager_find_region(struct manager *m, uint64_t id);
/* The region whose guest_memfd is the file @st describes, if any. */
struct region *manager_find_region_by_file(struct manager *m, const struct stat *st);
/* Take over @region (its id set, unique) and emit RegionAdded. */
void manager_add_region(struct manager *m, struct region *region);
/* Forget the region for good: emit RegionRemoved, drop it from the fd store
 * and free it (once no worker populates it any more). */
void manager_release_region(struct manager *m, struct region *region, const char *why);
/* Take over the regions a previous gmemd left in the fd store. */
void manager_restore(struct manager *m);
/* Stopping: a region in the fd store is only closed here (the next gmemd
 * restores it); any other is released. A region a worker still populates
 * is freed by that worker's completion (bus_populate_finish_all()). */
void manager_stop(struct manager *m);

/* Regions and bytes held by @uid, for the per-user limits. */
void manager_user_usage(struct manager *m, uid_t uid, unsigned *ret_count, uint64_t *ret_bytes);
