/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Drives the real gmemd on a private bus with raw sd-bus calls: the contract
 * of docs/dbus-api.md (methods, options, policies, properties, signals), every
 * bad input with its named error, and that nothing leaks. Who may call what is
 * test-bus-access.c; populating on workers is test-bus-populate.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-client.h"
#include "bus-errors.h"
#include "gmem-config.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "util.h"

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

        expect_create_error_says(e, bus, vm, 0, with_memfd, 1, GMEM_ERROR_INVALID_ARGUMENT, "is empty", "size 0");
        expect_create_error_says(e, bus, vm, 12345, with_memfd, 1, GMEM_ERROR_INVALID_ARGUMENT,
                                 "multiple of the page size", "unaligned size");
        {
                uint64_t huge = 1ULL << 46; /* 64 TiB: more than any node here */
                _cleanup_close_ int big = make_gmem(vm, huge);
                const struct opt o[] = {
                        { .key = "policy", .sig = "s", .s = "bind" },
                        { .key = "nodes", .sig = "au", .au = &node0, .n_au = 1 },
                        { .key = "memfd", .sig = "h", .h = big },
                };
                expect_create_error_says(e, bus, vm, huge, o, ELEMENTSOF(o), GMEM_ERROR_NO_SPACE,
                                         "is larger than", "size larger than node 0");
        }
        {
                const struct opt o[] = {
                        { .key = "policy", .sig = "s", .s = "bind" },
                        { .key = "nodes", .sig = "au", .au = &node999, .n_au = 1 },
                        { .key = "memfd", .sig = "h", .h = gmem },
                };
                expect_create_error_says(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT,
                                         "node 999 does not exist", "unknown node 999");
        }
        {
                const struct opt o[] = { { .key = "populate", .sig = "s", .s = "yes" }, with_memfd[0] };
                expect_create_error_says(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT,
                                         "must be of type", "wrong option type (populate as s)");
        }
        {
                const struct opt o[] = { { .key = "nodes", .sig = "t", .b = 1 }, with_memfd[0] };
                expect_create_error_says(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT,
                                         "must be of type", "wrong option type (nodes as t)");
        }
        {
                static uint32_t many[4096];
                const struct opt o[] = {
                        { .key = "policy", .sig = "s", .s = "interleave" },
                        { .key = "nodes", .sig = "au", .au = many, .n_au = ELEMENTSOF(many) },
                        with_memfd[0],
                };
                expect_create_error_says(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT,
                                         "at most 1024", "4096 entries in option nodes");
        }
        {
                const struct opt o[] = { { .key = "policy", .sig = "s", .s = "nearest" }, with_memfd[0] };
                expect_create_error_says(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT,
                                         "unknown policy", "unknown policy");
        }
        {
                const struct opt o[] = { { .key = "colour", .sig = "s", .s = "blue" }, with_memfd[0] };
                expect_create_error_says(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT,
                                         "unknown option 'colour'", "unknown option");
        }
        {
                const struct opt o[] = { { .key = "name", .sig = "s", .s = "bad name/../x" }, with_memfd[0] };
                expect_create_error_says(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT,
                                         "may only contain", "bad region name");
        }
        {
                const struct opt o[] = { { .key = "policy", .sig = "s", .s = "preferred" }, with_memfd[0] };
                expect_create_error_says(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT,
                                         "exactly one node", "preferred without a node");
        }
        small = make_gmem(vm, 1 * MIB);
        {
                const struct opt o[] = { { .key = "memfd", .sig = "h", .h = small } };
                expect_create_error_says(e, bus, vm, 2 * MIB, o, 1, GMEM_ERROR_INVALID_ARGUMENT,
                                         "but size is", "memfd of another size");
        }
        memfd = memfd_create("not-gmem", MFD_CLOEXEC);
        ASSERT(memfd >= 0 && ftruncate(memfd, 2 * MIB) == 0);
        {
                const struct opt o[] = { { .key = "memfd", .sig = "h", .h = memfd } };
                expect_create_error_says(e, bus, vm, 2 * MIB, o, 1, GMEM_ERROR_INVALID_ARGUMENT,
                                         "not a guest_memfd", "memfd that is no guest_memfd");
        }
        {
                const struct opt o[] = { { .key = "name", .sig = "s", .s = "once" }, with_memfd[0],
                                         { .key = "name", .sig = "s", .s = "twice" } };
                expect_create_error_says(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT,
                                         "given twice", "option name given twice");
        }
        {
                char name[66];

                memset(name, 'n', 65);
                name[65] = '\0';
                const struct opt o[] = { { .key = "name", .sig = "s", .s = name }, with_memfd[0] };
                expect_create_error_says(e, bus, vm, 2 * MIB, o, ELEMENTSOF(o), GMEM_ERROR_INVALID_ARGUMENT,
                                         "1 to 64 characters", "65-character name");
                /* 64 is the limit, and allowed. */
                name[64] = '\0';
                _cleanup_free_ char *p64 = NULL, *got = NULL;
                ASSERT_OK(create(bus, vm, 2 * MIB, o, ELEMENTSOF(o), &error, &p64));
                got = region_property_string(bus, p64, "Name");
                ASSERT(streq(got, name));
                region_release(bus, p64);
                printf("ok: a 64-character name is accepted\n");
        }
        {
                _cleanup_close_ int unmappable = make_gmem_flags(vm, 2 * MIB, 0);
                const struct opt o[] = { { .key = "memfd", .sig = "h", .h = unmappable } };
                expect_create_error_says(e, bus, vm, 2 * MIB, o, 1, GMEM_ERROR_INVALID_ARGUMENT, "cannot be mapped",
                                         "memfd without GUEST_MEMFD_FLAG_MMAP");
        }
        /* A message of the wrong signature is sd-bus's own InvalidArgs. */
        expect_error(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "CreateRegion", &error,
                                        NULL, "s", "2M"),
                     &error, SD_BUS_ERROR_INVALID_ARGS, "CreateRegion with signature s");
        /* Without option memfd the daemon must create the guest_memfd on the
         * caller's VM, which upstream KVM refuses to any other process (the
         * gmem series allows it: test-unmapped.c). */
        ASSERT(kvm >= 0); /* /dev/kvm, opened above */
        if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_ANY_MM) <= 0)
                expect_create_error_says(e, bus, vm, 2 * MIB, NULL, 0, GMEM_ERROR_UNSUPPORTED,
                                         "option 'memfd'", "daemon-side KVM_CREATE_GUEST_MEMFD");
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


