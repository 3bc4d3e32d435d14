/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-create: latency of CreateRegion through the bus via libgmem against
 * doing the same placement in-process, plus the bus round-trip floor. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "gmem.h"
#include "macro.h"
#include "util.h"

/* The target for the bus path. */
#define TARGET_RATIO 1.5
#define TARGET_P99_US 1000.0

enum op {
        OP_DIRECT_CREATE,
        OP_DIRECT_CYCLE,
        OP_BUS_RTT,
        OP_FLOOR_CREATE,
        OP_FLOOR_CYCLE,
        OP_GMEMD_CREATE,
        OP_GMEMD_CYCLE,
        _OP_MAX,
};

static const char *const op_names[_OP_MAX] = {
        [OP_DIRECT_CREATE] = "direct create (ioctl+mmap+mbind)",
        [OP_DIRECT_CYCLE] = "direct create+teardown",
        [OP_BUS_RTT] = "bus round trip (Properties.Get)",
        [OP_FLOOR_CREATE] = "floor create (direct + 1 RTT)",
        [OP_FLOOR_CYCLE] = "floor create+release (+ 2 RTT)",
        [OP_GMEMD_CREATE] = "gmemd create (gmem_region_create)",
        [OP_GMEMD_CYCLE] = "gmemd create+release",
};

struct config {
        unsigned iterations, warmup, node;
        uint64_t size;
};

struct context {
        const struct config *config;
        int vm;
        gmem_client *client;
        gmem_options *options;
};

struct direct_region {
        int fd;
        void *map;
        uint64_t size;
};

