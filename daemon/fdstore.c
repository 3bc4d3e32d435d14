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
#include "gmem-config.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "region.h"
#include "util.h"

#define METADATA_MAX (64U * 1024U)
#define METADATA_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)
/* The fds gmemd has in the store (it is the process's one store), against
 * what the service manager keeps: systemd drops, and only logs, an fd beyond
 * FileDescriptorStoreMax=, which gmemd would otherwise believe stored. */
static unsigned n_stored_fds;

/* Pairs of fds tried under one name before giving up on it. */
#define RESTORE_TRIES_MAX 8U

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

static json_object *nodes_to_json(const struct placement *p)
{
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < p->n_nodes; i++)
                if (json_object_array_add(a, json_object_new_int64(p->nodes[i])) < 0)
                        return NULL;
        return TAKE_PTR(a);
}

/* A spread placement's shares, in the order of its nodes. */
static int add_shares(json_object *o, const struct placement *p)
{
        json_object *a;

        if (!p->shares)
                return 0;
        a = json_object_new_array();
        for (size_t i = 0; a && i < p->n_nodes; i++)
                if (json_object_array_add(a, json_object_new_uint64(p->shares[i])) < 0) {
                        json_object_put(a);
                        return -ENOMEM;
                }
        if (!a || json_object_object_add(o, "shares", a) < 0) {
                json_object_put(a);
                return -ENOMEM;
        }
        return 0;
}

/* The metadata of @region as JSON text. */
static int region_metadata_to_json(const struct region *region, char **ret)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        const struct {
                const char *key;
                json_object *value;
        } fields[] = {
                { "id", json_object_new_uint64(region->id) },
                { "name", json_object_new_string(region->name) },
                { "size", json_object_new_uint64(region->size) },
                { "shared", json_object_new_boolean(region->shared) },
                { "persist", json_object_new_boolean(region->persist) },
                { "policy", json_object_new_string(placement_policy_to_string(region->placement.requested)) },
                { "applied", json_object_new_string(placement_policy_to_string(region->placement.applied)) },
                { "nodes", nodes_to_json(&region->placement) },
                { "reason", json_object_new_string(region->placement.reason) },
                { "owner_uid", json_object_new_uint64(region->owner_uid) },
                { "owner_pid", json_object_new_uint64((uint64_t) region->owner_pid) },
                { "owner_bus_name", region->owner_bus_name ? json_object_new_string(region->owner_bus_name) : NULL },
        };
        int r = o ? 0 : -ENOMEM;

        /* Every value is handed to @o, or dropped, whatever fails. */
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                bool want = fields[i].value || streq(fields[i].key, "owner_bus_name");

                if (r < 0 || !want || json_object_object_add(o, fields[i].key, fields[i].value) < 0) {
                        json_object_put(fields[i].value);
                        r = -ENOMEM;
                }
        }
        if (r >= 0)
                r = add_shares(o, &region->placement);
        if (r < 0)
                return r;
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
        int r = json_field(o, key, json_type_int, &v);

        if (r < 0)
                return r;
        if (json_object_get_int64(v) < 0)
                return -EBADMSG;
        *ret = json_object_get_uint64(v);
        return 0;
}

static int json_policy(json_object *o, const char *key, enum placement_policy *ret)
{
        json_object *v;
        int r = json_field(o, key, json_type_string, &v);

        if (r < 0)
                return r;
        r = placement_policy_from_string(json_object_get_string(v));
        if (r < 0)
                return -EBADMSG;
        *ret = (enum placement_policy) r;
        return 0;
}

/* Optional (metadata of an older gmemd has neither): why, and a spread's shares, which add up to @size. */
static int placement_extras_from_json(json_object *o, uint64_t size, struct placement *p)
{
        json_object *reason, *shares;
        uint64_t sum = 0;

        if (json_object_object_get_ex(o, "reason", &reason) && json_object_is_type(reason, json_type_string))
                snprintf(p->reason, sizeof(p->reason), "%s", json_object_get_string(reason));
        if (!json_object_object_get_ex(o, "shares", &shares))
                return 0;
        if (!json_object_is_type(shares, json_type_array) || json_object_array_length(shares) != p->n_nodes)
                return -EBADMSG;
        p->shares = calloc(p->n_nodes ?: 1, sizeof(*p->shares));
        if (!p->shares)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_nodes; i++) {
                json_object *v = json_object_array_get_idx(shares, i);

                if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0)
                        return -EBADMSG;
                p->shares[i] = json_object_get_uint64(v);
                if (p->shares[i] > size - sum)
                        return -EBADMSG;
                sum += p->shares[i];
        }
        return sum == size ? 0 : -EBADMSG;
}

static int placement_from_json(json_object *o, uint64_t size, struct placement *ret)
{
        _cleanup_(placement_done) struct placement p = {};
        json_object *nodes;
        int r;

        if ((r = json_policy(o, "policy", &p.requested)) < 0 || (r = json_policy(o, "applied", &p.applied)) < 0 ||
            (r = json_field(o, "nodes", json_type_array, &nodes)) < 0)
                return r;
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
        r = placement_extras_from_json(o, size, &p);
        if (r < 0)
                return r;
        *ret = TAKE_STRUCT(p);
        return 0;
}

