/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemctl show, create and release: one region's properties, trying out
 * placement on a scratch VM through libgmem, and dropping a region. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gmem.h"
#include "gmemctl.h"
#include "kvm-uapi.h"
#include "util.h"


static void print_region_human(const char *path, const struct region_props *p, bool owner)
{
        _cleanup_free_ char *nodes = format_nodes(p->nodes, p->n_nodes), *resident = format_resident(p),
                            *user = format_owner(p->owner_uid);
        char size[FORMAT_BYTES_MAX];
        uint64_t id = 0;

        (void) gmem_region_id_from_path(path, &id);
        printf("%s\n", path);
        printf("          Id: %" PRIu64 "\n", id);
        printf("        Name: %s\n", p->name);
        printf("        Size: %s (%" PRIu64 " bytes)\n", format_bytes(size, sizeof(size), p->size), p->size);
        printf("      Policy: %s\n", p->policy);
        printf("       Nodes: %s\n", nodes ?: "?");
        if (p->placement_reason)
                printf("      Reason: %s\n", p->placement_reason);
        if (owner)
                printf("       Owner: uid %s, pid %" PRIu32 "\n", user ?: "?", p->owner_pid);
        printf("    Resident: %s\n", resident ?: "?");
}

int open_region(const struct args *a, sd_bus **ret_bus, char **ret_path, struct region_props *ret)
{
        _cleanup_(gmem_client_unrefp) gmem_client *client = NULL;
        int r;

        r = client_connect(a->bus, &client);
        if (r >= 0)
                r = region_resolve(client, a->region, ret_path);
        if (r >= 0)
                r = bus_connect(a->bus, ret_bus);
        if (r >= 0)
                r = region_props_get(*ret_bus, *ret_path, ret);
        return r;
}

int verb_show(const struct args *a)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *path = NULL;
        struct region_props p = {};
        int r;

        r = open_region(a, &bus, &path, &p);
        if (r < 0)
                return r;
        if (a->json) {
                o = region_props_to_json(path, &p, true);
                r = o ? json_print(o) : log_oom();
        } else
                print_region_human(path, &p, true);
        region_props_done(&p);
        return r;
}

int verb_release(const struct args *a)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *path = NULL;
        struct region_props p = {};
        uint64_t id = 0;
        int r;

        r = open_region(a, &bus, &path, &p);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, GMEM_BUS_NAME, path, GMEM_REGION_INTERFACE, "Release", &error, NULL, NULL);
        if (r < 0) {
                region_props_done(&p);
                return log_bus_error(&error, r, "Release failed");
        }

        (void) gmem_region_id_from_path(path, &id);
        if (a->json) {
                o = json_object_new_object();
                if (json_add(o, "path", json_object_new_string(path)) < 0 ||
                    json_add(o, "id", json_object_new_uint64(id)) < 0 ||
                    json_add(o, "name", json_object_new_string(p.name)) < 0 ||
                    json_add(o, "released", json_object_new_boolean(true)) < 0)
                        r = log_oom();
                else
                        r = json_print(o);
        } else
                printf("Released region %" PRIu64 " '%s' (%s).\n", id, p.name, path);
        region_props_done(&p);
        return r;
}

/* --- create ---------------------------------------------------------------- */

/* A VM that exists only to own the region: KVM binds a guest_memfd to one VM. */
int scratch_vm(int *ret_kvm, int *ret_vm)
{
        int kvm, vm;

        kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (kvm < 0)
                return log_error_errno(negative_errno(), "cannot open /dev/kvm for a scratch VM: %m");
        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        if (vm < 0) {
                int r = log_error_errno(negative_errno(), "KVM_CREATE_VM failed: %m");

                safe_close(kvm);
                return r;
        }
        *ret_kvm = kvm;
        *ret_vm = vm;
        return 0;
}

int make_options(const struct args *a, gmem_options **ret)
{
        _cleanup_(gmem_options_unrefp) gmem_options *o = NULL;
        int r;

        r = gmem_options_new(&o);
        if (r >= 0 && a->name)
                r = gmem_options_set_name(o, a->name);
        if (r >= 0 && a->policy >= 0)
                r = gmem_options_set_policy(o, (gmem_policy) a->policy);
        if (r >= 0 && a->n_nodes > 0)
                r = gmem_options_set_nodes(o, a->nodes, a->n_nodes);
        if (r >= 0)
                r = gmem_options_set_populate(o, a->populate);
        if (r >= 0)
                r = gmem_options_set_shared(o, !a->private_memory);
        if (r >= 0)
                r = gmem_options_set_persist(o, a->persist);
        if (r >= 0)
                r = gmem_options_set_numa_page_tables(o, a->numa_page_tables);
        if (r >= 0 && a->cpus)
                r = gmem_options_set_cpus(o, a->cpus);
        if (r >= 0)
                r = gmem_options_set_spill(o, a->spill);
        if (r < 0)
                return log_error_errno(r, "cannot set the region options: %m");
        *ret = TAKE_PTR(o);
        return 0;
}

