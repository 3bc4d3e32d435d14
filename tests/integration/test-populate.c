/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The populate engine through the bus: PopulateProgress signals (monotonic,
 * one final, before the reply), PopulateWithOptions' report (residency and
 * the workers' CPUs), its 'workers' option refused by name when bad, and
 * cancellation by CancelPopulate, by the caller's connection going away and
 * by Release (a final signal still),
 * each leaving the region consistent (Resident = what was done) and usable. */
#include <stdint.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-client.h"
#include "bus-errors.h"
#include "macro.h"
#include "util.h"

/* 16 chunks of the daemon's 32 MiB: signals between the start and the end,
 * and still running when a call sent right after the Populate is read.
 * Small enough for the vm tier's guest, which runs the host tier in 2 GiB. */
#define BIG (512 * MIB)
#define MAX_SIGNALS 1024

struct progress {
        unsigned n, n_final;
        uint64_t done[MAX_SIGNALS];
        bool final[MAX_SIGNALS];
        bool final_after_reply;
        const bool *reply_done; /* the call whose reply must come after the final signal */
        sd_bus_slot *slot;
};

static int on_progress(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        struct progress *p = userdata;
        uint64_t offset, length, done;
        int final;

        ASSERT_OK(sd_bus_message_read(m, "tttb", &offset, &length, &done, &final));
        ASSERT(p->n < MAX_SIGNALS);
        p->done[p->n] = done;
        p->final[p->n++] = final;
        if (final) {
                p->n_final++;
                p->final_after_reply = p->reply_done && *p->reply_done;
        }
        return 0;
}

static void progress_watch(sd_bus *bus, struct progress *p, const char *path)
{
        *p = (struct progress) {};
        ASSERT_OK(sd_bus_match_signal(bus, &p->slot, "org.gmem1", path, "org.gmem1.Region", "PopulateProgress",
                                      on_progress, p));
        /* The match is in place at the bus once a call after it is answered. */
        (void) count_regions(bus);
}

/* A call whose reply message is kept, to read PopulateWithOptions' report. */
struct kept_call {
        bool done;
        sd_bus_message *reply;
};

static int on_kept_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct kept_call *c = userdata;

        c->done = true;
        c->reply = sd_bus_message_ref(m);
        return 0;
}

static void populate_with_workers(sd_bus *bus, struct kept_call *c, const char *path, uint64_t length,
                                  const char *sig, unsigned workers)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

        *c = (struct kept_call) {};
        ASSERT_OK(sd_bus_message_new_method_call(bus, &m, "org.gmem1", path, "org.gmem1.Region",
                                                 "PopulateWithOptions"));
        ASSERT_OK(sd_bus_message_append(m, "tt", 0ULL, length));
        if (streq(sig, "u"))
                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, "workers", "u", workers));
        else if (streq(sig, "s"))
                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, "workers", "s", "two"));
        else
                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, sig, "u", workers));
        ASSERT_OK(sd_bus_call_async(bus, NULL, m, on_kept_reply, c, 0));
}

static bool kept_arrived(const void *userdata)
{
        return ((const struct kept_call *) userdata)->done;
}

static char *create_region(sd_bus *bus, int vm, int gmem, uint64_t size, const char *policy)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        static const uint32_t node0[] = { 0 };
        const struct opt o[] = {
                { .key = "memfd", .sig = "h", .h = gmem },
                { .key = "policy", .sig = "s", .s = policy },
                { .key = "nodes", .sig = "au", .au = node0, .n_au = 1 },
        };
        char *path = NULL;

        ASSERT_OK(create(bus, vm, size, o, streq(policy, "default") ? 1 : ELEMENTSOF(o), &error, &path));
        return path;
}

static void expect_progress_sane(const struct progress *p, uint64_t final_done)
{
        ASSERT(p->n >= 1);
        ASSERT(p->n_final == 1 && p->final[p->n - 1]);
        for (unsigned i = 1; i < p->n; i++)
                ASSERT(p->done[i] >= p->done[i - 1]);
        ASSERT(p->done[p->n - 1] == final_done);
        ASSERT(!p->final_after_reply);
}

/* The report: resident bytes of the range per node add up to @length; every
 * worker says its node and the CPUs it was allowed on. */
static unsigned read_report(sd_bus_message *reply, uint64_t length, int want_node)
{
        uint64_t total = 0, bytes;
        unsigned n_workers = 0;
        const char *cpus;
        uint32_t node;
        int32_t wnode;

        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(ut)"));
        while (sd_bus_message_read(reply, "(ut)", &node, &bytes) > 0)
                total += bytes;
        ASSERT_OK(sd_bus_message_exit_container(reply));
        ASSERT(total == length);
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(is)"));
        while (sd_bus_message_read(reply, "(is)", &wnode, &cpus) > 0) {
                printf("   worker %u: node %d, CPUs %s\n", n_workers, wnode, cpus);
                ASSERT(wnode == want_node && cpus[0]);
                n_workers++;
        }
        ASSERT_OK(sd_bus_message_exit_container(reply));
        return n_workers;
}

