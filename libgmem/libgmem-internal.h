/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libgmem's private structures and the error bookkeeping shared by its
 * files. Nothing here is exported; see gmem.h for the public API. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "bus-contract.h"
#include "gmem.h"


struct gmem_client {
        unsigned n_ref;
        sd_bus *bus;
        /* The last failure, for gmem_client_get_error{,_name}(). */
        char *error_name;
        char *error_message;
};

struct gmem_options {
        unsigned n_ref;
        char *name;
        gmem_policy policy;
        unsigned *nodes;
        size_t n_nodes;
        bool populate;
        bool shared;
        bool persist;
        bool numa_page_tables;
        unsigned populate_workers; /* 0: not sent */
        char *cpus;
        bool spill;
};

struct gmem_region {
        unsigned n_ref;
        /* A reference: the bus connection must outlive the region, since the
         * daemon drops non-persistent regions when it closes. */
        gmem_client *client;
        char *path;
        uint64_t size;
        int fd;
        int fault_channel; /* imported with postcopy in exit mode: gmemd's fast channel, else -1 */
        bool fault_channel_done; /* gmemd said the migration ended, with this status: */
        int fault_channel_status;
};

/* libgmem-region.c for libgmem-migrate.c: the guest_memfd made in the VMM,
 * CreateRegion's options (without populate unless @populate) into an open
 * a{sv}, and the handle for a reply (o region, h memfd). */
int region_create_guest_memfd(gmem_client *client, int vm_fd, uint64_t size, bool shared, int *ret);
int region_append_create_options(sd_bus_message *m, const gmem_options *o, int memfd, bool populate);
int region_from_reply(gmem_client *client, sd_bus_message *reply, uint64_t size, gmem_region **ret);

/* Forget the last failure; every public call that talks to the daemon
 * starts with this so the error always belongs to the latest call. */
void client_clear_error(gmem_client *client);
/* Record a failed bus call: the daemon's error name and message when
 * @error is set, else strerror(@r). Returns the negative errno. */
int client_bus_error(gmem_client *client, const sd_bus_error *error, int r);
/* Record a local failure with a message for a person (no error name). */
int client_local_error(gmem_client *client, int r, const char *format, ...)
        __attribute__((format(printf, 3, 4)));
