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

static bool in_list(const unsigned *list, size_t n, unsigned node)
{
        for (size_t i = 0; i < n; i++)
                if (list[i] == node)
                        return true;
        return false;
}

uint64_t placement_budget_left(const struct node_state *h)
{
        if (h->budget == PLACEMENT_NO_BUDGET)
                return UINT64_MAX;
        return h->budget > h->charged ? h->budget - h->charged : 0;
}

/* What @h can take of a new region: within its budget and its memory, and
 * when populating now within what is free there. */
static uint64_t headroom(const struct node_state *h, bool populate)
{
        uint64_t left = placement_budget_left(h);

        if (left > h->total)
                left = h->total;
        return populate && room(h) < left ? room(h) : left;
}

/* How auto ranks nodes: free room after what gmemd will still take, within budget. */
static uint64_t rank(const struct node_state *h)
{
        uint64_t left = placement_budget_left(h);

        return room(h) < left ? room(h) : left;
}

/* auto's candidates: the CPUs' nodes (and of those only option nodes, if
 * given), else option nodes, else all nodes. */
static bool auto_candidate(const struct placement_request *req, unsigned node)
{
        if (req->n_cpu_nodes > 0 && !in_list(req->cpu_nodes, req->n_cpu_nodes, node))
                return false;
        return req->n_nodes == 0 || in_list(req->nodes, req->n_nodes, node);
}

/* The candidate with the most room; with @fit only one that holds the region. */
static const struct node_state *pick_auto(const struct placement_request *req, const struct node_state *hosts,
                                          size_t n_hosts, bool fit)
{
        const struct node_state *best = NULL;

        for (size_t i = 0; i < n_hosts; i++) {
                const struct node_state *h = &hosts[i];

                if (!auto_candidate(req, h->node) || (fit && headroom(h, req->populate) < req->size))
                        continue;
                if (!best || rank(h) > rank(best))
                        best = h;
        }
        return best;
}

/* Spread the region over the candidates, most room first, and with @spill
 * then over the other nodes; shares as much as each can take. */
static int spread(const struct placement_request *req, const struct node_state *hosts, size_t n_hosts, bool spill,
                  struct placement *p)
{
        uint64_t left = req->size;
        bool *used = calloc(n_hosts, sizeof(bool));

        if (!used)
                return -ENOMEM;
        p->nodes = calloc(n_hosts, sizeof(*p->nodes));
        p->shares = calloc(n_hosts, sizeof(*p->shares));
        if (!p->nodes || !p->shares) {
                free(used);
                return -ENOMEM;
        }
        for (int pass = 0; pass < (spill ? 2 : 1) && left > 0; pass++)
                for (;;) {
                        const struct node_state *best = NULL;
                        uint64_t take;

                        for (size_t i = 0; i < n_hosts; i++)
                                if (!used[i] && auto_candidate(req, hosts[i].node) == (pass == 0) &&
                                    headroom(&hosts[i], req->populate) > 0 && (!best || rank(&hosts[i]) > rank(best)))
                                        best = &hosts[i];
                        if (!best || left == 0)
                                break;
                        used[best - hosts] = true;
                        take = MIN(headroom(best, req->populate), left);
                        /* Each share is a range of its own (node_apply_placement()). */
                        if (take < left)
                                take -= take % PLACEMENT_SHARE_ALIGN;
                        if (take == 0)
                                continue;
                        p->nodes[p->n_nodes] = best->node;
                        p->shares[p->n_nodes++] = take;
                        left -= take;
                }
        free(used);
        return left > 0 ? -ENOSPC : 0;
}

/* "0,1,3" */
static void format_nodes(const unsigned *nodes, size_t n, char *buf, size_t size)
{
        size_t off = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < n && off < size; i++)
                off += (size_t) snprintf(buf + off, size - off, "%s%u", i ? "," : "", nodes[i]);
}

