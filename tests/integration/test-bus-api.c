/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Drives the real gmemd on a private bus with raw sd-bus calls: the contract
 * of DESIGN.md, every bad input with its named error, ownership and leaks. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <grp.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "bus-errors.h"
#include "harness.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "util.h"

#define MIB (1024ULL * 1024ULL)

struct opt {
        const char *key;
        const char *sig; /* "s", "b", "au", "h", "t" */
        const char *s;
        int b;
        int h;
        const uint32_t *au;
        size_t n_au;
};

static sd_bus *bus_connect(const char *address)
{
        sd_bus *bus;

        ASSERT_OK(sd_bus_new(&bus));
        ASSERT_OK(sd_bus_set_address(bus, address));
        ASSERT_OK(sd_bus_set_bus_client(bus, true));
        ASSERT_OK(sd_bus_negotiate_fds(bus, true));
        ASSERT_OK(sd_bus_start(bus));
        return bus;
}

static int make_vm(void)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        int vm;

        ASSERT(kvm >= 0);
        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        ASSERT(vm >= 0);
        return vm;
}

static int make_gmem(int vm, uint64_t size)
{
        struct kvm_create_guest_memfd args = {
                .size = size,
                .flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
        };
        int fd = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &args);

        ASSERT(fd >= 0);
        return fd;
}

/* CreateRegion; returns 0 with *path set, or the negative errno of the
 * error, whose name is left in *error. */
static int create(sd_bus *bus, int vm, uint64_t size, const struct opt *opts, size_t n, sd_bus_error *error,
                  char **path)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *p;
        int fd, r;

        ASSERT_OK(sd_bus_message_new_method_call(bus, &m, "org.gmem1", "/org/gmem1", "org.gmem1.Manager",
                                                 "CreateRegion"));
        r = sd_bus_message_append(m, "ht", vm, size);
        if (r < 0)
                return r;
        ASSERT_OK(sd_bus_message_open_container(m, 'a', "{sv}"));
        for (size_t i = 0; i < n; i++) {
                const struct opt *o = &opts[i];

                ASSERT_OK(sd_bus_message_open_container(m, 'e', "sv"));
                ASSERT_OK(sd_bus_message_append(m, "s", o->key));
                ASSERT_OK(sd_bus_message_open_container(m, 'v', o->sig));
                if (streq(o->sig, "s"))
                        ASSERT_OK(sd_bus_message_append(m, "s", o->s));
                else if (streq(o->sig, "b"))
                        ASSERT_OK(sd_bus_message_append(m, "b", o->b));
                else if (streq(o->sig, "h"))
                        ASSERT_OK(sd_bus_message_append(m, "h", o->h));
                else if (streq(o->sig, "t"))
                        ASSERT_OK(sd_bus_message_append(m, "t", (uint64_t) o->b));
                else
                        ASSERT_OK(sd_bus_message_append_array(m, 'u', o->au, o->n_au * sizeof(uint32_t)));
                ASSERT_OK(sd_bus_message_close_container(m));
                ASSERT_OK(sd_bus_message_close_container(m));
        }
        ASSERT_OK(sd_bus_message_close_container(m));
        r = sd_bus_call(bus, m, 0, error, &reply);
        if (r < 0)
                return r;
        ASSERT_OK(sd_bus_message_read(reply, "oh", &p, &fd));
        ASSERT(fd_is_guest_memfd(fd));
        *path = strdup(p);
        return 0;
}

static unsigned count_regions(sd_bus *bus)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        unsigned n = 0;

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "ListRegions", &error,
                                     &reply, NULL));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(ostsu)"));
        while (sd_bus_message_skip(reply, "(ostsu)") > 0)
                n++;
        return n;
}

static void expect_error(int r, sd_bus_error *error, const char *name, const char *what)
{
        if (r >= 0 || !sd_bus_error_has_name(error, name)) {
                fprintf(stderr, "%s: expected %s, got r=%d %s: %s\n", what, name, r,
                        error->name ?: "(none)", error->message ?: "");
                abort();
        }
        ASSERT(error->message && strlen(error->message) > 10);
        printf("ok: %-40s -> %s: %s\n", what, name, error->message);
        sd_bus_error_free(error);
}

