/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CreateRegion: read the request, validate it, decide the placement, build
 * the region, register it and answer once (now, or when populated). Each
 * step answers its own failure with a named error; nothing outlives one. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus-caller.h"
#include "bus-contract.h"
#include "bus-populate.h"
#include "create-region.h"
#include "kvm-uapi.h"
#include "kvm.h"
#include "log.h"
#include "manager.h"
#include "numa-nodes.h"
#include "usage.h"
#include "util.h"

#define NAME_MAX_LEN 64
#define NODES_MAX 1024U /* libnuma's and the kernel's MAX_NUMNODES ceiling */
#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

struct create_request {
        struct manager *manager;
        struct client *caller;
        int vm_fd; /* borrowed from the message */
        uint64_t size;
        char *name;
        enum placement_policy policy;
        unsigned *nodes;
        size_t n_nodes;
        bool populate, shared, persist, numa_page_tables, spill;
        unsigned populate_workers; /* 0: the configured or the CPU-derived default */
        int memfd; /* borrowed from the message; -1 when not given */
        char *cpus;         /* option cpus, as given */
        unsigned *cpu_nodes; /* ...and the nodes of those CPUs */
        size_t n_cpu_nodes;
        const struct create_extra *extra; /* ImportRegion's additions, or NULL */
        unsigned given; /* the options given so far, by index */
};

static void create_request_done(struct create_request *q)
{
        free(q->name);
        free(q->nodes);
        free(q->cpus);
        free(q->cpu_nodes);
}

/* --- reading the request --------------------------------------------------- */

static int read_name(sd_bus_message *msg, struct create_request *q, sd_bus_error *error)
{
        const char *s;
        size_t len;
        int r;

        r = sd_bus_message_read(msg, "s", &s);
        if (r < 0)
                return r;
        len = strlen(s);
        if (len == 0 || len > NAME_MAX_LEN)
                return bus_reply_errno(error, -EINVAL, "option 'name' must be 1 to %d characters long, got %zu",
                                       NAME_MAX_LEN, len);
        if (s[strspn(s, NAME_CHARS)] != '\0')
                return bus_reply_errno(error, -EINVAL,
                                       "option 'name' may only contain letters, digits, '.', '_' and '-'");
        q->name = strdup(s);
        return q->name ? 0 : -ENOMEM;
}

static int read_policy(sd_bus_message *msg, struct create_request *q, sd_bus_error *error)
{
        const char *s;
        int r;

        r = sd_bus_message_read(msg, "s", &s);
        if (r < 0)
                return r;
        r = placement_policy_from_string(s);
        if (r < 0)
                return bus_reply_errno(error, -EINVAL, "unknown policy '%s' (expected default, bind, preferred, "
                                       "interleave or auto)", s);
        q->policy = (enum placement_policy) r;
        return 0;
}

static int read_nodes(sd_bus_message *msg, struct create_request *q, sd_bus_error *error)
{
        const uint32_t *array;
        size_t bytes;
        int r;

        r = sd_bus_message_read_array(msg, 'u', (const void **) &array, &bytes);
        if (r < 0)
                return r;
        q->n_nodes = bytes / sizeof(uint32_t);
        if (q->n_nodes > NODES_MAX)
                return bus_reply_errno(error, -EINVAL, "option 'nodes' lists %zu nodes; at most %u are allowed",
                                       q->n_nodes, NODES_MAX);
        q->nodes = calloc(q->n_nodes ?: 1, sizeof(unsigned));
        if (!q->nodes)
                return -ENOMEM;
        for (size_t i = 0; i < q->n_nodes; i++)
                q->nodes[i] = array[i];
        return 0;
}

/* A CPU list such as "0-3,8", kept with the nodes those CPUs belong to. */
static int read_cpus(sd_bus_message *msg, struct create_request *q, sd_bus_error *error)
{
        char reason[256];
        const char *s;
        int r;

        r = sd_bus_message_read(msg, "s", &s);
        if (r < 0)
                return r;
        r = node_of_cpus(s, &q->cpu_nodes, &q->n_cpu_nodes, reason, sizeof(reason));
        if (r < 0)
                return bus_reply_errno(error, r, "option 'cpus': %s", reason);
        q->cpus = strdup(s);
        return q->cpus ? 0 : -ENOMEM;
}

