/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host NUMA access through libnuma (not "numa.h": that would shadow libnuma's): the node list, applying a
 * placement to a mapping with mbind(), and measuring residency per node. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "placement.h"

/* 0 if libnuma works on this host, -EOPNOTSUPP otherwise. */
int node_init(void);
/* Highest node number + 1: the size of per-node arrays. */
unsigned node_count_max(void);
/* All nodes with memory, sorted; *ret freed by the caller. outstanding = 0. */
int node_query(struct node_state **ret, size_t *n_ret);
/* mbind() the range of a shared mapping to the decided placement. */
int node_apply_placement(void *addr, size_t length, const struct placement *p);
/* The same for the first @length bytes of guest_memfd @fd, without a mapping
 * (KVM_GUEST_MEMFD_SET_POLICY; -ENOTTY on a kernel without it, even for the
 * default policy). */
int node_apply_placement_fd(int fd, size_t length, const struct placement *p);
/* Add the bytes guest_memfd @fd holds on each node, shared and private, to
 * per_node[0 .. n_max), from the kernel's counters (KVM_GUEST_MEMFD_GET_INFO;
 * -ENOTTY without it). Costs one ioctl, whatever the size. */
int node_resident_from_kernel(int fd, uint64_t *per_node, unsigned n_max);
/*
 * Add the bytes of [addr, addr + length) resident on each node to
 * per_node[0 .. n_max). Pages present in the page cache (mincore) but not
 * mapped here are mapped first, without allocating, then located with
 * move_pages(2) via libnuma.
 */
int node_measure_resident(void *addr, size_t length, uint64_t *per_node, unsigned n_max);

/* The node a strict bind to a single node (MPOL_BIND, one node) sends every
 * allocation at @addr of a mapping to; negative when the policy there is any
 * other or cannot be read. */
int node_strict_bind_at(void *addr);
/* 1 if no page of [addr, addr + length) is in memory (mincore), 0 if one is. */
int node_range_empty(void *addr, size_t length);

/* The nodes of the CPUs in @cpus ("0-3,8"), sorted; -EINVAL with a message
 * in @msg when it is no CPU list or names a CPU this host does not have. */
int node_of_cpus(const char *cpus, unsigned **ret, size_t *n_ret, char *msg, size_t msg_size);
/* @node's CPUs as a list ("0-3,8"), "" when it has none. */
int node_cpus(unsigned node, char *buf, size_t size);
/* The firmware's distance from @a to @b (10 = local), 0 when unknown. */
unsigned node_distance(unsigned a, unsigned b);

struct node_hugepages {
        uint64_t size;  /* bytes per page */
        uint64_t total; /* pages reserved on the node */
        uint64_t free;
};
/* The hugetlb page sizes of @node and their pools (up to @max). */
int node_hugepages(unsigned node, struct node_hugepages *pages, size_t max, size_t *n_ret);
/* Transparent huge pages: "always", "madvise", "never" or "unavailable". */
int node_thp_mode(char *buf, size_t size);
