/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Multi-node placement, checked independently of gmemd: a bind region on node
 * 1 and an interleave region over nodes 0-1 are populated by the daemon, then
 * this test maps the fds itself and asks the kernel (move_pages) where every
 * page is, and compares that with the daemon's Resident. Needs >= 2 nodes:
 * it runs in the vm tier. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <numa.h>
#include <numaif.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gmem.h"
#include "harness.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "numa-pages.h"
#include "test-guest.h"

#define REGION_SIZE (64ULL << 20)
#define MAX_NODES NUMA_PAGES_MAX_NODES

static void check_daemon_agrees(gmem_region *region, const uint64_t per_node[MAX_NODES])
{
        _cleanup_free_ gmem_node_bytes *resident = NULL;
        uint64_t daemon[MAX_NODES] = {};
        size_t n;

        ASSERT_OK(gmem_region_get_resident(region, &resident, &n));
        for (size_t i = 0; i < n; i++) {
                ASSERT(resident[i].node < MAX_NODES);
                daemon[resident[i].node] = resident[i].bytes;
        }
        for (unsigned i = 0; i < MAX_NODES; i++) {
                if (daemon[i] != per_node[i])
                        fprintf(stderr, "node %u: daemon says %" PRIu64 ", the kernel says %" PRIu64 "\n", i,
                                daemon[i], per_node[i]);
                ASSERT(daemon[i] == per_node[i]);
        }
}

static gmem_region *create(gmem_client *client, int vm, gmem_policy policy, const unsigned *nodes, size_t n)
{
        gmem_options *o;
        gmem_region *region;

        ASSERT_OK(gmem_options_new(&o));
        ASSERT_OK(gmem_options_set_policy(o, policy));
        ASSERT_OK(gmem_options_set_nodes(o, nodes, n));
        ASSERT_OK(gmem_options_set_populate(o, true));
        region = test_region_create(client, vm, REGION_SIZE, o);
        gmem_options_unref(o);
        return region;
}

int main(void)
{
        static const unsigned node1[] = { 1 }, both[] = { 0, 1 };
        _cleanup_close_ int kvm = -1, vm = -1;
        uint64_t per_node[MAX_NODES];
        gmem_client *client;
        gmem_region *bind, *interleave;
        struct test_env e;

        setvbuf(stdout, NULL, _IOLBF, 0);
        ASSERT(numa_available() >= 0);
        if (numa_num_configured_nodes() < 2) {
                fprintf(stderr, "this test needs at least 2 NUMA nodes; it runs in the vm tier\n");
                return 1; /* a failure, never a skip: the vm tier must give it nodes */
        }
        kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        ASSERT(kvm >= 0);
        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        ASSERT(vm >= 0);

        ASSERT_OK(test_env_start(&e, NULL));
        ASSERT_OK(gmem_client_new(e.address, &client));

        bind = create(client, vm, GMEM_POLICY_BIND, node1, 1);
        numa_locate_pages(gmem_region_get_fd(bind), REGION_SIZE, per_node);
        printf("bind to node 1: %" PRIu64 " bytes on node 0, %" PRIu64 " on node 1\n", per_node[0], per_node[1]);
        ASSERT(per_node[1] == REGION_SIZE);
        check_daemon_agrees(bind, per_node);

        interleave = create(client, vm, GMEM_POLICY_INTERLEAVE, both, 2);
        numa_locate_pages(gmem_region_get_fd(interleave), REGION_SIZE, per_node);
        printf("interleave 0-1: %" PRIu64 " bytes on node 0, %" PRIu64 " on node 1\n", per_node[0], per_node[1]);
        ASSERT(per_node[0] + per_node[1] == REGION_SIZE);
        /* Page interleave puts every other page on each node. */
        ASSERT(per_node[0] >= REGION_SIZE * 45 / 100 && per_node[1] >= REGION_SIZE * 45 / 100);
        check_daemon_agrees(interleave, per_node);

        ASSERT_OK(gmem_region_release(bind));
        ASSERT_OK(gmem_region_release(interleave));
        gmem_region_unref(bind);
        gmem_region_unref(interleave);
        gmem_client_unref(client);
        ASSERT_OK(test_env_stop(&e));
        printf("ok: gmemd placement matches the kernel's page locations on 2 nodes\n");
        return 0;
}
