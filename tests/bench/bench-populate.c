/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-populate: how fast gmemd makes a region's memory allocated and ready
 * (CreateRegion populate=true) against the ways a process can do it itself. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "gmem.h"
#include "macro.h"
#include "util.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define MAX_REPEAT 15
/* How long to wait for the previous run's memory to come back. */
#define FREE_WAIT_MS 5000

struct config {
        uint64_t size;
        unsigned repeat, node;
};

struct context {
        const struct config *config;
        int vm;
        gmem_client *client;
        gmem_options *options;
        bool checked_resident;
};

struct variant {
        const char *name;
        /* Whether the memory is cleared and ready for the guest when the timed part ends. */
        const char *ready;
        int (*run)(struct context *c, uint64_t *ns);
};

/* An anonymous mapping bound to the node, populated by @how (memset if < 0),
 * timed from mmap. Base pages (MADV_NOHUGEPAGE): guest_memfd has no huge
 * folios on 6.18, and explicit advice keeps the baseline the same whatever
 * the host's THP mode. */
static int run_anon(struct context *c, uint64_t *ns, int how)
{
        uint64_t size = c->config->size, t0 = bench_now_ns();
        void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int r = 0;

        if (map == MAP_FAILED)
                return negative_errno();
        if (madvise(map, size, MADV_NOHUGEPAGE) < 0)
                r = negative_errno();
        if (r >= 0)
                r = bench_bind(map, size, c->config->node);
        if (r >= 0) {
                if (how < 0)
                        memset(map, 0x5a, size);
                else if (madvise(map, size, how) < 0)
                        r = negative_errno();
        }
        *ns = bench_now_ns() - t0;
        /* Keep the memset: the compiler may not drop stores it can see read. */
        if (r >= 0 && how < 0 && ((volatile unsigned char *) map)[size - 1] != 0x5a)
                r = -EIO;
        munmap(map, size);
        return r;
}

static int run_anon_memset(struct context *c, uint64_t *ns)
{
        return run_anon(c, ns, -1);
}

static int run_anon_populate_write(struct context *c, uint64_t *ns)
{
        return run_anon(c, ns, MADV_POPULATE_WRITE);
}


enum gmem_work { GMEM_FALLOCATE, GMEM_FALLOCATE_READ, GMEM_POPULATE_WRITE };

/* A guest_memfd made, mapped and bound in this process, then populated; all timed. */
static int run_gmem(struct context *c, uint64_t *ns, enum gmem_work work)
{
        uint64_t size = c->config->size, t0 = bench_now_ns();
        _cleanup_close_ int fd = bench_make_gmem(c->vm, size);
        void *map;
        int r;

        if (fd < 0)
                return fd;
        map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
                return negative_errno();
        r = bench_bind(map, size, c->config->node);
        if (r >= 0 && work != GMEM_POPULATE_WRITE && fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t) size) < 0)
                r = negative_errno();
        if (r >= 0 && work == GMEM_FALLOCATE_READ && madvise(map, size, MADV_POPULATE_READ) < 0)
                r = negative_errno();
        if (r >= 0 && work == GMEM_POPULATE_WRITE && madvise(map, size, MADV_POPULATE_WRITE) < 0)
                r = negative_errno();
        *ns = bench_now_ns() - t0;
        munmap(map, size);
        return r;
}

static int run_gmem_fallocate(struct context *c, uint64_t *ns)
{
        return run_gmem(c, ns, GMEM_FALLOCATE);
}

static int run_gmem_fallocate_read(struct context *c, uint64_t *ns)
{
        return run_gmem(c, ns, GMEM_FALLOCATE_READ);
}

static int run_gmem_populate_write(struct context *c, uint64_t *ns)
{
        return run_gmem(c, ns, GMEM_POPULATE_WRITE);
}