static void expect_create_error(struct test_env *e, sd_bus *bus, int vm, uint64_t size, const struct opt *opts,
                                size_t n, const char *name, const char *what)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        unsigned before = count_regions(bus);
        int r = create(bus, vm, size, opts, n, &error, &path);

        expect_error(r, &error, name, what);
        ASSERT(test_env_daemon_alive(e));
        ASSERT(count_regions(bus) == before);
}

static uint64_t resident_on(sd_bus *bus, const char *path, unsigned node)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t total = 0, bytes;
        uint32_t n;

        ASSERT_OK(sd_bus_get_property(bus, "org.gmem1", path, "org.gmem1.Region", "Resident", &error, &reply,
                                      "a(ut)"));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(ut)"));
        while (sd_bus_message_read(reply, "(ut)", &n, &bytes) > 0)
                if (n == node)
                        total += bytes;
        return total;
}

static void test_bad_inputs(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), file = -1, devnull = -1, kvm = -1, gmem = -1, small = -1, memfd = -1;
        uint32_t node0 = 0, node999 = 999;
        char tmpl[] = "/tmp/gmem-regular-XXXXXX";
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        int closed, r;

        gmem = make_gmem(vm, 2 * MIB);
        const struct opt with_memfd[] = { { .key = "memfd", .sig = "h", .h = gmem } };

        file = mkostemp(tmpl, O_CLOEXEC);
        ASSERT(file >= 0);
        unlink(tmpl);
        expect_create_error(e, bus, file, 2 * MIB, with_memfd, 1, GMEM_ERROR_NOT_A_VM, "regular file as vm");
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        expect_create_error(e, bus, devnull, 2 * MIB, with_memfd, 1, GMEM_ERROR_NOT_A_VM, "/dev/null as vm");
        kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        expect_create_error(e, bus, kvm, 2 * MIB, with_memfd, 1, GMEM_ERROR_NOT_A_VM, "/dev/kvm (not a VM) as vm");
        expect_create_error(e, bus, gmem, 2 * MIB, with_memfd, 1, GMEM_ERROR_NOT_A_VM, "guest_memfd as vm");

        /* A closed fd cannot be sent: sd-bus refuses it before the call. */
        closed = open("/dev/null", O_RDONLY | O_CLOEXEC);
        close(closed);
        r = create(bus, closed, 2 * MIB, with_memfd, 1, &error, &path);
        ASSERT(r == -EBADF);
        ASSERT(test_env_daemon_alive(e) && count_regions(bus) == 0);
        printf("ok: %-40s -> EBADF before sending\n", "closed fd as vm");

        expect_create_error(e, bus, vm, 0, with_memfd, 1, GMEM_ERROR_INVALID_ARGUMENT, "size 0");
        expect_create_error(e, bus, vm, 12345, with_memfd, 1, GMEM_ERROR_INVALID_ARGUMENT, "unaligned size");
        {
                uint64_t huge = 1ULL << 46; /* 64 TiB: more than any node here */
                _cleanup_close_ int big = make_gmem(vm, huge);
                const struct opt o[] = {
                        { .key = "policy", .sig = "s", .s = "bind" },
                        { .key = "nodes", .sig = "au", .au = &node0, .n_au = 1 },
                        { .key = "memfd", .sig = "h", .h = big },
                };
                expect_create_error(e, bus, vm, huge, o, ELEMENTSOF(o), GMEM_ERROR_NO_SPACE, "size larger than node 0");
        }
        {
                const struct opt o[] = {
                        { .key = "policy", .sig = "s", .s = "bind" },
                        { .key = "nodes", .sig = "au", .au = &node999, .n_au = 1 },
                        { .key = "memfd", .sig = "h", .h = gmem },
                };
                expect_create_error(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT, "unknown node 999");
        }
        {
                const struct opt o[] = { { .key = "populate", .sig = "s", .s = "yes" }, with_memfd[0] };
                expect_create_error(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT,
                                    "wrong option type (populate as s)");
        }
        {
                const struct opt o[] = { { .key = "nodes", .sig = "t", .b = 1 }, with_memfd[0] };
                expect_create_error(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT,
                                    "wrong option type (nodes as t)");
        }
        {
                static uint32_t many[4096];
                const struct opt o[] = {
                        { .key = "policy", .sig = "s", .s = "interleave" },
                        { .key = "nodes", .sig = "au", .au = many, .n_au = ELEMENTSOF(many) },
                        with_memfd[0],
                };
                expect_create_error(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT,
                                    "4096 entries in option nodes");
        }
        {
                const struct opt o[] = { { .key = "policy", .sig = "s", .s = "nearest" }, with_memfd[0] };
                expect_create_error(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT, "unknown policy");
        }
        {
                const struct opt o[] = { { .key = "colour", .sig = "s", .s = "blue" }, with_memfd[0] };
                expect_create_error(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT, "unknown option");
        }
        {
                const struct opt o[] = { { .key = "name", .sig = "s", .s = "bad name/../x" }, with_memfd[0] };
                expect_create_error(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT, "bad region name");
        }
        {
                const struct opt o[] = { { .key = "policy", .sig = "s", .s = "preferred" }, with_memfd[0] };
                expect_create_error(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT,
                                    "preferred without a node");
        }
        small = make_gmem(vm, 1 * MIB);
        {
                const struct opt o[] = { { .key = "memfd", .sig = "h", .h = small } };
                expect_create_error(e, bus, vm, 2 * MIB, o, 1, GMEM_ERROR_INVALID_ARGUMENT, "memfd of another size");
        }
        memfd = memfd_create("not-gmem", MFD_CLOEXEC);
        ASSERT(memfd >= 0 && ftruncate(memfd, 2 * MIB) == 0);
        {
                const struct opt o[] = { { .key = "memfd", .sig = "h", .h = memfd } };
                expect_create_error(e, bus, vm, 2 * MIB, o, 1, GMEM_ERROR_INVALID_ARGUMENT, "memfd that is no guest_memfd");
        }
        /* Without option memfd the daemon must create the guest_memfd on the
         * caller's VM, which upstream KVM refuses to any other process. */
        expect_create_error(e, bus, vm, 2 * MIB, NULL, 0, GMEM_ERROR_UNSUPPORTED, "daemon-side KVM_CREATE_GUEST_MEMFD");
}

