/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The region registry and caller checks shared by the Manager and Region bus
 * objects. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-errors.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "numa-nodes.h"
#include "util.h"

int manager_new(struct manager **ret)
{
        struct manager *m = calloc(1, sizeof(*m));

        if (!m)
                return -ENOMEM;
        config_init(&m->config);
        m->kvm_fd = -1;
        m->next_id = 1;
        *ret = m;
        return 0;
}

struct manager *manager_free(struct manager *m)
{
        if (!m)
                return NULL;
        while (m->regions)
                manager_release_region(m, m->regions, "daemon is stopping");
        manager_finish_populating(m);
        while (m->clients)
                client_free(m->clients);
        kernel_features_done(&m->features);
        safe_close(m->kvm_fd);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        config_done(&m->config);
        free(m);
        return NULL;
}

struct region *manager_find_region(struct manager *m, uint64_t id)
{
        for (struct region *r = m->regions; r; r = r->next)
                if (r->id == id)
                        return r;
        return NULL;
}

int region_object_path(const struct region *r, char **ret)
{
        return asprintf(ret, REGION_PATH_PREFIX "/%" PRIu64, r->id) < 0 ? -ENOMEM : 0;
}

int region_id_from_path(const char *path, uint64_t *ret)
{
        const char *p;
        char *end;
        uint64_t id;

        if (strncmp(path, REGION_PATH_PREFIX "/", strlen(REGION_PATH_PREFIX) + 1) != 0)
                return -ENOENT;
        p = path + strlen(REGION_PATH_PREFIX) + 1;
        if (*p < '1' || *p > '9')
                return -ENOENT;
        errno = 0;
        id = strtoull(p, &end, 10);
        if (errno || *end)
                return -ENOENT;
        *ret = id;
        return 0;
}

void manager_add_region(struct manager *m, struct region *r)
{
        LIST_PREPEND(m->regions, r);
        m->n_regions++;
}

void manager_release_region(struct manager *m, struct region *r, const char *why)
{
        _cleanup_free_ char *path = NULL;

        LIST_REMOVE(m->regions, r);
        m->n_regions--;

        if (region_object_path(r, &path) >= 0 && m->bus) {
                int k = sd_bus_emit_signal(m->bus, MANAGER_PATH, "org.gmem1.Manager", "RegionRemoved", "o", path);

                if (k < 0)
                        log_warning_errno(k, "Failed to emit RegionRemoved for %s: %m", path);
        }
        log_info("Released region %" PRIu64 " '%s' (%" PRIu64 " bytes, uid %u): %s",
                 r->id, r->name, r->size, (unsigned) r->owner_uid, why);
        /* A worker still populating it stops at its next chunk; the last
         * one's completion frees the region. */
        atomic_store(&r->released, true);
        if (r->jobs == 0)
                region_free(r);
}

int manager_resident_by_node(struct manager *m, uint64_t **ret, unsigned *n_ret)
{
        unsigned n = node_count_max();
        _cleanup_free_ uint64_t *per_node = calloc(n, sizeof(*per_node));

        if (!per_node)
                return -ENOMEM;
        for (struct region *r = m->regions; r; r = r->next) {
                int k = region_measure_resident(r, per_node, n);

                if (k < 0)
                        return k;
        }
        *ret = TAKE_PTR(per_node);
        *n_ret = n;
        return 0;
}

int manager_node_states(struct manager *m, bool outstanding, struct node_state **ret, size_t *n_ret)
{
        _cleanup_free_ struct node_state *nodes = NULL;
        size_t n;
        int r = node_query(&nodes, &n);

        if (r < 0)
                return r;
        for (struct region *reg = outstanding ? m->regions : NULL; reg; reg = reg->next) {
                unsigned max = node_count_max();
                _cleanup_free_ uint64_t *resident = calloc(max, sizeof(*resident));

                if (!resident)
                        return -ENOMEM;
                r = region_measure_resident(reg, resident, max);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n; i++) {
                        uint64_t share = placement_share(&reg->placement, reg->size, nodes[i].node);
                        uint64_t held = nodes[i].node < max ? resident[nodes[i].node] : 0;

                        if (share > held)
                                nodes[i].outstanding += share - held;
                }
        }
        *ret = TAKE_PTR(nodes);
        *n_ret = n;
        return 0;
}

