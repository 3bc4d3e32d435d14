/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration bus interface: Manager.ExportRegion, ImportRegion and
 * ListMigrations, and the org.gmem1.Migration objects with their progress. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "bus-caller.h"
#include "bus-contract.h"
#include "bus-errors.h"
#include "bus-populate.h"
#include "create-region.h"
#include "kvm-uapi.h"
#include "list.h"
#include "log.h"
#include "manager.h"
#include "migrate-dest.h"
#include "migrate-io.h"
#include "migrate-source.h"
#include "migration-dbus.h"
#include "migration.h"
#include "util.h"

#define RECONNECT_TIMEOUT_MAX_MS 3600000U

/* --- ExportRegion ----------------------------------------------------------- */

/* ExportRegion's options, as given (strings of the message). */
struct export_options {
        const char *listen, *token;
};

static int read_export_option(sd_bus_message *msg, const char *key, void *userdata, sd_bus_error *error)
{
        struct export_options *o = userdata;

        if (!streq(key, "listen") && !streq(key, "token"))
                return bus_reply_errno(error, -EINVAL, "unknown option '%s' (known: listen, token)", key);
        if (sd_bus_message_verify_type(msg, 'v', "s") <= 0)
                return bus_reply_errno(error, -EINVAL, "option '%s' must be of type 's'", key);
        return sd_bus_message_read(msg, "v", "s", streq(key, "listen") ? &o->listen : &o->token);
}

static int export_check(struct manager *m, struct region *region, const char *token, sd_bus_error *error)
{
        char msg[256];

        if (!region->shared)
                return bus_reply_errno(error, -EOPNOTSUPP, "region %" PRIu64 " is private (not host-mappable); "
                                       "gmemd can only read shared regions to export them", region->id);
        if (region->size % MIG_PAGE_SIZE)
                return bus_reply_errno(error, -EOPNOTSUPP, "region size is not a multiple of %u", MIG_PAGE_SIZE);
        LIST_FOREACH(mig, m->migrations)
                if (mig->region == region && !mig->finished)
                        return bus_reply_errno(error, -EINVAL, "region %" PRIu64 " is already migrating (migration %"
                                               PRIu64 ")", region->id, mig->id);
        if (token && mig_token_check(token, msg, sizeof(msg)) < 0)
                return bus_reply_errno(error, -EINVAL, "option 'token': %s", msg);
        return 0;
}

int bus_method_export_region(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        struct manager *m = userdata;
        struct export_options o = { .listen = "tcp:0.0.0.0:0" };
        const char *path;
        struct migration *mig;
        struct region *region = NULL;
        char why[256] = "";
        uint64_t id;
        int r;

        r = sd_bus_message_read(msg, "o", &path);
        if (r < 0)
                return r;
        if (gmem_region_id_from_path(path, &id) >= 0)
                region = manager_find_region(m, id);
        if (!region)
                return bus_reply_errno(error, -ENOENT, "no region %s", path);
        if ((r = bus_check_region_owner(region, msg, "export", error)) < 0 ||
            (r = bus_read_dict(msg, read_export_option, &o, error)) < 0 ||
            (r = export_check(m, region, o.token, error)) < 0)
                return r;
        r = migration_new(m, MIGRATION_SOURCE, region, &mig);
        if (r < 0)
                return bus_reply_errno(error, r, "cannot set up the migration: %m");
        r = mig_listen(o.listen, &mig->listen_fd, &mig->endpoint, why, sizeof(why));
        if (r >= 0)
                r = o.token ? ((mig->token = strdup(o.token)) ? 0 : -ENOMEM) : mig_token_new(&mig->token);
        if (r >= 0)
                r = migrate_source_start(mig);
        if (r < 0) {
                migration_cancel(mig, "it could not start");
                return bus_reply_errno(error, r, "cannot export region %" PRIu64 ": %s", region->id,
                                       why[0] ? why : strerror(-r));
        }
        log_info("Exporting region %" PRIu64 " as migration %" PRIu64 " on %s", region->id, mig->id, mig->endpoint);
        return sd_bus_reply_method_return(msg, "ss", mig->endpoint, mig->token);
}

