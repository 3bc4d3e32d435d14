/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of daemon/placement.c: every policy, node validation and its
 * messages, the auto choice, capacity and populate checks, and shares. */
#include <errno.h>

#include "macro.h"
#include "placement.h"
#include "unit.h"

#define GiB (UINT64_C(1) << 30)

/* A sparse three-node host (no node 2), sorted by node number. */
static const struct node_state host[] = {
        { .node = 0, .total = 16 * GiB, .free = 8 * GiB, .outstanding = 6 * GiB, .budget = PLACEMENT_NO_BUDGET }, /* room 2G */
        { .node = 1, .total = 8 * GiB, .free = 4 * GiB, .outstanding = 0, .budget = PLACEMENT_NO_BUDGET },        /* room 4G */
        { .node = 3, .total = 4 * GiB, .free = 3 * GiB, .outstanding = 0, .budget = PLACEMENT_NO_BUDGET },        /* room 3G */
};

/* The same shape with budgets: node 0 has 2G left of 8G, node 1 none set, node 3 3G left of 4G. */
static const struct node_state budgeted[] = {
        { .node = 0, .total = 16 * GiB, .free = 12 * GiB, .budget = 8 * GiB, .charged = 6 * GiB },
        { .node = 1, .total = 8 * GiB, .free = 6 * GiB, .budget = PLACEMENT_NO_BUDGET },
        { .node = 3, .total = 4 * GiB, .free = 4 * GiB, .budget = 4 * GiB, .charged = GiB },
};
#define N_HOST (sizeof(host) / sizeof(host[0]))

static char msg[512];

static int decide(enum placement_policy policy, const unsigned *nodes, size_t n_nodes, uint64_t size,
                  bool populate, struct placement *ret)
{
        struct placement_request req = {
                .policy = policy, .nodes = nodes, .n_nodes = n_nodes, .size = size, .populate = populate,
        };

        msg[0] = '\0';
        *ret = (struct placement) {};
        return placement_decide(&req, host, N_HOST, ret, msg, sizeof(msg));
}

static void assert_placement(const struct placement *p, enum placement_policy requested,
                             enum placement_policy applied, const unsigned *nodes, size_t n)
{
        ASSERT_EQ(p->requested, requested);
        ASSERT_EQ(p->applied, applied);
        ASSERT_EQ(p->n_nodes, n);
        for (size_t i = 0; i < n; i++)
                ASSERT_EQ(p->nodes[i], nodes[i]);
}

static void test_policy_names(void)
{
        static const char *const names[] = { "default", "bind", "preferred", "interleave", "auto" };

        for (int i = 0; i < _POLICY_MAX; i++) {
                ASSERT_STREQ(placement_policy_to_string(i), names[i]);
                ASSERT_EQ(placement_policy_from_string(names[i]), i);
        }
        ASSERT(!placement_policy_to_string(_POLICY_MAX));
        ASSERT(!placement_policy_to_string((enum placement_policy) -1));
        ASSERT_EQ(placement_policy_from_string("Bind"), -EINVAL);
        ASSERT_EQ(placement_policy_from_string(""), -EINVAL);
        ASSERT_EQ(placement_policy_from_string(NULL), -EINVAL);
}

static void test_default(void)
{
        struct placement p;

        ASSERT_OK(decide(POLICY_DEFAULT, NULL, 0, GiB, false, &p));
        assert_placement(&p, POLICY_DEFAULT, POLICY_DEFAULT, NULL, 0);
        ASSERT_U64_EQ(placement_share(&p, GiB, 0), 0); /* gmemd does not steer it */
        placement_done(&p);

        ASSERT_EQ(decide(POLICY_DEFAULT, (unsigned[]) { 0 }, 1, GiB, false, &p), -EINVAL);
        ASSERT_STREQ(msg, "policy 'default' takes no nodes; use 'bind', 'preferred' or 'interleave' to choose nodes");
}

