/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Replies that wait for a populate worker, and the one CreateRegion success
 * reply. Who calls what: create-region.c and region-dbus.c start
 * population and answer CreateRegion here; manager.c waits for the
 * workers at stop. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

struct manager;
struct region;

/* Populate [offset, offset + length) of @region on a worker and answer @msg when
 * it is done: a CreateRegion (@create) as bus_reply_created() does, else
 * with nothing. Returns 1 (answer pending) or fails @error. */
int bus_populate_async(struct region *region, sd_bus_message *msg, uint64_t offset, uint64_t length, bool create,
                       sd_bus_error *error);
/* Answer CreateRegion with (o region, h memfd), once @region is complete: the
 * region goes into the fd store first, so what the caller was told exists
 * survives a crash of gmemd. */
int bus_reply_created(sd_bus_message *msg, struct region *region);
/* At stop, after the regions were released or closed: wait for every worker. */
void bus_populate_finish_all(struct manager *m);