/* What each node auto may use has left: "node 0: 2.0 GiB left of its 8.0 GiB budget, 3.0 GiB free; ..." */
static void format_left(const struct placement_request *req, const struct node_state *hosts, size_t n_hosts,
                        bool candidates_only, char *buf, size_t size)
{
        char left[FORMAT_BYTES_MAX], budget[FORMAT_BYTES_MAX], free_buf[FORMAT_BYTES_MAX];
        size_t off = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < n_hosts && off < size; i++) {
                const struct node_state *h = &hosts[i];

                if (candidates_only && !auto_candidate(req, h->node))
                        continue;
                format_bytes(free_buf, sizeof(free_buf), room(h));
                if (h->budget == PLACEMENT_NO_BUDGET)
                        off += (size_t) snprintf(buf + off, size - off, "%snode %u: no budget, %s free", off ? "; " : "",
                                                 h->node, free_buf);
                else
                        off += (size_t) snprintf(buf + off, size - off, "%snode %u: %s left of its %s budget, %s free",
                                                 off ? "; " : "", h->node,
                                                 format_bytes(left, sizeof(left), placement_budget_left(h)),
                                                 format_bytes(budget, sizeof(budget), h->budget), free_buf);
        }
}

/* auto when no one candidate holds the region: spread over the candidates
 * (the CPUs' nodes), beyond them only with spill; otherwise NoSpace. */
static int auto_spread(const struct placement_request *req, const struct node_state *hosts, size_t n_hosts,
                       struct placement *p, char *msg, size_t msg_size)
{
        char size_buf[FORMAT_BYTES_MAX], list[128], left[512];
        const char *whose = req->n_cpu_nodes ? "the node(s) of cpus " : "any node";
        int r;

        format_bytes(size_buf, sizeof(size_buf), req->size);
        r = spread(req, hosts, n_hosts, req->spill, p);
        if (r == -ENOSPC) {
                format_left(req, hosts, n_hosts, !req->spill, left, sizeof(left));
                snprintf(msg, msg_size, "%s%s cannot hold %s within budget%s (%s)%s", whose,
                         req->n_cpu_nodes ? req->cpus : "", size_buf, req->populate ? " and free memory" : "", left,
                         req->spill ? "" : "; option spill=true lets it spread to other nodes");
                return r;
        }
        if (r < 0)
                return r;
        p->applied = POLICY_BIND;
        format_nodes(p->nodes, p->n_nodes, list, sizeof(list));
        if (req->n_cpu_nodes && in_list(req->cpu_nodes, req->n_cpu_nodes, p->nodes[p->n_nodes - 1]))
                snprintf(p->reason, sizeof(p->reason), "cpus %s: no one of their nodes has room for %s, spread "
                         "over nodes %s", req->cpus, size_buf, list);
        else if (req->n_cpu_nodes)
                snprintf(p->reason, sizeof(p->reason), "cpus %s: their nodes lack room for %s, spilled over nodes %s "
                         "(spill=true)", req->cpus, size_buf, list);
        else
                snprintf(p->reason, sizeof(p->reason), "no node has room for %s alone, spread over nodes %s "
                         "(spill=true)", size_buf, list);
        return 0;
}

/* auto: the node with the most room that holds the region; on the CPUs'
 * nodes bound there unless spill allows the kernel to go elsewhere. */
static int choose_auto(const struct placement_request *req, const struct node_state *hosts, size_t n_hosts,
                       struct placement *p, char *msg, size_t msg_size)
{
        const struct node_state *best = pick_auto(req, hosts, n_hosts, true);
        char room_buf[FORMAT_BYTES_MAX];

        if (!pick_auto(req, hosts, n_hosts, false)) {
                snprintf(msg, msg_size, "cpus %s run on none of the nodes in option 'nodes'", req->cpus);
                return -EINVAL;
        }
        if (!best && (req->n_cpu_nodes > 0 || req->spill))
                return auto_spread(req, hosts, n_hosts, p, msg, msg_size);
        if (!best) /* as before budgets: the kernel falls back, the checks below judge */
                best = pick_auto(req, hosts, n_hosts, false);
        p->applied = req->n_cpu_nodes > 0 && !req->spill ? POLICY_BIND : POLICY_PREFERRED;
        format_bytes(room_buf, sizeof(room_buf), rank(best));
        if (req->n_cpu_nodes)
                snprintf(p->reason, sizeof(p->reason), "cpus %s run on node %u%s, which has room (%s)",
                         req->cpus, best->node, req->n_cpu_nodes > 1 ? " (of their nodes the one with most room)" : "",
                         room_buf);
        else
                snprintf(p->reason, sizeof(p->reason), "node %u has the most room (%s free within budget)",
                         best->node, room_buf);
        return set_nodes(p, &best->node, 1);
}

