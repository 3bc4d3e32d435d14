/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A region moved between two gmemd on two private buses over loopback TCP
 * (precopy_only, which the stock kernel can do): byte-identical at the end;
 * a wrong token, a source of another protocol version, a corrupted page, a
 * truncated frame and an oversized length refused with their named errors and
 * nothing left behind; a connection cut half-way resumes without sending the
 * present pages again; a source gone for good fails the import cleanly. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus-client.h"
#include "bus-errors.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "migrate-digest.h"
#include "migrate-io.h"
#include "migrate-proxy.h"
#include "util.h"

#define SIZE (16 * MIB)
#define TOKEN "test-token-0123456789abcdef"

static struct test_env src_env, dst_env;
static sd_bus *src, *dst;

/* --- the calls ----------------------------------------------------------------- */

static int export(const char *region, const char *token, char **endpoint, char **ret_token, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *e, *t;
        int r;

        if (token)
                r = sd_bus_call_method(src, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "ExportRegion", error,
                                       &reply, "oa{sv}", region, 2, "listen", "s", migrate_test_listen(), "token", "s",
                                       token);
        else
                r = sd_bus_call_method(src, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "ExportRegion", error,
                                       &reply, "oa{sv}", region, 1, "listen", "s", migrate_test_listen());
        if (r < 0) {
                fprintf(stderr, "ExportRegion: %s: %s\n", error->name, error->message);
                return r;
        }
        ASSERT_OK(sd_bus_message_read(reply, "ss", &e, &t));
        *endpoint = strdup(e);
        if (ret_token)
                *ret_token = strdup(t);
        return 0;
}

struct import_args {
        const char *endpoint, *token;
        bool postcopy;
        uint32_t reconnect_ms;
};

/* ImportRegion with a guest_memfd made here; *fd the region's fd to read. */
static int import(const struct import_args *a, char **path, int *fd, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_close_ int vm = make_vm(), gmem = make_gmem(vm, SIZE);
        const char *p;
        int h, r;

        ASSERT_OK(sd_bus_message_new_method_call(dst, &m, "org.gmem1", "/org/gmem1", "org.gmem1.Manager",
                                                 "ImportRegion"));
        ASSERT_OK(sd_bus_message_append(m, "htss", vm, (uint64_t) SIZE, a->endpoint, a->token));
        ASSERT_OK(sd_bus_message_append(m, "a{sv}", 3, "memfd", "h", gmem, "precopy_only", "b", !a->postcopy,
                                        "reconnect_timeout_ms", "u", a->reconnect_ms ?: 20000));
        r = sd_bus_call(dst, m, 120 * 1000000ULL, error, &reply);
        if (r < 0)
                return r;
        ASSERT_OK(sd_bus_message_read(reply, "oh", &p, &h));
        *path = strdup(p);
        *fd = fcntl(h, F_DUPFD_CLOEXEC, 3);
        return 0;
}

static void expect_import_fails(const struct import_args *a, const char *name, const char *says)
{
        struct holdings before = daemon_holdings(&dst_env, dst);
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *path = NULL;
        int fd = -1;

        expect_error_says(import(a, &path, &fd, &error), &error, name, says, "ImportRegion");
        ASSERT(!path);
        ASSERT_EQ(count_regions(dst), 0);
        ASSERT(test_env_daemon_alive(&dst_env));
        expect_same_holdings(&dst_env, dst, &before);
}

/* A region on the source filled with a pattern of @seed. */
static char *source_region(int vm, uint32_t seed, int *ret_fd)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int gmem = make_gmem(vm, SIZE);
        const struct opt o[] = { { .key = "memfd", .sig = "h", .h = gmem } };
        uint32_t *map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
        char *path = NULL;

        ASSERT(map != MAP_FAILED);
        for (size_t i = 0; i < SIZE / 4; i++) {
                seed = seed * 1103515245U + 12345U;
                /* Every 7th page stays zero, as in a guest. */
                map[i] = (i / 1024) % 7 ? seed : 0;
        }
        munmap(map, SIZE);
        ASSERT_OK(create(src, vm, SIZE, o, ELEMENTSOF(o), &error, &path));
        *ret_fd = gmem;
        return path;
}

