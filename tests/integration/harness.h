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

#define TEST_FDSTORE_MAX 4096

/* One fd gmemd put into the fd store the harness plays (FDSTORE=1). */
struct test_fdstore_entry {
        int fd;
        char name[256];
};

struct test_env {
        char dir[256];
        char address[320];
        pid_t bus_pid;
        pid_t daemon_pid;
        int daemon_pidfd;
        /* With fd_store: gmemd's NOTIFY_SOCKET stays open, and what it stores. */
        bool fd_store;
        int notify_fd;
        struct test_fdstore_entry store[TEST_FDSTORE_MAX];
        size_t n_store;
        /* How the next start passes the store: as systemd does, without
         * $LISTEN_FDNAMES, or with $LISTEN_PID naming another process. */
        enum { TEST_LISTEN_NORMAL, TEST_LISTEN_NO_NAMES, TEST_LISTEN_OTHER_PID } listen;
        unsigned fdstore_max;
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
        /* Play systemd's fd store as the service manager does: keep gmemd's
         * NOTIFY_SOCKET, keep the fds it sends with FDSTORE=1 under their
         * FDNAME, drop them on FDSTOREREMOVE=1, and pass them to a restarted
         * gmemd with $LISTEN_FDS, $LISTEN_FDNAMES and $LISTEN_PID. */
        bool fd_store;
        /* With fd_store: pass $FDSTORE, the store's size, as systemd 254 does. */
        unsigned fdstore_max;
};

/* Both return 0 or a negative errno, printing why on stderr. */
int test_env_start(struct test_env *e, const struct test_env_options *o);
/* SIGTERM gmemd and the bus; fails if gmemd had died or did not exit 0. */
int test_env_stop(struct test_env *e);
bool test_env_daemon_alive(struct test_env *e);
/* With fd_store: take in every message gmemd has sent so far. */
int test_env_fdstore_sync(struct test_env *e);
/* With fd_store: stop gmemd with @sig (SIGTERM: it must exit 0; SIGKILL),
 * then start it again with the fd store's contents, until READY=1. */
int test_env_restart_daemon(struct test_env *e, int sig);
/* Stop gmemd alone with @sig and check how it ended (SIGTERM: exit 0;
 * SIGKILL: killed); fails if it had died before. The bus stays, so what gmemd
 * sent on its way out can still be read; with fd_store, what it stored is
 * taken in. With test_env_start_daemon_again(), the two halves of a restart,
 * for what a test does while gmemd is down. */
int test_env_stop_daemon(struct test_env *e, int sig);
int test_env_start_daemon_again(struct test_env *e);
/* The metadata text stored under @fdname (the fd that is not a guest_memfd). */
int test_env_fdstore_metadata(struct test_env *e, const char *fdname, char *buf, size_t size);
/* Open fds of gmemd (but for those libsystemd opens and closes by itself: the
 * timerfds and the boot id of sd-event), and its mappings of guest_memfds, to
 * prove nothing leaked. */
int test_env_daemon_fds(struct test_env *e);
/* The same count, each fd listed on @f with what it is. */
int test_env_show_daemon_fds(struct test_env *e, FILE *f);
int test_env_daemon_mappings(struct test_env *e);

/* A KVM binary statistic of the VM behind @vm_fd (KVM_GET_STATS_FD), by name;
 * -ENOENT if this kernel has no such stat. */
int test_kvm_vm_stat(int vm_fd, const char *name, uint64_t *ret);

/* Secondary page tables (KVM's, all VMs) on @node, in pages: SecPageTables of
 * /sys/devices/system/node/nodeN/meminfo, after folding the per-CPU counter
 * deltas through /proc/sys/vm/stat_refresh (root only), so that a few dozen
 * pages are not lost in them. */
int test_node_sec_page_tables(unsigned node, uint64_t *ret);
