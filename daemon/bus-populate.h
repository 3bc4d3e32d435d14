/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Replies that wait for populate workers, their progress signals and
 * cancellation, and the one CreateRegion success reply. Who calls what:
 * create-region.c and region-dbus.c start population and answer
 * CreateRegion here; manager.c waits for the workers at stop. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "populate.h"

struct manager;
struct region;

/* What a populating call answers when its workers are done. */
enum populate_reply {
        POPULATE_REPLY_NONE,    /* Populate: nothing */
        POPULATE_REPLY_CREATED, /* CreateRegion: as bus_reply_created() */
        POPULATE_REPLY_REPORT,  /* PopulateWithOptions: residency of the range and the workers */
};

/* Populate the range of @p on workers and answer @msg when they are done as
 * @reply says; PopulateProgress signals meanwhile. Returns 1 (answer pending)
 * or fails @error. */
int bus_populate_async(struct region *region, sd_bus_message *msg, const struct populate_params *p,
                       enum populate_reply reply, sd_bus_error *error);
/* PopulateWithOptions' a{sv} into @p (workers); InvalidArgument naming the
 * option and its limits in @error. */
int bus_populate_read_options(sd_bus_message *msg, struct populate_params *p, sd_bus_error *error);
/* Stop every populate running on @region: each answers Cancelled. Returns how many. */
unsigned bus_populate_cancel(struct region *region);
/* Bytes done and asked by the populates running on @region now (0, 0 if none). */
void bus_populate_progress(struct region *region, uint64_t *ret_done, uint64_t *ret_total);
/* Answer CreateRegion with (o region, h memfd), once @region is complete: the
 * region goes into the fd store first, so what the caller was told exists
 * survives a crash of gmemd. */
int bus_reply_created(sd_bus_message *msg, struct region *region);
/* At stop, after the regions were released or closed: wait for every worker. */
void bus_populate_finish_all(struct manager *m);
