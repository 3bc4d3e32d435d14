/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-populate: how fast gmemd makes a region's memory allocated and ready
 * (CreateRegion populate, N workers) against a VMM doing it itself with N
 * threads and against the same work in-process, for several sizes. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
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
#define MAX_SIZES 4
#define MAX_THREADS 8
/* How long to wait for the previous run's memory to come back. */
#define FREE_WAIT_MS 5000

struct config {
        uint64_t sizes[MAX_SIZES];
        unsigned n_sizes;
        unsigned threads[MAX_THREADS];
        unsigned n_threads;
        unsigned repeat, node;
};

struct context {
        const struct config *config;
        uint64_t size;    /* of this round */
        unsigned threads; /* of this round: the VMM's prealloc threads, gmemd's workers */
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

/* What each thread does to its slice. */
enum work { ANON_POPULATE_WRITE, GMEM_FALLOCATE, GMEM_FALLOCATE_READ, GMEM_POPULATE_WRITE };

struct slice {
        char *map;
        int fd;
        uint64_t offset, length;
        enum work work;
        int r;
        pthread_t thread;
};

/* gmemd's populate chunk (daemon/populate.h), for the same work in-process. */
#define CHUNK (32 * MIB)

static int fallocate_read(struct slice *s, uint64_t offset, uint64_t length)
{
        if (fallocate(s->fd, FALLOC_FL_KEEP_SIZE, (off_t) offset, (off_t) length) < 0)
                return negative_errno();
        if (madvise(s->map + offset, length, MADV_POPULATE_READ) < 0)
                return negative_errno();
        return 0;
}

static void *slice_run(void *arg)
{
        struct slice *s = arg;

        s->r = 0;
        switch (s->work) {
        case GMEM_FALLOCATE:
                if (fallocate(s->fd, FALLOC_FL_KEEP_SIZE, (off_t) s->offset, (off_t) s->length) < 0)
                        s->r = negative_errno();
                break;
        case GMEM_FALLOCATE_READ:
                /* As gmemd's workers: chunk by chunk, each allocated then cleared. */
                for (uint64_t off = 0; off < s->length && s->r >= 0; off += CHUNK)
                        s->r = fallocate_read(s, s->offset + off, s->length - off < CHUNK ? s->length - off : CHUNK);
                break;
        default:
                if (madvise(s->map + s->offset, s->length, MADV_POPULATE_WRITE) < 0)
                        s->r = negative_errno();
        }
        return NULL;
}

/* @n threads, each on one contiguous slice (2 MiB aligned), as QEMU's
 * prealloc-threads split a memory backend. Not bound to CPUs: neither are
 * QEMU's without a prealloc-context; the memory policy places the pages. */
static int run_slices(unsigned n, char *map, int fd, uint64_t size, enum work work)
{
        struct slice slices[MAX_THREADS];
        uint64_t per = size / n / (2 * MIB) * (2 * MIB);
        int r = 0;

        for (unsigned i = 0; i < n; i++) {
                slices[i] = (struct slice) { .map = map, .fd = fd, .offset = i * per, .work = work,
                                             .length = i + 1 == n ? size - i * per : per };
                if (pthread_create(&slices[i].thread, NULL, slice_run, &slices[i]) != 0) {
                        n = i;
                        r = -EAGAIN;
                        break;
                }
        }
        for (unsigned i = 0; i < n; i++) {
                pthread_join(slices[i].thread, NULL);
                if (slices[i].r < 0 && r >= 0)
                        r = slices[i].r;
        }
        return r;
}

/* An anonymous mapping bound to the node, populated by MADV_POPULATE_WRITE
 * in c->threads threads, timed from mmap. Base pages (MADV_NOHUGEPAGE):
 * guest_memfd has no huge folios on 6.18, and explicit advice keeps the
 * baseline the same whatever the host's THP mode. */
static int run_anon_populate_write(struct context *c, uint64_t *ns)
{
        uint64_t size = c->size, t0 = bench_now_ns();
        char *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int r = 0;

        if (map == MAP_FAILED)
                return negative_errno();
        if (madvise(map, size, MADV_NOHUGEPAGE) < 0)
                r = negative_errno();
        if (r >= 0)
                r = bench_bind(map, size, c->config->node);
        if (r >= 0)
                r = run_slices(c->threads, map, -1, size, ANON_POPULATE_WRITE);
        *ns = bench_now_ns() - t0;
        munmap(map, size);
        return r;
}

/* A guest_memfd made, mapped and bound in this process, then populated by
 * c->threads threads; all timed. */
static int run_gmem(struct context *c, uint64_t *ns, enum work work)
{
        uint64_t size = c->size, t0 = bench_now_ns();
        _cleanup_close_ int fd = bench_make_gmem(c->vm, size);
        char *map;
        int r;

        if (fd < 0)
                return fd;
        map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
                return negative_errno();
        r = bench_bind(map, size, c->config->node);
        if (r >= 0)
                r = run_slices(c->threads, map, fd, size, work);
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

/* Once per size, untimed: the daemon's own measurement must show the whole region resident. */
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
               total, c->size);
        c->checked_resident = true;
        return total == c->size ? 0 : -EIO;
}

