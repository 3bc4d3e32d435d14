/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.gmem1.Region: main.c registers the objects once on the bus. */
#pragma once

struct manager;

int region_bus_register(struct manager *m);
