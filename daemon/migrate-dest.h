/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The destination side of a migration: the bulk stream in order and, with
 * postcopy, the fault channel that serves the pages the guest waits for first. */
#pragma once

struct migration;

/* Start pulling the region; with mig->postcopy also the fault thread. */
int migrate_dest_start(struct migration *mig);