/* Once, untimed: the daemon's own measurement must show the whole region resident. */
static int check_resident(struct context *c, gmem_region *region)
{
        _cleanup_free_ gmem_node_bytes *nodes = NULL;
        uint64_t total = 0;
        size_t n;
        int r = gmem_region_get_resident(region, &nodes, &n);

        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                total += nodes[i].bytes;
        printf("# gmemd reports %" PRIu64 " of %" PRIu64 " bytes resident after CreateRegion populate=true\n",
               total, c->config->size);
        c->checked_resident = true;
        return total == c->config->size ? 0 : -EIO;
}

static int run_gmemd(struct context *c, uint64_t *ns)
{
        gmem_region *region = NULL;
        uint64_t t0 = bench_now_ns();
        int r = gmem_region_create(c->client, c->vm, c->config->size, c->options, &region);

        *ns = bench_now_ns() - t0;
        if (r < 0) {
                fprintf(stderr, "gmem_region_create: %s (%s)\n", strerror(-r),
                        gmem_client_get_error(c->client) ?: "no message");
                return r;
        }
        if (!c->checked_resident)
                r = check_resident(c, region);
        if (gmem_region_release(region) < 0 && r >= 0)
                r = -EIO;
        gmem_region_unref(region);
        /* gmemd unmaps and closes after it answers Release; it is
         * single-threaded, so one more answered call means that is done. */
        if (r >= 0) {
                char *version = NULL;

                r = gmem_client_get_version(c->client, &version);
                free(version);
        }
        return r;
}

enum { BASELINE = 1, IN_PROCESS_EQUAL = 4 };

static const struct variant variants[] = {
        { "anon mmap+memset", "yes (written)", run_anon_memset },
        [BASELINE] = { "anon MADV_POPULATE_WRITE", "yes (zeroed)", run_anon_populate_write },
        { "gmem fallocate only", "NO (not cleared)", run_gmem_fallocate },
        { "gmem MADV_POPULATE_WRITE (mmap)", "yes (zeroed)", run_gmem_populate_write },
        [IN_PROCESS_EQUAL] = { "gmem fallocate+MADV_POPULATE_READ", "yes (cleared)", run_gmem_fallocate_read },
        { "gmemd CreateRegion populate=true", "yes (cleared)", run_gmemd },
};
#define N_VARIANTS ELEMENTSOF(variants)

/* Every run frees what it took before it returns (munmap, the last close, or
 * Release answered and one more call served). MemFree does not show that at
 * once: this host's free page reporting (virtio-balloon) keeps freed 2 MiB
 * blocks off the free lists for seconds while it hands them to the
 * hypervisor. So only wait, briefly, until the next run has room. */
static void wait_for_room(uint64_t size)
{
        uint64_t want = size + size / 4;
        struct timespec pause = { .tv_nsec = 20 * 1000 * 1000 };

        for (unsigned waited = 0; waited < FREE_WAIT_MS; waited += 20) {
                if (bench_mem_free() >= want)
                        return;
                nanosleep(&pause, NULL);
        }
        printf("# note: only %.0f MiB free before a run of %.0f MiB\n", (double) bench_mem_free() / (double) MIB,
               (double) size / (double) MIB);
}

static double gib_per_s(uint64_t size, uint64_t ns)
{
        return ns ? (double) size / (double) GIB / ((double) ns / 1e9) : 0;
}

