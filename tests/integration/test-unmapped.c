/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Regions whose guest_memfd is never mapped (private memory): on the gmem
 * kernel, gmemd creates, places, populates and measures them without a mapping,
 * charges them to the VMM's cgroup and refuses a memfd of another VM; on a
 * stock kernel it says Unsupported and why. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus-client.h"
#include "bus-errors.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "util.h"

#define REGION_SIZE (16 * MIB)
#ifndef KVM_X86_SW_PROTECTED_VM
#define KVM_X86_SW_PROTECTED_VM 1
#endif

static bool kernel_has(long cap)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

        ASSERT(kvm >= 0);
        return ioctl(kvm, KVM_CHECK_EXTENSION, cap) > 0;
}

/* A confidential-style VM where the kernel has one, else a default VM. */
static int make_private_vm(void)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        int types, vm;

        ASSERT(kvm >= 0);
        types = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES);
        vm = ioctl(kvm, KVM_CREATE_VM, types > 0 && (types & (1 << KVM_X86_SW_PROTECTED_VM)) ?
                                               KVM_X86_SW_PROTECTED_VM : 0);
        ASSERT(vm >= 0);
        return vm;
}

/* --- cgroup v2: the VMM's and the daemon's ---------------------------------- */

static void cg_write(const char *dir, const char *file, const char *value)
{
        char path[PATH_MAX];
        _cleanup_close_ int fd = -1;

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        ASSERT(fd >= 0);
        ASSERT(write(fd, value, strlen(value)) == (ssize_t) strlen(value));
}

static uint64_t cg_current(const char *dir)
{
        char path[PATH_MAX];
        unsigned long long v = 0;
        FILE *f;

        snprintf(path, sizeof(path), "%s/memory.current", dir);
        f = fopen(path, "re");
        ASSERT(f);
        ASSERT(fscanf(f, "%llu", &v) == 1);
        fclose(f);
        return v;
}

static void cg_enter(const char *dir)
{
        char pid[32];

        snprintf(pid, sizeof(pid), "%d", (int) getpid());
        cg_write(dir, "cgroup.procs", pid);
}

/* The cgroup v2 mount point (the vm tier's wrapper mounts one). */
static bool cg_root(char root[PATH_MAX])
{
        char dev[64], type[64];
        bool found = false;
        FILE *f = fopen("/proc/self/mounts", "re");

        ASSERT(f);
        while (!found && fscanf(f, "%63s %4095s %63s %*[^\n]", dev, root, type) == 3)
                found = streq(type, "cgroup2");
        fclose(f);
        return found;
}

/* --- the gmem kernel --------------------------------------------------------- */

static uint64_t kernel_private_pages_on(int fd, int vm, unsigned node, bool *same_vm)
{
        uint64_t pages[2 * 64] = {};
        struct kvm_guest_memfd_info info = {
                .vm_fd = vm, .nr_nodes = 64, .pages = (uint64_t) (uintptr_t) pages,
        };

        ASSERT_OK(ioctl(fd, KVM_GUEST_MEMFD_GET_INFO, &info));
        *same_vm = info.flags & KVM_GUEST_MEMFD_INFO_SAME_VM;
        return pages[2 * node + 1];
}

/* A private region bound to node 1, created and populated by gmemd for a VMM
 * that passed only its VM fd: resident on node 1, charged to the VMM. */
static void test_private_region(sd_bus *bus, int vm, const char *vmm_cg, const char *daemon_cg)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int64_t vmm0 = (int64_t) cg_current(vmm_cg), daemon0 = (int64_t) cg_current(daemon_cg), vmm_delta,
                daemon_delta;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        bool same_vm = false;
        const char *p;
        int got;

        /* No memfd: the VMM passes only its VM fd. */
        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "CreateRegion", &error,
                                     &reply, "hta{sv}", vm, (uint64_t) REGION_SIZE, 4, "shared", "b", 0, "policy", "s",
                                     "bind", "nodes", "au", 1, 1, "populate", "b", 1));
        ASSERT_OK(sd_bus_message_read(reply, "oh", &p, &got));
        path = strdup(p);
        fd = fcntl(got, F_DUPFD_CLOEXEC, 3);
        ASSERT(path && fd >= 0);
        ASSERT(resident_on(bus, path, 1) == REGION_SIZE);
        ASSERT(resident_on(bus, path, 0) == 0);
        printf("ok: private region created and populated by gmemd: %" PRIu64 " bytes resident on node 1, 0 on 0\n",
               resident_on(bus, path, 1));

        /* The fd gmemd made: private, not mappable, of this VM, its pages on node 1. */
        ASSERT(mmap(NULL, REGION_SIZE, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED);
        ASSERT(kernel_private_pages_on(fd, vm, 1, &same_vm) == REGION_SIZE / (uint64_t) sysconf(_SC_PAGESIZE));
        ASSERT(same_vm);
        printf("ok: the guest_memfd is this VM's, cannot be mapped, and the kernel counts it on node 1\n");

        /* memory.current moves in per-CPU charge batches and with what else the
         * processes do: a quarter of the region either way. Charged to the wrong
         * cgroup, both numbers would be off by all of it. */
        vmm_delta = (int64_t) cg_current(vmm_cg) - vmm0;
        daemon_delta = (int64_t) cg_current(daemon_cg) - daemon0;
        printf("memory.current: VMM's cgroup %+" PRId64 " KiB, gmemd's %+" PRId64 " KiB\n", vmm_delta / 1024,
               daemon_delta / 1024);
        ASSERT(vmm_delta >= (int64_t) REGION_SIZE / 4 * 3);
        ASSERT(daemon_delta < (int64_t) REGION_SIZE / 4);
        printf("ok: the pages gmemd populated are charged to the VMM's cgroup\n");
        region_release(bus, path);
}