/* No populate runs on the region: Populating is (0, 0). */
static void expect_not_populating(sd_bus *bus, const char *path)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t done, total;

        ASSERT_OK(sd_bus_get_property(bus, "org.gmem1", path, "org.gmem1.Region", "Populating", &error, &reply,
                                      "(tt)"));
        ASSERT_OK(sd_bus_message_read(reply, "(tt)", &done, &total));
        ASSERT(done == 0 && total == 0);
}

/* Progress signals during a 2-worker PopulateWithOptions on node 0: in order,
 * one final with everything done, before the reply; the report and Resident agree. */
static void test_progress(sd_bus *bus, const char *policy, int want_node, unsigned want_workers)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, BIG);
        _cleanup_free_ char *path = create_region(bus, vm, g, BIG, policy);
        struct progress p;
        struct kept_call c;
        unsigned workers;

        progress_watch(bus, &p, path);
        p.reply_done = &c.done;
        populate_with_workers(bus, &c, path, BIG, "u", want_workers);
        process_until(bus, kept_arrived, &c, 120);
        ASSERT(!sd_bus_message_is_method_error(c.reply, NULL));
        expect_progress_sane(&p, BIG);
        workers = read_report(c.reply, BIG, want_node);
        ASSERT(workers == want_workers);
        /* Measured by the populate's last worker: exact once the reply is here. */
        ASSERT(resident_total(bus, path) == BIG);
        expect_not_populating(bus, path);
        printf("ok: PopulateWithOptions (policy %s, %u worker(s)): %u PopulateProgress signal(s), monotonic, one "
               "final before the reply; report and Resident show all %llu MiB\n", policy, want_workers, p.n, BIG / MIB);
        sd_bus_message_unref(c.reply);
        sd_bus_slot_unref(p.slot);
        region_release(bus, path);
}

static void expect_bad_workers(sd_bus *bus, const char *path, const char *sig, unsigned workers, const char *says)
{
        struct kept_call c;
        const sd_bus_error *e;

        populate_with_workers(bus, &c, path, 2 * MIB, sig, workers);
        process_until(bus, kept_arrived, &c, 120);
        e = sd_bus_message_get_error(c.reply);
        ASSERT(e && streq(e->name, GMEM_ERROR_INVALID_ARGUMENT));
        ASSERT_CONTAINS(e->message, says);
        printf("ok: PopulateWithOptions %s=%u -> %s: %s\n", sig, workers, e->name, e->message);
        sd_bus_message_unref(c.reply);
}

static void test_bad_workers(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, 2 * MIB);
        _cleanup_free_ char *path = create_region(bus, vm, g, 2 * MIB, "default");

        expect_bad_workers(bus, path, "u", 0, "option 'workers' is 0; give 1 to 64 workers per node");
        expect_bad_workers(bus, path, "u", 65, "option 'workers' is 65; give 1 to 64 workers per node");
        expect_bad_workers(bus, path, "s", 0, "option 'workers' must be a 'u'");
        expect_bad_workers(bus, path, "colour", 1, "unknown option 'colour' (known: workers)");
        ASSERT(resident_total(bus, path) == 0 && test_env_daemon_alive(e));
        region_release(bus, path);
}

/* CreateRegion's populate_workers: used, refused by name when bad or without populate. */
static void test_populate_workers_option(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, 2 * MIB);
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int fd;

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "CreateRegion", &error,
                                     &reply, "hta{sv}", vm, 2 * MIB, 3, "memfd", "h", g, "populate", "b", 1,
                                     "populate_workers", "u", 1));
        ASSERT_OK(sd_bus_message_read(reply, "oh", &path, &fd));
        ASSERT(resident_total(bus, path) == 2 * MIB);
        region_release(bus, path);
        expect_error_says(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "CreateRegion",
                                             &error, NULL, "hta{sv}", vm, 2 * MIB, 2, "populate", "b", 1,
                                             "populate_workers", "u", 0),
                          &error, GMEM_ERROR_INVALID_ARGUMENT,
                          "option 'populate_workers' is 0; give 1 to 64 workers per node", "populate_workers 0");
        expect_error_says(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "CreateRegion",
                                             &error, NULL, "hta{sv}", vm, 2 * MIB, 1, "populate_workers", "u", 2),
                          &error, GMEM_ERROR_INVALID_ARGUMENT, "option 'populate_workers' needs option 'populate' true",
                          "populate_workers without populate");
        ASSERT(count_regions(bus) == 0 && test_env_daemon_alive(e));
}

static uint64_t cancelled_count(sd_bus *bus, const char *path)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t n;

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "CancelPopulate", &error, &reply,
                                     ""));
        ASSERT_OK(sd_bus_message_read(reply, "u", &n));
        return n;
}

/* CancelPopulate stops the workers: the Populate answers Cancelled, the final
 * signal says how far it got, Resident shows exactly that, and the region
 * can be populated to the end afterwards. */
