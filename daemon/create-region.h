/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.gmem1.Manager.CreateRegion, in its named steps; manager-dbus.c puts
 * it into the Manager's vtable. */
#pragma once

#include <stddef.h>
#include <systemd/sd-bus.h>

int bus_method_create_region(sd_bus_message *msg, void *userdata, sd_bus_error *error);

struct manager;
struct region;
struct gmem_option_type;

/* What a method built on CreateRegion's steps adds (ImportRegion): its own
 * arguments between size and the options, its own option keys, and the
 * CreateRegion options it refuses (bits 1 << GMEM_OPTION_*). */
struct create_extra {
        int (*read_arguments)(sd_bus_message *msg, void *userdata, sd_bus_error *error);
        const struct gmem_option_type *options;
        size_t n_options;
        /* Read the value of options[index], its variant already entered. */
        int (*read_option)(sd_bus_message *msg, size_t index, void *userdata, sd_bus_error *error);
        unsigned refused;
        /* Check what was read, before anything is built (may be NULL). */
        int (*validate)(void *userdata, sd_bus_error *error);
        void *userdata;
};

/* CreateRegion's steps (caller check, request, validation, placement, the
 * region built and registered) for a message that starts with "h vm, t size"
 * and ends with "a{sv} options"; the region is not answered nor populated. */
int create_region_steps(sd_bus_message *msg, struct manager *m, const struct create_extra *extra,
                        struct region **ret, sd_bus_error *error);