/* Populating runs on a worker: other calls are answered meanwhile, and a
 * release in the middle stops it and answers the Populate with NotFound. */
/* Ranges Populate and Discard refuse on an 8 MiB region, with what gmemd's own
 * check says (the kernel's EINVAL has the same error name). */
static const struct bad_range {
        uint64_t offset, length;
        const char *says, *what;
} bad_ranges[] = {
        { 4 * MIB, 8 * MIB, "past the end", "past the end" },
        { 8 * MIB + 4096, 4096, "past the end", "starting past the end" },
        { UINT64_MAX - 4095, 8192, "past the end", "wrapping around" },
        { 100, 4096, "multiples of the page size", "unaligned offset" },
        { 0, 100, "multiples of the page size", "unaligned length" },
        { 0, 0, "length is 0", "of length 0" },
};

static void test_lifecycle(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), gmem = -1;
        _cleanup_free_ char *path = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t node0 = 0;
        char *name = NULL, *policy = NULL;
        uint64_t size = 0;
        uint32_t owner = 99, owner_pid = 0, nodes[4];
        struct host_node hosts[64];

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
        ASSERT_OK(sd_bus_get_property_trivial(bus, "org.gmem1", path, "org.gmem1.Region", "OwnerPID", &error, 'u',
                                              &owner_pid));
        ASSERT(owner_pid == (uint32_t) getpid());
        ASSERT(region_nodes(bus, path, nodes, ELEMENTSOF(nodes)) == 1 && nodes[0] == 0);
        free(name);
        free(policy);

        /* Populated on node 0, as measured by the daemon, also in GetNodes... */
        ASSERT(resident_on(bus, path, 0) == 8 * MIB);
        ASSERT(host_nodes(bus, hosts, ELEMENTSOF(hosts)) >= 1);
        ASSERT(hosts[0].node == 0 && hosts[0].held == 8 * MIB && hosts[0].total >= hosts[0].free);
        /* ...discarding half frees half, bad ranges are refused. */
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Discard", &error, NULL, "tt",
                                     0ULL, 4 * MIB));
        ASSERT(resident_on(bus, path, 0) == 4 * MIB);
        for (unsigned i = 0; i < ELEMENTSOF(bad_ranges); i++)
                for (unsigned populate = 0; populate < 2; populate++) {
                        const struct bad_range *b = &bad_ranges[i];
                        const char *method = populate ? "Populate" : "Discard";
                        char what[64];

                        snprintf(what, sizeof(what), "%s %s", method, b->what);
                        expect_error_says(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", method,
                                                             &error, NULL, "tt", b->offset, b->length),
                                          &error, GMEM_ERROR_INVALID_ARGUMENT, b->says, what);
                }
        ASSERT(resident_on(bus, path, 0) == 4 * MIB);
        /* Ranges that do not start at 0: [2, 4) MiB populated, [6, 8) discarded. */
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Populate", &error, NULL, "tt",
                                     2 * MIB, 2 * MIB));
        ASSERT(resident_on(bus, path, 0) == 6 * MIB);
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Discard", &error, NULL, "tt",
                                     6 * MIB, 2 * MIB));
        ASSERT(resident_on(bus, path, 0) == 4 * MIB);

        /* The daemon's fd and the caller's are one guest_memfd: what the
         * daemon populated is visible through the caller's mapping, where it
         * was asked for: [2, 6) MiB. */
        char *p = mmap(NULL, 8 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
        ASSERT(p != MAP_FAILED);
        unsigned char vec[8 * MIB / 4096];
        ASSERT_OK(mincore(p, 8 * MIB, vec));
        for (unsigned mib = 0; mib < 8; mib++)
                ASSERT(!!(vec[mib * MIB / 4096] & 1) == (mib >= 2 && mib < 6));
        munmap(p, 8 * MIB);

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Release", &error, NULL, NULL));
        ASSERT(count_regions(bus) == 0);
        expect_error(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Release", &error, NULL, NULL),
                     &error, GMEM_ERROR_NOT_FOUND, "Release of a released region");
        ASSERT(test_env_daemon_alive(e));
        printf("ok: lifecycle (create, properties, populate, discard, resident, release)\n");
}


