/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pure helpers shared by every gmem program: size parsing and formatting,
 * string comparison, and telling what kind of kernel object an fd is. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline bool streq(const char *a, const char *b)
{
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

/* "4096", "64K", "2M", "1G", "1GiB", "3T": binary units. -EINVAL on
 * malformed input, -ERANGE when the value does not fit 64 bits. */
int parse_size(const char *s, uint64_t *ret);

/* "1.5 GiB"; always NUL-terminates @buf. Returns @buf. */
#define FORMAT_BYTES_MAX 32
char *format_bytes(char *buf, size_t n, uint64_t bytes);

/* Unsigned decimal with no sign, space or trailing garbage. */
int parse_uint(const char *s, unsigned *ret);
/* ...up to 2^64-1. */
int parse_u64(const char *s, uint64_t *ret);

/* Parse a node list such as "0", "0,2", "0-3", "0-1,4". Nodes must be
 * < 1024. *ret is a malloc()ed array sorted ascending without duplicates. */
int parse_node_list(const char *s, unsigned **ret, size_t *n_ret);

/* What an fd refers to, as /proc/self/fd shows it: for KVM objects an
 * anonymous inode name such as "anon_inode:kvm-vm". */
int fd_describe(int fd, char *buf, size_t n);
bool fd_is_kvm_vm(int fd);
bool fd_is_guest_memfd(int fd);