static int run_gmemd(struct context *c, uint64_t *ns)
{
        gmem_region *region = NULL;
        uint64_t t0;
        int r = gmem_options_set_populate_workers(c->options, c->threads);

        if (r < 0)
                return r;
        t0 = bench_now_ns();
        r = gmem_region_create(c->client, c->vm, c->size, c->options, &region);
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
        /* gmemd unmaps and closes after it answers Release; its event loop
         * is single-threaded, so one more answered call means that is done. */
        if (r >= 0) {
                char *version = NULL;

                r = gmem_client_get_version(c->client, &version);
                free(version);
        }
        return r;
}

enum { BASELINE, NOT_CLEARED, FLOOR, GMEM_WRITE, GMEMD };

static const struct variant variants[] = {
        [BASELINE] = { "anon MADV_POPULATE_WRITE (VMM)", "yes (zeroed)", run_anon_populate_write },
        [NOT_CLEARED] = { "gmem fallocate only", "NO (not cleared)", run_gmem_fallocate },
        [FLOOR] = { "gmem fallocate+POPULATE_READ", "yes (cleared)", run_gmem_fallocate_read },
        [GMEM_WRITE] = { "gmem MADV_POPULATE_WRITE (mmap)", "yes (zeroed)", run_gmem_populate_write },
        [GMEMD] = { "gmemd CreateRegion populate", "yes (cleared)", run_gmemd },
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

/* One size and thread count: the table, and its ratios kept for the summary. */
static void report(const struct context *c, uint64_t times[][MAX_REPEAT], double *ret_vs_vmm, double *ret_vs_floor)
{
        unsigned repeat = c->config->repeat;
        uint64_t median[N_VARIANTS];
        char size_text[FORMAT_BYTES_MAX];
        double base;

        for (size_t v = 0; v < N_VARIANTS; v++) {
                uint64_t copy[MAX_REPEAT];

                memcpy(copy, times[v], sizeof(copy));
                median[v] = bench_median_ns(copy, repeat);
        }
        base = gib_per_s(c->size, median[BASELINE]);
        printf("\n## %s, %u thread(s)\n%-33s %-17s", format_bytes(size_text, sizeof(size_text), c->size), c->threads,
               "variant", "ready for guest");
        for (unsigned i = 0; i < repeat; i++)
                printf(" run%-2u ms", i + 1);
        printf(" %9s %7s %8s\n", "median ms", "GiB/s", "vs VMM");
        for (size_t v = 0; v < N_VARIANTS; v++) {
                double g = gib_per_s(c->size, median[v]);

                printf("%-33s %-17s", variants[v].name, variants[v].ready);
                for (unsigned i = 0; i < repeat; i++)
                        printf(" %8.1f", (double) times[v][i] / 1e6);
                printf(" %9.1f %7.2f %7.2fx\n", (double) median[v] / 1e6, g, g / base);
        }
        *ret_vs_vmm = gib_per_s(c->size, median[GMEMD]) / base;
        *ret_vs_floor = gib_per_s(c->size, median[GMEMD]) / gib_per_s(c->size, median[FLOOR]);
}

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: bench-populate [-s SIZE]... [-t THREADS]... [-r REPEAT] [--node N]\n"
                "Times making a region ready for a guest through gmemd (CreateRegion populate with\n"
                "populate_workers=THREADS) against what a VMM does itself (anonymous memory,\n"
                "MADV_POPULATE_WRITE in THREADS threads, as QEMU's prealloc-threads) and against\n"
                "guest_memfd populated in-process by as many threads. Run as root.\n"
                "  -s, --size SIZE     region size, e.g. 1G; repeat for several (default 1G and 4G)\n"
                "  -t, --threads N     threads/workers; repeat for several (default 1 and 2, max %d)\n"
                "  -r, --repeat N      runs of each variant, median reported (default 3, max %d)\n"
                "      --node N        NUMA node to bind to (default 0)\n",
                MAX_THREADS, MAX_REPEAT);
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
        static const struct option longopts[] = {
                { "size", required_argument, NULL, 's' },
                { "threads", required_argument, NULL, 't' },
                { "repeat", required_argument, NULL, 'r' },
                { "node", required_argument, NULL, 'N' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        uint64_t size;
        unsigned n;
        int c;

        *cfg = (struct config) { .repeat = 3 };
        while ((c = getopt_long(argc, argv, "s:t:r:h", longopts, NULL)) >= 0) {
                switch (c) {
                case 's':
                        if (parse_size(optarg, &size) < 0 || size == 0 || size % (2 * MIB) ||
                            cfg->n_sizes == MAX_SIZES)
                                goto bad;
                        cfg->sizes[cfg->n_sizes++] = size;
                        break;
                case 't':
                        if (parse_uint(optarg, &n) < 0 || n == 0 || n > MAX_THREADS || cfg->n_threads == MAX_THREADS)
                                goto bad;
                        cfg->threads[cfg->n_threads++] = n;
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
        if (cfg->n_sizes == 0) {
                cfg->sizes[cfg->n_sizes++] = GIB;
                cfg->sizes[cfg->n_sizes++] = 4 * GIB;
        }
        if (cfg->n_threads == 0) {
                cfg->threads[cfg->n_threads++] = 1;
                cfg->threads[cfg->n_threads++] = 2;
        }
        return 0;
bad:
        fprintf(stderr, "bench-populate: bad value '%s' for %s (sizes: 2 MiB multiples, at most %d; threads: 1 to %d)\n",
                optarg, argv[optind - 1], MAX_SIZES, MAX_THREADS);
        return -EINVAL;
}

/* Every variant once per round, rounds repeated, so noise spreads alike.
 * Each round starts one variant later: a run inherits the pages the one
 * before it freed, which this host's free page reporting may have handed to
 * the hypervisor (a fault there on first touch), so no variant always
 * follows the same one. */
static int run_one(struct context *c, double *ret_vs_vmm, double *ret_vs_floor)
{
        uint64_t times[N_VARIANTS][MAX_REPEAT] = {};

        for (unsigned i = 0; i < c->config->repeat; i++)
                for (size_t k = 0; k < N_VARIANTS; k++) {
                        size_t v = (k + i) % N_VARIANTS;
                        int r;

                        wait_for_room(c->size);
                        r = variants[v].run(c, &times[v][i]);
                        if (r < 0) {
                                fprintf(stderr, "bench-populate: %s failed: %s\n", variants[v].name, strerror(-r));
                                return r;
                        }
                }
        report(c, times, ret_vs_vmm, ret_vs_floor);
        return 0;
}

static int run(const struct config *cfg, struct context *c)
{
        double vs_vmm[MAX_SIZES][MAX_THREADS], vs_floor[MAX_SIZES][MAX_THREADS];
        char size_text[FORMAT_BYTES_MAX];
        int r;

        for (unsigned s = 0; s < cfg->n_sizes; s++) {
                c->size = cfg->sizes[s];
                c->checked_resident = false;
                for (unsigned t = 0; t < cfg->n_threads; t++) {
                        c->threads = cfg->threads[t];
                        r = run_one(c, &vs_vmm[s][t], &vs_floor[s][t]);
                        if (r < 0)
                                return r;
                }
        }
        printf("\nRATIOS (throughput of the median runs; >= 1.00 means gmemd is as fast or faster)\n");
        printf("%-8s %-8s %22s %26s\n", "size", "threads", "gmemd / VMM's own", "gmemd / in-process floor");
        for (unsigned s = 0; s < cfg->n_sizes; s++)
                for (unsigned t = 0; t < cfg->n_threads; t++)
                        printf("%-8s %-8u %21.2fx %25.2fx\n", format_bytes(size_text, sizeof(size_text), cfg->sizes[s]),
                               cfg->threads[t], vs_vmm[s][t], vs_floor[s][t]);
        return 0;
}

int main(int argc, char **argv)
{
        struct config cfg;
        struct bench_env env;
        struct context c = { .config = &cfg };
        uint64_t largest = 0;
        int r, k;

        if (parse_args(argc, argv, &cfg) < 0)
                return EXIT_FAILURE;
        bench_require_host();
        for (unsigned s = 0; s < cfg.n_sizes; s++)
                largest = cfg.sizes[s] > largest ? cfg.sizes[s] : largest;
        if (bench_mem_free() < largest + largest / 2) {
                printf("SKIP: needs 1.5 times the largest region free (%" PRIu64 " bytes)\n", largest + largest / 2);
                return BENCH_EXIT_SKIP;
        }

        printf("bench-populate: policy bind node %u, %u rounds of every variant, median reported\n", cfg.node,
               cfg.repeat);
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