static void report(const struct config *cfg, uint64_t times[][MAX_REPEAT])
{
        uint64_t median[N_VARIANTS];
        double base;

        for (size_t v = 0; v < N_VARIANTS; v++) {
                uint64_t copy[MAX_REPEAT];

                memcpy(copy, times[v], sizeof(copy));
                median[v] = bench_median_ns(copy, cfg->repeat);
        }
        base = gib_per_s(cfg->size, median[BASELINE]);

        printf("\n%-35s %-17s", "variant", "ready for guest");
        for (unsigned i = 0; i < cfg->repeat; i++)
                printf(" run%-2u ms", i + 1);
        printf(" %9s %7s %8s\n", "median ms", "GiB/s", "vs base");
        for (size_t v = 0; v < N_VARIANTS; v++) {
                double g = gib_per_s(cfg->size, median[v]);

                printf("%-35s %-17s", variants[v].name, variants[v].ready);
                for (unsigned i = 0; i < cfg->repeat; i++)
                        printf(" %8.1f", (double) times[v][i] / 1e6);
                printf(" %9.1f %7.2f %7.2fx\n", (double) median[v] / 1e6, g, g / base);
        }
        printf("\nRATIOS (throughput of the median run; baseline: %s = %.2f GiB/s)\n", variants[BASELINE].name, base);
        for (size_t v = 0; v < N_VARIANTS; v++)
                if (v != BASELINE)
                        printf("  %-35s / baseline      %6.2f\n", variants[v].name,
                               gib_per_s(cfg->size, median[v]) / base);
        printf("  %-35s / %s %6.2f  (same work; the cost of asking gmemd)\n", variants[N_VARIANTS - 1].name,
               "in-process", gib_per_s(cfg->size, median[N_VARIANTS - 1]) /
                                     gib_per_s(cfg->size, median[IN_PROCESS_EQUAL]));
}

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: bench-populate [-s SIZE] [-r REPEAT] [--node N]\n"
                "Times populating a region through gmemd (CreateRegion populate=true) against\n"
                "anonymous memory and guest_memfd populated in-process. Run as root.\n"
                "  -s, --size SIZE     region size, e.g. 1G (default 1G)\n"
                "  -r, --repeat N      runs of each variant, median reported (default 3, max %d)\n"
                "      --node N        NUMA node to bind to (default 0)\n",
                MAX_REPEAT);
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
        static const struct option longopts[] = {
                { "size", required_argument, NULL, 's' },
                { "repeat", required_argument, NULL, 'r' },
                { "node", required_argument, NULL, 'N' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        *cfg = (struct config) { .size = GIB, .repeat = 3 };
        while ((c = getopt_long(argc, argv, "s:r:h", longopts, NULL)) >= 0) {
                switch (c) {
                case 's':
                        if (parse_size(optarg, &cfg->size) < 0 || cfg->size == 0 ||
                            cfg->size % (uint64_t) sysconf(_SC_PAGESIZE))
                                goto bad;
                        break;
                case 'r':
                        if (parse_uint(optarg, &cfg->repeat) < 0 || cfg->repeat == 0 || cfg->repeat > MAX_REPEAT)
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
        if (optind < argc) {
                fprintf(stderr, "bench-populate: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        return 0;
bad:
        fprintf(stderr, "bench-populate: bad value '%s' for %s\n", optarg, argv[optind - 1]);
        return -EINVAL;
}

/* Every variant once per round, rounds repeated, so noise spreads alike. */
static int run(const struct config *cfg, struct context *c)
{
        uint64_t times[N_VARIANTS][MAX_REPEAT] = {};

        for (unsigned i = 0; i < cfg->repeat; i++)
                for (size_t v = 0; v < N_VARIANTS; v++) {
                        int r;

                        wait_for_room(cfg->size);
                        r = variants[v].run(c, &times[v][i]);
                        if (r < 0) {
                                fprintf(stderr, "bench-populate: %s failed: %s\n", variants[v].name, strerror(-r));
                                return r;
                        }
                }
        report(cfg, times);
        return 0;
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
        if (bench_mem_free() < 2 * cfg.size) {
                printf("SKIP: needs twice the region size free (%" PRIu64 " bytes)\n", 2 * cfg.size);
                return BENCH_EXIT_SKIP;
        }

        printf("bench-populate: region %s, policy bind node %u, %u rounds of every variant, median reported\n",
               format_bytes(size_text, sizeof(size_text), cfg.size), cfg.node, cfg.repeat);
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
                r = gmem_options_set_populate(c.options, true);
        if (r >= 0)
                r = gmem_options_set_name(c.options, "bench-populate");
        if (r >= 0)
                r = run(&cfg, &c);
        else
                fprintf(stderr, "bench-populate: cannot set up the client: %s\n", strerror(-r));

        gmem_options_unref(c.options);
        gmem_client_unref(c.client);
        safe_close(c.vm);
        k = bench_env_stop(&env);
        return r < 0 || k < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
