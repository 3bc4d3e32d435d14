/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemd's configuration file (JSON, read with json-c): who may use the
 * daemon, per-user limits and the log level. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Most populate workers per node the config (and a call) may ask for. */
#define CONFIG_POPULATE_WORKERS_MAX 64

struct config {
        int log_level;             /* syslog level, -1 = leave as is */
        char *allowed_group;       /* group allowed besides root; NULL = root only */
        uint64_t max_bytes_per_user;  /* 0 = no limit */
        unsigned max_regions_per_user; /* 0 = no limit */
        unsigned populate_workers;     /* populate workers per node; 0 = from the node's CPUs */
};

void config_init(struct config *c);
void config_done(struct config *c);
/*
 * Parse @text (the contents of @source, used in messages) into @c. On error
 * returns -EINVAL (or -ENOMEM) and puts a message naming the key in @msg.
 */
int config_parse(struct config *c, const char *text, const char *source, char *msg, size_t msg_size);
/* Read and parse @path. -ENOENT when it does not exist (msg set). */
int config_load(struct config *c, const char *path, char *msg, size_t msg_size);
