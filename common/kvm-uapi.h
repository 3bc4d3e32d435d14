/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The KVM uAPI that gmem needs and that Debian 12's <linux/kvm.h> (6.1) lacks.
 * Each definition is guarded so a newer header wins; tools/check-kvm-uapi
 * compares every value and layout here with the pinned tree's uapi header. */
#pragma once

#include <linux/kvm.h>
#include <linux/types.h>

/* Capabilities (include/uapi/linux/kvm.h). */
#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 231
#endif
#ifndef KVM_CAP_MEMORY_FAULT_INFO
#define KVM_CAP_MEMORY_FAULT_INFO 232
#endif
#ifndef KVM_CAP_MEMORY_ATTRIBUTES
#define KVM_CAP_MEMORY_ATTRIBUTES 233
#endif
#ifndef KVM_CAP_GUEST_MEMFD
#define KVM_CAP_GUEST_MEMFD 234
#endif
#ifndef KVM_CAP_VM_TYPES
#define KVM_CAP_VM_TYPES 235
#endif
#ifndef KVM_CAP_PRE_FAULT_MEMORY
#define KVM_CAP_PRE_FAULT_MEMORY 236
#endif
#ifndef KVM_CAP_GUEST_MEMFD_FLAGS
#define KVM_CAP_GUEST_MEMFD_FLAGS 244
#endif

/* Added by the gmem kernel series (kernel/series). */
#ifndef KVM_CAP_NUMA_AWARE_PAGE_TABLES
#define KVM_CAP_NUMA_AWARE_PAGE_TABLES 252
#endif
#ifndef KVM_CAP_GUEST_MEMFD_MISSING
#define KVM_CAP_GUEST_MEMFD_MISSING 253
#endif

/* guest_memfd creation flags. */
#ifndef GUEST_MEMFD_FLAG_MMAP
#define GUEST_MEMFD_FLAG_MMAP (1ULL << 0)
#endif
#ifndef GUEST_MEMFD_FLAG_INIT_SHARED
#define GUEST_MEMFD_FLAG_INIT_SHARED (1ULL << 1)
#endif

#ifndef KVM_CREATE_GUEST_MEMFD
struct kvm_create_guest_memfd {
        __u64 size;
        __u64 flags;
        __u64 reserved[6];
};
#define KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)
#endif

#ifndef KVM_MEM_GUEST_MEMFD
#define KVM_MEM_GUEST_MEMFD (1UL << 2)
#endif

#ifndef KVM_SET_USER_MEMORY_REGION2
struct kvm_userspace_memory_region2 {
        __u32 slot;
        __u32 flags;
        __u64 guest_phys_addr;
        __u64 memory_size;
        __u64 userspace_addr;
        __u64 guest_memfd_offset;
        __u32 guest_memfd;
        __u32 pad1;
        __u64 pad2[14];
};
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
#endif

#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39
#endif
#ifndef KVM_MEMORY_EXIT_FLAG_PRIVATE
#define KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3)
#endif
#ifndef KVM_MEMORY_EXIT_FLAG_MISSING
#define KVM_MEMORY_EXIT_FLAG_MISSING (1ULL << 4)
#endif

#ifndef KVM_PRE_FAULT_MEMORY
struct kvm_pre_fault_memory {
        __u64 gpa;
        __u64 size;
        __u64 flags;
        __u64 padding[5];
};
#define KVM_PRE_FAULT_MEMORY _IOWR(KVMIO, 0xd5, struct kvm_pre_fault_memory)
#endif

/* Missing-page tracking for guest_memfd (kernel/series, postcopy). */
#ifndef KVM_GMEM_ARM_MISSING
#define KVM_GUEST_MEMFD_MISSING_EXIT (1ULL << 0)
#define KVM_GMEM_MISSING_NONBLOCK (1ULL << 0)
struct kvm_gmem_arm_missing {
        __u64 flags;
        __u64 reserved[7];
};
#define KVM_GMEM_ARM_MISSING _IOW(KVMIO, 0xe0, struct kvm_gmem_arm_missing)
#define KVM_GMEM_DISARM_MISSING _IO(KVMIO, 0xe1)
struct kvm_gmem_fault {
        __u64 offset;
        __u32 flags;
        __u32 source;
};
#define KVM_GMEM_FAULT_WRITE (1U << 0)
#define KVM_GMEM_FAULT_PRIVATE (1U << 1)
#define KVM_GMEM_FAULT_SOURCE_VCPU 0
#define KVM_GMEM_FAULT_SOURCE_USER 1
#define KVM_GMEM_FAULT_SOURCE_KERNEL 2
#define KVM_GMEM_INSTALL_COPY 0
#define KVM_GMEM_INSTALL_ZERO 1
#define KVM_GMEM_INSTALL_PRESENT 2
struct kvm_gmem_install {
        __u64 offset;
        __u64 size;
        __u64 src;
        __u32 mode;
        __u32 flags;
        __u64 installed;
        __u64 reserved[3];
};
#define KVM_GMEM_INSTALL _IOWR(KVMIO, 0xe2, struct kvm_gmem_install)
#endif
