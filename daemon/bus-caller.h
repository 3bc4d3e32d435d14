/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who is calling: one client per bus connection that may use gmemd (or owns
 * a restored region), with the credentials the bus gave for it (fixed for
 * the connection's life) and the tracking that releases its non-persistent
 * regions when it goes away; the access rules built on them; and errno ->
 * org.gmem1.Error replies.
 *
 * Who calls what: every bus method and property getter checks its caller
 * here first; main.c frees the clients at exit; main.c calls
 * bus_reattach_owners() once after the regions were restored. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "macro.h"

struct manager;
struct region;

struct client {
        struct manager *manager;
        char *bus_name; /* the connection's unique name, never reused on a bus */
        uid_t uid;
        pid_t pid;
        bool admitted; /* root, or a member of the allowed group (a restored owner may be neither) */
        sd_bus_track *track;
        struct client *next, *prev;
};

/* The caller of @msg may use gmemd (root or the allowed group); its client
 * in *ret. The first call of a connection asks the bus, later ones use the
 * cache. PermissionDenied in @error otherwise. */
int bus_check_caller(struct manager *m, sd_bus_message *msg, struct client **ret, sd_bus_error *error);
/* The caller may act on @region (Populate, Discard, Release): its owner uid or root. */
int bus_check_region_owner(struct region *region, sd_bus_message *msg, const char *verb, sd_bus_error *error);
/* The caller of the message being processed on @bus may read @region's
 * properties: its owner uid, root, or a member of the allowed group. */
int bus_check_region_reader(struct region *region, sd_bus *bus, sd_bus_error *error);

/* After a restart: tie each restored non-persistent region to its owner's
 * connection again, and release those whose connection is gone. */
void bus_reattach_owners(struct manager *m);

/* Release the client's non-persistent regions and forget it. */
void client_free(struct client *c);

/* Fail @error with the org.gmem1.Error for @r (Failed if it has none) and a
 * printf-style message, where %m prints @r; returns what sd-bus method
 * handlers return. */
int bus_reply_errno(sd_bus_error *error, int r, const char *fmt, ...) _printf_(3, 4);

/* Walk the a{sv} @msg stands at: for each entry, @entry gets its key with @msg at the
 * entry's variant, and reads that variant (or refuses it). The first negative return
 * ends the walk and is returned. */
int bus_read_dict(sd_bus_message *msg,
                  int (*entry)(sd_bus_message *msg, const char *key, void *userdata, sd_bus_error *error),
                  void *userdata, sd_bus_error *error);

/* One {sv} entry of an a{sv} being built: opened with its key, up to inside its variant of
 * type @type... */
int bus_open_dict_entry(sd_bus_message *reply, const char *key, const char *type);
/* ...and closed again, variant and entry. */
int bus_close_dict_entry(sd_bus_message *reply);
/* One whole {sv} entry: @key, and a variant of @type holding the values that follow. */
int bus_append_dict_entry(sd_bus_message *reply, const char *key, const char *type, ...);

/* Answer @msg with one array of @contents, its items added by @append. */
int bus_reply_array(sd_bus_message *msg, const char *contents,
                    int (*append)(sd_bus_message *reply, const void *data), const void *data);
