/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The KVM ioctls gmemd issues: capability checks on /dev/kvm and guest_memfd
 * creation. Every function returns a negative errno on failure. */
#pragma once

#include <stdint.h>

int kvm_open(void);
/* KVM_CHECK_EXTENSION on a /dev/kvm or VM fd: the value (>= 0) or -errno. */
int kvm_check_extension(int fd, long cap);
/* KVM_CREATE_GUEST_MEMFD on @vm_fd: a new fd (O_CLOEXEC by KVM) or -errno.
 * Upstream KVM refuses VM ioctls from any process but the VM's creator
 * (-EIO), so this works for gmemd only where the kernel allows it. */
int kvm_create_guest_memfd(int vm_fd, uint64_t size, uint64_t flags);
