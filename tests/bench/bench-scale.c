/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-scale: latency of GetNodes, GetUsage, ListRegions (whole and a page of
 * 100) and an `auto` CreateRegion with 1, 100 and 1000 regions holding 1 to 16
 * GiB, against the bus floor (a Properties.Get of Version) measured in the same
 * rounds, and each party's CPU per listing. A listing's reply grows with the
 * regions, so its floor is measured too: the same rows carried over the same
 * bus between two connections of this process, without gmemd (list floor).
 * The target: flat in bytes held, p99 < 1 ms at 1000 regions above the floor. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bench.h"
#include "gmem.h"
#include "macro.h"
#include "util.h"

#define TARGET_P99_US 1000.0
#define MAX_HELD 4
#define MAX_COST_ROWS 32

enum op { OP_FLOOR, OP_LIST_FLOOR, OP_GET_NODES, OP_GET_USAGE, OP_LIST, OP_LIST_PAGE, OP_CREATE_AUTO, _OP_MAX };

#define PAGE 100 /* regions in the page OP_LIST_PAGE asks for */

static const char *const op_names[_OP_MAX] = {
        [OP_FLOOR] = "floor (Get Version)",
        [OP_LIST_FLOOR] = "list floor (ListRegions' rows, no gmemd)",
        [OP_GET_NODES] = "GetNodes",
        [OP_GET_USAGE] = "GetUsage",
        [OP_LIST] = "ListRegions",
        [OP_LIST_PAGE] = "ListRegionsFiltered limit 100",
        [OP_CREATE_AUTO] = "CreateRegion auto 2M",
};

struct config {
        unsigned iterations;
        unsigned counts[3];
        size_t n_counts;
        uint64_t held[MAX_HELD];
        size_t n_held;
};

/*
 * The replier of the list floor: a connection of this process to the same
 * bus, served by a thread of its own, answering with the rows gmemd last
 * listed, marshalled as gmemd marshals them (daemon/list-regions.c). A call
 * to it costs what any listing of those rows costs on the bus, both ends'
 * sd-bus work and dbus-daemon's included, and nothing of gmemd.
 */
struct replier {
        sd_bus *bus;
        const char *name; /* its unique name */
        pthread_t thread;
        atomic_bool stop;
        pthread_mutex_t lock;
        gmem_region_info *rows; /* ListRegions' rows, as libgmem lists them */
        size_t n_rows;
};

#define REPLIER_PATH "/org/gmem1/bench/floor"
#define REPLIER_INTERFACE "org.gmem1.bench.Floor"

struct scale {
        gmem_client *client;
        struct replier replier;
        sd_bus *bus; /* for what libgmem does not call: the floor and GetUsage */
        gmem_options *auto_options;
        int vm;
        gmem_region **regions;
        void **maps;
        size_t n;
        uint64_t size;      /* of each region */
        uint64_t populated; /* bytes of each region populated so far */
        bool have[_OP_MAX]; /* the call exists (GetUsage, ListRegionsFiltered: not in an older gmemd) */
        pid_t gmemd_pid, bus_pid; /* whose CPU time a listing costs is read on their clocks */
        char costs[MAX_COST_ROWS][160]; /* the second table's rows, printed after the first */
        size_t n_costs;
};

static int floor_call(struct scale *s)
{
        _cleanup_free_ char *version = NULL;

        return sd_bus_get_property_string(s->bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "Version", NULL,
                                          &version);
}

static int replier_list(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        struct replier *rp = userdata;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ostsu)");
        pthread_mutex_lock(&rp->lock);
        for (size_t i = 0; r >= 0 && i < rp->n_rows; i++) {
                const gmem_region_info *row = &rp->rows[i];

                r = sd_bus_message_open_container(reply, 'r', "ostsu");
                if (r >= 0)
                        r = sd_bus_message_append_basic(reply, 'o', row->path);
                if (r >= 0)
                        r = sd_bus_message_append_basic(reply, 's', row->name);
                if (r >= 0)
                        r = sd_bus_message_append_basic(reply, 't', &row->size);
                if (r >= 0)
                        r = sd_bus_message_append_basic(reply, 's', row->policy);
                if (r >= 0)
                        r = sd_bus_message_append_basic(reply, 'u', &row->owner_uid);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        pthread_mutex_unlock(&rp->lock);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}

static int replier_stop(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        struct replier *rp = userdata;

        atomic_store(&rp->stop, true);
        return sd_bus_reply_method_return(m, "");
}

