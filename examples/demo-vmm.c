/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* demo-vmm: the smallest VMM that takes its guest memory from gmemd. It gets a
 * guest_memfd region through libgmem, installs it as the VM's memory with
 * KVM_SET_USER_MEMORY_REGION2 + KVM_MEM_GUEST_MEMFD, runs a real-mode vCPU
 * that writes a pattern, and checks the pattern through the fd's mapping.
 * --serve exports that memory (code loaded) instead of running it; --postcopy
 * imports it from such a server and runs the vCPU at once, resolving each
 * missing page it exits for through libgmem (the kernel's exit mode). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gmem.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "util.h"

#define CODE_GPA 0x1000
#define DATA_GPA 0x3000
#define PATTERN_WORDS 256
#define PATTERN_SEED 0xA55A

/*
 * 16-bit real-mode guest, loaded at CODE_GPA:
 *      mov di, DATA_GPA
 *      mov cx, PATTERN_WORDS
 *      mov ax, PATTERN_SEED
 * 1:   mov [di], ax
 *      add di, 2
 *      inc ax
 *      loop 1b
 *      hlt
 */
static const uint8_t guest_code[] = {
        0xbf, DATA_GPA & 0xff, DATA_GPA >> 8,
        0xb9, PATTERN_WORDS & 0xff, PATTERN_WORDS >> 8,
        0xb8, PATTERN_SEED & 0xff, PATTERN_SEED >> 8,
        0x89, 0x05,
        0x83, 0xc7, 0x02,
        0x40,
        0xe2, 0xf8,
        0xf4,
};

static const char *arg_bus;
static const char *arg_policy = "default";
static const char *arg_nodes;
static uint64_t arg_size = 2 * 1024 * 1024;
static bool arg_serve;
static const char *arg_postcopy, *arg_token, *arg_listen = "tcp:127.0.0.1:0";

static void help(void)
{
        printf("Usage: demo-vmm [--bus=ADDRESS] [--size=SIZE] [--policy=POLICY] [--nodes=LIST]\n"
               "                [--serve [--listen=ENDPOINT] | --postcopy=ENDPOINT --token=TOKEN]\n\n"
               "Run one vCPU on guest memory that gmemd provides, and check what it wrote.\n"
               "--serve loads the guest code and exports the memory instead (prints\n"
               "'serving ENDPOINT TOKEN', holds it until stdin closes); --postcopy imports it\n"
               "from there and runs the vCPU while the pages arrive (precopy on a kernel\n"
               "without KVM_CAP_GUEST_MEMFD_MISSING).\n"
               "Default bus: $GMEM_BUS_ADDRESS, else the system bus.\n");
}

static int parse_argv(int argc, char *argv[])
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "bus", required_argument, NULL, 'b' },
                { "size", required_argument, NULL, 's' },
                { "policy", required_argument, NULL, 'p' },
                { "nodes", required_argument, NULL, 'n' },
                { "serve", no_argument, NULL, 'S' },
                { "postcopy", required_argument, NULL, 'P' },
                { "token", required_argument, NULL, 'T' },
                { "listen", required_argument, NULL, 'L' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'b':
                        arg_bus = optarg;
                        break;
                case 's':
                        if (parse_size(optarg, &arg_size) < 0 || arg_size < 4 * 4096) {
                                fprintf(stderr, "demo-vmm: bad size '%s' (at least 16K)\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'p':
                        arg_policy = optarg;
                        break;
                case 'n':
                        arg_nodes = optarg;
                        break;
                case 'S':
                        arg_serve = true;
                        break;
                case 'P':
                        arg_postcopy = optarg;
                        break;
                case 'T':
                        arg_token = optarg;
                        break;
                case 'L':
                        arg_listen = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        if (!!arg_postcopy != !!arg_token || (arg_postcopy && arg_serve)) {
                fprintf(stderr, "demo-vmm: --postcopy needs --token, and excludes --serve\n");
                return -EINVAL;
        }
        return 1;
}

static int fail(const char *what, int r)
{
        fprintf(stderr, "demo-vmm: %s: %s\n", what, strerror(r < 0 ? -r : errno));
        return EXIT_FAILURE;
}

static int setup_vcpu(int vm, int kvm, struct kvm_run **run)
{
        struct kvm_sregs sregs;
        struct kvm_regs regs = { .rip = CODE_GPA, .rflags = 0x2 };
        int vcpu, size;

        vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
        if (vcpu < 0)
                return negative_errno();
        size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (size < 0)
                return negative_errno();
        *run = mmap(NULL, (size_t) size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
        if (*run == MAP_FAILED)
                return negative_errno();
        if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
                return negative_errno();
        sregs.cs.base = sregs.cs.selector = 0;
        sregs.ds.base = sregs.ds.selector = 0;
        sregs.es.base = sregs.es.selector = 0;
        sregs.ss.base = sregs.ss.selector = 0;
        if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
                return negative_errno();
        return vcpu;
}

static unsigned resolved;

/* Exit mode: a vCPU exit for a missing page, resolved through gmemd; 0 to
 * re-enter, else the negative errno KVM_RUN failed with. */
static int missing_page(gmem_region *region, const struct kvm_run *run, int error)
{
        /* memory_fault {flags, gpa, size} opens the exit union (Debian's header predates it). */
        const uint64_t *fault = (const void *) &run->hw;
        int r;

        if (error == EINTR)
                return 0;
        if (error != EFAULT || run->exit_reason != KVM_EXIT_MEMORY_FAULT || !(fault[0] & KVM_MEMORY_EXIT_FLAG_MISSING))
                return -error;
        r = gmem_region_resolve_fault(region, fault[1] & ~4095ULL);
        if (r < 0)
                return r;
        resolved++;
        return 0;
}

/* --postcopy: import in exit mode where the kernel can, else a full copy first. */
static int get_region(gmem_client *client, int vm, const gmem_options *options, gmem_region **ret)
{
        struct kvm_enable_cap cap = { .cap = KVM_CAP_GUEST_MEMFD_MISSING, .args[0] = KVM_GUEST_MEMFD_MISSING_EXIT };
        unsigned flags = GMEM_IMPORT_PRECOPY_ONLY;

        if (!arg_postcopy)
                return gmem_region_create(client, vm, arg_size, options, ret);
        if (ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_MISSING) > 0 && ioctl(vm, KVM_ENABLE_CAP, &cap) >= 0)
                flags = GMEM_IMPORT_EXIT_MODE;
        else
                printf("this kernel has no KVM_CAP_GUEST_MEMFD_MISSING: copying everything first\n");
        return gmem_region_import(client, vm, arg_size, arg_postcopy, arg_token, options, flags, ret);
}

/* --serve: the memory with the guest's code, exported until stdin closes. */
static int serve(gmem_region *region, uint8_t *mem)
{
        char *endpoint = NULL, *token = NULL, c;
        int r;

        memcpy(mem + CODE_GPA, guest_code, sizeof(guest_code));
        memset(mem + DATA_GPA, 0, PATTERN_WORDS * 2);
        r = gmem_region_export(region, arg_listen, NULL, &endpoint, &token);
        if (r < 0)
                return fail("ExportRegion", r);
        printf("serving %s %s\n", endpoint, token);
        fflush(stdout);
        free(endpoint);
        free(token);
        while (read(STDIN_FILENO, &c, 1) > 0)
                ;
        return EXIT_SUCCESS;
}

static int run_demo(gmem_client *client)
{
        _cleanup_close_ int kvm = -1, vm = -1, vcpu = -1;
        _cleanup_free_ unsigned *nodes = NULL;
        _cleanup_free_ gmem_node_bytes *resident = NULL;
        gmem_options *options = NULL;
        gmem_region *region = NULL;
        struct kvm_run *run = NULL;
        size_t n_nodes = 0, n_resident = 0;
        uint16_t *words;
        uint8_t *mem;
        int r, policy;

        kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (kvm < 0)
                return fail("open /dev/kvm", -errno);
        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        if (vm < 0)
                return fail("KVM_CREATE_VM", -errno);

        policy = gmem_policy_from_string(arg_policy);
        if (policy < 0 || (arg_nodes && parse_node_list(arg_nodes, &nodes, &n_nodes) < 0)) {
                fprintf(stderr, "demo-vmm: bad --policy or --nodes\n");
                return EXIT_FAILURE;
        }
        if ((r = gmem_options_new(&options)) < 0 || (r = gmem_options_set_name(options, "demo-vmm")) < 0 ||
            (r = gmem_options_set_policy(options, (gmem_policy) policy)) < 0 ||
            (r = gmem_options_set_nodes(options, nodes, n_nodes)) < 0 ||
            (r = gmem_options_set_populate(options, !arg_postcopy)) < 0)
                return fail("region options", r);

        r = get_region(client, vm, options, &region);
        gmem_options_unref(options);
        if (r < 0) {
                fprintf(stderr, "demo-vmm: gmemd refused the region: %s (%s)\n",
                        gmem_client_get_error(client) ?: strerror(-r), gmem_client_get_error_name(client) ?: "local");
                return EXIT_FAILURE;
        }
        printf("gmemd gave region %s: %" PRIu64 " bytes, guest_memfd fd %d\n", gmem_region_get_path(region),
               gmem_region_get_size(region), gmem_region_get_fd(region));

        /* The host view of guest memory is the guest_memfd's own mapping. */
        mem = mmap(NULL, arg_size, PROT_READ | PROT_WRITE, MAP_SHARED, gmem_region_get_fd(region), 0);
        if (mem == MAP_FAILED) {
                r = fail("mmap of the guest_memfd", -errno);
                goto out;
        }
        if (arg_serve) {
                r = serve(region, mem);
                goto out;
        }
        /* Imported, the code comes from the source, page by page as the vCPU needs it. */
        if (!arg_postcopy) {
                memcpy(mem + CODE_GPA, guest_code, sizeof(guest_code));
                memset(mem + DATA_GPA, 0, PATTERN_WORDS * 2);
        }

        struct kvm_userspace_memory_region2 slot = {
                .slot = 0,
                .flags = KVM_MEM_GUEST_MEMFD,
                .guest_phys_addr = 0,
                .memory_size = arg_size,
                .userspace_addr = (uint64_t) (uintptr_t) mem,
                .guest_memfd = (uint32_t) gmem_region_get_fd(region),
                .guest_memfd_offset = 0,
        };
        if (ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &slot) < 0) {
                r = fail("KVM_SET_USER_MEMORY_REGION2 with KVM_MEM_GUEST_MEMFD", -errno);
                goto out;
        }
        vcpu = setup_vcpu(vm, kvm, &run);
        if (vcpu < 0) {
                r = fail("vCPU setup", vcpu);
                goto out;
        }
        for (;;) {
                if (ioctl(vcpu, KVM_RUN, 0) < 0) {
                        r = missing_page(region, run, errno);
                        if (r == 0)
                                continue;
                        r = fail("KVM_RUN", r);
                        goto out;
                }
                if (run->exit_reason == KVM_EXIT_HLT)
                        break;
                fprintf(stderr, "demo-vmm: unexpected exit reason %u\n", run->exit_reason);
                r = EXIT_FAILURE;
                goto out;
        }

        words = (uint16_t *) (mem + DATA_GPA);
        for (unsigned i = 0; i < PATTERN_WORDS; i++)
                if (words[i] != (uint16_t) (PATTERN_SEED + i)) {
                        fprintf(stderr, "demo-vmm: word %u is 0x%04x, the vCPU wrote 0x%04x\n", i, words[i],
                                (uint16_t) (PATTERN_SEED + i));
                        r = EXIT_FAILURE;
                        goto out;
                }
        printf("vCPU ran to HLT and wrote %u words at GPA 0x%x; verified through the guest_memfd mapping\n",
               PATTERN_WORDS, DATA_GPA);
        if (arg_postcopy) {
                printf("postcopy: %u missing page(s) resolved through gmemd's fast channel\n", resolved);
                r = gmem_region_release(region);
                r = r < 0 ? fail("Release", r) : EXIT_SUCCESS;
                goto out;
        }

        r = gmem_region_get_resident(region, &resident, &n_resident);
        if (r < 0) {
                r = fail("reading Resident", r);
                goto out;
        }
        uint64_t total = 0;
        for (size_t i = 0; i < n_resident; i++) {
                printf("resident on node %u: %" PRIu64 " bytes\n", resident[i].node, resident[i].bytes);
                total += resident[i].bytes;
        }
        /* Populated at creation, then touched by the guest: all of it is there. */
        if (total != arg_size) {
                fprintf(stderr, "demo-vmm: gmemd reports %" PRIu64 " bytes resident of the %" PRIu64 " populated\n",
                        total, arg_size);
                r = EXIT_FAILURE;
                goto out;
        }
        r = gmem_region_release(region);
        if (r < 0) {
                r = fail("Release", r);
                goto out;
        }
        r = EXIT_SUCCESS;
out:
        gmem_region_unref(region);
        return r;
}

int main(int argc, char *argv[])
{
        gmem_client *client = NULL;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        r = gmem_client_new(arg_bus, &client);
        if (r < 0)
                return fail("connecting to gmemd", r);
        r = run_demo(client);
        gmem_client_unref(client);
        return r;
}
