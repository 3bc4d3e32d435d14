/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Caller credentials, connection tracking and the access rules. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-caller.h"
#include "bus-errors.h"
#include "list.h"
#include "log.h"
#include "manager.h"
#include "util.h"

#define CALLER_CREDS                                                                                       \
        (SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID | SD_BUS_CREDS_PID | SD_BUS_CREDS_EGID | SD_BUS_CREDS_GID | \
         SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_AUGMENT)

int bus_reply_errno(sd_bus_error *error, int r, const char *fmt, ...)
{
        const char *name = gmem_bus_error_from_errno(r);
        int saved = errno;
        char msg[512];
        va_list ap;

        errno = r < 0 ? -r : r; /* for %m, as in log.h */
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        errno = saved;
        return sd_bus_error_set(error, name ?: SD_BUS_ERROR_FAILED, msg);
}

static bool creds_in_group(sd_bus_creds *creds, gid_t gid)
{
        const gid_t *gids;
        gid_t g;
        int n;

        if (sd_bus_creds_get_egid(creds, &g) >= 0 && g == gid)
                return true;
        if (sd_bus_creds_get_gid(creds, &g) >= 0 && g == gid)
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
        for (struct region *region = m->regions, *next; region; region = next) {
                next = region->next;
                if (region->owner == c)
                        manager_release_region(m, region, "its owner's bus connection went away");
        }
        sd_bus_track_unref(c->track);
        free(c->bus_name);
        free(c);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct client *, client_free);

static int on_client_gone(sd_bus_track *track, void *userdata)
{
        client_free(userdata);
        return 0;
}

static struct client *find_client(struct manager *m, const char *bus_name)
{
        LIST_FOREACH(c, m->clients)
                if (streq(c->bus_name, bus_name))
                        return c;
        return NULL;
}

/* The uid the bus gives for @creds, and whether it may use gmemd. */
static int creds_identify(struct manager *m, sd_bus_creds *creds, uid_t *ret_uid, bool *ret_admitted)
{
        if (sd_bus_creds_get_euid(creds, ret_uid) < 0 && sd_bus_creds_get_uid(creds, ret_uid) < 0)
                return -EACCES;
        *ret_admitted = *ret_uid == 0 || (m->have_allowed_gid && creds_in_group(creds, m->allowed_gid));
        return 0;
}

/* A client for the connection @bus_name with @creds, tracked from now on. */
static int client_new(struct manager *m, const char *bus_name, sd_bus_creds *creds, struct client **ret)
{
        _cleanup_free_ struct client *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        r = creds_identify(m, creds, &c->uid, &c->admitted);
        if (r < 0)
                return r;
        (void) sd_bus_creds_get_pid(creds, &c->pid);
        c->bus_name = strdup(bus_name);
        if (!c->bus_name)
                return -ENOMEM;
        r = sd_bus_track_new(m->bus, &c->track, on_client_gone, c);
        if (r >= 0)
                r = sd_bus_track_add_name(c->track, bus_name);
        if (r < 0) {
                sd_bus_track_unref(c->track);
                free(c->bus_name);
                return r;
        }
        c->manager = m;
        LIST_PREPEND(m->clients, c);
        *ret = TAKE_PTR(c);
        return 0;
}

/* Who calls @msg: its uid, and its client if it may use gmemd or owns a
 * region; *ret is NULL for anyone else, whose connection is not tracked, so
 * that calls from many refused connections cost gmemd nothing to keep. */
static int bus_identify_caller(struct manager *m, sd_bus_message *msg, struct client **ret, uid_t *ret_uid,
                               sd_bus_error *error)
{
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *sender = sd_bus_message_get_sender(msg);
        bool admitted;
        int r;

        if (!sender)
                return bus_reply_errno(error, -EACCES, "the bus did not tell who is calling");
        *ret = find_client(m, sender);
        if (*ret) {
                *ret_uid = (*ret)->uid;
                return 0;
        }
        r = sd_bus_query_sender_creds(msg, CALLER_CREDS, &creds);
        if (r < 0)
                return bus_reply_errno(error, -EACCES, "cannot read the caller's credentials: %s", strerror(-r));
        r = creds_identify(m, creds, ret_uid, &admitted);
        if (r < 0)
                return bus_reply_errno(error, r, "the bus did not tell the caller's uid");
        if (!admitted)
                return 0;
        r = client_new(m, sender, creds, ret);
        if (r < 0)
                return bus_reply_errno(error, r, "cannot track the caller's connection: %m");
        return 0;
}

int bus_check_caller(struct manager *m, sd_bus_message *msg, struct client **ret, sd_bus_error *error)
{
        uid_t uid;
        int r = bus_identify_caller(m, msg, ret, &uid, error);

        if (r < 0 || (*ret && (*ret)->admitted))
                return r;
        if (m->have_allowed_gid)
                return bus_reply_errno(error, -EACCES, "uid %u is neither root nor a member of group '%s'",
                                       (unsigned) uid, m->config.allowed_group);
        return bus_reply_errno(error, -EACCES, "uid %u is not root, and no group is allowed to use gmemd",
                               (unsigned) uid);
}

