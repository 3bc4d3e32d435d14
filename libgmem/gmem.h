/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libgmem - client library for VMMs that take guest memory from gmemd.
 *
 * A VMM links only this library: it connects to gmemd (system bus or a given
 * D-Bus address), asks for guest_memfd regions placed on host NUMA nodes,
 * and installs the returned fd with KVM_SET_USER_MEMORY_REGION2. No sd-bus
 * knowledge is needed.
 *
 * Conventions, as in libkmod:
 *  - every object is opaque and reference counted (gmem_*_ref() and gmem_*_unref());
 *    *_unref(NULL) is a no-op and returns NULL;
 *  - every call that can fail returns a negative errno (0 or positive on
 *    success); the daemon's named errors map to errno values:
 *      org.gmem1.Error.InvalidArgument  -EINVAL
 *      org.gmem1.Error.NotAVm           -ENOTTY
 *      org.gmem1.Error.NoSpace          -ENOSPC
 *      org.gmem1.Error.QuotaExceeded    -EDQUOT
 *      org.gmem1.Error.PermissionDenied -EACCES
 *      org.gmem1.Error.Unsupported      -EOPNOTSUPP
 *      org.gmem1.Error.NotFound         -ENOENT
 *    and gmem_client_get_error() returns the daemon's message for a person;
 *  - no global state; a client is used from one thread at a time.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gmem_client gmem_client;
typedef struct gmem_region gmem_region;
typedef struct gmem_options gmem_options;

/* --- connection ----------------------------------------------------------- */

/*
 * Connect to gmemd. @address is NULL for the system bus, or a D-Bus address
 * ("unix:path=/run/...") for a private bus. When @address is NULL and the
 * environment variable GMEM_BUS_ADDRESS is set, that address is used (not in
 * a setuid or otherwise secure-execution process: secure_getenv()).
 */
int gmem_client_new(const char *address, gmem_client **ret);
gmem_client *gmem_client_ref(gmem_client *client);
/*
 * The client's bus connection is what keeps its regions alive: gmemd drops
 * every non-persistent region when the connection that created it goes away.
 * Each region holds a reference on its client, so the connection stays open
 * until the client and all its regions are unreferenced (or the process exits).
 */
gmem_client *gmem_client_unref(gmem_client *client);

/* The daemon's message for the last failed call on @client, or NULL. Valid
 * until the next call on @client (a successful call clears it). Failures that
 * libgmem finds itself (a closed vm fd, a kernel without guest_memfd mmap)
 * have a message here but no error name. */
const char *gmem_client_get_error(gmem_client *client);
/* The D-Bus error name of the last failed call (e.g.
 * "org.gmem1.Error.NoSpace"), or NULL. Same lifetime as above. */
const char *gmem_client_get_error_name(gmem_client *client);

/* Daemon version string; caller frees *ret. */
int gmem_client_get_version(gmem_client *client, char **ret);

/* --- region options ------------------------------------------------------- */

/* Placement policies, as the daemon names them. */
typedef enum gmem_policy {
        GMEM_POLICY_DEFAULT,    /* no NUMA policy: the kernel's default */
        GMEM_POLICY_BIND,       /* only the given nodes */
        GMEM_POLICY_PREFERRED,  /* the given node first, others when it is full */
        GMEM_POLICY_INTERLEAVE, /* page-interleaved over the nodes (all if none) */
        GMEM_POLICY_AUTO,       /* the daemon picks the node with most room */
} gmem_policy;

int gmem_options_new(gmem_options **ret);
gmem_options *gmem_options_ref(gmem_options *options);
gmem_options *gmem_options_unref(gmem_options *options);
int gmem_options_set_name(gmem_options *options, const char *name);
int gmem_options_set_policy(gmem_options *options, gmem_policy policy);
/* Copy @n node numbers; replaces any previous set. */
int gmem_options_set_nodes(gmem_options *options, const unsigned *nodes, size_t n);
/* Allocate the whole region on its nodes before returning (default false). */
int gmem_options_set_populate(gmem_options *options, bool populate);
/* With populate: gmemd's populate workers per node, 1 to 64 (gmemd refuses
 * others); 0 (default) leaves it to gmemd's configuration and the CPUs. */
