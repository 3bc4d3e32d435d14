/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Node budgets, GetNodeFacts, GetUsage and auto with a cpus hint on the
 * host, and the accounting staying exact while 50 clients of two uids
 * create, populate and release regions at once (forked processes, real
 * setuid, started together through a pipe). */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-client.h"
#include "bus-errors.h"
#include "macro.h"
#include "util.h"

#define NOBODY 65534 /* in the test default allowed_group */
#define CLIENTS 50
#define BUDGET (64 * MIB)
#define NO_LIMIT UINT64_MAX

static const uint32_t node0[] = { 0 };

/* --- reading GetUsage and GetNodeFacts ----------------------------------------------- */

struct usage_row {
        uint32_t uid, regions;
        uint64_t bytes, on_node0, bytes_left, budget_left0;
        uint32_t regions_left;
};

/* The node-0 figure of an a(ut). */
static uint64_t read_node0(sd_bus_message *reply)
{
        uint64_t bytes, found = UINT64_MAX - 1;
        uint32_t node;

        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(ut)"));
        while (sd_bus_message_read(reply, "(ut)", &node, &bytes) > 0)
                if (node == 0)
                        found = bytes;
        ASSERT_OK(sd_bus_message_exit_container(reply));
        return found;
}

/* GetUsage's row of @uid; false when it has none. */
static bool usage_of(sd_bus *bus, uint32_t uid, struct usage_row *ret)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct usage_row row;
        bool found = false;

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "GetUsage", &error, &reply,
                                     ""));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(uuta(ut)tua(ut))"));
        while (sd_bus_message_enter_container(reply, 'r', "uuta(ut)tua(ut)") > 0) {
                ASSERT_OK(sd_bus_message_read(reply, "uut", &row.uid, &row.regions, &row.bytes));
                row.on_node0 = read_node0(reply);
                ASSERT_OK(sd_bus_message_read(reply, "tu", &row.bytes_left, &row.regions_left));
                row.budget_left0 = read_node0(reply);
                ASSERT_OK(sd_bus_message_exit_container(reply));
                if (row.uid == uid) {
                        *ret = row;
                        found = true;
                }
        }
        return found;
}

/* One numeric fact ("Budget", "Promised", ...) of node 0 from GetNodeFacts. */
static uint64_t node0_fact(sd_bus *bus, const char *fact)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t value = UINT64_MAX - 1;
        const char *key;
        uint32_t node;

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "GetNodeFacts", &error,
                                     &reply, ""));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(ua{sv})"));
        ASSERT(sd_bus_message_enter_container(reply, 'r', "ua{sv}") > 0);
        ASSERT_OK(sd_bus_message_read(reply, "u", &node));
        ASSERT(node == 0);
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "{sv}"));
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                ASSERT_OK(sd_bus_message_read(reply, "s", &key));
                if (streq(key, fact))
                        ASSERT_OK(sd_bus_message_read(reply, "v", "t", &value));
                else
                        ASSERT_OK(sd_bus_message_skip(reply, "v"));
                ASSERT_OK(sd_bus_message_exit_container(reply));
        }
        return value;
}

static char *create_opts(sd_bus *bus, int vm, uint64_t size, const char *policy, bool populate, const char *cpus)
{
        _cleanup_close_ int g = make_gmem(vm, size);
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct opt o[5] = {
                { .key = "memfd", .sig = "h", .h = g },
                { .key = "policy", .sig = "s", .s = policy },
                { .key = "populate", .sig = "b", .b = populate },
                { .key = "persist", .sig = "b", .b = 1 },
        };
        size_t n = 4;
        char *path = NULL;

        if (cpus)
                o[n++] = (struct opt) { .key = "cpus", .sig = "s", .s = cpus };
        if (streq(policy, "bind"))
                o[n++] = (struct opt) { .key = "nodes", .sig = "au", .au = node0, .n_au = 1 };
        ASSERT_OK(create(bus, vm, size, o, n, &error, &path));
        return path;
}

/* --- budgets ------------------------------------------------------------------------- */

