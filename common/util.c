/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Size and node-list parsing, byte formatting and fd identification shared by
 * gmemd, gmemctl, libgmem and the tests. Pure code, fuzzed in tests/fuzz. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "macro.h"
#include "util.h"

int parse_u64(const char *s, uint64_t *ret)
{
        unsigned long long v;
        char *end;

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end != '\0')
                return -EINVAL;
        *ret = (uint64_t) v;
        return 0;
}

int parse_uint(const char *s, unsigned *ret)
{
        uint64_t v;
        int r = parse_u64(s, &v);

        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

int parse_size(const char *s, uint64_t *ret)
{
        static const struct {
                const char *suffix;
                unsigned shift;
        } units[] = {
                { "",  0 },  { "B", 0 },
                { "K", 10 }, { "KiB", 10 },
                { "M", 20 }, { "MiB", 20 },
                { "G", 30 }, { "GiB", 30 },
                { "T", 40 }, { "TiB", 40 },
        };
        unsigned long long v;
        char *end;

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                if (!streq(end, units[i].suffix))
                        continue;
                if (units[i].shift && v > (UINT64_MAX >> units[i].shift))
                        return -ERANGE;
                *ret = (uint64_t) v << units[i].shift;
                return 0;
        }
        return -EINVAL;
}

char *format_bytes(char *buf, size_t n, uint64_t bytes)
{
        static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        unsigned i = 0;
        double v = (double) bytes;

        while (v >= 1024.0 && i + 1 < ELEMENTSOF(names)) {
                v /= 1024.0;
                i++;
        }
        if (i == 0)
                snprintf(buf, n, "%" PRIu64 " B", bytes);
        else
                snprintf(buf, n, "%.1f %s", v, names[i]);
        return buf;
}

#define NODE_LIST_LIMIT 1024U

int parse_node_list(const char *s, unsigned **ret, size_t *n_ret)
{
        /* A set, not a list: "0-1023,0-1023,..." must cost neither memory nor
         * time per repetition (the fuzzer found a growing array does both). */
        bool seen[NODE_LIST_LIMIT] = {};
        unsigned *nodes;
        size_t n = 0;
        const char *p = s;

        if (!s || !*s)
                return -EINVAL;
        for (;;) {
                unsigned long first, last;
                char *end;

                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                first = last = strtoul(p, &end, 10);
                if (*end == '-') {
                        p = end + 1;
                        if (!isdigit((unsigned char) *p))
                                return -EINVAL;
                        last = strtoul(p, &end, 10);
                }
                if (first >= NODE_LIST_LIMIT || last >= NODE_LIST_LIMIT || last < first)
                        return -ERANGE;
                for (unsigned long v = first; v <= last; v++) {
                        n += !seen[v];
                        seen[v] = true;
                }
                if (*end == '\0')
                        break;
                if (*end != ',')
                        return -EINVAL;
                p = end + 1;
        }

        nodes = malloc(n * sizeof(*nodes));
        if (!nodes)
                return -ENOMEM;
        n = 0;
        for (unsigned v = 0; v < NODE_LIST_LIMIT; v++)
                if (seen[v])
                        nodes[n++] = v;
        *ret = nodes;
        *n_ret = n;
        return 0;
}

int fd_describe(int fd, char *buf, size_t n)
{
        char path[64];
        ssize_t len;

        if (fd < 0 || n == 0)
                return -EBADF;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        len = readlink(path, buf, n - 1);
        if (len < 0)
                return errno == ENOENT ? -EBADF : negative_errno();
        buf[len] = '\0';
        return 0;
}

/* include/uapi/linux/magic.h; GUEST_MEMFD_MAGIC since guest_memfd has its own filesystem. */
#ifndef ANON_INODE_FS_MAGIC
#define ANON_INODE_FS_MAGIC 0x09041934
#endif
#ifndef GUEST_MEMFD_MAGIC
#define GUEST_MEMFD_MAGIC 0x474d454d
#endif

bool fd_is_kvm_vm(int fd)
{
        char what[128];

        return fd_describe(fd, what, sizeof(what)) >= 0 && streq(what, "anon_inode:kvm-vm");
}

bool fd_is_guest_memfd(int fd)
{
        struct statfs sfs;
        char what[128];

        if (fd_describe(fd, what, sizeof(what)) < 0 || fstatfs(fd, &sfs) < 0)
                return false;
        /* Up to 6.18 an anonymous inode; since guest_memfd got its own
         * pseudo filesystem (7.x) a file "/[kvm-gmem]" that is never linked.
         * A name alone can be faked (a file of that name at the root of a
         * detached tmpfs reads the same), the filesystem cannot. */
        if (sfs.f_type == ANON_INODE_FS_MAGIC)
                return streq(what, "anon_inode:[kvm-gmem]");
        return sfs.f_type == GUEST_MEMFD_MAGIC &&
               (streq(what, "/[kvm-gmem]") || streq(what, "/[kvm-gmem] (deleted)"));
}