static double now_seconds(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int print_created(const struct args *a, const char *path, const struct region_props *p, int fd,
                         double seconds)
{
        _cleanup_(json_object_putp) json_object *o = NULL;
        char size[FORMAT_BYTES_MAX], rate[FORMAT_BYTES_MAX];
        struct stat st;

        if (fstat(fd, &st) < 0)
                return log_error_errno(negative_errno(), "cannot stat the region's fd: %m");
        if (a->json) {
                o = region_props_to_json(path, p, false);
                return o ? json_print(o) : log_oom();
        }
        printf("Created region ");
        print_region_human(path, p, false);
        printf("          Fd: %d, a guest_memfd of %s (%" PRIu64 " bytes)\n", fd,
               format_bytes(size, sizeof(size), (uint64_t) st.st_size), (uint64_t) st.st_size);
        if (a->populate)
                printf("Created and populated %s in %.3f s (%s/s).\n", format_bytes(size, sizeof(size), p->size),
                       seconds, format_bytes(rate, sizeof(rate), seconds > 0 ? (uint64_t) (p->size / seconds) : 0));
        return 0;
}

static void hold_signals(sigset_t *mask)
{
        sigemptyset(mask);
        sigaddset(mask, SIGINT);
        sigaddset(mask, SIGTERM);
}

/* Blocked before anything is printed: whoever reads the output and then
 * signals gmemctl gets the region released, not gmemctl killed. */
static int block_hold_signals(void)
{
        sigset_t mask;

        hold_signals(&mask);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(negative_errno(), "cannot block SIGINT and SIGTERM: %m");
        return 0;
}

static int hold_until_signal(uint64_t id, bool json)
{
        sigset_t mask;
        int sig = 0;

        hold_signals(&mask);
        /* JSON mode keeps stdout for the JSON document alone. */
        fprintf(json ? stderr : stdout, "Holding region %" PRIu64 "; press Ctrl-C to release it.\n", id);
        fflush(stdout);
        if (sigwait(&mask, &sig) != 0)
                return log_error_errno(-EINTR, "waiting for a signal failed");
        return 0;
}

/* CreateRegion through libgmem, timed, with a progress line for a person. */
static int create_timed(const struct args *a, gmem_client *client, int vm, gmem_region **ret, double *ret_seconds)
{
        _cleanup_(gmem_options_unrefp) gmem_options *options = NULL;
        bool progress = a->populate && !a->json && isatty(STDERR_FILENO);
        char size[FORMAT_BYTES_MAX];
        double start;
        int r;

        r = make_options(a, &options);
        if (r < 0)
                return r;
        if (progress)
                fprintf(stderr, "Creating and populating %s...\r", format_bytes(size, sizeof(size), a->size));
        start = now_seconds();
        r = gmem_region_create(client, vm, a->size, options, ret);
        *ret_seconds = now_seconds() - start;
        if (progress)
                fprintf(stderr, "\r\033[K");
        return r < 0 ? log_client_error(client, r, "CreateRegion failed") : 0;
}

/* The properties are read on a connection of our own; the region's
 * lifetime stays bound to the client's. */
static int show_created(const struct args *a, gmem_region *region, double seconds)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        struct region_props p = {};
        int r;

        r = bus_connect(a->bus, &bus);
        if (r >= 0)
                r = region_props_get(bus, gmem_region_get_path(region), &p);
        if (r >= 0)
                r = print_created(a, gmem_region_get_path(region), &p, gmem_region_get_fd(region), seconds);
        region_props_done(&p);
        return r;
}

/* Keep a persistent region; release any other explicitly rather than by
 * disconnecting, so that it is gone when gmemctl returns. */
int finish_created(const struct args *a, gmem_client *client, gmem_region *region, uint64_t id, int r)
{
        FILE *info = a->json ? stderr : stdout;
        int k;

        if (a->persist) {
                if (r >= 0)
                        fprintf(info, "The region is persistent: it stays in gmemd until 'gmemctl release %" PRIu64
                                "'.\n", id);
                return r;
        }
        k = gmem_region_release(region);
        if (k < 0)
                log_client_error(client, k, "Release failed; the region goes when gmemctl disconnects");
        else if (r >= 0)
                fprintf(info, "Released region %" PRIu64 " as gmemctl exits (--persist keeps a region, --hold "
                        "holds it until Ctrl-C).\n", id);
        return r;
}

int verb_create(const struct args *a)
{
        _cleanup_(gmem_client_unrefp) gmem_client *client = NULL;
        _cleanup_(gmem_region_unrefp) gmem_region *region = NULL;
        _cleanup_close_ int kvm = -1, vm = -1;
        double seconds = 0;
        uint64_t id = 0;
        int r;

        r = scratch_vm(&kvm, &vm);
        if (r >= 0)
                r = client_connect(a->bus, &client);
        if (r >= 0)
                r = create_timed(a, client, vm, &region, &seconds);
        if (r < 0)
                return r;
        (void) gmem_region_id_from_path(gmem_region_get_path(region), &id);
        r = a->hold ? block_hold_signals() : 0;
        if (r >= 0)
                r = show_created(a, region, seconds);
        if (r >= 0 && a->hold)
                r = hold_until_signal(id, a->json);
        return finish_created(a, client, region, id, r);
}