static void expect_identical(int a, int b)
{
        uint8_t *x = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, a, 0), *y = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, b, 0);

        ASSERT(x != MAP_FAILED && y != MAP_FAILED);
        ASSERT(memcmp(x, y, SIZE) == 0);
        munmap(x, SIZE);
        munmap(y, SIZE);
        printf("ok: the imported region is byte-identical to the source\n");
}

/* The Migration object on @bus whose Region is @region. */
static char *migration_of(sd_bus *bus, const char *region)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *path, *reg, *role, *mode, *state;
        uint64_t done, total;
        char *found = NULL;

        ASSERT_OK(sd_bus_call_method(bus, "org.gmem1", "/org/gmem1", "org.gmem1.Manager", "ListMigrations", &error,
                                     &reply, NULL));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(oossstt)"));
        while (sd_bus_message_read(reply, "(oossstt)", &path, &reg, &role, &mode, &state, &done, &total) > 0)
                if (streq(reg, region) && !found)
                        found = strdup(path);
        ASSERT(found);
        return found;
}

static uint64_t migration_u64(sd_bus *bus, const char *path, const char *property)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t v;

        ASSERT_OK(sd_bus_get_property_trivial(bus, "org.gmem1", path, "org.gmem1.Migration", property, &error, 't', &v));
        return v;
}

static char *migration_string(sd_bus *bus, const char *path, const char *property)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *s = NULL;

        ASSERT_OK(sd_bus_get_property_string(bus, "org.gmem1", path, "org.gmem1.Migration", property, &error, &s));
        return s;
}

/* --- a peer that misbehaves, using the real codec ------------------------------- */

enum misbehave { FAKE_VERSION, FAKE_CORRUPT, FAKE_TRUNCATED, FAKE_OVERSIZED, FAKE_DIGEST, FAKE_REPLAYED_TAG };

struct fake_source {
        int listen_fd;
        char *endpoint;
        enum misbehave how;
        pthread_t thread;
};

/* The right Poly1305 tag of @size zero bytes, but under the key of @salt. */
static void zeros_tag(const uint8_t salt[MIG_SALT_SIZE], uint8_t out[MIG_DIGEST_SIZE])
{
        _cleanup_free_ uint8_t *zeros = calloc(1, SIZE);
        struct mig_digest d;

        ASSERT(zeros);
        ASSERT_OK(mig_digest_init(&d, SIZE, false));
        ASSERT_OK(mig_digest_key(&d, TOKEN, salt));
        ASSERT_OK(mig_digest_final(&d, zeros, out));
        mig_digest_done(&d);
}

/* Every page served right (zeros, each with its CRC32), then a tag that is
 * not the region's: an all-zero one, or (@replayed) the right tag of these
 * very bytes under another migration's key, as a recorded tag would be.
 * Only the final comparison can tell. */
static void serve_wrong_digest(struct mig_conn *c, const uint8_t salt[MIG_SALT_SIZE], bool replayed)
{
        static const uint8_t zeros[MIG_MAX_PAGES * MIG_PAGE_SIZE];
        uint8_t other[MIG_SALT_SIZE];
        struct mig_msg m;

        while (mig_recv(c, &m) >= 0) {
                if (m.type == MIG_REQUEST)
                        ASSERT_OK(mig_send_data(c, m.request.offset, m.request.count, zeros));
                else if (m.type == MIG_FINISH) {
                        m = (struct mig_msg) { .type = MIG_DIGEST };
                        memcpy(other, salt, sizeof(other));
                        other[0] ^= 1;
                        if (replayed)
                                zeros_tag(other, m.digest.digest);
                        ASSERT_OK(mig_send(c, &m));
                } else
                        break;
        }
}

