/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemd restarts without losing regions: the harness plays systemd's fd
 * store, gmemd is stopped with SIGTERM or killed with SIGKILL and started
 * again with what it stored. A guest runs on its region before and after;
 * persistent regions come back, non-persistent ones follow their owner's
 * connection if it is still there and go if it is not; ListRegions and
 * GetNodes say the same before and after. Also: unknown and released
 * region paths are NotFound (who may read a region's properties is
 * test-bus-access's). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-client.h"
#include "bus-contract.h"
#include "bus-errors.h"
#include "harness.h"
#include "macro.h"
#include "test-guest.h"
#include "util.h"

#define CODE_GPA 0x1000
#define DATA_GPA 0x2000

/* Real mode. Before the restart: mov al, 0x11; mov [0x2000], al; hlt. */
static const uint8_t code_before[] = { 0xb0, 0x11, 0xa2, 0x00, 0x20, 0xf4 };
/* After: mov al, [0x2000]; inc al; mov [0x2001], al; hlt: it reads what it wrote before. */
static const uint8_t code_after[] = { 0xa0, 0x00, 0x20, 0xfe, 0xc0, 0xa2, 0x01, 0x20, 0xf4 };

static gmem_client *client_open(const struct test_env *e)
{
        gmem_client *c = NULL;

        ASSERT_OK(gmem_client_new(e->address, &c));
        return c;
}

static void guest_run_code(struct test_guest *g, const uint8_t *code, size_t n)
{
        struct kvm_regs regs = { .rip = CODE_GPA, .rflags = 0x2 };
        struct kvm_sregs sregs;

        memcpy(g->mem + CODE_GPA, code, n);
        ASSERT_OK(ioctl(g->vcpu, KVM_GET_SREGS, &sregs));
        sregs.cs.base = sregs.cs.selector = 0;
        sregs.ds.base = sregs.ds.selector = 0;
        ASSERT_OK(ioctl(g->vcpu, KVM_SET_SREGS, &sregs));
        test_guest_run(g, &regs);
}

/* ListRegions and the bytes held per node (GetNodes), as one line of text. */
static char *accounting(sd_bus *bus)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *regions = NULL, *nodes = NULL;
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        const char *path, *name, *policy;
        uint64_t size, total, free_bytes, held;
        uint32_t uid, node;

        ASSERT(f);
        ASSERT_OK(sd_bus_call_method(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE, "ListRegions",
                                     NULL, &regions, NULL));
        ASSERT_OK(sd_bus_message_enter_container(regions, 'a', "(ostsu)"));
        while (sd_bus_message_read(regions, "(ostsu)", &path, &name, &size, &policy, &uid) > 0) {
                /* The reason for the placement is kept across restarts too. */
                _cleanup_free_ char *reason = region_property_string(bus, path, "PlacementReason");

                fprintf(f, "[%s %s %llu %s %u (%s)]", path, name, (unsigned long long) size, policy, uid, reason);
        }
        ASSERT_OK(sd_bus_call_method(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE, "GetNodes",
                                     NULL, &nodes, NULL));
        ASSERT_OK(sd_bus_message_enter_container(nodes, 'a', "(uttt)"));
        while (sd_bus_message_read(nodes, "(uttt)", &node, &total, &free_bytes, &held) > 0)
                fprintf(f, "{node %u held %llu}", node, (unsigned long long) held);
        ASSERT(fclose(f) == 0);
        return text;
}

/* Cut "[<path> ...]" out of an accounting() text. */
static void drop_entry(char *text, const char *region_path)
{
        char *start = strstr(text, region_path), *end;

        ASSERT(start);
        while (start > text && *start != '[')
                start--;
        end = strchr(start, ']');
        ASSERT(end);
        memmove(start, end + 1, strlen(end + 1) + 1);
}

static uint32_t restored_regions(sd_bus *bus)
{
        uint32_t n = 0;

        ASSERT_OK(sd_bus_get_property_trivial(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE,
                                              "RestoredRegions", NULL, 'u', &n));
        return n;
}

static bool region_listed(sd_bus *bus, const char *region_path)
{
        _cleanup_free_ char *list = accounting(bus);

        return strstr(list, region_path) != NULL;
}

/* The owner connection recorded in the fd store for @region_path. */
static void stored_owner(struct test_env *e, const char *region_path, char *owner, size_t size)
{
        char fdname[64], json[4096];
        const char *p;
        uint64_t id;

        ASSERT_OK(gmem_region_id_from_path(region_path, &id));
        snprintf(fdname, sizeof(fdname), "region-%llu", (unsigned long long) id);
        ASSERT_OK(test_env_fdstore_metadata(e, fdname, json, sizeof(json)));
        p = strstr(json, "\"owner_bus_name\":\"");
        ASSERT(p);
        p += strlen("\"owner_bus_name\":\"");
        snprintf(owner, size, "%.*s", (int) strcspn(p, "\""), p);
}

