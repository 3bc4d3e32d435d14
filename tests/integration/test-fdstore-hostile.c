/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a broken or foreign fd store can hand a starting gmemd, and what a
 * restarted gmemd must still enforce. The harness plays systemd's fd store.
 * gmemd must start, drop each bad entry, keep every good region (in the
 * store too, for the restart after), and hold no fd or mapping more than a
 * gmemd restarted from a clean store. Restored regions keep their quota
 * usage, their owner checks and the property rule; new ids never collide;
 * SIGTERM while a worker populates a region loses nothing. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-client.h"
#include "bus-contract.h"
#include "bus-errors.h"
#include "gmem.h"
#include "harness.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "util.h"

#define N_JUNK 1500

/* A private bus and gmemd started with @o, a connection to the bus, and a VM
 * to make regions for. */
static void start(const char *what, const struct test_env_options *o, struct test_env **ret_env, sd_bus **ret_bus,
                  int *ret_vm)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        struct test_env *e = calloc(1, sizeof(*e));

        fprintf(stderr, "--- %s\n", what);
        ASSERT(e && kvm >= 0);
        *ret_vm = ioctl(kvm, KVM_CREATE_VM, 0);
        ASSERT(*ret_vm >= 0);
        ASSERT_OK(test_env_start(e, o));
        *ret_bus = bus_connect(e->address);
        *ret_env = e;
}

static uint32_t restored_regions(sd_bus *bus)
{
        uint32_t n = 0;

        ASSERT_OK(sd_bus_get_property_trivial(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE,
                                              "RestoredRegions", NULL, 'u', &n));
        return n;
}

static gmem_region *create_region(gmem_client *c, int vm, uint64_t size, bool persist)
{
        gmem_options *o = NULL;
        gmem_region *region = NULL;

        ASSERT_OK(gmem_options_new(&o));
        ASSERT_OK(gmem_options_set_persist(o, persist));
        ASSERT_OK(gmem_region_create(c, vm, size, o, &region));
        gmem_options_unref(o);
        return region;
}

static int create_region_error(gmem_client *c, int vm, uint64_t size)
{
        gmem_options *o = NULL;
        gmem_region *region = NULL;
        int r;

        ASSERT_OK(gmem_options_new(&o));
        ASSERT_OK(gmem_options_set_persist(o, true));
        r = gmem_region_create(c, vm, size, o, &region);
        gmem_options_unref(o);
        gmem_region_unref(region);
        return r;
}

static size_t store_count(const struct test_env *e, const char *name)
{
        size_t n = 0;

        for (size_t i = 0; i < e->n_store; i++)
                n += streq(e->store[i].name, name);
        return n;
}

static void store_add(struct test_env *e, int fd, const char *name)
{
        ASSERT(fd >= 0 && e->n_store < TEST_FDSTORE_MAX);
        e->store[e->n_store].fd = fd;
        snprintf(e->store[e->n_store++].name, sizeof(e->store[0].name), "%s", name);
}

static int sealed_memfd(const char *text)
{
        int fd = memfd_create("junk", MFD_CLOEXEC | MFD_ALLOW_SEALING);

        ASSERT(fd >= 0);
        ASSERT(write(fd, text, strlen(text)) == (ssize_t) strlen(text));
        ASSERT_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL));
        return fd;
}

static char *metadata(uint64_t id, uint64_t size)
{
        char *s = NULL;

        ASSERT(asprintf(&s, "{\"id\":%llu,\"name\":\"x\",\"size\":%llu,\"shared\":true,\"persist\":true,"
                        "\"policy\":\"default\",\"applied\":\"default\",\"nodes\":[],\"owner_uid\":0,"
                        "\"owner_pid\":1}", (unsigned long long) id, (unsigned long long) size) > 0);
        return s;
}

/* A pair under @name: metadata for @id of @size, and @fd as its region fd. */
static void store_pair(struct test_env *e, const char *name, uint64_t id, uint64_t size, int fd)
{
        _cleanup_free_ char *json = metadata(id, size);

        store_add(e, sealed_memfd(json), name);
        store_add(e, fd, name);
}