static void misbehave(struct fake_source *f, struct mig_conn *c)
{
        static uint8_t page[MIG_PAGE_SIZE];
        uint8_t salt[MIG_SALT_SIZE];
        struct mig_msg m;
        enum mig_channel channel;
        uint8_t *b = c->buf;
        int n;

        if (f->how == FAKE_VERSION) {
                ASSERT_OK(mig_recv(c, &m));
                m = (struct mig_msg) { .type = MIG_CHALLENGE, .challenge = { .version = MIG_VERSION + 1,
                                       .page_size = MIG_PAGE_SIZE, .region_size = SIZE } };
                (void) mig_send(c, &m);
                return;
        }
        memset(salt, 0x11, sizeof(salt));
        ASSERT_OK(mig_handshake_src(c, TOKEN, SIZE, salt, &channel));
        if (f->how == FAKE_DIGEST || f->how == FAKE_REPLAYED_TAG) {
                serve_wrong_digest(c, salt, f->how == FAKE_REPLAYED_TAG);
                return;
        }
        ASSERT_OK(mig_recv(c, &m));
        ASSERT_EQ(m.type, MIG_REQUEST);
        memset(page, 0x5a, sizeof(page));
        m = (struct mig_msg) { .type = MIG_DATA, .data = { .offset = m.request.offset, .count = 1, .pages = page } };
        n = mig_frame_encode(&m, b, MIG_HEADER_SIZE + MIG_FRAME_MAX);
        if (f->how == FAKE_CORRUPT)
                b[n - 1] ^= 1; /* the page's last byte: its crc32 no longer matches */
        else if (f->how == FAKE_TRUNCATED) {
                mig_header_encode(b, MIG_DATA, MIG_DATA_FIXED + 4); /* one page announced, none there */
                n = MIG_HEADER_SIZE + MIG_DATA_FIXED + 4;
        } else {
                mig_header_encode(b, MIG_DATA, 0x7fffffff);
                n = MIG_HEADER_SIZE;
        }
        ASSERT_EQ(send(c->fd, b, (size_t) n, MSG_NOSIGNAL), n);
        /* Read all the destination sends until it hangs up: closing with
         * unread data would reset the connection before it read ours. */
        for (;;) {
                struct pollfd p = { .fd = c->fd, .events = POLLIN };

                if (poll(&p, 1, 30000) <= 0 || read(c->fd, c->buf, MIG_FRAME_MAX) <= 0)
                        break;
        }
}

static void *fake_source_thread(void *arg)
{
        struct fake_source *f = arg;
        struct pollfd p = { .fd = f->listen_fd, .events = POLLIN };
        struct mig_conn c;

        ASSERT_EQ(poll(&p, 1, 60000), 1);
        ASSERT_OK(mig_conn_init(&c, accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), -1, 10000));
        misbehave(f, &c);
        mig_conn_done(&c);
        return NULL;
}

static void fake_source_case(enum misbehave how, const char *name, const char *says)
{
        struct fake_source f = { .how = how };
        char msg[256];

        ASSERT_OK(mig_listen(migrate_test_listen(), &f.listen_fd, &f.endpoint, msg, sizeof(msg)));
        ASSERT_EQ(pthread_create(&f.thread, NULL, fake_source_thread, &f), 0);
        expect_import_fails(&(struct import_args) { .endpoint = f.endpoint, .token = TOKEN }, name, says);
        pthread_join(f.thread, NULL);
        close(f.listen_fd);
        free(f.endpoint);
}

/* A destination of another protocol version at the real source: an ERROR
 * naming both versions, and the source waits on for the right one. */
static void fake_destination_version(const char *endpoint)
{
        struct mig_msg m = { .type = MIG_HELLO, .hello = { .version = MIG_VERSION + 1 } };
        struct mig_conn c;

        ASSERT_OK(mig_conn_init(&c, -1, -1, 10000));
        ASSERT_OK(mig_connect(&c, endpoint));
        ASSERT_OK(mig_send(&c, &m));
        ASSERT_EQ(mig_expect(&c, MIG_CHALLENGE, &m), -EPROTONOSUPPORT);
        ASSERT_CONTAINS(c.error, "protocol version mismatch");
        mig_conn_done(&c);
        printf("ok: the source refuses a destination of protocol version %u\n", MIG_VERSION + 1);
}

/* A destination that skips checking the source and sends a made-up proof:
 * the source refuses it (a thief cannot skip the check and get pages). */
