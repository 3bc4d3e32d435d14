/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Populate workers on the right node, on a multi-node guest (vm tier): a
 * region bound to node 1 is populated by workers that found themselves
 * allowed on exactly node 1's CPUs (as libnuma lists them, independently of
 * gmemd), as many as node 1 has CPUs by default, and lands on node 1; one
 * bound to nodes 0 and 1 is split, each half filled by its node's workers on
 * its node. Placement is checked with the daemon's residency report (the
 * reply and the Resident property) and by move_pages() on our own mapping. */
#include <numa.h>
#include <numaif.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-client.h"
#include "macro.h"
#include "numa-pages.h"
#include "util.h"

#define SIZE (256 * MIB)
#define MAX_NODES NUMA_PAGES_MAX_NODES
#define MAX_WORKERS 64

struct report {
        uint64_t resident[MAX_NODES];
        unsigned n_workers;
        int node[MAX_WORKERS];
        char cpus[MAX_WORKERS][128];
};

/* Node @node's CPUs as gmemd formats them ("1,3", "0-3"), from libnuma. */
static void node_cpu_list(int node, char *buf, size_t size)
{
        struct bitmask *mask = numa_allocate_cpumask();
        size_t used = 0;

        ASSERT(mask && numa_node_to_cpus(node, mask) >= 0);
        buf[0] = '\0';
        for (unsigned cpu = 0; cpu < mask->size; cpu++) {
                unsigned last = cpu;

                if (!numa_bitmask_isbitset(mask, cpu))
                        continue;
                while (last + 1 < mask->size && numa_bitmask_isbitset(mask, last + 1))
                        last++;
                used += (size_t) snprintf(buf + used, size - used, last > cpu ? "%s%u-%u" : "%s%u",
                                          used ? "," : "", cpu, last);
                cpu = last;
        }
        numa_free_cpumask(mask);
}

static unsigned node_cpu_count(int node)
{
        struct bitmask *mask = numa_allocate_cpumask();
        unsigned n;

        ASSERT(mask && numa_node_to_cpus(node, mask) >= 0);
        n = numa_bitmask_weight(mask);
        numa_free_cpumask(mask);
        return n;
}

static void populate(sd_bus *bus, const char *path, unsigned workers, struct report *rep)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *cpus;
        uint32_t node;
        int32_t wnode;
        uint64_t bytes;

        *rep = (struct report) {};
        ASSERT_OK(sd_bus_message_new_method_call(bus, &m, "org.gmem1", path, "org.gmem1.Region",
                                                 "PopulateWithOptions"));
        ASSERT_OK(sd_bus_message_append(m, "tt", 0ULL, SIZE));
        if (workers)
                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, "workers", "u", workers));
        else
                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 0));
        ASSERT_OK(sd_bus_call(bus, m, 0, &error, &reply));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(ut)"));
        while (sd_bus_message_read(reply, "(ut)", &node, &bytes) > 0) {
                ASSERT(node < MAX_NODES);
                rep->resident[node] = bytes;
        }
        ASSERT_OK(sd_bus_message_exit_container(reply));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(is)"));
        while (sd_bus_message_read(reply, "(is)", &wnode, &cpus) > 0) {
                ASSERT(rep->n_workers < MAX_WORKERS);
                rep->node[rep->n_workers] = wnode;
                snprintf(rep->cpus[rep->n_workers++], sizeof(rep->cpus[0]), "%s", cpus);
                printf("   worker: node %d, CPUs %s\n", wnode, cpus);
        }
        ASSERT_OK(sd_bus_message_exit_container(reply));
}

static char *create_bound(sd_bus *bus, int vm, int gmem, const uint32_t *nodes, size_t n)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const struct opt o[] = {
                { .key = "memfd", .sig = "h", .h = gmem },
                { .key = "policy", .sig = "s", .s = "bind" },
                { .key = "nodes", .sig = "au", .au = nodes, .n_au = n },
        };
        char *path = NULL;

        ASSERT_OK(create(bus, vm, SIZE, o, ELEMENTSOF(o), &error, &path));
        return path;
}

/* Bound to node 1, default worker count: node 1's CPU count of workers, each
 * allowed on exactly node 1's CPUs; all of it on node 1. */
static void test_one_node(sd_bus *bus, int vm)
{
        static const uint32_t node1[] = { 1 };
        _cleanup_close_ int g = make_gmem(vm, SIZE);
        _cleanup_free_ char *path = create_bound(bus, vm, g, node1, 1);
        uint64_t where[MAX_NODES];
        struct report rep;
        char want[128];

        node_cpu_list(1, want, sizeof(want));
        populate(bus, path, 0, &rep);
        ASSERT(rep.n_workers == (node_cpu_count(1) < 8 ? node_cpu_count(1) : 8));
        for (unsigned i = 0; i < rep.n_workers; i++)
                ASSERT(rep.node[i] == 1 && streq(rep.cpus[i], want));
        ASSERT(rep.resident[1] == SIZE && rep.resident[0] == 0);
        resident_settles(bus, path, SIZE, 60); /* from gmemd's refresher thread */
        ASSERT(resident_on(bus, path, 1) == SIZE);
        numa_locate_pages(g, SIZE, where);
        ASSERT(where[1] == SIZE);
        printf("ok: bind node 1: %u worker(s) (node 1 has %u CPUs), each allowed on exactly CPUs %s; %llu MiB on "
               "node 1 by the report, Resident and move_pages\n", rep.n_workers, node_cpu_count(1), want,
               SIZE / MIB);
        region_release(bus, path);
}

