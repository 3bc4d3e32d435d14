/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libnuma-backed node queries, NUMA policy of regions (mbind() of a mapping
 * or the guest_memfd ioctl) and per-node residency measurement for gmemd. */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm.h"
#include "macro.h"
#include "numa-nodes.h"

#define MEASURE_BATCH 4096U

int node_init(void)
{
        return numa_available() < 0 ? -EOPNOTSUPP : 0;
}

unsigned node_count_max(void)
{
        return (unsigned) numa_max_node() + 1;
}

int node_query(struct node_state **ret, size_t *n_ret)
{
        unsigned max = node_count_max();
        _cleanup_free_ struct node_state *nodes = calloc(max, sizeof(*nodes));
        size_t n = 0;

        if (!nodes)
                return -ENOMEM;
        for (unsigned i = 0; i < max; i++) {
                long long free_bytes = 0;
                long long total;

                if (!numa_bitmask_isbitset(numa_nodes_ptr, i))
                        continue;
                total = numa_node_size64((int) i, &free_bytes);
                if (total <= 0)
                        continue; /* memoryless node */
                nodes[n++] = (struct node_state) {
                        .node = i,
                        .total = (uint64_t) total,
                        .free = (uint64_t) free_bytes,
                };
        }
        *ret = TAKE_PTR(nodes);
        *n_ret = n;
        return 0;
}

static void bitmask_freep(struct bitmask **b)
{
        if (*b)
                numa_bitmask_free(*b);
}

/* The mbind() mode and node mask of a placement; mode -1 for the default
 * policy, which gmemd leaves alone. */
static int placement_mode_mask(const struct placement *p, int *ret_mode, struct bitmask **ret_mask)
{
        struct bitmask *mask;

        switch (p->applied) {
        case POLICY_DEFAULT:
                *ret_mode = -1;
                return 0;
        case POLICY_BIND:
                *ret_mode = MPOL_BIND;
                break;
        case POLICY_PREFERRED:
                *ret_mode = MPOL_PREFERRED;
                break;
        case POLICY_INTERLEAVE:
                *ret_mode = MPOL_INTERLEAVE;
                break;
        default:
                return -EINVAL;
        }
        mask = numa_allocate_nodemask();
        if (!mask)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_nodes; i++)
                numa_bitmask_setbit(mask, p->nodes[i]);
        *ret_mask = mask;
        return 0;
}

int node_apply_placement(void *addr, size_t length, const struct placement *p)
{
        _cleanup_(bitmask_freep) struct bitmask *mask = NULL;
        int mode, r;

        r = placement_mode_mask(p, &mode, &mask);
        if (r < 0 || mode < 0)
                return r;
        /* MPOL_MF_STRICT | MPOL_MF_MOVE would try to migrate, which guest_memfd
         * folios never do; the policy applies to what is allocated from now on. */
        if (mbind(addr, length, mode, mask->maskp, mask->size + 1, 0) < 0)
                return negative_errno();
        return 0;
}

int node_apply_placement_fd(int fd, size_t length, const struct placement *p)
{
        _cleanup_(bitmask_freep) struct bitmask *mask = NULL;
        int mode, r;

        r = placement_mode_mask(p, &mode, &mask);
        if (r < 0)
                return r;
        /* Even the default policy is set: the call tells whether the kernel can. */
        if (mode < 0)
                return kvm_guest_memfd_set_policy(fd, 0, length, MPOL_DEFAULT, NULL, 0);
        return kvm_guest_memfd_set_policy(fd, 0, length, mode, mask->maskp, mask->size + 1);
}

int node_resident_from_kernel(int fd, uint64_t *per_node, unsigned n_max)
{
        _cleanup_free_ uint64_t *pages = calloc(2 * (size_t) n_max ?: 2, sizeof(*pages));
        uint64_t page = (uint64_t) sysconf(_SC_PAGESIZE);
        struct kvm_guest_memfd_info info;
        int r;

        if (!pages)
                return -ENOMEM;
        r = kvm_guest_memfd_info(fd, -1, pages, n_max, &info);
        if (r < 0)
                return r;
        /* Shared and private pages both hold memory on the node. */
        for (unsigned i = 0; i < n_max && i < info.nr_nodes; i++)
                per_node[i] += (pages[2 * i] + pages[2 * i + 1]) * page;
        return 0;
}

static int locate_batch(void **pages, unsigned n, uint64_t *per_node, unsigned n_max, size_t page)
{
        int status[MEASURE_BATCH];

        if (n == 0)
                return 0;
        if (numa_move_pages(0, n, pages, NULL, status, 0) < 0)
                return negative_errno();
        for (unsigned i = 0; i < n; i++)
                if (status[i] >= 0 && (unsigned) status[i] < n_max)
                        per_node[status[i]] += page;
        return 0;
}

int node_measure_resident(void *addr, size_t length, uint64_t *per_node, unsigned n_max)
{
        size_t page = (size_t) sysconf(_SC_PAGESIZE);
        size_t n_pages = length / page;
        _cleanup_free_ unsigned char *vec = malloc(n_pages ? n_pages : 1);
        void *batch[MEASURE_BATCH];
        unsigned n = 0;
        int r;

        if (!vec)
                return -ENOMEM;
        if (mincore(addr, length, vec) < 0)
                return negative_errno();

        for (size_t i = 0; i < n_pages; i++) {
                size_t run;

                if (!(vec[i] & 1))
                        continue;
                /* Map the whole run of present pages in one call: it faults in
                 * page-cache pages, it never allocates over a present page. */
                for (run = 1; i + run < n_pages && (vec[i + run] & 1); run++)
                        ;
                if (madvise((char *) addr + i * page, run * page, MADV_POPULATE_READ) < 0 && errno != EFAULT)
                        return negative_errno();
                for (size_t j = i; j < i + run; j++) {
                        batch[n++] = (char *) addr + j * page;
                        if (n == MEASURE_BATCH) {
                                r = locate_batch(batch, n, per_node, n_max, page);
                                if (r < 0)
                                        return r;
                                n = 0;
                        }
                }
                i += run - 1;
        }
        return locate_batch(batch, n, per_node, n_max, page);
}
