/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Raw sd-bus client helpers shared by the bus tests: connect, make a VM and
 * guest_memfds, CreateRegion with any options, expect named errors, follow
 * replies and signals in the order they arrive, act as another uid. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bus-client.h"
#include "bus-contract.h"
#include "bus-errors.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "util.h"

void bus_tests_init(void)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        ASSERT_OK(gmem_bus_errors_register());
}

sd_bus *bus_test_start(struct test_env *e, const struct test_env_options *o)
{
        ASSERT_OK(test_env_start(e, o));
        return bus_connect(e->address);
}

sd_bus *bus_connect(const char *address)
{
        sd_bus *bus;

        ASSERT_OK(sd_bus_new(&bus));
        ASSERT_OK(sd_bus_set_address(bus, address));
        ASSERT_OK(sd_bus_set_bus_client(bus, true));
        ASSERT_OK(sd_bus_negotiate_fds(bus, true));
        ASSERT_OK(sd_bus_start(bus));
        return bus;
}

int make_vm(void)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        int vm;

        ASSERT(kvm >= 0);
        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        ASSERT(vm >= 0);
        return vm;
}

int make_gmem(int vm, uint64_t size)
{
        return make_gmem_flags(vm, size, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED);
}

int make_gmem_flags(int vm, uint64_t size, uint64_t flags)
{
        struct kvm_create_guest_memfd args = {
                .size = size,
                .flags = flags,
        };
        int fd = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &args);

        ASSERT(fd >= 0);
        return fd;
}

/* CreateRegion; returns 0 with *path set, or the negative errno of the
 * error, whose name is left in *error. */
int create(sd_bus *bus, int vm, uint64_t size, const struct opt *opts, size_t n, sd_bus_error *error,
                  char **path)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *p;
        int fd, r;

        ASSERT_OK(sd_bus_message_new_method_call(bus, &m, "org.gmem1", "/org/gmem1", "org.gmem1.Manager",
                                                 "CreateRegion"));
        r = sd_bus_message_append(m, "ht", vm, size);
        if (r < 0)
                return r;
        ASSERT_OK(sd_bus_message_open_container(m, 'a', "{sv}"));
        for (size_t i = 0; i < n; i++) {
                const struct opt *o = &opts[i];

                ASSERT_OK(sd_bus_message_open_container(m, 'e', "sv"));
                ASSERT_OK(sd_bus_message_append(m, "s", o->key));
                ASSERT_OK(sd_bus_message_open_container(m, 'v', o->sig));
                if (streq(o->sig, "s"))
                        ASSERT_OK(sd_bus_message_append(m, "s", o->s));
                else if (streq(o->sig, "b"))
                        ASSERT_OK(sd_bus_message_append(m, "b", o->b));
                else if (streq(o->sig, "h"))
                        ASSERT_OK(sd_bus_message_append(m, "h", o->h));
                else if (streq(o->sig, "t"))
                        ASSERT_OK(sd_bus_message_append(m, "t", (uint64_t) o->b));
                else
                        ASSERT_OK(sd_bus_message_append_array(m, 'u', o->au, o->n_au * sizeof(uint32_t)));
                ASSERT_OK(sd_bus_message_close_container(m));
                ASSERT_OK(sd_bus_message_close_container(m));
        }
        ASSERT_OK(sd_bus_message_close_container(m));
        r = sd_bus_call(bus, m, 0, error, &reply);
        if (r < 0)
                return r;
        ASSERT_OK(sd_bus_message_read(reply, "oh", &p, &fd));
        ASSERT(fd_is_guest_memfd(fd));
        *path = strdup(p);
        return 0;
}

unsigned count_regions(sd_bus *bus)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        unsigned n = 0;

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "ListRegions", &error,
                                     &reply, NULL));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(ostsu)"));
        while (sd_bus_message_skip(reply, "(ostsu)") > 0)
                n++;
        return n;
}

/* The call failed with error @name, and its message contains @says (when
 * not NULL): the name alone cannot tell gmemd's own check from the kernel's
 * EINVAL further down, the message can. */