static int read_flag(sd_bus_message *msg, struct create_request *q, enum gmem_create_option option)
{
        bool *flags[_GMEM_OPTION_MAX] = {
                [GMEM_OPTION_POPULATE] = &q->populate,
                [GMEM_OPTION_SHARED] = &q->shared,
                [GMEM_OPTION_PERSIST] = &q->persist,
                [GMEM_OPTION_NUMA_PAGE_TABLES] = &q->numa_page_tables,
                [GMEM_OPTION_SPILL] = &q->spill,
        };
        int b, r;

        r = sd_bus_message_read(msg, "b", &b);
        if (r >= 0)
                *flags[option] = b;
        return r;
}

static int read_populate_workers(sd_bus_message *msg, struct create_request *q, sd_bus_error *error)
{
        int r = sd_bus_message_read(msg, "u", &q->populate_workers);

        if (r < 0)
                return r;
        if (q->populate_workers < 1 || q->populate_workers > POPULATE_WORKERS_MAX)
                return bus_reply_errno(error, -EINVAL, "option 'populate_workers' is %u; give 1 to %u workers per node",
                                       q->populate_workers, POPULATE_WORKERS_MAX);
        return 0;
}

static int read_option_value(sd_bus_message *msg, struct create_request *q, int option, sd_bus_error *error)
{
        if (option >= _GMEM_OPTION_MAX)
                return q->extra->read_option(msg, (size_t) option - _GMEM_OPTION_MAX, q->extra->userdata, error);
        switch ((enum gmem_create_option) option) {
        case GMEM_OPTION_NAME:
                return read_name(msg, q, error);
        case GMEM_OPTION_POLICY:
                return read_policy(msg, q, error);
        case GMEM_OPTION_NODES:
                return read_nodes(msg, q, error);
        case GMEM_OPTION_MEMFD:
                return sd_bus_message_read(msg, "h", &q->memfd);
        case GMEM_OPTION_CPUS:
                return read_cpus(msg, q, error);
        case GMEM_OPTION_POPULATE_WORKERS:
                return read_populate_workers(msg, q, error);
        default:
                return read_flag(msg, q, (enum gmem_create_option) option);
        }
}

static const char *option_key(const struct create_request *q, int option)
{
        return option < _GMEM_OPTION_MAX ? gmem_create_options[option].key
                                         : q->extra->options[option - _GMEM_OPTION_MAX].key;
}

/* The option called @key for this method (CreateRegion's, less what an extra
 * refuses, and the extra's own), or -EINVAL. */
static int option_from_key(const struct create_request *q, const char *key)
{
        int option = gmem_create_option_from_key(key);

        if (!q->extra)
                return option;
        if (option >= 0)
                return q->extra->refused & (1U << option) ? -EINVAL : option;
        for (size_t i = 0; i < q->extra->n_options; i++)
                if (streq(q->extra->options[i].key, key))
                        return _GMEM_OPTION_MAX + (int) i;
        return -EINVAL;
}

static int refuse_unknown_option(const struct create_request *q, const char *key, sd_bus_error *error)
{
        size_t n = _GMEM_OPTION_MAX + (q->extra ? q->extra->n_options : 0);
        char known[512] = "";

        for (size_t i = 0; i < n; i++) {
                if (i < _GMEM_OPTION_MAX && q->extra && (q->extra->refused & (1U << i)))
                        continue;
                strncat(known, known[0] ? ", " : "", sizeof(known) - strlen(known) - 1);
                strncat(known, option_key(q, (int) i), sizeof(known) - strlen(known) - 1);
        }
        return bus_reply_errno(error, -EINVAL, "unknown option '%s' (known: %s)", key, known);
}

