/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Planning the populate workers: node CPUs from libnuma, intersected with
 * gmemd's own affinity, and the range split into pools per node. */
#include <errno.h>
#include <numa.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "populate-plan.h"
#include "populate.h"

static uint64_t min_u64(uint64_t a, uint64_t b)
{
        return a < b ? a : b;
}

void populate_format_cpus(const cpu_set_t *cpus, char *buf, size_t size)
{
        size_t used = 0;

        buf[0] = '\0';
        for (int cpu = 0; cpu < CPU_SETSIZE && used < size; cpu++) {
                int last = cpu;

                if (!CPU_ISSET(cpu, cpus))
                        continue;
                while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, cpus))
                        last++;
                used += (size_t) snprintf(buf + used, size - used, last > cpu ? "%s%d-%d" : "%s%d",
                                          used ? "," : "", cpu, last);
                cpu = last;
        }
}

/* @node's CPUs that gmemd may run on; false (and @allowed) when there are none. */
static bool node_cpus(int node, const cpu_set_t *allowed, cpu_set_t *ret)
{
        struct bitmask *mask = numa_allocate_cpumask();
        bool any = false;

        CPU_ZERO(ret);
        if (mask && node >= 0 && numa_node_to_cpus(node, mask) >= 0)
                for (unsigned cpu = 0; cpu < mask->size && cpu < CPU_SETSIZE; cpu++)
                        if (numa_bitmask_isbitset(mask, cpu) && CPU_ISSET(cpu, allowed)) {
                                CPU_SET(cpu, ret);
                                any = true;
                        }
        if (mask)
                numa_free_cpumask(mask);
        if (!any)
                *ret = *allowed;
        return any;
}

static unsigned chunks_in(const struct populate_pool *pool)
{
        uint64_t bytes = pool->end - atomic_load(&pool->next);

        return (unsigned) min_u64((bytes + POPULATE_CHUNK - 1) / POPULATE_CHUNK, POPULATE_WORKERS_MAX);
}

/* Append the workers for @node (-1: unbound) taking from @pool. */
static void plan_node(struct populate_job *j, int node, struct populate_pool *pool, unsigned per_node,
                      const cpu_set_t *allowed)
{
        cpu_set_t cpus;
        bool bound = node_cpus(node, allowed, &cpus);
        unsigned n = per_node ?: (unsigned) min_u64((uint64_t) CPU_COUNT(&cpus), POPULATE_WORKERS_DEFAULT_CAP);

        if (node >= 0 && !bound)
                log_notice("No CPU of node %d is usable by gmemd: its populate workers are not bound", node);
        n = (unsigned) min_u64(n, chunks_in(pool));
        if (n == 0)
                n = 1;
        for (unsigned i = 0; i < n; i++)
                j->workers[j->n_workers++] = (struct populate_worker) {
                        .job = j, .pool = pool, .node = node, .bound = bound, .cpus = cpus,
                };
}

int populate_plan(struct populate_job *j, unsigned per_node)
{
        const struct placement *p = &j->region->placement;
        size_t n_nodes = p->applied == POLICY_DEFAULT ? 0 : p->n_nodes;
        bool split = p->applied == POLICY_BIND && n_nodes > 1;
        uint64_t page = (uint64_t) sysconf(_SC_PAGESIZE), share;
        cpu_set_t allowed;

        if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
                return negative_errno();
        j->n_pools = split ? (unsigned) n_nodes : 1;
        j->pools = calloc(j->n_pools, sizeof(*j->pools));
        j->workers = calloc((n_nodes ?: 1) * POPULATE_WORKERS_MAX, sizeof(*j->workers));
        if (!j->pools || !j->workers)
                return -ENOMEM;
        share = split ? j->length / n_nodes / page * page : j->length;
        for (unsigned i = 0; i < j->n_pools; i++) {
                atomic_init(&j->pools[i].next, j->offset + i * share);
                j->pools[i].end = i + 1 == j->n_pools ? j->offset + j->length : j->offset + (i + 1) * share;
        }
        if (n_nodes == 0)
                plan_node(j, -1, &j->pools[0], per_node, &allowed);
        for (size_t i = 0; i < n_nodes; i++)
                plan_node(j, (int) p->nodes[i], &j->pools[split ? i : 0], per_node, &allowed);
        return 0;
}
