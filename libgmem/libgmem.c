/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libgmem: the client connection, error bookkeeping, region options and the
 * daemon-wide queries (version, regions, nodes). Regions are in libgmem-region.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-errors.h"
#include "libgmem-internal.h"
#include "macro.h"
#include "util.h"

/* --- errors ---------------------------------------------------------------- */

void client_clear_error(gmem_client *client)
{
        free(client->error_name);
        free(client->error_message);
        client->error_name = client->error_message = NULL;
}

static int client_set_error(gmem_client *client, int r, const char *name, const char *message)
{
        client_clear_error(client);
        if (name)
                client->error_name = strdup(name);
        client->error_message = strdup(message ?: strerror(-r));
        return r;
}

int client_bus_error(gmem_client *client, const sd_bus_error *error, int r)
{
        if (sd_bus_error_is_set(error)) {
                /* sd_bus_call() already returns the mapped errno; a caller
                 * that only has the error gets it mapped here. */
                if (r >= 0)
                        r = -sd_bus_error_get_errno(error);
                if (r >= 0)
                        r = -EIO;
                return client_set_error(client, r, error->name, error->message);
        }
        if (r >= 0)
                r = -EIO;
        return client_set_error(client, r, NULL, NULL);
}

int client_local_error(gmem_client *client, int r, const char *format, ...)
{
        _cleanup_free_ char *message = NULL;
        va_list ap;
        int k;

        va_start(ap, format);
        k = vasprintf(&message, format, ap);
        va_end(ap);
        if (k < 0)
                message = NULL;
        return client_set_error(client, r, NULL, message);
}

_public_ const char *gmem_client_get_error(gmem_client *client)
{
        return client ? client->error_message : NULL;
}

_public_ const char *gmem_client_get_error_name(gmem_client *client)
{
        return client ? client->error_name : NULL;
}

/* --- connection ------------------------------------------------------------ */

static int bus_open_address(const char *address, sd_bus **ret)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_negotiate_fds(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

_public_ int gmem_client_new(const char *address, gmem_client **ret)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        gmem_client *client;
        int r;

        if (!ret)
                return -EINVAL;
        /* secure_getenv: a setuid VMM must not be pointed at another bus. */
        if (!address) {
                address = secure_getenv("GMEM_BUS_ADDRESS");
                if (address && !*address)
                        address = NULL;
        }
        r = gmem_bus_errors_register();
        if (r < 0)
                return r;
        r = address ? bus_open_address(address, &bus) : sd_bus_open_system(&bus);
        if (r < 0)
                return r;

        client = calloc(1, sizeof(*client));
        if (!client)
                return -ENOMEM;
        client->n_ref = 1;
        client->bus = TAKE_PTR(bus);
        *ret = client;
        return 0;
}

_public_ gmem_client *gmem_client_ref(gmem_client *client)
{
        if (client)
                client->n_ref++;
        return client;
}

_public_ gmem_client *gmem_client_unref(gmem_client *client)
{
        if (!client || --client->n_ref > 0)
                return NULL;
        sd_bus_flush_close_unref(client->bus);
        client_clear_error(client);
        free(client);
        return NULL;
}

_public_ int gmem_client_get_version(gmem_client *client, char **ret)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (!client || !ret)
                return -EINVAL;
        client_clear_error(client);
        r = sd_bus_get_property_string(client->bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH,
                                       GMEM_MANAGER_INTERFACE, "Version", &error, ret);
        return r < 0 ? client_bus_error(client, &error, r) : 0;
}

/* --- policies and options -------------------------------------------------- */

_Static_assert(GMEM_POLICY_AUTO + 1 == GMEM_N_POLICIES, "gmem_policy and the bus contract's names differ");

_public_ int gmem_policy_from_string(const char *s)
{
        return gmem_policy_from_name(s);
}

_public_ const char *gmem_policy_to_string(gmem_policy policy)
{
        return gmem_policy_name((unsigned) policy);
}

_public_ int gmem_options_new(gmem_options **ret)
{
        gmem_options *o;

        if (!ret)
                return -EINVAL;
        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->n_ref = 1;
        o->policy = GMEM_POLICY_DEFAULT;
        o->shared = true;
        *ret = o;
        return 0;
}

_public_ gmem_options *gmem_options_ref(gmem_options *options)
{
        if (options)
                options->n_ref++;
        return options;
}

_public_ gmem_options *gmem_options_unref(gmem_options *options)
{
        if (!options || --options->n_ref > 0)
                return NULL;
        free(options->name);
        free(options->nodes);
        free(options->cpus);
        free(options);
        return NULL;
}

/* A copy of @value (NULL: none) in *field; the daemon checks what it says. */
static int set_string(char **field, const char *value)
{
        char *copy = NULL;

        if (value) {
                copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
        }
        free(*field);
        *field = copy;
        return 0;
}

