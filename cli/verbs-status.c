/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemctl status and list: the daemon's nodes, kernel features and region
 * totals, and the table of regions. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gmemctl.h"
#include "util.h"

/* What status shows: from libgmem, and from the bus what libgmem does not read. */
struct status {
        char *version;
        gmem_node_info *nodes;
        size_t n_nodes;
        json_object *features;
        json_object *facts; /* GetNodeFacts */
        size_t n_regions;
        uint64_t region_bytes;
        uint32_t restored;
};

static void status_done(struct status *s)
{
        free(s->version);
        free(s->nodes);
        json_object_put(s->features);
        json_object_put(s->facts);
}

static int get_kernel_features(sd_bus *bus, json_object **ret)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_get_property(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE, "KernelFeatures",
                                &error, &reply, "a{sv}");
        if (r < 0)
                return log_bus_error(&error, r, "reading KernelFeatures failed");
        r = bus_read_json(reply, ret);
        if (r < 0)
                return log_error_errno(r, "cannot read KernelFeatures: %m");
        return 0;
}

/* One feature value for a person: yes/no, hex flags, "k=v, k=v" maps. */
static void print_feature_value(const char *key, json_object *v)
{
        size_t len = strlen(key);
        bool first = true;

        switch (json_object_get_type(v)) {
        case json_type_boolean:
                fputs(json_object_get_boolean(v) ? "yes" : "no", stdout);
                break;
        case json_type_int:
                if (len >= 5 && streq(key + len - 5, "Flags"))
                        printf("0x%" PRIx64, json_object_get_uint64(v));
                else
                        fputs(json_object_to_json_string(v), stdout);
                break;
        case json_type_string:
                fputs(json_object_get_string(v), stdout);
                break;
        case json_type_object: {
                json_object_object_foreach(v, k, item) {
                        printf("%s%s=", first ? "" : " ", k);
                        print_feature_value(k, item);
                        first = false;
                }
                if (first)
                        fputs("-", stdout);
                break;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(v); i++) {
                        if (i)
                                fputs(",", stdout);
                        print_feature_value("", json_object_array_get_idx(v, i));
                }
                if (json_object_array_length(v) == 0)
                        fputs("-", stdout);
                break;
        default:
                fputs(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                      stdout);
        }
}

#define BAR_WIDTH 40

/* The facts of @node, or NULL. */
static json_object *facts_of(const struct status *s, uint32_t node)
{
        for (size_t i = 0; i < json_object_array_length(s->facts); i++) {
                json_object *entry = json_object_array_get_idx(s->facts, i);

                if (json_object_get_uint64(json_object_array_get_idx(entry, 0)) == node)
                        return entry;
        }
        return NULL;
}

/* Columns of the bar for @bytes of @total, rounded up so that anything shows. */
static size_t bar_cells(uint64_t bytes, uint64_t total)
{
        if (total == 0 || bytes == 0)
                return 0;
        return (size_t) MIN((uint64_t) BAR_WIDTH, ((__uint128_t) bytes * BAR_WIDTH + total - 1) / total);
}

/* node 0 [###===------        |      ] held 2.0 GiB, promised 3.0 GiB of a 8.0 GiB budget, 10.0 GiB free
 * '#' held, '=' promised but not held yet, '-' free within the budget, '|' where the budget ends. */
