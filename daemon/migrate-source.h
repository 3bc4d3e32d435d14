/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The source side of a migration: serve the region on mig->listen_fd to the
 * destination that proves it knows the token, until it confirms completion. */
#pragma once

struct migration;

int migrate_source_start(struct migration *mig);
