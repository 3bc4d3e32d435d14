/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemd's configuration file (JSON, read with json-c): who may use the
 * daemon, per-user limits and the log level. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* How much of a node gmemd may hand out (key "budgets"). */
enum budget_kind {
        BUDGET_NONE,    /* no budget: the node's memory */
        BUDGET_BYTES,   /* "16G" or 17179869184 */
        BUDGET_PERCENT, /* "75%" of the node's memory */
        BUDGET_ALL_BUT, /* "all but 2G": the node's memory less that */
};

struct node_budget {
        enum budget_kind kind;
        uint64_t value; /* bytes, or percent */
};

#define CONFIG_BUDGET_NODES_MAX 1024U
/* Most populate workers per node the config (and a call) may ask for. */
#define CONFIG_POPULATE_WORKERS_MAX 64

struct config {
        int log_level;             /* syslog level, -1 = leave as is */
        char *allowed_group;       /* group allowed besides root; NULL = root only */
        uint64_t max_bytes_per_user;  /* 0 = no limit */
        unsigned max_regions_per_user; /* 0 = no limit */
        struct node_budget *budgets;   /* indexed by node, n_budgets of them */
        unsigned n_budgets;
        struct node_budget budget_other; /* key "*": every node not named */
        unsigned populate_workers;     /* populate workers per node; 0 = from the node's CPUs */
};

void config_init(struct config *c);
void config_done(struct config *c);
/*
 * Parse @text (the contents of @source, used in messages) into @c. On error
 * returns -EINVAL (or -ENOMEM) and puts a message naming the key in @msg.
 */
int config_parse(struct config *c, const char *text, const char *source, char *msg, size_t msg_size);
/* The budget of @node, whose memory is @total bytes: UINT64_MAX when none is set. */
uint64_t config_node_budget(const struct config *c, unsigned node, uint64_t total);
/* Read and parse @path. -ENOENT when it does not exist (msg set). */
int config_load(struct config *c, const char *path, char *msg, size_t msg_size);