/* --- ImportRegion -------------------------------------------------------------- */

struct import_request {
        struct manager *manager;
        const char *endpoint, *token;
        bool precopy_only;
        unsigned reconnect_timeout_ms;
        int fault_channel;
};

static const struct gmem_option_type import_options[] = {
        { "precopy_only", "b" },
        { "reconnect_timeout_ms", "u" },
        { "fault_channel", "h" },
};

static int import_read_arguments(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        struct import_request *q = userdata;

        return sd_bus_message_read(msg, "ss", &q->endpoint, &q->token);
}

static int import_read_option(sd_bus_message *msg, size_t index, void *userdata, sd_bus_error *error)
{
        struct import_request *q = userdata;
        uint32_t ms;
        int b, r;

        switch (index) {
        case 0:
                r = sd_bus_message_read(msg, "b", &b);
                q->precopy_only = b;
                return r;
        case 1:
                r = sd_bus_message_read(msg, "u", &ms);
                if (r >= 0 && (ms == 0 || ms > RECONNECT_TIMEOUT_MAX_MS))
                        return bus_reply_errno(error, -EINVAL, "option 'reconnect_timeout_ms' is %u; 1 to %u are "
                                               "allowed", ms, RECONNECT_TIMEOUT_MAX_MS);
                q->reconnect_timeout_ms = ms;
                return r;
        default:
                return sd_bus_message_read(msg, "h", &q->fault_channel);
        }
}

static int import_validate(void *userdata, sd_bus_error *error)
{
        struct import_request *q = userdata;
        const struct kernel_features *f = &q->manager->features;
        struct sockaddr_storage sa;
        socklen_t len;
        char msg[256];

        if (mig_endpoint_parse(q->endpoint, &sa, &len, msg, sizeof(msg)) < 0)
                return bus_reply_errno(error, -EINVAL, "%s", msg);
        if (mig_token_check(q->token, msg, sizeof(msg)) < 0)
                return bus_reply_errno(error, -EINVAL, "%s", msg);
        if (!q->precopy_only && !f->guest_memfd_missing)
                return bus_reply_errno(error, -EOPNOTSUPP, "this kernel (%s) cannot fill a guest_memfd while the "
                                       "guest runs (no KVM_CAP_GUEST_MEMFD_MISSING; it comes with the gmem kernel "
                                       "series); pass option 'precopy_only' to copy everything before the fd is "
                                       "returned", f->release);
        if (q->fault_channel >= 0 && q->precopy_only)
                return bus_reply_errno(error, -EINVAL, "option 'fault_channel' needs postcopy, not 'precopy_only'");
        return 0;
}

static int import_start(struct manager *m, struct region *region, const struct import_request *q,
                        struct migration **ret, sd_bus_error *error)
{
        struct kvm_gmem_arm_missing arm = { .flags = KVM_GMEM_MISSING_NONBLOCK };
        struct migration *mig;
        int r;

        if (!region->shared)
                return bus_reply_errno(error, -EOPNOTSUPP, "gmemd imports only shared (host-mappable) regions; "
                                       "option 'shared' must stay true");
        r = migration_new(m, MIGRATION_DESTINATION, region, &mig);
        if (r < 0)
                return bus_reply_errno(error, r, "cannot set up the migration: %m");
        mig->postcopy = !q->precopy_only;
        if (q->reconnect_timeout_ms)
                mig->reconnect_timeout_ms = q->reconnect_timeout_ms;
        mig->endpoint = strdup(q->endpoint);
        mig->token = strdup(q->token);
        r = mig->endpoint && mig->token ? 0 : -ENOMEM;
        if (r >= 0 && q->fault_channel >= 0 && (mig->fast_fd = fcntl(q->fault_channel, F_DUPFD_CLOEXEC, 3)) < 0)
                r = negative_errno();
        if (r >= 0 && mig->postcopy && (mig->fault_fd = ioctl(region->fd, KVM_GMEM_ARM_MISSING, &arm)) < 0)
                r = bus_reply_errno(error, negative_errno(), "cannot arm the guest_memfd for missing pages: %m");
        if (r >= 0)
                r = migrate_dest_start(mig);
        if (r < 0) {
                migration_cancel(mig, "it could not start");
                return sd_bus_error_is_set(error) ? r : bus_reply_errno(error, r, "cannot start the import: %m");
        }
        *ret = mig;
        return 0;
}