int gmem_options_set_populate_workers(gmem_options *options, unsigned workers);
/* Mappable and shared with the host (MMAP|INIT_SHARED; default true). */
int gmem_options_set_shared(gmem_options *options, bool shared);
/* Outlive this client's connection (default false). */
int gmem_options_set_persist(gmem_options *options, bool persist);
/*
 * Have KVM place the VM's page-table pages on the node of the memory they
 * map (KVM_CAP_NUMA_AWARE_PAGE_TABLES, from the gmem kernel series; default
 * false). gmemd checks the kernel supports it (else -EOPNOTSUPP,
 * org.gmem1.Error.Unsupported); libgmem then enables it on the VM fd, which
 * KVM allows only before the VM's first vCPU exists (else -EINVAL, and the
 * region is released again).
 */
int gmem_options_set_numa_page_tables(gmem_options *options, bool enable);
/*
 * Policy GMEM_POLICY_AUTO: the CPUs the VM's vCPUs will run on, a list such
 * as "0-3,8" (NULL: none, the default). The daemon then chooses those CPUs'
 * nodes, and refuses with -ENOSPC when they lack room, unless spill is set.
 */
int gmem_options_set_cpus(gmem_options *options, const char *cpus);
/* With cpus: may the region spread beyond those CPUs' nodes (default false)? */
int gmem_options_set_spill(gmem_options *options, bool spill);

/* Parse a policy name ("bind", ...); returns the policy or -EINVAL. */
int gmem_policy_from_string(const char *s);
const char *gmem_policy_to_string(gmem_policy policy);

/* --- regions -------------------------------------------------------------- */

/*
 * Ask gmemd for a guest_memfd region of @size bytes (a multiple of the page
 * size) for the VM behind @vm_fd, placed as @options say (NULL: defaults).
 *
 * KVM serves VM ioctls only to the process that created the VM, so this
 * call creates the guest_memfd itself, on @vm_fd, and hands it to gmemd with
 * the VM fd; gmemd validates both, applies placement, populates, accounts
 * and tracks it. On success *ret holds the region; its fd is
 * gmem_region_get_fd().
 *
 * Lifetime: unless gmem_options_set_persist(), the daemon keeps the region
 * only as long as @client's bus connection lives (see gmem_client_unref()).
 * A restart of gmemd does not end it: the daemon takes the region back from
 * systemd's file descriptor store, under the same path, and the handle keeps
 * working.
 * When @vm_fd is not a KVM VM or @size is not a positive multiple of the
 * page size, no guest_memfd is made and the daemon's named error is
 * returned (-ENOTTY, -EINVAL). A kernel whose guest_memfd cannot be mmap()ed
 * gives -EOPNOTSUPP.
 */
int gmem_region_create(gmem_client *client, int vm_fd, uint64_t size,
                       const gmem_options *options, gmem_region **ret);
gmem_region *gmem_region_ref(gmem_region *region);
/* Drops the handle and closes its fd; the daemon keeps the region until
 * gmem_region_release() or, unless persistent, until the client's connection
 * goes away. */
gmem_region *gmem_region_unref(gmem_region *region);

/* The guest_memfd; owned by the region, valid until the last unref. */
int gmem_region_get_fd(gmem_region *region);
uint64_t gmem_region_get_size(gmem_region *region);
/* The region's D-Bus object path. */
const char *gmem_region_get_path(gmem_region *region);

/* Allocate / free [offset, offset + length) of the region on its nodes. */
int gmem_region_populate(gmem_region *region, uint64_t offset, uint64_t length);
int gmem_region_discard(gmem_region *region, uint64_t offset, uint64_t length);
/* Tell the daemon to drop the region now. The fd stays valid until unref. */
int gmem_region_release(gmem_region *region);
/* Bytes resident per node, measured by the daemon. *ret is an array of
 * *n_ret entries; free it with free(). */
