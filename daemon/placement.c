/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Placement policy: validates the requested policy and nodes against the host
 * and picks nodes for "auto". No syscalls, so it is unit-tested directly. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-contract.h"
#include "macro.h"
#include "placement.h"
#include "util.h"

_Static_assert(_POLICY_MAX == GMEM_N_POLICIES, "placement policies and the bus contract's names differ");

const char *placement_policy_to_string(enum placement_policy p)
{
        return gmem_policy_name((unsigned) p);
}

int placement_policy_from_string(const char *s)
{
        return gmem_policy_from_name(s);
}

static const struct node_state *find_host(const struct node_state *hosts, size_t n, unsigned node)
{
        for (size_t i = 0; i < n; i++)
                if (hosts[i].node == node)
                        return &hosts[i];
        return NULL;
}

static void format_host_nodes(const struct node_state *hosts, size_t n, char *buf, size_t size)
{
        size_t off = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < n && off < size; i++)
                off += (size_t) snprintf(buf + off, size - off, "%s%u", i ? "," : "", hosts[i].node);
}

static uint64_t room(const struct node_state *h)
{
        return h->free > h->outstanding ? h->free - h->outstanding : 0;
}

static int set_nodes(struct placement *p, const unsigned *nodes, size_t n)
{
        p->nodes = calloc(n ? n : 1, sizeof(*p->nodes));
        if (!p->nodes)
                return -ENOMEM;
        if (n)
                memcpy(p->nodes, nodes, n * sizeof(*nodes));
        p->n_nodes = n;
        return 0;
}

/* Check the policy's arity and that every node exists. */
static int validate_nodes(const struct placement_request *req, const struct node_state *hosts,
                          size_t n_hosts, char *msg, size_t msg_size)
{
        const char *name = placement_policy_to_string(req->policy);
        char list[256];

        if (req->policy == POLICY_DEFAULT && req->n_nodes > 0) {
                snprintf(msg, msg_size, "policy 'default' takes no nodes; use 'bind', 'preferred' or 'interleave' to choose nodes");
                return -EINVAL;
        }
        if (req->policy == POLICY_BIND && req->n_nodes == 0) {
                snprintf(msg, msg_size, "policy 'bind' needs at least one node in option 'nodes'");
                return -EINVAL;
        }
        if (req->policy == POLICY_PREFERRED && req->n_nodes != 1) {
                snprintf(msg, msg_size, "policy 'preferred' needs exactly one node in option 'nodes', got %zu", req->n_nodes);
                return -EINVAL;
        }
        for (size_t i = 0; i < req->n_nodes; i++) {
                for (size_t j = 0; j < i; j++)
                        if (req->nodes[j] == req->nodes[i]) {
                                snprintf(msg, msg_size, "node %u is listed twice in option 'nodes'", req->nodes[i]);
                                return -EINVAL;
                        }
                if (!find_host(hosts, n_hosts, req->nodes[i])) {
                        format_host_nodes(hosts, n_hosts, list, sizeof(list));
                        snprintf(msg, msg_size, "node %u does not exist (policy '%s'); this host has node(s) %s",
                                 req->nodes[i], name, list);
                        return -EINVAL;
                }
        }
        return 0;
}

/* auto: the candidate with the most room after what gmemd already placed there. */
static const struct node_state *pick_auto(const struct placement_request *req,
                                          const struct node_state *hosts, size_t n_hosts)
{
        const struct node_state *best = NULL;

        for (size_t i = 0; i < n_hosts; i++) {
                const struct node_state *h = &hosts[i];
                bool candidate = req->n_nodes == 0;

                for (size_t j = 0; j < req->n_nodes; j++)
                        candidate = candidate || req->nodes[j] == h->node;
                if (candidate && (!best || room(h) > room(best)))
                        best = h;
        }
        return best;
}

/* The nodes the policy applies to; auto resolves to preferred on its pick. */
static int choose_nodes(const struct placement_request *req, const struct node_state *hosts, size_t n_hosts,
                        struct placement *p)
{
        _cleanup_free_ unsigned *all = NULL;

