/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ListRegionsFiltered against the real gmemd: owner_uid, offset, limit and the
 * below_id cursor against ListRegions' own rows, and hostile filters refused
 * by name with the daemon alive and nothing leaked. */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-client.h"
#include "bus-contract.h"
#include "bus-errors.h"
#include "macro.h"
#include "util.h"

#define NOBODY 65534 /* in the test default allowed_group */
#define MINE 5
#define THEIRS 2
#define MAX_ROWS 16

struct row {
        char path[GMEM_REGION_PATH_MAX];
        uint64_t id;
        uint32_t uid;
};

/* One filter entry: key, the variant's type, and its value (u or t). */
struct entry {
        const char *key;
        const char *type;
        uint64_t value;
};

static size_t read_rows(sd_bus_message *reply, struct row *rows)
{
        const char *path, *name, *policy;
        uint64_t size;
        uint32_t uid;
        size_t n = 0;

        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(ostsu)"));
        while (sd_bus_message_read(reply, "(ostsu)", &path, &name, &size, &policy, &uid) > 0) {
                ASSERT(n < MAX_ROWS);
                snprintf(rows[n].path, sizeof(rows[n].path), "%s", path);
                ASSERT_OK(gmem_region_id_from_path(path, &rows[n].id));
                rows[n++].uid = uid;
        }
        ASSERT_OK(sd_bus_message_exit_container(reply));
        return n;
}

static size_t list_all(sd_bus *bus, struct row *rows)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "ListRegions", NULL, &reply,
                                     ""));
        return read_rows(reply, rows);
}

/* ListRegionsFiltered with @entries: the number of rows, or a negative errno
 * with the error in *error. */
static int list_filtered(sd_bus *bus, const struct entry *entries, size_t n, struct row *rows, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        int r;

        ASSERT_OK(sd_bus_message_new_method_call(bus, &call, "org.gmem1", "/org/gmem1", "org.gmem1.Manager",
                                                 "ListRegionsFiltered"));
        ASSERT_OK(sd_bus_message_open_container(call, 'a', "{sv}"));
        for (size_t i = 0; i < n; i++) {
                const char *t = entries[i].type;

                if (streq(t, "s"))
                        ASSERT_OK(sd_bus_message_append(call, "{sv}", entries[i].key, "s", "12"));
                else if (streq(t, "t"))
                        ASSERT_OK(sd_bus_message_append(call, "{sv}", entries[i].key, "t", entries[i].value));
                else if (streq(t, "i"))
                        ASSERT_OK(sd_bus_message_append(call, "{sv}", entries[i].key, "i", (int32_t) entries[i].value));
                else if (streq(t, "au"))
                        ASSERT_OK(sd_bus_message_append(call, "{sv}", entries[i].key, "au", 1, (uint32_t) 0));
                else
                        ASSERT_OK(sd_bus_message_append(call, "{sv}", entries[i].key, "u", (uint32_t) entries[i].value));
        }
        ASSERT_OK(sd_bus_message_close_container(call));
        r = sd_bus_call(bus, call, 0, error, &reply);
        return r < 0 ? r : (int) read_rows(reply, rows);
}

static bool same_rows(const struct row *a, const struct row *b, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!streq(a[i].path, b[i].path) || a[i].uid != b[i].uid)
                        return false;
        return true;
}

/* A client of uid nobody leaves THEIRS persistent regions behind. */
static void create_as_nobody(const char *address, int vm)
{
        int g[THEIRS], status;
        pid_t pid;

        for (unsigned i = 0; i < THEIRS; i++)
                g[i] = make_gmem(vm, 2 * MIB);
        pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
                gid_t nobody = NOBODY;
                sd_bus *bus;

                if (setgroups(1, &nobody) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
                        _exit(100);
                bus = bus_connect(address);
                for (unsigned i = 0; i < THEIRS; i++) {
                        const struct opt o[] = { { .key = "memfd", .sig = "h", .h = g[i] },
                                                 { .key = "persist", .sig = "b", .b = 1 } };
                        sd_bus_error error = SD_BUS_ERROR_NULL;
                        char *path;

                        if (create(bus, vm, 2 * MIB, o, ELEMENTSOF(o), &error, &path) < 0)
                                _exit(1 + i);
                }
                _exit(0);
        }
        ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        for (unsigned i = 0; i < THEIRS; i++)
                close(g[i]);
}

