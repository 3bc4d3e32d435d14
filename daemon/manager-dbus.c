/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.gmem1.Manager on /org/gmem1: creating regions, listing regions and
 * nodes, and the daemon-wide properties. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmem-config.h"
#include "kvm-uapi.h"
#include "kvm.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "numa-nodes.h"
#include "util.h"

#define NAME_MAX_LEN 64
#define NODES_MAX 1024U /* libnuma's and the kernel's MAX_NUMNODES ceiling */

struct create_options {
        char *name;
        int policy;
        unsigned *nodes;
        size_t n_nodes;
        bool populate;
        bool shared;
        bool persist;
        bool numa_page_tables;
        int memfd; /* borrowed from the message */
};

static void create_options_done(struct create_options *o)
{
        free(o->name);
        free(o->nodes);
}

static const struct option_type {
        const char *key;
        const char *signature;
} option_types[] = {
        { "name", "s" },     { "policy", "s" }, { "nodes", "au" },   { "populate", "b" },
        { "shared", "b" },   { "persist", "b" }, { "memfd", "h" },    { "numa_page_tables", "b" },
};

static const char *option_signature(const char *key)
{
        for (size_t i = 0; i < ELEMENTSOF(option_types); i++)
                if (streq(key, option_types[i].key))
                        return option_types[i].signature;
        return NULL;
}

static int validate_name(const char *name, sd_bus_error *error)
{
        size_t len = strlen(name);

        if (len == 0 || len > NAME_MAX_LEN)
                return bus_reply_errno(error, -EINVAL, "option 'name' must be 1 to %d characters long, got %zu",
                                       NAME_MAX_LEN, len);
        for (const char *p = name; *p; p++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p))
                        return bus_reply_errno(error, -EINVAL,
                                               "option 'name' may only contain letters, digits, '.', '_' and '-'");
        return 0;
}

static int read_option_value(sd_bus_message *msg, const char *key, struct create_options *o, sd_bus_error *error)
{
        const char *s;
        const void *array;
        size_t bytes;
        int b, r;

        if (streq(key, "name") || streq(key, "policy")) {
                r = sd_bus_message_read(msg, "s", &s);
                if (r < 0)
                        return r;
                if (streq(key, "policy")) {
                        o->policy = placement_policy_from_string(s);
                        if (o->policy < 0)
                                return bus_reply_errno(error, -EINVAL,
                                                       "unknown policy '%s' (expected default, bind, preferred, interleave or auto)", s);
                        return 0;
                }
                r = validate_name(s, error);
                if (r < 0)
                        return r;
                free(o->name);
                o->name = strdup(s);
                return o->name ? 0 : -ENOMEM;
        }
        if (streq(key, "nodes")) {
                r = sd_bus_message_read_array(msg, 'u', &array, &bytes);
                if (r < 0)
                        return r;
                if (bytes / sizeof(uint32_t) > NODES_MAX)
                        return bus_reply_errno(error, -EINVAL, "option 'nodes' lists %zu nodes; at most %u are allowed",
                                               bytes / sizeof(uint32_t), NODES_MAX);
                free(o->nodes);
                o->n_nodes = bytes / sizeof(uint32_t);
                o->nodes = calloc(o->n_nodes ? o->n_nodes : 1, sizeof(unsigned));
                if (!o->nodes)
                        return -ENOMEM;
                for (size_t i = 0; i < o->n_nodes; i++)
                        o->nodes[i] = ((const uint32_t *) array)[i];
                return 0;
        }
        if (streq(key, "memfd"))
                return sd_bus_message_read(msg, "h", &o->memfd);

        r = sd_bus_message_read(msg, "b", &b);
        if (r < 0)
                return r;
        if (streq(key, "populate"))
                o->populate = b;
        else if (streq(key, "shared"))
                o->shared = b;
        else if (streq(key, "numa_page_tables"))
                o->numa_page_tables = b;
        else
                o->persist = b;
        return 0;
}

