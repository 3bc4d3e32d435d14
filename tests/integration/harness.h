/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Integration-test environment: a private dbus-daemon with the project's bus
 * policy and the real gmemd on it, started and stopped without sleeps. */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

/* ASSERT() and ASSERT_OK(), shared with the unit tests. */
#include "../unit/unit.h"

struct test_env {
        char dir[256];
        char address[320];
        pid_t bus_pid;
        pid_t daemon_pid;
        int daemon_pidfd;
};

struct test_env_options {
        /* JSON text for gmemd --config; NULL for the test default, which
         * allows group 65534 so unprivileged-uid checks reach the daemon. */
        const char *daemon_config;
        /* Add a test-only bus rule that lets every uid send to org.gmem1, so
         * the daemon's own credential check is what is tested. */
        bool open_policy;
        /* Do not start gmemd (only the bus). */
        bool no_daemon;
};

/* Both return 0 or a negative errno, printing why on stderr. */
int test_env_start(struct test_env *e, const struct test_env_options *o);
/* SIGTERM gmemd and the bus; fails if gmemd had died or did not exit 0. */
int test_env_stop(struct test_env *e);
bool test_env_daemon_alive(struct test_env *e);
/* Open fds of gmemd, and its mappings of guest_memfds, to prove nothing leaked. */
int test_env_daemon_fds(struct test_env *e);
int test_env_daemon_mappings(struct test_env *e);

/* A KVM binary statistic of the VM behind @vm_fd (KVM_GET_STATS_FD), by name;
 * -ENOENT if this kernel has no such stat. */
int test_kvm_vm_stat(int vm_fd, const char *name, uint64_t *ret);

/* Secondary page tables (KVM's, all VMs) on @node, in pages: SecPageTables of
 * /sys/devices/system/node/nodeN/meminfo, after folding the per-CPU counter
 * deltas through /proc/sys/vm/stat_refresh (root only), so that a few dozen
 * pages are not lost in them. */
int test_node_sec_page_tables(unsigned node, uint64_t *ret);