int bus_method_import_region(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        struct manager *m = userdata;
        struct import_request q = { .manager = m, .fault_channel = -1 };
        const struct create_extra extra = {
                .read_arguments = import_read_arguments, .options = import_options,
                .n_options = ELEMENTSOF(import_options), .read_option = import_read_option,
                .refused = 1U << GMEM_OPTION_POPULATE, .validate = import_validate, .userdata = &q,
        };
        struct migration *mig = NULL;
        struct region *region;
        int r;

        r = create_region_steps(msg, m, &extra, &region, error);
        if (r < 0)
                return r;
        r = import_start(m, region, &q, &mig, error);
        if (r < 0) {
                manager_release_region(m, region, "its import could not start");
                return r;
        }
        log_info("Importing region %" PRIu64 " from %s as migration %" PRIu64 " (%s)", region->id, mig->endpoint,
                 mig->id, mig->postcopy ? "postcopy" : "precopy");
        if (mig->postcopy)
                return bus_reply_created(msg, region);
        mig->pending = sd_bus_message_ref(msg);
        return 1;
}

/* --- ListMigrations and the Migration objects ------------------------------------ */

static const char *mode(const struct migration *mig)
{
        return mig->role == MIGRATION_SOURCE ? "serve" : mig->postcopy ? "postcopy" : "precopy";
}

static uint64_t pages_done(struct migration *mig)
{
        return mig->role == MIGRATION_SOURCE ? atomic_load(&mig->pages_sent) : atomic_load(&mig->pages_present);
}

static int append_migration_row(sd_bus_message *reply, struct migration *mig)
{
        _cleanup_free_ char *path = NULL, *region = NULL;
        int r = migration_path(mig, &path);

        if (r >= 0)
                r = gmem_region_path(mig->region ? mig->region->id : 0, &region);
        if (r >= 0)
                r = sd_bus_message_append(reply, "(oossstt)", path, region, migration_role_to_string(mig->role),
                                          mode(mig), migration_state_to_string(migration_get_state(mig)),
                                          pages_done(mig), mig->pages_total);
        return r;
}

static int append_migration_rows(sd_bus_message *reply, const void *data)
{
        const struct manager *m = data;
        int r = 0;

        LIST_FOREACH(mig, m->migrations)
                if (r >= 0)
                        r = append_migration_row(reply, mig);
        return r;
}

int bus_method_list_migrations(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        struct manager *m = userdata;
        struct client *caller;
        int r;

        r = bus_check_caller(m, msg, &caller, error);
        if (r < 0)
                return r;
        return bus_reply_array(msg, "(oossstt)", append_migration_rows, m);
}

static int migration_find_object(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                                 sd_bus_error *error)
{
        const char *prefix = GMEM_MIGRATION_PATH_PREFIX "/";
        struct migration *mig = NULL;
        unsigned id;

        if (streq(path, GMEM_MIGRATION_PATH_PREFIX))
                return 0;
        if (strncmp(path, prefix, strlen(prefix)) == 0 && parse_uint(path + strlen(prefix), &id) >= 0)
                mig = migration_find(userdata, id);
        if (!mig)
                return sd_bus_error_setf(error, GMEM_ERROR_NOT_FOUND, "no migration %s: it ended with its region, "
                                         "or never existed (ListMigrations shows them)", path);
        *found = mig;
        return 1;
}

