/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemd: command line, configuration, bus connection and the sd-event loop
 * that serves org.gmem1 until SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include "bus-caller.h"
#include "bus-contract.h"
#include "bus-errors.h"
#include "bus-populate.h"
#include "gmem-config.h"
#include "kvm.h"
#include "log.h"
#include "macro.h"
#include "manager-dbus.h"
#include "manager.h"
#include "migration-dbus.h"
#include "migration.h"
#include "numa-nodes.h"
#include "region-dbus.h"
#include "usage.h"
#include "util.h"

static const char *arg_bus = "system";
static const char *arg_config = NULL;
static int arg_log_level = -1;

static void help(void)
{
        printf("Usage: gmemd [OPTIONS...]\n\n"
               "Serve guest_memfd regions for KVM VMMs on D-Bus (%s).\n\n"
               "  -h --help               Show this help and exit\n"
               "     --version            Show the version and exit\n"
               "     --bus=BUS            system (default), session, or a D-Bus address\n"
               "                          such as unix:path=/run/gmem-test/bus\n"
               "     --config=FILE        Read FILE instead of %s\n"
               "     --log-level=LEVEL    err, warning, notice, info (default) or debug\n\n"
               "See gmemd(8).\n", GMEM_BUS_NAME, GMEM_DEFAULT_CONFIG);
}

static int parse_argv(int argc, char *argv[])
{
        enum { ARG_VERSION = 0x100, ARG_BUS, ARG_CONFIG, ARG_LOG_LEVEL };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "bus", required_argument, NULL, ARG_BUS },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("gmemd %s\n", GMEM_VERSION);
                        return 0;
                case ARG_BUS:
                        if (!*optarg)
                                return log_error_errno(-EINVAL, "--bus needs system, session or an address");
                        arg_bus = optarg;
                        break;
                case ARG_CONFIG:
                        arg_config = optarg;
                        break;
                case ARG_LOG_LEVEL:
                        arg_log_level = log_level_from_string(optarg);
                        if (arg_log_level < 0)
                                return log_error_errno(-EINVAL, "Unknown log level '%s': use err, warning, notice, info or debug",
                                                       optarg);
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'; see --help", argv[optind]);
        return 1;
}

static int load_config(struct manager *m)
{
        const char *path = arg_config ?: GMEM_DEFAULT_CONFIG;
        char msg[512];
        int r;

        m->config.allowed_group = strdup("gmem");
        if (!m->config.allowed_group)
                return -ENOMEM;
        r = config_load(&m->config, path, msg, sizeof(msg));
        if (r == -ENOENT && !arg_config) {
                log_info("No %s; using the defaults", path);
                r = 0;
        } else if (r < 0)
                return log_error_errno(r, "Bad configuration: %s", msg);
        if (arg_log_level >= 0)
                log_set_max_level(arg_log_level);
        else if (m->config.log_level >= 0)
                log_set_max_level(m->config.log_level);

        if (m->config.allowed_group) {
                struct group *g = getgrnam(m->config.allowed_group);
                unsigned gid;

                if (g) {
                        m->allowed_gid = g->gr_gid;
                        m->have_allowed_gid = true;
                } else if (parse_uint(m->config.allowed_group, &gid) >= 0) {
                        m->allowed_gid = gid;
                        m->have_allowed_gid = true;
                } else
                        log_warning("Group '%s' does not exist; only root may use gmemd", m->config.allowed_group);
        }
        return 0;
}

/* The regions kept in the fd store or released, then the workers still
 * populating waited for (each completion answers its caller). */
static void stop(struct manager *m)
{
        usage_stop(m);
        manager_stop(m);
        migration_stop_all(m);
        bus_populate_finish_all(m);
}

/* Top down: what the bus layer holds first, the registry last. */
static struct manager *gmemd_free(struct manager *m)
{
        if (!m)
                return NULL;
        stop(m);
        while (m->clients)
                client_free(m->clients);
        return manager_free(m);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct manager *, gmemd_free);

/* Runs before sd-bus's own exit handler closes the connection, so clients
 * still see RegionRemoved for every region the daemon drops on the way out. */
static int on_exit_stop(sd_event_source *s, void *userdata)
{
        stop(userdata);
        return 0;
}