/* Until the bus has seen @name go: each call is a round trip through it. */
static void wait_name_gone(sd_bus *bus, const char *name)
{
        for (int i = 0; i < 100000; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                int has = 1;

                ASSERT_OK(sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                             "org.freedesktop.DBus", "NameHasOwner", NULL, &reply, "s", name));
                ASSERT_OK(sd_bus_message_read(reply, "b", &has));
                if (!has)
                        return;
        }
        ASSERT(!"the bus never saw the connection go");
}

static int on_removed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        const char *path;

        if (sd_bus_message_read(m, "o", &path) > 0 && streq(path, userdata))
                *(char *) userdata = '\0';
        return 0;
}

/* Drop the guest and its client: the restored region must follow the connection. */
static void drop_guest_and_wait_removed(sd_bus *bus, struct test_guest *g, gmem_client *client)
{
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        char path[128];

        snprintf(path, sizeof(path), "%s", gmem_region_get_path(g->region));
        ASSERT_OK(sd_bus_match_signal(bus, &slot, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE,
                                      "RegionRemoved", on_removed, path));
        /* A round trip makes sure the match is in place before the client goes. */
        free(accounting(bus));
        munmap(g->run, g->run_size);
        munmap(g->mem, g->size);
        safe_close(g->vcpu);
        safe_close(g->vm);
        gmem_region_unref(g->region);
        gmem_client_unref(client);
        while (path[0]) {
                int r = sd_bus_process(bus, NULL);

                ASSERT_OK(r);
                if (r == 0)
                        ASSERT(sd_bus_wait(bus, 30 * 1000000ULL) > 0);
        }
}

static gmem_region *create_region(gmem_client *c, uint64_t size, gmem_policy policy, bool persist, bool populate)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm = -1;
        gmem_options *o = NULL;
        gmem_region *region;

        ASSERT(kvm >= 0);
        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        ASSERT(vm >= 0);
        ASSERT_OK(gmem_options_new(&o));
        ASSERT_OK(gmem_options_set_policy(o, policy));
        ASSERT_OK(gmem_options_set_persist(o, persist));
        ASSERT_OK(gmem_options_set_populate(o, populate));
        region = test_region_create(c, vm, size, o);
        gmem_options_unref(o);
        return region;
}

/* gmemctl status says how many regions came back, for a person and in JSON. */
static void check_gmemctl_status(const struct test_env *e, unsigned restored)
{
        const char *gmemctl = getenv("GMEMCTL");
        char cmd[1024], out[65536], want[64];
        size_t n;
        FILE *f;

        ASSERT(gmemctl);
        for (int json = 0; json < 2; json++) {
                snprintf(cmd, sizeof(cmd), "'%s' --bus='%s' %s status", gmemctl, e->address, json ? "--json" : "");
                f = popen(cmd, "r");
                ASSERT(f);
                n = fread(out, 1, sizeof(out) - 1, f);
                out[n] = '\0';
                ASSERT(pclose(f) == 0);
                snprintf(want, sizeof(want), json ? "\"restored_regions\":%u" : "(%u restored when gmemd started)",
                         restored);
                ASSERT_CONTAINS(out, want);
        }
}

static void check_handle_works(gmem_region *region)
{
        _cleanup_free_ gmem_node_bytes *resident = NULL;
        size_t n = 0;
        uint64_t total = 0;

        ASSERT_OK(gmem_region_populate(region, 0, 2 * MIB));
        ASSERT_OK(gmem_region_get_resident(region, &resident, &n));
        for (size_t i = 0; i < n; i++)
                total += resident[i].bytes;
        ASSERT_U64_EQ(total, 2 * MIB);
}

static void call_release(sd_bus *bus, const char *path)
{
        ASSERT_OK(sd_bus_call_method(bus, GMEM_BUS_NAME, path, GMEM_REGION_INTERFACE, "Release", NULL, NULL, NULL));
}

