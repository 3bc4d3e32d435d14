/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemctl's shared pieces: parsed arguments, the verbs, and the helpers for
 * bus access, errors and output (human tables or --json) they use. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "bus-contract.h"
#include "gmem.h"
#include "log.h"
#include "macro.h"


/* Arguments, validated by gmemctl.c before any verb runs: a verb's own
 * failures are runtime failures (exit status 1), never usage errors. */
struct args {
        const char *bus; /* system, session, an address, or NULL: $GMEM_BUS_ADDRESS or system */
        bool json;
        bool legend;
        /* create */
        uint64_t size;
        const char *name;
        int policy; /* gmem_policy, or -1 when not given */
        unsigned *nodes;
        size_t n_nodes;
        bool populate;
        bool private_memory;
        bool persist;
        bool numa_page_tables;
        const char *cpus; /* auto: the VM's CPUs, "0-3,8" */
        bool spill;
        bool hold;
        /* list --uid/--offset/--limit/--below: ListRegionsFiltered */
        bool filtered;
        int64_t owner_uid; /* -1: any */
        unsigned list_offset, list_limit; /* limit 0: all */
        uint64_t below_id;                /* 0: none */
        /* show, release, populate, export */
        const char *region;
        /* status --watch[=SECONDS] [--count=N]: 0 = once */
        uint64_t watch_usec;
        unsigned watch_count;
        /* populate */
        bool have_range;
        uint64_t offset, length;
        unsigned workers; /* 0: gmemd's default */
        /* export, import */
        const char *listen, *endpoint, *token;
        bool precopy_only, wait;
};

int verb_status(const struct args *a);
int verb_list(const struct args *a);
int verb_show(const struct args *a);
int verb_create(const struct args *a);
int verb_release(const struct args *a);
int verb_usage(const struct args *a);
int verb_metrics(const struct args *a);
int verb_populate(const struct args *a);

int verb_migrations(const struct args *a);
int verb_export(const struct args *a);
int verb_import(const struct args *a);

/* verbs-region.c for import: a VM of gmemctl's own, the region options of
 * the command line, and the end of a region made here (released unless
 * --persist). */
int scratch_vm(int *ret_kvm, int *ret_vm);
int make_options(const struct args *a, gmem_options **ret);
int finish_created(const struct args *a, gmem_client *client, gmem_region *region, uint64_t id, int r);

/* --- errors: log.h prints "gmemctl: ..." to stderr ------------------------- */
/* The daemon's message and error name when @error is set, else @what and r. */
int log_bus_error(const sd_bus_error *error, int r, const char *what);

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(gmem_client *, gmem_client_unref);
DEFINE_TRIVIAL_CLEANUP_FUNC(gmem_options *, gmem_options_unref);
DEFINE_TRIVIAL_CLEANUP_FUNC(gmem_region *, gmem_region_unref);

/* --- bus ------------------------------------------------------------------- */
/* The D-Bus address --bus (or its absence) stands for; caller frees. */
int bus_address(const char *bus_arg, char **ret);
int bus_connect(const char *bus_arg, sd_bus **ret);

/* libgmem for what it does: a client on the bus --bus names. */
int client_connect(const char *bus_arg, gmem_client **ret);
/* libgmem's message and error name for the last failure, else @what and r. */
int log_client_error(gmem_client *client, int r, const char *what);
uint64_t region_info_id(const gmem_region_info *info);
/* The daemon's regions, sorted by id. */
int list_regions(gmem_client *client, gmem_region_info **ret, size_t *n_ret);
int list_regions_page(gmem_client *client, const struct args *a, gmem_region_info **ret, size_t *n_ret);
/* Find REGION (an id, a name or an object path) among the daemon's regions. */
int region_resolve(gmem_client *client, const char *spec, char **ret_path);

struct region_props;
/* REGION of the command line: its path and properties, and a bus connection
 * for what libgmem does not do. */
int open_region(const struct args *a, sd_bus **ret_bus, char **ret_path, struct region_props *ret);

struct region_props {
        char *name;
        uint64_t size;
        char *policy;
        uint32_t *nodes;
        size_t n_nodes;
        uint32_t owner_uid;
        uint32_t owner_pid;
        struct { uint32_t node; uint64_t bytes; } *resident;
        size_t n_resident;
        char *placement_reason; /* NULL from a gmemd without PlacementReason */
};
void region_props_done(struct region_props *p);
int region_props_get(sd_bus *bus, const char *path, struct region_props *ret);

/* Call a Manager method without arguments; its answer as JSON (bus_read_json). */
int manager_call_json(sd_bus *bus, const char *method, json_object **ret);
/* A numeric fact (GetNodeFacts key) of one [node, {facts}] entry; 0 when absent. */
uint64_t node_fact(json_object *node_entry, const char *key);

/* Read the next complete value of any type from @m as JSON: dicts with
 * basic keys become objects, other arrays and structs become arrays. */
int bus_read_json(sd_bus_message *m, json_object **ret);

/* --- output ---------------------------------------------------------------- */
int json_print(json_object *o);
/* Set @key on @o, taking @value; -ENOMEM when either fails. */
int json_add(json_object *o, const char *key, json_object *value);
json_object *region_props_to_json(const char *path, const struct region_props *p, bool full);
/* Human one-liners: "0,1" or "-"; "64.0 MiB on node 0, ..." or "nothing". */
char *format_nodes(const uint32_t *nodes, size_t n);
char *format_resident(const struct region_props *p);
char *format_owner(uint32_t uid);

struct table;
int table_new(size_t n_columns, const char *const *headers, struct table **ret);
struct table *table_free(struct table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct table *, table_free);
/* Add one cell; rows fill left to right. Copies @s. */
int table_add(struct table *t, const char *s);
int table_add_u64(struct table *t, uint64_t v);
int table_print(const struct table *t, bool legend);