static const sd_bus_vtable replier_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("List", "", "a(ostsu)", replier_list, 0),
        SD_BUS_METHOD("Stop", "", "", replier_stop, 0),
        SD_BUS_VTABLE_END,
};

static void *replier_run(void *arg)
{
        struct replier *rp = arg;

        while (!atomic_load(&rp->stop)) {
                int r = sd_bus_process(rp->bus, NULL);

                if (r == 0)
                        r = sd_bus_wait(rp->bus, UINT64_MAX);
                if (r < 0) {
                        fprintf(stderr, "bench-scale: list floor replier: %s\n", strerror(-r));
                        break;
                }
        }
        return NULL;
}

/* A raw sd-bus connection of its own to the bus at @address. */
static int bus_connect(const char *address, sd_bus **ret)
{
        int r = sd_bus_new(ret);

        if (r >= 0 && (r = sd_bus_set_address(*ret, address)) >= 0 && (r = sd_bus_set_bus_client(*ret, true)) >= 0)
                r = sd_bus_start(*ret);
        return r;
}

static int replier_start(struct replier *rp, const char *address)
{
        int r;

        pthread_mutex_init(&rp->lock, NULL);
        r = bus_connect(address, &rp->bus);
        if (r >= 0)
                r = sd_bus_get_unique_name(rp->bus, &rp->name);
        if (r >= 0)
                r = sd_bus_add_object_vtable(rp->bus, NULL, REPLIER_PATH, REPLIER_INTERFACE, replier_vtable, rp);
        if (r >= 0)
                r = -pthread_create(&rp->thread, NULL, replier_run, rp);
        if (r < 0)
                rp->bus = sd_bus_flush_close_unref(rp->bus);
        return r;
}

static void replier_stop_join(struct scale *s)
{
        struct replier *rp = &s->replier;

        if (!rp->bus)
                return;
        (void) sd_bus_call_method(s->bus, rp->name, REPLIER_PATH, REPLIER_INTERFACE, "Stop", NULL, NULL, "");
        pthread_join(rp->thread, NULL);
        sd_bus_flush_close_unref(rp->bus);
        gmem_region_info_free(rp->rows, rp->n_rows);
        pthread_mutex_destroy(&rp->lock);
}

/* The replier answers with what ListRegions answers now. */
static int replier_take_rows(struct scale *s)
{
        gmem_region_info *rows = NULL;
        size_t n = 0;
        int r = gmem_client_list_regions(s->client, &rows, &n);

        if (r < 0)
                return r;
        pthread_mutex_lock(&s->replier.lock);
        gmem_region_info_free(s->replier.rows, s->replier.n_rows);
        s->replier.rows = rows;
        s->replier.n_rows = n;
        pthread_mutex_unlock(&s->replier.lock);
        return 0;
}

/* The list floor: the replier's rows, each read in place as libgmem reads
 * gmemd's (it then copies them). */
static int list_floor(struct scale *s)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(s->bus, s->replier.name, REPLIER_PATH, REPLIER_INTERFACE, "List", NULL, &reply, "");
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(ostsu)");
        while (r >= 0) {
                const char *path, *name, *policy;
                uint64_t size;
                uint32_t uid;

                r = sd_bus_message_enter_container(reply, 'r', "ostsu");
                if (r <= 0)
                        break;
                r = sd_bus_message_read_basic(reply, 'o', &path);
                if (r >= 0)
                        r = sd_bus_message_read_basic(reply, 's', &name);
                if (r >= 0)
                        r = sd_bus_message_read_basic(reply, 't', &size);
                if (r >= 0)
                        r = sd_bus_message_read_basic(reply, 's', &policy);
                if (r >= 0)
                        r = sd_bus_message_read_basic(reply, 'u', &uid);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        return r < 0 ? r : sd_bus_message_exit_container(reply);
}

static int get_nodes(struct scale *s)
{
        _cleanup_free_ gmem_node_info *nodes = NULL;
        size_t n;

        return gmem_client_get_nodes(s->client, &nodes, &n);
}

static int get_usage(struct scale *s)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        return sd_bus_call_method(s->bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "GetUsage", NULL, &reply,
                                  "");
}

static int list_regions(struct scale *s)
{
        gmem_region_info *infos = NULL;
        size_t n = 0;
        int r = gmem_client_list_regions(s->client, &infos, &n);

        gmem_region_info_free(infos, n);
        return r;
}

