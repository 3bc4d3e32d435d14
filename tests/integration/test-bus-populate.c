/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Populate runs on a worker while gmemd keeps serving, proven by the order in
 * which replies arrive (never by timing): a later call is answered first, a
 * Release in the middle stops the worker and the Populate fails NotFound, and
 * stopping gmemd answers it and sends RegionRemoved for every region. */
#include <numaif.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-client.h"
#include "bus-errors.h"
#include "macro.h"
#include "util.h"

/* Two 256 MiB steps of the worker: it cannot be done before a call sent
 * right after the Populate is read. Small enough for the vm tier's guest,
 * which runs the host tier in 2 GiB. */
#define BIG (512 * MIB)

/* Bytes of @fd's first @size bytes in memory, seen through our own mapping
 * (mincore: no allocation, no fault). */
static uint64_t bytes_in_memory(int fd, uint64_t size)
{
        size_t page = (size_t) sysconf(_SC_PAGESIZE), n = size / page;
        _cleanup_free_ unsigned char *vec = malloc(n);
        void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        uint64_t bytes = 0;

        ASSERT(vec && map != MAP_FAILED);
        ASSERT_OK(mincore(map, size, vec));
        for (size_t i = 0; i < n; i++)
                bytes += (vec[i] & 1) ? page : 0;
        munmap(map, size);
        return bytes;
}

static char *create_plain(sd_bus *bus, int vm, int gmem, uint64_t size)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const struct opt o[] = { { .key = "memfd", .sig = "h", .h = gmem } };
        char *path = NULL;

        ASSERT_OK(create(bus, vm, size, o, ELEMENTSOF(o), &error, &path));
        return path;
}

static bool both_arrived(const void *userdata)
{
        const struct pending_call *const *c = userdata;

        return c[0]->done && c[1]->done;
}

static void wait_both(sd_bus *bus, struct pending_call *a, struct pending_call *b)
{
        const struct pending_call *c[2] = { a, b };

        process_until(bus, both_arrived, c, 120);
}

/* A ListRegions sent after a Populate is answered before it: the event loop
 * did not wait for the worker. */
static void test_loop_serves_while_populating(sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, BIG);
        _cleanup_free_ char *path = create_plain(bus, vm, g, BIG);
        struct pending_call populate = {}, list = {};

        call_async(bus, &populate, path, "org.gmem1.Region", "Populate", "tt", 0ULL, BIG);
        call_async(bus, &list, "/org/gmem1", "org.gmem1.Manager", "ListRegions", "");
        wait_both(bus, &populate, &list);
        ASSERT(!populate.error_name && !list.error_name);
        ASSERT(list.order < populate.order);
        /* Larger than gmemd measures on its event loop: the job measured it. */
        ASSERT(resident_total(bus, path) == BIG);
        printf("ok: Populate of %llu MiB on a worker; a ListRegions sent after it was answered first\n",
               BIG / MIB);
        region_release(bus, path);
        pending_call_done(&populate);
        pending_call_done(&list);
}

/* Resident right after a Populate of a range of a region larger than gmemd
 * measures on its event loop (USAGE_INLINE_MAX, 64 MiB) but within 4 times
 * the range: exactly the range, measured by the populate's last worker, with
 * a PropertiesChanged before the reply. Then one more range: the numbers of
 * the first populate are not the ones read after the second. Without the
 * job's measurement the reads return the refresher's older numbers. */
static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        (*(unsigned *) userdata)++;
        return 0;
}

static void test_resident_exact_after_range(sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, BIG);
        _cleanup_free_ char *path = create_plain(bus, vm, g, BIG);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        unsigned changed = 0;
        int r;

        ASSERT_OK(sd_bus_match_signal(bus, &slot, "org.gmem1", path, "org.freedesktop.DBus.Properties",
                                      "PropertiesChanged", on_properties_changed, &changed));
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Populate", NULL, NULL, "tt",
                                     BIG / 4, BIG / 4));
        ASSERT(resident_total(bus, path) == BIG / 4);
        /* Dispatch what came so far (the refresher's first measurement of the
         * new region, the populate's): the next change is the second populate's. */
        while ((r = sd_bus_process(bus, NULL)) > 0)
                ;
        ASSERT_OK(r);
        changed = 0;
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Populate", NULL, NULL, "tt",
                                     BIG / 2 + BIG / 4, BIG / 4));
        /* Its PropertiesChanged came before the reply: queued, dispatched without waiting. */
        while ((r = sd_bus_process(bus, NULL)) > 0)
                ;
        ASSERT_OK(r);
        ASSERT(changed >= 1);
        ASSERT(resident_total(bus, path) == BIG / 2);
        printf("ok: Resident exact at once after populating %llu MiB twice of a %llu MiB region\n",
               BIG / 4 / MIB, BIG / MIB);
        region_release(bus, path);
}

