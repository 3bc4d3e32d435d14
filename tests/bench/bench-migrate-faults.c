/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-migrate-faults (vm tier, gmem kernel): how fast gmemd serves the
 * missing pages of a postcopy import to 1 and 2 vCPUs that each read their
 * own pages in order while the bulk stream is held back, against an
 * in-process handler in the VMM (the kernel selftest's way: a thread reading
 * the fault fd and installing from memory it already has). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "bench.h"
#include "gmem.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "migrate-proxy.h"
#include "test-guest.h"
#include "util.h"

#define SIZE (64 * MIB)
#define CODE_GPA 0x1000
#define DATA_GPA (1 * MIB)
#define PAGES_PER_VCPU 2048U
#define TOKEN "bench-migrate-faults-token-0123"

/* 1: add ebp, [ebx]; add ebx, 4096; dec ecx; jnz 1b; hlt */
static const uint8_t guest_code[] = { 0x03, 0x2b, 0x81, 0xc3, 0x00, 0x10, 0x00, 0x00, 0x49, 0x75, 0xf5, 0xf4 };

struct vcpu {
        int fd;
        struct kvm_run *run;
        unsigned index;
        uint64_t ns;
};

static void *vcpu_thread(void *arg)
{
        struct vcpu *v = arg;
        struct kvm_regs regs = { .rip = CODE_GPA, .rflags = 2, .rcx = PAGES_PER_VCPU,
                                 .rbx = DATA_GPA + (uint64_t) v->index * PAGES_PER_VCPU * 4096 };
        uint64_t start = bench_now_ns();

        test_vcpu_flat32(v->fd);
        if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
                abort();
        while (ioctl(v->fd, KVM_RUN, 0) < 0)
                if (errno != EINTR)
                        abort();
        if (v->run->exit_reason != KVM_EXIT_HLT)
                abort();
        v->ns = bench_now_ns() - start;
        return NULL;
}

/* Run @n vCPUs on the VM with memory @fd at GPA 0; the wall time of the slowest. */
static uint64_t run_vcpus(int vm, int fd, unsigned n)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        struct kvm_userspace_memory_region2 slot = { .flags = KVM_MEM_GUEST_MEMFD, .memory_size = SIZE,
                                                     .guest_memfd = (uint32_t) fd };
        void *mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        struct vcpu v[2];
        pthread_t t[2];
        uint64_t slowest = 0;
        int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);

        slot.userspace_addr = (uint64_t) (uintptr_t) mem;
        if (mem == MAP_FAILED || size <= 0 || ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &slot) < 0)
                abort();
        for (unsigned i = 0; i < n; i++) {
                v[i] = (struct vcpu) { .fd = ioctl(vm, KVM_CREATE_VCPU, i), .index = i };
                v[i].run = mmap(NULL, (size_t) size, PROT_READ | PROT_WRITE, MAP_SHARED, v[i].fd, 0);
                if (v[i].fd < 0 || v[i].run == MAP_FAILED)
                        abort();
        }
        for (unsigned i = 0; i < n; i++)
                pthread_create(&t[i], NULL, vcpu_thread, &v[i]);
        for (unsigned i = 0; i < n; i++) {
                pthread_join(t[i], NULL);
                slowest = v[i].ns > slowest ? v[i].ns : slowest;
                munmap(v[i].run, (size_t) size);
                close(v[i].fd);
        }
        munmap(mem, SIZE);
        return slowest;
}

/* --- the baseline: the VMM's own thread serves its fault fd ----------------------- */

struct handler {
        int gmem, fault_fd;
        const uint8_t *source;
        struct bench_samples *latency;
        volatile bool stop;
};

static void *handler_thread(void *arg)
{
        struct handler *h = arg;

        while (!h->stop) {
                struct pollfd p = { .fd = h->fault_fd, .events = POLLIN };
                struct kvm_gmem_fault f[64];
                ssize_t k;

                if (poll(&p, 1, 100) <= 0)
                        continue;
                k = read(h->fault_fd, f, sizeof(f));
                for (ssize_t i = 0; i < k / (ssize_t) sizeof(f[0]); i++) {
                        uint64_t start = bench_now_ns();
                        struct kvm_gmem_install in = { .offset = f[i].offset, .size = 4096,
                                                       .src = (uintptr_t) (h->source + f[i].offset) };

                        if (ioctl(h->gmem, KVM_GMEM_INSTALL, &in) < 0 && errno != EEXIST)
                                abort();
                        bench_samples_add(h->latency, bench_now_ns() - start);
                }
        }
        return NULL;
}

static uint64_t in_process_ns(const uint8_t *source, unsigned n, struct bench_samples *latency)
{
        struct kvm_gmem_arm_missing arm = { .flags = KVM_GMEM_MISSING_NONBLOCK };
        _cleanup_close_ int vm = bench_make_vm(), gmem = bench_make_gmem(vm, SIZE);
        struct handler h = { .gmem = gmem, .source = source, .latency = latency };
        pthread_t t;
        uint64_t ns;

        h.fault_fd = ioctl(gmem, KVM_GMEM_ARM_MISSING, &arm);
        if (h.fault_fd < 0)
                abort();
        pthread_create(&t, NULL, handler_thread, &h);
        ns = run_vcpus(vm, gmem, n);
        h.stop = true;
        pthread_join(t, NULL);
        close(h.fault_fd);
        return ns;
}

