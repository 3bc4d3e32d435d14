/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Postcopy on the gmem kernel (vm tier): two gmemd over loopback TCP; a VM
 * on the destination runs at once and its vCPU reads and writes pages in random order
 * while the bulk stream is held back, so every page it needs comes through
 * the fault channel (waiting vCPU) or the fast channel (exit mode); then the
 * bulk stream, cut once, resumes; the sum the guest computed matches, the
 * region holds the source's bytes and the guest's writes, and the region tag
 * (taken from the bytes received, not from pages the guest wrote) matches. A source gone for good fails the waiting vCPU
 * with the kernel's documented error and leaves gmemd running. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bus-client.h"
#include "bus-errors.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "migrate-proto.h"
#include "migrate-proxy.h"
#include "test-guest.h"
#include "util.h"

#define SIZE (32 * MIB)
#define CODE_GPA 0x1000
#define DATA_GPA 0x10000
#define DATA_MASK 4095U /* 4096 data pages: 16 MiB */
/* Few enough that the faults take well under 10 s on a loaded host: the held-back bulk
 * connection of the destination times out after 10 s without data and reconnects. */
#define TOUCHES 250U
#define SEED 0x2545F491U
#define TOKEN "postcopy-test-token-0123456789"

/*
 * 32-bit flat protected mode (segments set by KVM_SET_SREGS, no paging):
 * 1: imul edi, edi, 1103515245; add edi, 12345   x = LCG(x)
 *    mov eax, edi; shr eax, 8; and eax, esi       page = (x >> 8) & mask
 *    shl eax, 12; add eax, ebx; add ebp, [eax]    sum += first word of it
 *    mov [eax + 4], ebp                           its second word = sum
 *    dec ecx; jnz 1b; hlt
 */
static const uint8_t guest_code[] = {
        0x69, 0xff, 0x6d, 0x4e, 0xc6, 0x41, 0x81, 0xc7, 0x39, 0x30, 0x00, 0x00, 0x89, 0xf8, 0xc1, 0xe8, 0x08, 0x21,
        0xf0, 0xc1, 0xe0, 0x0c, 0x01, 0xd8, 0x03, 0x28, 0x89, 0x68, 0x04, 0x49, 0x75, 0xe0, 0xf4,
};

static struct test_env src_env, dst_env;
static sd_bus *src, *dst;
static gmem_client *client;
static uint8_t *source_map;

struct expected {
        uint32_t sum;
        unsigned pages; /* distinct pages the guest touches, its code page included */
        uint8_t *image; /* the region afterwards: the source's, with the guest's writes */
};

static struct expected guest_expected(void)
{
        _cleanup_free_ uint8_t *seen = calloc(DATA_MASK + 1, 1);
        struct expected e = { .pages = 1, .image = malloc(SIZE) };
        uint32_t x = SEED;

        ASSERT(seen && e.image);
        memcpy(e.image, source_map, SIZE);
        for (unsigned i = 0; i < TOUCHES; i++) {
                uint32_t page, word;

                x = x * 1103515245U + 12345U;
                page = (x >> 8) & DATA_MASK;
                memcpy(&word, source_map + DATA_GPA + (uint64_t) page * 4096, 4);
                e.sum += word;
                memcpy(e.image + DATA_GPA + (uint64_t) page * 4096 + 4, &e.sum, 4);
                e.pages += !seen[page];
                seen[page] = 1;
        }
        return e;
}

/* The source region: random words, the guest's code at CODE_GPA. */
static char *source_region(int vm)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int gmem = make_gmem(vm, SIZE);
        const struct opt o[] = { { .key = "memfd", .sig = "h", .h = gmem } };
        uint64_t x = 88172645463325252ULL;
        char *path = NULL;

        source_map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
        ASSERT(source_map != MAP_FAILED);
        for (size_t i = 0; i < SIZE / 8; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                memcpy(source_map + i * 8, &x, 8);
        }
        memcpy(source_map + CODE_GPA, guest_code, sizeof(guest_code));
        ASSERT_OK(create(src, vm, SIZE, o, ELEMENTSOF(o), &error, &path));
        close(gmem);
        return path;
}

