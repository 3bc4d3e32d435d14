/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The VM scaffolding shared by the vm-tier test and benchmark that run guest
 * code on gmemd memory. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "test-guest.h"

gmem_region *test_region_create(gmem_client *client, int vm, uint64_t size, const gmem_options *options)
{
        gmem_region *region;
        int r = gmem_region_create(client, vm, size, options, &region);

        if (r < 0)
                fprintf(stderr, "gmemd: %s (%s)\n", gmem_client_get_error(client), gmem_client_get_error_name(client));
        ASSERT_OK(r);
        return region;
}

void test_guest_new_vm(struct test_guest *g, uint64_t size)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

        *g = (struct test_guest) { .size = size };
        ASSERT(kvm >= 0);
        g->vm = ioctl(kvm, KVM_CREATE_VM, 0);
        ASSERT(g->vm >= 0);
}

void test_guest_new(struct test_guest *g, gmem_client *client, uint64_t size, const gmem_options *options)
{
        test_guest_new_vm(g, size);
        test_guest_attach(g, test_region_create(client, g->vm, size, options));
}

void test_guest_attach(struct test_guest *g, gmem_region *region)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        uint64_t size = g->size;
        int r;

        ASSERT(kvm >= 0);
        g->region = region;
        g->mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, gmem_region_get_fd(g->region), 0);
        ASSERT(g->mem != MAP_FAILED);
        struct kvm_userspace_memory_region2 slot = {
                .flags = KVM_MEM_GUEST_MEMFD,
                .memory_size = size,
                .userspace_addr = (uint64_t) (uintptr_t) g->mem,
                .guest_memfd = (uint32_t) gmem_region_get_fd(g->region),
        };
        ASSERT_OK(ioctl(g->vm, KVM_SET_USER_MEMORY_REGION2, &slot));

        g->vcpu = ioctl(g->vm, KVM_CREATE_VCPU, 0);
        ASSERT(g->vcpu >= 0);
        r = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
        ASSERT(r > 0);
        g->run_size = (size_t) r;
        g->run = mmap(NULL, g->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, g->vcpu, 0);
        ASSERT(g->run != MAP_FAILED);
}

void test_guest_run(struct test_guest *g, const struct kvm_regs *regs)
{
        ASSERT_OK(ioctl(g->vcpu, KVM_SET_REGS, regs));
        ASSERT_OK(ioctl(g->vcpu, KVM_RUN, 0));
        if (g->run->exit_reason != KVM_EXIT_HLT)
                fprintf(stderr, "guest exit %u, not HLT\n", g->run->exit_reason);
        ASSERT(g->run->exit_reason == KVM_EXIT_HLT);
}

void test_guest_done(struct test_guest *g)
{
        ASSERT_OK(gmem_region_release(g->region));
        gmem_region_unref(g->region);
        munmap(g->run, g->run_size);
        munmap(g->mem, g->size);
        safe_close(g->vcpu);
        safe_close(g->vm);
}

void test_vcpu_flat32(int vcpu)
{
        struct kvm_segment code = { .limit = 0xffffffff, .selector = 8, .type = 11, .present = 1, .db = 1, .s = 1, .g = 1 };
        struct kvm_segment data = code;
        struct kvm_sregs s;

        data.type = 3;
        data.selector = 16;
        ASSERT_OK(ioctl(vcpu, KVM_GET_SREGS, &s));
        s.cs = code;
        s.ds = s.es = s.fs = s.gs = s.ss = data;
        s.cr0 |= 1;
        ASSERT_OK(ioctl(vcpu, KVM_SET_SREGS, &s));
}
