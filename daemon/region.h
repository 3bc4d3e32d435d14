/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A guest_memfd region gmemd holds: its fd and the daemon's own mapping of
 * it, placement, ownership, and the memory operations on it. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bus-contract.h"
#include "macro.h"
#include "placement.h"

struct manager;
struct client;

struct region {
        struct manager *manager; /* the registry holding it; NULL until registered */
        uint64_t id;
        char path[GMEM_REGION_PATH_MAX]; /* its object path, spelled once: listings answer with it */
        char *name;
        uint64_t size;
        bool shared;  /* INIT_SHARED: host-mappable, residency measurable */
        bool persist; /* outlives the owner's bus connection */
        struct placement placement;

        uid_t owner_uid;
        pid_t owner_pid;

        int fd;    /* the daemon's reference to the guest_memfd */
        dev_t dev; /* ...and its file, to find it by file without a syscall a region */
        ino_t ino;
        void *map; /* MAP_SHARED mapping of the whole fd, where mbind() applies;
                    * NULL for private memory the kernel places without one */

        /* Not persistent: the owner's bus connection, which it dies with
         * (bus-caller.c), and that connection's unique name, kept in the fd
         * store so that a restarted gmemd finds the connection again. */
        struct client *owner;
        char *owner_bus_name;
        bool stored; /* in systemd's fd store (fdstore.c) */

        /* Population on worker threads (populate.c): while jobs > 0 the region
         * is only freed by the last job's completion, and released tells the
         * workers to stop. */
        unsigned jobs;
        unsigned usage_holds; /* of jobs, the residency refresher's (usage.c), which only reads map */
        atomic_bool released;

        /* Accounting (usage.c, event loop only): bytes resident per node as
         * last measured (NULL until then), that measurement's sequence number,
         * the sequence number of gmemd's last change to it, and when. */
        uint64_t *resident;
        uint64_t resident_seq, changed_seq;
        uint64_t measured_usec;
        struct region *next, *prev;
};

/*
 * Take over @fd (a guest_memfd of @size bytes) and apply @placement (moved
 * into the region): through the guest_memfd for private memory where the
 * kernel can (KVM_GUEST_MEMFD_SET_POLICY), else on a mapping of it, which
 * needs GUEST_MEMFD_FLAG_MMAP (-ENODEV without). On failure @fd is closed
 * and @placement released.
 */
int region_new(uint64_t id, const char *name, int fd, uint64_t size, bool shared,
               struct placement *placement, struct region **ret);
void region_free(struct region *region);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct region *, region_free);

/* A released region only the refresher still holds: close the fd and put an
 * empty placeholder where the mapping was (the refresher reads nothing then,
 * and the addresses are not reused until region_free()). */
void region_drop_memory(struct region *region);

/* Check that [offset, offset + length) is page-aligned and inside the region;
 * -EINVAL with a message for a person otherwise. */
int region_check_range(const struct region *region, uint64_t offset, uint64_t length, char *msg, size_t msg_size);
/* Allocate the range on the region's nodes and, for shared regions, clear
 * and map it so it is ready for the guest. */
int region_populate(struct region *region, uint64_t offset, uint64_t length);
/* Free the range (the guest sees zeroes or faults it in again). */
int region_discard(struct region *region, uint64_t offset, uint64_t length);
/* Bytes resident per node, added into per_node[0 .. n_max). */
int region_measure_resident(struct region *region, uint64_t *per_node, unsigned n_max);