_public_ int gmem_options_set_name(gmem_options *options, const char *name)
{
        /* The daemon checks the characters and length; NULL means "pick one". */
        return options ? set_string(&options->name, name) : -EINVAL;
}

_public_ int gmem_options_set_policy(gmem_options *options, gmem_policy policy)
{
        if (!options || !gmem_policy_to_string(policy))
                return -EINVAL;
        options->policy = policy;
        return 0;
}

_public_ int gmem_options_set_nodes(gmem_options *options, const unsigned *nodes, size_t n)
{
        unsigned *copy = NULL;

        if (!options || (n > 0 && !nodes) || n > UINT32_MAX / sizeof(uint32_t))
                return -EINVAL;
        if (n > 0) {
                copy = malloc(n * sizeof(*copy));
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, nodes, n * sizeof(*copy));
        }
        free(options->nodes);
        options->nodes = copy;
        options->n_nodes = n;
        return 0;
}

_public_ int gmem_options_set_populate(gmem_options *options, bool populate)
{
        if (!options)
                return -EINVAL;
        options->populate = populate;
        return 0;
}

_public_ int gmem_options_set_populate_workers(gmem_options *options, unsigned workers)
{
        if (!options)
                return -EINVAL;
        options->populate_workers = workers;
        return 0;
}

_public_ int gmem_options_set_shared(gmem_options *options, bool shared)
{
        if (!options)
                return -EINVAL;
        options->shared = shared;
        return 0;
}

_public_ int gmem_options_set_persist(gmem_options *options, bool persist)
{
        if (!options)
                return -EINVAL;
        options->persist = persist;
        return 0;
}

_public_ int gmem_options_set_numa_page_tables(gmem_options *options, bool enable)
{
        if (!options)
                return -EINVAL;
        options->numa_page_tables = enable;
        return 0;
}

_public_ int gmem_options_set_cpus(gmem_options *options, const char *cpus)
{
        /* The daemon checks the list against the host's CPUs. */
        return options ? set_string(&options->cpus, cpus) : -EINVAL;
}

_public_ int gmem_options_set_spill(gmem_options *options, bool spill)
{
        if (!options)
                return -EINVAL;
        options->spill = spill;
        return 0;
}

/* --- listings -------------------------------------------------------------- */

/* The array and every string it points to are one allocation (read_region_infos()). */
_public_ void gmem_region_info_free(gmem_region_info *infos, size_t n)
{
        free(infos);
}

/* One (ostsu) of the reply, its strings pointing into the message. */
static int read_region_info(sd_bus_message *reply, gmem_region_info *info)
{
        const char *path, *name, *policy;
        int r;

        r = sd_bus_message_enter_container(reply, 'r', "ostsu");
        if (r <= 0)
                return r;
        if ((r = sd_bus_message_read_basic(reply, 'o', &path)) <= 0 ||
            (r = sd_bus_message_read_basic(reply, 's', &name)) <= 0 ||
            (r = sd_bus_message_read_basic(reply, 't', &info->size)) <= 0 ||
            (r = sd_bus_message_read_basic(reply, 's', &policy)) <= 0 ||
            (r = sd_bus_message_read_basic(reply, 'u', &info->owner_uid)) <= 0)
                return r < 0 ? r : -EBADMSG;
        info->path = (char *) path;
        info->name = (char *) name;
        info->policy = (char *) policy;
        return sd_bus_message_exit_container(reply) < 0 ? -EBADMSG : 1;
}

/* Copy @n infos whose strings point into the message into one allocation:
 * the array, then the strings. */
static int pack_region_infos(const gmem_region_info *in, size_t n, size_t strings, gmem_region_info **ret)
{
        gmem_region_info *out = malloc(MAX(n * sizeof(*out) + strings, (size_t) 1)); /* none: still an array */
        char *p;

        if (!out)
                return -ENOMEM;
        p = (char *) (out + n);
        for (size_t i = 0; i < n; i++) {
                char *const *from[] = { &in[i].path, &in[i].name, &in[i].policy };
                char **to[] = { &out[i].path, &out[i].name, &out[i].policy };

                out[i] = in[i];
                for (size_t k = 0; k < ELEMENTSOF(from); k++) {
                        size_t len = strlen(*from[k]) + 1;

                        *to[k] = memcpy(p, *from[k], len);
                        p += len;
                }
        }
        *ret = out;
        return 0;
}

