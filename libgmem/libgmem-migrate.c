/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libgmem migrations: exporting a region, importing one (the guest_memfd made
 * here, as for gmem_region_create()), and the exit-mode fast channel. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "libgmem-internal.h"
#include "macro.h"
#include "util.h"

/* A precopy import moves the whole region before it answers. */
#define IMPORT_TIMEOUT_USEC (60ULL * 60 * 1000 * 1000)

static int append_import_options(sd_bus_message *m, const gmem_options *o, int memfd, unsigned flags, int channel)
{
        int r = sd_bus_message_open_container(m, 'a', "{sv}");

        if (r >= 0)
                r = region_append_create_options(m, o, memfd, false);
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}", "precopy_only", "b", (int) !!(flags & GMEM_IMPORT_PRECOPY_ONLY));
        if (r >= 0 && channel >= 0)
                r = sd_bus_message_append(m, "{sv}", "fault_channel", "h", channel);
        return r < 0 ? r : sd_bus_message_close_container(m);
}

static int call_import(gmem_client *client, int vm_fd, uint64_t size, const char *endpoint, const char *token,
                       const gmem_options *o, int memfd, unsigned flags, int channel, sd_bus_message **ret)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(client->bus, &m, GMEM_BUS_NAME, GMEM_MANAGER_PATH,
                                           GMEM_MANAGER_INTERFACE, "ImportRegion");
        if (r >= 0)
                r = sd_bus_message_append(m, "htss", vm_fd, size, endpoint, token);
        if (r >= 0)
                r = append_import_options(m, o, memfd, flags, channel);
        if (r < 0)
                return client_local_error(client, r, "cannot build the ImportRegion call: %s", strerror(-r));
        r = sd_bus_call(client->bus, m, IMPORT_TIMEOUT_USEC, &error, ret);
        return r < 0 ? client_bus_error(client, &error, r) : 0;
}

_public_ int gmem_region_import(gmem_client *client, int vm_fd, uint64_t size, const char *endpoint,
                                const char *token, const gmem_options *options, unsigned flags, gmem_region **ret)
{
        static const gmem_options defaults = { .policy = GMEM_POLICY_DEFAULT, .shared = true };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_close_ int memfd = -1, ours = -1, theirs = -1;
        gmem_region *region = NULL;
        int sv[2], r;

        if (!client || !endpoint || !token || !ret || (flags & ~(GMEM_IMPORT_PRECOPY_ONLY | GMEM_IMPORT_EXIT_MODE)))
                return -EINVAL;
        client_clear_error(client);
        options = options ?: &defaults;
        if (fd_is_kvm_vm(vm_fd) && size > 0) {
                r = region_create_guest_memfd(client, vm_fd, size, options->shared, &memfd);
                if (r < 0)
                        return r;
        }
        if (flags & GMEM_IMPORT_EXIT_MODE) {
                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                        return client_local_error(client, negative_errno(), "cannot make the fault channel: %m");
                ours = sv[0];
                theirs = sv[1];
        }
        r = call_import(client, vm_fd, size, endpoint, token, options, memfd, flags, theirs, &reply);
        if (r >= 0)
                r = region_from_reply(client, reply, size, &region);
        if (r < 0)
                return r;
        region->fault_channel = TAKE_FD(ours);
        *ret = region;
        return 0;
}

_public_ int gmem_region_resolve_fault(gmem_region *region, uint64_t offset)
{
        int64_t reply[2];
        ssize_t n;

        if (!region || region->fault_channel < 0 || offset >= region->size)
                return -EINVAL;
        /* The migration ended: every page is present (0), or none will come. */
        if (region->fault_channel_done)
                return region->fault_channel_status;
        if (send(region->fault_channel, &offset, sizeof(offset), MSG_NOSIGNAL) != sizeof(offset))
                return negative_errno();
        /* Answers come in the order asked (one channel per region, one caller at a time). */
        do {
                n = recv(region->fault_channel, reply, sizeof(reply), 0);
                if (n == 0)
                        return -EPIPE; /* gmemd went away */
                if (n < 0 && errno != EINTR)
                        return negative_errno();
                if (n == sizeof(reply) && reply[0] == -1) {
                        region->fault_channel_done = true;
                        region->fault_channel_status = (int) reply[1];
                        return region->fault_channel_status;
                }
        } while (n != sizeof(reply) || (uint64_t) reply[0] != offset);
        return (int) reply[1];
}

_public_ int gmem_region_export(gmem_region *region, const char *listen, const char *token, char **ret_endpoint,
                                char **ret_token)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        gmem_client *client;
        const char *e, *t;
        int r;

        if (!region || !ret_endpoint || !ret_token)
                return -EINVAL;
        client = region->client;
        client_clear_error(client);
        r = sd_bus_message_new_method_call(client->bus, &m, GMEM_BUS_NAME, GMEM_MANAGER_PATH,
                                           GMEM_MANAGER_INTERFACE, "ExportRegion");
        if (r >= 0)
                r = sd_bus_message_append(m, "o", region->path);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && listen)
                r = sd_bus_message_append(m, "{sv}", "listen", "s", listen);
        if (r >= 0 && token)
                r = sd_bus_message_append(m, "{sv}", "token", "s", token);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return client_local_error(client, r, "cannot build the ExportRegion call: %s", strerror(-r));
        r = sd_bus_call(client->bus, m, 0, &error, &reply);
        if (r < 0)
                return client_bus_error(client, &error, r);
        r = sd_bus_message_read(reply, "ss", &e, &t);
        if (r < 0)
                return client_local_error(client, r, "cannot read the ExportRegion reply: %s", strerror(-r));
        *ret_endpoint = strdup(e);
        *ret_token = strdup(t);
        if (!*ret_endpoint || !*ret_token) {
                free(*ret_endpoint);
                free(*ret_token);
                return -ENOMEM;
        }
        return 0;
}