static void test_budget(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, 48 * MIB), g2 = make_gmem(vm, 32 * MIB);
        _cleanup_free_ char *bound = create_opts(bus, vm, 32 * MIB, "bind", false, NULL);
        _cleanup_free_ char *loose = create_opts(bus, vm, 32 * MIB, "default", false, NULL);
        _cleanup_free_ char *small = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct usage_row row;
        const struct opt bind48[] = {
                { .key = "memfd", .sig = "h", .h = g }, { .key = "policy", .sig = "s", .s = "bind" },
                { .key = "nodes", .sig = "au", .au = node0, .n_au = 1 },
        };
        const struct opt auto48[] = { { .key = "memfd", .sig = "h", .h = g }, { .key = "policy", .sig = "s", .s = "auto" } };
        const struct opt default32[] = { { .key = "memfd", .sig = "h", .h = g2 } };

        /* 32M bound is promised; the default region holds nothing yet. */
        ASSERT_U64_EQ(node0_fact(bus, "Budget"), BUDGET);
        ASSERT_U64_EQ(node0_fact(bus, "Promised"), 32 * MIB);
        ASSERT_U64_EQ(node0_fact(bus, "BudgetLeft"), 32 * MIB);
        expect_create_error_says(e, bus, vm, 48 * MIB, bind48, ELEMENTSOF(bind48), GMEM_ERROR_NO_SPACE,
                                 "node 0 has 32.0 MiB left of its 64.0 MiB budget; the region (48.0 MiB) needs "
                                 "48.0 MiB there", "bind beyond the budget");
        expect_create_error_says(e, bus, vm, 48 * MIB, auto48, ELEMENTSOF(auto48), GMEM_ERROR_NO_SPACE,
                                 "node 0 has 32.0 MiB left of its 64.0 MiB budget", "auto beyond the budget");
        small = create_opts(bus, vm, 16 * MIB, "bind", false, NULL);
        /* A default region is charged what it holds: 16M left, it would need 32M. */
        expect_error_says(sd_bus_call_method(bus, "org.gmem1", loose, "org.gmem1.Region", "Populate", &error, NULL,
                                             "tt", 0ULL, 32 * MIB),
                          &error, GMEM_ERROR_NO_SPACE, "populating needs 32.0 MiB more on node 0, which has "
                          "16.0 MiB left of its budget (all nodes together)", "Populate beyond the budget");
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", loose, "org.gmem1.Region", "Populate", &error, NULL, "tt", 0ULL,
                                     8 * MIB));
        ASSERT_U64_EQ(resident_on(bus, loose, 0), 8 * MIB);
        ASSERT_U64_EQ(node0_fact(bus, "Promised"), 56 * MIB);
        expect_create_error_says(e, bus, vm, 32 * MIB, default32, ELEMENTSOF(default32), GMEM_ERROR_NO_SPACE,
                                 "the node budgets cannot hold 32.0 MiB more (node 0: 8.0 MiB left of its 64.0 MiB "
                                 "budget", "default beyond the budgets");

        ASSERT(usage_of(bus, getuid(), &row));
        ASSERT(row.regions == 3 && row.bytes == 80 * MIB && row.on_node0 == 56 * MIB);
        ASSERT(row.bytes_left == NO_LIMIT && row.regions_left == UINT32_MAX && row.budget_left0 == 8 * MIB);
        region_release(bus, bound);
        region_release(bus, loose);
        region_release(bus, small);
        ASSERT(usage_of(bus, getuid(), &row) && row.regions == 0 && row.bytes == 0 && row.on_node0 == 0);
        ASSERT_U64_EQ(node0_fact(bus, "BudgetLeft"), BUDGET);
        printf("ok: a 64 MiB budget on node 0: CreateRegion and Populate refused beyond it, naming what is left\n");
}

/* Memory the VMM faults in itself, gmemd not told: a region larger than it
 * measures on its event loop shows it once the refresher's next round came. */
static void test_refresh(sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, 128 * MIB);
        const struct opt o[] = { { .key = "memfd", .sig = "h", .h = g } };
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        char *map;

        ASSERT_OK(create(bus, vm, 128 * MIB, o, ELEMENTSOF(o), &error, &path));
        map = mmap(NULL, 128 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0);
        ASSERT(map != MAP_FAILED);
        ASSERT_OK(madvise(map, 96 * MIB, MADV_POPULATE_WRITE));
        resident_settles(bus, path, 96 * MIB, 60);
        ASSERT_U64_EQ(node0_fact(bus, "Held"), 96 * MIB);
        munmap(map, 128 * MIB);
        region_release(bus, path);
        printf("ok: 96 MiB a client faulted in itself show in Resident and GetNodeFacts after the refresher's round\n");
}

/* --- auto with cpus -------------------------------------------------------------------- */