int bus_check_region_owner(struct region *region, sd_bus_message *msg, const char *verb, sd_bus_error *error)
{
        struct client *caller;
        int r = bus_check_caller(region->manager, msg, &caller, error);

        if (r < 0)
                return r;
        if (caller->uid != 0 && caller->uid != region->owner_uid)
                return bus_reply_errno(error, -EACCES, "region %" PRIu64 " ('%s') belongs to uid %u; uid %u may not %s it",
                                       region->id, region->name, (unsigned) region->owner_uid, (unsigned) caller->uid,
                                       verb);
        return 0;
}

int bus_check_region_reader(struct region *region, sd_bus *bus, sd_bus_error *error)
{
        sd_bus_message *msg = sd_bus_get_current_message(bus);
        struct client *caller;
        uid_t uid;
        int r;

        if (!msg)
                return bus_reply_errno(error, -EACCES, "no call to check");
        r = bus_identify_caller(region->manager, msg, &caller, &uid, error);
        if (r < 0)
                return r;
        if ((caller && caller->admitted) || uid == region->owner_uid)
                return 0;
        return bus_reply_errno(error, -EACCES, "region %" PRIu64 " belongs to uid %u; uid %u is neither its owner, "
                               "root nor in the allowed group, and may not read its properties",
                               region->id, (unsigned) region->owner_uid, (unsigned) uid);
}

/* The client for a restored region's owner connection; -ENXIO if it is gone. */
static int client_for_bus_name(struct manager *m, const char *bus_name, struct client **ret)
{
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL, *again = NULL;
        _cleanup_(client_freep) struct client *c = NULL;
        int r;

        *ret = find_client(m, bus_name);
        if (*ret)
                return 0;
        r = sd_bus_get_name_creds(m->bus, bus_name, CALLER_CREDS & ~SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return r;
        r = client_new(m, bus_name, creds, &c);
        if (r < 0)
                return r;
        /* Asked again once tracked: a connection that went away in between
         * is not found now, one that goes later is reported by the tracking. */
        r = sd_bus_get_name_creds(m->bus, bus_name, SD_BUS_CREDS_UNIQUE_NAME, &again);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

void bus_reattach_owners(struct manager *m)
{
        for (struct region *region = m->regions, *next; region; region = next) {
                struct client *c;
                int r;

                next = region->next;
                if (region->persist || region->owner)
                        continue;
                r = client_for_bus_name(m, region->owner_bus_name, &c);
                if (r >= 0 && c->uid != region->owner_uid)
                        r = -EPERM; /* not possible for a unique name; never trust the store blindly */
                if (r >= 0) {
                        region->owner = c;
                        log_info("Region %" PRIu64 " follows its owner %s again", region->id, region->owner_bus_name);
                        continue;
                }
                log_debug_errno(r, "Owner %s of region %" PRIu64 " is gone: %m", region->owner_bus_name, region->id);
                manager_release_region(m, region, "its owner's bus connection went away while gmemd was down");
                /* Releasing never frees another region, so @next stays valid. */
        }
}

/* Answer @msg with one array of @contents, its items added by @append. */
int bus_read_dict(sd_bus_message *msg,
                  int (*entry)(sd_bus_message *msg, const char *key, void *userdata, sd_bus_error *error),
                  void *userdata, sd_bus_error *error)
{
        int r = sd_bus_message_enter_container(msg, 'a', "{sv}");

        while (r >= 0 && (r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const char *key;

                r = sd_bus_message_read_basic(msg, 's', &key);
                if (r >= 0)
                        r = entry(msg, key, userdata, error);
                if (r >= 0)
                        r = sd_bus_message_exit_container(msg);
        }
        return r < 0 ? r : sd_bus_message_exit_container(msg);
}

int bus_open_dict_entry(sd_bus_message *reply, const char *key, const char *type)
{
        int r = sd_bus_message_open_container(reply, 'e', "sv");

        if (r >= 0)
                r = sd_bus_message_append_basic(reply, 's', key);
        return r < 0 ? r : sd_bus_message_open_container(reply, 'v', type);
}

int bus_close_dict_entry(sd_bus_message *reply)
{
        int r = sd_bus_message_close_container(reply);

        return r < 0 ? r : sd_bus_message_close_container(reply);
}

int bus_append_dict_entry(sd_bus_message *reply, const char *key, const char *type, ...)
{
        va_list ap;
        int r;

        r = bus_open_dict_entry(reply, key, type);
        if (r < 0)
                return r;
        va_start(ap, type);
        r = sd_bus_message_appendv(reply, type, ap);
        va_end(ap);
        return r < 0 ? r : bus_close_dict_entry(reply);
}

int bus_reply_array(sd_bus_message *msg, const char *contents,
                    int (*append)(sd_bus_message *reply, const void *data), const void *data)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', contents);
        if (r >= 0)
                r = append(reply, data);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}