static void test_filters(sd_bus *bus, const struct row *all, size_t n)
{
        struct row rows[MAX_ROWS];
        size_t mine = 0;
        int k;

        ASSERT(list_filtered(bus, NULL, 0, rows, NULL) == (int) n && same_rows(rows, all, n));
        for (size_t i = 0; i + 1 < n; i++)
                ASSERT(all[i].id > all[i + 1].id); /* newest first */

        k = list_filtered(bus, (struct entry[]) { { "owner_uid", "u", NOBODY } }, 1, rows, NULL);
        ASSERT(k == THEIRS);
        for (int i = 0; i < k; i++)
                ASSERT(rows[i].uid == NOBODY);
        k = list_filtered(bus, (struct entry[]) { { "owner_uid", "u", 0 } }, 1, rows, NULL);
        for (size_t i = 0; i < n; i++)
                if (all[i].uid == 0)
                        ASSERT(k > (int) mine && streq(rows[mine++].path, all[i].path));
        ASSERT(k == MINE && mine == MINE);
        ASSERT(list_filtered(bus, (struct entry[]) { { "owner_uid", "u", 4242 } }, 1, rows, NULL) == 0);
        printf("ok: owner_uid: %d of root, %d of nobody, none of 4242, in ListRegions' order\n", MINE, THEIRS);

        ASSERT(list_filtered(bus, (struct entry[]) { { "limit", "u", 2 } }, 1, rows, NULL) == 2 &&
               same_rows(rows, all, 2));
        ASSERT(list_filtered(bus, (struct entry[]) { { "offset", "u", 2 }, { "limit", "u", 3 } }, 2, rows, NULL) ==
                       3 &&
               same_rows(rows, all + 2, 3));
        ASSERT(list_filtered(bus, (struct entry[]) { { "offset", "u", (uint32_t) n - 1 } }, 1, rows, NULL) == 1 &&
               same_rows(rows, all + n - 1, 1));
        ASSERT(list_filtered(bus, (struct entry[]) { { "offset", "u", (uint32_t) n } }, 1, rows, NULL) == 0);
        ASSERT(list_filtered(bus, (struct entry[]) { { "limit", "u", 100 } }, 1, rows, NULL) == (int) n);
        ASSERT(list_filtered(bus, (struct entry[]) { { "below_id", "t", all[2].id } }, 1, rows, NULL) == (int) n - 3 &&
               same_rows(rows, all + 3, n - 3));
        ASSERT(list_filtered(bus, (struct entry[]) { { "below_id", "t", all[n - 1].id } }, 1, rows, NULL) == 0);
        ASSERT(list_filtered(bus, (struct entry[]) { { "below_id", "t", UINT64_MAX } }, 1, rows, NULL) == (int) n);
        /* Together: root's regions, one page of two after skipping one. */
        k = list_filtered(bus, (struct entry[]) { { "limit", "u", 2 }, { "owner_uid", "u", 0 }, { "offset", "u", 1 } },
                          3, rows, NULL);
        ASSERT(k == 2 && rows[0].uid == 0 && rows[1].uid == 0 && rows[0].id > rows[1].id);
        printf("ok: offset, limit, below_id and all of them together page through ListRegions' rows\n");
}

/* Pages of three, each asking below the last id of the one before, give
 * ListRegions' rows once each, also while a region is created between pages. */
