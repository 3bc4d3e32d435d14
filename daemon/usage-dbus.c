/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager's accounting methods: GetNodes (held per node), GetNodeFacts
 * (CPUs, distances, huge pages, budget) and GetUsage (per uid). All of them
 * read gmemd's accounting (usage.c): O(regions), flat in bytes held. */
#include <errno.h>
#include <stdlib.h>

#include "bus-caller.h"
#include "manager.h"
#include "numa-nodes.h"
#include "usage-dbus.h"
#include "usage.h"

#define HUGEPAGE_SIZES_MAX 8

struct node_states {
        const struct node_state *nodes;
        size_t n;
};

static int append_nodes(sd_bus_message *reply, const void *data)
{
        const struct node_states *s = data;
        int r = 0;

        for (size_t i = 0; r >= 0 && i < s->n; i++)
                r = sd_bus_message_append(reply, "(uttt)", (uint32_t) s->nodes[i].node, s->nodes[i].total,
                                          s->nodes[i].free, s->nodes[i].held);
        return r;
}

static int reply_nodes(sd_bus_message *msg, const struct node_state *nodes, size_t n)
{
        return bus_reply_array(msg, "(uttt)", append_nodes, &(struct node_states) { nodes, n });
}

/* Every method here: an admitted caller, then the node states. */
static int begin(struct manager *m, sd_bus_message *msg, struct client **caller, struct node_state **nodes,
                 size_t *n, sd_bus_error *error)
{
        int r = bus_check_caller(m, msg, caller, error);

        if (r < 0)
                return r;
        r = usage_node_states(m, nodes, n);
        return r < 0 ? bus_reply_errno(error, r, "cannot read the host's NUMA nodes: %m") : 0;
}

int bus_method_get_nodes(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_free_ struct node_state *nodes = NULL;
        struct client *caller;
        size_t n;
        int r;

        r = begin(userdata, msg, &caller, &nodes, &n, error);
        return r < 0 ? r : reply_nodes(msg, nodes, n);
}

/* --- GetNodeFacts ----------------------------------------------------------------- */

/* An {sv} entry whose value is an array of @item, opened up to the array; close with close_array_fact(). */
static int open_array_fact(sd_bus_message *reply, const char *key, const char *variant, const char *item)
{
        int r = bus_open_dict_entry(reply, key, variant);

        return r < 0 ? r : sd_bus_message_open_container(reply, 'a', item);
}

static int close_array_fact(sd_bus_message *reply, int r)
{
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r < 0 ? r : bus_close_dict_entry(reply);
}

static int append_distances(sd_bus_message *reply, unsigned node, const struct node_state *nodes, size_t n)
{
        int r = open_array_fact(reply, "Distances", "a(uu)", "(uu)");

        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "(uu)", (uint32_t) nodes[i].node,
                                          (uint32_t) node_distance(node, nodes[i].node));
        return close_array_fact(reply, r);
}

static int append_hugepages(sd_bus_message *reply, unsigned node)
{
        struct node_hugepages pages[HUGEPAGE_SIZES_MAX];
        size_t n = 0;
        int r;

        (void) node_hugepages(node, pages, HUGEPAGE_SIZES_MAX, &n);
        r = open_array_fact(reply, "HugePages", "a(ttt)", "(ttt)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "(ttt)", pages[i].size, pages[i].total, pages[i].free);
        return close_array_fact(reply, r);
}

static int append_node_facts(sd_bus_message *reply, const struct node_state *h, const struct node_state *nodes,
                             size_t n, const char *thp)
{
        char cpus[1024];
        int r;

        (void) node_cpus(h->node, cpus, sizeof(cpus));
        r = sd_bus_message_open_container(reply, 'r', "ua{sv}");
        if (r >= 0)
                r = sd_bus_message_append(reply, "u", (uint32_t) h->node);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0 || (r = bus_append_dict_entry(reply, "Total", "t", h->total)) < 0 ||
            (r = bus_append_dict_entry(reply, "Free", "t", h->free)) < 0 ||
            (r = bus_append_dict_entry(reply, "Held", "t", h->held)) < 0 ||
            (r = bus_append_dict_entry(reply, "Promised", "t", h->charged)) < 0 ||
            (r = bus_append_dict_entry(reply, "Budget", "t", h->budget)) < 0 ||
            (r = bus_append_dict_entry(reply, "BudgetLeft", "t", placement_budget_left(h))) < 0 ||
            (r = bus_append_dict_entry(reply, "CPUs", "s", cpus)) < 0 ||
            (r = append_distances(reply, h->node, nodes, n)) < 0 ||
            (r = bus_append_dict_entry(reply, "TransparentHugePages", "s", thp)) < 0 ||
            (r = append_hugepages(reply, h->node)) < 0)
                return r;
        r = sd_bus_message_close_container(reply);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

int bus_method_get_node_facts(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ struct node_state *nodes = NULL;
        struct manager *m = userdata;
        struct client *caller;
        char thp[32];
        size_t n;
        int r;

        r = begin(m, msg, &caller, &nodes, &n, error);
        if (r < 0)
                return r;
        (void) node_thp_mode(thp, sizeof(thp));
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ua{sv})");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = append_node_facts(reply, &nodes[i], nodes, n, thp);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}

/* --- GetUsage ---------------------------------------------------------------------- */

/* a(ut): @values per node of @nodes, every node listed (0 included). */
static int append_per_node(sd_bus_message *reply, const struct node_state *nodes, size_t n,
                           uint64_t (*value)(const struct node_state *h, const void *data), const void *data)
{
        int r = sd_bus_message_open_container(reply, 'a', "(ut)");

        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "(ut)", (uint32_t) nodes[i].node, value(&nodes[i], data));
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static uint64_t user_on_node(const struct node_state *h, const void *data)
{
        const struct user_usage *u = data;

        return u->per_node[h->node];
}

static uint64_t budget_left(const struct node_state *h, const void *data)
{
        return placement_budget_left(h);
}

static int append_user(sd_bus_message *reply, const struct config *c, const struct user_usage *u,
                       const struct node_state *nodes, size_t n)
{
        uint64_t bytes_left = !c->max_bytes_per_user ? UINT64_MAX :
                              c->max_bytes_per_user > u->bytes ? c->max_bytes_per_user - u->bytes : 0;
        uint32_t regions_left = !c->max_regions_per_user ? UINT32_MAX :
                                c->max_regions_per_user > u->regions ? c->max_regions_per_user - u->regions : 0;
        int r;

        r = sd_bus_message_open_container(reply, 'r', "uuta(ut)tua(ut)");
        if (r >= 0)
                r = sd_bus_message_append(reply, "uut", (uint32_t) u->uid, (uint32_t) u->regions, u->bytes);
        if (r >= 0)
                r = append_per_node(reply, nodes, n, user_on_node, u);
        if (r >= 0)
                r = sd_bus_message_append(reply, "tu", bytes_left, regions_left);
        if (r >= 0)
                r = append_per_node(reply, nodes, n, budget_left, NULL);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

int bus_method_get_usage(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ struct node_state *nodes = NULL;
        struct user_usage *users = NULL;
        struct manager *m = userdata;
        struct client *caller;
        size_t n, n_users = 0;
        int r;

        r = begin(m, msg, &caller, &nodes, &n, error);
        if (r < 0)
                return r;
        r = usage_per_user(m, caller->uid, &users, &n_users);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(uuta(ut)tua(ut))");
        for (size_t i = 0; r >= 0 && i < n_users; i++)
                r = append_user(reply, &m->config, &users[i], nodes, n);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        user_usage_free(users, n_users);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}