static void test_cancel_populate(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, BIG);
        _cleanup_free_ char *path = create_region(bus, vm, g, BIG, "bind");
        struct pending_call populate = {};
        struct progress p;
        uint64_t done;

        progress_watch(bus, &p, path);
        p.reply_done = &populate.done;
        call_async(bus, &populate, path, "org.gmem1.Region", "Populate", "tt", 0ULL, BIG);
        ASSERT(cancelled_count(bus, path) == 1);
        wait_reply(bus, &populate);
        ASSERT(populate.error_name && streq(populate.error_name, GMEM_ERROR_CANCELLED));
        done = p.done[p.n - 1];
        expect_progress_sane(&p, done);
        ASSERT(done < BIG);
        ASSERT(resident_total(bus, path) == done); /* measured by the job, exact at the reply */
        printf("ok: CancelPopulate -> Populate %s after %llu of %llu MiB; Resident says the same\n",
               populate.error_name, (unsigned long long) (done / MIB), BIG / MIB);
        ASSERT(cancelled_count(bus, path) == 0);
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Populate", NULL, NULL, "tt", 0ULL,
                                     BIG));
        ASSERT(resident_total(bus, path) == BIG && test_env_daemon_alive(e));
        printf("ok: the region populates to the end afterwards\n");
        pending_call_done(&populate);
        sd_bus_slot_unref(p.slot);
        region_release(bus, path);
}

static bool both_done(const void *userdata)
{
        const struct pending_call *const *c = userdata;

        return c[0]->done && c[1]->done;
}

/* Release during a Populate: the final signal still comes (short of the
 * end), the Populate fails NotFound, gmemd lives on. */
static void test_release_final_signal(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, BIG);
        _cleanup_free_ char *path = create_region(bus, vm, g, BIG, "bind");
        struct pending_call populate = {}, release = {};
        const struct pending_call *both[2] = { &populate, &release };
        struct progress p;

        progress_watch(bus, &p, path);
        p.reply_done = &populate.done;
        call_async(bus, &populate, path, "org.gmem1.Region", "Populate", "tt", 0ULL, BIG);
        call_async(bus, &release, path, "org.gmem1.Region", "Release", "");
        process_until(bus, both_done, both, 120);
        ASSERT(!release.error_name && populate.error_name && streq(populate.error_name, GMEM_ERROR_NOT_FOUND));
        expect_progress_sane(&p, p.done[p.n - 1]);
        ASSERT(p.done[p.n - 1] < BIG && count_regions(bus) == 0 && test_env_daemon_alive(e));
        printf("ok: Release during Populate: final PopulateProgress at %llu of %llu MiB, Populate -> %s\n",
               (unsigned long long) (p.done[p.n - 1] / MIB), BIG / MIB, populate.error_name);
        sd_bus_slot_unref(p.slot);
        pending_call_done(&populate);
        pending_call_done(&release);
}

static bool first_signal(const void *userdata)
{
        return ((const struct progress *) userdata)->n > 0;
}

static bool final_signal(const void *userdata)
{
        return ((const struct progress *) userdata)->n_final > 0;
}

/* A second connection starts a 1-worker Populate and goes away once the
 * workers run: gmemd cancels them (final signal short of the end), the
 * region stays, holding exactly what was done. */
static void test_caller_gone(struct test_env *e, sd_bus *bus)
{
        _cleanup_close_ int vm = make_vm(), g = make_gmem(vm, BIG);
        _cleanup_free_ char *path = create_region(bus, vm, g, BIG, "bind");
        sd_bus *other = bus_connect(e->address);
        struct kept_call c;
        struct progress p;
        uint64_t done;

        progress_watch(bus, &p, path);
        populate_with_workers(other, &c, path, BIG, "u", 1);
        ASSERT_OK(sd_bus_flush(other));
        /* The workers run (and gmemd tracks the caller) once a signal is here. */
        process_until(bus, first_signal, &p, 120);
        sd_bus_close_unref(other);
        process_until(bus, final_signal, &p, 120);
        done = p.done[p.n - 1];
        expect_progress_sane(&p, done);
        ASSERT(done < BIG);
        ASSERT(resident_total(bus, path) == done); /* measured by the job, exact at the final signal */
        ASSERT(count_regions(bus) == 1 && test_env_daemon_alive(e));
        printf("ok: caller gone during Populate: cancelled after %llu of %llu MiB; the region stays, Resident says "
               "the same\n", (unsigned long long) (done / MIB), BIG / MIB);
        sd_bus_slot_unref(p.slot);
        region_release(bus, path);
}

int main(void)
{
        struct holdings before;
        struct test_env e;
        sd_bus *bus;

        bus_tests_init();
        bus = bus_test_start(&e, NULL);
        before = daemon_holdings(&e, bus);
        test_progress(bus, "bind", 0, 1);
        test_progress(bus, "default", -1, 2);
        test_populate_workers_option(&e, bus);
        test_bad_workers(&e, bus);
        test_cancel_populate(&e, bus);
        test_caller_gone(&e, bus);
        test_release_final_signal(&e, bus);
        expect_same_holdings(&e, bus, &before);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));
        return 0;
}
