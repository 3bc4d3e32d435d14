/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Memory that runs out in the middle of a populate, for real: gmemd is moved
 * into a memory cgroup of its own (v2, or v1's memory controller) with a
 * 64 MiB limit and no OOM kill (v1: oom_control; v2: oom_score_adj -1000),
 * so the kernel fails the guest_memfd allocation with ENOMEM. Should gmemd
 * itself then wait for room, the cgroup's OOM event (not time) says so and
 * the test lifts the limit; it does after every answer too. Checked: the
 * NoSpace error names the node and what was allocated, the region stays
 * consistent and usable (a CreateRegion populate=true is released instead),
 * and releasing gives every byte back to the cgroup and every fd to gmemd. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-client.h"
#include "bus-errors.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "util.h"

#define BIG (256 * MIB)
#define LIMIT (64 * MIB)

struct memcg {
        char dir[256];
        bool v2;
        int event_fd; /* v1: eventfd on memory.oom_control; v2: inotify on memory.events */
};

static void write_file(const char *dir, const char *file, const char *text)
{
        char path[512];
        _cleanup_close_ int fd = -1;

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t) strlen(text)) {
                fprintf(stderr, "cannot write '%s' to %s: %m\n", text, path);
                abort();
        }
}

static uint64_t read_u64_file(const char *dir, const char *file)
{
        char path[512], buf[64] = "";
        _cleanup_close_ int fd = -1;
        uint64_t v;

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ASSERT(fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0);
        ASSERT(sscanf(buf, "%" SCNu64, &v) == 1);
        return v;
}

/* A run that failed an assertion left its (empty) cgroup: remove those whose
 * test process is gone. */
static void memcg_remove_stale(const char *parent)
{
        DIR *d = opendir(parent);
        struct dirent *de;
        char path[512];
        int pid;

        while (d && (de = readdir(d)))
                if (sscanf(de->d_name, "gmem-test-nospace-%d", &pid) == 1 && kill(pid, 0) < 0 && errno == ESRCH) {
                        snprintf(path, sizeof(path), "%s/%s", parent, de->d_name);
                        (void) rmdir(path);
                }
        if (d)
                closedir(d);
}

/* A fresh memory cgroup, v2 where the memory controller is there, else v1's.
 * Neither: the test fails (tools/install-deps cannot fix that; CI runs as
 * root on a host with one of them). */
static void memcg_create(struct memcg *cg)
{
        char controllers[256] = "", buf[512];
        _cleanup_close_ int fd = open("/sys/fs/cgroup/cgroup.controllers", O_RDONLY | O_CLOEXEC);

        if (fd >= 0)
                (void) !read(fd, controllers, sizeof(controllers) - 1);
        cg->v2 = strstr(controllers, "memory") != NULL;
        memcg_remove_stale(cg->v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory");
        snprintf(cg->dir, sizeof(cg->dir), "/sys/fs/cgroup/%sgmem-test-nospace-%d", cg->v2 ? "" : "memory/",
                 (int) getpid());
        if (mkdir(cg->dir, 0755) < 0) {
                fprintf(stderr, "cannot create the memory cgroup %s: %m\n", cg->dir);
                abort();
        }
        if (cg->v2) {
                snprintf(buf, sizeof(buf), "%s/memory.max", cg->dir);
                /* The root's children get memory.max once it hands them the controller. */
                if (access(buf, F_OK) < 0)
                        write_file("/sys/fs/cgroup", "cgroup.subtree_control", "+memory");
                snprintf(buf, sizeof(buf), "%s/memory.swap.max", cg->dir);
                /* Without swap accounting there is no such file, and no swap to escape to. */
                if (access(buf, F_OK) >= 0)
                        write_file(cg->dir, "memory.swap.max", "0");
                cg->event_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
                snprintf(buf, sizeof(buf), "%s/memory.events", cg->dir);
                ASSERT(cg->event_fd >= 0 && inotify_add_watch(cg->event_fd, buf, IN_MODIFY) >= 0);
        } else {
                char path[512];
                _cleanup_close_ int oom = -1;

                write_file(cg->dir, "memory.swappiness", "0");
                snprintf(path, sizeof(path), "%s/memory.oom_control", cg->dir);
                oom = open(path, O_RDONLY | O_CLOEXEC);
                cg->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                ASSERT(oom >= 0 && cg->event_fd >= 0);
                snprintf(buf, sizeof(buf), "%d %d", cg->event_fd, oom);
                write_file(cg->dir, "cgroup.event_control", buf);
        }
        printf("ok: memory cgroup %s (cgroup v%d)\n", cg->dir, cg->v2 ? 2 : 1);
}

static void memcg_limit(struct memcg *cg, uint64_t bytes)
{
        char text[32], buf[4096];

        /* Setting a limit: an OOM reported before it is no news of this one. */
        if (bytes)
                while (read(cg->event_fd, buf, sizeof(buf)) > 0)
                        ;

        snprintf(text, sizeof(text), bytes ? "%" PRIu64 : (cg->v2 ? "max" : "-1"), bytes);
        write_file(cg->dir, cg->v2 ? "memory.max" : "memory.limit_in_bytes", text);
}

/* Call after gmemd answered a call past the last Release: it is single-
 * threaded, so what it released is unmapped and closed by then. */
static uint64_t memcg_usage(const struct memcg *cg)
{
        return read_u64_file(cg->dir, cg->v2 ? "memory.current" : "memory.usage_in_bytes");
}

/* gmemd in the cgroup, where the allocation that does not fit fails with
 * ENOMEM instead of waking the OOM killer: v1 disables it for the cgroup
 * (a fault of gmemd's own then waits for room, and reports the OOM); v2 has
 * no such switch, so gmemd is made no victim (needs CAP_SYS_RESOURCE). */
static void memcg_enter(struct memcg *cg, pid_t pid)
{
        char text[32], dir[64];

        if (cg->v2) {
                snprintf(dir, sizeof(dir), "/proc/%d", (int) pid);
                write_file(dir, "oom_score_adj", "-1000");
        } else
                write_file(cg->dir, "memory.oom_control", "1");
        snprintf(text, sizeof(text), "%d", (int) pid);
        write_file(cg->dir, "cgroup.procs", text);
}

/* Does this kernel charge guest_memfd pages to the memory cgroup of the VM's
 * creator, whoever allocates them (gmem series, KVM_CAP_GUEST_MEMFD_OWNER_MEMCG)?
 * Then the pages gmemd populates are this process's, which made the VM. */
static bool owner_charged(void)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

        ASSERT(kvm >= 0);
        return ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_OWNER_MEMCG) > 0;
}