/* --- gmemd: a postcopy import whose bulk stream waits --------------------------------- */

static const char *bus_address;

/* FaultLatencyP50/P99 of the migration of @region, in microseconds. */
static int bench_migration_latency(const char *region, uint64_t *p50, uint64_t *p99)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *path, *reg, *role, *mode, *state;
        uint64_t done, total;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, bus_address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "ListMigrations", &error,
                                       &reply, NULL);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(oossstt)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(oossstt)", &path, &reg, &role, &mode, &state, &done,
                                                  &total)) > 0)
                if (streq(reg, region)) {
                        r = sd_bus_get_property_trivial(bus, "org.gmem1", path, "org.gmem1.Migration",
                                                        "FaultLatencyP50", &error, 't', p50);
                        if (r >= 0)
                                r = sd_bus_get_property_trivial(bus, "org.gmem1", path, "org.gmem1.Migration",
                                                                "FaultLatencyP99", &error, 't', p99);
                        break;
                }
        sd_bus_error_free(&error);
        return r;
}

static uint64_t gmemd_ns(gmem_client *client, const uint8_t *template, unsigned n, uint64_t *p50, uint64_t *p99)
{
        _cleanup_free_ char *endpoint = NULL, *token = NULL;
        _cleanup_close_ int vm = bench_make_vm(), source_vm = bench_make_vm();
        struct migrate_proxy p = { .hold_bulk = true };
        gmem_region *copy = NULL, *source = NULL;
        uint8_t *map;
        uint64_t ns;

        /* A source of its own each time: one export serves one destination. */
        if (gmem_region_create(client, source_vm, SIZE, NULL, &source) < 0)
                abort();
        map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gmem_region_get_fd(source), 0);
        if (map == MAP_FAILED)
                abort();
        memcpy(map, template, SIZE);
        munmap(map, SIZE);
        if (gmem_region_export(source, migrate_test_listen(), TOKEN, &endpoint, &token) < 0)
                abort();
        p.upstream = endpoint;
        migrate_proxy_start(&p);
        if (gmem_region_import(client, vm, SIZE, p.endpoint, TOKEN, NULL, 0, &copy) < 0) {
                fprintf(stderr, "gmemd: %s\n", gmem_client_get_error(client));
                exit(EXIT_FAILURE);
        }
        ns = run_vcpus(vm, gmem_region_get_fd(copy), n);
        *p50 = *p99 = 0;
        (void) bench_migration_latency(gmem_region_get_path(copy), p50, p99);
        gmem_region_release(copy);
        gmem_region_unref(copy);
        gmem_region_release(source);
        gmem_region_unref(source);
        migrate_proxy_stop(&p);
        return ns;
}

int main(void)
{
        uint64_t x = 0x2545F4914F6CDD1DULL;
        gmem_client *client = NULL;
        struct bench_env env;
        uint8_t *template;

        bench_require_host();
        {
                _cleanup_close_ int vm = bench_make_vm();

                if (ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_MISSING) <= 0) {
                        printf("this kernel has no KVM_CAP_GUEST_MEMFD_MISSING: run it in the vm tier\n");
                        return BENCH_EXIT_SKIP;
                }
        }
        template = malloc(SIZE);
        if (!template || bench_env_start(&env) < 0 || gmem_client_new(env.env.address, &client) < 0)
                return EXIT_FAILURE;
        bus_address = env.env.address;
        for (size_t i = 0; i < SIZE / 8; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                memcpy(template + i * 8, &x, 8);
        }
        memcpy(template + CODE_GPA, guest_code, sizeof(guest_code));
        bench_print_host(stdout);
        printf("%-8s %-28s %12s %12s %10s %10s\n", "vCPUs", "handler", "faults", "faults/s", "p50 us", "p99 us");
        for (unsigned n = 1; n <= 2; n++) {
                struct bench_samples latency;
                struct bench_stats st = {};
                uint64_t faults = (uint64_t) n * PAGES_PER_VCPU + 1, base, ours, p50, p99;

                if (bench_samples_init(&latency, "in-process", faults + 16) < 0)
                        return EXIT_FAILURE;
                base = in_process_ns(template, n, &latency);
                (void) bench_samples_stats(&latency, &st);
                bench_samples_done(&latency);
                ours = gmemd_ns(client, template, n, &p50, &p99);
                printf("%-8u %-28s %12" PRIu64 " %12.0f %10.1f %10.1f\n", n, "in-process (selftest way)", faults,
                       faults / (base / 1e9), st.p50_us, st.p99_us);
                printf("%-8u %-28s %12" PRIu64 " %12.0f %10" PRIu64 " %10" PRIu64 "\n", n, "gmemd (fault channel)", faults,
                       faults / (ours / 1e9), p50, p99);
                printf("%-8u ratio of fault rates gmemd / in-process: %.2f\n", n, (double) base / (double) ours);
        }
        free(template);
        gmem_client_unref(client);
        return bench_env_stop(&env) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