/* The nodes the policy applies to; auto resolves to preferred on its pick. */
static int choose_nodes(const struct placement_request *req, const struct node_state *hosts, size_t n_hosts,
                        struct placement *p, char *msg, size_t msg_size)
{
        _cleanup_free_ unsigned *all = NULL;
        char list[128];

        if (req->policy == POLICY_AUTO)
                return choose_auto(req, hosts, n_hosts, p, msg, msg_size);
        format_nodes(req->nodes, req->n_nodes, list, sizeof(list));
        snprintf(p->reason, sizeof(p->reason), req->policy == POLICY_DEFAULT ? "policy default: the kernel places it" :
                 req->n_nodes ? "policy %s on node(s) %s, as asked" : "policy %s over all nodes, as asked",
                 placement_policy_to_string(req->policy), list);
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

/* Does each node's share fit in what its budget has left? The default
 * policy is not steered: it must fit in what all budgets have left. */
static int check_budget(const struct placement_request *req, const struct node_state *hosts, size_t n_hosts,
                        const struct placement *p, char *msg, size_t msg_size)
{
        char size_buf[FORMAT_BYTES_MAX], share_buf[FORMAT_BYTES_MAX], left[512];
        uint64_t sum = 0;

        format_bytes(size_buf, sizeof(size_buf), req->size);
        if (p->applied == POLICY_DEFAULT) {
                for (size_t i = 0; i < n_hosts; i++)
                        sum = sum > UINT64_MAX - placement_budget_left(&hosts[i]) ? UINT64_MAX :
                              sum + placement_budget_left(&hosts[i]);
                if (sum >= req->size)
                        return 0;
                format_left(req, hosts, n_hosts, false, left, sizeof(left));
                snprintf(msg, msg_size, "the node budgets cannot hold %s more (%s)", size_buf, left);
                return -ENOSPC;
        }
        for (size_t i = 0; i < n_hosts; i++) {
                const struct node_state *h = &hosts[i];
                uint64_t share = placement_share(p, req->size, h->node);
                char budget[FORMAT_BYTES_MAX], left_buf[FORMAT_BYTES_MAX];

                if (share <= placement_budget_left(h))
                        continue;
                snprintf(msg, msg_size, "node %u has %s left of its %s budget; the region (%s) needs %s there",
                         h->node, format_bytes(left_buf, sizeof(left_buf), placement_budget_left(h)),
                         format_bytes(budget, sizeof(budget), h->budget), size_buf,
                         format_bytes(share_buf, sizeof(share_buf), share));
                return -ENOSPC;
        }
        return 0;
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
        if (req->n_cpu_nodes > 0 && req->policy != POLICY_AUTO) {
                snprintf(msg, msg_size, "option 'cpus' only applies to policy 'auto', not '%s'",
                         placement_policy_to_string(req->policy));
                return -EINVAL;
        }
        r = choose_nodes(req, hosts, n_hosts, &p, msg, msg_size);
        if (r < 0)
                return r;
        r = check_budget(req, hosts, n_hosts, &p, msg, msg_size);
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
        free(p->shares);
        p->nodes = NULL;
        p->shares = NULL;
        p->n_nodes = 0;
}

uint64_t placement_share(const struct placement *p, uint64_t size, unsigned node)
{
        if (p->applied == POLICY_DEFAULT || p->n_nodes == 0)
                return 0;
        for (size_t i = 0; i < p->n_nodes; i++)
                if (p->nodes[i] == node)
                        return p->shares ? p->shares[i] : size / p->n_nodes;
        return 0;
}