static int regular_memfd(uint64_t size)
{
        int fd = memfd_create("not-gmem", MFD_CLOEXEC);

        ASSERT(fd >= 0);
        ASSERT_OK(ftruncate(fd, (off_t) size));
        return fd;
}

/* Everything a store should not hold. @gmemfd is a real 2 MiB guest_memfd,
 * @good the name of a real region; entries that are wrong only in their
 * metadata get a guest_memfd of their own on @vm, so that it is the
 * metadata check that drops them, not the one-region-per-guest_memfd rule. */
static void add_hostile_entries(struct test_env *e, int vm, int gmemfd, const char *good)
{
        int sv[2];
        char name[64];

        /* A stray fd under a real region's name, before its pair. */
        for (size_t i = 0; i < e->n_store; i++)
                if (streq(e->store[i].name, good)) {
                        struct test_fdstore_entry first = e->store[i];

                        e->store[i] = (struct test_fdstore_entry) { .fd = open("/dev/null", O_RDWR | O_CLOEXEC) };
                        snprintf(e->store[i].name, sizeof(e->store[i].name), "%s", good);
                        store_add(e, first.fd, first.name);
                        break;
                }
        /* Region fds that are no guest_memfd, with metadata that fits them. */
        store_pair(e, "region-90", 90, 2 * MIB, regular_memfd(2 * MIB));
        store_pair(e, "region-91", 91, 0, open("/dev/null", O_RDWR | O_CLOEXEC));
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        close(sv[1]);
        store_pair(e, "region-92", 92, 0, sv[0]);
        /* Metadata of another id than the name says. */
        store_pair(e, "region-93", 94, 2 * MIB, make_gmem(vm, 2 * MIB));
        /* A valid entry, but for a guest_memfd another region already is. */
        store_pair(e, "region-99", 99, 2 * MIB, fcntl(gmemfd, F_DUPFD_CLOEXEC, 3));
        /* Metadata claiming more than the guest_memfd holds. */
        store_pair(e, "region-95", 95, 1024 * MIB, make_gmem(vm, 2 * MIB));
        /* Metadata that fits its guest_memfd, but not sealed: anyone could have changed it. */
        {
                _cleanup_free_ char *json = metadata(89, 2 * MIB);
                int fd = memfd_create("junk", MFD_CLOEXEC | MFD_ALLOW_SEALING);

                ASSERT(fd >= 0 && write(fd, json, strlen(json)) == (ssize_t) strlen(json));
                store_add(e, fd, "region-89");
                store_add(e, make_gmem(vm, 2 * MIB), "region-89");
        }
        /* A spread placement whose shares do not add up to the size. */
        {
                _cleanup_free_ char *json = NULL;

                ASSERT(asprintf(&json, "{\"id\":88,\"name\":\"x\",\"size\":%llu,\"shared\":true,\"persist\":true,"
                                "\"policy\":\"auto\",\"applied\":\"bind\",\"nodes\":[0],\"shares\":[%llu],"
                                "\"owner_uid\":0,\"owner_pid\":1}", 2 * MIB, MIB) > 0);
                store_add(e, sealed_memfd(json), "region-88");
                store_add(e, make_gmem(vm, 2 * MIB), "region-88");
        }
        /* A guest_memfd alone; two guest_memfds; two metadata fds. */
        store_add(e, fcntl(gmemfd, F_DUPFD_CLOEXEC, 3), "region-96");
        store_add(e, fcntl(gmemfd, F_DUPFD_CLOEXEC, 3), "region-97");
        store_add(e, fcntl(gmemfd, F_DUPFD_CLOEXEC, 3), "region-97");
        store_pair(e, "region-98", 98, 2 * MIB, sealed_memfd("{}"));
        /* Names gmemd never uses, thousands of them. */
        store_add(e, sealed_memfd("hello"), "region-");
        store_add(e, sealed_memfd("hello"), "region-007");
        for (int i = 0; i < N_JUNK; i++) {
                snprintf(name, sizeof(name), "junk-%d", i);
                store_add(e, open("/dev/null", O_RDONLY | O_CLOEXEC), name);
        }
}

