/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Thin, checked wrappers around the KVM ioctls the daemon uses. */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>

#include "kvm-uapi.h"
#include "kvm.h"
#include "macro.h"

int kvm_open(void)
{
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

        return fd < 0 ? negative_errno() : fd;
}

int kvm_check_extension(int fd, long cap)
{
        int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

        return r < 0 ? negative_errno() : r;
}

int kvm_create_guest_memfd(int vm_fd, uint64_t size, uint64_t flags)
{
        struct kvm_create_guest_memfd args = {
                .size = size,
                .flags = flags,
        };
        int fd = ioctl(vm_fd, KVM_CREATE_GUEST_MEMFD, &args);

        return fd < 0 ? negative_errno() : fd;
}

int kvm_guest_memfd_info(int gmem_fd, int vm_fd, uint64_t *pages, unsigned n_nodes, struct kvm_guest_memfd_info *ret)
{
        *ret = (struct kvm_guest_memfd_info) {
                .vm_fd = vm_fd,
                .nr_nodes = pages ? n_nodes : 0,
                .pages = (uint64_t) (uintptr_t) pages,
        };
        return ioctl(gmem_fd, KVM_GUEST_MEMFD_GET_INFO, ret) < 0 ? negative_errno() : 0;
}

int kvm_guest_memfd_same_vm(int gmem_fd, int vm_fd)
{
        struct kvm_guest_memfd_info info;
        int r = kvm_guest_memfd_info(gmem_fd, vm_fd, NULL, 0, &info);

        if (r < 0)
                return r;
        return !!(info.flags & KVM_GUEST_MEMFD_INFO_SAME_VM);
}

int kvm_guest_memfd_set_policy(int gmem_fd, uint64_t offset, uint64_t size, int mode, const unsigned long *mask,
                               unsigned long maxnode)
{
        struct kvm_guest_memfd_policy p = {
                .offset = offset,
                .size = size,
                .mode = (uint64_t) mode,
                .nodemask = (uint64_t) (uintptr_t) mask,
                .maxnode = maxnode,
        };

        return ioctl(gmem_fd, KVM_GUEST_MEMFD_SET_POLICY, &p) < 0 ? negative_errno() : 0;
}