/* Back to the root cgroup, so that the test's cgroup can go. */
static void memcg_leave(const struct memcg *cg)
{
        char text[32];

        snprintf(text, sizeof(text), "%d", (int) getpid());
        write_file(cg->v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory", "cgroup.procs", text);
}

/* A call's answer: its error name and message. */
struct answer {
        bool done;
        char *name, *message;
};

static int on_answer(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct answer *a = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        a->done = true;
        a->name = e ? strdup(e->name) : NULL;
        a->message = e && e->message ? strdup(e->message) : NULL;
        return 0;
}

static void answer_done(struct answer *a)
{
        free(a->name);
        free(a->message);
        *a = (struct answer) {};
}

/* Dispatch the bus until @a is answered; when the cgroup reports an OOM
 * (gmemd's own fault waiting for room), lift the limit so it goes on. The
 * limit is lifted at the end in any case. */
static void wait_answer_lifting(sd_bus *bus, struct answer *a, struct memcg *cg)
{
        uint64_t deadline = (uint64_t) time(NULL) + 120;

        while (!a->done) {
                struct pollfd fds[2] = { { .fd = sd_bus_get_fd(bus), .events = (short) sd_bus_get_events(bus) },
                                         { .fd = cg->event_fd, .events = POLLIN } };
                char buf[4096];

                if (sd_bus_process(bus, NULL) > 0)
                        continue;
                ASSERT((uint64_t) time(NULL) < deadline);
                ASSERT(poll(fds, 2, 1000) >= 0);
                if (!(fds[1].revents & POLLIN))
                        continue;
                (void) !read(cg->event_fd, buf, sizeof(buf));
                printf("   the cgroup reports an OOM: lifting its limit\n");
                memcg_limit(cg, 0);
        }
        memcg_limit(cg, 0);
        printf("   -> %s: %s\n", a->name ?: "(success)", a->message ?: "");
}

static void send_populate(sd_bus *bus, const char *path, struct answer *a)
{
        ASSERT_OK(sd_bus_call_method_async(bus, NULL, "org.gmem1", path, "org.gmem1.Region", "Populate", on_answer, a,
                                           "tt", 0ULL, BIG));
}

static void send_create_populated(sd_bus *bus, int vm, int gmem, struct answer *a)
{
        ASSERT_OK(sd_bus_call_method_async(bus, NULL, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "CreateRegion",
                                           on_answer, a, "hta{sv}", vm, BIG, 4, "memfd", "h", gmem, "policy", "s",
                                           "bind", "nodes", "au", 1, 0, "populate", "b", 1));
}

/* Populate (default workers) runs out at the limit: NoSpace naming node 0,
 * what was done and what the range holds, which Resident confirms; the
 * region stays and fills to the end once there is room. */
static void test_populate_runs_out(struct test_env *e, sd_bus *bus, struct memcg *cg, int vm)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_close_ int g = make_gmem(vm, BIG);
        static const uint32_t node0[] = { 0 };
        const struct opt o[] = {
                { .key = "memfd", .sig = "h", .h = g },
                { .key = "policy", .sig = "s", .s = "bind" },
                { .key = "nodes", .sig = "au", .au = node0, .n_au = 1 },
        };
        _cleanup_free_ char *path = NULL;
        char holds[128], bytes[FORMAT_BYTES_MAX];
        struct answer a = {};
        uint64_t resident;

        ASSERT_OK(create(bus, vm, BIG, o, ELEMENTSOF(o), &error, &path));
        memcg_limit(cg, memcg_usage(cg) + LIMIT);
        send_populate(bus, path, &a);
        wait_answer_lifting(bus, &a, cg);
        ASSERT(a.name && streq(a.name, GMEM_ERROR_NO_SPACE));
        ASSERT_CONTAINS(a.message, "failed on node 0: Cannot allocate memory");
        ASSERT_CONTAINS(a.message, "of 256.0 MiB in whole chunks");
        ASSERT_CONTAINS(a.message, "What was allocated stays in the region; Discard frees it.");
        /* Resident of a region this large comes from gmemd's refresher thread. */
        resident = resident_settles_within(bus, path, 1, BIG - 1, 60);
        ASSERT(resident_on(bus, path, 0) == resident);
        /* By node when gmemd could locate the pages, else the bytes present. */
        snprintf(holds, sizeof(holds), "the range holds node 0: %s.", format_bytes(bytes, sizeof(bytes), resident));
        if (!strstr(a.message, holds))
                snprintf(holds, sizeof(holds), "the range holds %s (by node not measurable now", bytes);
        ASSERT_CONTAINS(a.message, holds);
        printf("ok: Populate of %llu MiB under a %llu MiB limit -> %s; Resident agrees: %s\n", BIG / MIB,
               LIMIT / MIB, a.name, bytes);
        ASSERT(count_regions(bus) == 1 && test_env_daemon_alive(e));
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", path, "org.gmem1.Region", "Populate", NULL, NULL, "tt", 0ULL,
                                     BIG));
        resident_settles(bus, path, BIG, 60);
        ASSERT(resident_on(bus, path, 0) == BIG);
        printf("ok: the region populates to the end once there is room\n");
        region_release(bus, path);
        ASSERT(count_regions(bus) == 0);
        answer_done(&a);
}

