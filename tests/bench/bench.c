/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers for the benchmarks in this directory; see bench.h. Nothing here
 * judges a number: benchmarks print, people read. */
#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "util.h"

uint64_t bench_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

int bench_samples_init(struct bench_samples *s, const char *name, size_t capacity)
{
        *s = (struct bench_samples) { .name = name, .capacity = capacity };
        s->ns = calloc(capacity ? capacity : 1, sizeof(uint64_t));
        return s->ns ? 0 : -ENOMEM;
}

void bench_samples_add(struct bench_samples *s, uint64_t ns)
{
        if (s->n < s->capacity)
                s->ns[s->n++] = ns;
}

void bench_samples_done(struct bench_samples *s)
{
        free(s->ns);
        s->ns = NULL;
        s->n = s->capacity = 0;
}

static int compare_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p% of samples at or below it. */
static uint64_t percentile(const uint64_t *sorted, size_t n, unsigned p)
{
        size_t rank = (n * p + 99) / 100;

        return sorted[rank ? rank - 1 : 0];
}

int bench_samples_stats(const struct bench_samples *s, struct bench_stats *ret)
{
        _cleanup_free_ uint64_t *sorted = NULL;
        double sum = 0;

        *ret = (struct bench_stats) { .n = s->n };
        if (s->n == 0)
                return 0;
        sorted = malloc(s->n * sizeof(uint64_t));
        if (!sorted)
                return -ENOMEM;
        memcpy(sorted, s->ns, s->n * sizeof(uint64_t));
        qsort(sorted, s->n, sizeof(uint64_t), compare_u64);
        for (size_t i = 0; i < s->n; i++)
                sum += (double) sorted[i];
        ret->p50_us = (double) percentile(sorted, s->n, 50) / 1e3;
        ret->p99_us = (double) percentile(sorted, s->n, 99) / 1e3;
        ret->mean_us = sum / (double) s->n / 1e3;
        ret->min_us = (double) sorted[0] / 1e3;
        ret->max_us = (double) sorted[s->n - 1] / 1e3;
        return 0;
}

uint64_t bench_median_ns(uint64_t *ns, size_t n)
{
        if (n == 0)
                return 0;
        qsort(ns, n, sizeof(uint64_t), compare_u64);
        return n % 2 ? ns[n / 2] : (ns[n / 2 - 1] + ns[n / 2]) / 2;
}

static void read_line(const char *path, char *buf, size_t n)
{
        FILE *f = fopen(path, "re");

        snprintf(buf, n, "?");
        if (!f)
                return;
        if (fgets(buf, (int) n, f))
                buf[strcspn(buf, "\n")] = '\0';
        fclose(f);
}

static uint64_t meminfo_bytes(const char *key)
{
        char line[256];
        size_t len = strlen(key);
        unsigned long long kib = 0;
        FILE *f = fopen("/proc/meminfo", "re");

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, len) == 0 && line[len] == ':') {
                        sscanf(line + len + 1, "%llu", &kib);
                        break;
                }
        fclose(f);
        return (uint64_t) kib * KIB;
}

uint64_t bench_mem_free(void)
{
        return meminfo_bytes("MemFree");
}

void bench_print_host(FILE *f)
{
        struct utsname u;
        char date[64], thp[128];
        time_t now = time(NULL);
        struct tm tm;

        if (uname(&u) < 0)
                snprintf(u.release, sizeof(u.release), "?");
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %Z", localtime_r(&now, &tm));
        read_line("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof(thp));
        fprintf(f, "# date %s, kernel %s, %ld CPUs, %.1f GiB RAM, %d NUMA node(s), THP %s\n", date, u.release,
                sysconf(_SC_NPROCESSORS_ONLN), (double) meminfo_bytes("MemTotal") / (double) GIB,
                numa_available() < 0 ? 1 : numa_num_configured_nodes(), thp);
}

static _Noreturn void skip(const char *why)
{
        printf("SKIP: %s\n", why);
        exit(BENCH_EXIT_SKIP);
}

void bench_require_host(void)
{
        uint64_t want = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
        _cleanup_close_ int vm = -1;
        int flags;

        if (geteuid() != 0)
                skip("run as root: the bus policy admits root and the gmem group, and the bench uses /dev/kvm");
        vm = bench_make_vm();
        if (vm < 0)
                skip("no usable /dev/kvm (KVM_CREATE_VM failed)");
        flags = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
        if (flags < 0 || ((uint64_t) flags & want) != want)
                skip("this kernel's guest_memfd lacks GUEST_MEMFD_FLAG_MMAP|INIT_SHARED");
}

int bench_make_vm(void)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        int vm;

        if (kvm < 0)
                return negative_errno();
        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        return vm < 0 ? negative_errno() : vm;
}

int bench_make_gmem(int vm, uint64_t size)
{
        struct kvm_create_guest_memfd args = {
                .size = size,
                .flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
        };
        int fd = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &args);

        return fd < 0 ? negative_errno() : fd;
}

int bench_bind(void *addr, size_t length, unsigned node)
{
        /* One static mask: the benchmarks bind in their timed loops and must
         * not time an allocation that gmemd's mbind() path does not make. */
        static struct bitmask *mask;

        if (!mask) {
                if (numa_available() < 0)
                        return -EOPNOTSUPP;
                mask = numa_allocate_nodemask();
                if (!mask)
                        return -ENOMEM;
        }
        numa_bitmask_clearall(mask);
        numa_bitmask_setbit(mask, node);
        if (mbind(addr, length, MPOL_BIND, mask->maskp, mask->size + 1, 0) < 0)
                return negative_errno();
        return 0;
}

int bench_env_start(struct bench_env *b)
{
        static const struct test_env_options options = {
                /* The shipped default level: one line per created and released region. */
                .daemon_config = "{ \"log_level\": \"info\" }",
        };
        _cleanup_close_ int log_fd = -1, saved_stderr = -1;
        int r;

        /* Let the benchmark run from anywhere, not only under meson. */
        setenv("GMEMD", BENCH_GMEMD, 0);
        setenv("GMEM_DBUS_POLICY", BENCH_DBUS_POLICY, 0);

        snprintf(b->log_path, sizeof(b->log_path), "%s/gmem-bench-XXXXXX.log", getenv("TMPDIR") ?: "/tmp");
        log_fd = mkostemps(b->log_path, 4, O_CLOEXEC);
        if (log_fd < 0)
                return negative_errno();
        /* The bus and gmemd inherit our stderr: point it at the log file for
         * as long as they are started. */
        fflush(stderr);
        saved_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        if (saved_stderr < 0 || dup2(log_fd, STDERR_FILENO) < 0)
                return negative_errno();
        r = test_env_start(&b->env, &options);
        dup2(saved_stderr, STDERR_FILENO);
        if (r < 0)
                fprintf(stderr, "bench: the test environment did not start; see %s\n", b->log_path);
        return r;
}

int bench_env_stop(struct bench_env *b)
{
        int r = test_env_stop(&b->env);

        if (r < 0)
                fprintf(stderr, "bench: gmemd did not stop cleanly; its log is %s\n", b->log_path);
        else
                unlink(b->log_path);
        return r;
}