int bus_reply_errno(sd_bus_error *error, int r, const char *fmt, ...)
{
        const char *name = gmem_bus_error_from_errno(r);
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return sd_bus_error_set(error, name ? name : SD_BUS_ERROR_FAILED, msg);
}

static bool caller_in_group(sd_bus_creds *creds, gid_t gid)
{
        const gid_t *gids;
        gid_t egid;
        int n;

        if (sd_bus_creds_get_egid(creds, &egid) >= 0 && egid == gid)
                return true;
        if (sd_bus_creds_get_gid(creds, &egid) >= 0 && egid == gid)
                return true;
        n = sd_bus_creds_get_supplementary_gids(creds, &gids);
        for (int i = 0; i < n; i++)
                if (gids[i] == gid)
                        return true;
        return false;
}

void client_free(struct client *c)
{
        struct manager *m;

        if (!c)
                return;
        m = c->manager;
        LIST_REMOVE(m->clients, c);
        for (struct region *r = m->regions, *next; r; r = next) {
                next = r->next;
                if (r->owner_client == c)
                        manager_release_region(m, r, "its owner's bus connection went away");
        }
        sd_bus_track_unref(c->track);
        free(c->sender);
        free(c);
}

static int on_client_gone(sd_bus_track *track, void *userdata)
{
        client_free(userdata);
        return 0;
}

static struct client *find_client(struct manager *m, const char *sender)
{
        for (struct client *c = m->clients; c; c = c->next)
                if (streq(c->sender, sender))
                        return c;
        return NULL;
}

static int client_new(struct manager *m, sd_bus_message *msg, uid_t uid, pid_t pid, struct client **ret)
{
        struct client *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->uid = uid;
        c->pid = pid;
        c->sender = strdup(sd_bus_message_get_sender(msg));
        if (!c->sender) {
                free(c);
                return -ENOMEM;
        }
        r = sd_bus_track_new(m->bus, &c->track, on_client_gone, c);
        if (r >= 0)
                r = sd_bus_track_add_sender(c->track, msg);
        if (r < 0) {
                sd_bus_track_unref(c->track);
                free(c->sender);
                free(c);
                return r;
        }
        LIST_PREPEND(m->clients, c);
        *ret = c;
        return 0;
}

int bus_check_caller(struct manager *m, sd_bus_message *msg, struct client **ret, sd_bus_error *error)
{
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *sender = sd_bus_message_get_sender(msg);
        struct client *c;
        uid_t uid;
        pid_t pid = 0;
        int r;

        /* A unique name is never reused on a bus, and a connection's
         * credentials are those it connected with. */
        if (!sender)
                return bus_reply_errno(error, -EACCES, "the bus did not tell who is calling");
        c = find_client(m, sender);
        if (c) {
                *ret = c;
                return 0;
        }

        r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID | SD_BUS_CREDS_PID |
                                      SD_BUS_CREDS_EGID | SD_BUS_CREDS_GID |
                                      SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return bus_reply_errno(error, -EACCES, "cannot read the caller's credentials: %s", strerror(-r));
        if (sd_bus_creds_get_euid(creds, &uid) < 0 && sd_bus_creds_get_uid(creds, &uid) < 0)
                return bus_reply_errno(error, -EACCES, "the bus did not tell the caller's uid");
        (void) sd_bus_creds_get_pid(creds, &pid);

        if (uid != 0 && !(m->have_allowed_gid && caller_in_group(creds, m->allowed_gid))) {
                if (m->have_allowed_gid)
                        return bus_reply_errno(error, -EACCES, "uid %u is neither root nor a member of group '%s'",
                                               (unsigned) uid, m->config.allowed_group);
                return bus_reply_errno(error, -EACCES, "uid %u is not root, and no group is allowed to use gmemd",
                                       (unsigned) uid);
        }
        r = client_new(m, msg, uid, pid, &c);
        if (r < 0)
                return bus_reply_errno(error, r, "cannot track the caller's connection: %s", strerror(-r));
        *ret = c;
        return 0;
}