static void test_bind(void)
{
        struct placement p;

        ASSERT_OK(decide(POLICY_BIND, (unsigned[]) { 3, 1 }, 2, GiB, false, &p));
        assert_placement(&p, POLICY_BIND, POLICY_BIND, (unsigned[]) { 3, 1 }, 2);
        placement_done(&p);
        ASSERT(!p.nodes);
        ASSERT_EQ(p.n_nodes, 0);

        ASSERT_EQ(decide(POLICY_BIND, NULL, 0, GiB, false, &p), -EINVAL);
        ASSERT_STREQ(msg, "policy 'bind' needs at least one node in option 'nodes'");

        ASSERT_EQ(decide(POLICY_BIND, (unsigned[]) { 1, 2 }, 2, GiB, false, &p), -EINVAL);
        ASSERT_STREQ(msg, "node 2 does not exist (policy 'bind'); this host has node(s) 0,1,3");

        ASSERT_EQ(decide(POLICY_BIND, (unsigned[]) { 1, 3, 1 }, 3, GiB, false, &p), -EINVAL);
        ASSERT_STREQ(msg, "node 1 is listed twice in option 'nodes'");
}

static void test_preferred(void)
{
        struct placement p;

        ASSERT_OK(decide(POLICY_PREFERRED, (unsigned[]) { 3 }, 1, GiB, false, &p));
        assert_placement(&p, POLICY_PREFERRED, POLICY_PREFERRED, (unsigned[]) { 3 }, 1);
        placement_done(&p);

        ASSERT_EQ(decide(POLICY_PREFERRED, NULL, 0, GiB, false, &p), -EINVAL);
        ASSERT_STREQ(msg, "policy 'preferred' needs exactly one node in option 'nodes', got 0");
        ASSERT_EQ(decide(POLICY_PREFERRED, (unsigned[]) { 0, 1 }, 2, GiB, false, &p), -EINVAL);
        ASSERT_STREQ(msg, "policy 'preferred' needs exactly one node in option 'nodes', got 2");
        ASSERT_EQ(decide(POLICY_PREFERRED, (unsigned[]) { 7 }, 1, GiB, false, &p), -EINVAL);
        ASSERT_STREQ(msg, "node 7 does not exist (policy 'preferred'); this host has node(s) 0,1,3");
}

static void test_interleave(void)
{
        struct placement p;

        /* No nodes: all of the host's. */
        ASSERT_OK(decide(POLICY_INTERLEAVE, NULL, 0, GiB, false, &p));
        assert_placement(&p, POLICY_INTERLEAVE, POLICY_INTERLEAVE, (unsigned[]) { 0, 1, 3 }, 3);
        placement_done(&p);

        ASSERT_OK(decide(POLICY_INTERLEAVE, (unsigned[]) { 0, 3 }, 2, GiB, false, &p));
        assert_placement(&p, POLICY_INTERLEAVE, POLICY_INTERLEAVE, (unsigned[]) { 0, 3 }, 2);
        placement_done(&p);

        ASSERT_EQ(decide(POLICY_INTERLEAVE, (unsigned[]) { 0, 0 }, 2, GiB, false, &p), -EINVAL);
        ASSERT_STREQ(msg, "node 0 is listed twice in option 'nodes'");
        ASSERT_EQ(decide(POLICY_INTERLEAVE, (unsigned[]) { 1024 }, 1, GiB, false, &p), -EINVAL);
        ASSERT_STREQ(msg, "node 1024 does not exist (policy 'interleave'); this host has node(s) 0,1,3");
}