/* What a VMM does without gmemd: make the guest_memfd, map it, bind it. */
static int direct_create(const struct context *c, struct direct_region *d)
{
        int r;

        *d = (struct direct_region) { .fd = -1, .map = MAP_FAILED, .size = c->config->size };
        d->fd = bench_make_gmem(c->vm, d->size);
        if (d->fd < 0)
                return d->fd;
        d->map = mmap(NULL, d->size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
        if (d->map == MAP_FAILED)
                return negative_errno();
        r = bench_bind(d->map, d->size, c->config->node);
        return r;
}

static void direct_destroy(struct direct_region *d)
{
        if (d->map != MAP_FAILED)
                munmap(d->map, d->size);
        safe_close(d->fd);
}

static int bus_round_trip(const struct context *c)
{
        char *version = NULL;
        int r = gmem_client_get_version(c->client, &version);

        free(version);
        return r;
}

static int gmemd_create(const struct context *c, gmem_region **ret)
{
        int r = gmem_region_create(c->client, c->vm, c->config->size, c->options, ret);

        if (r < 0)
                fprintf(stderr, "gmem_region_create: %s (%s)\n", strerror(-r),
                        gmem_client_get_error(c->client) ?: "no message");
        return r;
}

static int gmemd_release(const struct context *c, gmem_region *region)
{
        int r = gmem_region_release(region);

        if (r < 0)
                fprintf(stderr, "gmem_region_release: %s (%s)\n", strerror(-r),
                        gmem_client_get_error(c->client) ?: "no message");
        gmem_region_unref(region);
        return r;
}

/* gmemd answers Release before it emits RegionRemoved, logs, drops its bus
 * match and unmaps; on two CPUs that tail would land in whatever is timed
 * next. gmemd is single-threaded, so once it answers one more call the tail
 * is done. Untimed: it is throughput, not the latency a VMM waits for. */
static int settle(const struct context *c)
{
        return bus_round_trip(c);
}

/* One pass over every operation; interleaving them spreads the machine's
 * noise over all of them alike. Samples are kept only when @record. */
static int run_once(const struct context *c, struct bench_samples *s, bool record)
{
        struct direct_region d;
        gmem_region *region = NULL;
        uint64_t t[_OP_MAX], t0;
        int r;

        t0 = bench_now_ns();
        r = direct_create(c, &d);
        t[OP_DIRECT_CREATE] = bench_now_ns() - t0;
        direct_destroy(&d);
        if (r < 0)
                return r;

        t0 = bench_now_ns();
        r = direct_create(c, &d);
        direct_destroy(&d);
        t[OP_DIRECT_CYCLE] = bench_now_ns() - t0;
        if (r < 0)
                return r;

        t0 = bench_now_ns();
        r = bus_round_trip(c);
        t[OP_BUS_RTT] = bench_now_ns() - t0;
        if (r < 0)
                return r;

        t0 = bench_now_ns();
        r = direct_create(c, &d);
        if (r >= 0)
                r = bus_round_trip(c);
        t[OP_FLOOR_CREATE] = bench_now_ns() - t0;
        direct_destroy(&d);
        if (r < 0)
                return r;

        t0 = bench_now_ns();
        r = direct_create(c, &d);
        if (r >= 0)
                r = bus_round_trip(c);
        direct_destroy(&d);
        if (r >= 0)
                r = bus_round_trip(c);
        t[OP_FLOOR_CYCLE] = bench_now_ns() - t0;
        if (r < 0)
                return r;

        t0 = bench_now_ns();
        r = gmemd_create(c, &region);
        t[OP_GMEMD_CREATE] = bench_now_ns() - t0;
        if (r < 0)
                return r;
        r = gmemd_release(c, region);
        if (r >= 0)
                r = settle(c);
        if (r < 0)
                return r;

        t0 = bench_now_ns();
        r = gmemd_create(c, &region);
        if (r < 0)
                return r;
        r = gmemd_release(c, region);
        t[OP_GMEMD_CYCLE] = bench_now_ns() - t0;
        if (r >= 0)
                r = settle(c);
        if (r < 0)
                return r;

        if (record)
                for (unsigned i = 0; i < _OP_MAX; i++)
                        bench_samples_add(&s[i], t[i]);
        return 0;
}

static void print_ratio(const char *what, const struct bench_stats *num, const struct bench_stats *den)
{
        double p50 = num->p50_us / den->p50_us, p99 = num->p99_us / den->p99_us;
        bool met = p50 <= TARGET_RATIO && p99 <= TARGET_RATIO && num->p99_us < TARGET_P99_US;

        printf("  %-44s %7.2f %7.2f   %s\n", what, p50, p99, met ? "met" : "NOT met");
}

static int report(struct bench_samples *s)
{
        struct bench_stats st[_OP_MAX];
        int r;

        for (unsigned i = 0; i < _OP_MAX; i++) {
                r = bench_samples_stats(&s[i], &st[i]);
                if (r < 0)
                        return r;
        }
        printf("\n%-36s %9s %9s %9s %9s %9s\n", "operation", "p50 us", "p99 us", "mean us", "min us", "max us");
        for (unsigned i = 0; i < _OP_MAX; i++)
                printf("%-36s %9.1f %9.1f %9.1f %9.1f %9.1f\n", op_names[i], st[i].p50_us, st[i].p99_us,
                       st[i].mean_us, st[i].min_us, st[i].max_us);

        printf("\nRATIOS (target: ratio <= %.1f at p50 and p99, and gmemd p99 < %.0f us)\n", TARGET_RATIO,
               TARGET_P99_US);
        printf("  %-44s %7s %7s   %s\n", "", "p50", "p99", "target");
        print_ratio("gmemd create / direct create", &st[OP_GMEMD_CREATE], &st[OP_DIRECT_CREATE]);
        print_ratio("gmemd create+release / direct create+teardown", &st[OP_GMEMD_CYCLE], &st[OP_DIRECT_CYCLE]);
        print_ratio("gmemd create / floor create", &st[OP_GMEMD_CREATE], &st[OP_FLOOR_CREATE]);
        print_ratio("gmemd create+release / floor create+release", &st[OP_GMEMD_CYCLE], &st[OP_FLOOR_CYCLE]);
        printf("\ngmemd p99: create %.1f us, create+release %.1f us (target < %.0f us: %s)\n",
               st[OP_GMEMD_CREATE].p99_us, st[OP_GMEMD_CYCLE].p99_us, TARGET_P99_US,
               st[OP_GMEMD_CREATE].p99_us < TARGET_P99_US ? "met for create" : "NOT met for create");
        printf("gmemd cost above the bus floor at p50: create %+.1f us, create+release %+.1f us\n",
               st[OP_GMEMD_CREATE].p50_us - st[OP_FLOOR_CREATE].p50_us,
               st[OP_GMEMD_CYCLE].p50_us - st[OP_FLOOR_CYCLE].p50_us);
        return 0;
}

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: bench-create [-n ITERATIONS] [-w WARMUP] [-s SIZE] [--node N]\n"
                "Times CreateRegion through gmemd (libgmem, private bus) against the in-process\n"
                "KVM_CREATE_GUEST_MEMFD + mmap + mbind it replaces. Run as root.\n"
                "  -n, --iterations N  measured iterations (default 2000)\n"
                "  -w, --warmup N      unrecorded iterations first (default 100)\n"
                "  -s, --size SIZE     region size, e.g. 2M (default 2M)\n"
                "      --node N        NUMA node to bind to (default 0)\n");
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
        static const struct option longopts[] = {
                { "iterations", required_argument, NULL, 'n' },
                { "warmup", required_argument, NULL, 'w' },
                { "size", required_argument, NULL, 's' },
                { "node", required_argument, NULL, 'N' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        *cfg = (struct config) { .iterations = 2000, .warmup = 100, .size = 2 * MIB };
        while ((c = getopt_long(argc, argv, "n:w:s:h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        if (parse_uint(optarg, &cfg->iterations) < 0 || cfg->iterations == 0)
                                goto bad;
                        break;
                case 'w':
                        if (parse_uint(optarg, &cfg->warmup) < 0)
                                goto bad;
                        break;
                case 's':
                        if (parse_size(optarg, &cfg->size) < 0 || cfg->size == 0 ||
                            cfg->size % (uint64_t) sysconf(_SC_PAGESIZE))
                                goto bad;
                        break;
                case 'N':
                        if (parse_uint(optarg, &cfg->node) < 0)
                                goto bad;
                        break;
                case 'h':
                        usage(stdout);
                        exit(EXIT_SUCCESS);
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        }
        if (optind < argc)
                goto bad_arg;
        return 0;
bad:
        fprintf(stderr, "bench-create: bad value '%s' for %s\n", optarg, argv[optind - 1]);
        return -EINVAL;
bad_arg:
        fprintf(stderr, "bench-create: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
}

static int run(const struct config *cfg, struct context *c)
{
        struct bench_samples s[_OP_MAX] = {};
        int r = 0;

        for (unsigned i = 0; i < _OP_MAX && r >= 0; i++)
                r = bench_samples_init(&s[i], op_names[i], cfg->iterations);
        for (unsigned i = 0; i < cfg->warmup && r >= 0; i++)
                r = run_once(c, s, false);
        for (unsigned i = 0; i < cfg->iterations && r >= 0; i++)
                r = run_once(c, s, true);
        if (r >= 0)
                r = report(s);
        for (unsigned i = 0; i < _OP_MAX; i++)
                bench_samples_done(&s[i]);
        return r;
}

int main(int argc, char **argv)
{
        struct config cfg;
        struct bench_env env;
        struct context c = { .config = &cfg };
        char size_text[FORMAT_BYTES_MAX];
        int r, k;

        if (parse_args(argc, argv, &cfg) < 0)
                return EXIT_FAILURE;
        bench_require_host();

        printf("bench-create: %u iterations (+%u warm-up), region %s, policy bind node %u, operations interleaved\n",
               cfg.iterations, cfg.warmup, format_bytes(size_text, sizeof(size_text), cfg.size), cfg.node);
        bench_print_host(stdout);

        c.vm = bench_make_vm();
        if (c.vm < 0)
                return EXIT_FAILURE;
        r = bench_env_start(&env);
        if (r < 0)
                return EXIT_FAILURE;

        r = gmem_client_new(env.env.address, &c.client);
        if (r >= 0)
                r = gmem_options_new(&c.options);
        if (r >= 0)
                r = gmem_options_set_policy(c.options, GMEM_POLICY_BIND);
        if (r >= 0)
                r = gmem_options_set_nodes(c.options, &cfg.node, 1);
        if (r >= 0)
                r = gmem_options_set_name(c.options, "bench-create");
        if (r >= 0)
                r = run(&cfg, &c);
        else
                fprintf(stderr, "bench-create: cannot set up the client: %s\n", strerror(-r));

        gmem_options_unref(c.options);
        gmem_client_unref(c.client);
        safe_close(c.vm);
        k = bench_env_stop(&env);
        return r < 0 || k < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