typedef struct gmem_node_bytes {
        unsigned node;
        uint64_t bytes;
} gmem_node_bytes;
int gmem_region_get_resident(gmem_region *region, gmem_node_bytes **ret, size_t *n_ret);

/* --- migrations (docs/migration.md) ---------------------------------------- */

/*
 * Serve @region to one destination gmemd (Manager.ExportRegion): gmemd
 * listens on @listen ("tcp:HOST:PORT" or "unix:PATH"; NULL: tcp:0.0.0.0:0)
 * and admits whoever proves it knows @token (NULL: gmemd makes one).
 * *ret_endpoint and *ret_token (to free) are what the destination needs.
 */
int gmem_region_export(gmem_region *region, const char *listen, const char *token, char **ret_endpoint,
                       char **ret_token);

/* Copy everything before returning (any kernel); without it, postcopy. */
#define GMEM_IMPORT_PRECOPY_ONLY (1U << 0)
/* The VMM enabled KVM_GUEST_MEMFD_MISSING_EXIT on its VM: it resolves each
 * KVM_EXIT_MEMORY_FAULT with KVM_MEMORY_EXIT_FLAG_MISSING through
 * gmem_region_resolve_fault(), over a channel made once here. */
#define GMEM_IMPORT_EXIT_MODE (1U << 1)

/*
 * Like gmem_region_create(), but the region's contents come from the source
 * gmemd at @endpoint (Manager.ImportRegion). With postcopy the call returns
 * at once and the VM may run: pages it touches first are fetched first.
 * Postcopy needs the gmem kernel series (-EOPNOTSUPP otherwise); a wrong
 * token is -EKEYREJECTED, a source gone -EHOSTDOWN, corrupted data -EBADMSG.
 */
int gmem_region_import(gmem_client *client, int vm_fd, uint64_t size, const char *endpoint, const char *token,
                       const gmem_options *options, unsigned flags, gmem_region **ret);
/*
 * Exit mode: make the page at @offset (in the guest_memfd) present and
 * return 0 once it is, so that KVM_RUN can be re-entered (also once the
 * migration completed: every page is present). When the migration failed,
 * its error (-EHOSTDOWN: the source is gone, ...), for this and every later
 * call; -EPIPE when gmemd went away. Never a D-Bus call: one write and one
 * read on the fast channel. Only for regions imported with GMEM_IMPORT_EXIT_MODE.
 */
int gmem_region_resolve_fault(gmem_region *region, uint64_t offset);

/* --- listings ------------------------------------------------------------- */

typedef struct gmem_region_info {
        char *path;
        char *name;
        uint64_t size;
        char *policy;
        uint32_t owner_uid;
} gmem_region_info;

/* All regions the daemon holds, newest (highest id) first. The array and its
 * strings are one allocation: free it with gmem_region_info_free(). */
int gmem_client_list_regions(gmem_client *client, gmem_region_info **ret, size_t *n_ret);
/*
 * A page of them (ListRegionsFiltered), in the same order: only those of
 * @owner_uid unless it is negative, only ids below @below_id unless it is 0
 * (the id of a page's last region asks for the next page, stable while
 * regions come and go), the first @offset that match skipped, at most @limit
 * (0: all). -EINVAL for an @owner_uid above 2^32-1.
 */
int gmem_client_list_regions_filtered(gmem_client *client, int64_t owner_uid, uint64_t below_id, uint32_t offset,
                                      uint32_t limit, gmem_region_info **ret, size_t *n_ret);
void gmem_region_info_free(gmem_region_info *infos, size_t n);

typedef struct gmem_node_info {
        unsigned node;
        uint64_t total;  /* bytes */
        uint64_t free;   /* bytes, as the kernel reports them now */
        uint64_t held;   /* bytes resident in gmemd regions */
} gmem_node_info;

/* Host NUMA nodes. Free *ret with free(). */
int gmem_client_get_nodes(gmem_client *client, gmem_node_info **ret, size_t *n_ret);

#ifdef __cplusplus
}
#endif
