/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who may call what (docs/dbus-api.md, "Who may call"): the bus policy,
 * gmemd's allowed_group (a gid, a name, null; primary or supplementary),
 * region methods for the owner and root only, property reads, and the
 * per-user limits. Other uids are real: forked children that setuid(). */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-client.h"
#include "bus-errors.h"
#include "macro.h"
#include "util.h"

#define NOBODY 65534 /* uid and gid; the test default allowed_group is gid 65534 */
#define OUTSIDER 1   /* uid and gid of a user outside that group */

static int as(uid_t uid, gid_t supplementary, const struct try_call *c)
{
        return as_user(uid, uid, supplementary, try_call_fn, c);
}

static char *create_simple(sd_bus *bus, int vm, bool persist)
{
        _cleanup_close_ int g = make_gmem(vm, 2 * MIB);
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const struct opt o[] = {
                { .key = "memfd", .sig = "h", .h = g },
                { .key = "persist", .sig = "b", .b = persist },
        };
        char *path = NULL;

        ASSERT_OK(create(bus, vm, 2 * MIB, o, ELEMENTSOF(o), &error, &path));
        return path;
}

/* The project's bus policy alone keeps other uids away. */
static void test_bus_policy(void)
{
        _cleanup_close_ int vm = make_vm();
        _cleanup_free_ char *path = NULL;
        struct test_env e;
        sd_bus *bus;

        bus = bus_test_start(&e, NULL);
        path = create_simple(bus, vm, false);
        ASSERT(as(NOBODY, NOBODY, &(struct try_call) { e.address, path, "org.gmem1.Region", "Release" }) ==
               CALL_ACCESS_DENIED);
        printf("ok: bus policy denies a uid that is neither root nor in the gmem group\n");
        ASSERT(count_regions(bus) == 1);
        region_release(bus, path);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));
}

/* Populate, Discard and Release are for the region's owner (and root). */
static void test_region_methods_owner_only(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm();
        _cleanup_free_ char *path = create_simple(bus, vm, false);
        static const char *const methods[] = { "Populate", "Discard", "Release" };

        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                const struct try_call c = {
                        .address = e->address, .path = path, .interface = "org.gmem1.Region", .member = methods[i],
                        .range = !streq(methods[i], "Release"), .offset = 0, .length = 2 * MIB,
                };

                /* uid 65534 is in the allowed group 65534, but does not own the region. */
                ASSERT(as(NOBODY, NOBODY, &c) == CALL_PERMISSION_DENIED);
                printf("ok: %s by another allowed uid -> PermissionDenied\n", methods[i]);
        }
        ASSERT(resident_total(bus, path) == 0 && count_regions(bus) == 1);
        region_release(bus, path);
}

struct create_as {
        const char *address;
        int vm, gmem;
        uint64_t size;
};

/* CreateRegion of a persistent region, for as_user(): 0 on success. */
static int create_persistent(const void *arg)
{
        const struct create_as *c = arg;
        const struct opt o[] = {
                { .key = "memfd", .sig = "h", .h = c->gmem },
                { .key = "persist", .sig = "b", .b = 1 },
        };
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *created = NULL;
        int r = create(bus_connect(c->address), c->vm, c->size, o, ELEMENTSOF(o), &error, &created);

        printf("   uid %u CreateRegion: %s\n", (unsigned) getuid(), error.name ?: created);
        return r < 0;
}

static bool match_uid(const char *path, uint32_t uid, const void *arg)
{
        return uid == *(const uid_t *) arg;
}

/* The path of the region uid @uid holds, from ListRegions. */
static char *region_of_uid(sd_bus *bus, uid_t uid)
{
        char *path = NULL;

        ASSERT(region_listed_find(bus, match_uid, &uid, &path, NULL));
        return path;
}

