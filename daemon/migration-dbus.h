/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Manager.ExportRegion, ImportRegion and ListMigrations (manager-dbus.c puts
 * them into the Manager's vtable) and the org.gmem1.Migration objects. */
#pragma once

#include <systemd/sd-bus.h>

struct manager;

int bus_method_export_region(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int bus_method_import_region(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int bus_method_list_migrations(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int migration_bus_register(struct manager *m);