static void test_auto(void)
{
        struct node_state quiet[N_HOST];
        struct placement p;

        /* Node 0 has the most free memory, but gmemd already placed 6G
         * there that is not allocated yet: node 1 has the most room. */
        ASSERT_OK(decide(POLICY_AUTO, NULL, 0, GiB, false, &p));
        assert_placement(&p, POLICY_AUTO, POLICY_PREFERRED, (unsigned[]) { 1 }, 1);
        placement_done(&p);

        /* Without the outstanding bytes node 0 wins. */
        memcpy(quiet, host, sizeof(quiet));
        quiet[0].outstanding = 0;
        ASSERT_OK(placement_decide(&(struct placement_request) { .policy = POLICY_AUTO, .size = GiB },
                                   quiet, N_HOST, &p, msg, sizeof(msg)));
        assert_placement(&p, POLICY_AUTO, POLICY_PREFERRED, (unsigned[]) { 0 }, 1);
        placement_done(&p);

        /* Outstanding beyond free is no room, not a wrapped-around huge one. */
        quiet[0].outstanding = 9 * GiB;
        quiet[1].free = 0;
        quiet[2].free = GiB / 2; /* node 3 */
        ASSERT_OK(placement_decide(&(struct placement_request) { .policy = POLICY_AUTO, .size = GiB },
                                   quiet, N_HOST, &p, msg, sizeof(msg)));
        assert_placement(&p, POLICY_AUTO, POLICY_PREFERRED, (unsigned[]) { 3 }, 1);
        placement_done(&p);

        /* With nodes: the candidate among them with the most room. */
        ASSERT_OK(decide(POLICY_AUTO, (unsigned[]) { 0, 3 }, 2, GiB, false, &p));
        assert_placement(&p, POLICY_AUTO, POLICY_PREFERRED, (unsigned[]) { 3 }, 1);
        placement_done(&p);
        ASSERT_OK(decide(POLICY_AUTO, (unsigned[]) { 0 }, 1, GiB, false, &p));
        assert_placement(&p, POLICY_AUTO, POLICY_PREFERRED, (unsigned[]) { 0 }, 1);
        placement_done(&p);

        ASSERT_EQ(decide(POLICY_AUTO, (unsigned[]) { 0, 2 }, 2, GiB, false, &p), -EINVAL);
        ASSERT_STREQ(msg, "node 2 does not exist (policy 'auto'); this host has node(s) 0,1,3");
}

static void test_capacity(void)
{
        struct placement p;

        /* The host has 28G in all. */
        ASSERT_EQ(decide(POLICY_DEFAULT, NULL, 0, 29 * GiB, false, &p), -ENOSPC);
        ASSERT_STREQ(msg, "size 29.0 GiB (31138512896 bytes) is larger than the 28.0 GiB of memory of this host");
        ASSERT_OK(decide(POLICY_DEFAULT, NULL, 0, 28 * GiB, false, &p));
        placement_done(&p);

        /* bind and interleave are confined to their nodes... */
        ASSERT_EQ(decide(POLICY_BIND, (unsigned[]) { 1 }, 1, 9 * GiB, false, &p), -ENOSPC);
        ASSERT_STREQ(msg, "size 9.0 GiB (9663676416 bytes) is larger than the 8.0 GiB of memory on the chosen node(s)");
        ASSERT_OK(decide(POLICY_BIND, (unsigned[]) { 1, 3 }, 2, 9 * GiB, false, &p));
        placement_done(&p);
        ASSERT_EQ(decide(POLICY_INTERLEAVE, (unsigned[]) { 1, 3 }, 2, 13 * GiB, false, &p), -ENOSPC);
        ASSERT_CONTAINS(msg, "on the chosen node(s)");

        /* ...preferred (and auto) may spill onto other nodes. */
        ASSERT_OK(decide(POLICY_PREFERRED, (unsigned[]) { 1 }, 1, 9 * GiB, false, &p));
        placement_done(&p);
        ASSERT_OK(decide(POLICY_AUTO, NULL, 0, 20 * GiB, false, &p));
        placement_done(&p);
        ASSERT_EQ(decide(POLICY_AUTO, NULL, 0, 29 * GiB, false, &p), -ENOSPC);
        ASSERT_CONTAINS(msg, "of this host");
}

