/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of fd_describe(), fd_is_kvm_vm() and fd_is_guest_memfd() on real
 * fds: /dev/null, /dev/kvm, a KVM VM and a guest_memfd made on it. Skips (77)
 * only when /dev/kvm or guest_memfd is truly missing. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvm-uapi.h"
#include "macro.h"
#include "unit.h"
#include "util.h"

static void test_plain_fds(void)
{
        _cleanup_close_ int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        char what[128];
        int closed_fd;

        ASSERT_OK(null_fd);
        ASSERT_OK(fd_describe(null_fd, what, sizeof(what)));
        ASSERT_STREQ(what, "/dev/null");
        ASSERT(!fd_is_kvm_vm(null_fd));
        ASSERT(!fd_is_guest_memfd(null_fd));

        ASSERT_EQ(fd_describe(-1, what, sizeof(what)), -EBADF);
        ASSERT_EQ(fd_describe(null_fd, what, 0), -EBADF);
        ASSERT(!fd_is_kvm_vm(-1));
        ASSERT(!fd_is_guest_memfd(-1));

        /* A number that was an fd a moment ago is no fd now. */
        closed_fd = dup(null_fd);
        ASSERT_OK(closed_fd);
        ASSERT_OK(close(closed_fd));
        ASSERT_EQ(fd_describe(closed_fd, what, sizeof(what)), -EBADF);
        ASSERT(!fd_is_kvm_vm(closed_fd));

        /* Truncation keeps the buffer terminated. */
        ASSERT_OK(fd_describe(null_fd, what, 5));
        ASSERT_STREQ(what, "/dev");
}

/* A file that only looks like a guest_memfd in /proc/self/fd: named
 * "[kvm-gmem]" at the root of a tmpfs, unlinked and the tmpfs detached, it
 * reads "/[kvm-gmem] (deleted)", as a 7.x guest_memfd does. Any user can
 * make one in a user namespace and hand it to gmemd as option 'memfd'. */
static void test_lookalike_guest_memfd(void)
{
        char dir[] = "/tmp/gmem-lookalike-XXXXXX", file[64], what[128];
        pid_t pid;
        int status;

        ASSERT(mkdtemp(dir));
        pid = fork();
        ASSERT_OK(pid);
        if (pid == 0) {
                int fd;

                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                    mount("tmpfs", dir, "tmpfs", 0, "size=4m") < 0)
                        _exit(4);
                snprintf(file, sizeof(file), "%s/[kvm-gmem]", dir);
                fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                if (fd < 0 || ftruncate(fd, 2 << 20) < 0 || unlink(file) < 0 || umount2(dir, MNT_DETACH) < 0)
                        _exit(2);
                if (fd_describe(fd, what, sizeof(what)) < 0 || !streq(what, "/[kvm-gmem] (deleted)")) {
                        fprintf(stderr, "the lookalike reads '%s'\n", what);
                        _exit(3);
                }
                _exit(fd_is_guest_memfd(fd) ? 1 : 0);
        }
        ASSERT(waitpid(pid, &status, 0) == pid);
        ASSERT_OK(rmdir(dir));
        ASSERT(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);
}

int main(void)
{
        _cleanup_close_ int kvm_fd = -1, vm_fd = -1, gmem_fd = -1;
        struct kvm_create_guest_memfd args = { .size = 2 << 20 };
        char what[128];

        test_plain_fds();
        test_lookalike_guest_memfd();

        kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (kvm_fd < 0) {
                fprintf(stderr, "SKIP: cannot open /dev/kvm: %m\n");
                return EXIT_TEST_SKIP;
        }
        /* /dev/kvm itself is neither a VM nor a guest_memfd. */
        ASSERT_OK(fd_describe(kvm_fd, what, sizeof(what)));
        ASSERT_STREQ(what, "/dev/kvm");
        ASSERT(!fd_is_kvm_vm(kvm_fd));
        ASSERT(!fd_is_guest_memfd(kvm_fd));

        vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
        ASSERT_OK(vm_fd);
        ASSERT_OK(fd_describe(vm_fd, what, sizeof(what)));
        ASSERT_STREQ(what, "anon_inode:kvm-vm");
        ASSERT(fd_is_kvm_vm(vm_fd));
        ASSERT(!fd_is_guest_memfd(vm_fd));

        if (ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD) <= 0) {
                fprintf(stderr, "SKIP: this kernel has no KVM_CAP_GUEST_MEMFD\n");
                return EXIT_TEST_SKIP;
        }
        gmem_fd = ioctl(vm_fd, KVM_CREATE_GUEST_MEMFD, &args);
        ASSERT_OK(gmem_fd);
        ASSERT(fd_is_guest_memfd(gmem_fd));
        ASSERT(!fd_is_kvm_vm(gmem_fd));

        /* A duplicate is the same object; a closed one is nothing. */
        int dup_fd = fcntl(gmem_fd, F_DUPFD_CLOEXEC, 3);
        ASSERT_OK(dup_fd);
        ASSERT(fd_is_guest_memfd(dup_fd));
        ASSERT_OK(close(dup_fd));
        ASSERT(!fd_is_guest_memfd(dup_fd));
        return 0;
}