/* The newest PAGE regions, through libgmem. */
static int list_page(struct scale *s)
{
        gmem_region_info *infos = NULL;
        size_t n = 0;
        int r = gmem_client_list_regions_filtered(s->client, -1, 0, 0, PAGE, &infos, &n);

        gmem_region_info_free(infos, n);
        return r;
}

/* The same call through sd-bus, its reply not read: what libgmem's parsing adds. */
static int list_regions_unread(struct scale *s)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        return sd_bus_call_method(s->bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "ListRegions", NULL,
                                  &reply, "");
}

/* The create alone is timed; its release after is not. */
static int create_auto(struct scale *s, uint64_t *ns)
{
        gmem_region *region = NULL;
        uint64_t t0 = bench_now_ns();
        int r = gmem_region_create(s->client, s->vm, 2 * MIB, s->auto_options, &region);

        *ns = bench_now_ns() - t0;
        if (r < 0)
                return r;
        r = gmem_region_release(region);
        gmem_region_unref(region);
        return r;
}

static int one_round(struct scale *s, struct bench_samples *samples)
{
        int (*calls[])(struct scale *) = {
                [OP_FLOOR] = floor_call, [OP_LIST_FLOOR] = list_floor, [OP_GET_NODES] = get_nodes,
                [OP_GET_USAGE] = get_usage,
                [OP_LIST] = list_regions, [OP_LIST_PAGE] = list_page,
        };
        uint64_t ns;
        int r;

        for (unsigned op = 0; op < OP_CREATE_AUTO; op++) {
                uint64_t t0 = bench_now_ns();

                if (!s->have[op])
                        continue;
                r = calls[op](s);
                if (r < 0)
                        return r;
                bench_samples_add(&samples[op], bench_now_ns() - t0);
        }
        r = create_auto(s, &ns);
        if (r >= 0)
                bench_samples_add(&samples[OP_CREATE_AUTO], ns);
        return r;
}

/* CPU time of gmemd's main thread (its event loop, which answers; the
 * refresher runs on another thread) in ns: the kernel's sum_exec_runtime,
 * which clock_gettime() reads only for a thread of one's own process. */
static uint64_t main_thread_ns(pid_t pid)
{
        char path[64];
        unsigned long long ns = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int) pid, (int) pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        if (fscanf(f, "%llu", &ns) != 1)
                ns = 0;
        fclose(f);
        return ns;
}

static uint64_t clock_ns(clockid_t clock)
{
        struct timespec ts;

        if (clock_gettime(clock, &ts) < 0)
                return 0;
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

/* The CPU clocks a call is measured on: this thread, dbus-daemon (its process
 * clock, exact) and the server's: gmemd's main thread (its last context
 * switch), or for the list floor the replier thread's own clock (exact). */
static void read_clocks(const struct scale *s, clockid_t bus_clock, const clockid_t *replier_clock,
                        uint64_t ret[3])
{
        ret[0] = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        ret[1] = clock_ns(bus_clock);
        ret[2] = replier_clock ? clock_ns(*replier_clock) : main_thread_ns(s->gmemd_pid);
}

/* Where one call's time goes: @call alone, @rounds times in a row, the median
 * per call of its wall time and of the CPU time each party spent on it (this
 * thread, dbus-daemon, gmemd's event loop or the list floor's replier); a row
 * of the second table. */
static int measure_costs(struct scale *s, const char *what, int (*call)(struct scale *), unsigned rounds)
{
        _cleanup_free_ uint64_t *ns = calloc((size_t) rounds * 4, sizeof(uint64_t));
        uint64_t before[3], after[3], t0, med[4];
        clockid_t bus_clock, replier_clock;
        bool replier = call == list_floor;
        int r;

        if (!ns)
                return -ENOMEM;
        if (s->n_costs == MAX_COST_ROWS || clock_getcpuclockid(s->bus_pid, &bus_clock) != 0 ||
            (replier && pthread_getcpuclockid(s->replier.thread, &replier_clock) != 0))
                return 0;
        for (unsigned i = 0; i < rounds; i++) {
                read_clocks(s, bus_clock, replier ? &replier_clock : NULL, before);
                t0 = bench_now_ns();
                r = call(s);
                ns[i] = bench_now_ns() - t0;
                read_clocks(s, bus_clock, replier ? &replier_clock : NULL, after);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < 3; k++)
                        ns[(k + 1) * rounds + i] = after[k] - before[k];
        }
        for (size_t k = 0; k < 4; k++)
                med[k] = bench_median_ns(ns + k * rounds, rounds);
        snprintf(s->costs[s->n_costs++], sizeof(s->costs[0]), "| %5zu | %s | %.0f | %.0f | %.0f | %.0f |", s->n,
                 what, med[0] / 1e3, med[1] / 1e3, med[2] / 1e3, med[3] / 1e3);
        return 0;
}

