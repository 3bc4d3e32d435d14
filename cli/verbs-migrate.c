/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemctl migrations, export and import: the Migration objects with a
 * progress bar, and both ends of a migration driven by an operator. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gmem.h"
#include "gmemctl.h"
#include "util.h"

#define BAR_WIDTH 20

struct migration_row {
        const char *path, *region, *role, *mode, *state;
        uint64_t done, total;
};

/* "[#########-----------]  45%" */
static void format_bar(char *buf, size_t n, uint64_t done, uint64_t total)
{
        unsigned filled = total ? (unsigned) (done * BAR_WIDTH / total) : 0, pct = total ? (unsigned) (done * 100 / total) : 0;
        char bar[BAR_WIDTH + 1];

        for (unsigned i = 0; i < BAR_WIDTH; i++)
                bar[i] = i < filled ? '#' : '-';
        bar[BAR_WIDTH] = '\0';
        snprintf(buf, n, "[%s] %3u%%", bar, pct);
}

static uint64_t migration_get_u64(sd_bus *bus, const char *path, const char *property)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t v = 0;

        (void) sd_bus_get_property_trivial(bus, GMEM_BUS_NAME, path, GMEM_MIGRATION_INTERFACE, property, &error, 't', &v);
        sd_bus_error_free(&error);
        return v;
}

static int add_row(struct table *t, sd_bus *bus, const struct migration_row *m)
{
        char bar[64], pages[64], latency[32];
        uint64_t mig_id = 0, region_id = 0;

        (void) sscanf(m->path, GMEM_MIGRATION_PATH_PREFIX "/%" SCNu64, &mig_id);
        (void) gmem_region_id_from_path(m->region, &region_id);
        format_bar(bar, sizeof(bar), m->done, m->total);
        snprintf(pages, sizeof(pages), "%" PRIu64 "/%" PRIu64, m->done, m->total);
        snprintf(latency, sizeof(latency), "%" PRIu64 "us", migration_get_u64(bus, m->path, "FaultLatencyP99"));
        if (table_add_u64(t, mig_id) < 0 || table_add_u64(t, region_id) < 0 || table_add(t, m->role) < 0 ||
            table_add(t, m->mode) < 0 || table_add(t, m->state) < 0 || table_add(t, bar) < 0 ||
            table_add(t, pages) < 0 || table_add_u64(t, migration_get_u64(bus, m->path, "FaultsServed")) < 0 ||
            table_add(t, latency) < 0)
                return -ENOMEM;
        return 0;
}

/* Every property of the object, as JSON. */
static int migration_json(sd_bus *bus, const char *path, json_object **ret)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, GMEM_BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll", &error, &reply,
                               "s", GMEM_MIGRATION_INTERFACE);
        if (r < 0)
                return log_bus_error(&error, r, "reading the migration's properties");
        r = bus_read_json(reply, ret);
        if (r >= 0)
                r = json_add(*ret, "path", json_object_new_string(path));
        return r;
}

static int list_call(sd_bus *bus, sd_bus_message **ret)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE, "ListMigrations",
                                   &error, ret, NULL);

        if (r < 0)
                return log_bus_error(&error, r, "ListMigrations");
        return sd_bus_message_enter_container(*ret, 'a', "(oossstt)");
}

