/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* move_pages() (libnuma) over the test's own mapping of a guest_memfd. */
#include <numa.h>
#include <numaif.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "macro.h"
#include "numa-pages.h"

void numa_locate_pages(int fd, uint64_t size, uint64_t per_node[NUMA_PAGES_MAX_NODES])
{
        size_t page = (size_t) sysconf(_SC_PAGESIZE), n = size / page;
        char *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        _cleanup_free_ void **pages = calloc(n, sizeof(void *));
        _cleanup_free_ int *status = calloc(n, sizeof(int));
        _cleanup_free_ unsigned char *vec = calloc(n, 1);

        ASSERT(map != MAP_FAILED && pages && status && vec);
        /* gmemd populated every page, before we touch any: all are in memory.
         * Only then map them for move_pages(), which allocates nothing now. */
        ASSERT_OK(mincore(map, size, vec));
        for (size_t i = 0; i < n; i++)
                ASSERT(vec[i] & 1);
        ASSERT_OK(madvise(map, size, MADV_POPULATE_READ));
        for (size_t i = 0; i < n; i++)
                pages[i] = map + i * page;
        ASSERT_OK(numa_move_pages(0, n, pages, NULL, status, 0));
        memset(per_node, 0, NUMA_PAGES_MAX_NODES * sizeof(uint64_t));
        for (size_t i = 0; i < n; i++) {
                ASSERT(status[i] >= 0 && status[i] < NUMA_PAGES_MAX_NODES);
                per_node[status[i]] += page;
        }
        munmap(map, size);
}
