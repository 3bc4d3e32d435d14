/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libgmem regions: creating the guest_memfd on the caller's VM, handing it
 * to gmemd with CreateRegion, and the per-region methods and properties. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm-uapi.h"
#include "libgmem-internal.h"
#include "macro.h"
#include "util.h"

/* Populating is bounded by memory bandwidth, not by the bus: give a call that
 * allocates a large region far longer than sd-bus's 25 s default. */
#define POPULATE_TIMEOUT_USEC (30ULL * 60 * 1000 * 1000)

/*
 * KVM serves VM ioctls only to the VM's creator (kvm->mm == current->mm), so
 * the guest_memfd is made here, in the VMM, and gmemd adopts it. gmemd needs
 * GUEST_MEMFD_FLAG_MMAP: it places memory with mbind() on a mapping.
 */
int region_create_guest_memfd(gmem_client *client, int vm_fd, uint64_t size, bool shared, int *ret)
{
        uint64_t want = GUEST_MEMFD_FLAG_MMAP | (shared ? GUEST_MEMFD_FLAG_INIT_SHARED : 0);
        struct kvm_create_guest_memfd args = { .size = size, .flags = want };
        int flags, fd;

        flags = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
        if (flags < 0)
                flags = 0;
        if (!(flags & GUEST_MEMFD_FLAG_MMAP))
                return client_local_error(client, -EOPNOTSUPP,
                                          "this kernel's guest_memfd cannot be mmap()ed (KVM_CAP_GUEST_MEMFD_FLAGS "
                                          "is 0x%x, without GUEST_MEMFD_FLAG_MMAP); gmemd needs it to place memory",
                                          (unsigned) flags);
        if ((flags & want) != want)
                return client_local_error(client, -EOPNOTSUPP,
                                          "this kernel's guest_memfd lacks GUEST_MEMFD_FLAG_INIT_SHARED "
                                          "(KVM_CAP_GUEST_MEMFD_FLAGS is 0x%x); create the region with shared off",
                                          (unsigned) flags);
        fd = ioctl(vm_fd, KVM_CREATE_GUEST_MEMFD, &args);
        if (fd < 0) {
                int r = negative_errno();

                return client_local_error(client, r, "KVM_CREATE_GUEST_MEMFD of %" PRIu64 " bytes with flags 0x%" PRIx64
                                          " failed: %s", size, want, strerror(-r));
        }
        *ret = fd;
        return 0;
}

static int append_nodes(sd_bus_message *m, const unsigned *nodes, size_t n)
{
        _cleanup_free_ uint32_t *array = calloc(n ?: 1, sizeof(uint32_t));

        if (!array)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                array[i] = nodes[i];
        return sd_bus_message_append_array(m, 'u', array, n * sizeof(uint32_t));
}

/* One {sv} entry: @value points at a string for "s", a bool for "b", an int
 * for "h" and the gmem_options (its node list) for "au". */
static int append_option(sd_bus_message *m, enum gmem_create_option option, const void *value)
{
        const char *signature = gmem_create_options[option].signature;
        const gmem_options *o = value;
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", gmem_create_options[option].key);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', signature);
        if (r < 0)
                return r;
        if (streq(signature, "s"))
                r = sd_bus_message_append(m, "s", (const char *) value);
        else if (streq(signature, "b"))
                r = sd_bus_message_append(m, "b", (int) *(const bool *) value);
        else if (streq(signature, "h"))
                r = sd_bus_message_append(m, "h", *(const int *) value);
        else if (streq(signature, "u"))
                r = sd_bus_message_append(m, "u", *(const unsigned *) value);
        else
                r = append_nodes(m, o->nodes, o->n_nodes);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r < 0 ? r : sd_bus_message_close_container(m);
}

