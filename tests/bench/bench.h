/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by the gmem benchmarks: monotonic timing, percentiles, the host
 * description printed with every result, and the real gmemd on a private bus. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "harness.h"

/* Exit status meson (and automake) read as "skipped". */
#define BENCH_EXIT_SKIP 77

#define KIB (1024ULL)
#define MIB (1024ULL * 1024ULL)
#define GIB (1024ULL * 1024ULL * 1024ULL)

uint64_t bench_now_ns(void);

/* Latency samples of one measured operation. */
struct bench_samples {
        const char *name;
        uint64_t *ns;
        size_t n, capacity;
};

struct bench_stats {
        double p50_us, p99_us, mean_us, min_us, max_us;
        size_t n;
};

int bench_samples_init(struct bench_samples *s, const char *name, size_t capacity);
void bench_samples_add(struct bench_samples *s, uint64_t ns);
void bench_samples_done(struct bench_samples *s);
/* Nearest-rank percentiles over a sorted copy; 0 or -ENOMEM. */
int bench_samples_stats(const struct bench_samples *s, struct bench_stats *ret);
/* The median of a small array of nanosecond values (sorts it in place). */
uint64_t bench_median_ns(uint64_t *ns, size_t n);

/* Prints date, kernel release, CPUs, memory and THP mode. */
void bench_print_host(FILE *f);

/* Skips (exit 77) with a reason unless we are root with a usable /dev/kvm
 * whose guest_memfd can be mmap()ed, which is what gmemd needs. */
void bench_require_host(void);

/* A KVM VM fd, or a negative errno. */
int bench_make_vm(void);
/* A guest_memfd with MMAP|INIT_SHARED on @vm, or a negative errno. */
int bench_make_gmem(int vm, uint64_t size);
/* MPOL_BIND the mapping to @node through libnuma's mbind(). */
int bench_bind(void *addr, size_t length, unsigned node);

/* MemFree from /proc/meminfo, in bytes; 0 if unreadable. */
uint64_t bench_mem_free(void);

/* The real gmemd on a private dbus-daemon, started as the integration tests
 * start it, with the daemon's default (info) log level. Its log goes to a
 * file, not our terminal, so a benchmark does not time a tty. */
struct bench_env {
        struct test_env env;
        char log_path[256];
};

int bench_env_start(struct bench_env *b);
int bench_env_stop(struct bench_env *b);