/* @n regions of @size bytes each, default policy, mapped here to populate them. */
static int scale_create(struct scale *s, size_t n, uint64_t size)
{
        s->regions = calloc(n, sizeof(*s->regions));
        s->maps = calloc(n, sizeof(*s->maps));
        if (!s->regions || !s->maps)
                return -ENOMEM;
        s->size = size;
        s->populated = 0;
        for (s->n = 0; s->n < n; s->n++) {
                int r = gmem_region_create(s->client, s->vm, size, NULL, &s->regions[s->n]);

                if (r < 0)
                        return r;
                s->maps[s->n] = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
                                     gmem_region_get_fd(s->regions[s->n]), 0);
                if (s->maps[s->n] == MAP_FAILED) {
                        r = negative_errno();
                        gmem_region_release(s->regions[s->n]);
                        gmem_region_unref(s->regions[s->n]);
                        return r;
                }
        }
        return 0;
}

static void scale_destroy(struct scale *s)
{
        for (size_t i = 0; i < s->n; i++) {
                munmap(s->maps[i], s->size);
                gmem_region_release(s->regions[i]);
                gmem_region_unref(s->regions[i]);
        }
        free(s->regions);
        free(s->maps);
        s->regions = NULL;
        s->maps = NULL;
        s->n = 0;
}

/* Fill each region up to @per_region bytes, as a guest would (gmemd is not
 * told: its refresher finds out), then wait until GetNodes shows it. */
static int scale_populate(struct scale *s, uint64_t per_region, uint64_t *ret_held)
{
        uint64_t want = per_region * s->n, t0 = bench_now_ns();

        for (size_t i = 0; i < s->n && per_region > s->populated; i++)
                if (madvise((char *) s->maps[i] + s->populated, per_region - s->populated, MADV_POPULATE_WRITE) < 0)
                        return negative_errno();
        s->populated = MAX(s->populated, per_region);
        for (;;) {
                _cleanup_free_ gmem_node_info *nodes = NULL;
                uint64_t held = 0;
                size_t n;
                int r = gmem_client_get_nodes(s->client, &nodes, &n);

                if (r < 0)
                        return r;
                for (size_t i = 0; i < n; i++)
                        held += nodes[i].held;
                if (held >= want) {
                        *ret_held = held;
                        return 0;
                }
                if (bench_now_ns() - t0 > 120ULL * 1000000000ULL) {
                        fprintf(stderr, "bench-scale: gmemd shows %" PRIu64 " of %" PRIu64 " bytes after 120 s\n",
                                held, want);
                        return -ETIMEDOUT;
                }
                usleep(20000); /* a benchmark waiting for the refresher, not a test */
        }
}

