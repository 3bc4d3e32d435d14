/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A minimal VM for tests and benchmarks that run guest code: its memory is a
 * gmemd region (slot 0 at GPA 0) made through libgmem, with one vCPU. */
#pragma once

#include <linux/kvm.h>
#include <stdint.h>

#include "gmem.h"

struct test_guest {
        int vm, vcpu;
        struct kvm_run *run;
        size_t run_size;
        gmem_region *region;
        uint8_t *mem; /* the region's guest_memfd, mapped: GPA x is mem[x] */
        uint64_t size;
};

/* gmem_region_create(), asserting it succeeds (printing gmemd's message if not). */
gmem_region *test_region_create(gmem_client *client, int vm, uint64_t size, const gmem_options *options);
/* Create the VM, the region (policy etc. from @options), the memslot and the
 * vCPU; asserts on failure, printing gmemd's message. */
void test_guest_new(struct test_guest *g, gmem_client *client, uint64_t size, const gmem_options *options);
/* The two halves of test_guest_new(), for a region made otherwise
 * (gmem_region_import()): the VM, then the region's memslot and vCPU. */
void test_guest_new_vm(struct test_guest *g, uint64_t size);
void test_guest_attach(struct test_guest *g, gmem_region *region);
/* Run from @regs until the guest halts; asserts it halted. */
void test_guest_run(struct test_guest *g, const struct kvm_regs *regs);
/* 32-bit flat protected mode without paging (segments through KVM_SET_SREGS,
 * no GDT needed): the guest addresses all of its memory directly. */
void test_vcpu_flat32(int vcpu);
/* Release the region and close everything. */
void test_guest_done(struct test_guest *g);