static char *export(const char *region)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *endpoint, *token;

        ASSERT_OK(sd_bus_call_method(src, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "ExportRegion", &error,
                                     &reply, "oa{sv}", region, 2, "listen", "s", migrate_test_listen(), "token", "s",
                                     TOKEN));
        ASSERT_OK(sd_bus_message_read(reply, "ss", &endpoint, &token));
        return strdup(endpoint);
}

/* Run the guest to its HLT; in exit mode resolve each missing page through
 * libgmem. Returns 0, or -errno of a KVM_RUN that failed otherwise. */
static int run_guest(struct test_guest *g, bool exit_mode, unsigned *resolved, uint32_t *sum)
{
        struct kvm_regs regs = { .rip = CODE_GPA, .rflags = 2, .rdi = SEED, .rsi = DATA_MASK, .rbx = DATA_GPA,
                                 .rcx = TOUCHES };
        /* memory_fault {flags, gpa, size} opens the exit union (Debian's header predates it). */
        const uint64_t *fault = (const uint64_t *) (void *) &g->run->hw;

        test_vcpu_flat32(g->vcpu);
        ASSERT_OK(ioctl(g->vcpu, KVM_SET_REGS, &regs));
        for (;;) {
                int r = ioctl(g->vcpu, KVM_RUN, 0);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0 && errno == EFAULT && exit_mode && g->run->exit_reason == KVM_EXIT_MEMORY_FAULT &&
                    (fault[0] & KVM_MEMORY_EXIT_FLAG_MISSING)) {
                        ASSERT_OK(gmem_region_resolve_fault(g->region, fault[1] & ~4095ULL));
                        (*resolved)++;
                        continue;
                }
                if (r < 0)
                        return -errno;
                ASSERT_EQ(g->run->exit_reason, KVM_EXIT_HLT);
                ASSERT_OK(ioctl(g->vcpu, KVM_GET_REGS, &regs));
                *sum = (uint32_t) regs.rbp;
                return 0;
        }
}

static char *migration_of(const char *region)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *path, *reg, *role, *mode, *state;
        uint64_t done, total;

        ASSERT_OK(sd_bus_call_method(dst, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "ListMigrations", &error,
                                     &reply, NULL));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(oossstt)"));
        while (sd_bus_message_read(reply, "(oossstt)", &path, &reg, &role, &mode, &state, &done, &total) > 0)
                if (streq(reg, region))
                        return strdup(path);
        ASSERT(false);
        return NULL;
}

static uint64_t property_u64(const char *path, const char *property)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t v;

        ASSERT_OK(sd_bus_get_property_trivial(dst, "org.gmem1", path, "org.gmem1.Migration", property, &error, 't', &v));
        return v;
}

static char *property_string(const char *path, const char *property)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *s = NULL;

        ASSERT_OK(sd_bus_get_property_string(dst, "org.gmem1", path, "org.gmem1.Migration", property, &error, &s));
        return s;
}

struct ended {
        const char *path;
        bool done;
        char *member;
};

static int on_end(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct ended *e = userdata;

        if (streq(sd_bus_message_get_path(m), e->path)) {
                e->done = true;
                e->member = strdup(sd_bus_message_get_member(m));
        }
        return 0;
}

static bool ended(const void *userdata)
{
        return ((const struct ended *) userdata)->done;
}

/* Until the migration at @path signals its end; its signal's name. */
static char *wait_end(const char *path)
{
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_free_ char *state = NULL;
        struct ended e = { .path = path };

        ASSERT_OK(sd_bus_match_signal(dst, &slot, "org.gmem1", path, "org.gmem1.Migration", NULL, on_end, &e));
        state = property_string(path, "State");
        if (!streq(state, "running"))
                return strdup(streq(state, "completed") ? "Completed" : "Failed");
        process_until(dst, ended, &e, 600);
        return e.member;
}

/* One postcopy import run by a guest: faults first (bulk held back), then
 * the bulk stream, cut once mid-way, finishes the rest. */
