/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemctl's bus access: choosing and opening the bus, finding regions by id,
 * name or path, reading their properties, and any D-Bus value as JSON. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmemctl.h"
#include "util.h"

int bus_address(const char *bus_arg, char **ret)
{
        const char *e;
        char *s;

        if (!bus_arg) {
                e = getenv("GMEM_BUS_ADDRESS");
                bus_arg = e && *e ? e : "system";
        }
        if (streq(bus_arg, "system")) {
                e = getenv("DBUS_SYSTEM_BUS_ADDRESS");
                s = strdup(e && *e ? e : "unix:path=/run/dbus/system_bus_socket");
        } else if (streq(bus_arg, "session")) {
                e = getenv("DBUS_SESSION_BUS_ADDRESS");
                if (e && *e)
                        s = strdup(e);
                else if ((e = getenv("XDG_RUNTIME_DIR")) && *e) {
                        if (asprintf(&s, "unix:path=%s/bus", e) < 0)
                                s = NULL;
                } else
                        return log_error_errno(-ENXIO, "no session bus: neither $DBUS_SESSION_BUS_ADDRESS "
                                                       "nor $XDG_RUNTIME_DIR is set");
        } else
                s = strdup(bus_arg);
        if (!s)
                return log_oom();
        *ret = s;
        return 0;
}

int bus_connect(const char *bus_arg, sd_bus **ret)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *address = NULL;
        int r;

        r = bus_address(bus_arg, &address);
        if (r < 0)
                return r;
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return log_error_errno(r, "cannot connect to the bus at %s: %m", address);
        *ret = TAKE_PTR(bus);
        return 0;
}

int client_connect(const char *bus_arg, gmem_client **ret)
{
        _cleanup_free_ char *address = NULL;
        int r;

        r = bus_address(bus_arg, &address);
        if (r < 0)
                return r;
        r = gmem_client_new(address, ret);
        if (r < 0)
                return log_error_errno(r, "cannot connect to the bus at %s: %m", address);
        return 0;
}

int log_client_error(gmem_client *client, int r, const char *what)
{
        const char *message = gmem_client_get_error(client), *name = gmem_client_get_error_name(client);

        if (message && name)
                return log_error_errno(r, "%s (%s)", message, name);
        if (message)
                return log_error_errno(r, "%s", message);
        return log_error_errno(r, "%s: %m", what);
}

uint64_t region_info_id(const gmem_region_info *info)
{
        uint64_t id = 0;

        (void) gmem_region_id_from_path(info->path, &id);
        return id;
}

static int info_compare(const void *a, const void *b)
{
        uint64_t x = region_info_id(a), y = region_info_id(b);

        return x < y ? -1 : x > y;
}

/* Sorted by id, so that tables and JSON keep a stable order; with @a's list
 * options (a->filtered), only the page they ask for. */
int list_regions_page(gmem_client *client, const struct args *a, gmem_region_info **ret, size_t *n_ret)
{
        int r = a && a->filtered ? gmem_client_list_regions_filtered(client, a->owner_uid, a->below_id,
                                                                     a->list_offset, a->list_limit, ret, n_ret)
                                 : gmem_client_list_regions(client, ret, n_ret);

        if (r < 0)
                return log_client_error(client, r, a && a->filtered ? "ListRegionsFiltered failed"
                                                                    : "ListRegions failed");
        if (*n_ret > 1)
                qsort(*ret, *n_ret, sizeof(**ret), info_compare);
        return 0;
}

int list_regions(gmem_client *client, gmem_region_info **ret, size_t *n_ret)
{
        return list_regions_page(client, NULL, ret, n_ret);
}

/* Region @e matches REGION given as an object path, an id or (@by_name) a name. */
static bool region_matches(const gmem_region_info *e, const char *spec, bool by_name)
{
        char id[32];

        if (spec[0] == '/')
                return streq(e->path, spec);
        if (by_name)
                return streq(e->name, spec);
        snprintf(id, sizeof(id), "%" PRIu64, region_info_id(e));
        return streq(id, spec);
}