/* The fields region_new() does not take. */
static int owner_from_json(json_object *o, struct region *region)
{
        json_object *v, *bus_name;
        uint64_t uid, pid;
        int r;

        if ((r = json_field(o, "persist", json_type_boolean, &v)) < 0 || (r = json_u64(o, "owner_uid", &uid)) < 0 ||
            (r = json_u64(o, "owner_pid", &pid)) < 0)
                return r;
        if (uid > UINT32_MAX || pid > INT32_MAX)
                return -EBADMSG;
        region->persist = json_object_get_boolean(v);
        region->owner_uid = (uid_t) uid;
        region->owner_pid = (pid_t) pid;
        if (region->persist)
                return 0;
        /* Not persistent: it follows a connection, which must be named. */
        r = json_field(o, "owner_bus_name", json_type_string, &bus_name);
        if (r < 0)
                return r;
        region->owner_bus_name = strdup(json_object_get_string(bus_name));
        return region->owner_bus_name ? 0 : -ENOMEM;
}

/* A region from its metadata, which must be that of region @expected_id, and
 * its guest_memfd (taken over, closed on failure). */
static int region_from_metadata(const char *json, uint64_t expected_id, int fd, struct region **ret)
{
        _cleanup_close_ int owned_fd = fd;
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(json);
        _cleanup_(placement_done) struct placement p = {};
        _cleanup_(region_freep) struct region *region = NULL;
        json_object *name, *shared;
        uint64_t id, size;
        struct stat st;
        int r;

        if (!o || !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        if ((r = json_u64(o, "id", &id)) < 0 || (r = json_u64(o, "size", &size)) < 0 ||
            (r = json_field(o, "name", json_type_string, &name)) < 0 ||
            (r = json_field(o, "shared", json_type_boolean, &shared)) < 0 || (r = placement_from_json(o, size, &p)) < 0)
                return r;
        /* The metadata must describe this very fd. */
        if (id != expected_id || !fd_is_guest_memfd(fd) || fstat(fd, &st) < 0 || (uint64_t) st.st_size != size)
                return -EBADMSG;
        r = region_new(id, json_object_get_string(name), TAKE_FD(owned_fd), size, json_object_get_boolean(shared),
                       &p, &region);
        if (r < 0)
                return r;
        r = owner_from_json(o, region);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(region);
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

/* Tell the service manager @what (FDSTORE=1, FDSTOREREMOVE=1) about the
 * store entry @name, passing @fds with it. */
static int notify_entry(const char *what, const char *name, const int *fds, unsigned n_fds)
{
        _cleanup_free_ char *state = NULL;

        if (asprintf(&state, "%s\nFDNAME=%s", what, name) < 0)
                return -ENOMEM;
        return sd_pid_notify_with_fds(0, false, state, fds, n_fds);
}

static int notify_store(const char *what, uint64_t id, const int *fds, unsigned n_fds)
{
        char name[sizeof(FDSTORE_NAME_PREFIX) + 20]; /* 20: the digits of UINT64_MAX */

        snprintf(name, sizeof(name), FDSTORE_NAME_PREFIX "%" PRIu64, id);
        return notify_entry(what, name, fds, n_fds);
}

/* $FDSTORE (systemd 254 and later), or the FileDescriptorStoreMax= of gmemd.service. */
static unsigned fdstore_max(void)
{
        const char *e = getenv("FDSTORE");
        unsigned max;

        return e && parse_uint(e, &max) >= 0 ? max : GMEM_FDSTORE_MAX;
}

void fdstore_add_region(struct region *region)
{
        _cleanup_free_ char *json = NULL;
        _cleanup_close_ int meta = -1;
        int r;

        if (n_stored_fds + 2 > fdstore_max()) {
                log_warning("The fd store is full (%u fds): region %" PRIu64 " will not survive a restart of gmemd; "
                            "raise FileDescriptorStoreMax= or lower limits.max_regions_per_user",
                            n_stored_fds, region->id);
                region->stored = false;
                return;
        }
        r = region_metadata_to_json(region, &json);
        if (r >= 0)
                r = meta = metadata_memfd(json);
        if (r >= 0)
                r = notify_store("FDSTORE=1", region->id, (const int[]) { region->fd, meta }, 2);
        if (r < 0)
                log_warning_errno(r, "Cannot put region %" PRIu64 " into the fd store, it will not survive a "
                                  "restart of gmemd: %m", region->id);
        region->stored = r > 0;
        if (region->stored)
                n_stored_fds += 2;
}

void fdstore_remove_region(struct region *region)
{
        int r;

        if (!region->stored)
                return;
        r = notify_store("FDSTOREREMOVE=1", region->id, NULL, 0);
        if (r < 0)
                log_warning_errno(r, "Cannot drop region %" PRIu64 " from the fd store: %m", region->id);
        region->stored = false;
        n_stored_fds -= 2;
}

/* The region id a store entry's name promises, or -EBADMSG. */
static int id_from_name(const char *name, uint64_t *ret)
{
        const char *p = name + strlen(FDSTORE_NAME_PREFIX);
        char *end;

        if (strncmp(name, FDSTORE_NAME_PREFIX, strlen(FDSTORE_NAME_PREFIX)) != 0 || *p < '1' || *p > '9')
                return -EBADMSG;
        errno = 0;
        *ret = strtoull(p, &end, 10);
        return errno || *end ? -EBADMSG : 0;
}

/* Region @id from the first guest_memfd and metadata fd among @fds that
 * describe it; otherwise the error of the last pair tried, and in
 * *ret_reason what was wrong, for the log. */
static int restore_from_fds(uint64_t id, const int *fds, size_t n_fds, struct region **ret,
                            const char **ret_reason)
{
        unsigned tries = 0;
        bool have_guest_memfd = false, have_metadata = false;
        int r = -EBADMSG;

        for (size_t i = 0; i < n_fds; i++)
                have_guest_memfd = have_guest_memfd || fd_is_guest_memfd(fds[i]);
        for (size_t m = 0; have_guest_memfd && m < n_fds && tries < RESTORE_TRIES_MAX; m++) {
                _cleanup_free_ char *json = NULL;

                if (fd_is_guest_memfd(fds[m]) || metadata_read(fds[m], &json) < 0)
                        continue;
                have_metadata = true;
                for (size_t g = 0; g < n_fds && tries < RESTORE_TRIES_MAX; g++) {
                        int dup_fd;

                        if (!fd_is_guest_memfd(fds[g]))
                                continue;
                        tries++;
                        dup_fd = fcntl(fds[g], F_DUPFD_CLOEXEC, 3);
                        r = dup_fd < 0 ? negative_errno() : region_from_metadata(json, id, dup_fd, ret);
                        if (r >= 0 || r == -ENOMEM)
                                return r;
                }
        }
        *ret_reason = !have_guest_memfd ? "none of its fds is a guest_memfd"
                      : !have_metadata  ? "none of its fds is a sealed memfd of gmemd's metadata"
                      : r == -EBADMSG   ? "its metadata does not describe this region and its guest_memfd"
                                        : "its guest_memfd cannot be mapped and placed";
        return r;
}

/* One store entry: the @n_fds fds stored under @name, which gmemd leaves as
 * a guest_memfd and its metadata in either order. A store that holds more
 * under the name (a stray fd, a second copy) still gives the region back if
 * one guest_memfd and one metadata fd among them describe it. All @fds are
 * closed; the region holds its own duplicate of the guest_memfd. */
static int restore_entry(const char *name, int *fds, size_t n_fds, struct region **ret, const char **ret_reason)
{
        uint64_t id;
        int r = id_from_name(name, &id);

        *ret_reason = "its name is not " FDSTORE_NAME_PREFIX "<id>";
        if (r >= 0)
                r = restore_from_fds(id, fds, n_fds, ret, ret_reason);
        for (size_t i = 0; i < n_fds; i++)
                safe_close(fds[i]);
        return r;
}

/* Take every fd passed under names[@first] out of @names, into @fds. */
static size_t take_group(char **names, int n, int first, int *fds)
{
        size_t n_fds = 0;

        for (int j = first; j < n; j++) {
                if (!names[j] || !streq(names[j], names[first]))
                        continue;
                fds[n_fds++] = SD_LISTEN_FDS_START + j;
                if (j != first) {
                        free(names[j]);
                        names[j] = NULL;
                }
        }
        return n_fds;
}

void fdstore_load(struct region **ret)
{
        char **names = NULL;
        _cleanup_free_ int *fds = NULL;
        int n = sd_listen_fds_with_names(true, &names);

        *ret = NULL;
        if (n < 0)
                log_warning_errno(n, "Cannot take the fds the service manager passed: %m");
        if (n > 0 && !(fds = calloc((size_t) n, sizeof(*fds))))
                log_oom();
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *name = names[i];
                struct region *region = NULL;
                const char *reason;
                size_t n_fds;
                int r;

                if (!fds) {
                        safe_close(SD_LISTEN_FDS_START + i);
                        continue;
                }
                if (!name)
                        continue;
                n_fds = take_group(names, n, i, fds);
                r = restore_entry(name, fds, n_fds, &region, &reason);
                if (r < 0) {
                        log_warning_errno(r, "Dropping '%s' (%zu fd(s)) from the fd store, %s: %m", name, n_fds,
                                          reason);
                        (void) notify_entry("FDSTOREREMOVE=1", name, NULL, 0);
                        continue;
                }
                LIST_PREPEND(*ret, region);
                if (n_fds == 2) {
                        region->stored = true;
                        n_stored_fds += 2;
                        continue;
                }
                /* Only the pair that described the region goes back in. */
                log_warning("The fd store held %zu fds under '%s' instead of 2; storing region %" PRIu64 " anew",
                            n_fds, name, region->id);
                (void) notify_entry("FDSTOREREMOVE=1", name, NULL, 0);
                fdstore_add_region(region);
        }
        free(names);
}