static int measure(struct scale *s, const struct config *cfg, uint64_t held)
{
        struct bench_samples samples[_OP_MAX] = {};
        struct bench_stats st[_OP_MAX];
        char held_buf[FORMAT_BYTES_MAX];
        int r = 0;

        for (unsigned op = 0; op < _OP_MAX && r >= 0; op++)
                r = bench_samples_init(&samples[op], op_names[op], cfg->iterations);
        if (r >= 0)
                r = replier_take_rows(s);
        for (unsigned i = 0; r >= 0 && i < 10; i++) /* warm-up */
                r = one_round(s, samples);
        for (unsigned op = 0; op < _OP_MAX && r >= 0; op++)
                samples[op].n = 0;
        for (unsigned i = 0; r >= 0 && i < cfg->iterations; i++)
                r = one_round(s, samples);
        for (unsigned op = 0; op < _OP_MAX && r >= 0; op++)
                if (s->have[op])
                        r = bench_samples_stats(&samples[op], &st[op]);
        if (r >= 0) {
                printf("| %5zu | %9s |", s->n, format_bytes(held_buf, sizeof(held_buf), held));
                for (unsigned op = 0; op < _OP_MAX; op++)
                        if (!s->have[op])
                                printf("   n/a |");
                        else
                                printf(" %.0f / %.0f |", st[op].p50_us, st[op].p99_us);
                /* A whole listing above the floor of its own rows, any other call above Get. */
                for (unsigned op = OP_GET_NODES; op < _OP_MAX; op++)
                        if (!s->have[op])
                                printf("   n/a |");
                        else
                                printf(" %.0f |", st[op].p99_us - st[op == OP_LIST ? OP_LIST_FLOOR : OP_FLOOR].p99_us);
                putchar('\n');
                fflush(stdout);
        }
        if (r >= 0)
                r = measure_costs(s, "ListRegions", list_regions, cfg->iterations);
        if (r >= 0)
                r = measure_costs(s, "ListRegions, reply not read", list_regions_unread, cfg->iterations);
        if (r >= 0)
                r = measure_costs(s, "list floor: the same rows, no gmemd", list_floor, cfg->iterations);
        if (r >= 0 && s->have[OP_LIST_PAGE])
                r = measure_costs(s, "ListRegionsFiltered limit 100", list_page, cfg->iterations);
        for (unsigned op = 0; op < _OP_MAX; op++)
                bench_samples_done(&samples[op]);
        return r;
}

/* All held sizes for @n regions: each region gets the largest held / n (or
 * the next smaller one when gmemd finds that larger than the host). */
static int run_count(struct scale *s, const struct config *cfg, size_t n)
{
        uint64_t page = (uint64_t) sysconf(_SC_PAGESIZE), held = 0;
        size_t n_held = cfg->n_held;
        int r;

        for (;;) {
                r = scale_create(s, n, (cfg->held[n_held - 1] / n) / page * page);
                if (r != -ENOSPC || n_held == 1)
                        break;
                printf("| %5zu | %9s | skipped: gmemd says: %s |\n", n, "-", gmem_client_get_error(s->client));
                scale_destroy(s);
                n_held--;
        }
        for (size_t h = 0; r >= 0 && h < n_held; h++) {
                uint64_t per_region = (cfg->held[h] / n) / page * page;

                if (bench_mem_free() < per_region * n - s->populated * n + 2 * GIB) {
                        printf("| %5zu | %9s | skipped: less than that and 2 GiB free |\n", n, "-");
                        break;
                }
                r = scale_populate(s, per_region, &held);
                if (r >= 0)
                        r = measure(s, cfg, held);
        }
        scale_destroy(s);
        return r;
}

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: bench-scale [-n ITERATIONS] [--regions LIST] [--held LIST]\n"
                "Times GetNodes, GetUsage, ListRegions, a page of 100 (ListRegionsFiltered) and an auto\n"
                "CreateRegion of 2 MiB through gmemd (private bus) with 1, 100 and 1000 regions holding\n"
                "1, 4 and 16 GiB, against a Properties.Get round trip in the same rounds; then where a\n"
                "listing's time goes: the CPU time of the client, dbus-daemon and gmemd's event loop\n"
                "per call. Run as root; needs the held memory free.\n"
                "  -n, --iterations N  measured rounds per row (default 300)\n"
                "      --regions LIST  region counts, e.g. 1,100,1000 (default)\n"
                "      --held LIST     bytes held, ascending, e.g. 1G,4G,16G (default)\n");
}