/* With @hold the bulk stream waits until the guest halted, so every page it
 * touched came as a fault; without, both race (installs that meet a page
 * present already) and only the results are checked. */
static void test_postcopy(const char *endpoint, bool exit_mode, bool hold, const struct expected *want)
{
        struct migrate_proxy p = { .upstream = endpoint, .hold_bulk = hold, .cut_after = 4 * MIB };
        _cleanup_free_ char *mig = NULL, *end = NULL, *state = NULL;
        struct test_guest g;
        gmem_region *region;
        unsigned resolved = 0;
        uint64_t faults;
        uint32_t sum = 0;

        migrate_proxy_start(&p);
        test_guest_new_vm(&g, SIZE);
        if (exit_mode) {
                struct kvm_enable_cap cap = { .cap = KVM_CAP_GUEST_MEMFD_MISSING,
                                              .args[0] = KVM_GUEST_MEMFD_MISSING_EXIT };

                ASSERT_OK(ioctl(g.vm, KVM_ENABLE_CAP, &cap));
        }
        ASSERT_OK(gmem_region_import(client, g.vm, SIZE, p.endpoint, TOKEN, NULL,
                                     exit_mode ? GMEM_IMPORT_EXIT_MODE : 0, &region));
        test_guest_attach(&g, region);
        mig = migration_of(gmem_region_get_path(region));

        ASSERT_OK(run_guest(&g, exit_mode, &resolved, &sum));
        ASSERT_EQ(sum, want->sum);
        faults = property_u64(mig, "FaultsServed");
        printf("ok: %s: the guest's sum over %u reads matches; %" PRIu64 " faults served (%u pages touched, %u "
               "resolved by the VMM), p50 %" PRIu64 " us, p99 %" PRIu64 " us, bulk %s\n",
               exit_mode ? "exit mode" : "waiting vCPU", TOUCHES, faults, want->pages, resolved,
               property_u64(mig, "FaultLatencyP50"), property_u64(mig, "FaultLatencyP99"),
               hold ? "held back" : "running");
        if (exit_mode)
                ASSERT(resolved >= faults);
        if (hold) {
                /* Nothing but faults could bring those pages: the bulk connection got
                 * no more than the source's CHALLENGE and READY. */
                ASSERT_EQ(p.bulk_connections, 1);
                ASSERT_EQ(p.bulk_bytes[0], 2 * MIG_HEADER_SIZE + 16 + MIG_NONCE_SIZE + MIG_PROOF_SIZE);
                ASSERT(faults >= want->pages && faults <= want->pages + 4);
                ASSERT_EQ(property_u64(mig, "PagesPresent"), faults);
        }

        migrate_proxy_release(&p);
        end = wait_end(mig);
        ASSERT_STREQ(end, "Completed");
        state = property_string(mig, "State");
        ASSERT_STREQ(state, "completed");
        ASSERT(property_u64(mig, "Reconnects") >= 1);
        ASSERT(memcmp(g.mem, want->image, SIZE) == 0);
        printf("ok: %s: complete after a cut after %" PRIu64 " bytes and %" PRIu64 " more; the tag matched and "
               "the region is the source's plus the guest's writes\n",
               exit_mode ? "exit mode" : "waiting vCPU", p.bulk_bytes[0], p.bulk_bytes[1]);
        /* Disarmed at the end: a page discarded now reads zero, it is not missing. */
        ASSERT_OK(gmem_region_discard(region, DATA_GPA, 4096));
        ASSERT_EQ(g.mem[DATA_GPA], 0);
        migrate_proxy_stop(&p);
        test_guest_done(&g);
}

/* The source goes while the guest waits for a page: the import fails with
 * SourceGone, the fault fd closes and KVM_RUN fails with EFAULT. */