/* The bytes per node PopulateWithOptions reports for [0, size) of @path. */
static void populate_report(sd_bus *bus, const char *path, uint64_t size, uint64_t *node0, uint64_t *others)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t bytes;
        uint32_t node;

        *node0 = *others = 0;
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "PopulateWithOptions", &error,
                                     &reply, "tta{sv}", 0ULL, size, 0));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(ut)"));
        while (sd_bus_message_read(reply, "(ut)", &node, &bytes) > 0)
                *(node == 0 ? node0 : others) += bytes;
        ASSERT_OK(sd_bus_message_exit_container(reply));
}

/*
 * A region bound to node 0 whose last chunk (gmemd populates 32 MiB at a time)
 * is shorter than the others, with pages the VMM put there before in the
 * first: gmemd counts a chunk it found empty under a one-node bind without
 * locating each page, and locates those of a chunk that held some. Both
 * must add up to the region's size exactly, in the report and in Resident,
 * for the whole-region call, then for a Populate of the rest of a second
 * region (the job's own measurement, not the report).
 */
static void test_bound_uneven_chunks(sd_bus *bus)
{
        const uint64_t size = 40 * MIB, pre_at = 8 * MIB, pre_len = 4 * MIB;
        static const uint32_t node0[] = { 0 };
        static const unsigned long node0_mask = 1;
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, size), g2 = make_gmem(vm, size);
        _cleanup_free_ char *path = NULL, *path2 = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const struct opt o[] = {
                { .key = "memfd", .sig = "h", .h = g },
                { .key = "policy", .sig = "s", .s = "bind" },
                { .key = "nodes", .sig = "au", .au = node0, .n_au = 1 },
        };
        const struct opt o2[] = { { .key = "memfd", .sig = "h", .h = g2 }, o[1], o[2] };
        uint64_t on0, elsewhere;
        char *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0);

        ASSERT(map != MAP_FAILED);
        /* On node 0 whatever node this test runs on (the vm tier has two). */
        ASSERT_OK(mbind(map, size, MPOL_BIND, &node0_mask, sizeof(node0_mask) * 8, 0));
        ASSERT_OK(madvise(map + pre_at, pre_len, MADV_POPULATE_WRITE));
        ASSERT_OK(munmap(map, size));
        ASSERT(bytes_in_memory(g, size) == pre_len);
        ASSERT_OK(create(bus, vm, size, o, ELEMENTSOF(o), &error, &path));
        populate_report(bus, path, size, &on0, &elsewhere);
        ASSERT(on0 == size && elsewhere == 0);
        ASSERT(resident_on(bus, path, 0) == size && resident_total(bus, path) == size);

        ASSERT_OK(create(bus, vm, size, o2, ELEMENTSOF(o2), &error, &path2));
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path2, "org.gmem1.Region", "Populate", NULL, NULL, "tt",
                                     0ULL, size));
        ASSERT(resident_on(bus, path2, 0) == size && resident_total(bus, path2) == size);
        printf("ok: a %llu MiB region bound to node 0 (chunks of 32 and 8 MiB, %llu MiB there before): %llu MiB "
               "reported and Resident, for PopulateWithOptions and Populate\n", size / MIB, pre_len / MIB,
               size / MIB);
        region_release(bus, path);
        region_release(bus, path2);
}

static uint64_t held_on_all_nodes(sd_bus *bus)
{
        struct host_node nodes[64];
        size_t n = host_nodes(bus, nodes, ELEMENTSOF(nodes));
        uint64_t held = 0;

        for (size_t i = 0; i < n; i++)
                held += nodes[i].held;
        return held;
}

/* What gmemd changed is what GetNodes sums next: after a Discard, the bytes
 * held drop at once. A region up to 64 MiB is measured again on the loop
 * when it is summed after gmemd changed it; a gmemd that forgot the change
 * would sum the populate's older numbers until the refresher's next round. */