static void print_node_bar(json_object *entry)
{
        uint64_t total = node_fact(entry, "Total"), held = node_fact(entry, "Held");
        uint64_t promised = MAX(node_fact(entry, "Promised"), held), free_bytes = node_fact(entry, "Free");
        uint64_t budget = node_fact(entry, "Budget");
        size_t n_held = bar_cells(held, total), n_promised = bar_cells(promised, total);
        size_t n_budget = budget == UINT64_MAX ? BAR_WIDTH : bar_cells(budget, total);
        size_t n_free = MIN((size_t) BAR_WIDTH, n_promised + bar_cells(free_bytes, total));
        char b1[FORMAT_BYTES_MAX], b2[FORMAT_BYTES_MAX], b3[FORMAT_BYTES_MAX], b4[FORMAT_BYTES_MAX];
        char bar[BAR_WIDTH + 1];

        for (size_t i = 0; i < BAR_WIDTH; i++)
                bar[i] = i < n_held ? '#' : i < n_promised ? '=' : i < MIN(n_free, n_budget) ? '-' : ' ';
        if (budget != UINT64_MAX && n_budget < BAR_WIDTH)
                bar[n_budget] = '|';
        bar[BAR_WIDTH] = '\0';
        printf("node %-3" PRIu64 " [%s] held %s, promised %s", json_object_get_uint64(json_object_array_get_idx(entry, 0)),
               bar, format_bytes(b1, sizeof(b1), held), format_bytes(b2, sizeof(b2), promised));
        if (budget != UINT64_MAX)
                printf(" of a %s budget", format_bytes(b3, sizeof(b3), budget));
        printf(", %s free\n", format_bytes(b4, sizeof(b4), free_bytes));
}

static int print_status_human(const struct args *a, const struct status *s)
{
        static const char *const headers[] = { "NODE", "TOTAL", "FREE", "HELD" };
        _cleanup_(table_freep) struct table *t = NULL;
        char b1[FORMAT_BYTES_MAX], b2[FORMAT_BYTES_MAX], b3[FORMAT_BYTES_MAX];
        size_t width = 0;
        int r;

        printf("gmemd %s on %s\n\n", s->version, GMEM_BUS_NAME);
        r = table_new(ELEMENTSOF(headers), headers, &t);
        for (size_t i = 0; r >= 0 && i < s->n_nodes; i++)
                if ((r = table_add_u64(t, s->nodes[i].node)) < 0 ||
                    (r = table_add(t, format_bytes(b1, sizeof(b1), s->nodes[i].total))) < 0 ||
                    (r = table_add(t, format_bytes(b2, sizeof(b2), s->nodes[i].free))) < 0 ||
                    (r = table_add(t, format_bytes(b3, sizeof(b3), s->nodes[i].held))) < 0)
                        break;
        if (r >= 0)
                r = table_print(t, a->legend);
        if (r < 0)
                return log_oom();
        putchar('\n');
        for (size_t i = 0; i < s->n_nodes; i++) {
                json_object *entry = facts_of(s, s->nodes[i].node);

                if (entry)
                        print_node_bar(entry);
        }
        if (a->legend)
                printf("('#' held, '=' promised, '-' free within the budget, '|' the budget's end)\n");

        printf("\nKernel features:\n");
        json_object_object_foreach(s->features, key0, value0)
                if (strlen(key0) > width)
                        width = strlen(key0);
        json_object_object_foreach(s->features, key, value) {
                printf("  %-*s  ", (int) width, key);
                print_feature_value(key, value);
                putchar('\n');
        }
        printf("\nRegions: %zu, %s (%" PRIu32 " restored when gmemd started)\n", s->n_regions,
               format_bytes(b1, sizeof(b1), s->region_bytes), s->restored);
        return 0;
}

/* promised, budget and budget_left (null: no budget), cpus and distances of a node. */
static int add_facts_json(json_object *e, json_object *entry)
{
        json_object *facts = json_object_array_get_idx(entry, 1), *v;
        uint64_t budget = node_fact(entry, "Budget"), left = node_fact(entry, "BudgetLeft");

        if (!entry)
                return 0;
        if (json_add(e, "promised", json_object_new_uint64(node_fact(entry, "Promised"))) < 0 ||
            json_object_object_add(e, "budget", budget == UINT64_MAX ? NULL : json_object_new_uint64(budget)) < 0 ||
            json_object_object_add(e, "budget_left", left == UINT64_MAX ? NULL : json_object_new_uint64(left)) < 0)
                return -ENOMEM;
        if (json_object_object_get_ex(facts, "CPUs", &v) && json_add(e, "cpus", json_object_get(v)) < 0)
                return -ENOMEM;
        if (json_object_object_get_ex(facts, "Distances", &v) && json_add(e, "distances", json_object_get(v)) < 0)
                return -ENOMEM;
        return 0;
}