static int cap(int kvm, long capability)
{
        int r = ioctl(kvm, KVM_CHECK_EXTENSION, capability);

        return r > 0 ? r : 0;
}

/* KernelFeatures says what the kernel says to this process, and Version is
 * the build's. */
/* The folio sizes gmemd saw guest_memfd use: this runs as root, so they are
 * known; ascending powers of two from the page size up. */
static void check_folio_sizes(sd_bus_message *reply)
{
        const uint64_t *sizes;
        size_t bytes, n;

        ASSERT_OK(sd_bus_message_enter_container(reply, 'v', "at"));
        ASSERT_OK(sd_bus_message_read_array(reply, 't', (const void **) &sizes, &bytes));
        ASSERT_OK(sd_bus_message_exit_container(reply));
        n = bytes / sizeof(uint64_t);
        if (geteuid() != 0)
                return;
        ASSERT(n >= 1);
        for (size_t i = 0; i < n; i++) {
                ASSERT(sizes[i] >= (uint64_t) sysconf(_SC_PAGESIZE) && (sizes[i] & (sizes[i] - 1)) == 0);
                ASSERT(i == 0 || sizes[i] > sizes[i - 1]);
        }
        printf("ok: KernelFeatures GuestMemfdFolioSizes: %zu size(s), the smallest %llu bytes\n", n,
               (unsigned long long) sizes[0]);
}