static void test_discard_then_sum(sd_bus *bus)
{
        const uint64_t size = 32 * MIB;
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, size);
        _cleanup_free_ char *path = create_plain(bus, vm, g, size);

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Populate", NULL, NULL, "tt", 0ULL,
                                     size));
        ASSERT(held_on_all_nodes(bus) == size);
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Discard", NULL, NULL, "tt", 0ULL,
                                     size / 2));
        ASSERT(bytes_in_memory(g, size) == size / 2);
        ASSERT(held_on_all_nodes(bus) == size / 2);
        printf("ok: GetNodes holds %llu MiB after a Populate, %llu MiB right after a Discard of half\n",
               size / MIB, size / 2 / MIB);
        region_release(bus, path);
}

/* A Release sent after a Populate is answered first, the Populate then fails
 * NotFound, and the worker stopped: the guest_memfd is not fully allocated. */
static void test_release_stops_worker(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, BIG);
        _cleanup_free_ char *path = create_plain(bus, vm, g, BIG);
        struct pending_call populate = {}, release = {};
        uint64_t allocated;

        call_async(bus, &populate, path, "org.gmem1.Region", "Populate", "tt", 0ULL, BIG);
        call_async(bus, &release, path, "org.gmem1.Region", "Release", "");
        wait_both(bus, &populate, &release);
        ASSERT(!release.error_name && release.order < populate.order);
        ASSERT(populate.error_name && streq(populate.error_name, GMEM_ERROR_NOT_FOUND));
        allocated = bytes_in_memory(g, BIG);
        printf("ok: Release during Populate answered first; Populate -> %s; worker stopped after %llu of %llu MiB\n",
               populate.error_name, (unsigned long long) (allocated / MIB), BIG / MIB);
        ASSERT(allocated < BIG);
        ASSERT(count_regions(bus) == 0 && test_env_daemon_alive(e));
        pending_call_done(&populate);
        pending_call_done(&release);
}

/* SIGTERM while a worker populates: gmemd stops it, answers the Populate
 * NotFound, sends RegionRemoved for every region (the persistent one too) and
 * exits 0 (under ASan, without leaks). */
static void test_stop_while_populating(void)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, BIG), g2 = make_gmem(vm, 2 * MIB);
        _cleanup_free_ char *path = NULL, *kept = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct pending_call populate = {};
        struct signal_count removed = {};
        const struct opt persist[] = {
                { .key = "memfd", .sig = "h", .h = g2 },
                { .key = "persist", .sig = "b", .b = 1 },
        };
        struct test_env e;
        sd_bus *bus;

        bus = bus_test_start(&e, NULL);
        signal_count_watch(bus, &removed, "RegionRemoved");
        ASSERT_OK(create(bus, vm, 2 * MIB, persist, ELEMENTSOF(persist), &error, &kept));
        path = create_plain(bus, vm, g, BIG);
        call_async(bus, &populate, path, "org.gmem1.Region", "Populate", "tt", 0ULL, BIG);
        ASSERT(count_regions(bus) == 2); /* the Populate reached gmemd */
        ASSERT_OK(test_env_stop_daemon(&e, SIGTERM));
        /* gmemd has exited 0; what it sent on the way out is still on the bus. */
        wait_reply(bus, &populate);
        ASSERT(populate.error_name && streq(populate.error_name, GMEM_ERROR_NOT_FOUND));
        signal_count_wait(bus, &removed, 2);
        printf("ok: gmemd stops cleanly while populating: Populate -> %s, RegionRemoved for both regions\n",
               populate.error_name);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));
        pending_call_done(&populate);
        signal_count_done(&removed);
}

int main(void)
{
        struct holdings before;
        struct test_env e;
        sd_bus *bus;

        bus_tests_init();

        bus = bus_test_start(&e, NULL);
        before = daemon_holdings(&e, bus);
        test_loop_serves_while_populating(bus);
        test_resident_exact_after_range(bus);
        test_bound_uneven_chunks(bus);
        test_discard_then_sum(bus);
        test_release_stops_worker(&e, bus);
        /* The region released under its worker was freed when the worker ended. */
        expect_same_holdings(&e, bus, &before);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));

        test_stop_while_populating();
        return 0;
}