/* Another uid calls @method on @path, or reads each property (method NULL):
 * the exit code says how many calls were refused with PermissionDenied,
 * 100 + n if any failed otherwise. */
static int call_as(const char *address, const char *path, const char *method, uid_t uid, gid_t gid)
{
        static const char *const properties[] = { "Name", "Size", "Policy", "Nodes", "OwnerUID", "OwnerPID",
                                                  "Resident" };
        pid_t pid = fork();
        int status;

        ASSERT(pid >= 0);
        if (pid == 0) {
                sd_bus *bus = NULL;
                int denied = 0, other = 0;

                if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(200);
                if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address) < 0 ||
                    sd_bus_set_bus_client(bus, true) < 0 || sd_bus_start(bus) < 0)
                        _exit(201);
                for (size_t i = 0; i < (method ? 1 : ELEMENTSOF(properties) + 1); i++) {
                        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                        int r;

                        if (method)
                                r = sd_bus_call_method(bus, GMEM_BUS_NAME, path, GMEM_REGION_INTERFACE, method,
                                                       &error, &reply, streq(method, "Populate") ? "tt" : "", 0,
                                                       2 * MIB);
                        else if (i < ELEMENTSOF(properties))
                                r = sd_bus_call_method(bus, GMEM_BUS_NAME, path, "org.freedesktop.DBus.Properties",
                                                       "Get", &error, &reply, "ss", GMEM_REGION_INTERFACE,
                                                       properties[i]);
                        else
                                r = sd_bus_call_method(bus, GMEM_BUS_NAME, path, "org.freedesktop.DBus.Properties",
                                                       "GetAll", &error, &reply, "s", GMEM_REGION_INTERFACE);
                        if (r >= 0)
                                continue;
                        if (sd_bus_error_has_name(&error, GMEM_ERROR_PERMISSION_DENIED))
                                denied++;
                        else {
                                fprintf(stderr, "uid %u: %s: %s\n", (unsigned) uid, error.name, error.message);
                                other++;
                        }
                }
                _exit(other ? 100 + other : denied);
        }
        ASSERT(waitpid(pid, &status, 0) == pid);
        ASSERT(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* gmemd holds @want fds (test_env_daemon_fds()); if not, say which it holds. */
static void expect_daemon_fds(struct test_env *e, int want)
{
        int n = test_env_daemon_fds(e);

        if (n != want) {
                fprintf(stderr, "gmemd holds %d fds, not %d:\n", n, want);
                (void) test_env_show_daemon_fds(e, stderr);
        }
        ASSERT(n == want);
}

static uint64_t region_id(gmem_region *r)
{
        uint64_t id = 0;

        ASSERT_OK(gmem_region_id_from_path(gmem_region_get_path(r), &id));
        return id;
}

static void test_hostile_store(void)
{
        struct test_env *e;
        struct test_env_options o = {
                .fd_store = true, .open_policy = true,
                .daemon_config = "{ \"allowed_group\": \"65534\", \"limits\": { \"max_regions_per_user\": 3 } }",
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_close_ int vm = -1;
        gmem_client *c = NULL;
        gmem_region *persistent, *owned, *third;
        char good[64], path[128];
        int fds, mappings;

        start("hostile fd store", &o, &e, &bus, &vm);
        ASSERT_OK(gmem_client_new(e->address, &c));
        persistent = create_region(c, vm, 2 * MIB, true);
        owned = create_region(c, vm, 2 * MIB, false);
        snprintf(good, sizeof(good), "region-%llu", (unsigned long long) region_id(persistent));

        /* The baseline: a restart from the clean store. */
        ASSERT_OK(test_env_fdstore_sync(e));
        ASSERT_OK(test_env_restart_daemon(e, SIGTERM));
        ASSERT(restored_regions(bus) == 2);
        fds = test_env_daemon_fds(e);
        mappings = test_env_daemon_mappings(e);
        ASSERT(fds > 0 && mappings == 2);

        ASSERT_OK(test_env_stop_daemon(e, SIGTERM));
        add_hostile_entries(e, vm, gmem_region_get_fd(persistent), good);
        ASSERT_OK(test_env_start_daemon_again(e));
        ASSERT(test_env_daemon_alive(e));
        ASSERT(restored_regions(bus) == 2);
        expect_daemon_fds(e, fds);
        ASSERT(test_env_daemon_mappings(e) == mappings);
        /* The bad entries are gone from the store, the good ones are pairs. */
        ASSERT_OK(test_env_fdstore_sync(e));
        ASSERT(store_count(e, good) == 2);
        ASSERT(e->n_store == 4);

        /* And the restart after that still finds both. */
        ASSERT_OK(test_env_restart_daemon(e, SIGKILL));
        ASSERT(restored_regions(bus) == 2);
        expect_daemon_fds(e, fds);

        /* Restored regions count against the quota (3 per uid). */
        third = create_region(c, vm, 2 * MIB, true);
        ASSERT(region_id(third) > region_id(owned) && region_id(third) > region_id(persistent));
        ASSERT(create_region_error(c, vm, 2 * MIB) == -EDQUOT);

        /* Owner checks on a restored region: uid 65534 is in the allowed
         * group but not the owner; uid 1 is neither. */
        snprintf(path, sizeof(path), "%s", gmem_region_get_path(persistent));
        ASSERT(call_as(e->address, path, "Release", 65534, 65534) == 1);
        ASSERT(call_as(e->address, path, "Populate", 65534, 65534) == 1);
        ASSERT(call_as(e->address, path, NULL, 65534, 65534) == 0);
        ASSERT(call_as(e->address, path, NULL, 1, 1) == 8);
        ASSERT_OK(gmem_region_populate(persistent, 0, 2 * MIB));
        ASSERT_OK(gmem_region_discard(persistent, 0, 2 * MIB));

        /* Unknown paths: every way of asking is NotFound. */
        expect_region_not_found(bus, GMEM_REGION_PATH_PREFIX "/999");
        expect_region_not_found(bus, GMEM_REGION_PATH_PREFIX "/0");
        expect_region_not_found(bus, GMEM_REGION_PATH_PREFIX "/90");
        snprintf(path, sizeof(path), "%s", gmem_region_get_path(third));
        ASSERT_OK(gmem_region_release(third));
        expect_region_not_found(bus, path);

        gmem_region_unref(third);
        gmem_region_unref(owned);
        gmem_region_unref(persistent);
        gmem_client_unref(c);
        ASSERT_OK(test_env_stop(e));
        free(e);
}

/* $LISTEN_FDS without names, or for another process: nothing restored, the
 * store left as it is, and a normal start after restores everything. */
static void test_listen_env(void)
{
        struct test_env *e;
        struct test_env_options o = { .fd_store = true };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_close_ int vm = -1;
        gmem_client *c = NULL;
        gmem_region *region;
        int empty_fds;

        start("LISTEN_FDS without names, LISTEN_PID of another process", &o, &e, &bus, &vm);
        /* Measured once gmemd answered a call, idle, as below. */
        ASSERT(restored_regions(bus) == 0);
        empty_fds = test_env_daemon_fds(e);
        ASSERT_OK(gmem_client_new(e->address, &c));
        region = create_region(c, vm, 2 * MIB, true);
        gmem_region_unref(region);
        gmem_client_unref(c);
        ASSERT_OK(test_env_fdstore_sync(e));
        ASSERT(e->n_store == 2);

        /* The names are what tie the fds together: without them nothing is restored. */
        e->listen = TEST_LISTEN_NO_NAMES;
        ASSERT_OK(test_env_restart_daemon(e, SIGTERM));
        ASSERT(restored_regions(bus) == 0);
        expect_daemon_fds(e, empty_fds);
        e->listen = TEST_LISTEN_OTHER_PID;
        ASSERT_OK(test_env_restart_daemon(e, SIGKILL));
        ASSERT(restored_regions(bus) == 0);
        e->listen = TEST_LISTEN_NORMAL;
        ASSERT_OK(test_env_fdstore_sync(e));
        ASSERT(e->n_store == 2);
        ASSERT_OK(test_env_restart_daemon(e, SIGKILL));
        ASSERT(restored_regions(bus) == 1);
        ASSERT_OK(test_env_stop(e));
        free(e);
}

static int on_populated(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        const sd_bus_error *error = sd_bus_message_get_error(m);

        /* Done before the signal came, or stopped by it. */
        *(int *) userdata = !error ? 1 : sd_bus_error_has_name(error, GMEM_ERROR_NOT_FOUND) ? 2 : -1;
        if (error && !sd_bus_error_has_name(error, GMEM_ERROR_NOT_FOUND))
                fprintf(stderr, "Populate: %s: %s\n", error->name, error->message);
        return 0;
}

/* SIGTERM while a worker populates a stored region: gmemd answers, exits
 * cleanly, and the next one restores the region and populates it. */
static void test_sigterm_while_populating(void)
{
        struct test_env *e;
        struct test_env_options o = { .fd_store = true };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_close_ int vm = -1;
        const uint64_t size = 512 * MIB; /* two populate chunks; fits the vm tier's 2 GiB guest */
        gmem_client *c = NULL;
        gmem_region *region;
        int done = 0;

        start("SIGTERM while populating", &o, &e, &bus, &vm);
        ASSERT_OK(gmem_client_new(e->address, &c));
        region = create_region(c, vm, size, true);
        ASSERT_OK(sd_bus_call_method_async(bus, &slot, GMEM_BUS_NAME, gmem_region_get_path(region),
                                           GMEM_REGION_INTERFACE, "Populate", on_populated, &done, "tt", 0, size));
        /* gmemd answers in order: once this is answered, the worker runs
         * (or already ran). */
        ASSERT(restored_regions(bus) == 0);
        ASSERT_OK(test_env_fdstore_sync(e));
        ASSERT_OK(test_env_stop_daemon(e, SIGTERM));
        while (!done) {
                int r = sd_bus_process(bus, NULL);

                ASSERT_OK(r);
                if (r == 0)
                        ASSERT(sd_bus_wait(bus, 30 * 1000000ULL) > 0);
        }
        ASSERT(done > 0);
        ASSERT(e->n_store == 2);
        ASSERT_OK(test_env_start_daemon_again(e));
        ASSERT(restored_regions(bus) == 1);
        ASSERT_OK(gmem_region_populate(region, 0, size));
        /* Larger than gmemd measures inline: its refresher announces the numbers. */
        resident_settles(bus, gmem_region_get_path(region), size, 60);
        ASSERT_OK(gmem_region_release(region));
        gmem_region_unref(region);
        gmem_client_unref(c);
        /* gmemd answers Release first, then empties the store: one more round trip. */
        ASSERT(restored_regions(bus) == 1);
        ASSERT_OK(test_env_fdstore_sync(e));
        ASSERT(e->n_store == 0);
        ASSERT_OK(test_env_stop(e));
        free(e);
}

static int create_with_memfd(sd_bus *bus, int vm, int memfd, uint64_t size, char *error_name, size_t n)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE, "CreateRegion",
                                   &error, NULL, "hta{sv}", vm, size, 2, "memfd", "h", memfd, "persist", "b", 1);

        snprintf(error_name, n, "%s", r < 0 ? error.name : "");
        if (r < 0)
                fprintf(stderr, "CreateRegion: %s: %s\n", error.name, error.message);
        return r;
}