static void test_restart(int sig)
{
        struct test_env e;
        struct test_env_options o = { .fd_store = true };
        struct test_guest g;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *before = NULL, *after = NULL, *persistent = NULL, *gone = NULL;
        gmem_client *owner, *kept_owner, *gone_owner;
        gmem_options *opts = NULL;
        gmem_region *p, *n;
        char gone_bus_name[256];

        fprintf(stderr, "--- restart with signal %d\n", sig);
        ASSERT_OK(test_env_start(&e, &o));
        bus = bus_connect(e.address);
        ASSERT(restored_regions(bus) == 0);

        /* A guest on a non-persistent region whose owner stays. */
        owner = client_open(&e);
        ASSERT_OK(gmem_options_new(&opts));
        ASSERT_OK(gmem_options_set_populate(opts, true));
        test_guest_new(&g, owner, 2 * MIB, opts);
        gmem_options_unref(opts);
        guest_run_code(&g, code_before, sizeof(code_before));
        ASSERT(g.mem[DATA_GPA] == 0x11);

        /* A persistent region whose owner goes before the restart; policy
         * auto, which ListRegions shows as asked, not as applied. */
        kept_owner = client_open(&e);
        p = create_region(kept_owner, 4 * MIB, GMEM_POLICY_AUTO, true, true);
        persistent = strdup(gmem_region_get_path(p));
        gmem_region_unref(p);
        gmem_client_unref(kept_owner);

        /* A non-persistent region whose owner goes while gmemd is down; not
         * populated, so the bytes held on the nodes stay what they were. */
        gone_owner = client_open(&e);
        n = create_region(gone_owner, 2 * MIB, GMEM_POLICY_DEFAULT, false, false);
        gone = strdup(gmem_region_get_path(n));
        ASSERT(persistent && gone);

        before = accounting(bus);
        ASSERT(strstr(before, persistent) && strstr(before, gone) && strstr(before, gmem_region_get_path(g.region)));
        ASSERT_OK(test_env_fdstore_sync(&e));
        ASSERT(e.n_store == 6); /* a guest_memfd and its metadata for each region */

        ASSERT_OK(test_env_stop_daemon(&e, sig));
        stored_owner(&e, gone, gone_bus_name, sizeof(gone_bus_name));
        gmem_region_unref(n);
        gmem_client_unref(gone_owner);
        wait_name_gone(bus, gone_bus_name);
        ASSERT_OK(test_env_start_daemon_again(&e));

        /* Two regions came back; the third went with its owner. */
        ASSERT(restored_regions(bus) == 2);
        check_gmemctl_status(&e, 2);
        ASSERT(!region_listed(bus, gone));
        after = accounting(bus);
        /* Accounting: what was there before, less the released region. */
        drop_entry(before, gone);
        ASSERT_STREQ(before, after);
        /* The region that went left the store; the rest stayed. (What a
         * broken store holds is test-fdstore-hostile's.) */
        ASSERT_OK(test_env_fdstore_sync(&e));
        ASSERT(e.n_store == 4);

        /* The guest runs on, on the memory it had. */
        guest_run_code(&g, code_after, sizeof(code_after));
        ASSERT(g.mem[DATA_GPA] == 0x11 && g.mem[DATA_GPA + 1] == 0x12);
        /* The libgmem handle made before the restart still works. */
        check_handle_works(g.region);

        /* The restored region follows its owner's connection again. */
        drop_guest_and_wait_removed(bus, &g, owner);
        ASSERT(region_listed(bus, persistent));
        call_release(bus, persistent);
        ASSERT(!region_listed(bus, persistent));
        ASSERT_OK(test_env_fdstore_sync(&e));
        ASSERT(e.n_store == 0);
        ASSERT_OK(test_env_stop(&e));
}

static void test_not_found(void)
{
        struct test_env e;
        struct test_env_options o = {};
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        gmem_client *c;
        gmem_region *region;
        _cleanup_free_ char *path = NULL;
        char alias[256];
        uint64_t id;

        fprintf(stderr, "--- NotFound\n");
        ASSERT_OK(test_env_start(&e, &o));
        bus = bus_connect(e.address);
        expect_region_not_found(bus, GMEM_REGION_PATH_PREFIX "/999");
        expect_region_not_found(bus, GMEM_REGION_PATH_PREFIX "/abc");

        c = client_open(&e);
        region = create_region(c, 2 * MIB, GMEM_POLICY_DEFAULT, true, false);
        path = strdup(gmem_region_get_path(region));
        ASSERT(path);
        /* A region's path is one spelling of its id: no leading zero, nothing after it. */
        ASSERT_OK(gmem_region_id_from_path(path, &id));
        snprintf(alias, sizeof(alias), "%s/0%llu", GMEM_REGION_PATH_PREFIX, (unsigned long long) id);
        expect_region_not_found(bus, alias);
        snprintf(alias, sizeof(alias), "%s/%llux", GMEM_REGION_PATH_PREFIX, (unsigned long long) id);
        expect_region_not_found(bus, alias);
        call_release(bus, path);
        expect_region_not_found(bus, path);
        gmem_region_unref(region);
        gmem_client_unref(c);
        ASSERT_OK(test_env_stop(&e));
}

int main(void)
{
        if (access("/dev/kvm", R_OK | W_OK) < 0) {
                fprintf(stderr, "SKIP: no /dev/kvm\n");
                return EXIT_TEST_SKIP;
        }
        test_restart(SIGTERM);
        test_restart(SIGKILL);
        test_not_found();
        fprintf(stderr, "ok\n");
        return 0;
}
