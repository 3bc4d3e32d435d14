/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Raw sd-bus client helpers shared by the bus tests (test-bus-*.c): every
 * helper asserts, so a test reads as the contract it checks. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "harness.h"

#define MIB (1024ULL * 1024ULL)

/* One CreateRegion option. */
struct opt {
        const char *key;
        const char *sig; /* "s", "b", "au", "h", "t" */
        const char *s;
        int b;
        int h;
        const uint32_t *au;
        size_t n_au;
};

/* Line-buffered output and gmemd's error names, once per test program. */
void bus_tests_init(void);
/* A private bus with gmemd (test_env_start), and a connection to it. */
sd_bus *bus_test_start(struct test_env *e, const struct test_env_options *o);
sd_bus *bus_connect(const char *address);
int make_vm(void);
/* A host-mappable, initially shared guest_memfd on @vm... */
int make_gmem(int vm, uint64_t size);
/* ...or one with the given GUEST_MEMFD_FLAG_*. */
int make_gmem_flags(int vm, uint64_t size, uint64_t flags);

/* CreateRegion; returns 0 with *path set, or the negative errno of the
 * error, whose name is left in *error. */
int create(sd_bus *bus, int vm, uint64_t size, const struct opt *opts, size_t n, sd_bus_error *error, char **path);
unsigned count_regions(sd_bus *bus);
void region_release(sd_bus *bus, const char *path);
/* Bytes of the region resident on @node, from its Resident property. */
uint64_t resident_on(sd_bus *bus, const char *path, unsigned node);
/* ...on all nodes together. */
uint64_t resident_total(sd_bus *bus, const char *path);
/* Wait until the region's Resident adds up to @want bytes: regions larger
 * than gmemd measures on its event loop (64 MiB) are measured on its
 * refresher thread, which announces new numbers with PropertiesChanged. */
void resident_settles(sd_bus *bus, const char *path, uint64_t want, unsigned seconds);
/* ...until the sum is within [min, max]; returns it. */
uint64_t resident_settles_within(sd_bus *bus, const char *path, uint64_t min, uint64_t max, unsigned seconds);
char *region_property_string(sd_bus *bus, const char *path, const char *property);
size_t region_nodes(sd_bus *bus, const char *path, uint32_t *nodes, size_t max);
/* The first ListRegions row @match accepts: true, with its path and policy
 * in *ret_path and *ret_policy unless NULL (to free); false if none. */
bool region_listed_find(sd_bus *bus, bool (*match)(const char *path, uint32_t uid, const void *arg),
                        const void *arg, char **ret_path, char **ret_policy);
/* The policy ListRegions shows for @path, NULL when it is not listed. */
char *region_listed_policy(sd_bus *bus, const char *path);

struct host_node {
        uint32_t node;
        uint64_t total, free, held;
};
/* GetNodes. */
size_t host_nodes(sd_bus *bus, struct host_node *nodes, size_t max);

/* The call failed with error @name and, unless @says is NULL, a message
 * containing @says. The name alone cannot tell gmemd's own check from the
 * kernel's EINVAL further down; the message can. Frees @error. */
void expect_error_says(int r, sd_bus_error *error, const char *name, const char *says, const char *what);
void expect_error(int r, sd_bus_error *error, const char *name, const char *what);
/* No region at @path: Release, Properties.Get and GetAll, and Introspect are
 * all org.gmem1.Error.NotFound. */
void expect_region_not_found(sd_bus *bus, const char *path);
/* CreateRegion fails so, the daemon lives on, and no region is left behind. */
void expect_create_error_says(struct test_env *e, sd_bus *bus, int vm, uint64_t size, const struct opt *opts,
                              size_t n, const char *name, const char *says, const char *what);
void expect_create_error(struct test_env *e, sd_bus *bus, int vm, uint64_t size, const struct opt *opts, size_t n,
                         const char *name, const char *what);

/* Dispatch bus messages until @done says so; a test failure after @seconds. */
void process_until(sd_bus *bus, bool (*done)(const void *userdata), const void *userdata, unsigned seconds);

/* An asynchronous call: its reply, and when it came relative to the other
 * replies of this process (1, 2, ...). Concurrency is proven by that order,
 * never by timing. */
struct pending_call {
        bool done;
        unsigned order;
        char *error_name;
};
void call_async(sd_bus *bus, struct pending_call *c, const char *path, const char *interface, const char *member,
                const char *types, ...);
int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
bool reply_arrived(const void *userdata);
void wait_reply(sd_bus *bus, struct pending_call *c);
void pending_call_done(struct pending_call *c);

/* How often a Manager signal (RegionAdded, RegionRemoved) came, and its last path. */
struct signal_count {
        unsigned count;
        char *last;
        sd_bus_slot *slot;
};
/* Count @member from now on (not what gmemd sent before this call);
 * signal_count_done() stops it. */
void signal_count_watch(sd_bus *bus, struct signal_count *s, const char *member);
void signal_count_wait(sd_bus *bus, const struct signal_count *s, unsigned want);
void signal_count_done(struct signal_count *s);

/* Run @fn(@arg) in a child as @uid/@gid with one supplementary group;
 * returns its exit status. */
int as_user(uid_t uid, gid_t gid, gid_t supplementary, int (*fn)(const void *arg), const void *arg);

/* A call made by try_call() on a fresh connection; its exit-status answer. */
enum {
        CALL_OK = 0,
        CALL_PERMISSION_DENIED = 10, /* gmemd's own check */
        CALL_ACCESS_DENIED = 11,     /* the bus policy */
        CALL_OTHER_ERROR = 12,
};
struct try_call {
        const char *address, *path, *interface, *member;
        bool range; /* append (offset, length) */
        uint64_t offset, length;
        const char *property, *property_type; /* read a Region property instead */
};
int try_call(const struct try_call *c);
/* try_call() for as_user(). */
int try_call_fn(const void *arg);

/* What gmemd holds (fds, guest_memfd mappings) once it has answered a call... */
struct holdings {
        int fds, maps;
};
struct holdings daemon_holdings(struct test_env *e, sd_bus *bus);
/* ...and that it holds the same again: nothing leaked. */
void expect_same_holdings(struct test_env *e, sd_bus *bus, const struct holdings *before);