/* One guest_memfd is one region: the fd store keeps a file once (systemd
 * drops a second fd of the same file), so a second region on it would not
 * survive a restart, and it would count against the quota twice. */
static void test_guest_memfd_once(void)
{
        struct test_env *e;
        struct test_env_options o = { .fd_store = true };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_close_ int vm = -1, memfd = -1, again = -1;
        struct kvm_create_guest_memfd args = {
                .size = 2 * MIB, .flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
        };
        char error_name[256];

        start("one region per guest_memfd", &o, &e, &bus, &vm);
        memfd = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &args);
        ASSERT(memfd >= 0);
        again = fcntl(memfd, F_DUPFD_CLOEXEC, 3);
        ASSERT(again >= 0);
        ASSERT_OK(create_with_memfd(bus, vm, memfd, 2 * MIB, error_name, sizeof(error_name)));
        ASSERT(create_with_memfd(bus, vm, again, 2 * MIB, error_name, sizeof(error_name)) < 0);
        ASSERT_STREQ(error_name, GMEM_ERROR_INVALID_ARGUMENT);
        ASSERT_OK(test_env_restart_daemon(e, SIGKILL));
        ASSERT(restored_regions(bus) == 1);
        ASSERT_OK(test_env_stop(e));
        free(e);
}

