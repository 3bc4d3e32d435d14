/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vm tier: TLB-miss-heavy random guest reads over memory bound to node 1,
 * from a vCPU on node 0 that faulted it in, with KVM_CAP_NUMA_AWARE_PAGE_TABLES
 * (asked for through gmemd) on and off in the same run; prints page-table
 * locality from the per-node SecPageTables (cross-checked with KVM's stats) and
 * the access-time ratio. Needs the gmem kernel
 * and >= 2 nodes. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <numa.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "gmem.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "test-guest.h"
#include "util.h"

#define TOUCH_GPA 0x1000
#define READ_GPA 0x1100
#define DATA_START (1ULL << 20)

/*
 * 32-bit protected mode, flat segments, no guest paging: a guest address is
 * a guest physical address, so every access that misses the TLB walks KVM's
 * page tables (NPT/EPT), the thing this measures.
 *
 * touch (esi = size):    mov edx, DATA_START
 *                   1:   mov [edx], edx; add edx, 4096; cmp edx, esi; jb 1b; hlt
 * read (ecx = count, eax = seed, esi = (size - 1) & ~4095):
 *                   1:   imul eax, eax, 1103515245; add eax, 12345
 *                        mov edx, eax; shr edx, 4; and edx, esi
 *                        mov ebx, [edx]; dec ecx; jnz 1b; hlt
 */
static const uint8_t touch_code[] = {
        0xba, DATA_START & 0xff, (DATA_START >> 8) & 0xff, (DATA_START >> 16) & 0xff, DATA_START >> 24,
        0x89, 0x12,                               /* mov [edx], edx */
        0x81, 0xc2, 0x00, 0x10, 0x00, 0x00,       /* add edx, 4096 */
        0x39, 0xf2,                               /* cmp edx, esi */
        0x72, 0xf4,                               /* jb -12 */
        0xf4,
};
static const uint8_t read_code[] = {
        0x69, 0xc0, 0x6d, 0x4e, 0xc6, 0x41,       /* imul eax, eax, 1103515245 */
        0x05, 0x39, 0x30, 0x00, 0x00,             /* add eax, 12345 */
        0x89, 0xc2,                               /* mov edx, eax */
        0xc1, 0xea, 0x04,                         /* shr edx, 4 */
        0x21, 0xf2,                               /* and edx, esi */
        0x8b, 0x1a,                               /* mov ebx, [edx] */
        0x49,                                     /* dec ecx */
        0x75, 0xe9,                               /* jnz -23 */
        0xf4,
};

struct guest {
        struct test_guest g;
        uint64_t local, fallback;  /* KVM's stats, NUMA-aware page tables only */
        uint64_t node0, node1;     /* page tables the faults created on each node */
};

static uint64_t arg_size = 256 * MIB;
static uint64_t arg_reads = 4000000;
static unsigned arg_rounds = 5;

static void set_protected_mode(int vcpu)
{
        struct kvm_sregs s;
        struct kvm_segment code = {
                .base = 0, .limit = 0xffffffff, .selector = 0x8, .type = 0xb,
                .present = 1, .s = 1, .db = 1, .g = 1,
        };
        struct kvm_segment data = code;

        data.selector = 0x10;
        data.type = 0x3;
        ASSERT_OK(ioctl(vcpu, KVM_GET_SREGS, &s));
        s.cs = code;
        s.ds = s.es = s.ss = s.fs = s.gs = data;
        s.cr0 |= 1; /* PE, no PG */
        ASSERT_OK(ioctl(vcpu, KVM_SET_SREGS, &s));
}

static void run_at(struct guest *g, uint64_t rip, uint64_t rax, uint64_t rcx, uint64_t rsi)
{
        struct kvm_regs regs = { .rip = rip, .rax = rax, .rcx = rcx, .rsi = rsi, .rflags = 0x2 };

        test_guest_run(&g->g, &regs);
}

static void read_stats(struct guest *g)
{
        ASSERT_OK(test_kvm_vm_stat(g->g.vm, "pt_pages_node_local", &g->local));
        ASSERT_OK(test_kvm_vm_stat(g->g.vm, "pt_pages_node_fallback", &g->fallback));
}

static void guest_setup(struct guest *g, gmem_client *client, bool numa_page_tables)
{
        static const unsigned node1 = 1;
        uint64_t node0_before, node1_before;
        gmem_options *o;

        ASSERT_OK(gmem_options_new(&o));
        ASSERT_OK(gmem_options_set_name(o, numa_page_tables ? "bench-npt-on" : "bench-npt-off"));
        ASSERT_OK(gmem_options_set_policy(o, GMEM_POLICY_BIND));
        ASSERT_OK(gmem_options_set_nodes(o, &node1, 1));
        ASSERT_OK(gmem_options_set_populate(o, true));
        ASSERT_OK(gmem_options_set_numa_page_tables(o, numa_page_tables));
        test_guest_new(&g->g, client, arg_size, o);
        gmem_options_unref(o);

        memcpy(g->g.mem + TOUCH_GPA, touch_code, sizeof(touch_code));
        memcpy(g->g.mem + READ_GPA, read_code, sizeof(read_code));
        set_protected_mode(g->g.vcpu);

        /* The vCPU, on node 0, faults in all of the memory (on node 1). */
        ASSERT_OK(test_node_sec_page_tables(0, &node0_before));
        ASSERT_OK(test_node_sec_page_tables(1, &node1_before));
        run_at(g, TOUCH_GPA, 0, 0, arg_size);
        ASSERT_OK(test_node_sec_page_tables(0, &g->node0));
        ASSERT_OK(test_node_sec_page_tables(1, &g->node1));
        g->node0 -= node0_before;
        g->node1 -= node1_before;
        ASSERT(*(uint32_t *) (g->g.mem + arg_size - 4096) == (uint32_t) (arg_size - 4096));
        read_stats(g);
}

static uint64_t timed_reads(struct guest *g, unsigned round)
{
        uint64_t t0 = bench_now_ns();

        run_at(g, READ_GPA, 0x2545f491u + round, arg_reads, (arg_size - 1) & ~4095ULL);
        return bench_now_ns() - t0;
}

static int parse_args(int argc, char *argv[])
{
        static const struct option options[] = {
                { "size", required_argument, NULL, 's' },
                { "reads", required_argument, NULL, 'n' },
                { "rounds", required_argument, NULL, 'r' },
                {}
        };
        unsigned v;
        int c;

        while ((c = getopt_long(argc, argv, "s:n:r:", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        if (parse_size(optarg, &arg_size) < 0 || arg_size < 4 * MIB || arg_size > 2 * GIB ||
                            (arg_size & (arg_size - 1))) {
                                fprintf(stderr, "bench: --size must be a power of two from 4M to 2G\n");
                                return -EINVAL;
                        }
                        break;
                case 'n':
                        if (parse_uint(optarg, &v) < 0 || v == 0)
                                return -EINVAL;
                        arg_reads = v;
                        break;
                case 'r':
                        if (parse_uint(optarg, &v) < 0 || v == 0 || v > 100)
                                return -EINVAL;
                        arg_rounds = v;
                        break;
                default:
                        fprintf(stderr, "usage: bench-numa-page-tables [--size 256M] [--reads N] [--rounds N]\n");
                        return -EINVAL;
                }
        return 0;
}

int main(int argc, char *argv[])
{
        _cleanup_close_ int kvm = -1;
        struct guest on = {}, off = {};
        uint64_t t_on[100], t_off[100];
        struct bench_env env;
        gmem_client *client;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (parse_args(argc, argv) < 0)
                return EXIT_FAILURE;
        kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (numa_available() < 0 || numa_num_configured_nodes() < 2 || kvm < 0 ||
            ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_NUMA_AWARE_PAGE_TABLES) <= 0) {
                fprintf(stderr, "bench-numa-page-tables needs >= 2 NUMA nodes and the gmem kernel "
                                "(KVM_CAP_NUMA_AWARE_PAGE_TABLES); it runs in the vm tier\n");
                return EXIT_FAILURE;
        }
        printf("bench-numa-page-tables: %s bound to node 1, vCPU on node 0, %" PRIu64 " random reads x %u rounds\n",
               format_bytes((char[FORMAT_BYTES_MAX]) {}, FORMAT_BYTES_MAX, arg_size), arg_reads, arg_rounds);
        bench_print_host(stdout);
        ASSERT_OK(numa_run_on_node(0));

        ASSERT_OK(bench_env_start(&env));
        ASSERT_OK(gmem_client_new(env.env.address, &client));
        guest_setup(&on, client, true);
        guest_setup(&off, client, false);

        /* Alternate, so noise falls on both alike. */
        for (unsigned i = 0; i < arg_rounds; i++) {
                t_on[i] = timed_reads(&on, i);
                t_off[i] = timed_reads(&off, i);
                printf("round %u: on %.1f ms, off %.1f ms\n", i, t_on[i] / 1e6, t_off[i] / 1e6);
        }
        read_stats(&on);
        read_stats(&off);

        uint64_t m_on = bench_median_ns(t_on, arg_rounds), m_off = bench_median_ns(t_off, arg_rounds);
        printf("\n%-24s %14s %14s %14s %10s %16s\n", "numa_page_tables", "pt on node 1", "pt on node 0",
               "stat local", "fallback", "ns per read");
        printf("%-24s %14" PRIu64 " %14" PRIu64 " %14" PRIu64 " %10" PRIu64 " %16.1f\n", "on", on.node1, on.node0,
               on.local, on.fallback, (double) m_on / (double) arg_reads);
        printf("%-24s %14" PRIu64 " %14" PRIu64 " %14" PRIu64 " %10" PRIu64 " %16.1f\n", "off (baseline)", off.node1,
               off.node0, off.local, off.fallback, (double) m_off / (double) arg_reads);
        printf("\nRATIO access time on / off (median of %u rounds): %.3f\n", arg_rounds, (double) m_on / (double) m_off);
        printf("page-table locality (share on the memory's node 1): on %.0f%%, off %.0f%%\n",
               100.0 * on.node1 / (double) (on.node0 + on.node1 ? on.node0 + on.node1 : 1),
               100.0 * off.node1 / (double) (off.node0 + off.node1 ? off.node0 + off.node1 : 1));

        test_guest_done(&on.g);
        test_guest_done(&off.g);
        gmem_client_unref(client);
        ASSERT_OK(bench_env_stop(&env));
        return EXIT_SUCCESS;
}
