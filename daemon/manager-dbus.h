/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.gmem1.Manager: main.c registers the object once on the bus. */
#pragma once

struct manager;

int manager_bus_register(struct manager *m);
