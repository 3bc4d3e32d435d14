/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemd's state: the bus and event loop, configuration, the KVM handle and
 * the regions it holds, with the registry operations the bus objects use. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "kernel-features.h"
#include "placement.h"
#include "region.h"

#define REGION_PATH_PREFIX "/org/gmem1/region"
#define MANAGER_PATH "/org/gmem1"

/* A bus connection that passed the access check: its credentials (fixed for
 * the connection's life) and the tracking that releases its regions when it
 * goes away. One per connection, so repeated calls cost no bus round trips. */
struct client {
        struct manager *manager;
        char *sender;
        uid_t uid;
        pid_t pid;
        sd_bus_track *track;
        struct client *next, *prev;
};

struct populating; /* a Populate or CreateRegion waiting for its worker (region-dbus.c) */

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
        struct client *clients;
        struct populating *populating;
        uint64_t next_id;
};


int manager_new(struct manager **ret);
struct manager *manager_free(struct manager *m);

struct region *manager_find_region(struct manager *m, uint64_t id);
int region_object_path(const struct region *r, char **ret);
/* Parse an object path into a region id; -ENOENT if it is not one. */
int region_id_from_path(const char *path, uint64_t *ret);

void manager_add_region(struct manager *m, struct region *r);
/* Forget the region, emit RegionRemoved and free it. */
void manager_release_region(struct manager *m, struct region *r, const char *why);

/* Node states; with @outstanding also what gmemd regions still have to take
 * on each, which measures every region and is only needed to judge free room. */
int manager_node_states(struct manager *m, bool outstanding, struct node_state **ret, size_t *n_ret);
/* Bytes resident in gmemd regions per node; array of node_count_max(). */
int manager_resident_by_node(struct manager *m, uint64_t **ret, unsigned *n_ret);

/* Check the caller may use the daemon at all (root or the allowed group);
 * the first call of a connection asks the bus, later ones use the cache. */
int bus_check_caller(struct manager *m, sd_bus_message *msg, struct client **ret, sd_bus_error *error);
void client_free(struct client *c);
/* Fail @error with the gmem error for @r and a printf-style message. */
int bus_reply_errno(sd_bus_error *error, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Populate [offset, offset + length) of @r on a worker and answer @msg when it
 * is done: for CreateRegion (@create) with (o, h), else with nothing. */
int bus_populate_async(struct manager *m, struct region *r, sd_bus_message *msg, uint64_t offset,
                       uint64_t length, bool create, sd_bus_error *error);
/* At exit, after the regions were released: wait for every worker. */
void manager_finish_populating(struct manager *m);

/* Bus objects (manager-dbus.c, region-dbus.c). */
int manager_bus_register(struct manager *m);
int region_bus_register(struct manager *m);