/* Bound to nodes 0 and 1, one worker per node: each half on its node. */
static void test_split(sd_bus *bus, int vm)
{
        static const uint32_t both[] = { 0, 1 };
        _cleanup_close_ int g = make_gmem(vm, SIZE);
        _cleanup_free_ char *path = create_bound(bus, vm, g, both, 2);
        char want[2][128];
        uint64_t where[MAX_NODES];
        struct report rep;

        node_cpu_list(0, want[0], sizeof(want[0]));
        node_cpu_list(1, want[1], sizeof(want[1]));
        populate(bus, path, 1, &rep);
        ASSERT(rep.n_workers == 2);
        for (unsigned i = 0; i < 2; i++)
                ASSERT(rep.node[i] == (int) i && streq(rep.cpus[i], want[i]));
        ASSERT(rep.resident[0] == SIZE / 2 && rep.resident[1] == SIZE / 2);
        resident_settles(bus, path, SIZE, 60); /* from gmemd's refresher thread */
        ASSERT(resident_on(bus, path, 0) == SIZE / 2 && resident_on(bus, path, 1) == SIZE / 2);
        numa_locate_pages(g, SIZE, where);
        ASSERT(where[0] == SIZE / 2 && where[1] == SIZE / 2);
        printf("ok: bind nodes 0,1: a worker on node 0 (CPUs %s) and one on node 1 (CPUs %s), %llu MiB on each\n",
               want[0], want[1], SIZE / 2 / MIB);
        region_release(bus, path);
}

static const unsigned long node0_mask = 1;

/* Every page of [addr, addr + length) is on node 0 (move_pages(), libnuma). */
static bool on_node0(char *addr, uint64_t length)
{
        size_t n = length / (size_t) sysconf(_SC_PAGESIZE);
        _cleanup_free_ void **pages = calloc(n, sizeof(void *));
        _cleanup_free_ int *status = calloc(n, sizeof(int));

        ASSERT(pages && status);
        for (size_t i = 0; i < n; i++)
                pages[i] = addr + i * (size_t) sysconf(_SC_PAGESIZE);
        ASSERT_OK(numa_move_pages(0, n, pages, NULL, status, 0));
        for (size_t i = 0; i < n; i++)
                if (status[i] != 0)
                        return false;
        return true;
}

/* Pages the VMM allocated on node 0 before handing its guest_memfd over,
 * part of one chunk: a region then bound to node 1 and populated whole holds
 * them where they are and the rest on node 1. gmemd counts a chunk it found
 * empty under a one-node bind without locating its pages; this one it must
 * locate. */
static void test_preallocated(sd_bus *bus, int vm)
{
        static const uint32_t node1[] = { 1 };
        const uint64_t at = 40 * MIB, len = 16 * MIB;
        _cleanup_close_ int g = make_gmem(vm, SIZE);
        _cleanup_free_ char *path = NULL;
        uint64_t where[MAX_NODES];
        struct report rep;
        char *map;

        map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0);
        ASSERT(map != MAP_FAILED);
        ASSERT_OK(mbind(map, SIZE, MPOL_BIND, &node0_mask, sizeof(node0_mask) * 8, 0));
        ASSERT_OK(madvise(map + at, len, MADV_POPULATE_WRITE));
        ASSERT(on_node0(map + at, len));
        ASSERT_OK(munmap(map, SIZE));

        path = create_bound(bus, vm, g, node1, 1);
        populate(bus, path, 1, &rep);
        printf("   report: node 0 %llu MiB, node 1 %llu MiB\n", rep.resident[0] / MIB, rep.resident[1] / MIB);
        ASSERT(rep.resident[0] == len && rep.resident[1] == SIZE - len);
        ASSERT(resident_on(bus, path, 0) == len && resident_on(bus, path, 1) == SIZE - len);
        numa_locate_pages(g, SIZE, where);
        ASSERT(where[0] == len && where[1] == SIZE - len);
        printf("ok: bind node 1 over %llu MiB the VMM had put on node 0: the report, Resident and move_pages "
               "agree (%llu MiB on node 0, the rest on node 1)\n", len / MIB, len / MIB);
        region_release(bus, path);
}

int main(void)
{
        struct test_env e;
        sd_bus *bus;
        int vm;

        bus_tests_init();
        ASSERT(numa_available() >= 0 && numa_max_node() >= 1);
        ASSERT(node_cpu_count(0) > 0 && node_cpu_count(1) > 0);
        bus = bus_test_start(&e, NULL);
        vm = make_vm();
        test_one_node(bus, vm);
        test_split(bus, vm);
        test_preallocated(bus, vm);
        safe_close(vm);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));
        return 0;
}
