/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.gmem1.Manager.CreateRegion, in its named steps; manager-dbus.c puts
 * it into the Manager's vtable. */
#pragma once

#include <systemd/sd-bus.h>

int bus_method_create_region(sd_bus_message *msg, void *userdata, sd_bus_error *error);
