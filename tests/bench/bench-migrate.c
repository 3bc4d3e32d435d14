/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-migrate: moving a region between two gmemd regions over loopback TCP
 * (ExportRegion + ImportRegion precopy_only: authentication, CRC32 per page,
 * the keyed Poly1305 tag of the region at both ends) against a plain copy of the same bytes
 * over the same kind of socket, from one guest_memfd mapping into another. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "gmem.h"
#include "macro.h"
#include "util.h"

/* The target for the whole move against the plain copy. */
#define TARGET_RATIO 1.2

#define CHUNK (1U << 20)

struct plain {
        const uint8_t *from;
        uint64_t size;
        int fd;
};

static void *plain_sender(void *arg)
{
        struct plain *p = arg;

        for (uint64_t off = 0; off < p->size;) {
                size_t want = p->size - off < CHUNK ? (size_t) (p->size - off) : CHUNK;
                ssize_t n = send(p->fd, p->from + off, want, MSG_NOSIGNAL);

                if (n <= 0)
                        break;
                off += (uint64_t) n;
        }
        return NULL;
}

/* The baseline: @size bytes from @from over a loopback TCP connection into a
 * fresh guest_memfd's mapping, as gmemd's precopy writes them. */
static uint64_t plain_copy_ns(int vm, const uint8_t *from, uint64_t size)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), s;
        int gmem = bench_make_gmem(vm, size);
        uint8_t *to = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
        struct plain p = { .from = from, .size = size };
        uint64_t start, got = 0;
        pthread_t t;

        if (l < 0 || c < 0 || gmem < 0 || to == MAP_FAILED || bind(l, (struct sockaddr *) &a, sizeof(a)) < 0 ||
            listen(l, 1) < 0 || getsockname(l, (struct sockaddr *) &a, &len) < 0)
                exit(EXIT_FAILURE);
        start = bench_now_ns();
        if (connect(c, (struct sockaddr *) &a, sizeof(a)) < 0 || (s = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0)
                exit(EXIT_FAILURE);
        p.fd = c;
        if (pthread_create(&t, NULL, plain_sender, &p) != 0)
                exit(EXIT_FAILURE);
        while (got < size) {
                ssize_t n = read(s, to + got, size - got < CHUNK ? size - got : CHUNK);

                if (n <= 0)
                        exit(EXIT_FAILURE);
                got += (uint64_t) n;
        }
        pthread_join(t, NULL);
        start = bench_now_ns() - start;
        if (memcmp(to, from, size) != 0) {
                fprintf(stderr, "the plain copy is not identical\n");
                exit(EXIT_FAILURE);
        }
        munmap(to, size);
        close(gmem);
        close(s);
        close(c);
        close(l);
        return start;
}

/* ExportRegion of @source then ImportRegion (precopy_only) of it, timed from
 * the export to the import's answer; the copy checked against @from. */
static uint64_t gmemd_move_ns(gmem_client *client, gmem_region *source, const uint8_t *from, uint64_t size)
{
        _cleanup_free_ char *endpoint = NULL, *token = NULL;
        _cleanup_close_ int vm = bench_make_vm();
        gmem_region *copy = NULL;
        uint64_t start = bench_now_ns();
        uint8_t *to;
        int r;

        r = gmem_region_export(source, "tcp:127.0.0.1:0", NULL, &endpoint, &token);
        if (r >= 0)
                r = gmem_region_import(client, vm, size, endpoint, token, NULL, GMEM_IMPORT_PRECOPY_ONLY, &copy);
        if (r < 0) {
                fprintf(stderr, "gmemd: %s\n", gmem_client_get_error(client));
                exit(EXIT_FAILURE);
        }
        start = bench_now_ns() - start;
        to = mmap(NULL, size, PROT_READ, MAP_SHARED, gmem_region_get_fd(copy), 0);
        if (to == MAP_FAILED || memcmp(to, from, size) != 0) {
                fprintf(stderr, "the imported region is not identical\n");
                exit(EXIT_FAILURE);
        }
        munmap(to, size);
        gmem_region_release(copy);
        gmem_region_unref(copy);
        return start;
}

static int parse_args(int argc, char *argv[], uint64_t *size, unsigned *runs)
{
        static const struct option options[] = {
                { "size", required_argument, NULL, 's' }, { "runs", required_argument, NULL, 'r' }, {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                if ((c == 's' && parse_size(optarg, size) < 0) || (c == 'r' && parse_uint(optarg, runs) < 0) ||
                    c == '?') {
                        fprintf(stderr, "usage: bench-migrate [--size=SIZE (1G)] [--runs=N (3)]\n");
                        return -EINVAL;
                }
        return *runs > 0 && *size > 0 && *size % 4096 == 0 ? 0 : -EINVAL;
}

int main(int argc, char *argv[])
{
        uint64_t size = GIB, plain[16], moved[16], x = 0x9E3779B97F4A7C15ULL;
        _cleanup_close_ int vm = -1;
        gmem_region *source = NULL;
        gmem_client *client = NULL;
        struct bench_env env;
        unsigned runs = 3;
        uint8_t *from;
        double ratio;

        if (parse_args(argc, argv, &size, &runs) < 0 || runs > 16)
                return EXIT_FAILURE;
        bench_require_host();
        if (bench_env_start(&env) < 0 || gmem_client_new(env.env.address, &client) < 0)
                return EXIT_FAILURE;
        vm = bench_make_vm();
        if (vm < 0 || gmem_region_create(client, vm, size, NULL, &source) < 0)
                return EXIT_FAILURE;
        from = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, gmem_region_get_fd(source), 0);
        if (from == MAP_FAILED)
                return EXIT_FAILURE;
        for (uint64_t i = 0; i < size / 8; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                memcpy(from + i * 8, &x, 8);
        }
        /* Alternating, so drift in the machine's load hits both alike. */
        for (unsigned i = 0; i < runs; i++) {
                plain[i] = plain_copy_ns(vm, from, size);
                moved[i] = gmemd_move_ns(client, source, from, size);
        }
        bench_print_host(stdout);
        ratio = (double) bench_median_ns(moved, runs) / (double) bench_median_ns(plain, runs);
        printf("move of %" PRIu64 " MiB over loopback TCP, median of %u runs:\n", (uint64_t) (size / MIB), runs);
        printf("  plain copy over a socket         %8.1f ms\n", (double) bench_median_ns(plain, runs) / 1e6);
        printf("  gmemd ExportRegion+ImportRegion  %8.1f ms\n", (double) bench_median_ns(moved, runs) / 1e6);
        printf("  ratio gmemd / plain              %8.2f (target <= %.1f)\n", ratio, TARGET_RATIO);
        munmap(from, size);
        gmem_region_release(source);
        gmem_region_unref(source);
        gmem_client_unref(client);
        return bench_env_stop(&env) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