static void test_populate(void)
{
        struct placement p;

        /* Node 1 has 4G room: 5G fits its size but cannot be allocated now. */
        ASSERT_OK(decide(POLICY_BIND, (unsigned[]) { 1 }, 1, 5 * GiB, false, &p));
        placement_done(&p);
        ASSERT_EQ(decide(POLICY_BIND, (unsigned[]) { 1 }, 1, 5 * GiB, true, &p), -ENOSPC);
        ASSERT_STREQ(msg, "populating 5.0 GiB needs more than the 4.0 GiB free on the chosen node(s) "
                          "(after what gmemd regions will still take)");
        ASSERT_OK(decide(POLICY_BIND, (unsigned[]) { 1 }, 1, 4 * GiB, true, &p));
        placement_done(&p);

        /* Node 0 has 8G free but 6G of it is promised to other regions. */
        ASSERT_EQ(decide(POLICY_BIND, (unsigned[]) { 0 }, 1, 3 * GiB, true, &p), -ENOSPC);
        ASSERT_CONTAINS(msg, "the 2.0 GiB free on the chosen node(s)");
        ASSERT_OK(decide(POLICY_BIND, (unsigned[]) { 0 }, 1, 2 * GiB, true, &p));
        placement_done(&p);

        /* Unconfined policies count the room of every node: 2+4+3 = 9G. */
        ASSERT_OK(decide(POLICY_PREFERRED, (unsigned[]) { 3 }, 1, 9 * GiB, true, &p));
        placement_done(&p);
        ASSERT_EQ(decide(POLICY_DEFAULT, NULL, 0, 10 * GiB, true, &p), -ENOSPC);
        ASSERT_STREQ(msg, "populating 10.0 GiB needs more than the 9.0 GiB free on this host "
                          "(after what gmemd regions will still take)");
        ASSERT_EQ(decide(POLICY_INTERLEAVE, NULL, 0, 10 * GiB, true, &p), -ENOSPC);
        ASSERT_CONTAINS(msg, "the 9.0 GiB free on the chosen node(s)");
}

static void test_errors(void)
{
        struct placement p = {};
        char small[16];

        ASSERT_EQ(placement_decide(&(struct placement_request) { .policy = POLICY_DEFAULT, .size = GiB },
                                   host, 0, &p, msg, sizeof(msg)), -ENOSPC);
        ASSERT_STREQ(msg, "the host reports no NUMA nodes");

        ASSERT_EQ(decide((enum placement_policy) 99, NULL, 0, GiB, false, &p), -EINVAL);
        ASSERT_STREQ(msg, "unknown policy 99");

        /* A short message buffer truncates, never overflows. */
        memset(small, 'x', sizeof(small));
        ASSERT_EQ(placement_decide(&(struct placement_request) { .policy = POLICY_BIND, .size = GiB },
                                   host, N_HOST, &p, small, sizeof(small)), -EINVAL);
        ASSERT_EQ(strlen(small), sizeof(small) - 1);
        ASSERT_STREQ(small, "policy 'bind' n");
}

static void test_share(void)
{
        struct placement p;

        ASSERT_OK(decide(POLICY_BIND, (unsigned[]) { 1 }, 1, 4 * GiB, false, &p));
        ASSERT_U64_EQ(placement_share(&p, 4 * GiB, 1), 4 * GiB);
        ASSERT_U64_EQ(placement_share(&p, 4 * GiB, 0), 0);
        placement_done(&p);

        ASSERT_OK(decide(POLICY_INTERLEAVE, NULL, 0, 3 * GiB, false, &p));
        for (unsigned node = 0; node < 4; node++)
                ASSERT_U64_EQ(placement_share(&p, 3 * GiB, node), node == 2 ? 0 : GiB);
        placement_done(&p);

        ASSERT_OK(decide(POLICY_AUTO, NULL, 0, GiB, false, &p));
        ASSERT_U64_EQ(placement_share(&p, GiB, 1), GiB);
        ASSERT_U64_EQ(placement_share(&p, GiB, 0), 0);
        placement_done(&p);

        ASSERT_OK(decide(POLICY_PREFERRED, (unsigned[]) { 0 }, 1, GiB, false, &p));
        ASSERT_U64_EQ(placement_share(&p, GiB, 0), GiB);
        placement_done(&p);
        /* No nodes left (after placement_done): no share. */
        ASSERT_U64_EQ(placement_share(&p, GiB, 0), 0);
}