static int open_bus(struct manager *m)
{
        int r;

        if (streq(arg_bus, "system"))
                return sd_bus_open_system(&m->bus);
        if (streq(arg_bus, "session"))
                return sd_bus_open_user(&m->bus);
        r = sd_bus_new(&m->bus);
        if (r >= 0)
                r = sd_bus_set_address(m->bus, arg_bus);
        if (r >= 0)
                r = sd_bus_set_bus_client(m->bus, true);
        if (r >= 0)
                r = sd_bus_negotiate_creds(m->bus, true, SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID);
        if (r >= 0)
                r = sd_bus_negotiate_fds(m->bus, true);
        if (r >= 0)
                r = sd_bus_start(m->bus);
        return r;
}

/* Connected, the objects in place, but not yet owning the name: restoring
 * happens in between, before any client can call. */
static int connect_bus(struct manager *m)
{
        int r;

        r = open_bus(m);
        if (r < 0)
                return log_error_errno(r, "Cannot connect to the %s bus: %m", arg_bus);
        r = sd_bus_set_exit_on_disconnect(m->bus, true);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the bus connection: %m");
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Cannot attach the bus to the event loop: %m");
        r = manager_bus_register(m);
        if (r < 0)
                return r;
        r = region_bus_register(m);
        return r < 0 ? r : migration_bus_register(m);
}

static int request_name(struct manager *m)
{
        int r = sd_bus_request_name(m->bus, GMEM_BUS_NAME, 0);

        if (r == -EEXIST)
                return log_error_errno(r, "Another process already owns %s on this bus: is gmemd running?", GMEM_BUS_NAME);
        if (r < 0)
                return log_error_errno(r, "Cannot own %s on the %s bus: %m (is the D-Bus policy installed?)",
                                       GMEM_BUS_NAME, arg_bus);
        return 0;
}

/* Every region is an fd (and the refresher briefly duplicates some): a host
 * with more than a thousand regions needs more than the soft limit of 1024. */
static void raise_fd_limit(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_debug_errno(negative_errno(), "Cannot raise the fd limit: %m");
}

static void probe_kernel(struct manager *m)
{
        m->kvm_fd = kvm_open();
        if (m->kvm_fd < 0)
                log_warning_errno(m->kvm_fd, "Cannot open /dev/kvm: %m; reporting no KVM features");
        kernel_features_probe(&m->features, m->kvm_fd);
        if (!m->features.guest_memfd)
                log_warning("This kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD): every CreateRegion will fail");
}

static int setup_event(struct manager *m)
{
        sd_event_source *exit_source;
        sigset_t mask;
        int r;

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Cannot create the event loop: %m");
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if ((r = sd_event_add_signal(m->event, NULL, SIGTERM, NULL, NULL)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, NULL, NULL)) < 0)
                return log_error_errno(r, "Cannot watch SIGTERM/SIGINT: %m");
        r = sd_event_add_exit(m->event, &exit_source, on_exit_stop, m);
        if (r >= 0)
                r = sd_event_source_set_priority(exit_source, SD_EVENT_PRIORITY_IMPORTANT);
        if (r < 0)
                return log_error_errno(r, "Cannot add the exit handler: %m");
        return 0;
}

static int run(int argc, char *argv[])
{
        _cleanup_(gmemd_freep) struct manager *m = NULL;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        r = manager_new(&m);
        if (r < 0)
                return log_oom();
        if ((r = load_config(m)) < 0 || (r = gmem_bus_errors_register()) < 0)
                return r;
        r = node_init();
        if (r < 0)
                return log_error_errno(r, "libnuma reports no NUMA support on this host");
        probe_kernel(m);
        if ((r = setup_event(m)) < 0 || (r = connect_bus(m)) < 0)
                return r;
        r = usage_start(m);
        if (r < 0)
                return log_error_errno(r, "Cannot start the residency refresher: %m");
        raise_fd_limit();
        manager_restore(m);
        bus_reattach_owners(m);
        /* Restored are those that came back and stayed. */
        m->n_restored = m->n_regions;
        r = request_name(m);
        if (r < 0)
                return r;

        log_info("gmemd %s serving %s on the %s bus (kernel %s, guest_memfd flags 0x%llx, %u region(s) restored)",
                 GMEM_VERSION, GMEM_BUS_NAME, arg_bus, m->features.release,
                 (unsigned long long) m->features.guest_memfd_flags, m->n_restored);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving %s on the %s bus, %u region(s) restored", GMEM_BUS_NAME,
                          arg_bus, m->n_restored);
        r = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

int main(int argc, char *argv[])
{
        int r = run(argc, argv);

        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
