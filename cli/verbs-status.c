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

/* What status shows: from libgmem, and from the bus what libgmem does not read. */
struct status {
        char *version;
        gmem_node_info *nodes;
        size_t n_nodes;
        json_object *features;
        size_t n_regions;
        uint64_t region_bytes;
        uint32_t restored;
};

static void status_done(struct status *s)
{
        free(s->version);
        free(s->nodes);
        json_object_put(s->features);
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

static json_object *nodes_to_json(const struct status *s)
{
        _cleanup_(json_object_putp) json_object *array = json_object_new_array();

        for (size_t i = 0; array && i < s->n_nodes; i++) {
                _cleanup_(json_object_putp) json_object *e = json_object_new_object();

                if (json_add(e, "node", json_object_new_int64(s->nodes[i].node)) < 0 ||
                    json_add(e, "total", json_object_new_uint64(s->nodes[i].total)) < 0 ||
                    json_add(e, "free", json_object_new_uint64(s->nodes[i].free)) < 0 ||
                    json_add(e, "held", json_object_new_uint64(s->nodes[i].held)) < 0 ||
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
        r = sd_bus_get_property_trivial(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE,
                                        "RestoredRegions", &error, 'u', &s->restored);
        return r < 0 ? log_bus_error(&error, r, "reading RestoredRegions failed") : 0;
}

int verb_status(const struct args *a)
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
        r = list_regions(client, &regions, &n);
        if (r < 0)
                return r;
        r = a->json ? print_list_json(regions, n) : print_list_human(a, regions, n);
        gmem_region_info_free(regions, n);
        return r;
}