/* Root may act on any region: one made (persistent) by uid 65534. */
static void test_root_acts_on_others(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, 2 * MIB);
        _cleanup_free_ char *path = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;

        ASSERT(as_user(NOBODY, NOBODY, NOBODY, create_persistent, &(struct create_as) { e->address, vm, g, 2 * MIB }) == 0);
        path = region_of_uid(bus, NOBODY);
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Populate", &error, NULL, "tt", 0ULL,
                                     2 * MIB));
        /* A default region: on whichever node the populate ran (the vm tier has several). */
        ASSERT(resident_total(bus, path) == 2 * MIB);
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Discard", &error, NULL, "tt", 0ULL,
                                     2 * MIB));
        ASSERT(resident_total(bus, path) == 0);
        region_release(bus, path);
        ASSERT(count_regions(bus) == 0);
        printf("ok: root populates, discards and releases a region of uid %u\n", NOBODY);
}

static const char *const region_properties[][2] = {
        { "Name", "s" }, { "Size", "t" }, { "Policy", "s" }, { "Nodes", "au" },
        { "OwnerUID", "u" }, { "OwnerPID", "u" }, { "Resident", "a(ut)" },
};

/* Every property of @path read as @uid (primary gid @uid) with the one
 * supplementary group @supplementary answers @want. */
static void expect_property_reads(const struct test_env *e, const char *path, uid_t uid, gid_t supplementary,
                                  int want)
{
        for (size_t i = 0; i < ELEMENTSOF(region_properties); i++)
                ASSERT(as(uid, supplementary, &(struct try_call) { .address = e->address, .path = path,
                                                                   .property = region_properties[i][0],
                                                                   .property_type = region_properties[i][1] }) ==
                       want);
}

/* docs/dbus-api.md: a region's properties are for its owner uid, root and
 * the allowed group; anyone else gmemd hears from (here through the test's
 * open bus policy) gets PermissionDenied, property by property. */
static void test_property_readers(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, 2 * MIB);
        _cleanup_free_ char *path = create_simple(bus, vm, false), *own = NULL;

        /* Root's region: another uid in the allowed group reads it all... */
        expect_property_reads(e, path, NOBODY, NOBODY, CALL_OK);
        printf("ok: a member of the allowed group reads every property of root's region\n");
        /* ...a uid outside it reads nothing. */
        expect_property_reads(e, path, OUTSIDER, OUTSIDER, CALL_PERMISSION_DENIED);
        printf("ok: uid %u outside the allowed group reads no property of root's region: PermissionDenied\n",
               OUTSIDER);
        region_release(bus, path);

        /* uid 1 creates a region while in the group, then leaves it: as its
         * owner it still reads its properties. */
        ASSERT(as_user(OUTSIDER, OUTSIDER, NOBODY, create_persistent,
                       &(struct create_as) { e->address, vm, g, 2 * MIB }) == 0);
        own = region_of_uid(bus, OUTSIDER);
        expect_property_reads(e, own, OUTSIDER, OUTSIDER, CALL_OK);
        printf("ok: the owner uid reads its region's properties outside the allowed group\n");
        region_release(bus, own);
}

/* allowed_group: who gets in, for a ListRegions. */
static void test_allowed_group(const char *config, const char *what, int nobody, int outsider, int supplementary)
{
        const struct test_env_options opts = { .daemon_config = config, .open_policy = true };
        struct test_env e;
        sd_bus *bus;

        ASSERT_OK(test_env_start(&e, &opts));
        const struct try_call list = { e.address, "/org/gmem1", "org.gmem1.Manager", "ListRegions" };
        ASSERT(as(NOBODY, NOBODY, &list) == nobody);
        ASSERT(as(OUTSIDER, OUTSIDER, &list) == outsider);
        /* Primary group 1, supplementary group 65534. */
        ASSERT(as(OUTSIDER, NOBODY, &list) == supplementary);
        /* Root always. */
        bus = bus_connect(e.address);
        ASSERT(count_regions(bus) == 0);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));
        printf("ok: allowed_group %s\n", what);
}