/* numa_page_tables: gmemd must agree with what the kernel says about
 * KVM_CAP_NUMA_AWARE_PAGE_TABLES: Unsupported on a stock kernel, a region on
 * the gmem kernel, where the VMM side can then enable the capability. */
static void test_numa_page_tables(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm = make_vm(), g = make_gmem(vm, 2 * MIB);
        _cleanup_free_ char *path = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const struct opt o[] = {
                { .key = "numa_page_tables", .sig = "b", .b = 1 },
                { .key = "memfd", .sig = "h", .h = g },
        };
        int has_cap = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_NUMA_AWARE_PAGE_TABLES) > 0;
        int reported = -1;

        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const char *key;

                ASSERT_OK(sd_bus_get_property(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "KernelFeatures",
                                              &error, &reply, "a{sv}"));
                ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "{sv}"));
                while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                        ASSERT_OK(sd_bus_message_read(reply, "s", &key));
                        if (streq(key, "NumaAwarePageTables"))
                                ASSERT_OK(sd_bus_message_read(reply, "v", "b", &reported));
                        else
                                ASSERT_OK(sd_bus_message_skip(reply, "v"));
                        ASSERT_OK(sd_bus_message_exit_container(reply));
                }
        }
        ASSERT(reported == has_cap);

        if (!has_cap) {
                expect_create_error(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_UNSUPPORTED,
                                    "numa_page_tables on a kernel without it");
                return;
        }
        ASSERT_OK(create(bus, vm, 2 * MIB, o, ELEMENTSOF(o), &error, &path));
        struct kvm_enable_cap cap = { .cap = KVM_CAP_NUMA_AWARE_PAGE_TABLES };
        ASSERT_OK(ioctl(vm, KVM_ENABLE_CAP, &cap));
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Release", &error, NULL, NULL));
        printf("ok: numa_page_tables accepted on a kernel with KVM_CAP_NUMA_AWARE_PAGE_TABLES, enabled on the VM\n");
}

