/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemctl usage and metrics: gmemd's accounting per uid (GetUsage) and per
 * node (GetNodeFacts), as a table, JSON, or the Prometheus text format. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmem-config.h"
#include "gmemctl.h"
#include "util.h"

#define NO_LIMIT UINT64_MAX

int manager_call_json(sd_bus *bus, const char *method, json_object **ret)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE, method, &error, &reply,
                               "");
        if (r < 0) {
                char what[64];

                snprintf(what, sizeof(what), "%s failed", method);
                return log_bus_error(&error, r, what);
        }
        r = bus_read_json(reply, ret);
        return r < 0 ? log_error_errno(r, "cannot read the answer to %s: %m", method) : 0;
}

uint64_t node_fact(json_object *node_entry, const char *key)
{
        json_object *facts = json_object_array_get_idx(node_entry, 1), *v;

        return json_object_object_get_ex(facts, key, &v) ? json_object_get_uint64(v) : 0;
}

/* --- usage --------------------------------------------------------------------------- */

/* GetUsage's [[node, bytes], ...] as {"0": bytes, ...}; null for "no limit" when @limits. */
static json_object *per_node_json(json_object *pairs, bool limits)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        char key[16];

        for (size_t i = 0; o && i < json_object_array_length(pairs); i++) {
                json_object *pair = json_object_array_get_idx(pairs, i);
                uint64_t bytes = json_object_get_uint64(json_object_array_get_idx(pair, 1));

                snprintf(key, sizeof(key), "%" PRIu64, json_object_get_uint64(json_object_array_get_idx(pair, 0)));
                if (limits && bytes == NO_LIMIT ? json_object_object_add(o, key, NULL) < 0 :
                    json_add(o, key, json_object_new_uint64(bytes)) < 0)
                        return NULL;
        }
        return TAKE_PTR(o);
}