static json_object *nodes_to_json(const struct status *s)
{
        _cleanup_(json_object_putp) json_object *array = json_object_new_array();

        for (size_t i = 0; array && i < s->n_nodes; i++) {
                _cleanup_(json_object_putp) json_object *e = json_object_new_object();

                if (json_add(e, "node", json_object_new_int64(s->nodes[i].node)) < 0 ||
                    json_add(e, "total", json_object_new_uint64(s->nodes[i].total)) < 0 ||
                    json_add(e, "free", json_object_new_uint64(s->nodes[i].free)) < 0 ||
                    json_add(e, "held", json_object_new_uint64(s->nodes[i].held)) < 0 ||
                    add_facts_json(e, facts_of(s, s->nodes[i].node)) < 0 ||
                    json_object_array_add(array, e) < 0)
                        return NULL;
                e = NULL; /* the array owns it now */
        }
        return TAKE_PTR(array);
}

static int print_status_json(const struct status *s)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (json_add(o, "version", json_object_new_string(s->version)) < 0 ||
            json_add(o, "nodes", nodes_to_json(s)) < 0 ||
            json_add(o, "kernel_features", json_object_get(s->features)) < 0 ||
            json_add(o, "regions", json_object_new_uint64(s->n_regions)) < 0 ||
            json_add(o, "region_bytes", json_object_new_uint64(s->region_bytes)) < 0 ||
            json_add(o, "restored_regions", json_object_new_uint64(s->restored)) < 0)
                return log_oom();
        return json_print(o);
}

/* Version, nodes and regions through libgmem. */
static int read_status_client(const struct args *a, struct status *s)
{
        _cleanup_(gmem_client_unrefp) gmem_client *client = NULL;
        gmem_region_info *regions = NULL;
        int r;

        r = client_connect(a->bus, &client);
        if (r < 0)
                return r;
        r = gmem_client_get_version(client, &s->version);
        if (r < 0)
                return log_client_error(client, r, "reading the daemon's Version failed");
        r = gmem_client_get_nodes(client, &s->nodes, &s->n_nodes);
        if (r < 0)
                return log_client_error(client, r, "GetNodes failed");
        r = list_regions(client, &regions, &s->n_regions);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_regions; i++)
                s->region_bytes += regions[i].size;
        gmem_region_info_free(regions, s->n_regions);
        return 0;
}

/* KernelFeatures (any keys, as JSON) and RestoredRegions from the bus. */
static int read_status_bus(const struct args *a, struct status *s)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = bus_connect(a->bus, &bus);
        if (r < 0)
                return r;
        r = get_kernel_features(bus, &s->features);
        if (r < 0)
                return r;
        r = manager_call_json(bus, "GetNodeFacts", &s->facts);
        if (r < 0)
                return r;
        r = sd_bus_get_property_trivial(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE,
                                        "RestoredRegions", &error, 'u', &s->restored);
        return r < 0 ? log_bus_error(&error, r, "reading RestoredRegions failed") : 0;
}

static int status_once(const struct args *a)
{
        _cleanup_(status_done) struct status s = {};
        int r;

        r = read_status_client(a, &s);
        if (r >= 0)
                r = read_status_bus(a, &s);
        if (r < 0)
                return r;
        return a->json ? print_status_json(&s) : print_status_human(a, &s);
}

/* --watch: again every interval until SIGINT/SIGTERM (or --count times). On a
 * terminal each round redraws the screen; otherwise the rounds follow each
 * other, separated by a blank line (one JSON document a line with --json). */
