/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libgmem against the real gmemd: the guest_memfd it makes on the VMM side
 * is host-touchable for shared regions and private otherwise, and a
 * released region's calls fail -ENOENT (gmem.h, docs/dbus-api.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gmem.h"
#include "harness.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "bus-contract.h"
#include "util.h"
#include "test-guest.h"

#define SIZE (2ULL << 20)

static gmem_region *create(gmem_client *client, int vm, bool shared)
{
        gmem_options *o;
        gmem_region *region;

        ASSERT_OK(gmem_options_new(&o));
        ASSERT_OK(gmem_options_set_shared(o, shared));
        ASSERT_OK(gmem_options_set_populate(o, true));
        region = test_region_create(client, vm, SIZE, o);
        gmem_options_unref(o);
        return region;
}

/* Whether the host can fault the region's memory in through a mapping:
 * shared guest_memfd memory yes, private memory no (EFAULT). */
static bool host_can_touch(gmem_region *region)
{
        void *map = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, gmem_region_get_fd(region), 0);
        int r;

        ASSERT(map != MAP_FAILED);
        r = madvise(map, SIZE, MADV_POPULATE_READ);
        ASSERT(r == 0 || errno == EFAULT);
        munmap(map, SIZE);
        return r == 0;
}

/* Three named regions: ListRegions newest first with what each was made with,
 * and pages of them through gmem_client_list_regions_filtered(). */
static void test_listings(gmem_client *client, int vm)
{
        static const char *const names[] = { "list-a", "list-b", "list-c" };
        gmem_region *regions[ELEMENTSOF(names)];
        gmem_region_info *infos;
        uint64_t id;
        size_t n;

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                gmem_options *o;

                ASSERT_OK(gmem_options_new(&o));
                ASSERT_OK(gmem_options_set_name(o, names[i]));
                regions[i] = test_region_create(client, vm, SIZE * (i + 1), o);
                gmem_options_unref(o);
        }
        ASSERT_OK(gmem_client_list_regions(client, &infos, &n));
        ASSERT(n == ELEMENTSOF(names));
        for (size_t i = 0; i < n; i++) {
                size_t k = n - 1 - i; /* newest first */

                ASSERT(streq(infos[i].path, gmem_region_get_path(regions[k])) && streq(infos[i].name, names[k]) &&
                       infos[i].size == SIZE * (k + 1) && streq(infos[i].policy, "default") &&
                       infos[i].owner_uid == getuid());
        }
        ASSERT_OK(gmem_region_id_from_path(infos[1].path, &id));
        gmem_region_info_free(infos, n);

        ASSERT_OK(gmem_client_list_regions_filtered(client, -1, 0, 1, 1, &infos, &n));
        ASSERT(n == 1 && streq(infos[0].name, "list-b"));
        gmem_region_info_free(infos, n);
        ASSERT_OK(gmem_client_list_regions_filtered(client, getuid(), id, 0, 0, &infos, &n));
        ASSERT(n == 1 && streq(infos[0].name, "list-a"));
        gmem_region_info_free(infos, n);
        ASSERT_OK(gmem_client_list_regions_filtered(client, 4242, 0, 0, 0, &infos, &n));
        ASSERT(n == 0 && infos);
        gmem_region_info_free(infos, n);
        ASSERT(gmem_client_list_regions_filtered(client, (int64_t) UINT32_MAX + 1, 0, 0, 0, &infos, &n) == -EINVAL);
        ASSERT(gmem_client_list_regions_filtered(client, -1, 0, 0, 0, NULL, &n) == -EINVAL);
        printf("ok: ListRegions through libgmem newest first, as created; pages by offset/limit, below_id, uid\n");

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                ASSERT_OK(gmem_region_release(regions[i]));
                gmem_region_unref(regions[i]);
        }
}

int main(void)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm = -1;
        gmem_node_bytes *resident = NULL;
        gmem_client *client;
        gmem_region *shared, *private;
        struct test_env e;
        size_t n;

        setvbuf(stdout, NULL, _IOLBF, 0);
        ASSERT(kvm >= 0);
        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        ASSERT(vm >= 0);
        ASSERT_OK(test_env_start(&e, NULL));
        ASSERT_OK(gmem_client_new(e.address, &client));

        test_listings(client, vm);
        shared = create(client, vm, true);
        private = create(client, vm, false);
        ASSERT(host_can_touch(shared));
        ASSERT(!host_can_touch(private));
        printf("ok: shared regions are host-touchable, private ones (shared=false) are not\n");

        ASSERT_OK(gmem_region_release(private));
        ASSERT(gmem_region_get_resident(private, &resident, &n) == -ENOENT);
        ASSERT(gmem_region_populate(private, 0, SIZE) == -ENOENT);
        printf("ok: a released region's calls fail -ENOENT (%s)\n", gmem_client_get_error_name(client));

        ASSERT_OK(gmem_region_release(shared));
        gmem_region_unref(shared);
        gmem_region_unref(private);
        gmem_client_unref(client);
        ASSERT_OK(test_env_stop(&e));
        return 0;
}
