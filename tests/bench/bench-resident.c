/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What measuring a region's residency costs gmemd: the kernel's per-node
 * counts (KVM_GUEST_MEMFD_GET_INFO, gmem series) against the mapping path
 * (mincore + MADV_POPULATE_READ + move_pages), on the same populated region. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <numa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "numa-nodes.h"

#define ROUNDS 20
#define MAX_NODES 64

typedef int (*measure_fn)(int fd, void *map, size_t size, uint64_t *per_node);

static int by_kernel(int fd, void *map, size_t size, uint64_t *per_node)
{
        return node_resident_from_kernel(fd, per_node, MAX_NODES);
}

static int by_mapping(int fd, void *map, size_t size, uint64_t *per_node)
{
        return node_measure_resident(map, size, per_node, MAX_NODES);
}

/* Median ns of one measurement; the bytes found must be the whole region. */
static uint64_t time_measure(measure_fn fn, int fd, void *map, size_t size)
{
        uint64_t ns[ROUNDS];

        for (unsigned i = 0; i < ROUNDS; i++) {
                uint64_t per_node[MAX_NODES] = {}, total = 0, t0 = bench_now_ns();

                if (fn(fd, map, size, per_node) < 0) {
                        fprintf(stderr, "measuring failed: %s\n", strerror(errno));
                        exit(1);
                }
                ns[i] = bench_now_ns() - t0;
                for (unsigned n = 0; n < MAX_NODES; n++)
                        total += per_node[n];
                if (total != size) {
                        fprintf(stderr, "measured %" PRIu64 " bytes of %zu\n", total, size);
                        exit(1);
                }
        }
        return bench_median_ns(ns, ROUNDS);
}

int main(void)
{
        static const size_t sizes[] = { 16 * MIB, 256 * MIB };
        _cleanup_close_ int kvm = -1, vm = -1;

        bench_require_host();
        kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (kvm < 0 || ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_INFO) <= 0) {
                printf("SKIP: this kernel has no KVM_CAP_GUEST_MEMFD_INFO (gmem kernel series)\n");
                return BENCH_EXIT_SKIP;
        }
        vm = bench_make_vm();
        if (vm < 0)
                return 1;
        bench_print_host(stdout);
        printf("Residency of one populated shared region, median of %d reads:\n", ROUNDS);
        printf("  %10s  %14s  %14s  %8s\n", "size", "mapping (us)", "kernel (us)", "ratio");
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                size_t size = sizes[i];
                _cleanup_close_ int fd = bench_make_gmem(vm, size);
                uint64_t mapping, kernel;
                void *map;

                if (fd < 0)
                        return 1;
                map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (map == MAP_FAILED || madvise(map, size, MADV_POPULATE_WRITE) < 0)
                        return 1;
                mapping = time_measure(by_mapping, fd, map, size);
                kernel = time_measure(by_kernel, fd, map, size);
                printf("  %7zu MiB  %14.1f  %14.1f  %8.4f\n", (size_t) (size / MIB), mapping / 1000.0, kernel / 1000.0,
                       (double) kernel / (double) mapping);
                munmap(map, size);
        }
        printf("(ratio = kernel / mapping; the mapping path is the baseline, taken in the same run)\n");
        return 0;
}
