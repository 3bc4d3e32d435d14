/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* End to end on the gmem kernel with >= 2 nodes: a VMM asks gmemd for a region
 * bound to node 1 with numa_page_tables, its vCPU runs on node 0 and touches
 * the memory, and the per-node SecPageTables show the new page tables on node 1,
 * all counted by KVM's pt_pages_node_local stat; without the option they stay
 * on node 0 (the vCPU's node) and the stats, which count only NUMA-aware page
 * tables, do not move. Runs in the vm tier. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <numa.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gmem.h"
#include "harness.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "test-guest.h"
#include "util.h"

#define REGION_SIZE (2ULL << 20)
#define CODE_GPA 0x1000

/*
 * Real mode: touch one byte in each 4 KiB page from 64 KiB to 640 KiB.
 *      mov ax, 0x1000
 * 1:   mov es, ax
 *      mov byte [es:0], 1
 *      add ax, 0x100
 *      cmp ax, 0xa000
 *      jb 1b
 *      hlt
 */
static const uint8_t guest_code[] = {
        0xb8, 0x00, 0x10, 0x8e, 0xc0, 0x26, 0xc6, 0x06, 0x00, 0x00, 0x01,
        0x05, 0x00, 0x01, 0x3d, 0x00, 0xa0, 0x72, 0xf0, 0xf4,
};

static uint64_t read_stat(int vm, const char *name)
{
        uint64_t v;
        int r = test_kvm_vm_stat(vm, name, &v);

        if (r < 0)
                fprintf(stderr, "VM stat '%s': %s\n", name, strerror(-r));
        ASSERT_OK(r);
        return v;
}

struct pt_counts {
        uint64_t local, fallback; /* KVM's stats for the VM */
        uint64_t node0, node1;    /* new page tables on each node (SecPageTables) */
};

static void node_pt_pages(uint64_t *node0, uint64_t *node1)
{
        ASSERT_OK(test_node_sec_page_tables(0, node0));
        ASSERT_OK(test_node_sec_page_tables(1, node1));
}

/* Run the guest on a vCPU whose thread is on node 0 (main() put it there);
 * returns the page-table stats of its VM and where its page tables went. */
static void run_guest(gmem_client *client, bool numa_page_tables, struct pt_counts *c)
{
        static const unsigned node1 = 1;
        uint64_t pt0, pt1;
        struct kvm_regs regs = { .rip = CODE_GPA, .rflags = 0x2 };
        struct kvm_sregs sregs;
        struct test_guest g;
        gmem_options *o;

        ASSERT_OK(gmem_options_new(&o));
        ASSERT_OK(gmem_options_set_policy(o, GMEM_POLICY_BIND));
        ASSERT_OK(gmem_options_set_nodes(o, &node1, 1));
        ASSERT_OK(gmem_options_set_populate(o, true));
        ASSERT_OK(gmem_options_set_numa_page_tables(o, numa_page_tables));
        test_guest_new(&g, client, REGION_SIZE, o);
        gmem_options_unref(o);

        memcpy(g.mem + CODE_GPA, guest_code, sizeof(guest_code));
        ASSERT_OK(ioctl(g.vcpu, KVM_GET_SREGS, &sregs));
        sregs.cs.base = sregs.cs.selector = 0;
        sregs.ds.base = sregs.ds.selector = sregs.es.base = sregs.es.selector = 0;
        ASSERT_OK(ioctl(g.vcpu, KVM_SET_SREGS, &sregs));
        node_pt_pages(&pt0, &pt1);
        test_guest_run(&g, &regs);
        ASSERT(g.mem[0x10000] == 1 && g.mem[0x9f000] == 1);
        node_pt_pages(&c->node0, &c->node1);
        c->node0 -= pt0;
        c->node1 -= pt1;

        c->local = read_stat(g.vm, "pt_pages_node_local");
        c->fallback = read_stat(g.vm, "pt_pages_node_fallback");
        test_guest_done(&g);
}

int main(void)
{
        _cleanup_close_ int kvm = -1;
        struct pt_counts on, off;
        gmem_client *client;
        struct test_env e;

        setvbuf(stdout, NULL, _IOLBF, 0);
        ASSERT(numa_available() >= 0);
        if (numa_num_configured_nodes() < 2) {
                fprintf(stderr, "this test needs at least 2 NUMA nodes; it runs in the vm tier\n");
                return 1;
        }
        kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        ASSERT(kvm >= 0);
        if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_NUMA_AWARE_PAGE_TABLES) <= 0) {
                fprintf(stderr, "this kernel lacks KVM_CAP_NUMA_AWARE_PAGE_TABLES; run it on the gmem kernel\n");
                return 1;
        }
        /* The faulting vCPU thread lives on node 0; the memory on node 1. */
        ASSERT_OK(numa_run_on_node(0));

        ASSERT_OK(test_env_start(&e, NULL));
        ASSERT_OK(gmem_client_new(e.address, &client));
        run_guest(client, true, &on);
        run_guest(client, false, &off);
        printf("with numa_page_tables:    %" PRIu64 " new page-table pages on node 1 (the memory's), %" PRIu64
               " on node 0; stats: %" PRIu64 " local, %" PRIu64 " fallback\n",
               on.node1, on.node0, on.local, on.fallback);
        printf("without numa_page_tables: %" PRIu64 " new page-table pages on node 1 (the memory's), %" PRIu64
               " on node 0; stats: %" PRIu64 " local, %" PRIu64 " fallback\n",
               off.node1, off.node0, off.local, off.fallback);
        /* The root is not placed: it follows the vCPU thread to node 0 either way. */
        ASSERT(on.local > 0 && on.fallback == 0 && on.node1 == on.local);
        ASSERT(off.local == 0 && off.fallback == 0 && off.node1 == 0 && off.node0 > 0);
        gmem_client_unref(client);
        ASSERT_OK(test_env_stop(&e));
        printf("ok: gmemd's numa_page_tables puts the VM's page tables on the memory's node\n");
        return 0;
}
