/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemctl status and list: the daemon's nodes, kernel features and region
 * totals, and the table of regions. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmemctl.h"
#include "util.h"

struct node_row {
        uint32_t node;
        uint64_t total, free, held;
};

static int get_nodes(sd_bus *bus, struct node_row **ret, size_t *n_ret)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ struct node_row *rows = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_call_method(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE, "GetNodes", &error,
                               &reply, NULL);
        if (r < 0)
                return log_bus_error(&error, r, "GetNodes failed");
        r = sd_bus_message_enter_container(reply, 'a', "(uttt)");
        while (r >= 0) {
                struct node_row row, *grown;

                r = sd_bus_message_read(reply, "(uttt)", &row.node, &row.total, &row.free, &row.held);
                if (r <= 0)
                        break;
                grown = realloc(rows, (n + 1) * sizeof(*rows));
                if (!grown) {
                        r = -ENOMEM;
                        break;
                }
                rows = grown;
                rows[n++] = row;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return log_error_errno(r, "cannot read the GetNodes reply: %m");
        *ret = TAKE_PTR(rows);
        *n_ret = n;
        return 0;
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

static int print_status_human(const struct args *a, const char *version, const struct node_row *nodes,
                              size_t n_nodes, json_object *features, size_t n_regions, uint64_t region_bytes)
{
        static const char *const headers[] = { "NODE", "TOTAL", "FREE", "HELD" };
        _cleanup_(table_freep) struct table *t = NULL;
        char b1[FORMAT_BYTES_MAX], b2[FORMAT_BYTES_MAX], b3[FORMAT_BYTES_MAX];
        size_t width = 0;
        int r;

        printf("gmemd %s on %s\n\n", version, GMEM_BUS_NAME);
        r = table_new(ELEMENTSOF(headers), headers, &t);
        for (size_t i = 0; r >= 0 && i < n_nodes; i++)
                if ((r = table_addf(t, "%" PRIu32, nodes[i].node)) < 0 ||
                    (r = table_add(t, format_bytes(b1, sizeof(b1), nodes[i].total))) < 0 ||
                    (r = table_add(t, format_bytes(b2, sizeof(b2), nodes[i].free))) < 0 ||
                    (r = table_add(t, format_bytes(b3, sizeof(b3), nodes[i].held))) < 0)
                        break;
        if (r < 0)
                return log_error_errno(r, "out of memory");
        table_print(t, a->legend);

        printf("\nKernel features:\n");
        json_object_object_foreach(features, key0, value0)
                if (strlen(key0) > width)
                        width = strlen(key0);
        json_object_object_foreach(features, key, value) {
                printf("  %-*s  ", (int) width, key);
                print_feature_value(key, value);
                putchar('\n');
        }
        printf("\nRegions: %zu, %s\n", n_regions, format_bytes(b1, sizeof(b1), region_bytes));
        return 0;
}

static int print_status_json(const char *version, const struct node_row *nodes, size_t n_nodes,
                             json_object *features, size_t n_regions, uint64_t region_bytes)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object(), *array = json_object_new_array();

        for (size_t i = 0; array && i < n_nodes; i++) {
                _cleanup_(json_object_putp) json_object *e = json_object_new_object();

                if (json_add(e, "node", json_object_new_int64(nodes[i].node)) < 0 ||
                    json_add(e, "total", json_object_new_uint64(nodes[i].total)) < 0 ||
                    json_add(e, "free", json_object_new_uint64(nodes[i].free)) < 0 ||
                    json_add(e, "held", json_object_new_uint64(nodes[i].held)) < 0 ||
                    json_object_array_add(array, e) < 0)
                        return log_error_errno(-ENOMEM, "out of memory");
                e = NULL;
        }
        if (json_add(o, "version", json_object_new_string(version)) < 0 ||
            json_add(o, "nodes", TAKE_PTR(array)) < 0 ||
            json_add(o, "kernel_features", json_object_get(features)) < 0 ||
            json_add(o, "regions", json_object_new_uint64(n_regions)) < 0 ||
            json_add(o, "region_bytes", json_object_new_uint64(region_bytes)) < 0)
                return log_error_errno(-ENOMEM, "out of memory");
        return json_print(o);
}