/* Dispatch bus messages until @done says so; a test failure after @seconds. */
static void process_until(sd_bus *bus, bool (*done)(const void *userdata), const void *userdata, unsigned seconds)
{
        uint64_t deadline = (uint64_t) time(NULL) + seconds;

        while (!done(userdata)) {
                int r = sd_bus_process(bus, NULL);

                ASSERT_OK(r);
                if (r > 0)
                        continue;
                ASSERT((uint64_t) time(NULL) < deadline);
                ASSERT_OK(sd_bus_wait(bus, 1000000));
        }
}

struct pending_call {
        bool done;
        char *error_name;
};

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct pending_call *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        c->done = true;
        c->error_name = e ? strdup(e->name) : NULL;
        return 0;
}

static bool reply_arrived(const void *userdata)
{
        return ((const struct pending_call *) userdata)->done;
}

static void wait_reply(sd_bus *bus, struct pending_call *c)
{
        process_until(bus, reply_arrived, c, 120);
}

/* Populating runs on a worker: other calls are answered meanwhile, and a
 * release in the middle stops it and answers the Populate with NotFound. */
static void test_populate_in_background(struct test_env *e, sd_bus *bus)
{
        const uint64_t size = 512 * MIB;
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, size);
        _cleanup_free_ char *path = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct pending_call populate = {}, again = {};
        const struct opt o[] = { { .key = "memfd", .sig = "h", .h = g } };

        ASSERT_OK(create(bus, vm, size, o, ELEMENTSOF(o), &error, &path));
        ASSERT_OK(sd_bus_call_method_async(bus, NULL, "org.gmem1", path, "org.gmem1.Region", "Populate", on_reply,
                                           &populate, "tt", 0ULL, size));
        /* Sent after the Populate, answered before it: the loop is free. */
        ASSERT(count_regions(bus) == 1);
        ASSERT(!populate.done);
        wait_reply(bus, &populate);
        ASSERT(!populate.error_name);
        ASSERT(resident_on(bus, path, 0) + resident_on(bus, path, 1) == size);
        printf("ok: Populate of 512 MiB in the background; ListRegions answered meanwhile\n");

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Discard", &error, NULL, "tt",
                                     0ULL, size));
        ASSERT_OK(sd_bus_call_method_async(bus, NULL, "org.gmem1", path, "org.gmem1.Region", "Populate", on_reply,
                                           &again, "tt", 0ULL, size));
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Release", &error, NULL, NULL));
        wait_reply(bus, &again);
        /* Released before the worker finished: the Populate says so; had the
         * worker been faster than the Release, it succeeded. Either way the
         * region is gone and nothing leaks (checked at the end of main). */
        ASSERT(!again.error_name || streq(again.error_name, GMEM_ERROR_NOT_FOUND));
        ASSERT(count_regions(bus) == 0);
        ASSERT(test_env_daemon_alive(e));
        printf("ok: Release during Populate -> %s\n", again.error_name ?: "Populate had finished first");
        free(populate.error_name);
        free(again.error_name);
}