int verb_migrations(const struct args *a)
{
        static const char *const headers[] = { "ID", "REGION", "ROLE", "MODE", "STATE", "PROGRESS", "PAGES", "FAULTS",
                                               "P99" };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *array = json_object_new_array();
        _cleanup_(table_freep) struct table *t = NULL;
        struct migration_row m;
        size_t n = 0;
        int r;

        if (!array || table_new(ELEMENTSOF(headers), headers, &t) < 0)
                return log_oom();
        if ((r = bus_connect(a->bus, &bus)) < 0 || (r = list_call(bus, &reply)) < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(oossstt)", &m.path, &m.region, &m.role, &m.mode, &m.state, &m.done,
                                        &m.total)) > 0) {
                json_object *o = NULL;

                n++;
                if (a->json)
                        r = migration_json(bus, m.path, &o) < 0 ? -EIO : json_object_array_add(array, o);
                else
                        r = add_row(t, bus, &m);
                if (r < 0)
                        return r == -EIO ? r : log_oom();
        }
        if (r < 0)
                return log_error_errno(r, "cannot read ListMigrations: %m");
        if (a->json)
                return json_print(array);
        if (n > 0 && table_print(t, a->legend) < 0)
                return log_oom();
        if (a->legend)
                printf(n ? "\n%zu migration%s listed.\n" : "No migrations.\n", n, n == 1 ? "" : "s");
        return 0;
}

/* --- export and import ------------------------------------------------------------ */

struct follow {
        const char *path;
        bool done, failed;
};

static int on_migration_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct follow *f = userdata;

        if (!streq(sd_bus_message_get_path(m), f->path))
                return 0;
        f->done = true;
        f->failed = !streq(sd_bus_message_get_member(m), "Completed");
        return 0;
}

static void show_progress(sd_bus *bus, const struct follow *f, bool tty)
{
        char bar[64];
        uint64_t total = migration_get_u64(bus, f->path, "PagesTotal");
        bool source = strstr(f->path, GMEM_MIGRATION_PATH_PREFIX) && migration_get_u64(bus, f->path, "PagesSent");
        uint64_t done = migration_get_u64(bus, f->path, source ? "PagesSent" : "PagesPresent");

        if (!tty)
                return;
        format_bar(bar, sizeof(bar), done > total ? total : done, total);
        fprintf(stderr, "\r%s %" PRIu64 "/%" PRIu64 " pages", bar, done, total);
}

/* Until the migration at @path completes or fails (its signal), with a bar on a terminal. */
static int follow_migration(sd_bus *bus, const char *path, bool json)
{
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_free_ char *state = NULL, *message = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct follow f = { .path = path };
        bool tty = !json && isatty(STDERR_FILENO);
        int r;

        r = sd_bus_match_signal(bus, &slot, GMEM_BUS_NAME, path, GMEM_MIGRATION_INTERFACE, NULL, on_migration_signal, &f);
        if (r < 0)
                return log_error_errno(r, "cannot watch %s: %m", path);
        /* It may have ended before the match was in place. */
        r = sd_bus_get_property_string(bus, GMEM_BUS_NAME, path, GMEM_MIGRATION_INTERFACE, "State", &error, &state);
        if (r < 0)
                return log_bus_error(&error, r, "reading the migration's state");
        f.done = streq(state, "completed") || streq(state, "failed") || streq(state, "cancelled");
        f.failed = f.done && !streq(state, "completed");
        while (!f.done) {
                show_progress(bus, &f, tty);
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return log_error_errno(r, "lost the bus: %m");
                if (r == 0 && (r = sd_bus_wait(bus, 500000)) < 0)
                        return log_error_errno(r, "lost the bus: %m");
        }
        show_progress(bus, &f, tty);
        if (tty)
                fputc('\n', stderr);
        if (!f.failed)
                return 0;
        (void) sd_bus_get_property_string(bus, GMEM_BUS_NAME, path, GMEM_MIGRATION_INTERFACE, "ErrorMessage", &error,
                                          &message);
        return log_error_errno(-EIO, "migration %s failed: %s", path, message ?: "?");
}

/* The Migration object ListMigrations shows for @region. */
static int migration_for_region(sd_bus *bus, const char *region, char **ret)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        struct migration_row m;
        int r;

        r = list_call(bus, &reply);
        while (r >= 0 && (r = sd_bus_message_read(reply, "(oossstt)", &m.path, &m.region, &m.role, &m.mode, &m.state,
                                                  &m.done, &m.total)) > 0)
                if (streq(m.region, region) && !streq(m.state, "completed") && !streq(m.state, "failed") &&
                    !streq(m.state, "cancelled"))
                        return (*ret = strdup(m.path)) ? 0 : log_oom();
        return log_error_errno(-ENOENT, "no running migration of %s", region);
}