static void test_kernel_features(sd_bus *bus)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        _cleanup_free_ char *version = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        static const struct {
                const char *key;
                long cap;
        } bools[] = {
                { "GuestMemfd", KVM_CAP_GUEST_MEMFD },           { "MemoryFaultInfo", KVM_CAP_MEMORY_FAULT_INFO },
                { "PreFaultMemory", KVM_CAP_PRE_FAULT_MEMORY },  { "UserMemory2", KVM_CAP_USER_MEMORY2 },
                { "NumaAwarePageTables", KVM_CAP_NUMA_AWARE_PAGE_TABLES },
                { "GuestMemfdAnyProcess", KVM_CAP_GUEST_MEMFD_ANY_MM },
                { "GuestMemfdInfo", KVM_CAP_GUEST_MEMFD_INFO },
                { "GuestMemfdPolicy", KVM_CAP_GUEST_MEMFD_POLICY },
                { "GuestMemfdOwnerMemcg", KVM_CAP_GUEST_MEMFD_OWNER_MEMCG },
                { "GuestMemfdMissing", KVM_CAP_GUEST_MEMFD_MISSING },
        };
        uint64_t flags = (uint64_t) cap(kvm, KVM_CAP_GUEST_MEMFD_FLAGS), got_flags = ~0ULL;
        unsigned seen = 0, modules = 0;
        struct utsname u;
        const char *key, *release = NULL;
        int b;

        ASSERT(kvm >= 0 && uname(&u) == 0);
        ASSERT_OK(sd_bus_get_property(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "KernelFeatures", &error,
                                      &reply, "a{sv}"));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "{sv}"));
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                ASSERT_OK(sd_bus_message_read(reply, "s", &key));
                if (streq(key, "KernelRelease"))
                        ASSERT_OK(sd_bus_message_read(reply, "v", "s", &release));
                else if (streq(key, "GuestMemfdFlags"))
                        ASSERT_OK(sd_bus_message_read(reply, "v", "t", &got_flags));
                else if (streq(key, "Modules")) {
                        const char *name, *state;

                        ASSERT_OK(sd_bus_message_enter_container(reply, 'v', "a{ss}"));
                        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "{ss}"));
                        while (sd_bus_message_read(reply, "{ss}", &name, &state) > 0)
                                modules += streq(name, "kvm") && !streq(state, "absent");
                        ASSERT_OK(sd_bus_message_exit_container(reply));
                        ASSERT_OK(sd_bus_message_exit_container(reply));
                } else if (streq(key, "ModuleParameters"))
                        ASSERT_OK(sd_bus_message_skip(reply, "v"));
                else if (streq(key, "GuestMemfdFolioSizes"))
                        check_folio_sizes(reply);
                else {
                        bool want;

                        ASSERT_OK(sd_bus_message_read(reply, "v", "b", &b));
                        if (streq(key, "KVM"))
                                want = true;
                        else if (streq(key, "GuestMemfdMmap"))
                                want = flags & GUEST_MEMFD_FLAG_MMAP;
                        else if (streq(key, "GuestMemfdInitShared"))
                                want = flags & GUEST_MEMFD_FLAG_INIT_SHARED;
                        else {
                                size_t i = 0;

                                while (i < ELEMENTSOF(bools) && !streq(bools[i].key, key))
                                        i++;
                                ASSERT(i < ELEMENTSOF(bools));
                                want = cap(kvm, bools[i].cap) > 0;
                        }
                        if (b != want)
                                fprintf(stderr, "KernelFeatures.%s is %d, the kernel says %d\n", key, b, want);
                        ASSERT(b == want);
                }
                seen++;
                ASSERT_OK(sd_bus_message_exit_container(reply));
        }
        /* The gmem kernel series has missing-page tracking, the host's kernel not. */
        if (strstr(u.release, "-gmem"))
                ASSERT(cap(kvm, KVM_CAP_GUEST_MEMFD_MISSING) > 0);
        ASSERT(seen == 18 && release && streq(release, u.release) && got_flags == flags && modules == 1);
        ASSERT_OK(sd_bus_get_property_string(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "Version", &error,
                                             &version));
        ASSERT(streq(version, GMEM_VERSION));
        printf("ok: KernelFeatures (16 keys) agree with this kernel; Version %s\n", version);
}