void expect_error_says(int r, sd_bus_error *error, const char *name, const char *says, const char *what)
{
        if (r >= 0 || !sd_bus_error_has_name(error, name) || (says && !strstr(error->message ?: "", says))) {
                fprintf(stderr, "%s: expected %s saying '%s', got r=%d %s: %s\n", what, name, says ?: "", r,
                        error->name ?: "(none)", error->message ?: "");
                abort();
        }
        ASSERT(error->message && strlen(error->message) > 10);
        printf("ok: %-40s -> %s: %s\n", what, name, error->message);
        sd_bus_error_free(error);
}

void expect_error(int r, sd_bus_error *error, const char *name, const char *what)
{
        expect_error_says(r, error, name, NULL, what);
}

void expect_region_not_found(sd_bus *bus, const char *path)
{
        static const struct {
                const char *interface, *method, *types;
        } calls[] = {
                { GMEM_REGION_INTERFACE, "Release", "" },
                { "org.freedesktop.DBus.Properties", "Get", "ss" },
                { "org.freedesktop.DBus.Properties", "GetAll", "s" },
                { "org.freedesktop.DBus.Introspectable", "Introspect", "" },
        };

        for (size_t i = 0; i < ELEMENTSOF(calls); i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                ASSERT(sd_bus_call_method(bus, GMEM_BUS_NAME, path, calls[i].interface, calls[i].method, &error,
                                          NULL, calls[i].types, GMEM_REGION_INTERFACE, "Size") < 0);
                if (!streq(error.name, GMEM_ERROR_NOT_FOUND))
                        fprintf(stderr, "%s %s: %s\n", path, calls[i].method, error.name);
                ASSERT_STREQ(error.name, GMEM_ERROR_NOT_FOUND);
        }
}

void expect_create_error_says(struct test_env *e, sd_bus *bus, int vm, uint64_t size, const struct opt *opts,
                                     size_t n, const char *name, const char *says, const char *what)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        unsigned before = count_regions(bus);
        int r = create(bus, vm, size, opts, n, &error, &path);

        expect_error_says(r, &error, name, says, what);
        ASSERT(test_env_daemon_alive(e));
        ASSERT(count_regions(bus) == before);
}

void expect_create_error(struct test_env *e, sd_bus *bus, int vm, uint64_t size, const struct opt *opts,
                                size_t n, const char *name, const char *what)
{
        expect_create_error_says(e, bus, vm, size, opts, n, name, NULL, what);
}

/* Bytes of the region's Resident on @node, or on all nodes when @node < 0. */
static uint64_t resident_sum(sd_bus *bus, const char *path, int64_t node)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t total = 0, bytes;
        uint32_t n;

        ASSERT_OK(sd_bus_get_property(bus, "org.gmem1", path, "org.gmem1.Region", "Resident", &error, &reply,
                                      "a(ut)"));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(ut)"));
        while (sd_bus_message_read(reply, "(ut)", &n, &bytes) > 0)
                if (node < 0 || n == node)
                        total += bytes;
        return total;
}

uint64_t resident_on(sd_bus *bus, const char *path, unsigned node)
{
        return resident_sum(bus, path, node);
}

uint64_t resident_total(sd_bus *bus, const char *path)
{
        return resident_sum(bus, path, -1);
}

static int on_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        (*(unsigned *) userdata)++;
        return 0;
}

static bool changed_since(const void *userdata)
{
        const unsigned *counts = userdata;

        return counts[0] != counts[1];
}

uint64_t resident_settles_within(sd_bus *bus, const char *path, uint64_t min, uint64_t max, unsigned seconds)
{
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        unsigned counts[2] = { 0, 0 }; /* signals seen, and when last read */

        /* Watch first, then read: a refresh in between is not missed. */
        ASSERT_OK(sd_bus_match_signal(bus, &slot, "org.gmem1", path, "org.freedesktop.DBus.Properties",
                                      "PropertiesChanged", on_changed, &counts[0]));
        for (;;) {
                uint64_t sum = resident_sum(bus, path, -1);

                if (sum >= min && sum <= max)
                        return sum;
                process_until(bus, changed_since, counts, seconds);
                counts[1] = counts[0];
        }
}