static int read_region_infos(sd_bus_message *reply, gmem_region_info **ret, size_t *n_ret)
{
        _cleanup_free_ gmem_region_info *infos = NULL;
        size_t n = 0, allocated = 0, strings = 0;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "(ostsu)");
        if (r < 0)
                return r;
        for (;;) {
                if (n == allocated) {
                        gmem_region_info *grown;

                        allocated = allocated ? allocated * 2 : 64;
                        grown = reallocarray(infos, allocated, sizeof(*infos));
                        if (!grown)
                                return -ENOMEM;
                        infos = grown;
                }
                r = read_region_info(reply, &infos[n]);
                if (r <= 0)
                        break;
                strings += strlen(infos[n].path) + strlen(infos[n].name) + strlen(infos[n].policy) + 3;
                n++;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r >= 0)
                r = pack_region_infos(infos, n, strings, ret);
        if (r < 0)
                return r;
        *n_ret = n;
        return 0;
}

static int call_list(gmem_client *client, sd_bus_message *call, gmem_region_info **ret, size_t *n_ret)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *method = sd_bus_message_get_member(call);
        int r;

        r = sd_bus_call(client->bus, call, 0, &error, &reply);
        if (r < 0)
                return client_bus_error(client, &error, r);
        r = read_region_infos(reply, ret, n_ret);
        if (r < 0)
                return client_local_error(client, r, "cannot read the %s reply: %s", method, strerror(-r));
        return 0;
}

_public_ int gmem_client_list_regions(gmem_client *client, gmem_region_info **ret, size_t *n_ret)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        if (!client || !ret || !n_ret)
                return -EINVAL;
        client_clear_error(client);
        r = sd_bus_message_new_method_call(client->bus, &call, GMEM_BUS_NAME, GMEM_MANAGER_PATH,
                                           GMEM_MANAGER_INTERFACE, "ListRegions");
        if (r < 0)
                return client_local_error(client, r, "cannot build the ListRegions call: %s", strerror(-r));
        return call_list(client, call, ret, n_ret);
}

/* ListRegionsFiltered's a{sv}: only the entries that ask for something. */
static int append_list_filter(sd_bus_message *call, int64_t owner_uid, uint64_t below_id, uint32_t offset,
                              uint32_t limit)
{
        int r = sd_bus_message_open_container(call, 'a', "{sv}");

        if (r >= 0 && owner_uid >= 0)
                r = sd_bus_message_append(call, "{sv}", "owner_uid", "u", (uint32_t) owner_uid);
        if (r >= 0 && below_id > 0)
                r = sd_bus_message_append(call, "{sv}", "below_id", "t", below_id);
        if (r >= 0 && offset > 0)
                r = sd_bus_message_append(call, "{sv}", "offset", "u", offset);
        if (r >= 0 && limit > 0)
                r = sd_bus_message_append(call, "{sv}", "limit", "u", limit);
        return r < 0 ? r : sd_bus_message_close_container(call);
}

_public_ int gmem_client_list_regions_filtered(gmem_client *client, int64_t owner_uid, uint64_t below_id,
                                               uint32_t offset, uint32_t limit, gmem_region_info **ret,
                                               size_t *n_ret)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        if (!client || !ret || !n_ret || owner_uid > (int64_t) UINT32_MAX)
                return -EINVAL;
        client_clear_error(client);
        r = sd_bus_message_new_method_call(client->bus, &call, GMEM_BUS_NAME, GMEM_MANAGER_PATH,
                                           GMEM_MANAGER_INTERFACE, "ListRegionsFiltered");
        if (r >= 0)
                r = append_list_filter(call, owner_uid, below_id, offset, limit);
        if (r < 0)
                return client_local_error(client, r, "cannot build the ListRegionsFiltered call: %s", strerror(-r));
        return call_list(client, call, ret, n_ret);
}

_public_ int gmem_client_get_nodes(gmem_client *client, gmem_node_info **ret, size_t *n_ret)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ gmem_node_info *nodes = NULL;
        size_t n = 0;
        int r;

        if (!client || !ret || !n_ret)
                return -EINVAL;
        client_clear_error(client);
        r = sd_bus_call_method(client->bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE,
                               "GetNodes", &error, &reply, NULL);
        if (r < 0)
                return client_bus_error(client, &error, r);

        r = sd_bus_message_enter_container(reply, 'a', "(uttt)");
        while (r >= 0) {
                gmem_node_info info, *grown;
                uint32_t node;

                r = sd_bus_message_read(reply, "(uttt)", &node, &info.total, &info.free, &info.held);
                if (r <= 0)
                        break;
                info.node = node;
                grown = realloc(nodes, (n + 1) * sizeof(*nodes));
                if (!grown) {
                        r = -ENOMEM;
                        break;
                }
                nodes = grown;
                nodes[n++] = info;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return client_local_error(client, r, "cannot read the GetNodes reply: %s", strerror(-r));
        *ret = TAKE_PTR(nodes);
        *n_ret = n;
        return 0;
}