static int parse_create_options(sd_bus_message *msg, struct create_options *o, sd_bus_error *error)
{
        unsigned seen = 0;
        int r;

        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const char *key, *want, *contents;
                char type;
                size_t i;

                r = sd_bus_message_read(msg, "s", &key);
                if (r < 0)
                        return r;
                want = option_signature(key);
                if (!want)
                        return bus_reply_errno(error, -EINVAL,
                                               "unknown option '%s' (known: name, policy, nodes, populate, shared, persist, memfd, "
                                               "numa_page_tables)", key);
                for (i = 0; !streq(option_types[i].key, key); i++)
                        ;
                if (seen & (1U << i))
                        return bus_reply_errno(error, -EINVAL, "option '%s' is given twice", key);
                seen |= 1U << i;

                r = sd_bus_message_peek_type(msg, &type, &contents);
                if (r < 0)
                        return r;
                if (type != 'v' || !streq(contents, want))
                        return bus_reply_errno(error, -EINVAL, "option '%s' must be of type '%s', got '%s'",
                                               key, want, type == 'v' ? contents : "?");
                r = sd_bus_message_enter_container(msg, 'v', want);
                if (r < 0)
                        return r;
                r = read_option_value(msg, key, o, error);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

static int check_quota(struct manager *m, uid_t uid, uint64_t size, sd_bus_error *error)
{
        uint64_t bytes = 0;
        unsigned count = 0;
        char held[FORMAT_BYTES_MAX], want[FORMAT_BYTES_MAX], limit[FORMAT_BYTES_MAX];

        for (struct region *r = m->regions; r; r = r->next)
                if (r->owner_uid == uid) {
                        bytes += r->size;
                        count++;
                }
        if (m->config.max_regions_per_user && count >= m->config.max_regions_per_user)
                return bus_reply_errno(error, -EDQUOT, "uid %u already holds %u regions, the limit per user",
                                       (unsigned) uid, count);
        if (m->config.max_bytes_per_user && (size > m->config.max_bytes_per_user ||
                                             bytes > m->config.max_bytes_per_user - size))
                return bus_reply_errno(error, -EDQUOT, "uid %u holds %s; another %s exceeds the limit of %s per user",
                                       (unsigned) uid, format_bytes(held, sizeof(held), bytes),
                                       format_bytes(want, sizeof(want), size),
                                       format_bytes(limit, sizeof(limit), m->config.max_bytes_per_user));
        return 0;
}

/* The guest_memfd for a new region: the caller's (option memfd) or one made
 * here on the caller's VM. Returns a new fd owned by the caller of this. */
static int obtain_guest_memfd(struct manager *m, int vm_fd, const struct create_options *o, uint64_t size,
                              sd_bus_error *error)
{
        uint64_t flags = GUEST_MEMFD_FLAG_MMAP | (o->shared ? GUEST_MEMFD_FLAG_INIT_SHARED : 0);
        struct stat st;
        char what[128];
        int fd;

        if (o->memfd >= 0) {
                if (!fd_is_guest_memfd(o->memfd)) {
                        if (fd_describe(o->memfd, what, sizeof(what)) < 0)
                                snprintf(what, sizeof(what), "unreadable");
                        return bus_reply_errno(error, -EINVAL, "option 'memfd' is %s, not a guest_memfd", what);
                }
                if (fstat(o->memfd, &st) < 0)
                        return bus_reply_errno(error, -errno, "cannot stat option 'memfd': %m");
                if ((uint64_t) st.st_size != size)
                        return bus_reply_errno(error, -EINVAL, "the guest_memfd in option 'memfd' is %" PRIu64
                                               " bytes, but size is %" PRIu64, (uint64_t) st.st_size, size);
                fd = fcntl(o->memfd, F_DUPFD_CLOEXEC, 3);
                return fd < 0 ? bus_reply_errno(error, -errno, "cannot duplicate option 'memfd': %m") : fd;
        }

        if ((m->features.guest_memfd_flags & flags) != flags)
                return bus_reply_errno(error, -EOPNOTSUPP,
                                       "this kernel's guest_memfd lacks flags 0x%" PRIx64 " (it has 0x%" PRIx64
                                       "); gmemd needs GUEST_MEMFD_FLAG_MMAP to place memory",
                                       flags, m->features.guest_memfd_flags);
        fd = kvm_create_guest_memfd(vm_fd, size, flags);
        if (fd == -EIO)
                return bus_reply_errno(error, -EOPNOTSUPP,
                                       "this kernel lets only the VM's own process create a guest_memfd "
                                       "(KVM_CREATE_GUEST_MEMFD returned EIO); create it in the VMM and pass it in "
                                       "option 'memfd' (libgmem does this)");
        if (fd < 0)
                return bus_reply_errno(error, fd, "KVM_CREATE_GUEST_MEMFD of %" PRIu64 " bytes failed: %s",
                                       size, strerror(-fd));
        return fd;
}

static int method_create_region(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        struct manager *m = userdata;
        struct create_options o = { .policy = POLICY_DEFAULT, .shared = true, .memfd = -1 };
        _cleanup_free_ struct node_state *nodes = NULL;
        _cleanup_free_ char *path = NULL, *default_name = NULL;
        struct placement placement = {};
        struct region *region = NULL;
        struct client *caller;
        char what[128], reason[512];
        uint64_t size, page = (uint64_t) sysconf(_SC_PAGESIZE);
        size_t n_nodes;
        int vm_fd, fd, r;

        r = bus_check_caller(m, msg, &caller, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "ht", &vm_fd, &size);
        if (r < 0)
                return r;
        r = parse_create_options(msg, &o, error);
        if (r < 0)
                goto out;

        if (!fd_is_kvm_vm(vm_fd)) {
                if (fd_describe(vm_fd, what, sizeof(what)) < 0)
                        snprintf(what, sizeof(what), "not an open file");
                r = bus_reply_errno(error, -ENOTTY, "the vm fd is %s, not a KVM VM (anon_inode:kvm-vm from KVM_CREATE_VM)", what);
                goto out;
        }
        if (size == 0 || size % page) {
                r = bus_reply_errno(error, -EINVAL, size ? "size %" PRIu64 " is not a multiple of the page size %" PRIu64
                                                         : "size %" PRIu64 " is empty; ask for at least one page of %" PRIu64 " bytes",
                                    size, page);
                goto out;
        }
        if (o.numa_page_tables && !m->features.numa_aware_page_tables) {
                r = bus_reply_errno(error, -EOPNOTSUPP,
                                    "this kernel (%s) cannot place KVM page tables on the node of the memory they map "
                                    "(no KVM_CAP_NUMA_AWARE_PAGE_TABLES; it comes with the gmem kernel series)",
                                    m->features.release);
                goto out;
        }
        r = check_quota(m, caller->uid, size, error);
        if (r < 0)
                goto out;

        /* Free room only matters when populating now or choosing a node. */
        r = manager_node_states(m, o.populate || o.policy == POLICY_AUTO, &nodes, &n_nodes);
        if (r < 0)
                goto out;
        r = placement_decide(&(struct placement_request) {
                                     .policy = o.policy, .nodes = o.nodes, .n_nodes = o.n_nodes,
                                     .size = size, .populate = o.populate,
                             }, nodes, n_nodes, &placement, reason, sizeof(reason));
        if (r < 0) {
                r = bus_reply_errno(error, r, "%s", reason);
                goto out;
        }

        fd = obtain_guest_memfd(m, vm_fd, &o, size, error);
        if (fd < 0) {
                r = fd;
                goto out;
        }
        if (!o.name && asprintf(&default_name, "region-%" PRIu64, m->next_id) < 0) {
                safe_close(fd);
                r = -ENOMEM;
                goto out;
        }
        r = region_new(m->next_id, o.name ?: default_name, fd, size, o.shared, &placement, &region);
        if (r == -ENODEV) {
                r = bus_reply_errno(error, -EINVAL, "the guest_memfd cannot be mapped: it was created without "
                                    "GUEST_MEMFD_FLAG_MMAP, which gmemd needs to place it");
                goto out;
        }
        if (r < 0) {
                r = bus_reply_errno(error, r, "cannot map and place the region: %s", strerror(-r));
                goto out;
        }
        region->persist = o.persist;
        region->owner_uid = caller->uid;
        region->owner_pid = caller->pid;

        if (!o.persist)
                region->owner_client = caller;
        r = region_object_path(region, &path);
        if (r < 0)
                goto out;

        m->next_id++;
        manager_add_region(m, TAKE_PTR(region));
        log_info("Created region %s '%s': %" PRIu64 " bytes, policy %s, uid %u pid %d%s", path,
                 m->regions->name, size, placement_policy_to_string(o.policy), (unsigned) caller->uid,
                 (int) caller->pid, o.persist ? ", persistent" : "");
        r = sd_bus_emit_signal(m->bus, MANAGER_PATH, "org.gmem1.Manager", "RegionAdded", "o", path);
        if (r < 0)
                log_warning_errno(r, "Failed to emit RegionAdded: %m");
        /* A region being populated is already listed, and its Resident grows;
         * the caller gets its answer once all of it is there. */
        if (o.populate) {
                struct region *added = m->regions;

                r = bus_populate_async(m, added, msg, 0, size, true, error);
                if (r < 0)
                        manager_release_region(m, added, "populating it could not start");
                goto out;
        }
        r = sd_bus_reply_method_return(msg, "oh", path, m->regions->fd);
out:
        region_free(region);
        placement_done(&placement);
        create_options_done(&o);
        return r;
}

static int method_list_regions(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        struct manager *m = userdata;
        struct client *caller;
        int r;

        r = bus_check_caller(m, msg, &caller, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ostsu)");
        if (r < 0)
                return r;
        for (struct region *reg = m->regions; reg; reg = reg->next) {
                _cleanup_free_ char *path = NULL;

                r = region_object_path(reg, &path);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "(ostsu)", path, reg->name, reg->size,
                                          placement_policy_to_string(reg->placement.requested),
                                          (uint32_t) reg->owner_uid);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_nodes(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ struct node_state *nodes = NULL;
        _cleanup_free_ uint64_t *resident = NULL;
        struct manager *m = userdata;
        struct client *caller;
        unsigned n_resident;
        size_t n;
        int r;

        r = bus_check_caller(m, msg, &caller, error);
        if (r < 0)
                return r;
        r = node_query(&nodes, &n);
        if (r < 0)
                return bus_reply_errno(error, r, "cannot read the host's NUMA nodes: %s", strerror(-r));
        r = manager_resident_by_node(m, &resident, &n_resident);
        if (r < 0)
                return bus_reply_errno(error, r, "cannot measure region residency: %s", strerror(-r));

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(uttt)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = sd_bus_message_append(reply, "(uttt)", (uint32_t) nodes[i].node, nodes[i].total, nodes[i].free,
                                          nodes[i].node < n_resident ? resident[nodes[i].node] : 0);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        return sd_bus_message_append(reply, "s", GMEM_VERSION);
}

/* One {sv} entry of an a{sv}: opened with its key and variant type... */
static int open_entry(sd_bus_message *reply, const char *key, const char *type)
{
        int r = sd_bus_message_open_container(reply, 'e', "sv");

        if (r >= 0)
                r = sd_bus_message_append(reply, "s", key);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'v', type);
        return r;
}

/* ...and closed again. */
static int close_entry(sd_bus_message *reply)
{
        int r = sd_bus_message_close_container(reply);

        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int append_entry(sd_bus_message *reply, const char *key, const char *type, ...)
{
        va_list ap;
        int r;

        r = open_entry(reply, key, type);
        if (r < 0)
                return r;
        va_start(ap, type);
        r = sd_bus_message_appendv(reply, type, ap);
        va_end(ap);
        if (r < 0)
                return r;
        return close_entry(reply);
}

static int append_modules(sd_bus_message *reply, const struct kernel_features *f, bool parameters)
{
        int r;

        r = open_entry(reply, parameters ? "ModuleParameters" : "Modules", "a{ss}");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "{ss}");
        if (r < 0)
                return r;
        for (size_t i = 0; i < KERNEL_FEATURES_MODULES; i++) {
                const struct kvm_module_state *mod = &f->modules[i];
                const char *names[] = { "tdp_mmu", "nested" };
                const char *values[] = { mod->tdp_mmu, mod->nested };
                char key[64];

                if (!parameters) {
                        r = sd_bus_message_append(reply, "{ss}", mod->name, mod->state);
                        if (r < 0)
                                return r;
                        continue;
                }
                for (size_t j = 0; j < ELEMENTSOF(names); j++) {
                        if (!values[j])
                                continue;
                        snprintf(key, sizeof(key), "%s.%s", mod->name, names[j]);
                        r = sd_bus_message_append(reply, "{ss}", key, values[j]);
                        if (r < 0)
                                return r;
                }
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return close_entry(reply);
}

static int property_get_kernel_features(sd_bus *bus, const char *path, const char *interface,
                                        const char *property, sd_bus_message *reply, void *userdata,
                                        sd_bus_error *error)
{
        struct manager *m = userdata;
        const struct kernel_features *f = &m->features;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        if ((r = append_entry(reply, "KernelRelease", "s", f->release)) < 0 ||
            (r = append_entry(reply, "KVM", "b", (int) f->kvm)) < 0 ||
            (r = append_entry(reply, "GuestMemfd", "b", (int) f->guest_memfd)) < 0 ||
            (r = append_entry(reply, "GuestMemfdFlags", "t", f->guest_memfd_flags)) < 0 ||
            (r = append_entry(reply, "GuestMemfdMmap", "b", (int) !!(f->guest_memfd_flags & GUEST_MEMFD_FLAG_MMAP))) < 0 ||
            (r = append_entry(reply, "GuestMemfdInitShared", "b",
                              (int) !!(f->guest_memfd_flags & GUEST_MEMFD_FLAG_INIT_SHARED))) < 0 ||
            (r = append_entry(reply, "MemoryFaultInfo", "b", (int) f->memory_fault_info)) < 0 ||
            (r = append_entry(reply, "PreFaultMemory", "b", (int) f->pre_fault_memory)) < 0 ||
            (r = append_entry(reply, "UserMemory2", "b", (int) f->user_memory2)) < 0 ||
            (r = append_entry(reply, "NumaAwarePageTables", "b", (int) f->numa_aware_page_tables)) < 0 ||
            (r = append_modules(reply, f, false)) < 0 ||
            (r = append_modules(reply, f, true)) < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("KernelFeatures", "a{sv}", property_get_kernel_features, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("CreateRegion",
                                SD_BUS_ARGS("h", vm, "t", size, "a{sv}", options),
                                SD_BUS_RESULT("o", region, "h", memfd),
                                method_create_region, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListRegions",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(ostsu)", regions),
                                method_list_regions, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetNodes",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(uttt)", nodes),
                                method_get_nodes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("RegionAdded", SD_BUS_ARGS("o", region), 0),
        SD_BUS_SIGNAL_WITH_ARGS("RegionRemoved", SD_BUS_ARGS("o", region), 0),
        SD_BUS_VTABLE_END
};

int manager_bus_register(struct manager *m)
{
        int r = sd_bus_add_object_vtable(m->bus, NULL, MANAGER_PATH, "org.gmem1.Manager", manager_vtable, m);

        if (r < 0)
                return log_error_errno(r, "Failed to add the Manager object: %m");
        return 0;
}
