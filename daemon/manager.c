/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The region registry: adding, finding, releasing, restoring at start and
 * keeping at stop, and the per-node and per-user sums over all regions. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "bus-contract.h"
#include "fdstore.h"
#include "list.h"
#include "log.h"
#include "manager.h"
#include "migration.h"
#include "numa-nodes.h"

int manager_new(struct manager **ret)
{
        struct manager *m = calloc(1, sizeof(*m));

        if (!m)
                return -ENOMEM;
        config_init(&m->config);
        m->kvm_fd = -1;
        m->next_id = 1;
        m->next_migration_id = 1;
        *ret = m;
        return 0;
}

struct manager *manager_free(struct manager *m)
{
        if (!m)
                return NULL;
        /* main.c stopped the regions, their workers and the clients. */
        assert(!m->regions && !m->populating && !m->clients && !m->migrations);
        kernel_features_done(&m->features);
        safe_close(m->kvm_fd);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        config_done(&m->config);
        free(m);
        return NULL;
}

struct region *manager_find_region(struct manager *m, uint64_t id)
{
        LIST_FOREACH(region, m->regions)
                if (region->id == id)
                        return region;
        return NULL;
}

struct region *manager_find_region_by_file(struct manager *m, const struct stat *st)
{
        LIST_FOREACH(region, m->regions)
                if (region->dev == st->st_dev && region->ino == st->st_ino)
                        return region;
        return NULL;
}

static void emit_region_signal(struct manager *m, const struct region *region, const char *member)
{
        _cleanup_free_ char *path = NULL;
        int r;

        if (!m->bus)
                return;
        r = gmem_region_path(region->id, &path);
        if (r >= 0)
                r = sd_bus_emit_signal(m->bus, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE, member, "o", path);
        if (r < 0)
                log_warning_errno(r, "Failed to emit %s for region %" PRIu64 ": %m", member, region->id);
}

void manager_add_region(struct manager *m, struct region *region)
{
        struct region *after = NULL;

        /* Newest first, whatever order a restore adds them in. */
        LIST_FOREACH(i, m->regions) {
                if (i->id < region->id)
                        break;
                after = i;
        }
        region->manager = m;
        LIST_INSERT_AFTER(m->regions, after, region);
        m->n_regions++;
        if (region->id >= m->next_id)
                m->next_id = region->id + 1;
        emit_region_signal(m, region, "RegionAdded");
}

/* Out of the registry; a worker still populating it stops at its next chunk
 * and the last one's completion frees it. */
static void manager_forget_region(struct manager *m, struct region *region)
{
        LIST_REMOVE(m->regions, region);
        m->n_regions--;
        atomic_store(&region->released, true);
        if (region->jobs == 0)
                region_free(region);
        else if (region->jobs == region->usage_holds)
                region_drop_memory(region); /* only the refresher has it: it lets go now */
}

void manager_release_region(struct manager *m, struct region *region, const char *why)
{
        emit_region_signal(m, region, "RegionRemoved");
        fdstore_remove_region(region);
        migration_region_released(m, region);
        log_info("Released region %" PRIu64 " '%s' (%" PRIu64 " bytes, uid %u): %s",
                 region->id, region->name, region->size, (unsigned) region->owner_uid, why);
        manager_forget_region(m, region);
}

void manager_restore(struct manager *m)
{
        struct region *restored = NULL, *held;
        struct stat st;

        fdstore_load(&restored);
        /* Oldest first: where two entries hold one guest_memfd, the lower id keeps it. */
        while (restored) {
                struct region *region = restored;

                LIST_FOREACH(i, restored)
                        if (i->id < region->id)
                                region = i;
                LIST_REMOVE(restored, region);
                held = fstat(region->fd, &st) < 0 ? NULL : manager_find_region_by_file(m, &st);
                if (held) {
                        log_warning("Region %" PRIu64 " in the fd store has the guest_memfd of region %" PRIu64
                                    "; dropping it", region->id, held->id);
                        fdstore_remove_region(region);
                        region_free(region);
                        continue;
                }
                manager_add_region(m, region);
                log_info("Restored region %" PRIu64 " '%s' (%" PRIu64 " bytes, uid %u%s)", region->id, region->name,
                         region->size, (unsigned) region->owner_uid, region->persist ? ", persistent" : "");
        }
}

void manager_stop(struct manager *m)
{
        if (m->n_regions > 0)
                log_info("Stopping: %u region(s)", m->n_regions);
        while (m->regions) {
                struct region *region = m->regions;

                if (region->stored) {
                        log_debug("Keeping region %" PRIu64 " in the fd store for the next gmemd", region->id);
                        manager_forget_region(m, region);
                } else
                        manager_release_region(m, region, "daemon is stopping");
        }
}

void manager_user_usage(struct manager *m, uid_t uid, unsigned *ret_count, uint64_t *ret_bytes)
{
        unsigned count = 0;
        uint64_t bytes = 0;

        LIST_FOREACH(region, m->regions)
                if (region->owner_uid == uid) {
                        bytes += region->size;
                        count++;
                }
        *ret_count = count;
        *ret_bytes = bytes;
}