void resident_settles(sd_bus *bus, const char *path, uint64_t want, unsigned seconds)
{
        (void) resident_settles_within(bus, path, want, want, seconds);
}

/* Dispatch bus messages until @done says so; a test failure after @seconds. */
void process_until(sd_bus *bus, bool (*done)(const void *userdata), const void *userdata, unsigned seconds)
{
        uint64_t deadline = (uint64_t) time(NULL) + seconds;

        while (!done(userdata)) {
                int r = sd_bus_process(bus, NULL);

                ASSERT_OK(r);
                if (r > 0)
                        continue;
                ASSERT((uint64_t) time(NULL) < deadline);
                ASSERT_OK(sd_bus_wait(bus, 1000000));
        }
}

static unsigned replies_seen;

int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct pending_call *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        c->done = true;
        c->order = ++replies_seen;
        c->error_name = e ? strdup(e->name) : NULL;
        return 0;
}

bool reply_arrived(const void *userdata)
{
        return ((const struct pending_call *) userdata)->done;
}

void wait_reply(sd_bus *bus, struct pending_call *c)
{
        process_until(bus, reply_arrived, c, 120);
}

void pending_call_done(struct pending_call *c)
{
        free(c->error_name);
        *c = (struct pending_call) {};
}

void call_async(sd_bus *bus, struct pending_call *c, const char *path, const char *interface, const char *member,
                const char *types, ...)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;

        ASSERT_OK(sd_bus_message_new_method_call(bus, &m, "org.gmem1", path, interface, member));
        va_start(ap, types);
        ASSERT_OK(sd_bus_message_appendv(m, types, ap));
        va_end(ap);
        ASSERT_OK(sd_bus_call_async(bus, NULL, m, on_reply, c, 0));
}

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        struct signal_count *s = userdata;
        const char *path;

        s->count++;
        if (sd_bus_message_read(m, "o", &path) > 0) {
                free(s->last);
                s->last = strdup(path);
        }
        return 0;
}

void signal_count_watch(sd_bus *bus, struct signal_count *s, const char *member)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        ASSERT_OK(sd_bus_match_signal(bus, &s->slot, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", member, on_signal,
                                      s));
        /* gmemd may emit a signal right after a reply (Release does): any it
         * sent before answering this Ping is queued once the answer is here,
         * and is dispatched now, before counting starts. */
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.freedesktop.DBus.Peer", "Ping", &error, NULL,
                                     NULL));
        do
                r = sd_bus_process(bus, NULL);
        while (r > 0);
        ASSERT_OK(r);
        free(s->last);
        s->last = NULL;
        s->count = 0;
}

struct signal_wait {
        const struct signal_count *s;
        unsigned want;
};

static bool signals_enough(const void *userdata)
{
        const struct signal_wait *w = userdata;

        return w->s->count >= w->want;
}

void signal_count_wait(sd_bus *bus, const struct signal_count *s, unsigned want)
{
        process_until(bus, signals_enough, &(struct signal_wait) { s, want }, 30);
}

void signal_count_done(struct signal_count *s)
{
        sd_bus_slot_unref(s->slot);
        free(s->last);
        *s = (struct signal_count) {};
}

void region_release(sd_bus *bus, const char *path)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Release", &error, NULL, NULL));
}

char *region_property_string(sd_bus *bus, const char *path, const char *property)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *s = NULL;

        ASSERT_OK(sd_bus_get_property_string(bus, "org.gmem1", path, "org.gmem1.Region", property, &error, &s));
        return s;
}

size_t region_nodes(sd_bus *bus, const char *path, uint32_t *nodes, size_t max)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const void *array;
        size_t bytes;

        ASSERT_OK(sd_bus_get_property(bus, "org.gmem1", path, "org.gmem1.Region", "Nodes", &error, &reply, "au"));
        ASSERT_OK(sd_bus_message_read_array(reply, 'u', &array, &bytes));
        ASSERT(bytes / sizeof(uint32_t) <= max);
        memcpy(nodes, array, bytes);
        return bytes / sizeof(uint32_t);
}

