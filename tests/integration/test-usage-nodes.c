/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* auto with a cpus hint on a guest of 4 unequal NUMA nodes with one CPU
 * each (run-vm --nodes 4: 512M, 768M, 1G, 1.25G; CPU i on node i): the
 * CPUs' node is chosen, the roomier of two, NoSpace beyond node 0's budget
 * without spill and a spread with it; populated memory is where Resident
 * says, checked against GetNodeFacts' CPUs and distances. vm tier only. */
#include <stdio.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-client.h"
#include "bus-errors.h"
#include "macro.h"
#include "util.h"

#define NODES 4

/* The CPUs GetNodeFacts gives each node, and node 0's distance to each. */
static void check_facts(sd_bus *bus)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        unsigned seen = 0;
        const char *key;
        uint32_t node;

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "GetNodeFacts", &error,
                                     &reply, ""));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(ua{sv})"));
        while (sd_bus_message_enter_container(reply, 'r', "ua{sv}") > 0) {
                ASSERT_OK(sd_bus_message_read(reply, "u", &node));
                ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "{sv}"));
                while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                        ASSERT_OK(sd_bus_message_read(reply, "s", &key));
                        if (streq(key, "CPUs")) {
                                const char *cpus;
                                char want[16];

                                ASSERT_OK(sd_bus_message_read(reply, "v", "s", &cpus));
                                snprintf(want, sizeof(want), "%u", node);
                                printf("   node %u: CPUs %s\n", node, cpus);
                                ASSERT(streq(cpus, want));
                        } else
                                ASSERT_OK(sd_bus_message_skip(reply, "v"));
                        ASSERT_OK(sd_bus_message_exit_container(reply));
                }
                ASSERT_OK(sd_bus_message_exit_container(reply));
                ASSERT_OK(sd_bus_message_exit_container(reply));
                seen++;
        }
        ASSERT(seen == NODES);
        printf("ok: GetNodeFacts: %u nodes, CPU i on node i\n", seen);
}

static int create_auto(sd_bus *bus, int vm, uint64_t size, const char *cpus, bool spill, sd_bus_error *error,
                       char **path)
{
        _cleanup_close_ int g = make_gmem(vm, size);
        const struct opt o[] = {
                { .key = "memfd", .sig = "h", .h = g }, { .key = "policy", .sig = "s", .s = "auto" },
                { .key = "cpus", .sig = "s", .s = cpus }, { .key = "spill", .sig = "b", .b = spill },
                { .key = "populate", .sig = "b", .b = 1 },
        };

        return create(bus, vm, size, o, ELEMENTSOF(o), error, path);
}

/* Populated where the reason says: all of it resident on @node. */
static void expect_on(sd_bus *bus, const char *path, unsigned node, uint64_t size, const char *says)
{
        _cleanup_free_ char *reason = region_property_string(bus, path, "PlacementReason");
        uint32_t nodes[NODES];

        printf("   %s: %s\n", path, reason);
        ASSERT_CONTAINS(reason, says);
        ASSERT(region_nodes(bus, path, nodes, NODES) == 1 && nodes[0] == node);
        ASSERT_U64_EQ(resident_on(bus, path, node), size);
}

int main(void)
{
        struct test_env e = {};
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_close_ int vm = -1;
        _cleanup_free_ char *one = NULL, *two = NULL, *spread = NULL;
        uint32_t nodes[NODES];
        uint64_t total = 0;
        sd_bus *bus;

        bus_tests_init();
        bus = bus_test_start(&e, &(struct test_env_options) {
                .daemon_config = "{ \"log_level\": \"info\", \"budgets\": { \"0\": \"128M\" } }",
        });
        vm = make_vm();
        check_facts(bus);

        /* cpus 1: node 1. cpus 0,2: of nodes 0 (512M) and 2 (1G) the roomier, 2. */
        ASSERT_OK(create_auto(bus, vm, 64 * MIB, "1", false, &error, &one));
        expect_on(bus, one, 1, 64 * MIB, "cpus 1 run on node 1, which has room");
        ASSERT_OK(create_auto(bus, vm, 64 * MIB, "0,2", false, &error, &two));
        expect_on(bus, two, 2, 64 * MIB, "cpus 0,2 run on node 2 (of their nodes the one with most room)");
        printf("ok: auto with cpus: node 1 for CPU 1, node 2 (1 GiB) over node 0 (512 MiB) for CPUs 0,2\n");

        /* Node 0's budget is 128M: 192M on CPU 0 is NoSpace without spill... */
        {
                _cleanup_close_ int g = make_gmem(vm, 192 * MIB);
                const struct opt o[] = {
                        { .key = "memfd", .sig = "h", .h = g }, { .key = "policy", .sig = "s", .s = "auto" },
                        { .key = "cpus", .sig = "s", .s = "0" },
                };

                expect_create_error_says(&e, bus, vm, 192 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_NO_SPACE,
                                         "the node(s) of cpus 0 cannot hold 192.0 MiB within budget (node 0: "
                                         "128.0 MiB left of its 128.0 MiB budget", "beyond node 0's budget");
        }
        /* ...and with spill 128M stay on node 0, the rest goes to the roomiest other node. */
        ASSERT_OK(create_auto(bus, vm, 192 * MIB, "0", true, &error, &spread));
        {
                _cleanup_free_ char *reason = region_property_string(bus, spread, "PlacementReason");

                printf("   %s: %s\n", spread, reason);
                ASSERT_CONTAINS(reason, "cpus 0: their nodes lack room for 192.0 MiB, spilled over nodes 0,");
        }
        ASSERT(region_nodes(bus, spread, nodes, NODES) == 2 && nodes[0] == 0 && nodes[1] != 0);
        resident_settles(bus, spread, 192 * MIB, 120);
        /* Each node bound to its share's range: 128M on node 0, 64M on the other. */
        for (unsigned node = 0; node < NODES; node++) {
                uint64_t held = resident_on(bus, spread, node);

                printf("   node %u holds %llu MiB of it\n", node, (unsigned long long) (held / MIB));
                ASSERT_U64_EQ(held, node == 0 ? 128 * MIB : node == nodes[1] ? 64 * MIB : 0);
                total += held;
        }
        ASSERT_U64_EQ(total, 192 * MIB);
        printf("ok: 192 MiB for CPU 0 beyond node 0's 128 MiB budget: NoSpace, with spill over nodes 0,%u\n",
               nodes[1]);

        region_release(bus, one);
        region_release(bus, two);
        region_release(bus, spread);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));
        return 0;
}