static void test_source_gone(void)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *region = NULL, *endpoint = NULL, *mig = NULL, *end = NULL, *name = NULL;
        struct holdings before = daemon_holdings(&dst_env, dst);
        _cleanup_close_ int vm = make_vm(), gmem = -1;
        struct migrate_proxy p = { .hold_bulk = true };
        struct test_guest g;
        const char *path;
        unsigned resolved = 0;
        uint32_t sum;
        int h;

        region = source_region(vm);
        endpoint = export(region);
        p.upstream = endpoint;
        migrate_proxy_start(&p);
        test_guest_new_vm(&g, SIZE);
        gmem = make_gmem(g.vm, SIZE);
        ASSERT_OK(sd_bus_message_new_method_call(dst, &m, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "ImportRegion"));
        ASSERT_OK(sd_bus_message_append(m, "htss", g.vm, (uint64_t) SIZE, p.endpoint, TOKEN));
        ASSERT_OK(sd_bus_message_append(m, "a{sv}", 2, "memfd", "h", gmem, "reconnect_timeout_ms", "u", 1000));
        ASSERT_OK(sd_bus_call(dst, m, 0, &error, &reply));
        ASSERT_OK(sd_bus_message_read(reply, "oh", &path, &h));
        mig = migration_of(path);
        region_release(src, region);
        g.region = NULL;
        g.mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
        ASSERT(g.mem != MAP_FAILED);
        {
                struct kvm_userspace_memory_region2 slot = { .flags = KVM_MEM_GUEST_MEMFD, .memory_size = SIZE,
                        .userspace_addr = (uint64_t) (uintptr_t) g.mem, .guest_memfd = (uint32_t) gmem };
                _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

                ASSERT_OK(ioctl(g.vm, KVM_SET_USER_MEMORY_REGION2, &slot));
                g.vcpu = ioctl(g.vm, KVM_CREATE_VCPU, 0);
                g.run_size = (size_t) ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
                g.run = mmap(NULL, g.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, g.vcpu, 0);
                ASSERT(g.vcpu >= 0 && g.run != MAP_FAILED);
        }
        ASSERT_EQ(run_guest(&g, false, &resolved, &sum), -EFAULT);
        ASSERT_EQ(g.run->exit_reason, KVM_EXIT_MEMORY_FAULT);
        end = wait_end(mig);
        ASSERT_STREQ(end, "Failed");
        name = property_string(mig, "ErrorName");
        ASSERT_STREQ(name, GMEM_ERROR_SOURCE_GONE);
        printf("ok: the source gone: KVM_RUN fails with EFAULT (memory fault exit), the migration with %s\n", name);
        ASSERT(test_env_daemon_alive(&dst_env));
        region_release(dst, path);
        migrate_proxy_stop(&p);
        munmap(g.run, g.run_size);
        munmap(g.mem, SIZE);
        close(g.vcpu);
        close(g.vm);
        gmem = safe_close(gmem);
        expect_same_holdings(&dst_env, dst, &before);
}

int main(void)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm = -1;
        _cleanup_free_ char *region = NULL, *endpoint = NULL;
        struct expected want;

        bus_tests_init();
        ASSERT(kvm >= 0);
        if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_MISSING) <= 0) {
                fprintf(stderr, "this kernel lacks KVM_CAP_GUEST_MEMFD_MISSING: boot the gmem kernel series\n");
                return 1;
        }
        src = bus_test_start(&src_env, NULL);
        dst = bus_test_start(&dst_env, NULL);
        ASSERT_OK(gmem_client_new(dst_env.address, &client));
        vm = make_vm();
        region = source_region(vm);
        want = guest_expected();
        endpoint = export(region);
        test_postcopy(endpoint, false, true, &want);
        free(endpoint);
        /* The source served one destination; export it again for the next. */
        endpoint = export(region);
        test_postcopy(endpoint, true, true, &want);
        /* And with the bulk stream running while the guest reads. */
        free(endpoint);
        endpoint = export(region);
        test_postcopy(endpoint, false, false, &want);
        test_source_gone();
        free(want.image);

        gmem_client_unref(client);
        sd_bus_flush_close_unref(src);
        sd_bus_flush_close_unref(dst);
        ASSERT_OK(test_env_stop(&src_env));
        ASSERT_OK(test_env_stop(&dst_env));
        return 0;
}