/* RegionAdded for every region, before the CreateRegion reply; RegionRemoved
 * when its owner disconnects (not for a persistent one) or releases it. */
static void test_signals_and_owner_disconnect(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g1 = -1, g2 = -1;
        _cleanup_free_ char *p1 = NULL, *p2 = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct signal_count added = {}, removed = {};
        sd_bus *owner;

        signal_count_watch(bus, &added, "RegionAdded");
        signal_count_watch(bus, &removed, "RegionRemoved");
        owner = bus_connect(e->address);
        g1 = make_gmem(vm, 2 * MIB);
        g2 = make_gmem(vm, 2 * MIB);
        const struct opt o1[] = { { .key = "memfd", .sig = "h", .h = g1 }, { .key = "populate", .sig = "b", .b = 1 } };
        const struct opt o2[] = { { .key = "memfd", .sig = "h", .h = g2 }, { .key = "persist", .sig = "b", .b = 1 } };
        ASSERT_OK(create(owner, vm, 2 * MIB, o1, ELEMENTSOF(o1), &error, &p1));
        ASSERT_OK(create(owner, vm, 2 * MIB, o2, ELEMENTSOF(o2), &error, &p2));
        signal_count_wait(bus, &added, 2);
        ASSERT(added.count == 2 && streq(added.last, p2));
        ASSERT(count_regions(bus) == 2);

        sd_bus_flush_close_unref(owner);
        signal_count_wait(bus, &removed, 1);
        ASSERT(streq(removed.last, p1));
        /* Only the non-persistent region went with the connection. */
        ASSERT(count_regions(bus) == 1);
        region_release(bus, p2);
        signal_count_wait(bus, &removed, 2);
        ASSERT(streq(removed.last, p2));
        ASSERT(count_regions(bus) == 0 && added.count == 2);
        printf("ok: RegionAdded per region; owner disconnect frees its regions, a persistent one stays until "
               "released\n");
        signal_count_done(&added);
        signal_count_done(&removed);
}

/* Create a 2 MiB region with @policy on @nodes; returns its path. */
static char *create_placed(sd_bus *bus, int vm, const char *policy, const uint32_t *nodes, size_t n_nodes)
{
        _cleanup_close_ int g = make_gmem(vm, 2 * MIB);
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *path = NULL;
        const struct opt o[] = {
                { .key = "policy", .sig = "s", .s = policy },
                { .key = "nodes", .sig = "au", .au = nodes, .n_au = n_nodes },
                { .key = "populate", .sig = "b", .b = 1 },
                { .key = "memfd", .sig = "h", .h = g },
        };

        ASSERT_OK(create(bus, vm, 2 * MIB, o, ELEMENTSOF(o), &error, &path));
        return path;
}

static bool is_host_node(const struct host_node *hosts, size_t n, uint32_t node)
{
        for (size_t i = 0; i < n; i++)
                if (hosts[i].node == node)
                        return true;
        return false;
}

/* Every policy of the table in docs/dbus-api.md succeeds, and Policy, Nodes
 * and ListRegions say what it was asked and where it applies. */