static int parse_list(const char *s, uint64_t *out, size_t max, size_t *n, bool sizes)
{
        _cleanup_free_ char *copy = strdup(s);
        char *save = NULL;

        *n = 0;
        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                unsigned u;

                if (*n == max)
                        return -EINVAL;
                if (sizes ? parse_size(tok, &out[*n]) < 0 : parse_uint(tok, &u) < 0 || u == 0)
                        return -EINVAL;
                if (!sizes)
                        out[*n] = u;
                if (*n > 0 && out[*n] <= out[*n - 1])
                        return -EINVAL;
                (*n)++;
        }
        return *n ? 0 : -EINVAL;
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
        static const struct option longopts[] = {
                { "iterations", required_argument, NULL, 'n' },
                { "regions", required_argument, NULL, 'R' },
                { "held", required_argument, NULL, 'H' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        uint64_t counts[3];
        int c;

        while ((c = getopt_long(argc, argv, "n:h", longopts, NULL)) >= 0)
                switch (c) {
                case 'n':
                        if (parse_uint(optarg, &cfg->iterations) < 0 || cfg->iterations < 10)
                                goto bad;
                        break;
                case 'R':
                        if (parse_list(optarg, counts, ELEMENTSOF(counts), &cfg->n_counts, false) < 0)
                                goto bad;
                        for (size_t i = 0; i < cfg->n_counts; i++)
                                cfg->counts[i] = (unsigned) counts[i];
                        break;
                case 'H':
                        if (parse_list(optarg, cfg->held, MAX_HELD, &cfg->n_held, true) < 0)
                                goto bad;
                        break;
                case 'h':
                        usage(stdout);
                        exit(0);
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        return 0;
bad:
        fprintf(stderr, "bench-scale: bad value '%s' for %s\n", optarg, argv[optind - 1]);
        return -EINVAL;
}

static void raise_fd_limit(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

int main(int argc, char **argv)
{
        struct config cfg = {
                .iterations = 300, .counts = { 1, 100, 1000 }, .n_counts = 3,
                .held = { GIB, 4 * GIB, 16 * GIB }, .n_held = 3,
        };
        struct scale s = { .vm = -1 };
        struct bench_env env;
        int r, k;

        if (parse_args(argc, argv, &cfg) < 0)
                return 2;
        bench_require_host();
        raise_fd_limit();
        printf("bench-scale: %u rounds a row, each: floor, list floor, GetNodes, GetUsage, ListRegions, "
               "ListRegionsFiltered limit %d, CreateRegion auto 2M (+ an untimed release)\n", cfg.iterations, PAGE);
        bench_print_host(stdout);
        r = bench_env_start(&env);
        if (r < 0)
                return 1;
        s.gmemd_pid = env.env.daemon_pid;
        s.bus_pid = env.env.bus_pid;
        s.vm = bench_make_vm();
        r = s.vm < 0 ? s.vm : gmem_client_new(env.env.address, &s.client);
        if (r >= 0)
                r = bus_connect(env.env.address, &s.bus);
        if (r >= 0)
                r = replier_start(&s.replier, env.env.address);
        if (r >= 0)
                r = gmem_options_new(&s.auto_options);
        if (r >= 0)
                r = gmem_options_set_policy(s.auto_options, GMEM_POLICY_AUTO);
        if (r < 0) {
                fprintf(stderr, "bench-scale: cannot set up: %s\n", strerror(-r));
                return 1;
        }
        for (unsigned op = 0; op < _OP_MAX; op++)
                s.have[op] = true;
        s.have[OP_GET_USAGE] = get_usage(&s) >= 0;
        s.have[OP_LIST_PAGE] = list_page(&s) >= 0;
        for (unsigned op = 0; op < _OP_MAX; op++)
                if (!s.have[op])
                        printf("This gmemd has no %s (a baseline from before it): that column is n/a.\n",
                               op_names[op]);
        printf("\nlatency in us, p50 / p99; the last columns: p99 above the floor's p99 (for ListRegions: above "
               "the list floor's, the same rows carried between two connections of this process)\n\n");
        printf("| regions | held | floor | list floor | GetNodes | GetUsage | ListRegions | ListRegions page %d | "
               "CreateRegion auto | GetNodes - floor | GetUsage - floor | ListRegions - list floor | page %d - floor | "
               "CreateRegion - floor |\n", PAGE, PAGE);
        printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (size_t i = 0; r >= 0 && i < cfg.n_counts; i++)
                r = run_count(&s, &cfg, cfg.counts[i]);
        if (r >= 0) {
                printf("\nwhere a call's time goes: it alone, %u times in a row; the median per call in us of: wall, "
                       "CPU of this client, of dbus-daemon, of the server (gmemd's event loop; for the list floor "
                       "the replier thread)\n\n", cfg.iterations);
                printf("| regions | call | wall | client CPU | dbus-daemon CPU | server CPU |\n");
                printf("|---|---|---|---|---|---|\n");
                for (size_t i = 0; i < s.n_costs; i++)
                        printf("%s\n", s.costs[i]);
        }
        if (r < 0)
                fprintf(stderr, "bench-scale: %s (%s)\n", strerror(-r), gmem_client_get_error(s.client) ?: "-");
        replier_stop_join(&s);
        gmem_options_unref(s.auto_options);
        sd_bus_flush_close_unref(s.bus);
        gmem_client_unref(s.client);
        close(s.vm);
        k = bench_env_stop(&env);
        return r < 0 || k < 0 ? 1 : 0;
}
