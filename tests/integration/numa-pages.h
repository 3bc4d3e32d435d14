/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where a guest_memfd's pages are, asked of the kernel (move_pages through
 * libnuma) on the test's own mapping: the vm tier's independent check. */
#pragma once

#include <stdint.h>

#define NUMA_PAGES_MAX_NODES 8

/* Bytes of @fd's first @size bytes per node into per_node[0 .. 8). Every
 * page must be in memory already (asserted with mincore() before mapping
 * them, so that the check itself allocates nothing). */
void numa_locate_pages(int fd, uint64_t size, uint64_t per_node[NUMA_PAGES_MAX_NODES]);