size_t host_nodes(sd_bus *bus, struct host_node *nodes, size_t max)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        size_t n = 0;
        struct host_node h;

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "GetNodes", &error, &reply,
                                     NULL));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(uttt)"));
        while (sd_bus_message_read(reply, "(uttt)", &h.node, &h.total, &h.free, &h.held) > 0) {
                ASSERT(n < max);
                nodes[n++] = h;
        }
        ASSERT(n > 0);
        return n;
}

bool region_listed_find(sd_bus *bus, bool (*match)(const char *path, uint32_t uid, const void *arg),
                        const void *arg, char **ret_path, char **ret_policy)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *p, *name, *policy;
        uint64_t size;
        uint32_t uid;

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "ListRegions", &error, &reply,
                                     NULL));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(ostsu)"));
        while (sd_bus_message_read(reply, "(ostsu)", &p, &name, &size, &policy, &uid) > 0)
                if (match(p, uid, arg)) {
                        if (ret_path)
                                ASSERT((*ret_path = strdup(p)));
                        if (ret_policy)
                                ASSERT((*ret_policy = strdup(policy)));
                        return true;
                }
        return false;
}

static bool match_path(const char *path, uint32_t uid, const void *arg)
{
        return streq(path, arg);
}

char *region_listed_policy(sd_bus *bus, const char *path)
{
        char *policy = NULL;

        return region_listed_find(bus, match_path, path, NULL, &policy) ? policy : NULL;
}

int as_user(uid_t uid, gid_t gid, gid_t supplementary, int (*fn)(const void *arg), const void *arg)
{
        pid_t pid = fork();
        int status;

        ASSERT(pid >= 0);
        if (pid == 0) {
                if (setgroups(1, &supplementary) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
                        _exit(100);
                _exit(fn(arg));
        }
        ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
        return WEXITSTATUS(status);
}

static int call_answer(int r, const sd_bus_error *error)
{
        if (r >= 0)
                return CALL_OK;
        if (sd_bus_error_has_name(error, GMEM_ERROR_PERMISSION_DENIED))
                return CALL_PERMISSION_DENIED;
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED))
                return CALL_ACCESS_DENIED;
        return CALL_OTHER_ERROR;
}

int try_call(const struct try_call *c)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus *bus = bus_connect(c->address);
        int r;

        if (c->property) {
                r = sd_bus_get_property(bus, "org.gmem1", c->path, "org.gmem1.Region", c->property, &error, &reply,
                                        c->property_type);
                printf("   uid %u reads %s: %s: %s\n", (unsigned) getuid(), c->property, error.name ?: "ok",
                       error.message ?: "");
                return call_answer(r, &error);
        }
        ASSERT_OK(sd_bus_message_new_method_call(bus, &m, "org.gmem1", c->path, c->interface, c->member));
        if (c->range)
                ASSERT_OK(sd_bus_message_append(m, "tt", c->offset, c->length));
        r = sd_bus_call(bus, m, 0, &error, NULL);
        printf("   uid %u %s: %s: %s\n", (unsigned) getuid(), c->member, error.name ?: "ok", error.message ?: "");
        return call_answer(r, &error);
}

int try_call_fn(const void *arg)
{
        return try_call(arg);
}

struct holdings daemon_holdings(struct test_env *e, sd_bus *bus)
{
        struct holdings h;

        /* Once gmemd has answered a call, it holds what it keeps. */
        (void) count_regions(bus);
        h = (struct holdings) { test_env_daemon_fds(e), test_env_daemon_mappings(e) };
        ASSERT(h.fds > 0 && h.maps >= 0);
        return h;
}

void expect_same_holdings(struct test_env *e, sd_bus *bus, const struct holdings *before)
{
        struct holdings now = daemon_holdings(e, bus);

        if (now.fds != before->fds || now.maps != before->maps) {
                fprintf(stderr, "gmemd holds %d fds and %d guest_memfd mappings, %d and %d before\n", now.fds,
                        now.maps, before->fds, before->maps);
                abort();
        }
        printf("ok: gmemd holds %d fds and %d guest_memfd mappings, as before\n", now.fds, now.maps);
}
