/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager's accounting methods (usage-dbus.c), in manager-dbus.c's vtable. */
#pragma once

#include <systemd/sd-bus.h>

int bus_method_get_nodes(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int bus_method_get_node_facts(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int bus_method_get_usage(sd_bus_message *msg, void *userdata, sd_bus_error *error);