static void test_cpus(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, 2 * MIB), big = make_gmem(vm, 128 * MIB);
        _cleanup_free_ char *path = create_opts(bus, vm, 2 * MIB, "auto", false, "0");
        _cleanup_free_ char *reason = region_property_string(bus, path, "PlacementReason");
        const struct opt bad[] = { { .key = "memfd", .sig = "h", .h = g }, { .key = "policy", .sig = "s", .s = "auto" },
                                   { .key = "cpus", .sig = "s", .s = "99999" } };
        const struct opt junk[] = { { .key = "memfd", .sig = "h", .h = g }, { .key = "policy", .sig = "s", .s = "auto" },
                                    { .key = "cpus", .sig = "s", .s = "all" } };
        const struct opt bound[] = { { .key = "memfd", .sig = "h", .h = g }, { .key = "policy", .sig = "s", .s = "bind" },
                                     { .key = "nodes", .sig = "au", .au = node0, .n_au = 1 },
                                     { .key = "cpus", .sig = "s", .s = "0" } };
        const struct opt spill[] = { { .key = "memfd", .sig = "h", .h = big }, { .key = "policy", .sig = "s", .s = "auto" },
                                     { .key = "cpus", .sig = "s", .s = "0" }, { .key = "spill", .sig = "b", .b = 1 } };
        const struct opt no_spill[] = { { .key = "memfd", .sig = "h", .h = big },
                                        { .key = "policy", .sig = "s", .s = "auto" },
                                        { .key = "cpus", .sig = "s", .s = "0" } };
        uint32_t nodes[4];

        ASSERT_CONTAINS(reason, "cpus 0 run on node 0, which has room");
        ASSERT(region_nodes(bus, path, nodes, ELEMENTSOF(nodes)) == 1 && nodes[0] == 0);
        expect_create_error_says(e, bus, vm, 2 * MIB, bad, ELEMENTSOF(bad), GMEM_ERROR_INVALID_ARGUMENT,
                                 "option 'cpus': '99999' is not a CPU list of this host", "cpus beyond the host");
        expect_create_error_says(e, bus, vm, 2 * MIB, junk, ELEMENTSOF(junk), GMEM_ERROR_INVALID_ARGUMENT,
                                 "option 'cpus': 'all' is not a CPU list such as \"0-3,8\"", "cpus not a list");
        expect_create_error_says(e, bus, vm, 2 * MIB, bound, ELEMENTSOF(bound), GMEM_ERROR_INVALID_ARGUMENT,
                                 "option 'cpus' only applies to policy 'auto', not 'bind'", "cpus with bind");
        /* 128M is more than the 62M left: no spill is NoSpace; with spill still (one node). */
        expect_create_error_says(e, bus, vm, 128 * MIB, no_spill, ELEMENTSOF(no_spill), GMEM_ERROR_NO_SPACE,
                                 "the node(s) of cpus 0 cannot hold 128.0 MiB within budget (node 0: 62.0 MiB left "
                                 "of its 64.0 MiB budget", "cpus without room");
        expect_create_error_says(e, bus, vm, 128 * MIB, spill, ELEMENTSOF(spill), GMEM_ERROR_NO_SPACE,
                                 "cannot hold 128.0 MiB within budget", "cpus with spill, one node");
        region_release(bus, path);
        printf("ok: auto with cpus \"0\": bound to node 0, the reason a property; bad cpus refused\n");
}

/* --- 50 clients at once ------------------------------------------------------------------ */

static uint64_t client_size(unsigned i)
{
        return (i % 4 + 1) * 2 * MIB;
}

static bool client_uid_nobody(unsigned i)
{
        return i % 2;
}

/* A child: waits for the start, then creates three regions (bound, bound
 * and populated, default and partly populated), reads GetUsage and
 * releases the first. Exit status 0 on success. */
static int client(const char *address, int vm, const int g[3], unsigned i, int start)
{
        sd_bus *bus = bus_connect(address);
        uint64_t size = client_size(i);
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const struct opt o[3][4] = {
                { { .key = "memfd", .sig = "h", .h = g[0] }, { .key = "policy", .sig = "s", .s = "bind" },
                  { .key = "nodes", .sig = "au", .au = node0, .n_au = 1 }, { .key = "persist", .sig = "b", .b = 1 } },
                { { .key = "memfd", .sig = "h", .h = g[1] }, { .key = "policy", .sig = "s", .s = "bind" },
                  { .key = "nodes", .sig = "au", .au = node0, .n_au = 1 }, { .key = "persist", .sig = "b", .b = 1 } },
                { { .key = "memfd", .sig = "h", .h = g[2] }, { .key = "persist", .sig = "b", .b = 1 },
                  { .key = "populate", .sig = "b", .b = 0 }, { .key = "name", .sig = "s", .s = "loose" } },
        };
        char *path[3], c;
        struct usage_row row;

        (void) !read(start, &c, 1); /* EOF: all children exist */
        for (unsigned k = 0; k < 3; k++)
                if (create(bus, vm, size, o[k], 4, &error, &path[k]) < 0)
                        return 1;
        if (sd_bus_call_method(bus, "org.gmem1", path[1], "org.gmem1.Region", "Populate", &error, NULL, "tt", 0ULL,
                               size) < 0 ||
            sd_bus_call_method(bus, "org.gmem1", path[2], "org.gmem1.Region", "Populate", &error, NULL, "tt", 0ULL,
                               2 * MIB) < 0)
                return 2;
        if (!usage_of(bus, getuid(), &row) || row.regions < 3)
                return 3;
        if (sd_bus_call_method(bus, "org.gmem1", path[0], "org.gmem1.Region", "Release", &error, NULL, "") < 0)
                return 4;
        return 0;
}