static int migration_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error)
{
        struct manager *m = userdata;
        size_t n = 0, i = 0;
        char **list;

        LIST_FOREACH(mig, m->migrations)
                n++;
        list = calloc(n + 1, sizeof(char *));
        if (!list)
                return -ENOMEM;
        LIST_FOREACH(mig, m->migrations)
                if (migration_path(mig, &list[i++]) < 0) {
                        for (size_t j = 0; j < i; j++)
                                free(list[j]);
                        free(list);
                        return -ENOMEM;
                }
        *nodes = TAKE_PTR(list);
        return 0;
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        struct migration *mig = userdata;
        _cleanup_free_ char *region = NULL;
        uint64_t p50, p99;
        int r;

        if (mig->region && (r = bus_check_region_reader(mig->region, bus, error)) < 0)
                return r;
        if (streq(property, "Region")) {
                r = gmem_region_path(mig->region ? mig->region->id : 0, &region);
                return r < 0 ? r : sd_bus_message_append(reply, "o", region);
        }
        if (streq(property, "Role"))
                return sd_bus_message_append(reply, "s", migration_role_to_string(mig->role));
        if (streq(property, "Mode"))
                return sd_bus_message_append(reply, "s", mode(mig));
        if (streq(property, "State"))
                return sd_bus_message_append(reply, "s", migration_state_to_string(migration_get_state(mig)));
        if (streq(property, "Endpoint"))
                return sd_bus_message_append(reply, "s", mig->endpoint ?: "");
        if (streq(property, "PagesTotal"))
                return sd_bus_message_append(reply, "t", mig->pages_total);
        if (streq(property, "PagesPresent"))
                return sd_bus_message_append(reply, "t", (uint64_t) atomic_load(&mig->pages_present));
        if (streq(property, "PagesSent"))
                return sd_bus_message_append(reply, "t", (uint64_t) atomic_load(&mig->pages_sent));
        if (streq(property, "Bytes"))
                return sd_bus_message_append(reply, "t", (uint64_t) atomic_load(&mig->bytes));
        if (streq(property, "FaultsServed"))
                return sd_bus_message_append(reply, "t", (uint64_t) atomic_load(&mig->faults));
        if (streq(property, "Reconnects"))
                return sd_bus_message_append(reply, "t", (uint64_t) atomic_load(&mig->reconnects));
        migration_latency(mig, &p50, &p99);
        if (streq(property, "FaultLatencyP50"))
                return sd_bus_message_append(reply, "t", p50);
        if (streq(property, "FaultLatencyP99"))
                return sd_bus_message_append(reply, "t", p99);
        pthread_mutex_lock(&mig->lock);
        r = sd_bus_message_append(reply, "s", !mig->error ? "" : streq(property, "ErrorMessage") ? mig->error_message
                                  : gmem_bus_error_from_errno(mig->error) ?: SD_BUS_ERROR_FAILED);
        pthread_mutex_unlock(&mig->lock);
        return r;
}

static int method_cancel(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        struct migration *mig = userdata;
        int r;

        if (!mig->region)
                return bus_reply_errno(error, -ENOENT, "the migration's region is gone");
        r = bus_check_region_owner(mig->region, msg, "cancel the migration of", error);
        if (r < 0)
                return r;
        if (!mig->finished)
                migration_cancel(mig, "cancelled by the region's owner");
        return sd_bus_reply_method_return(msg, NULL);
}

static void emit_changed(struct migration *mig)
{
        _cleanup_free_ char *path = NULL;

        if (migration_path(mig, &path) >= 0)
                (void) sd_bus_emit_properties_changed(mig->manager->bus, path, GMEM_MIGRATION_INTERFACE, "State", NULL);
}