        if (req->policy == POLICY_AUTO) {
                p->applied = POLICY_PREFERRED;
                return set_nodes(p, &pick_auto(req, hosts, n_hosts)->node, 1);
        }
        if (req->policy != POLICY_INTERLEAVE || req->n_nodes > 0)
                return set_nodes(p, req->nodes, req->n_nodes);
        /* interleave without nodes: over all of them */
        all = calloc(n_hosts, sizeof(*all));
        if (!all)
                return -ENOMEM;
        for (size_t i = 0; i < n_hosts; i++)
                all[i] = hosts[i].node;
        return set_nodes(p, all, n_hosts);
}

/* Does the region fit: into the memory it may use, and with populate into
 * what is free there after what gmemd regions will still take? */
static int check_capacity(const struct placement_request *req, const struct node_state *hosts, size_t n_hosts,
                          const struct placement *p, char *msg, size_t msg_size)
{
        /* bind and interleave are confined to their nodes; the others may
         * use any node when theirs is full. */
        bool confined = p->applied == POLICY_BIND || p->applied == POLICY_INTERLEAVE;
        char total_buf[FORMAT_BYTES_MAX], size_buf[FORMAT_BYTES_MAX];
        uint64_t capacity = 0, available = 0;

        for (size_t i = 0; i < n_hosts; i++) {
                bool in_set = false;

                for (size_t j = 0; j < p->n_nodes; j++)
                        in_set = in_set || p->nodes[j] == hosts[i].node;
                if (confined && !in_set)
                        continue;
                capacity += hosts[i].total;
                available += room(&hosts[i]);
        }

        format_bytes(size_buf, sizeof(size_buf), req->size);
        if (req->size > capacity) {
                format_bytes(total_buf, sizeof(total_buf), capacity);
                snprintf(msg, msg_size, "size %s (%" PRIu64 " bytes) is larger than the %s of memory %s",
                         size_buf, req->size, total_buf,
                         confined ? "on the chosen node(s)" : "of this host");
                return -ENOSPC;
        }
        if (req->populate && req->size > available) {
                format_bytes(total_buf, sizeof(total_buf), available);
                snprintf(msg, msg_size, "populating %s needs more than the %s free %s (after what gmemd regions will still take)",
                         size_buf, total_buf, confined ? "on the chosen node(s)" : "on this host");
                return -ENOSPC;
        }
        return 0;
}

int placement_decide(const struct placement_request *req,
                     const struct node_state *hosts, size_t n_hosts,
                     struct placement *ret, char *msg, size_t msg_size)
{
        _cleanup_(placement_done) struct placement p = { .requested = req->policy, .applied = req->policy };
        int r;

        if ((unsigned) req->policy >= _POLICY_MAX) {
                snprintf(msg, msg_size, "unknown policy %d", (int) req->policy);
                return -EINVAL;
        }
        if (n_hosts == 0) {
                snprintf(msg, msg_size, "the host reports no NUMA nodes");
                return -ENOSPC;
        }
        r = validate_nodes(req, hosts, n_hosts, msg, msg_size);
        if (r < 0)
                return r;
        r = choose_nodes(req, hosts, n_hosts, &p);
        if (r < 0)
                return r;
        r = check_capacity(req, hosts, n_hosts, &p, msg, msg_size);
        if (r < 0)
                return r;
        *ret = TAKE_STRUCT(p);
        return 0;
}

void placement_done(struct placement *p)
{
        free(p->nodes);
        p->nodes = NULL;
        p->n_nodes = 0;
}

uint64_t placement_share(const struct placement *p, uint64_t size, unsigned node)
{
        if (p->applied == POLICY_DEFAULT || p->n_nodes == 0)
                return 0;
        for (size_t i = 0; i < p->n_nodes; i++)
                if (p->nodes[i] == node)
                        return size / p->n_nodes;
        return 0;
}