int verb_status(const struct args *a)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *features = NULL;
        _cleanup_free_ struct node_row *nodes = NULL;
        _cleanup_free_ char *version = NULL;
        struct region_entry *regions = NULL;
        size_t n_nodes = 0, n_regions = 0;
        uint64_t region_bytes = 0;
        int r;

        r = bus_connect(a->bus, &bus);
        if (r < 0)
                return r;
        r = sd_bus_get_property_string(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE, "Version",
                                       &error, &version);
        if (r < 0)
                return log_bus_error(&error, r, "reading the daemon's Version failed");
        r = get_nodes(bus, &nodes, &n_nodes);
        if (r < 0)
                return r;
        r = get_kernel_features(bus, &features);
        if (r < 0)
                return r;
        r = list_regions(bus, &regions, &n_regions);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_regions; i++)
                region_bytes += regions[i].size;
        region_entries_free(regions, n_regions);

        if (a->json)
                return print_status_json(version, nodes, n_nodes, features, n_regions, region_bytes);
        return print_status_human(a, version, nodes, n_nodes, features, n_regions, region_bytes);
}

static int print_list_json(const struct region_entry *regions, size_t n)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object(), *array = json_object_new_array();

        for (size_t i = 0; array && i < n; i++) {
                _cleanup_(json_object_putp) json_object *e = json_object_new_object();

                if (json_add(e, "path", json_object_new_string(regions[i].path)) < 0 ||
                    json_add(e, "id", json_object_new_uint64(regions[i].id)) < 0 ||
                    json_add(e, "name", json_object_new_string(regions[i].name)) < 0 ||
                    json_add(e, "size", json_object_new_uint64(regions[i].size)) < 0 ||
                    json_add(e, "policy", json_object_new_string(regions[i].policy)) < 0 ||
                    json_add(e, "owner_uid", json_object_new_int64(regions[i].owner_uid)) < 0 ||
                    json_object_array_add(array, e) < 0)
                        return log_error_errno(-ENOMEM, "out of memory");
                e = NULL;
        }
        if (json_add(o, "regions", TAKE_PTR(array)) < 0)
                return log_error_errno(-ENOMEM, "out of memory");
        return json_print(o);
}

static int print_list_human(const struct args *a, const struct region_entry *regions, size_t n)
{
        static const char *const headers[] = { "ID", "NAME", "SIZE", "POLICY", "OWNER", "PATH" };
        _cleanup_(table_freep) struct table *t = NULL;
        char size[FORMAT_BYTES_MAX];
        int r;

        r = table_new(ELEMENTSOF(headers), headers, &t);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *owner = format_owner(regions[i].owner_uid);

                if (!owner ||
                    (r = table_addf(t, "%" PRIu64, regions[i].id)) < 0 ||
                    (r = table_add(t, regions[i].name)) < 0 ||
                    (r = table_add(t, format_bytes(size, sizeof(size), regions[i].size))) < 0 ||
                    (r = table_add(t, regions[i].policy)) < 0 ||
                    (r = table_add(t, owner)) < 0 ||
                    (r = table_add(t, regions[i].path)) < 0)
                        r = -ENOMEM;
        }
        if (r < 0)
                return log_error_errno(r, "out of memory");
        if (n > 0)
                table_print(t, a->legend);
        if (a->legend && n == 0)
                printf("No regions.\n");
        else if (a->legend)
                printf("\n%zu region%s listed.\n", n, n == 1 ? "" : "s");
        return 0;
}

int verb_list(const struct args *a)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        struct region_entry *regions = NULL;
        size_t n = 0;
        int r;

        r = bus_connect(a->bus, &bus);
        if (r < 0)
                return r;
        r = list_regions(bus, &regions, &n);
        if (r < 0)
                return r;
        r = a->json ? print_list_json(regions, n) : print_list_human(a, regions, n);
        region_entries_free(regions, n);
        return r;
}