static void fake_destination_bad_proof(const char *endpoint)
{
        struct mig_msg m = { .type = MIG_HELLO, .hello = { .version = MIG_VERSION } };
        struct mig_conn c;

        ASSERT_OK(mig_conn_init(&c, -1, -1, 10000));
        ASSERT_OK(mig_connect(&c, endpoint));
        ASSERT_OK(mig_send(&c, &m));
        ASSERT_OK(mig_expect(&c, MIG_CHALLENGE, &m));
        m.type = MIG_AUTH;
        memset(m.auth.proof, 0x42, sizeof(m.auth.proof));
        ASSERT_OK(mig_send(&c, &m));
        ASSERT_EQ(mig_expect(&c, MIG_READY, &m), -EKEYREJECTED);
        ASSERT_CONTAINS(c.error, "does not know the token");
        mig_conn_done(&c);
        printf("ok: the source refuses a destination with a made-up proof\n");
}

/* --- the cases ---------------------------------------------------------------------- */

static unsigned completed_signals;

static int on_completed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        completed_signals++;
        return 0;
}

static bool source_completed(const void *userdata)
{
        return completed_signals >= *(const unsigned *) userdata;
}

/* A good import of @endpoint: identical, both Migration objects completed. */
static void import_and_check(const char *endpoint, const char *token, int source_fd, const char *source_region,
                             unsigned want_completed)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL, *mig = NULL, *src_mig = NULL, *state = NULL, *src_state = NULL;
        _cleanup_close_ int fd = -1;

        ASSERT_OK(import(&(struct import_args) { .endpoint = endpoint, .token = token }, &path, &fd, &error));
        expect_identical(source_fd, fd);
        mig = migration_of(dst, path);
        state = migration_string(dst, mig, "State");
        ASSERT_STREQ(state, "completed");
        ASSERT_EQ(migration_u64(dst, mig, "PagesPresent"), SIZE / 4096);
        ASSERT_EQ(migration_u64(dst, mig, "PagesTotal"), SIZE / 4096);
        /* Not measured while it moved (usage.c), measured once it completed: all of it. */
        resident_settles(dst, path, SIZE, 30);
        /* The source hears DONE after the destination answered: its signal says so. */
        process_until(src, source_completed, &want_completed, 60);
        src_mig = migration_of(src, source_region);
        src_state = migration_string(src, src_mig, "State");
        ASSERT_STREQ(src_state, "completed");
        region_release(dst, path);
        ASSERT_EQ(count_regions(dst), 0);
}

static void test_failures(const char *endpoint)
{
        /* A wrong token: refused before any page moves; the source waits on. */
        expect_import_fails(&(struct import_args) { .endpoint = endpoint, .token = "not-the-right-token-at-all" },
                            GMEM_ERROR_AUTHENTICATION_FAILED, "does not know the token");
        fake_destination_version(endpoint);
        fake_destination_bad_proof(endpoint);
        fake_source_case(FAKE_VERSION, GMEM_ERROR_VERSION_MISMATCH, "protocol version 3, this gmemd version 2");
        fake_source_case(FAKE_CORRUPT, GMEM_ERROR_CORRUPTED, "arrived corrupted");
        fake_source_case(FAKE_TRUNCATED, GMEM_ERROR_TRUNCATED_FRAME, "truncated frame");
        fake_source_case(FAKE_OVERSIZED, GMEM_ERROR_FRAME_TOO_LARGE, "exceeds its limit");
        fake_source_case(FAKE_DIGEST, GMEM_ERROR_CORRUPTED, "Poly1305 tag differs from the source's");
        fake_source_case(FAKE_REPLAYED_TAG, GMEM_ERROR_CORRUPTED, "Poly1305 tag differs from the source's");
        /* Bad arguments are refused before anything is built. */
        expect_import_fails(&(struct import_args) { .endpoint = "udp:1.2.3.4:5", .token = TOKEN },
                            GMEM_ERROR_INVALID_ARGUMENT, "neither tcp:HOST:PORT nor unix:PATH");
        expect_import_fails(&(struct import_args) { .endpoint = endpoint, .token = "short" },
                            GMEM_ERROR_INVALID_ARGUMENT, "characters long");
}

