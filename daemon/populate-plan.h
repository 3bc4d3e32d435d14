/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which workers populate a region, on which node's CPUs, over which part of
 * the range: decided from the placement before any worker exists. */
#pragma once

#include <sched.h>
#include <stddef.h>

struct populate_job;

/*
 * Fill j->pools and j->workers for j->region's placement and the range:
 * - one node (bind, preferred, auto): its workers share the whole range;
 * - bind over several nodes: the range in equal consecutive shares, one per
 *   node, each filled by that node's workers (the kernel allocates from the
 *   allocating CPU's node first within the bound set);
 * - interleave: every listed node's workers share the whole range;
 * - default: unbound workers on gmemd's own CPUs.
 * @per_node: workers per node, 0 = the node's CPUs (capped), never more than
 * its share has chunks. A node whose CPUs gmemd may not use gets unbound workers.
 */
int populate_plan(struct populate_job *j, unsigned per_node);
/* "0-3,8" into @buf. */
void populate_format_cpus(const cpu_set_t *cpus, char *buf, size_t size);