static bool read_resident(const char *path, uint32_t uid, const void *arg)
{
        (void) resident_on((sd_bus *) arg, path, 0);
        return false;
}

static bool is_loose(const char *path, uint32_t uid, const void *arg)
{
        return true;
}

static void test_concurrent(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm();
        int g[CLIENTS][3], start[2], status;
        uint64_t bytes[2] = {}, charged[2] = {};
        unsigned regions[2] = {};
        pid_t pids[CLIENTS];
        struct usage_row row;

        ASSERT(pipe(start) == 0);
        for (unsigned i = 0; i < CLIENTS; i++) {
                for (unsigned k = 0; k < 3; k++)
                        g[i][k] = make_gmem(vm, client_size(i));
                pids[i] = fork();
                ASSERT(pids[i] >= 0);
                if (pids[i] == 0) {
                        gid_t nobody = NOBODY;

                        close(start[1]);
                        if (client_uid_nobody(i) &&
                            (setgroups(1, &nobody) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0))
                                _exit(100);
                        _exit(client(e->address, vm, g[i], i, start[0]));
                }
                /* What is left once all are done: the populated bound region and the default one holding 2M. */
                regions[client_uid_nobody(i)] += 2;
                bytes[client_uid_nobody(i)] += 2 * client_size(i);
                charged[client_uid_nobody(i)] += client_size(i) + 2 * MIB;
        }
        close(start[0]);
        close(start[1]); /* go */
        for (unsigned i = 0; i < CLIENTS; i++) {
                ASSERT(waitpid(pids[i], &status, 0) == pids[i] && WIFEXITED(status));
                if (WEXITSTATUS(status))
                        fprintf(stderr, "client %u failed at step %d\n", i, WEXITSTATUS(status));
                ASSERT(WEXITSTATUS(status) == 0);
                for (unsigned k = 0; k < 3; k++)
                        close(g[i][k]);
        }
        /* A default region is charged what it holds: read each region's
         * Resident, which measures a small region now, as a client would. */
        ASSERT(region_listed_find(bus, read_resident, bus, NULL, NULL) == false);
        for (unsigned u = 0; u < 2; u++) {
                ASSERT(usage_of(bus, u ? NOBODY : 0, &row));
                printf("   uid %u: %u regions, %llu bytes, %llu on node 0\n", row.uid, row.regions,
                       (unsigned long long) row.bytes, (unsigned long long) row.on_node0);
                ASSERT(row.regions == regions[u] && row.bytes == bytes[u] && row.on_node0 == charged[u]);
        }
        ASSERT(count_regions(bus) == 2 * CLIENTS);
        ASSERT_U64_EQ(node0_fact(bus, "Promised"), charged[0] + charged[1]);
        ASSERT_U64_EQ(node0_fact(bus, "Held"), charged[0] + charged[1]);
        for (char *path; region_listed_find(bus, is_loose, NULL, &path, NULL); free(path))
                region_release(bus, path);
        ASSERT(usage_of(bus, NOBODY, &row) == false);
        ASSERT(usage_of(bus, 0, &row) && row.regions == 0 && row.bytes == 0 && row.on_node0 == 0);
        ASSERT_U64_EQ(node0_fact(bus, "Promised"), 0);
        printf("ok: %d clients of 2 uids created, populated and released at once; GetUsage exact after\n", CLIENTS);
}

int main(void)
{
        struct test_env e = {};
        sd_bus *bus;

        bus_tests_init();
        bus = bus_test_start(&e, &(struct test_env_options) {
                .open_policy = true,
                .daemon_config = "{ \"allowed_group\": \"65534\", \"log_level\": \"info\", "
                                 "\"budgets\": { \"0\": \"64M\" } }",
        });
        test_budget(&e, bus);
        test_cpus(&e, bus);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));

        /* 50 clients need more than 64M: a budget of 4G, whose remainder must be exact too. */
        bus = bus_test_start(&e, &(struct test_env_options) {
                .open_policy = true,
                .daemon_config = "{ \"allowed_group\": \"65534\", \"log_level\": \"notice\", "
                                 "\"budgets\": { \"*\": \"4G\" } }",
        });
        test_refresh(bus);
        test_concurrent(&e, bus);
        ASSERT_U64_EQ(node0_fact(bus, "BudgetLeft"), 4096 * MIB);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));
        return 0;
}
