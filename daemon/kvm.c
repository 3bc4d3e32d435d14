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
