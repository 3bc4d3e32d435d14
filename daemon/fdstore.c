/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Regions in the service manager's fd store: a region's guest_memfd and a
 * sealed memfd with its metadata go in under FDNAME=region-<id> when its
 * creation is answered, come out with FDSTOREREMOVE=1 when it is released,
 * and come back through $LISTEN_FDS when gmemd starts again. The tests play
 * the service manager with the same protocol (tests/integration/harness.c). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "fdstore.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "region.h"
#include "util.h"

#define METADATA_MAX (64U * 1024U)
#define METADATA_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

static json_object *nodes_to_json(const struct placement *p)
{
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < p->n_nodes; i++)
                if (json_object_array_add(a, json_object_new_int64(p->nodes[i])) < 0)
                        return NULL;
        return TAKE_PTR(a);
}

/* The metadata of @r as JSON text. */
static int region_metadata_to_json(const struct region *r, char **ret)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        const struct {
                const char *key;
                json_object *value;
        } fields[] = {
                { "id", json_object_new_uint64(r->id) },
                { "name", json_object_new_string(r->name) },
                { "size", json_object_new_uint64(r->size) },
                { "shared", json_object_new_boolean(r->shared) },
                { "persist", json_object_new_boolean(r->persist) },
                { "policy", json_object_new_string(placement_policy_to_string(r->placement.requested)) },
                { "applied", json_object_new_string(placement_policy_to_string(r->placement.applied)) },
                { "nodes", nodes_to_json(&r->placement) },
                { "owner_uid", json_object_new_uint64(r->owner_uid) },
                { "owner_pid", json_object_new_uint64((uint64_t) r->owner_pid) },
                { "owner_bus_name", r->owner_bus_name ? json_object_new_string(r->owner_bus_name) : NULL },
        };
        int k = o ? 0 : -ENOMEM;

        /* Every value is handed to @o, or dropped, whatever fails. */
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                bool want = fields[i].value || streq(fields[i].key, "owner_bus_name");

                if (k < 0 || !want || json_object_object_add(o, fields[i].key, fields[i].value) < 0) {
                        json_object_put(fields[i].value);
                        k = -ENOMEM;
                }
        }
        if (k < 0)
                return k;
        *ret = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        return *ret ? 0 : -ENOMEM;
}

static int json_field(json_object *o, const char *key, json_type type, json_object **ret)
{
        if (!json_object_object_get_ex(o, key, ret) || !json_object_is_type(*ret, type))
                return -EBADMSG;
        return 0;
}

static int json_u64(json_object *o, const char *key, uint64_t *ret)
{
        json_object *v;
        int k = json_field(o, key, json_type_int, &v);

        if (k < 0)
                return k;
        if (json_object_get_int64(v) < 0)
                return -EBADMSG;
        *ret = json_object_get_uint64(v);
        return 0;
}

static int json_policy(json_object *o, const char *key, enum placement_policy *ret)
{
        json_object *v;
        int k = json_field(o, key, json_type_string, &v);

        if (k < 0)
                return k;
        k = placement_policy_from_string(json_object_get_string(v));
        if (k < 0)
                return -EBADMSG;
        *ret = (enum placement_policy) k;
        return 0;
}

static int placement_from_json(json_object *o, struct placement *ret)
{
        _cleanup_(placement_done) struct placement p = {};
        json_object *nodes;
        int k;

        if ((k = json_policy(o, "policy", &p.requested)) < 0 || (k = json_policy(o, "applied", &p.applied)) < 0 ||
            (k = json_field(o, "nodes", json_type_array, &nodes)) < 0)
                return k;
        p.n_nodes = json_object_array_length(nodes);
        p.nodes = calloc(p.n_nodes ?: 1, sizeof(*p.nodes));
        if (!p.nodes)
                return -ENOMEM;
        for (size_t i = 0; i < p.n_nodes; i++) {
                json_object *v = json_object_array_get_idx(nodes, i);
                int64_t node = json_object_get_int64(v);

                if (!json_object_is_type(v, json_type_int) || node < 0 || node >= 1024)
                        return -EBADMSG;
                p.nodes[i] = (unsigned) node;
        }
        *ret = TAKE_STRUCT(p);
        return 0;
}

/* The fields region_new() does not take. */
static int owner_from_json(json_object *o, struct region *r)
{
        json_object *v, *bus_name;
        uint64_t uid, pid;
        int k;

        if ((k = json_field(o, "persist", json_type_boolean, &v)) < 0 || (k = json_u64(o, "owner_uid", &uid)) < 0 ||
            (k = json_u64(o, "owner_pid", &pid)) < 0)
                return k;
        if (uid > UINT32_MAX || pid > INT32_MAX)
                return -EBADMSG;
        r->persist = json_object_get_boolean(v);
        r->owner_uid = (uid_t) uid;
        r->owner_pid = (pid_t) pid;
        if (r->persist)
                return 0;
        /* Not persistent: it follows a connection, which must be named. */
        k = json_field(o, "owner_bus_name", json_type_string, &bus_name);
        if (k < 0)
                return k;
        r->owner_bus_name = strdup(json_object_get_string(bus_name));
        return r->owner_bus_name ? 0 : -ENOMEM;
}