static json_object *user_json(json_object *row)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        uint64_t bytes_left = json_object_get_uint64(json_object_array_get_idx(row, 4));
        uint64_t regions_left = json_object_get_uint64(json_object_array_get_idx(row, 5));

        if (!o ||
            json_add(o, "uid", json_object_new_uint64(json_object_get_uint64(json_object_array_get_idx(row, 0)))) < 0 ||
            json_add(o, "regions", json_object_new_uint64(json_object_get_uint64(json_object_array_get_idx(row, 1)))) < 0 ||
            json_add(o, "bytes", json_object_new_uint64(json_object_get_uint64(json_object_array_get_idx(row, 2)))) < 0 ||
            json_add(o, "bytes_per_node", per_node_json(json_object_array_get_idx(row, 3), false)) < 0 ||
            json_object_object_add(o, "bytes_left", bytes_left == NO_LIMIT ? NULL : json_object_new_uint64(bytes_left)) < 0 ||
            json_object_object_add(o, "regions_left", regions_left == UINT32_MAX ? NULL :
                                   json_object_new_uint64(regions_left)) < 0 ||
            json_add(o, "budget_left_per_node", per_node_json(json_object_array_get_idx(row, 6), true)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static int print_usage_json(json_object *rows)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object(), *users = json_object_new_array();

        for (size_t i = 0; users && i < json_object_array_length(rows); i++) {
                json_object *u = user_json(json_object_array_get_idx(rows, i));

                if (!u || json_object_array_add(users, u) < 0)
                        return log_oom();
        }
        if (json_add(o, "users", TAKE_PTR(users)) < 0)
                return log_oom();
        return json_print(o);
}

/* "0:1.0 GiB 1:2.0 GiB", or "-" when nothing is charged anywhere. */
static char *format_per_node(json_object *pairs)
{
        char buf[1024] = "", b[FORMAT_BYTES_MAX];
        size_t off = 0;

        for (size_t i = 0; i < json_object_array_length(pairs) && off < sizeof(buf); i++) {
                json_object *pair = json_object_array_get_idx(pairs, i);
                uint64_t bytes = json_object_get_uint64(json_object_array_get_idx(pair, 1));

                if (bytes == 0)
                        continue;
                off += (size_t) snprintf(buf + off, sizeof(buf) - off, "%s%" PRIu64 ":%s", off ? " " : "",
                                         json_object_get_uint64(json_object_array_get_idx(pair, 0)),
                                         format_bytes(b, sizeof(b), bytes));
        }
        return strdup(off ? buf : "-");
}

static int add_user_row(struct table *t, json_object *row)
{
        uint64_t bytes_left = json_object_get_uint64(json_object_array_get_idx(row, 4));
        uint64_t regions_left = json_object_get_uint64(json_object_array_get_idx(row, 5));
        _cleanup_free_ char *owner = format_owner((uint32_t) json_object_get_uint64(json_object_array_get_idx(row, 0)));
        _cleanup_free_ char *per_node = format_per_node(json_object_array_get_idx(row, 3));
        char b[FORMAT_BYTES_MAX];
        int r;

        if (!owner || !per_node)
                return -ENOMEM;
        if ((r = table_add(t, owner)) < 0 ||
            (r = table_add_u64(t, json_object_get_uint64(json_object_array_get_idx(row, 1)))) < 0 ||
            (r = table_add(t, format_bytes(b, sizeof(b), json_object_get_uint64(json_object_array_get_idx(row, 2))))) < 0 ||
            (r = table_add(t, per_node)) < 0 ||
            (r = table_add(t, bytes_left == NO_LIMIT ? "-" : format_bytes(b, sizeof(b), bytes_left))) < 0)
                return r;
        if (regions_left == UINT32_MAX)
                return table_add(t, "-");
        return table_add_u64(t, regions_left);
}

int verb_usage(const struct args *a)
{
        static const char *const headers[] = { "OWNER", "REGIONS", "BYTES", "PER NODE", "BYTES LEFT", "REGIONS LEFT" };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *rows = NULL;
        _cleanup_(table_freep) struct table *t = NULL;
        int r;

        r = bus_connect(a->bus, &bus);
        if (r < 0)
                return r;
        r = manager_call_json(bus, "GetUsage", &rows);
        if (r < 0)
                return r;
        if (a->json)
                return print_usage_json(rows);
        r = table_new(ELEMENTSOF(headers), headers, &t);
        for (size_t i = 0; r >= 0 && i < json_object_array_length(rows); i++)
                r = add_user_row(t, json_object_array_get_idx(rows, i));
        if (r >= 0)
                r = table_print(t, a->legend);
        return r < 0 ? log_oom() : 0;
}

/* --- metrics: the Prometheus text exposition format ------------------------------------- */

struct metric {
        const char *name, *help, *fact; /* fact: GetNodeFacts key, for per-node metrics */
};

static const struct metric node_metrics[] = {
        { "gmem_node_memory_bytes", "Memory of the NUMA node.", "Total" },
        { "gmem_node_free_bytes", "Free memory of the NUMA node.", "Free" },
        { "gmem_node_held_bytes", "Bytes resident in gmemd regions on the node, as last measured.", "Held" },
        { "gmem_node_promised_bytes", "Bytes charged to the node's budget: each region's share there or what it holds there, whichever is more.", "Promised" },
        { "gmem_node_budget_bytes", "The node's budget from gmemd.json; absent when it has none.", "Budget" },
        { "gmem_node_budget_left_bytes", "What the node's budget has left; absent when it has none.", "BudgetLeft" },
};

/* A label value, escaped as the format wants (backslash, quote, newline). */
static void print_label_value(const char *s)
{
        putchar('"');
        for (; *s; s++)
                if (*s == '\\' || *s == '"')
                        printf("\\%c", *s);
                else if (*s == '\n')
                        fputs("\\n", stdout);
                else
                        putchar(*s);
        putchar('"');
}

static void metric_header(const char *name, const char *help)
{
        printf("# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void print_node_metrics(json_object *facts)
{
        for (size_t m = 0; m < ELEMENTSOF(node_metrics); m++) {
                metric_header(node_metrics[m].name, node_metrics[m].help);
                for (size_t i = 0; i < json_object_array_length(facts); i++) {
                        json_object *entry = json_object_array_get_idx(facts, i);
                        uint64_t value = node_fact(entry, node_metrics[m].fact);

                        if (value == NO_LIMIT)
                                continue; /* no budget: no sample rather than 2^64-1 */
                        printf("%s{node=\"%" PRIu64 "\"} %" PRIu64 "\n", node_metrics[m].name,
                               json_object_get_uint64(json_object_array_get_idx(entry, 0)), value);
                }
        }
}

static void print_user_metrics(json_object *rows)
{
        static const struct { const char *name, *help; size_t column; } user_metrics[] = {
                { "gmem_user_regions", "Regions the uid holds.", 1 },
                { "gmem_user_bytes", "Bytes of the regions the uid holds.", 2 },
        };

        for (size_t m = 0; m < ELEMENTSOF(user_metrics); m++) {
                metric_header(user_metrics[m].name, user_metrics[m].help);
                for (size_t i = 0; i < json_object_array_length(rows); i++) {
                        json_object *row = json_object_array_get_idx(rows, i);

                        printf("%s{uid=\"%" PRIu64 "\"} %" PRIu64 "\n", user_metrics[m].name,
                               json_object_get_uint64(json_object_array_get_idx(row, 0)),
                               json_object_get_uint64(json_object_array_get_idx(row, user_metrics[m].column)));
                }
        }
        metric_header("gmem_user_node_bytes", "Bytes the uid's regions are charged on the node.");
        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                json_object *row = json_object_array_get_idx(rows, i), *pairs = json_object_array_get_idx(row, 3);

                for (size_t j = 0; j < json_object_array_length(pairs); j++) {
                        json_object *pair = json_object_array_get_idx(pairs, j);

                        printf("gmem_user_node_bytes{uid=\"%" PRIu64 "\",node=\"%" PRIu64 "\"} %" PRIu64 "\n",
                               json_object_get_uint64(json_object_array_get_idx(row, 0)),
                               json_object_get_uint64(json_object_array_get_idx(pair, 0)),
                               json_object_get_uint64(json_object_array_get_idx(pair, 1)));
                }
        }
}

int verb_metrics(const struct args *a)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *facts = NULL, *rows = NULL;
        _cleanup_free_ char *version = NULL;
        uint64_t regions = 0;
        int r;

        r = bus_connect(a->bus, &bus);
        if (r < 0)
                return r;
        if ((r = manager_call_json(bus, "GetNodeFacts", &facts)) < 0 || (r = manager_call_json(bus, "GetUsage", &rows)) < 0)
                return r;
        r = sd_bus_get_property_string(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE, "Version", NULL,
                                       &version);
        if (r < 0)
                return log_error_errno(r, "reading the daemon's Version failed: %m");
        for (size_t i = 0; i < json_object_array_length(rows); i++)
                regions += json_object_get_uint64(json_object_array_get_idx(json_object_array_get_idx(rows, i), 1));
        metric_header("gmem_info", "gmemd's version; always 1.");
        fputs("gmem_info{version=", stdout);
        print_label_value(version);
        fputs(",gmemctl=", stdout);
        print_label_value(GMEM_VERSION);
        fputs("} 1\n", stdout);
        metric_header("gmem_regions", "Regions gmemd holds.");
        printf("gmem_regions %" PRIu64 "\n", regions);
        print_node_metrics(facts);
        print_user_metrics(rows);
        return 0;
}