int region_append_create_options(sd_bus_message *m, const gmem_options *o, int memfd, bool populate)
{
        int r = 0;

        if (o->name)
                r = append_option(m, GMEM_OPTION_NAME, o->name);
        if (r >= 0)
                r = append_option(m, GMEM_OPTION_POLICY, gmem_policy_to_string(o->policy));
        if (r >= 0 && o->n_nodes > 0)
                r = append_option(m, GMEM_OPTION_NODES, o);
        if (r >= 0 && o->numa_page_tables)
                r = append_option(m, GMEM_OPTION_NUMA_PAGE_TABLES, &o->numa_page_tables);
        if (r >= 0 && o->cpus)
                r = append_option(m, GMEM_OPTION_CPUS, o->cpus);
        if (r >= 0 && o->spill)
                r = append_option(m, GMEM_OPTION_SPILL, &o->spill);
        if (r >= 0 && populate)
                r = append_option(m, GMEM_OPTION_POPULATE, &o->populate);
        if (r >= 0 && populate && o->populate && o->populate_workers)
                r = append_option(m, GMEM_OPTION_POPULATE_WORKERS, &o->populate_workers);
        if (r >= 0)
                r = append_option(m, GMEM_OPTION_SHARED, &o->shared);
        if (r >= 0)
                r = append_option(m, GMEM_OPTION_PERSIST, &o->persist);
        if (r >= 0 && memfd >= 0)
                r = append_option(m, GMEM_OPTION_MEMFD, &memfd);
        return r;
}

static int append_options(sd_bus_message *m, const gmem_options *o, int memfd)
{
        int r = sd_bus_message_open_container(m, 'a', "{sv}");

        if (r >= 0)
                r = region_append_create_options(m, o, memfd, true);
        return r < 0 ? r : sd_bus_message_close_container(m);
}

static int call_create_region(gmem_client *client, int vm_fd, uint64_t size, const gmem_options *o, int memfd,
                              sd_bus_message **ret_reply)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(client->bus, &m, GMEM_BUS_NAME, GMEM_MANAGER_PATH,
                                           GMEM_MANAGER_INTERFACE, "CreateRegion");
        if (r < 0)
                return client_local_error(client, r, "cannot build the CreateRegion call: %s", strerror(-r));
        r = sd_bus_message_append(m, "ht", vm_fd, size);
        if (r >= 0)
                r = append_options(m, o, memfd);
        if (r < 0)
                return client_local_error(client, r, "cannot build the CreateRegion call: %s", strerror(-r));
        r = sd_bus_call(client->bus, m, o->populate ? POPULATE_TIMEOUT_USEC : 0, &error, ret_reply);
        if (r < 0)
                return client_bus_error(client, &error, r);
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(gmem_region *, gmem_region_unref);

int region_from_reply(gmem_client *client, sd_bus_message *reply, uint64_t size, gmem_region **ret)
{
        _cleanup_(gmem_region_unrefp) gmem_region *region = NULL;
        const char *path;
        int fd, r;

        r = sd_bus_message_read(reply, "oh", &path, &fd);
        if (r < 0)
                return client_local_error(client, r, "cannot read the CreateRegion reply: %s", strerror(-r));
        region = calloc(1, sizeof(*region));
        if (!region)
                return client_local_error(client, -ENOMEM, "out of memory");
        *region = (gmem_region) { .n_ref = 1, .size = size, .fd = -1, .fault_channel = -1,
                                  .client = gmem_client_ref(client) };
        region->path = strdup(path);
        /* The reply owns its fd; keep our own copy of it. */
        region->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (!region->path || region->fd < 0) {
                r = region->fd < 0 ? negative_errno() : -ENOMEM;
                return client_local_error(client, r, "cannot keep the region's fd: %s", strerror(-r));
        }
        *ret = TAKE_PTR(region);
        return 0;
}

/* KVM takes VM ioctls only from the VM's own process, so the VMM side
 * enables what gmemd agreed the kernel supports; the region goes if it fails. */
static int enable_numa_page_tables(gmem_region *region, int vm_fd)
{
        struct kvm_enable_cap cap = { .cap = KVM_CAP_NUMA_AWARE_PAGE_TABLES };
        int r;

        if (ioctl(vm_fd, KVM_ENABLE_CAP, &cap) >= 0)
                return 0;
        r = negative_errno();
        (void) gmem_region_release(region);
        return client_local_error(region->client, r, "KVM_ENABLE_CAP(KVM_CAP_NUMA_AWARE_PAGE_TABLES) failed: %s%s",
                                  strerror(-r), r == -EINVAL ? " (it must come before the VM's first vCPU)" : "");
}