/* A region from its metadata and its guest_memfd (taken over, closed on failure). */
static int region_from_metadata(const char *json, int fd, struct region **ret)
{
        _cleanup_close_ int owned_fd = fd;
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(json);
        _cleanup_(placement_done) struct placement p = {};
        _cleanup_(region_freep) struct region *r = NULL;
        json_object *name, *shared;
        uint64_t id, size;
        struct stat st;
        int k;

        if (!o || !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        if ((k = json_u64(o, "id", &id)) < 0 || (k = json_u64(o, "size", &size)) < 0 ||
            (k = json_field(o, "name", json_type_string, &name)) < 0 ||
            (k = json_field(o, "shared", json_type_boolean, &shared)) < 0 || (k = placement_from_json(o, &p)) < 0)
                return k;
        /* The metadata must describe this very fd. */
        if (id == 0 || !fd_is_guest_memfd(fd) || fstat(fd, &st) < 0 || (uint64_t) st.st_size != size)
                return -EBADMSG;
        k = region_new(id, json_object_get_string(name), TAKE_FD(owned_fd), size, json_object_get_boolean(shared),
                       &p, &r);
        if (k < 0)
                return k;
        k = owner_from_json(o, r);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(r);
        return 0;
}

static int metadata_memfd(const char *text)
{
        _cleanup_close_ int fd = memfd_create("gmemd-region-metadata", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        size_t len = strlen(text);

        if (fd < 0)
                return negative_errno();
        if (write(fd, text, len) != (ssize_t) len)
                return -EIO;
        if (fcntl(fd, F_ADD_SEALS, METADATA_SEALS) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

static int metadata_read(int fd, char **ret)
{
        _cleanup_free_ char *text = NULL;
        int seals = fcntl(fd, F_GET_SEALS);
        struct stat st;

        /* Only a sealed memfd: nobody can have changed it since it was written. */
        if (seals < 0 || (seals & METADATA_SEALS) != METADATA_SEALS)
                return -EBADMSG;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_size <= 0 || (uint64_t) st.st_size > METADATA_MAX)
                return -EBADMSG;
        text = malloc((size_t) st.st_size + 1);
        if (!text)
                return -ENOMEM;
        if (pread(fd, text, (size_t) st.st_size, 0) != st.st_size)
                return -EIO;
        text[st.st_size] = '\0';
        *ret = TAKE_PTR(text);
        return 0;
}

static int notify_store(const char *what, uint64_t id, const int *fds, unsigned n_fds)
{
        _cleanup_free_ char *state = NULL;

        if (asprintf(&state, "%s\nFDNAME=" FDSTORE_NAME_PREFIX "%" PRIu64, what, id) < 0)
                return -ENOMEM;
        return sd_pid_notify_with_fds(0, false, state, fds, n_fds);
}

void fdstore_add_region(struct region *r)
{
        _cleanup_free_ char *json = NULL;
        _cleanup_close_ int meta = -1;
        int k;

        k = region_metadata_to_json(r, &json);
        if (k >= 0)
                k = meta = metadata_memfd(json);
        if (k >= 0)
                k = notify_store("FDSTORE=1", r->id, (const int[]) { r->fd, meta }, 2);
        if (k < 0)
                log_warning_errno(k, "Cannot put region %" PRIu64 " into the fd store, it will not survive a "
                                  "restart of gmemd: %m", r->id);
        r->stored = k > 0;
}

void fdstore_remove_region(struct region *r)
{
        int k;

        if (!r->stored)
                return;
        k = notify_store("FDSTOREREMOVE=1", r->id, NULL, 0);
        if (k < 0)
                log_warning_errno(k, "Cannot drop region %" PRIu64 " from the fd store: %m", r->id);
        r->stored = false;
}

/* One store entry: @a and @b, the guest_memfd and the metadata in either order. */
static int restore_entry(const char *name, int a, int b, struct region **ret)
{
        _cleanup_close_ int memfd = a, meta = b;
        _cleanup_(region_freep) struct region *r = NULL;
        _cleanup_free_ char *json = NULL;
        char expected[64];
        int k;

        if (meta >= 0 && fd_is_guest_memfd(meta)) {
                memfd = b;
                meta = a;
        }
        if (meta < 0)
                return -EBADMSG;
        k = metadata_read(meta, &json);
        if (k < 0)
                return k;
        k = region_from_metadata(json, TAKE_FD(memfd), &r);
        if (k < 0)
                return k;
        snprintf(expected, sizeof(expected), FDSTORE_NAME_PREFIX "%" PRIu64, r->id);
        if (!streq(name, expected))
                return -EBADMSG;
        r->stored = true;
        *ret = TAKE_PTR(r);
        return 0;
}

static void drop_entry(const char *name)
{
        _cleanup_free_ char *state = NULL;

        if (asprintf(&state, "FDSTOREREMOVE=1\nFDNAME=%s", name) >= 0)
                (void) sd_pid_notify(0, false, state);
}

void fdstore_load(struct region **ret)
{
        char **names = NULL;
        int n = sd_listen_fds_with_names(true, &names);

        *ret = NULL;
        if (n < 0)
                log_warning_errno(n, "Cannot take the fds the service manager passed: %m");
        for (int i = 0; i < n; i++) {
                int partner = -1, k;
                struct region *r = NULL;

                if (!names[i])
                        continue;
                for (int j = i + 1; j < n && partner < 0; j++)
                        if (names[j] && streq(names[i], names[j]))
                                partner = j;
                k = restore_entry(names[i], SD_LISTEN_FDS_START + i,
                                  partner >= 0 ? SD_LISTEN_FDS_START + partner : -1, &r);
                if (k >= 0)
                        LIST_PREPEND(*ret, r);
                else {
                        log_warning_errno(k, "Cannot restore '%s' from the fd store, dropping it: %m", names[i]);
                        drop_entry(names[i]);
                }
                if (partner >= 0) {
                        free(names[partner]);
                        names[partner] = NULL;
                }
                free(names[i]);
                names[i] = NULL;
        }
        free(names);
}