static void test_lifecycle(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), gmem = -1;
        _cleanup_free_ char *path = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t node0 = 0;
        char *name = NULL, *policy = NULL;
        uint64_t size = 0;
        uint32_t owner = 99;

        gmem = make_gmem(vm, 8 * MIB);
        const struct opt o[] = {
                { .key = "name", .sig = "s", .s = "lifecycle" },
                { .key = "policy", .sig = "s", .s = "bind" },
                { .key = "nodes", .sig = "au", .au = &node0, .n_au = 1 },
                { .key = "populate", .sig = "b", .b = 1 },
                { .key = "memfd", .sig = "h", .h = gmem },
        };
        ASSERT_OK(create(bus, vm, 8 * MIB, o, ELEMENTSOF(o), &error, &path));
        ASSERT(count_regions(bus) == 1);
        ASSERT(test_env_daemon_mappings(e) == 1);
        ASSERT_OK(sd_bus_get_property_string(bus, "org.gmem1", path, "org.gmem1.Region", "Name", &error, &name));
        ASSERT(streq(name, "lifecycle"));
        ASSERT_OK(sd_bus_get_property_string(bus, "org.gmem1", path, "org.gmem1.Region", "Policy", &error, &policy));
        ASSERT(streq(policy, "bind"));
        ASSERT_OK(sd_bus_get_property_trivial(bus, "org.gmem1", path, "org.gmem1.Region", "Size", &error, 't', &size));
        ASSERT(size == 8 * MIB);
        ASSERT_OK(sd_bus_get_property_trivial(bus, "org.gmem1", path, "org.gmem1.Region", "OwnerUID", &error, 'u', &owner));
        ASSERT(owner == getuid());
        free(name);
        free(policy);

        /* Populated on node 0, as measured by the daemon... */
        ASSERT(resident_on(bus, path, 0) == 8 * MIB);
        /* ...discarding half frees half, bad ranges are refused. */
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Discard", &error, NULL, "tt",
                                     0ULL, 4 * MIB));
        ASSERT(resident_on(bus, path, 0) == 4 * MIB);
        expect_error(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Populate", &error, NULL, "tt",
                                        4 * MIB, 8 * MIB), &error, GMEM_ERROR_INVALID_ARGUMENT, "Populate past the end");
        expect_error(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Populate", &error, NULL, "tt",
                                        100ULL, 4096ULL), &error, GMEM_ERROR_INVALID_ARGUMENT, "Populate unaligned offset");
        expect_error(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Discard", &error, NULL, "tt",
                                        0ULL, 0ULL), &error, GMEM_ERROR_INVALID_ARGUMENT, "Discard of length 0");
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Populate", &error, NULL, "tt",
                                     0ULL, 2 * MIB));
        ASSERT(resident_on(bus, path, 0) == 6 * MIB);

        /* The daemon's fd and the caller's are one guest_memfd: what the
         * daemon populated is visible through the caller's mapping. */
        char *p = mmap(NULL, 8 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
        ASSERT(p != MAP_FAILED);
        unsigned char vec[8 * MIB / 4096];
        ASSERT_OK(mincore(p, 8 * MIB, vec));
        ASSERT((vec[0] & 1) && (vec[5 * MIB / 4096] & 1) && !(vec[3 * MIB / 4096] & 1));
        munmap(p, 8 * MIB);

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Release", &error, NULL, NULL));
        ASSERT(count_regions(bus) == 0);
        expect_error(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Release", &error, NULL, NULL),
                     &error, GMEM_ERROR_NOT_FOUND, "Release of a released region");
        ASSERT(test_env_daemon_alive(e));
        printf("ok: lifecycle (create, properties, populate, discard, resident, release)\n");
}

static int on_removed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        (*(unsigned *) userdata)++;
        return 0;
}

struct removed_count {
        unsigned *removed, want;
};

static bool removed_enough(const void *userdata)
{
        const struct removed_count *c = userdata;

        return *c->removed >= c->want;
}

static void wait_removed(sd_bus *bus, unsigned *removed, unsigned want)
{
        process_until(bus, removed_enough, &(struct removed_count) { removed, want }, 30);
}