static void test_postcopy_unsupported(const char *endpoint)
{
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

        ASSERT_OK(kvm);
        if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_MISSING) > 0) {
                printf("this kernel has KVM_CAP_GUEST_MEMFD_MISSING: postcopy is the vm tier's test\n");
                return;
        }
        expect_import_fails(&(struct import_args) { .endpoint = endpoint, .token = TOKEN, .postcopy = true },
                            GMEM_ERROR_UNSUPPORTED, "pass option 'precopy_only'");
}

/* Cut after half the region: the second connection carries only the rest. */
static void test_resume(int vm, const char *region, int source_fd)
{
        struct migrate_proxy p = { .cut_after = SIZE / 2 };
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *endpoint = NULL, *path = NULL, *mig = NULL;
        _cleanup_close_ int fd = -1;

        ASSERT_OK(export(region, TOKEN, &endpoint, NULL, &error));
        p.upstream = endpoint;
        migrate_proxy_start(&p);
        ASSERT_OK(import(&(struct import_args) { .endpoint = p.endpoint, .token = TOKEN }, &path, &fd, &error));
        migrate_proxy_stop(&p);
        expect_identical(source_fd, fd);
        mig = migration_of(dst, path);
        ASSERT_EQ(migration_u64(dst, mig, "Reconnects"), 1);
        ASSERT_EQ(p.bulk_connections, 2);
        printf("ok: cut after %" PRIu64 " bytes, then %" PRIu64 " bytes on the new connection for %u bytes\n",
               p.bulk_bytes[0], p.bulk_bytes[1], (unsigned) SIZE);
        /* What was present before the cut was not asked for again: every
         * page arrived exactly once (what was in flight at the cut was lost,
         * never present, and came on the new connection), and the new
         * connection carried less than the whole region. */
        ASSERT_EQ(migration_u64(dst, mig, "Bytes"), SIZE);
        ASSERT(p.bulk_bytes[1] < SIZE);
        ASSERT(p.bulk_bytes[1] > 0);
        region_release(dst, path);
}

static void test_source_gone(int vm)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *region = NULL, *endpoint = NULL;
        struct holdings before = daemon_holdings(&src_env, src);
        _cleanup_close_ int fd = -1;

        region = source_region(vm, 99, &fd);
        ASSERT_OK(export(region, TOKEN, &endpoint, NULL, &error));
        /* Exporting it twice at once is refused. */
        expect_error_says(export(region, TOKEN, &(char *) { NULL }, NULL, &error), &error,
                          GMEM_ERROR_INVALID_ARGUMENT, "already migrating", "ExportRegion twice");
        region_release(src, region);
        expect_import_fails(&(struct import_args) { .endpoint = endpoint, .token = TOKEN, .reconnect_ms = 300 },
                            GMEM_ERROR_SOURCE_GONE, "is gone");
        ASSERT(test_env_daemon_alive(&src_env));
        fd = safe_close(fd);
        expect_same_holdings(&src_env, src, &before);
}

int main(void)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *region = NULL, *endpoint = NULL, *token = NULL;
        _cleanup_close_ int vm = -1, fd = -1;
        unsigned completed = 0;

        bus_tests_init();
        src = bus_test_start(&src_env, NULL);
        dst = bus_test_start(&dst_env, NULL);
        ASSERT_OK(sd_bus_match_signal(src, NULL, "org.gmem1", NULL, "org.gmem1.Migration", "Completed", on_completed,
                                      NULL));
        vm = make_vm();
        region = source_region(vm, 1, &fd);

        ASSERT_OK(export(region, NULL, &endpoint, &token, &error));
        ASSERT_EQ(strlen(token), 64);
        test_failures(endpoint);
        test_postcopy_unsupported(endpoint);
        /* After all of that the right destination still gets it. */
        import_and_check(endpoint, token, fd, region, ++completed);

        test_resume(vm, region, fd);
        test_source_gone(vm);

        sd_bus_flush_close_unref(src);
        sd_bus_flush_close_unref(dst);
        ASSERT_OK(test_env_stop(&src_env));
        ASSERT_OK(test_env_stop(&dst_env));
        return 0;
}
