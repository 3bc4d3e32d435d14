/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Region lifetime and memory operations: map the guest_memfd, apply the NUMA
 * placement to the mapping, populate, discard, measure. No bus code here. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "numa-nodes.h"
#include "region.h"

static uint64_t page_size(void)
{
        return (uint64_t) sysconf(_SC_PAGESIZE);
}

/* Map the whole guest_memfd and mbind() the mapping: the way to place memory
 * on a kernel without KVM_GUEST_MEMFD_SET_POLICY. -ENODEV: it cannot be mapped. */
static int region_map_and_place(struct region *region, int fd, const struct placement *placement)
{
        void *map = mmap(NULL, region->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

        if (map == MAP_FAILED)
                return negative_errno();
        region->map = map;
        return node_apply_placement(map, region->size, placement);
}

int region_new(uint64_t id, const char *name, int fd, uint64_t size, bool shared,
               struct placement *placement, struct region **ret)
{
        _cleanup_close_ int owned_fd = fd;
        _cleanup_(placement_done) struct placement owned = TAKE_STRUCT(*placement);
        _cleanup_(region_freep) struct region *region = NULL;
        struct stat st;
        int r;

        region = calloc(1, sizeof(*region));
        if (!region)
                return -ENOMEM;
        region->fd = -1;
        region->name = strdup(name);
        if (!region->name)
                return -ENOMEM;
        region->size = size;
        /* Private memory is never accessed through a mapping: where the kernel
         * can (gmem series), place it through the guest_memfd, unmapped. */
        r = shared ? -ENOTTY : node_apply_placement_fd(fd, size, &owned);
        if (r == -ENOTTY)
                r = region_map_and_place(region, fd, &owned);
        if (r < 0)
                return r;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        region->dev = st.st_dev;
        region->ino = st.st_ino;
        region->id = id;
        gmem_region_path_format(id, region->path);
        region->shared = shared;
        region->placement = TAKE_STRUCT(owned);
        region->fd = TAKE_FD(owned_fd);
        *ret = TAKE_PTR(region);
        return 0;
}

void region_free(struct region *region)
{
        if (!region)
                return;
        if (region->map)
                munmap(region->map, region->size);
        safe_close(region->fd);
        placement_done(&region->placement);
        free(region->resident);
        free(region->owner_bus_name);
        free(region->name);
        free(region);
}

void region_drop_memory(struct region *region)
{
        if (region->map && mmap(region->map, region->size, PROT_NONE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED)
                return; /* keep both: freed with the region */
        region->fd = safe_close(region->fd);
}

int region_check_range(const struct region *region, uint64_t offset, uint64_t length, char *msg, size_t msg_size)
{
        uint64_t page = page_size();

        if (length == 0) {
                snprintf(msg, msg_size, "length is 0; give the number of bytes to act on");
                return -EINVAL;
        }
        if (offset % page || length % page) {
                snprintf(msg, msg_size, "offset %" PRIu64 " and length %" PRIu64 " must be multiples of the page size %" PRIu64,
                         offset, length, page);
                return -EINVAL;
        }
        if (offset > region->size || length > region->size - offset) {
                snprintf(msg, msg_size, "range %" PRIu64 "+%" PRIu64 " reaches past the end of the region (size %" PRIu64 ")",
                         offset, length, region->size);
                return -EINVAL;
        }
        return 0;
}

int region_populate(struct region *region, uint64_t offset, uint64_t length)
{
        /* fallocate() allocates under the inode's NUMA policy but leaves the
         * pages uncleared; the first access clears them. Doing that access
         * here makes the memory ready for the guest, and visible to mincore. */
        if (fallocate(region->fd, FALLOC_FL_KEEP_SIZE, (off_t) offset, (off_t) length) < 0)
                return negative_errno();
        if (region->shared && region->map && madvise((char *) region->map + offset, length, MADV_POPULATE_READ) < 0)
                return negative_errno();
        return 0;
}

int region_discard(struct region *region, uint64_t offset, uint64_t length)
{
        if (fallocate(region->fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, (off_t) offset, (off_t) length) < 0)
                return negative_errno();
        return 0;
}

int region_measure_resident(struct region *region, uint64_t *per_node, unsigned n_max)
{
        /* The kernel's per-node counts (gmem series) see every page, private
         * ones too, for the price of one ioctl. */
        int r = node_resident_from_kernel(region->fd, per_node, n_max);

        if (r != -ENOTTY)
                return r;
        /* Without them: private pages cannot be mapped by the host, so only
         * shared regions can be measured, through the mapping. */
        if (!region->shared || !region->map)
                return 0;
        return node_measure_resident(region->map, region->size, per_node, n_max);
}