static void test_owner_disconnect(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g1 = -1, g2 = -1;
        _cleanup_free_ char *p1 = NULL, *p2 = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        unsigned removed = 0;
        sd_bus *owner;

        ASSERT_OK(sd_bus_match_signal(bus, NULL, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "RegionRemoved",
                                      on_removed, &removed));
        owner = bus_connect(e->address);
        g1 = make_gmem(vm, 2 * MIB);
        g2 = make_gmem(vm, 2 * MIB);
        const struct opt o1[] = { { .key = "memfd", .sig = "h", .h = g1 }, { .key = "populate", .sig = "b", .b = 1 } };
        const struct opt o2[] = { { .key = "memfd", .sig = "h", .h = g2 }, { .key = "persist", .sig = "b", .b = 1 } };
        ASSERT_OK(create(owner, vm, 2 * MIB, o1, ELEMENTSOF(o1), &error, &p1));
        ASSERT_OK(create(owner, vm, 2 * MIB, o2, ELEMENTSOF(o2), &error, &p2));
        ASSERT(count_regions(bus) == 2);

        sd_bus_flush_close_unref(owner);
        wait_removed(bus, &removed, 1);
        /* Only the non-persistent region went with the connection. */
        ASSERT(count_regions(bus) == 1);
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", p2, "org.gmem1.Region", "Release", &error, NULL, NULL));
        wait_removed(bus, &removed, 2);
        ASSERT(count_regions(bus) == 0);
        printf("ok: owner disconnect frees its regions, a persistent one stays until released\n");
}

/* Run @fn as uid/gid @id in a child; returns its exit status. */
static int as_user(uid_t id, int (*fn)(const char *address, const char *path), const char *address, const char *path)
{
        pid_t pid = fork();
        int status;

        ASSERT(pid >= 0);
        if (pid == 0) {
                gid_t gid = id;

                if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(id) < 0)
                        _exit(100);
                _exit(fn(address, path));
        }
        ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* Call @member as whoever this process is now; the exit code tells the
 * parent which answer came: 0 success, 10 gmemd's PermissionDenied, 11 the
 * bus policy's AccessDenied, 12 anything else. */
static int try_call(const char *address, const char *path, const char *interface, const char *member)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus *bus = bus_connect(address);
        int r = sd_bus_call_method(bus, "org.gmem1", path, interface, member, &error, NULL, NULL);

        printf("   uid %u %s: %s: %s\n", (unsigned) getuid(), member, error.name ?: "ok", error.message ?: "");
        if (r >= 0)
                return 0;
        if (sd_bus_error_has_name(&error, GMEM_ERROR_PERMISSION_DENIED))
                return 10;
        if (sd_bus_error_has_name(&error, SD_BUS_ERROR_ACCESS_DENIED))
                return 11;
        return 12;
}

static int try_release(const char *address, const char *path)
{
        return try_call(address, path, "org.gmem1.Region", "Release");
}

static int try_list(const char *address, const char *path)
{
        return try_call(address, "/org/gmem1", "org.gmem1.Manager", "ListRegions");
}

static void test_other_uid(struct test_env *e, sd_bus *bus, bool open_policy)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, 2 * MIB);
        _cleanup_free_ char *path = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const struct opt o[] = { { .key = "memfd", .sig = "h", .h = g } };

        ASSERT_OK(create(bus, vm, 2 * MIB, o, 1, &error, &path));
        if (open_policy) {
                /* uid 65534 is in the daemon's allowed group 65534, but does not own the region. */
                ASSERT(as_user(65534, try_release, e->address, path) == 10);
                /* uid 1 (daemon) is not in the allowed group at all. */
                ASSERT(as_user(1, try_list, e->address, path) == 10);
                printf("ok: Release by another uid -> PermissionDenied; uid outside the group -> PermissionDenied\n");
        } else {
                /* The project's bus policy alone keeps other uids away. */
                ASSERT(as_user(65534, try_release, e->address, path) == 11);
                printf("ok: bus policy denies a uid that is neither root nor in the gmem group\n");
        }
        ASSERT(count_regions(bus) == 1);
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Release", &error, NULL, NULL));
        ASSERT(count_regions(bus) == 0);
}