int region_resolve(gmem_client *client, const char *spec, char **ret_path)
{
        gmem_region_info *entries = NULL;
        const gmem_region_info *found = NULL;
        size_t n = 0, matches = 0;
        bool by_id = spec[0] >= '0' && spec[0] <= '9' && spec[strspn(spec, "0123456789")] == '\0';
        int r;

        r = list_regions(client, &entries, &n);
        if (r < 0)
                return r;
        /* An all-digit name is legal: fall back to names when no id matches. */
        for (int pass = by_id ? 0 : 1; pass < 2 && !found; pass++)
                for (size_t i = 0; i < n; i++)
                        if (region_matches(&entries[i], spec, pass == 1)) {
                                found = found ?: &entries[i];
                                matches++;
                        }
        if (!found)
                r = log_error_errno(-ENOENT, "no region '%s'; 'gmemctl list' shows the regions", spec);
        else if (matches > 1)
                r = log_error_errno(-ENOTUNIQ, "%zu regions are named '%s'; give the id or the object path instead",
                                    matches, spec);
        else {
                *ret_path = strdup(found->path);
                r = *ret_path ? 0 : log_oom();
        }
        gmem_region_info_free(entries, n);
        return r;
}

void region_props_done(struct region_props *p)
{
        free(p->name);
        free(p->policy);
        free(p->nodes);
        free(p->resident);
        free(p->placement_reason);
        *p = (struct region_props) {};
}

static int read_nodes_property(sd_bus_message *m, struct region_props *p)
{
        const void *array;
        size_t bytes;
        int r;

        r = sd_bus_message_enter_container(m, 'v', "au");
        if (r < 0)
                return r;
        r = sd_bus_message_read_array(m, 'u', &array, &bytes);
        if (r < 0)
                return r;
        free(p->nodes);
        p->n_nodes = bytes / sizeof(uint32_t);
        p->nodes = malloc(bytes ?: 1);
        if (!p->nodes)
                return -ENOMEM;
        memcpy(p->nodes, array, bytes);
        return sd_bus_message_exit_container(m);
}

static int read_resident_property(sd_bus_message *m, struct region_props *p)
{
        int r;

        r = sd_bus_message_enter_container(m, 'v', "a(ut)");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "(ut)");
        while (r >= 0) {
                uint32_t node;
                uint64_t value;
                __typeof__(p->resident) grown;

                r = sd_bus_message_read(m, "(ut)", &node, &value);
                if (r <= 0)
                        break;
                grown = realloc(p->resident, (p->n_resident + 1) * sizeof(*p->resident));
                if (!grown)
                        return -ENOMEM;
                p->resident = grown;
                p->resident[p->n_resident].node = node;
                p->resident[p->n_resident].bytes = value;
                p->n_resident++;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int read_string_property(sd_bus_message *m, char **field)
{
        const char *s;
        int r;

        r = sd_bus_message_read(m, "v", "s", &s);
        if (r < 0)
                return r;
        free(*field);
        *field = strdup(s);
        return *field ? 0 : -ENOMEM;
}

static int read_region_property(sd_bus_message *m, const char *key, struct region_props *p)
{
        if (streq(key, "Name"))
                return read_string_property(m, &p->name);
        if (streq(key, "Policy"))
                return read_string_property(m, &p->policy);
        if (streq(key, "Size"))
                return sd_bus_message_read(m, "v", "t", &p->size);
        if (streq(key, "OwnerUID"))
                return sd_bus_message_read(m, "v", "u", &p->owner_uid);
        if (streq(key, "OwnerPID"))
                return sd_bus_message_read(m, "v", "u", &p->owner_pid);
        if (streq(key, "Nodes"))
                return read_nodes_property(m, p);
        if (streq(key, "Resident"))
                return read_resident_property(m, p);
        if (streq(key, "PlacementReason"))
                return read_string_property(m, &p->placement_reason);
        /* A property a newer daemon added: not ours to show yet. */
        return sd_bus_message_skip(m, "v");
}

int region_props_get(sd_bus *bus, const char *path, struct region_props *ret)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        struct region_props p = {};
        int r;

        r = sd_bus_call_method(bus, GMEM_BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll", &error,
                               &reply, "s", GMEM_REGION_INTERFACE);
        if (r < 0)
                return log_bus_error(&error, r, "reading the region's properties failed");

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0) {
                const char *key;

                r = sd_bus_message_enter_container(reply, 'e', "sv");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0)
                        r = read_region_property(reply, key, &p);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r >= 0 && (!p.name || !p.policy))
                r = -EBADMSG;
        if (r < 0) {
                region_props_done(&p);
                return log_error_errno(r, "cannot read the properties of %s: %m", path);
        }
        *ret = p;
        return 0;
}