static int decide_cpus(enum placement_policy policy, const unsigned *cpu_nodes, size_t n_cpu_nodes, bool spill,
                       uint64_t size, struct placement *ret)
{
        struct placement_request req = {
                .policy = policy, .size = size, .cpus = "0-3", .cpu_nodes = cpu_nodes, .n_cpu_nodes = n_cpu_nodes,
                .spill = spill,
        };

        msg[0] = '\0';
        *ret = (struct placement) {};
        return placement_decide(&req, budgeted, ELEMENTSOF(budgeted), ret, msg, sizeof(msg));
}

static void test_budget(void)
{
        struct placement p;

        ASSERT_U64_EQ(placement_budget_left(&budgeted[0]), 2 * GiB);
        ASSERT_U64_EQ(placement_budget_left(&budgeted[1]), UINT64_MAX);
        ASSERT_EQ(decide_cpus(POLICY_BIND, NULL, 0, false, 3 * GiB, &p), -EINVAL); /* bind without nodes */
        ASSERT_EQ(placement_decide(&(struct placement_request) { .policy = POLICY_BIND, .nodes = (unsigned[]) { 0 },
                                                                 .n_nodes = 1, .size = 3 * GiB },
                                   budgeted, ELEMENTSOF(budgeted), &p, msg, sizeof(msg)), -ENOSPC);
        ASSERT_STREQ(msg, "node 0 has 2.0 GiB left of its 8.0 GiB budget; the region (3.0 GiB) needs 3.0 GiB there");
        ASSERT_OK(placement_decide(&(struct placement_request) { .policy = POLICY_BIND, .nodes = (unsigned[]) { 0 },
                                                                 .n_nodes = 1, .size = 2 * GiB },
                                   budgeted, ELEMENTSOF(budgeted), &p, msg, sizeof(msg)));
        ASSERT_STREQ(p.reason, "policy bind on node(s) 0, as asked");
        placement_done(&p);
        /* Interleave over 0 and 3: 2G each, node 0 has 2G left, fits exactly; 6G does not. */
        ASSERT_OK(placement_decide(&(struct placement_request) { .policy = POLICY_INTERLEAVE,
                                                                 .nodes = (unsigned[]) { 0, 3 }, .n_nodes = 2,
                                                                 .size = 4 * GiB },
                                   budgeted, ELEMENTSOF(budgeted), &p, msg, sizeof(msg)));
        placement_done(&p);
        /* auto without cpus: the most room within budget is node 1. */
        ASSERT_OK(decide_cpus(POLICY_AUTO, NULL, 0, false, 3 * GiB, &p));
        assert_placement(&p, POLICY_AUTO, POLICY_PREFERRED, (unsigned[]) { 1 }, 1);
        ASSERT_STREQ(p.reason, "node 1 has the most room (6.0 GiB free within budget)");
        placement_done(&p);
}

