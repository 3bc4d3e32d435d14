/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ListRegions and ListRegionsFiltered: rows of (path, name, size, policy, uid),
 * newest first, appended with the cheapest sd-bus calls. */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bus-caller.h"
#include "list-regions.h"
#include "list.h"
#include "manager.h"
#include "region.h"
#include "util.h"

/* What ListRegionsFiltered's a{sv} asks for; zeroes ask for nothing. */
struct list_filter {
        const struct manager *manager;
        unsigned given; /* the filters given, 1U << FILTER_* */
        uint32_t owner_uid;
        uint32_t offset;   /* matching regions to skip */
        uint32_t limit;    /* 0: all */
        uint64_t below_id; /* 0: none, else only regions with a smaller id */
};

enum { FILTER_OWNER_UID, FILTER_OFFSET, FILTER_LIMIT, FILTER_BELOW_ID, _FILTER_MAX };

/* Each key's D-Bus type and the field of struct list_filter it sets. */
static const struct filter_key {
        const char *key;
        char type;
        size_t field;
} filter_keys[_FILTER_MAX] = {
        [FILTER_OWNER_UID] = { "owner_uid", 'u', offsetof(struct list_filter, owner_uid) },
        [FILTER_OFFSET] = { "offset", 'u', offsetof(struct list_filter, offset) },
        [FILTER_LIMIT] = { "limit", 'u', offsetof(struct list_filter, limit) },
        [FILTER_BELOW_ID] = { "below_id", 't', offsetof(struct list_filter, below_id) },
};

/* One (ostsu) row: no signature string to parse per region, and the path the
 * region spelled once. */
static int append_region(sd_bus_message *reply, const struct region *reg)
{
        uint32_t uid = (uint32_t) reg->owner_uid;
        int r;

        r = sd_bus_message_open_container(reply, 'r', "ostsu");
        if (r >= 0)
                r = sd_bus_message_append_basic(reply, 'o', reg->path);
        if (r >= 0)
                r = sd_bus_message_append_basic(reply, 's', reg->name);
        if (r >= 0)
                r = sd_bus_message_append_basic(reply, 't', &reg->size);
        if (r >= 0)
                r = sd_bus_message_append_basic(reply, 's', placement_policy_to_string(reg->placement.requested));
        if (r >= 0)
                r = sd_bus_message_append_basic(reply, 'u', &uid);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static bool filter_matches(const struct list_filter *f, const struct region *reg)
{
        if ((f->given & (1U << FILTER_OWNER_UID)) && (uint32_t) reg->owner_uid != f->owner_uid)
                return false;
        return f->below_id == 0 || reg->id < f->below_id;
}

/* The regions @data (a struct list_filter) asks for, in the registry's order:
 * newest (highest id) first. */
static int append_regions(sd_bus_message *reply, const void *data)
{
        const struct list_filter *f = data;
        uint32_t skipped = 0, listed = 0;

        LIST_FOREACH(reg, f->manager->regions) {
                int r;

                if (f->limit > 0 && listed == f->limit)
                        break;
                if (!filter_matches(f, reg))
                        continue;
                if (skipped < f->offset) {
                        skipped++;
                        continue;
                }
                r = append_region(reply, reg);
                if (r < 0)
                        return r;
                listed++;
        }
        return 0;
}

int bus_method_list_regions(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        struct manager *m = userdata;
        struct client *caller;
        int r;

        r = bus_check_caller(m, msg, &caller, error);
        if (r < 0)
                return r;
        return bus_reply_array(msg, "(ostsu)", append_regions, &(struct list_filter) { .manager = m });
}

/* The variant of filter entry @k, its type checked, into @f. */
static int read_filter_value(sd_bus_message *msg, size_t k, struct list_filter *f, sd_bus_error *error)
{
        const struct filter_key *fk = &filter_keys[k];
        char want[2] = { fk->type, 0 };
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(msg, &type, &contents);
        if (r < 0)
                return r;
        if (type != 'v' || !streq(contents, want))
                return bus_reply_errno(error, -EINVAL, "filter '%s' must be of type '%s', got '%s'", fk->key, want,
                                       type == 'v' ? contents : "?");
        r = sd_bus_message_enter_container(msg, 'v', want);
        if (r >= 0)
                r = sd_bus_message_read_basic(msg, fk->type, (uint8_t *) f + fk->field);
        if (r < 0)
                return r;
        if (k == FILTER_LIMIT && f->limit == 0)
                return bus_reply_errno(error, -EINVAL, "filter 'limit' is 0; give 1 or more, or leave it out for all");
        if (k == FILTER_BELOW_ID && f->below_id == 0)
                return bus_reply_errno(error, -EINVAL, "filter 'below_id' is 0; region ids start at 1");
        return sd_bus_message_exit_container(msg);
}

/* One {sv} entry, its key read (bus_read_dict()). */
static int read_filter_entry(sd_bus_message *msg, const char *key, void *userdata, sd_bus_error *error)
{
        struct list_filter *f = userdata;
        size_t k;

        for (k = 0; k < _FILTER_MAX; k++)
                if (streq(filter_keys[k].key, key))
                        break;
        if (k == _FILTER_MAX)
                return bus_reply_errno(error, -EINVAL,
                                       "unknown filter '%s' (known: owner_uid, offset, limit, below_id)", key);
        if (f->given & (1U << k))
                return bus_reply_errno(error, -EINVAL, "filter '%s' is given twice", key);
        f->given |= 1U << k;
        return read_filter_value(msg, k, f, error);
}

int bus_method_list_regions_filtered(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        struct manager *m = userdata;
        struct list_filter f = { .manager = m };
        struct client *caller;
        int r;

        r = bus_check_caller(m, msg, &caller, error);
        if (r < 0)
                return r;
        r = bus_read_dict(msg, read_filter_entry, &f, error);
        if (r < 0)
                return r;
        return bus_reply_array(msg, "(ostsu)", append_regions, &f);
}