/* CreateRegion populate=true that runs out: NoSpace, and the region is
 * released rather than kept half done. */
static void test_create_runs_out(struct test_env *e, sd_bus *bus, struct memcg *cg, int vm)
{
        _cleanup_close_ int g = make_gmem(vm, BIG);
        struct answer a = {};

        ASSERT(count_regions(bus) == 0);
        memcg_limit(cg, memcg_usage(cg) + LIMIT);
        send_create_populated(bus, vm, g, &a);
        wait_answer_lifting(bus, &a, cg);
        ASSERT(a.name && streq(a.name, GMEM_ERROR_NO_SPACE));
        ASSERT_CONTAINS(a.message, "failed on node 0: Cannot allocate memory");
        ASSERT_CONTAINS(a.message, "The region is released.");
        ASSERT(count_regions(bus) == 0 && test_env_daemon_alive(e));
        printf("ok: CreateRegion populate=true under the limit -> %s, the region released\n", a.name);
        answer_done(&a);
}

int main(void)
{
        struct holdings before;
        struct memcg cg = {};
        struct test_env e;
        uint64_t base;
        sd_bus *bus;
        bool owner;
        int vm;

        bus_tests_init();
        bus = bus_test_start(&e, NULL);
        vm = make_vm();
        memcg_create(&cg);
        memcg_enter(&cg, e.daemon_pid);
        owner = owner_charged();
        if (owner)
                memcg_enter(&cg, getpid());
        printf("ok: guest_memfd pages are charged to %s\n", owner ? "the VM's creator, this test (gmem kernel)" :
               "whoever allocates them, gmemd");
        before = daemon_holdings(&e, bus);
        base = memcg_usage(&cg);

        test_populate_runs_out(&e, bus, &cg, vm);
        test_create_runs_out(&e, bus, &cg, vm);

        /* Nothing leaked: gmemd's fds and mappings, and the cgroup's memory
         * (every guest_memfd page was charged to it) back where they were. */
        expect_same_holdings(&e, bus, &before);
        printf("ok: the cgroup holds %llu KiB, %llu KiB before\n", (unsigned long long) (memcg_usage(&cg) / 1024),
               (unsigned long long) (base / 1024));
        ASSERT(memcg_usage(&cg) < base + 8 * MIB);
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));
        safe_close(vm);
        if (owner)
                memcg_leave(&cg);
        ASSERT_OK(rmdir(cg.dir));
        return 0;
}