void migration_bus_changed(struct migration *mig)
{
        if (mig->manager->bus)
                emit_changed(mig);
}

/* Answer a waiting ImportRegion (precopy_only): the region, or why not. */
static void answer_pending(struct migration *mig, enum migration_state state)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = TAKE_PTR(mig->pending);
        const char *name;

        if (state == MIGRATION_COMPLETED && mig->region && !atomic_load(&mig->region->released)) {
                (void) bus_reply_created(msg, mig->region);
                return;
        }
        name = gmem_bus_error_from_errno(mig->error);
        (void) sd_bus_reply_method_errorf(msg, name ?: SD_BUS_ERROR_FAILED, "importing from %s failed: %s",
                                          mig->endpoint, mig->error_message[0] ? mig->error_message : "cancelled");
        if (mig->region && !atomic_load(&mig->region->released))
                manager_release_region(mig->manager, mig->region, "its import failed");
}

void migration_bus_finished(struct migration *mig)
{
        enum migration_state state = migration_get_state(mig);
        _cleanup_free_ char *path = NULL;
        const char *name;

        if (state == MIGRATION_COMPLETED)
                log_info("Migration %" PRIu64 " completed: %" PRIu64 " pages, %" PRIu64 " faults served, %" PRIu64
                         " reconnects", mig->id, mig->pages_total, (uint64_t) atomic_load(&mig->faults),
                         (uint64_t) atomic_load(&mig->reconnects));
        else
                log_warning("Migration %" PRIu64 " %s (%s): %s", mig->id, migration_state_to_string(state),
                            strerror(-mig->error), mig->error_message);
        /* The kernel's waiters fail once nobody can fill the pages any more. */
        if (mig->manager->bus && migration_path(mig, &path) >= 0) {
                emit_changed(mig);
                name = gmem_bus_error_from_errno(mig->error);
                if (state == MIGRATION_COMPLETED)
                        (void) sd_bus_emit_signal(mig->manager->bus, path, GMEM_MIGRATION_INTERFACE, "Completed", NULL);
                else
                        (void) sd_bus_emit_signal(mig->manager->bus, path, GMEM_MIGRATION_INTERFACE, "Failed", "ss",
                                                  name ?: SD_BUS_ERROR_FAILED, mig->error_message);
        }
        if (mig->pending)
                answer_pending(mig, state);
}

static const sd_bus_vtable migration_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Region", "o", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Role", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Mode", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Endpoint", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PagesTotal", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("PagesPresent", "t", property_get, 0, 0),
        SD_BUS_PROPERTY("PagesSent", "t", property_get, 0, 0),
        SD_BUS_PROPERTY("Bytes", "t", property_get, 0, 0),
        SD_BUS_PROPERTY("FaultsServed", "t", property_get, 0, 0),
        SD_BUS_PROPERTY("FaultLatencyP50", "t", property_get, 0, 0),
        SD_BUS_PROPERTY("FaultLatencyP99", "t", property_get, 0, 0),
        SD_BUS_PROPERTY("Reconnects", "t", property_get, 0, 0),
        SD_BUS_PROPERTY("ErrorName", "s", property_get, 0, 0),
        SD_BUS_PROPERTY("ErrorMessage", "s", property_get, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL("Completed", NULL, 0),
        SD_BUS_SIGNAL_WITH_ARGS("Failed", SD_BUS_ARGS("s", error, "s", message), 0),
        SD_BUS_VTABLE_END
};

int migration_bus_register(struct manager *m)
{
        int r = sd_bus_add_fallback_vtable(m->bus, NULL, GMEM_MIGRATION_PATH_PREFIX, GMEM_MIGRATION_INTERFACE,
                                           migration_vtable, migration_find_object, m);

        if (r < 0)
                return log_error_errno(r, "Failed to add the Migration objects: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, GMEM_MIGRATION_PATH_PREFIX, migration_enumerate, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the Migration enumerator: %m");
        return 0;
}
