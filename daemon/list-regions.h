/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager's region listings (list-regions.c), in manager-dbus.c's vtable:
 * ListRegions, and ListRegionsFiltered by owner, with offset, limit and cursor. */
#pragma once

#include <systemd/sd-bus.h>

int bus_method_list_regions(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int bus_method_list_regions_filtered(sd_bus_message *msg, void *userdata, sd_bus_error *error);