static void test_quota(void)
{
        const struct test_env_options opts = {
                .daemon_config = "{ \"limits\": { \"max_bytes_per_user\": \"4M\", \"max_regions_per_user\": 2 } }",
        };
        _cleanup_close_ int vm = make_vm(), g1 = make_gmem(vm, 2 * MIB), g2 = make_gmem(vm, 4 * MIB),
                            g3 = make_gmem(vm, 1 * MIB), g4 = make_gmem(vm, 1 * MIB);
        _cleanup_free_ char *p1 = NULL, *p3 = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct test_env e;
        sd_bus *bus;

        ASSERT_OK(test_env_start(&e, &opts));
        bus = bus_connect(e.address);
        const struct opt o1[] = { { .key = "memfd", .sig = "h", .h = g1 } };
        const struct opt o2[] = { { .key = "memfd", .sig = "h", .h = g2 } };
        const struct opt o3[] = { { .key = "memfd", .sig = "h", .h = g3 } };
        const struct opt o4[] = { { .key = "memfd", .sig = "h", .h = g4 } };
        ASSERT_OK(create(bus, vm, 2 * MIB, o1, 1, &error, &p1));
        expect_create_error(&e, bus, vm, 4 * MIB, o2, 1, GMEM_ERROR_QUOTA_EXCEEDED, "bytes over the per-user limit");
        ASSERT_OK(create(bus, vm, 1 * MIB, o3, 1, &error, &p3));
        expect_create_error(&e, bus, vm, 1 * MIB, o4, 1, GMEM_ERROR_QUOTA_EXCEEDED, "regions over the per-user limit");
        ASSERT(count_regions(bus) == 2);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));
}

/* SIGTERM while a worker populates: gmemd stops it, answers, exits 0 (and,
 * under ASan, without leaks). */
static void test_stop_while_populating(void)
{
        const uint64_t size = 512 * MIB;
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, size);
        _cleanup_free_ char *path = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct pending_call populate = {};
        const struct opt o[] = { { .key = "memfd", .sig = "h", .h = g } };
        struct test_env e;
        sd_bus *bus;

        ASSERT_OK(test_env_start(&e, NULL));
        bus = bus_connect(e.address);
        ASSERT_OK(create(bus, vm, size, o, ELEMENTSOF(o), &error, &path));
        ASSERT_OK(sd_bus_call_method_async(bus, NULL, "org.gmem1", path, "org.gmem1.Region", "Populate", on_reply,
                                           &populate, "tt", 0ULL, size));
        ASSERT(count_regions(bus) == 1); /* the Populate reached gmemd */
        ASSERT_OK(test_env_stop(&e));
        sd_bus_flush_close_unref(bus);
        printf("ok: gmemd stops cleanly while populating\n");
}

int main(void)
{
        struct test_env e;
        sd_bus *bus;
        int fds, maps;

        setvbuf(stdout, NULL, _IOLBF, 0);
        ASSERT_OK(gmem_bus_errors_register());

        /* The project's bus policy on its own. */
        ASSERT_OK(test_env_start(&e, NULL));
        bus = bus_connect(e.address);
        test_other_uid(&e, bus, false);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));

        /* Policy opened for the tests, so the daemon's own checks are hit. */
        ASSERT_OK(test_env_start(&e, &(struct test_env_options) { .open_policy = true }));
        bus = bus_connect(e.address);
        ASSERT(count_regions(bus) == 0);
        fds = test_env_daemon_fds(&e);
        maps = test_env_daemon_mappings(&e);
        ASSERT(fds > 0 && maps == 0);

        test_bad_inputs(&e, bus);
        test_lifecycle(&e, bus);
        test_numa_page_tables(&e, bus);
        test_populate_in_background(&e, bus);
        test_owner_disconnect(&e, bus);
        test_other_uid(&e, bus, true);
        test_bad_inputs(&e, bus);

        /* Nothing leaked: same fds and mappings as before any region. */
        ASSERT(test_env_daemon_fds(&e) == fds);
        ASSERT(test_env_daemon_mappings(&e) == maps);
        printf("ok: gmemd holds %d fds and no guest_memfd mapping, as before the tests\n", fds);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));

        test_quota();
        test_stop_while_populating();
        return 0;
}