static int on_removed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        const char *path;

        if (sd_bus_message_read(m, "o", &path) > 0 && streq(path, userdata))
                *(char *) userdata = '\0';
        return 0;
}

/* A store that is full (FileDescriptorStoreMax=, $FDSTORE): the region that
 * does not fit is not kept by systemd, so gmemd must not count on it: at
 * SIGTERM it releases the region for all to see (RegionRemoved) instead of
 * leaving it to a store that does not hold it. */
static void test_store_full(void)
{
        struct test_env *e;
        struct test_env_options o = { .fd_store = true, .fdstore_max = 4 };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_close_ int vm = -1;
        gmem_client *c = NULL;
        gmem_region *regions[3];
        char path[128];

        start("a full fd store", &o, &e, &bus, &vm);
        ASSERT_OK(gmem_client_new(e->address, &c));
        for (size_t i = 0; i < ELEMENTSOF(regions); i++)
                regions[i] = create_region(c, vm, 2 * MIB, true);
        snprintf(path, sizeof(path), "%s", gmem_region_get_path(regions[2]));
        ASSERT_OK(sd_bus_match_signal(bus, &slot, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE,
                                      "RegionRemoved", on_removed, path));
        ASSERT(restored_regions(bus) == 0); /* the match is in place */
        ASSERT_OK(test_env_fdstore_sync(e));
        ASSERT(e->n_store == 4);

        ASSERT_OK(test_env_stop_daemon(e, SIGTERM));
        /* The bus delivers in order: what gmemd sent before it went is here
         * once the bus answered a call made after that. */
        ASSERT_OK(sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                     "GetId", NULL, NULL, NULL));
        while (sd_bus_process(bus, NULL) > 0)
                ;
        ASSERT(path[0] == '\0');
        ASSERT_OK(test_env_start_daemon_again(e));
        ASSERT(restored_regions(bus) == 2);
        for (size_t i = 0; i < ELEMENTSOF(regions); i++)
                gmem_region_unref(regions[i]);
        gmem_client_unref(c);
        ASSERT_OK(test_env_stop(e));
        free(e);
}

int main(void)
{
        struct rlimit rl;

        if (access("/dev/kvm", R_OK | W_OK) < 0) {
                fprintf(stderr, "SKIP: no /dev/kvm\n");
                return EXIT_TEST_SKIP;
        }
        /* Thousands of stored fds, passed on as systemd does. */
        ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
        rl.rlim_cur = rl.rlim_max;
        ASSERT_OK(setrlimit(RLIMIT_NOFILE, &rl));
        ASSERT(rl.rlim_cur >= 2 * (N_JUNK + 64) + 16);
        test_hostile_store();
        test_listen_env();
        test_sigterm_while_populating();
        test_guest_memfd_once();
        test_store_full();
        fprintf(stderr, "ok\n");
        return 0;
}
