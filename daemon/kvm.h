/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The KVM ioctls gmemd issues: capability checks on /dev/kvm and guest_memfd
 * creation. Every function returns a negative errno on failure. */
#pragma once

#include <stdint.h>

#include "kvm-uapi.h"

int kvm_open(void);
/* KVM_CHECK_EXTENSION on a /dev/kvm or VM fd: the value (>= 0) or -errno. */
int kvm_check_extension(int fd, long cap);
/* KVM_CREATE_GUEST_MEMFD on @vm_fd: a new fd (O_CLOEXEC by KVM) or -errno.
 * Upstream KVM refuses VM ioctls from any process but the VM's creator
 * (-EIO), so this works for gmemd only where the kernel allows it. */
int kvm_create_guest_memfd(int vm_fd, uint64_t size, uint64_t flags);

/* The gmem kernel series' guest_memfd ioctls (KVM_CAP_GUEST_MEMFD_INFO,
 * KVM_CAP_GUEST_MEMFD_POLICY); -ENOTTY on a kernel without them. */
/* KVM_GUEST_MEMFD_GET_INFO: size, flags, and with @pages, @n_nodes pairs
 * (shared, private) of page counts per node; @vm_fd -1 or a VM to compare. */
int kvm_guest_memfd_info(int gmem_fd, int vm_fd, uint64_t *pages, unsigned n_nodes, struct kvm_guest_memfd_info *ret);
/* 1 if @gmem_fd was created for the VM @vm_fd, 0 if for another, or -errno. */
int kvm_guest_memfd_same_vm(int gmem_fd, int vm_fd);
/* KVM_GUEST_MEMFD_SET_POLICY: mbind() of [offset, offset + size) without a
 * mapping; @mode, @mask and @maxnode as for mbind(). */
int kvm_guest_memfd_set_policy(int gmem_fd, uint64_t offset, uint64_t size, int mode, const unsigned long *mask,
                               unsigned long maxnode);