static void test_policies(sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm();
        struct host_node hosts[64];
        size_t n_hosts = host_nodes(bus, hosts, ELEMENTSOF(hosts));
        uint32_t first = hosts[0].node, nodes[64];
        static const struct {
                const char *policy;
                bool with_node;
        } cases[] = {
                { "default", false }, { "bind", true }, { "preferred", true },
                { "interleave", true }, { "interleave", false }, { "auto", false }, { "auto", true },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *path = create_placed(bus, vm, cases[i].policy, &first, cases[i].with_node);
                _cleanup_free_ char *policy = region_property_string(bus, path, "Policy");
                _cleanup_free_ char *listed = region_listed_policy(bus, path);
                size_t n = region_nodes(bus, path, nodes, ELEMENTSOF(nodes));

                /* The requested policy, also for auto (not the preferred it applies). */
                ASSERT(streq(policy, cases[i].policy) && listed && streq(listed, cases[i].policy));
                if (streq(cases[i].policy, "default"))
                        ASSERT(n == 0);
                else if (cases[i].with_node)
                        ASSERT(n == 1 && nodes[0] == first);
                else if (streq(cases[i].policy, "interleave")) {
                        /* All host nodes. */
                        ASSERT(n == n_hosts);
                        for (size_t j = 0; j < n; j++)
                                ASSERT(nodes[j] == hosts[j].node);
                } else
                        /* auto: the one node it chose. */
                        ASSERT(n == 1 && is_host_node(hosts, n_hosts, nodes[0]));
                ASSERT(resident_on(bus, path, n ? nodes[0] : first) > 0 || n_hosts > 1);
                printf("ok: policy %-10s %s -> Policy %s, %zu node(s)\n", cases[i].policy,
                       cases[i].with_node ? "on one node" : "without nodes", policy, n);
                region_release(bus, path);
        }
}

/* shared=false: a private guest_memfd is placed and populated (no host
 * touch), and Resident stays empty. shared=true on that same kind of fd
 * cannot be populated: CreateRegion fails and the region does not stay. */
static void test_private(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem_flags(vm, 4 * MIB, GUEST_MEMFD_FLAG_MMAP),
                            g2 = make_gmem_flags(vm, 4 * MIB, GUEST_MEMFD_FLAG_MMAP);
        _cleanup_free_ char *path = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct signal_count added = {}, removed = {};
        const struct opt o[] = {
                { .key = "shared", .sig = "b", .b = 0 },
                { .key = "populate", .sig = "b", .b = 1 },
                { .key = "memfd", .sig = "h", .h = g },
        };
        const struct opt wrong[] = {
                { .key = "populate", .sig = "b", .b = 1 },
                { .key = "memfd", .sig = "h", .h = g2 },
        };
        unsigned before = count_regions(bus);
        int r;

        /* Private pages cannot be mapped by the host: only the kernel's per-node
         * counts (KVM_CAP_GUEST_MEMFD_INFO, gmem series) show them. */
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        uint64_t seen = kvm >= 0 && cap(kvm, KVM_CAP_GUEST_MEMFD_INFO) > 0 ? 4 * MIB : 0;

        ASSERT_OK(create(bus, vm, 4 * MIB, o, ELEMENTSOF(o), &error, &path));
        ASSERT(resident_total(bus, path) == seen);
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Populate", &error, NULL, "tt",
                                     0ULL, 4 * MIB));
        ASSERT(resident_total(bus, path) == seen);
        region_release(bus, path);
        printf("ok: shared=false: a private guest_memfd is populated, Resident shows %s\n",
               seen ? "it (the kernel's counts)" : "nothing (no kernel counts)");

        /* Populating fails midway (the host cannot touch private memory):
         * the region was listed and announced, and is released again. */
        signal_count_watch(bus, &added, "RegionAdded");
        signal_count_watch(bus, &removed, "RegionRemoved");
        free(path);
        path = NULL;
        r = create(bus, vm, 4 * MIB, wrong, ELEMENTSOF(wrong), &error, &path);
        ASSERT(r < 0 && error.message && strstr(error.message, "populating region"));
        printf("ok: populate failing in CreateRegion -> %s: %s\n", error.name, error.message);
        sd_bus_error_free(&error);
        signal_count_wait(bus, &removed, 1);
        ASSERT(added.count == 1 && streq(added.last, removed.last));
        ASSERT(count_regions(bus) == before && test_env_daemon_alive(e));
        printf("ok: the region whose populating failed was released (RegionRemoved %s)\n", removed.last);
        signal_count_done(&added);
        signal_count_done(&removed);
}

/* NoSpace for populate counts what other regions will still take: a region
 * as large as node 0, not populated, leaves no room to populate 2 MiB there. */