/* The per-user limits, at and over each of them. */
static void test_quota(void)
{
        const struct test_env_options opts = {
                .daemon_config = "{ \"allowed_group\": \"65534\", "
                                 "\"limits\": { \"max_bytes_per_user\": \"4M\", \"max_regions_per_user\": 2 } }",
                .open_policy = true,
        };
        _cleanup_close_ int vm = make_vm(), g1 = make_gmem(vm, 2 * MIB), g2 = make_gmem(vm, 4 * MIB),
                            g3 = make_gmem(vm, 2 * MIB), g4 = make_gmem(vm, 1 * MIB), g5 = make_gmem(vm, 1 * MIB),
                            g6 = make_gmem(vm, 1 * MIB), g7 = make_gmem(vm, 4 * MIB);
        _cleanup_free_ char *p1 = NULL, *p3 = NULL, *p5 = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct test_env e;
        sd_bus *bus;

        bus = bus_test_start(&e, &opts);
        const struct opt o1[] = { { .key = "memfd", .sig = "h", .h = g1 } };
        const struct opt o2[] = { { .key = "memfd", .sig = "h", .h = g2 } };
        const struct opt o3[] = { { .key = "memfd", .sig = "h", .h = g3 } };
        const struct opt o4[] = { { .key = "memfd", .sig = "h", .h = g4 } };
        const struct opt o5[] = { { .key = "memfd", .sig = "h", .h = g5 } };
        const struct opt o6[] = { { .key = "memfd", .sig = "h", .h = g6 } };
        ASSERT_OK(create(bus, vm, 2 * MIB, o1, 1, &error, &p1));
        expect_create_error_says(&e, bus, vm, 4 * MIB, o2, 1, GMEM_ERROR_QUOTA_EXCEEDED, "exceeds the limit",
                                 "bytes over the per-user limit");
        /* Exactly at the byte limit is allowed. */
        ASSERT_OK(create(bus, vm, 2 * MIB, o3, 1, &error, &p3));
        printf("ok: a region that brings the uid exactly to max_bytes_per_user is allowed\n");
        region_release(bus, p3);
        free(p3);
        ASSERT_OK(create(bus, vm, 1 * MIB, o4, 1, &error, &p3));
        /* 2 regions, 3 MiB: a third of 1 MiB fits the bytes, not the count. */
        expect_create_error_says(&e, bus, vm, 1 * MIB, o5, 1, GMEM_ERROR_QUOTA_EXCEEDED, "regions, the limit",
                                 "regions over the per-user limit");
        region_release(bus, p1);
        ASSERT_OK(create(bus, vm, 1 * MIB, o5, 1, &error, &p5));
        expect_create_error_says(&e, bus, vm, 1 * MIB, o6, 1, GMEM_ERROR_QUOTA_EXCEEDED, "regions, the limit",
                                 "regions over the limit again");
        /* Root's regions do not count against another uid's limits. */
        ASSERT(as_user(NOBODY, NOBODY, NOBODY, create_persistent, &(struct create_as) { e.address, vm, g7, 4 * MIB }) ==
               0);
        printf("ok: the limits count per uid: uid %u creates 4 MiB while root is at its region limit\n", NOBODY);
        ASSERT(count_regions(bus) == 3);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));
}

int main(void)
{
        struct test_env e;
        sd_bus *bus;

        bus_tests_init();

        test_bus_policy();

        /* Policy opened for the tests, so the daemon's own checks are hit. */
        bus = bus_test_start(&e, &(struct test_env_options) { .open_policy = true });
        test_region_methods_owner_only(&e, bus);
        test_root_acts_on_others(&e, bus);
        test_property_readers(&e, bus);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));

        test_allowed_group(NULL, "65534 (a gid): members in, primary or supplementary; others out", CALL_OK,
                           CALL_PERMISSION_DENIED, CALL_OK);
        {
                /* The same group by its name (nogroup on Debian). */
                const struct group *g = getgrgid(NOBODY);
                char config[128], what[128];

                ASSERT(g);
                snprintf(config, sizeof(config), "{ \"allowed_group\": \"%s\" }", g->gr_name);
                snprintf(what, sizeof(what), "'%s' (a name, gid %u)", g->gr_name, NOBODY);
                test_allowed_group(config, what, CALL_OK, CALL_PERMISSION_DENIED, CALL_OK);
        }
        test_allowed_group("{ \"allowed_group\": null }", "null: root only", CALL_PERMISSION_DENIED,
                           CALL_PERMISSION_DENIED, CALL_PERMISSION_DENIED);
        test_quota();
        return 0;
}