/* A memfd of another VM is refused; an unmappable private memfd of this VM
 * is placed and measured without a mapping. */
static void test_memfd(struct test_env *e, sd_bus *bus, int vm)
{
        static const uint32_t node1[] = { 1 };
        _cleanup_close_ int other_vm = make_private_vm(), theirs = make_gmem_flags(other_vm, REGION_SIZE, 0),
                            ours = make_gmem_flags(vm, REGION_SIZE, 0);
        const struct opt mismatched[] = {
                { .key = "memfd", .sig = "h", .h = theirs },
                { .key = "shared", .sig = "b", .b = 0 },
        };
        const struct opt matched[] = {
                { .key = "memfd", .sig = "h", .h = ours },
                { .key = "shared", .sig = "b", .b = 0 },
                { .key = "policy", .sig = "s", .s = "bind" },
                { .key = "nodes", .sig = "au", .au = node1, .n_au = 1 },
                { .key = "populate", .sig = "b", .b = 1 },
        };
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        bool same_vm = false;

        expect_create_error_says(e, bus, vm, REGION_SIZE, mismatched, ELEMENTSOF(mismatched),
                                 GMEM_ERROR_INVALID_ARGUMENT, "belongs to another VM", "memfd of another VM");
        ASSERT_OK(create(bus, vm, REGION_SIZE, matched, ELEMENTSOF(matched), &error, &path));
        ASSERT(resident_on(bus, path, 1) == REGION_SIZE);
        ASSERT(kernel_private_pages_on(ours, vm, 1, &same_vm) == REGION_SIZE / (uint64_t) sysconf(_SC_PAGESIZE));
        ASSERT(same_vm);
        printf("ok: the VMM's unmappable private memfd placed on node 1 and measured by the kernel's counts\n");
        region_release(bus, path);
}

static void run_gmem_kernel(void)
{
        char root[PATH_MAX], vmm_cg[PATH_MAX + 32], daemon_cg[PATH_MAX + 32];
        _cleanup_close_ int vm = -1;
        struct test_env e;
        sd_bus *bus;

        ASSERT(cg_root(root)); /* a failure, not a skip: the vm tier mounts cgroup2 */
        snprintf(vmm_cg, sizeof(vmm_cg), "%s/gmem-vmm-%d", root, (int) getpid());
        snprintf(daemon_cg, sizeof(daemon_cg), "%s/gmem-daemon-%d", root, (int) getpid());
        cg_write(root, "cgroup.subtree_control", "+memory");
        ASSERT_OK(mkdir(vmm_cg, 0755));
        ASSERT_OK(mkdir(daemon_cg, 0755));

        /* gmemd (and the bus) in one cgroup, this process, the VMM, in another. */
        cg_enter(daemon_cg);
        bus = bus_test_start(&e, NULL);
        cg_enter(vmm_cg);
        vm = make_private_vm();

        test_private_region(bus, vm, vmm_cg, daemon_cg);
        test_memfd(&e, bus, vm);

        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));
        cg_enter(root);
        ASSERT_OK(rmdir(vmm_cg));
        ASSERT_OK(rmdir(daemon_cg));
}

/* --- a stock kernel ---------------------------------------------------------- */

static void run_stock_kernel(void)
{
        _cleanup_close_ int vm = make_vm(), unmappable = make_gmem_flags(vm, 2 * MIB, 0);
        const struct opt private_memfd[] = {
                { .key = "memfd", .sig = "h", .h = unmappable },
                { .key = "shared", .sig = "b", .b = 0 },
        };
        const struct opt private_created[] = { { .key = "shared", .sig = "b", .b = 0 } };
        struct test_env e;
        sd_bus *bus = bus_test_start(&e, NULL);

        expect_create_error_says(&e, bus, vm, 2 * MIB, private_memfd, ELEMENTSOF(private_memfd),
                                 GMEM_ERROR_UNSUPPORTED, "KVM_CAP_GUEST_MEMFD_POLICY",
                                 "unmappable private memfd, stock kernel");
        if (!kernel_has(KVM_CAP_GUEST_MEMFD_ANY_MM))
                expect_create_error_says(&e, bus, vm, 2 * MIB, private_created, ELEMENTSOF(private_created),
                                         GMEM_ERROR_UNSUPPORTED, "option 'memfd'", "no memfd, stock kernel");
        sd_bus_flush_close_unref(bus);
        ASSERT_OK(test_env_stop(&e));
}

int main(void)
{
        bus_tests_init();
        if (kernel_has(KVM_CAP_GUEST_MEMFD_POLICY) && kernel_has(KVM_CAP_GUEST_MEMFD_INFO) &&
            kernel_has(KVM_CAP_GUEST_MEMFD_ANY_MM) && kernel_has(KVM_CAP_GUEST_MEMFD_OWNER_MEMCG)) {
                printf("kernel with the gmem series' guest_memfd interfaces: the full test\n");
                run_gmem_kernel();
        } else {
                printf("stock kernel: the Unsupported answers\n");
                run_stock_kernel();
        }
        return 0;
}