static void test_no_room_to_populate(struct test_env *e, sd_bus *bus)
{
        struct host_node hosts[64];
        size_t n_hosts = host_nodes(bus, hosts, ELEMENTSOF(hosts));
        uint64_t big = hosts[0].total & ~(2 * MIB - 1);
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, big), small = make_gmem(vm, 2 * MIB);
        _cleanup_free_ char *path = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t node = hosts[0].node;
        const struct opt o[] = {
                { .key = "policy", .sig = "s", .s = "bind" },
                { .key = "nodes", .sig = "au", .au = &node, .n_au = 1 },
                { .key = "memfd", .sig = "h", .h = g },
        };
        const struct opt p[] = {
                { .key = "policy", .sig = "s", .s = "bind" },
                { .key = "nodes", .sig = "au", .au = &node, .n_au = 1 },
                { .key = "populate", .sig = "b", .b = 1 },
                { .key = "memfd", .sig = "h", .h = small },
        };

        ASSERT(n_hosts >= 1);
        ASSERT_OK(create(bus, vm, big, o, ELEMENTSOF(o), &error, &path));
        expect_create_error_says(e, bus, vm, 2 * MIB, p, ELEMENTSOF(p), GMEM_ERROR_NO_SPACE, "populating",
                                 "populate with node 0 spoken for");
        region_release(bus, path);
}

/* The children of /org/gmem1/region in its introspection data. */
static bool region_node_listed(sd_bus *bus, const char *path)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *xml, *id = strrchr(path, '/') + 1;
        char node[64];

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1/region", "org.freedesktop.DBus.Introspectable",
                                     "Introspect", &error, &reply, NULL));
        ASSERT_OK(sd_bus_message_read(reply, "s", &xml));
        snprintf(node, sizeof(node), "<node name=\"%s\"/>", id);
        return strstr(xml, node);
}

/* Region objects are enumerated while they exist, and ids count up, never
 * reused while gmemd runs. */
static void test_region_objects(sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g1 = make_gmem(vm, 2 * MIB), g2 = make_gmem(vm, 2 * MIB);
        _cleanup_free_ char *p1 = NULL, *p2 = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const struct opt o1[] = { { .key = "memfd", .sig = "h", .h = g1 } };
        const struct opt o2[] = { { .key = "memfd", .sig = "h", .h = g2 } };
        unsigned long id1, id2;

        ASSERT_OK(create(bus, vm, 2 * MIB, o1, 1, &error, &p1));
        ASSERT(region_node_listed(bus, p1));
        region_release(bus, p1);
        ASSERT(!region_node_listed(bus, p1));
        ASSERT_OK(create(bus, vm, 2 * MIB, o2, 1, &error, &p2));
        id1 = strtoul(strrchr(p1, '/') + 1, NULL, 10);
        id2 = strtoul(strrchr(p2, '/') + 1, NULL, 10);
        ASSERT(id1 >= 1 && id2 == id1 + 1);
        ASSERT(region_node_listed(bus, p2));
        region_release(bus, p2);
        printf("ok: region objects enumerated while they exist; id %lu follows the released %lu\n", id2, id1);
}

int main(void)
{
        struct holdings before;
        struct test_env e;
        sd_bus *bus;

        bus_tests_init();

        bus = bus_test_start(&e, NULL);
        ASSERT(count_regions(bus) == 0);
        before = daemon_holdings(&e, bus);
        ASSERT(before.maps == 0);

        test_bad_inputs(&e, bus);
        test_lifecycle(&e, bus);
        test_region_objects(bus);
        test_kernel_features(bus);
        test_numa_page_tables(&e, bus);
        test_signals_and_owner_disconnect(&e, bus);
        test_policies(bus);
        test_private(&e, bus);
        test_no_room_to_populate(&e, bus);
        test_bad_inputs(&e, bus);

        /* Nothing leaked: same fds and mappings as before any region. */
        expect_same_holdings(&e, bus, &before);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));
        return 0;
}