_public_ int gmem_region_create(gmem_client *client, int vm_fd, uint64_t size, const gmem_options *options,
                                gmem_region **ret)
{
        static const gmem_options defaults = { .policy = GMEM_POLICY_DEFAULT, .shared = true };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(gmem_region_unrefp) gmem_region *region = NULL;
        _cleanup_close_ int memfd = -1;
        uint64_t page = (uint64_t) sysconf(_SC_PAGESIZE);
        char what[128];
        int r;

        if (!client || !ret)
                return -EINVAL;
        client_clear_error(client);
        if (!options)
                options = &defaults;
        if (fd_describe(vm_fd, what, sizeof(what)) < 0)
                return client_local_error(client, -EBADF, "the vm fd %d is not an open file descriptor", vm_fd);

        /* Only a valid request is worth a guest_memfd; for anything else the
         * daemon's named error and message say best what is wrong. */
        if (fd_is_kvm_vm(vm_fd) && size > 0 && size % page == 0) {
                r = region_create_guest_memfd(client, vm_fd, size, options->shared, &memfd);
                if (r < 0)
                        return r;
        }
        r = call_create_region(client, vm_fd, size, options, memfd, &reply);
        if (r >= 0)
                r = region_from_reply(client, reply, size, &region);
        if (r >= 0 && options->numa_page_tables)
                r = enable_numa_page_tables(region, vm_fd);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(region);
        return 0;
}

_public_ gmem_region *gmem_region_ref(gmem_region *region)
{
        if (region)
                region->n_ref++;
        return region;
}

_public_ gmem_region *gmem_region_unref(gmem_region *region)
{
        if (!region || --region->n_ref > 0)
                return NULL;
        safe_close(region->fd);
        safe_close(region->fault_channel);
        free(region->path);
        gmem_client_unref(region->client);
        free(region);
        return NULL;
}

_public_ int gmem_region_get_fd(gmem_region *region)
{
        return region ? region->fd : -EINVAL;
}

_public_ uint64_t gmem_region_get_size(gmem_region *region)
{
        return region ? region->size : 0;
}

_public_ const char *gmem_region_get_path(gmem_region *region)
{
        return region ? region->path : NULL;
}

static int region_call(gmem_region *region, const char *method, uint64_t timeout, const char *types, ...)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        gmem_client *client = region->client;
        va_list ap;
        int r;

        client_clear_error(client);
        r = sd_bus_message_new_method_call(client->bus, &m, GMEM_BUS_NAME, region->path,
                                           GMEM_REGION_INTERFACE, method);
        if (r >= 0 && types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r < 0)
                return client_local_error(client, r, "cannot build the %s call: %s", method, strerror(-r));
        r = sd_bus_call(client->bus, m, timeout, &error, &reply);
        return r < 0 ? client_bus_error(client, &error, r) : 0;
}

_public_ int gmem_region_populate(gmem_region *region, uint64_t offset, uint64_t length)
{
        if (!region)
                return -EINVAL;
        return region_call(region, "Populate", POPULATE_TIMEOUT_USEC, "tt", offset, length);
}

_public_ int gmem_region_discard(gmem_region *region, uint64_t offset, uint64_t length)
{
        if (!region)
                return -EINVAL;
        return region_call(region, "Discard", 0, "tt", offset, length);
}

_public_ int gmem_region_release(gmem_region *region)
{
        if (!region)
                return -EINVAL;
        return region_call(region, "Release", 0, NULL);
}

_public_ int gmem_region_get_resident(gmem_region *region, gmem_node_bytes **ret, size_t *n_ret)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ gmem_node_bytes *entries = NULL;
        gmem_client *client;
        size_t n = 0;
        int r;

        if (!region || !ret || !n_ret)
                return -EINVAL;
        client = region->client;
        client_clear_error(client);
        r = sd_bus_get_property(client->bus, GMEM_BUS_NAME, region->path, GMEM_REGION_INTERFACE, "Resident",
                                &error, &reply, "a(ut)");
        if (r < 0)
                return client_bus_error(client, &error, r);

        r = sd_bus_message_enter_container(reply, 'a', "(ut)");
        while (r >= 0) {
                gmem_node_bytes *grown;
                uint32_t node;
                uint64_t bytes;

                r = sd_bus_message_read(reply, "(ut)", &node, &bytes);
                if (r <= 0)
                        break;
                grown = realloc(entries, (n + 1) * sizeof(*entries));
                if (!grown) {
                        r = -ENOMEM;
                        break;
                }
                entries = grown;
                entries[n++] = (gmem_node_bytes) { .node = node, .bytes = bytes };
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return client_local_error(client, r, "cannot read the Resident property: %s", strerror(-r));
        *ret = TAKE_PTR(entries);
        *n_ret = n;
        return 0;
}