static int read_basic_json(sd_bus_message *m, char type, json_object **ret)
{
        union {
                uint8_t y;
                int16_t n;
                uint16_t q;
                int32_t i;
                uint32_t u;
                int64_t x;
                uint64_t t;
                double d;
                int b;
                const char *s;
        } v;
        json_object *o;
        int r;

        r = sd_bus_message_read_basic(m, type, &v);
        if (r < 0)
                return r;
        switch (type) {
        case 'y': o = json_object_new_int64(v.y); break;
        case 'n': o = json_object_new_int64(v.n); break;
        case 'q': o = json_object_new_int64(v.q); break;
        case 'i': o = json_object_new_int64(v.i); break;
        case 'h': o = json_object_new_int64(v.i); break;
        case 'u': o = json_object_new_int64(v.u); break;
        case 'x': o = json_object_new_int64(v.x); break;
        case 't': o = json_object_new_uint64(v.t); break;
        case 'd': o = json_object_new_double(v.d); break;
        case 'b': o = json_object_new_boolean(v.b); break;
        case 's':
        case 'o':
        case 'g': o = json_object_new_string(v.s); break;
        default: return -EBADMSG;
        }
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

/* A dict: keys become strings ("0" for a numeric key). */
static int read_dict_json(sd_bus_message *m, const char *contents, json_object **ret)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        r = sd_bus_message_enter_container(m, 'a', contents);
        while (r >= 0) {
                _cleanup_(json_object_putp) json_object *key = NULL, *value = NULL;
                const char *entry;
                char type;

                r = sd_bus_message_peek_type(m, &type, &entry);
                if (r <= 0)
                        break;
                r = sd_bus_message_enter_container(m, 'e', entry);
                if (r < 0)
                        break;
                r = read_basic_json(m, entry[0], &key);
                if (r >= 0)
                        r = bus_read_json(m, &value);
                if (r >= 0)
                        r = json_add(o, json_object_get_string(key), TAKE_PTR(value));
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int bus_read_json(sd_bus_message *m, json_object **ret)
{
        _cleanup_(json_object_putp) json_object *a = NULL;
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENXIO;
        if (type == 'a' && contents[0] == '{')
                return read_dict_json(m, contents, ret);
        if (type != 'a' && type != 'r' && type != 'v')
                return read_basic_json(m, type, ret);

        r = sd_bus_message_enter_container(m, type, contents);
        if (r < 0)
                return r;
        if (type == 'v') {
                r = bus_read_json(m, ret);
                return r < 0 ? r : sd_bus_message_exit_container(m);
        }
        a = json_object_new_array();
        if (!a)
                return -ENOMEM;
        for (;;) {
                json_object *item = NULL;

                r = sd_bus_message_at_end(m, false);
                if (r < 0)
                        return r;
                if (r > 0)
                        break;
                r = bus_read_json(m, &item);
                if (r < 0)
                        return r;
                if (json_object_array_add(a, item) < 0) {
                        json_object_put(item);
                        return -ENOMEM;
                }
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}