static void test_cursor(sd_bus *bus, int vm, const struct row *all, size_t n)
{
        struct row rows[MAX_ROWS], seen[MAX_ROWS];
        uint64_t below = 0;
        size_t n_seen = 0;
        char *extra = NULL;
        int k;

        do {
                struct entry e[] = { { "limit", "u", 3 }, { "below_id", "t", below } };

                k = list_filtered(bus, e, below ? 2 : 1, rows, NULL);
                ASSERT(k >= 0 && k <= 3 && n_seen + (size_t) k <= n);
                memcpy(seen + n_seen, rows, (size_t) k * sizeof(*rows));
                n_seen += (size_t) k;
                if (k > 0)
                        below = rows[k - 1].id;
                if (!extra) {
                        sd_bus_error error = SD_BUS_ERROR_NULL;
                        const struct opt o[] = { { .key = "memfd", .sig = "h", .h = make_gmem(vm, 2 * MIB) } };

                        ASSERT_OK(create(bus, vm, 2 * MIB, o, 1, &error, &extra));
                        close(o[0].h);
                }
        } while (k == 3);
        ASSERT(n_seen == n && same_rows(seen, all, n));
        region_release(bus, extra);
        free(extra);
        printf("ok: pages of 3 by below_id: all %zu rows once, a region created meanwhile not in them\n", n);
}

static void test_hostile(struct test_env *e, sd_bus *bus, size_t n)
{
        static const struct {
                struct entry entries[2];
                size_t n;
                const char *says;
        } bad[] = {
                { { { "colour", "u", 1 } }, 1, "unknown filter 'colour' (known: owner_uid, offset, limit, below_id)" },
                { { { "", "u", 1 } }, 1, "unknown filter ''" },
                { { { "limit", "s", 0 } }, 1, "filter 'limit' must be of type 'u', got 's'" },
                { { { "limit", "i", 5 } }, 1, "filter 'limit' must be of type 'u', got 'i'" },
                { { { "owner_uid", "t", 0 } }, 1, "filter 'owner_uid' must be of type 'u', got 't'" },
                { { { "offset", "au", 0 } }, 1, "filter 'offset' must be of type 'u', got 'au'" },
                { { { "below_id", "u", 3 } }, 1, "filter 'below_id' must be of type 't', got 'u'" },
                { { { "limit", "u", 0 } }, 1, "filter 'limit' is 0; give 1 or more" },
                { { { "below_id", "t", 0 } }, 1, "filter 'below_id' is 0; region ids start at 1" },
                { { { "limit", "u", 2 }, { "limit", "u", 3 } }, 2, "filter 'limit' is given twice" },
        };
        int fds = test_env_daemon_fds(e);
        struct row rows[MAX_ROWS];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                int r = list_filtered(bus, bad[i].entries, bad[i].n, rows, &error);

                expect_error_says(r, &error, GMEM_ERROR_INVALID_ARGUMENT, bad[i].says, bad[i].says);
        }
        {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                int r = sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "ListRegionsFiltered",
                                           &error, NULL, "u", 5);

                ASSERT(r < 0 && sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS));
                printf("ok: a filter that is no a{sv} -> %s\n", error.name);
        }
        ASSERT(test_env_daemon_alive(e));
        /* No more than before: the baseline, taken right after the last test released a
         * region, may still count an fd gmemd closes a moment later (seen under ASan). */
        ASSERT(test_env_daemon_fds(e) <= fds);
        ASSERT(list_all(bus, rows) == n);
        printf("ok: hostile filters refused by name; gmemd alive, %d fds as before, %zu regions\n", fds, n);
}

int main(void)
{
        _cleanup_close_ int vm = -1;
        struct test_env e = {};
        struct row all[MAX_ROWS];
        char *mine[MINE];
        size_t n;
        sd_bus *bus;

        bus_tests_init();
        bus = bus_test_start(&e, &(struct test_env_options) { .open_policy = true });
        vm = make_vm();
        for (unsigned i = 0; i < MINE; i++) {
                const struct opt o[] = { { .key = "memfd", .sig = "h", .h = make_gmem(vm, 2 * MIB) } };
                sd_bus_error error = SD_BUS_ERROR_NULL;

                ASSERT_OK(create(bus, vm, 2 * MIB, o, 1, &error, &mine[i]));
                close(o[0].h);
                if (i == 2)
                        create_as_nobody(e.address, vm); /* ids interleaved: root's, nobody's, root's */
        }
        n = list_all(bus, all);
        ASSERT(n == MINE + THEIRS);
        test_filters(bus, all, n);
        test_cursor(bus, vm, all, n);
        test_hostile(&e, bus, n);
        for (unsigned i = 0; i < MINE; i++) {
                region_release(bus, mine[i]);
                free(mine[i]);
        }
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));
        return 0;
}
