/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Regions in systemd's file descriptor store, so that they survive a restart
 * or a crash of gmemd. Each region is two fds under one FDNAME
 * "region-<id>": its guest_memfd, and a sealed memfd holding its metadata as
 * JSON (json-c). Without $NOTIFY_SOCKET nothing is stored.
 *
 * Who calls what: bus-populate.c adds a region once CreateRegion is answered;
 * manager.c removes it when releasing it, and loads the store at start. */
#pragma once

struct region;

#define FDSTORE_NAME_PREFIX "region-"

/* Put @r into the store; r->stored says whether it is there. Failures are
 * logged: the region works, it only would not survive a restart. */
void fdstore_add_region(struct region *region);
/* Take @region out of the store again (FDSTOREREMOVE=1), if it is there. */
void fdstore_remove_region(struct region *region);
/* The regions passed in by the service manager ($LISTEN_FDS,
 * $LISTEN_FDNAMES), mapped and placed, as a list in *ret. Entries that
 * cannot be restored are logged, closed and dropped from the store. */
void fdstore_load(struct region **ret);
