/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemd's accounting: what each region holds per node (measured on a thread,
 * rate-limited), what it is charged per node, the sums per node and per uid.
 *
 * For the population engine: budget_check_populate() is the check Populate
 * makes before it starts; usage_region_changed() after it touched memory.
 * For the kernel's per-node counts (unmapped guest_memfd): back
 * region_usage_per_node() with them and the rest follows. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "placement.h"

struct manager;
struct region;

/* Regions up to this size are measured on the event loop when their numbers
 * are out of date; larger ones only on the refresher thread. */
#define USAGE_INLINE_MAX (64ULL << 20)

/* The refresher thread and its event sources; stopped (joined) by usage_stop(). */
int usage_start(struct manager *m);
void usage_stop(struct manager *m);

/* Bytes of @region resident per node (node_count_max() entries; all 0 while
 * never measured). Never walks a region larger than USAGE_INLINE_MAX. */
const uint64_t *region_usage_per_node(struct region *region);
/* The same measured now when @region is small enough (Resident of one region). */
const uint64_t *region_usage_per_node_fresh(struct region *region);
/* gmemd changed what @region holds (created, populated, discarded): measure it again soon. */
void usage_region_changed(struct region *region);

/* A populate of @length bytes measures the whole region on its workers (off
 * the event loop: each its chunks, the last one the rest) when this says so:
 * a shared region the kernel does not count, at most USAGE_INLINE_MAX or this
 * many times @length (a walk of a few times the bytes just cleared). Larger
 * ones are left to the refresher. */
#define USAGE_POPULATE_MEASURE_FACTOR 4ULL
bool usage_measure_after_populate(const struct region *region, uint64_t length);
/* A populate of @region ended: usage_region_changed(), and @resident (taken
 * over; NULL when not measured), measured after the workers were done, kept
 * as the newest numbers unless gmemd changed the region since @changed_seq
 * (region->changed_seq when the populate started). */
void usage_region_populated(struct region *region, uint64_t changed_seq, uint64_t *resident);

/* Host nodes with budget, charged (promised: each region's planned share or
 * what it holds there, whichever is more) and outstanding. O(regions x nodes),
 * flat in bytes held. */
int usage_node_states(struct manager *m, struct node_state **ret, size_t *n_ret);

/* One uid's share: its regions, their bytes, and what they are charged per node. */
struct user_usage {
        uid_t uid;
        unsigned regions;
        uint64_t bytes;
        uint64_t *per_node; /* node_count_max() entries */
};
/* Every uid holding regions, and @include even when it holds none; sorted by uid. */
int usage_per_user(struct manager *m, uid_t include, struct user_usage **ret, size_t *n_ret);
void user_usage_free(struct user_usage *u, size_t n);

/*
 * Can [offset, offset + length) of @region be populated now? -ENOSPC with a
 * message naming the node and what is left there when its budget or its free
 * memory cannot take it; 0 otherwise.
 */
int budget_check_populate(struct manager *m, struct region *region, uint64_t offset, uint64_t length, char *msg,
                          size_t msg_size);
