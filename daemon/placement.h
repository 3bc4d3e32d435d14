/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Placement decisions for new regions: policy names, node validation, the
 * capacity checks and the choice of the "auto" policy. Pure: no syscalls. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum placement_policy {
        POLICY_DEFAULT,
        POLICY_BIND,
        POLICY_PREFERRED,
        POLICY_INTERLEAVE,
        POLICY_AUTO,
        _POLICY_MAX,
};

const char *placement_policy_to_string(enum placement_policy p);
/* Returns the policy or -EINVAL. */
int placement_policy_from_string(const char *s);

/* What the daemon knows about one host node at decision time. */
struct node_state {
        unsigned node;
        uint64_t total;       /* bytes of memory on the node */
        uint64_t free;        /* bytes free now, as the kernel says */
        uint64_t outstanding; /* bytes gmemd regions are placed to take here but do not hold yet */
        uint64_t budget;      /* bytes gmemd may promise here (config); PLACEMENT_NO_BUDGET: no limit */
        uint64_t charged;     /* bytes gmemd promised here: placed shares, or what is resident */
        uint64_t held;        /* bytes gmemd regions hold here, as last measured */
};

#define PLACEMENT_NO_BUDGET UINT64_MAX
#define PLACEMENT_REASON_MAX 256
/* Shares of a spread placement are multiples of this (but the last). */
#define PLACEMENT_SHARE_ALIGN (2ULL << 20)

struct placement_request {
        enum placement_policy policy;
        const unsigned *nodes;
        size_t n_nodes;
        uint64_t size;
        bool populate;
        /* auto: the nodes of the CPUs the VM will run on (option cpus, as
         * given in @cpus), and whether it may spread beyond them (spill). */
        const unsigned *cpu_nodes;
        size_t n_cpu_nodes;
        const char *cpus;
        bool spill;
};

/* The decision: the policy to apply (auto is resolved to preferred on one
 * node) and its nodes. */
struct placement {
        enum placement_policy requested;
        enum placement_policy applied;
        unsigned *nodes;
        size_t n_nodes;
        uint64_t *shares; /* bytes planned per node (same order), or NULL: size / n_nodes each; when
                           * set, node i takes the range after those of nodes 0 .. i-1 */
        char reason[PLACEMENT_REASON_MAX]; /* why these nodes, for a person */
};

/*
 * Decide where a region goes. On failure returns -EINVAL (bad policy/node
 * combination, unknown node) or -ENOSPC (does not fit), with a message for a
 * person in @msg. @hosts is sorted by node number.
 */
int placement_decide(const struct placement_request *req,
                     const struct node_state *hosts, size_t n_hosts,
                     struct placement *ret, char *msg, size_t msg_size);
void placement_done(struct placement *p);

/* Bytes the region is planned to take on @node (0 if none, or for the
 * default policy, which gmemd does not steer). */
uint64_t placement_share(const struct placement *p, uint64_t size, unsigned node);
/* What gmemd may still promise on @h within its budget (UINT64_MAX: no budget). */
uint64_t placement_budget_left(const struct node_state *h);