/* One {sv} entry of the options, its key read (bus_read_dict()). */
static int read_option(sd_bus_message *msg, const char *key, void *userdata, sd_bus_error *error)
{
        struct create_request *q = userdata;
        const char *want, *contents;
        char type;
        int option, r;

        option = option_from_key(q, key);
        if (option < 0)
                return refuse_unknown_option(q, key, error);
        if (q->given & (1U << option))
                return bus_reply_errno(error, -EINVAL, "option '%s' is given twice", key);
        q->given |= 1U << option;

        want = option < _GMEM_OPTION_MAX ? gmem_create_options[option].signature
                                         : q->extra->options[option - _GMEM_OPTION_MAX].signature;
        r = sd_bus_message_peek_type(msg, &type, &contents);
        if (r < 0)
                return r;
        if (type != 'v' || !streq(contents, want))
                return bus_reply_errno(error, -EINVAL, "option '%s' must be of type '%s', got '%s'",
                                       key, want, type == 'v' ? contents : "?");
        r = sd_bus_message_enter_container(msg, 'v', want);
        if (r < 0)
                return r;
        r = read_option_value(msg, q, option, error);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

static int read_request(sd_bus_message *msg, struct create_request *q, sd_bus_error *error)
{
        int r;

        r = sd_bus_message_read(msg, "ht", &q->vm_fd, &q->size);
        if (r >= 0 && q->extra && q->extra->read_arguments)
                r = q->extra->read_arguments(msg, q->extra->userdata, error);
        if (r < 0)
                return r;
        return bus_read_dict(msg, read_option, q, error);
}

/* --- validating it ----------------------------------------------------------- */

static int check_quota(const struct create_request *q, sd_bus_error *error)
{
        const struct config *c = &q->manager->config;
        char held[FORMAT_BYTES_MAX], want[FORMAT_BYTES_MAX], limit[FORMAT_BYTES_MAX];
        uid_t uid = q->caller->uid;
        unsigned count;
        uint64_t bytes;

        manager_user_usage(q->manager, uid, &count, &bytes);
        if (c->max_regions_per_user && count >= c->max_regions_per_user)
                return bus_reply_errno(error, -EDQUOT, "uid %u already holds %u regions, the limit per user",
                                       (unsigned) uid, count);
        if (c->max_bytes_per_user && (q->size > c->max_bytes_per_user || bytes > c->max_bytes_per_user - q->size))
                return bus_reply_errno(error, -EDQUOT, "uid %u holds %s; another %s exceeds the limit of %s per user",
                                       (unsigned) uid, format_bytes(held, sizeof(held), bytes),
                                       format_bytes(want, sizeof(want), q->size),
                                       format_bytes(limit, sizeof(limit), c->max_bytes_per_user));
        return 0;
}

static int validate_request(const struct create_request *q, sd_bus_error *error)
{
        uint64_t page = (uint64_t) sysconf(_SC_PAGESIZE);
        char what[128];

        if (!fd_is_kvm_vm(q->vm_fd)) {
                if (fd_describe(q->vm_fd, what, sizeof(what)) < 0)
                        snprintf(what, sizeof(what), "not an open file");
                return bus_reply_errno(error, -ENOTTY, "the vm fd is %s, not a KVM VM (anon_inode:kvm-vm from "
                                       "KVM_CREATE_VM)", what);
        }
        if (q->size == 0)
                return bus_reply_errno(error, -EINVAL, "size 0 is empty; ask for at least one page of %" PRIu64
                                       " bytes", page);
        if (q->size % page)
                return bus_reply_errno(error, -EINVAL, "size %" PRIu64 " is not a multiple of the page size %"
                                       PRIu64, q->size, page);
        if (q->populate_workers && !q->populate)
                return bus_reply_errno(error, -EINVAL, "option 'populate_workers' needs option 'populate' true");
        if (q->numa_page_tables && !q->manager->features.numa_aware_page_tables)
                return bus_reply_errno(error, -EOPNOTSUPP,
                                       "this kernel (%s) cannot place KVM page tables on the node of the memory "
                                       "they map (no KVM_CAP_NUMA_AWARE_PAGE_TABLES; it comes with the gmem "
                                       "kernel series)", q->manager->features.release);
        return check_quota(q, error);
}

static int decide_placement(const struct create_request *q, struct placement *ret, sd_bus_error *error)
{
        _cleanup_free_ struct node_state *nodes = NULL;
        char reason[512];
        size_t n_nodes;
        int r;

        /* O(regions): gmemd's own accounting, never a walk of what they hold. */
        r = usage_node_states(q->manager, &nodes, &n_nodes);
        if (r < 0)
                return bus_reply_errno(error, r, "cannot read the host's NUMA nodes: %m");
        r = placement_decide(&(struct placement_request) {
                                     .policy = q->policy, .nodes = q->nodes, .n_nodes = q->n_nodes,
                                     .size = q->size, .populate = q->populate, .cpus = q->cpus,
                                     .cpu_nodes = q->cpu_nodes, .n_cpu_nodes = q->n_cpu_nodes, .spill = q->spill,
                             }, nodes, n_nodes, ret, reason, sizeof(reason));
        return r < 0 ? bus_reply_errno(error, r, "%s", reason) : 0;
}

/* --- building it --------------------------------------------------------------- */

/* Where the kernel says which VM a guest_memfd belongs to (gmem series), the
 * memfd must belong to the vm it came with. */
static int check_same_vm(const struct create_request *q, sd_bus_error *error)
{
        int r;

        if (!q->manager->features.guest_memfd_info)
                return 0;
        r = kvm_guest_memfd_same_vm(q->memfd, q->vm_fd);
        if (r < 0)
                return bus_reply_errno(error, r, "cannot ask the kernel which VM option 'memfd' belongs to: %m");
        if (r == 0)
                return bus_reply_errno(error, -EINVAL, "the guest_memfd in option 'memfd' belongs to another VM than "
                                       "the vm fd (KVM_GUEST_MEMFD_GET_INFO); pass the VM it was created on");
        return 0;
}

/* A duplicate of the caller's guest_memfd (option memfd), after checking it. */
static int adopt_guest_memfd(const struct create_request *q, sd_bus_error *error)
{
        struct region *held;
        struct stat st;
        char what[128];
        int fd, r;

        if (!fd_is_guest_memfd(q->memfd)) {
                if (fd_describe(q->memfd, what, sizeof(what)) < 0)
                        snprintf(what, sizeof(what), "unreadable");
                return bus_reply_errno(error, -EINVAL, "option 'memfd' is %s, not a guest_memfd", what);
        }
        if (fstat(q->memfd, &st) < 0)
                return bus_reply_errno(error, negative_errno(), "cannot stat option 'memfd': %m");
        held = manager_find_region_by_file(q->manager, &st);
        if (held)
                return bus_reply_errno(error, -EINVAL, "the guest_memfd in option 'memfd' is already region %" PRIu64
                                       "; one guest_memfd makes one region", held->id);
        if ((uint64_t) st.st_size != q->size)
                return bus_reply_errno(error, -EINVAL, "the guest_memfd in option 'memfd' is %" PRIu64 " bytes, but "
                                       "size is %" PRIu64, (uint64_t) st.st_size, q->size);
        r = check_same_vm(q, error);
        if (r < 0)
                return r;
        fd = fcntl(q->memfd, F_DUPFD_CLOEXEC, 3);
        return fd < 0 ? bus_reply_errno(error, negative_errno(), "cannot duplicate option 'memfd': %m") : fd;
}

/* A guest_memfd made here on the caller's VM, where the kernel allows it. */
static int create_guest_memfd(const struct create_request *q, sd_bus_error *error)
{
        const struct kernel_features *f = &q->manager->features;
        uint64_t flags, have = f->guest_memfd_flags;
        int fd;

        /* Private memory is not mapped where the kernel places it unmapped. */
        if (q->shared)
                flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
        else
                flags = f->guest_memfd_policy ? 0 : GUEST_MEMFD_FLAG_MMAP;
        if ((have & flags) != flags)
                return bus_reply_errno(error, -EOPNOTSUPP, "this kernel's guest_memfd lacks flags 0x%" PRIx64
                                       " (it has 0x%" PRIx64 "); gmemd needs GUEST_MEMFD_FLAG_MMAP to place memory",
                                       flags, have);
        fd = kvm_create_guest_memfd(q->vm_fd, q->size, flags);
        if (fd == -EIO)
                return bus_reply_errno(error, -EOPNOTSUPP,
                                       "this kernel lets only the VM's own process create a guest_memfd "
                                       "(KVM_CREATE_GUEST_MEMFD returned EIO); create it in the VMM and pass it in "
                                       "option 'memfd' (libgmem does this)");
        if (fd < 0)
                return bus_reply_errno(error, fd, "KVM_CREATE_GUEST_MEMFD of %" PRIu64 " bytes failed: %m",
                                       q->size);
        return fd;
}

static int build_region(const struct create_request *q, struct placement *placement, struct region **ret,
                        sd_bus_error *error)
{
        _cleanup_(region_freep) struct region *region = NULL;
        _cleanup_free_ char *default_name = NULL;
        uint64_t id = q->manager->next_id;
        int fd, r;

        fd = q->memfd >= 0 ? adopt_guest_memfd(q, error) : create_guest_memfd(q, error);
        if (fd < 0)
                return fd;
        if (!q->name && asprintf(&default_name, "region-%" PRIu64, id) < 0) {
                safe_close(fd);
                return -ENOMEM;
        }
        r = region_new(id, q->name ?: default_name, fd, q->size, q->shared, placement, &region);
        if (r == -ENODEV && q->shared)
                return bus_reply_errno(error, -EINVAL, "the guest_memfd cannot be mapped: it was created without "
                                       "GUEST_MEMFD_FLAG_MMAP, which shared memory needs (give shared=false for "
                                       "private memory)");
        if (r == -ENODEV)
                return bus_reply_errno(error, -EOPNOTSUPP, "the guest_memfd cannot be mapped: it was created without "
                                       "GUEST_MEMFD_FLAG_MMAP, and this kernel (%s) cannot place private memory "
                                       "without a mapping (no KVM_CAP_GUEST_MEMFD_POLICY, from the gmem kernel series)",
                                       q->manager->features.release);
        if (r < 0)
                return bus_reply_errno(error, r, "cannot map and place the region: %m");
        region->persist = q->persist;
        region->owner_uid = q->caller->uid;
        region->owner_pid = q->caller->pid;
        if (!q->persist) {
                region->owner = q->caller;
                region->owner_bus_name = strdup(q->caller->bus_name);
                if (!region->owner_bus_name)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(region);
        return 0;
}

/* --- the method ---------------------------------------------------------------- */

/* Every step up to a registered region, not yet answered. */
static int create_steps(sd_bus_message *msg, struct create_request *q, struct region **ret, sd_bus_error *error)
{
        _cleanup_(placement_done) struct placement placement = {};
        _cleanup_(region_freep) struct region *built = NULL;
        int r;

        r = bus_check_caller(q->manager, msg, &q->caller, error);
        if (r < 0)
                return r;
        if ((r = read_request(msg, q, error)) < 0 ||
            (q->extra && q->extra->validate && (r = q->extra->validate(q->extra->userdata, error)) < 0) ||
            (r = validate_request(q, error)) < 0 ||
            (r = decide_placement(q, &placement, error)) < 0 || (r = build_region(q, &placement, &built, error)) < 0)
                return r;

        *ret = TAKE_PTR(built);
        manager_add_region(q->manager, *ret);
        usage_region_changed(*ret);
        log_info("Created region %" PRIu64 " '%s': %" PRIu64 " bytes, policy %s, uid %u pid %d%s", (*ret)->id,
                 (*ret)->name, (*ret)->size, placement_policy_to_string(q->policy), (unsigned) q->caller->uid,
                 (int) q->caller->pid, q->persist ? ", persistent" : "");
        log_info("Placed region %" PRIu64 ": %s", (*ret)->id, (*ret)->placement.reason);
        return 0;
}

int create_region_steps(sd_bus_message *msg, struct manager *m, const struct create_extra *extra,
                        struct region **ret, sd_bus_error *error)
{
        _cleanup_(create_request_done) struct create_request q = {
                .manager = m, .policy = POLICY_DEFAULT, .shared = true, .memfd = -1, .extra = extra,
        };

        return create_steps(msg, &q, ret, error);
}

int bus_method_create_region(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        struct manager *m = userdata;
        _cleanup_(create_request_done) struct create_request q = {
                .manager = m, .policy = POLICY_DEFAULT, .shared = true, .memfd = -1,
        };
        struct region *region;
        int r;

        r = create_steps(msg, &q, &region, error);
        if (r < 0)
                return r;
        if (!q.populate)
                return bus_reply_created(msg, region);
        /* Listed from now on, its Resident growing; answered once all of it is there. */
        r = bus_populate_async(region, msg, &(struct populate_params) {
                                       .length = region->size, .workers_per_node = q.populate_workers },
                               POPULATE_REPLY_CREATED, error);
        if (r < 0)
                manager_release_region(m, region, "populating it could not start");
        return r;
}