int verb_status(const struct args *a)
{
        bool tty = isatty(STDOUT_FILENO);
        struct timespec interval = { .tv_sec = (time_t) (a->watch_usec / 1000000),
                                     .tv_nsec = (long) (a->watch_usec % 1000000) * 1000 };
        sigset_t mask;
        int r;

        if (!a->watch_usec)
                return status_once(a);
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        for (unsigned round = 1;; round++) {
                if (tty && !a->json)
                        fputs("\033[H\033[2J", stdout); /* home, clear the screen */
                else if (round > 1 && !a->json)
                        putchar('\n');
                r = status_once(a);
                if (r < 0)
                        return r;
                fflush(stdout);
                if (a->watch_count && round >= a->watch_count)
                        return 0;
                if (sigtimedwait(&mask, NULL, &interval) >= 0)
                        return 0; /* SIGINT or SIGTERM: a clean end */
        }
}

static int print_list_json(const gmem_region_info *regions, size_t n)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object(), *array = json_object_new_array();

        for (size_t i = 0; array && i < n; i++) {
                _cleanup_(json_object_putp) json_object *e = json_object_new_object();

                if (json_add(e, "path", json_object_new_string(regions[i].path)) < 0 ||
                    json_add(e, "id", json_object_new_uint64(region_info_id(&regions[i]))) < 0 ||
                    json_add(e, "name", json_object_new_string(regions[i].name)) < 0 ||
                    json_add(e, "size", json_object_new_uint64(regions[i].size)) < 0 ||
                    json_add(e, "policy", json_object_new_string(regions[i].policy)) < 0 ||
                    json_add(e, "owner_uid", json_object_new_int64(regions[i].owner_uid)) < 0 ||
                    json_object_array_add(array, e) < 0)
                        return log_oom();
                e = NULL;
        }
        if (json_add(o, "regions", TAKE_PTR(array)) < 0)
                return log_oom();
        return json_print(o);
}

static int print_list_human(const struct args *a, const gmem_region_info *regions, size_t n)
{
        static const char *const headers[] = { "ID", "NAME", "SIZE", "POLICY", "OWNER", "PATH" };
        _cleanup_(table_freep) struct table *t = NULL;
        char size[FORMAT_BYTES_MAX];
        int r;

        r = table_new(ELEMENTSOF(headers), headers, &t);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *owner = format_owner(regions[i].owner_uid);

                if (!owner ||
                    (r = table_add_u64(t, region_info_id(&regions[i]))) < 0 ||
                    (r = table_add(t, regions[i].name)) < 0 ||
                    (r = table_add(t, format_bytes(size, sizeof(size), regions[i].size))) < 0 ||
                    (r = table_add(t, regions[i].policy)) < 0 ||
                    (r = table_add(t, owner)) < 0 ||
                    (r = table_add(t, regions[i].path)) < 0)
                        r = -ENOMEM;
        }
        if (r >= 0 && n > 0)
                r = table_print(t, a->legend);
        if (r < 0)
                return log_oom();
        if (a->legend && n == 0)
                printf("No regions.\n");
        else if (a->legend)
                printf("\n%zu region%s listed.\n", n, n == 1 ? "" : "s");
        if (a->legend && a->list_limit > 0 && n == a->list_limit) /* sorted: the first is the oldest */
                printf("More may follow: the next page is --below=%" PRIu64 " (with the same --uid and --limit).\n",
                       region_info_id(&regions[0]));
        return 0;
}

int verb_list(const struct args *a)
{
        _cleanup_(gmem_client_unrefp) gmem_client *client = NULL;
        gmem_region_info *regions = NULL;
        size_t n = 0;
        int r;

        r = client_connect(a->bus, &client);
        if (r < 0)
                return r;
        r = list_regions_page(client, a, &regions, &n);
        if (r < 0)
                return r;
        r = a->json ? print_list_json(regions, n) : print_list_human(a, regions, n);
        gmem_region_info_free(regions, n);
        return r;
}