static void test_cpus(void)
{
        struct placement p;

        /* The CPUs' node has room: bound there. */
        ASSERT_OK(decide_cpus(POLICY_AUTO, (unsigned[]) { 0 }, 1, false, GiB, &p));
        assert_placement(&p, POLICY_AUTO, POLICY_BIND, (unsigned[]) { 0 }, 1);
        ASSERT_STREQ(p.reason, "cpus 0-3 run on node 0, which has room (2.0 GiB)");
        placement_done(&p);
        /* With spill it is only preferred: the kernel may go elsewhere. */
        ASSERT_OK(decide_cpus(POLICY_AUTO, (unsigned[]) { 0 }, 1, true, GiB, &p));
        assert_placement(&p, POLICY_AUTO, POLICY_PREFERRED, (unsigned[]) { 0 }, 1);
        placement_done(&p);
        /* No room on it, no spill: NoSpace saying what is left where. */
        ASSERT_EQ(decide_cpus(POLICY_AUTO, (unsigned[]) { 0 }, 1, false, 3 * GiB, &p), -ENOSPC);
        ASSERT_STREQ(msg, "the node(s) of cpus 0-3 cannot hold 3.0 GiB within budget (node 0: 2.0 GiB left of its "
                          "8.0 GiB budget, 12.0 GiB free); option spill=true lets it spread to other nodes");
        /* With spill: what node 0 can take, the rest on the node with most room. */
        ASSERT_OK(decide_cpus(POLICY_AUTO, (unsigned[]) { 0 }, 1, true, 3 * GiB, &p));
        assert_placement(&p, POLICY_AUTO, POLICY_BIND, (unsigned[]) { 0, 1 }, 2);
        ASSERT_U64_EQ(placement_share(&p, 3 * GiB, 0), 2 * GiB);
        ASSERT_U64_EQ(placement_share(&p, 3 * GiB, 1), GiB);
        ASSERT_STREQ(p.reason, "cpus 0-3: their nodes lack room for 3.0 GiB, spilled over nodes 0,1 (spill=true)");
        placement_done(&p);
        /* CPUs on two nodes, neither holds 4G alone: spread over both, no spill needed. */
        ASSERT_OK(decide_cpus(POLICY_AUTO, (unsigned[]) { 0, 3 }, 2, false, 4 * GiB, &p));
        assert_placement(&p, POLICY_AUTO, POLICY_BIND, (unsigned[]) { 3, 0 }, 2);
        ASSERT_U64_EQ(placement_share(&p, 4 * GiB, 3), 3 * GiB);
        ASSERT_U64_EQ(placement_share(&p, 4 * GiB, 0), GiB);
        ASSERT_STREQ(p.reason, "cpus 0-3: no one of their nodes has room for 4.0 GiB, spread over nodes 3,0");
        placement_done(&p);
        /* Of two nodes the one with the most room. */
        ASSERT_OK(decide_cpus(POLICY_AUTO, (unsigned[]) { 0, 3 }, 2, false, GiB, &p));
        assert_placement(&p, POLICY_AUTO, POLICY_BIND, (unsigned[]) { 3 }, 1);
        placement_done(&p);
        /* More than everything has: NoSpace even with spill. */
        ASSERT_EQ(decide_cpus(POLICY_AUTO, (unsigned[]) { 0 }, 1, true, 14 * GiB, &p), -ENOSPC);
        ASSERT_CONTAINS(msg, "node 1: no budget, 6.0 GiB free; node 3: 3.0 GiB left of its 4.0 GiB budget");
        /* cpus is for auto only, and must meet option nodes. */
        ASSERT_EQ(decide_cpus(POLICY_INTERLEAVE, (unsigned[]) { 0 }, 1, false, GiB, &p), -EINVAL);
        ASSERT_STREQ(msg, "option 'cpus' only applies to policy 'auto', not 'interleave'");
        ASSERT_EQ(placement_decide(&(struct placement_request) { .policy = POLICY_AUTO, .nodes = (unsigned[]) { 1 },
                                                                 .n_nodes = 1, .size = GiB, .cpus = "0-3",
                                                                 .cpu_nodes = (unsigned[]) { 0 }, .n_cpu_nodes = 1 },
                                   budgeted, ELEMENTSOF(budgeted), &p, msg, sizeof(msg)), -EINVAL);
        ASSERT_STREQ(msg, "cpus 0-3 run on none of the nodes in option 'nodes'");
}

int main(void)
{
        test_budget();
        test_cpus();
        test_policy_names();
        test_default();
        test_bind();
        test_preferred();
        test_interleave();
        test_auto();
        test_capacity();
        test_populate();
        test_errors();
        test_share();
        return 0;
}