static int print_endpoint(const struct args *a, const char *endpoint, const char *token, const char *migration)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (!a->json) {
                printf("Endpoint: %s\n   Token: %s\nMigration: %s\n", endpoint, token, migration);
                fflush(stdout);
                return 0;
        }
        if (!o || json_add(o, "endpoint", json_object_new_string(endpoint)) < 0 ||
            json_add(o, "token", json_object_new_string(token)) < 0 ||
            json_add(o, "migration", json_object_new_string(migration)) < 0)
                return log_oom();
        return json_print(o);
}

int verb_export(const struct args *a)
{
        _cleanup_(gmem_client_unrefp) gmem_client *client = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL, *migration = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *endpoint, *token;
        int r;

        if ((r = client_connect(a->bus, &client)) < 0 || (r = region_resolve(client, a->region, &path)) < 0 ||
            (r = bus_connect(a->bus, &bus)) < 0)
                return r;
        if (a->token)
                r = sd_bus_call_method(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE, "ExportRegion",
                                       &error, &reply, "oa{sv}", path, 2, "listen", "s", a->listen ?: "tcp:0.0.0.0:0",
                                       "token", "s", a->token);
        else
                r = sd_bus_call_method(bus, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE, "ExportRegion",
                                       &error, &reply, "oa{sv}", path, 1, "listen", "s", a->listen ?: "tcp:0.0.0.0:0");
        if (r < 0)
                return log_bus_error(&error, r, "ExportRegion");
        if ((r = sd_bus_message_read(reply, "ss", &endpoint, &token)) < 0)
                return log_error_errno(r, "cannot read the ExportRegion reply: %m");
        if ((r = migration_for_region(bus, path, &migration)) < 0 || (r = print_endpoint(a, endpoint, token, migration)) < 0)
                return r;
        return a->wait ? follow_migration(bus, migration, a->json) : 0;
}

int verb_import(const struct args *a)
{
        _cleanup_(gmem_client_unrefp) gmem_client *client = NULL;
        _cleanup_(gmem_options_unrefp) gmem_options *options = NULL;
        _cleanup_(gmem_region_unrefp) gmem_region *region = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *migration = NULL;
        _cleanup_close_ int kvm = -1, vm = -1;
        uint64_t id = 0;
        int r;

        if ((r = scratch_vm(&kvm, &vm)) < 0 || (r = client_connect(a->bus, &client)) < 0 ||
            (r = make_options(a, &options)) < 0)
                return r;
        r = gmem_region_import(client, vm, a->size, a->endpoint, a->token, options,
                               a->precopy_only ? GMEM_IMPORT_PRECOPY_ONLY : 0, &region);
        if (r < 0)
                return log_client_error(client, r, "ImportRegion");
        (void) gmem_region_id_from_path(gmem_region_get_path(region), &id);
        if (a->json)
                r = 0;
        else
                printf("Imported region %" PRIu64 " (%s) from %s.\n", id, gmem_region_get_path(region), a->endpoint);
        /* Postcopy: the region fills in the background; follow it to the end. */
        if ((r = bus_connect(a->bus, &bus)) >= 0 && !a->precopy_only &&
            (r = migration_for_region(bus, gmem_region_get_path(region), &migration)) >= 0)
                r = follow_migration(bus, migration, a->json);
        if (r >= 0 && a->json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();

                if (!o || json_add(o, "path", json_object_new_string(gmem_region_get_path(region))) < 0 ||
                    json_add(o, "id", json_object_new_int64((int64_t) id)) < 0)
                        return log_oom();
                r = json_print(o);
        }
        return finish_created(a, client, region, id, r);
}
