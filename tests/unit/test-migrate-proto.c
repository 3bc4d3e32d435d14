/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration codec and handshake on their own: each malformed frame gets
 * its named errno, proofs bind the token, both sides and both nonces, and two
 * ends of a socketpair authenticate (or refuse a wrong token or version). */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "migrate-io.h"
#include "migrate-proto.h"
#include "unit.h"

static uint8_t buf[MIG_HEADER_SIZE + MIG_FRAME_MAX];

static void test_header(void)
{
        enum mig_type type;
        uint32_t length;
        char msg[256];

        mig_header_encode(buf, MIG_REQUEST, 16);
        ASSERT_OK(mig_header_decode(buf, &type, &length, msg, sizeof(msg)));
        ASSERT_EQ(type, MIG_REQUEST);
        ASSERT_EQ(length, 16);

        mig_header_encode(buf, MIG_HELLO, 41);
        ASSERT_EQ(mig_header_decode(buf, &type, &length, msg, sizeof(msg)), -EMSGSIZE);
        ASSERT_CONTAINS(msg, "HELLO frame of 41 bytes exceeds its limit of 40");
        mig_header_encode(buf, MIG_DATA, MIG_FRAME_MAX + 1);
        ASSERT_EQ(mig_header_decode(buf, &type, &length, msg, sizeof(msg)), -EMSGSIZE);
        mig_header_encode(buf, MIG_DATA, MIG_FRAME_MAX);
        ASSERT_OK(mig_header_decode(buf, &type, &length, msg, sizeof(msg)));

        buf[0] ^= 1;
        ASSERT_EQ(mig_header_decode(buf, &type, &length, msg, sizeof(msg)), -EPROTO);
        ASSERT_CONTAINS(msg, "not a gmem migration stream");
        mig_header_encode(buf, _MIG_TYPE_MAX, 0);
        ASSERT_EQ(mig_header_decode(buf, &type, &length, msg, sizeof(msg)), -EPROTO);
}

static void test_data(void)
{
        static uint8_t pages[3 * MIG_PAGE_SIZE];
        struct mig_msg m = { .type = MIG_DATA, .data = { .offset = 8192, .count = 3, .pages = pages } }, got;
        char msg[256];
        int n;

        for (size_t i = 0; i < sizeof(pages); i++)
                pages[i] = (uint8_t) (i * 7);
        n = mig_frame_encode(&m, buf, sizeof(buf));
        ASSERT_EQ(n, MIG_HEADER_SIZE + mig_data_length(3));
        ASSERT_OK(mig_payload_decode(MIG_DATA, buf + MIG_HEADER_SIZE, (uint32_t) n - MIG_HEADER_SIZE, &got, msg,
                                     sizeof(msg)));
        ASSERT_EQ(got.data.offset, 8192);
        ASSERT_EQ(got.data.count, 3);
        ASSERT_OK(mig_data_verify(&got, msg, sizeof(msg)));
        ASSERT(memcmp(got.data.pages, pages, sizeof(pages)) == 0);

        /* One flipped bit in the second page: named by its offset. */
        buf[n - MIG_PAGE_SIZE - 10] ^= 0x10;
        ASSERT_EQ(mig_data_verify(&got, msg, sizeof(msg)), -EBADMSG);
        ASSERT_CONTAINS(msg, "offset 12288 arrived corrupted");

        /* A frame cut short, or longer than its page count says. */
        ASSERT_EQ(mig_payload_decode(MIG_DATA, buf + MIG_HEADER_SIZE, (uint32_t) n - MIG_HEADER_SIZE - 1, &got, msg,
                                     sizeof(msg)), -ENODATA);
        ASSERT_CONTAINS(msg, "truncated frame");
        ASSERT_EQ(mig_payload_decode(MIG_DATA, buf + MIG_HEADER_SIZE, 8, &got, msg, sizeof(msg)), -ENODATA);
        ASSERT_EQ(mig_stream_parse(buf, (size_t) n - 1, NULL, NULL, msg, sizeof(msg)), -ENODATA);
        ASSERT_EQ(mig_frame_encode(&m, buf, 100), -ENOBUFS);
}

static void test_fixed(void)
{
        struct mig_msg m = { .type = MIG_REQUEST, .request = { .offset = 4096, .count = MIG_MAX_PAGES } }, got;
        char msg[256];
        int n;

        n = mig_frame_encode(&m, buf, sizeof(buf));
        ASSERT_OK(mig_stream_parse(buf, (size_t) n, NULL, NULL, msg, sizeof(msg)));
        ASSERT_EQ(mig_payload_decode(MIG_REQUEST, buf + MIG_HEADER_SIZE, 15, &got, msg, sizeof(msg)), -ENODATA);
        m.request.count = MIG_MAX_PAGES + 1;
        n = mig_frame_encode(&m, buf, sizeof(buf));
        ASSERT_EQ(mig_stream_parse(buf, (size_t) n, NULL, NULL, msg, sizeof(msg)), -EMSGSIZE);
        m.request = (typeof(m.request)) { .offset = 4095, .count = 1 };
        n = mig_frame_encode(&m, buf, sizeof(buf));
        ASSERT_EQ(mig_stream_parse(buf, (size_t) n, NULL, NULL, msg, sizeof(msg)), -EPROTO);

        m = (struct mig_msg) { .type = MIG_ERROR, .error = { .code = MIG_ERR_AUTH, .text = "no\x01way" } };
        n = mig_frame_encode(&m, buf, sizeof(buf));
        ASSERT_OK(mig_payload_decode(MIG_ERROR, buf + MIG_HEADER_SIZE, (uint32_t) n - MIG_HEADER_SIZE, &got, msg,
                                     sizeof(msg)));
        ASSERT_STREQ(got.error.text, "no?way");
        ASSERT_EQ(mig_error_to_errno(got.error.code), -EKEYREJECTED);
}

static void test_errors(void)
{
        int errnos[] = { -EKEYREJECTED, -EPROTONOSUPPORT, -EBADMSG, -EPROTO, -EMSGSIZE, -ENODATA, -EINVAL };

        for (size_t i = 0; i < ELEMENTSOF(errnos); i++)
                ASSERT_EQ(mig_error_to_errno(mig_error_from_errno(errnos[i])), errnos[i]);
        ASSERT_EQ(mig_error_from_errno(-ENOMEM), MIG_ERR_INTERNAL);
        ASSERT_EQ(mig_error_to_errno(1000), -EIO);
}

/* The region tag's key is RFC 5869 HKDF-SHA256 (a value computed elsewhere),
 * and another salt or token gives another key. */
static void test_region_key(void)
{
        static const uint8_t want[32] = {
                0x9c, 0xa0, 0xf5, 0xb0, 0x43, 0xd9, 0xbd, 0x53, 0x98, 0x94, 0xa8, 0xa5, 0xef, 0xb5, 0x81, 0xb6,
                0x74, 0x31, 0x62, 0x11, 0xad, 0x5e, 0x64, 0x12, 0xd5, 0x83, 0x2d, 0x52, 0xda, 0xef, 0x42, 0x00,
        };
        uint8_t salt[MIG_SALT_SIZE], k1[32], k2[32];

        memset(salt, 0xa5, sizeof(salt));
        ASSERT_OK(mig_region_key("0123456789abcdef-token", salt, k1));
        ASSERT(memcmp(k1, want, sizeof(want)) == 0);
        ASSERT_OK(mig_region_key("0123456789abcdef-other", salt, k2));
        ASSERT(memcmp(k1, k2, sizeof(k1)) != 0);
        salt[31] ^= 1;
        ASSERT_OK(mig_region_key("0123456789abcdef-token", salt, k2));
        ASSERT(memcmp(k1, k2, sizeof(k1)) != 0);
}

static void test_proofs_and_tokens(void)
{
        uint8_t a[MIG_NONCE_SIZE], b[MIG_NONCE_SIZE], p1[MIG_PROOF_SIZE], p2[MIG_PROOF_SIZE];
        _cleanup_free_ char *t1 = NULL, *t2 = NULL;
        char msg[256];

        ASSERT_OK(mig_nonce_new(a));
        ASSERT_OK(mig_nonce_new(b));
        ASSERT(memcmp(a, b, sizeof(a)) != 0);
        ASSERT_OK(mig_token_new(&t1));
        ASSERT_OK(mig_token_new(&t2));
        ASSERT_EQ(strlen(t1), 64);
        ASSERT(strcmp(t1, t2) != 0);
        ASSERT_OK(mig_token_check(t1, msg, sizeof(msg)));

        ASSERT_OK(mig_proof(t1, true, a, b, p1));
        ASSERT_OK(mig_proof(t1, true, a, b, p2));
        ASSERT(mig_proof_equal(p1, p2));
        ASSERT_OK(mig_proof(t2, true, a, b, p2)); /* another token */
        ASSERT(!mig_proof_equal(p1, p2));
        ASSERT_OK(mig_proof(t1, false, a, b, p2)); /* the other side */
        ASSERT(!mig_proof_equal(p1, p2));
        ASSERT_OK(mig_proof(t1, true, b, a, p2)); /* nonces swapped */
        ASSERT(!mig_proof_equal(p1, p2));

        test_region_key();

        ASSERT_EQ(mig_token_check("short", msg, sizeof(msg)), -EINVAL);
        ASSERT_CONTAINS(msg, "5 characters long; 16 to 256");
        ASSERT_EQ(mig_token_check("sixteen chars ok", msg, sizeof(msg)), -EINVAL);
        ASSERT_CONTAINS(msg, "character 7 is 0x20");
}

static void test_endpoints(void)
{
        struct sockaddr_storage sa;
        socklen_t len;
        char msg[256];

        ASSERT_OK(mig_endpoint_parse("tcp:127.0.0.1:4000", &sa, &len, msg, sizeof(msg)));
        ASSERT_EQ(sa.ss_family, AF_INET);
        ASSERT_OK(mig_endpoint_parse("tcp:[::1]:0", &sa, &len, msg, sizeof(msg)));
        ASSERT_EQ(sa.ss_family, AF_INET6);
        ASSERT_OK(mig_endpoint_parse("unix:/run/x.sock", &sa, &len, msg, sizeof(msg)));
        ASSERT_EQ(sa.ss_family, AF_UNIX);
        ASSERT_EQ(mig_endpoint_parse("tcp:127.0.0.1:65536", &sa, &len, msg, sizeof(msg)), -EINVAL);
        ASSERT_CONTAINS(msg, "port of 0 to 65535");
        ASSERT_EQ(mig_endpoint_parse("tcp:127.0.0.1", &sa, &len, msg, sizeof(msg)), -EINVAL);
        ASSERT_EQ(mig_endpoint_parse("unix:relative", &sa, &len, msg, sizeof(msg)), -EINVAL);
        ASSERT_EQ(mig_endpoint_parse("udp:1.2.3.4:5", &sa, &len, msg, sizeof(msg)), -EINVAL);
        ASSERT_CONTAINS(msg, "neither tcp:HOST:PORT nor unix:PATH");
}

struct side {
        int fd;
        const char *token;
        int result;
        uint64_t size;
        enum mig_channel channel;
        uint8_t salt[MIG_SALT_SIZE];
};

static void *source_side(void *arg)
{
        struct side *s = arg;
        struct mig_conn c;

        ASSERT_OK(mig_conn_init(&c, s->fd, -1, 5000));
        memset(s->salt, 0xa5, sizeof(s->salt));
        s->result = mig_handshake_src(&c, s->token, 1 << 20, s->salt, &s->channel);
        if (s->result < 0)
                mig_send_error(&c, s->result);
        mig_conn_done(&c);
        return NULL;
}

/* Handshake over a socketpair: the destination's result; the source's in *src. */
static int handshake(const char *src_token, const char *dst_token, struct side *src, uint64_t *size,
                     uint8_t salt[MIG_SALT_SIZE])
{
        struct mig_conn c;
        pthread_t t;
        int sv[2], r;

        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv));
        *src = (struct side) { .fd = sv[0], .token = src_token };
        ASSERT_EQ(pthread_create(&t, NULL, source_side, src), 0);
        ASSERT_OK(mig_conn_init(&c, sv[1], -1, 5000));
        r = mig_handshake_dst(&c, dst_token, MIG_CHANNEL_FAULT, size, salt);
        if (r < 0)
                mig_send_error(&c, r);
        mig_conn_done(&c);
        pthread_join(t, NULL);
        return r;
}

static void test_handshake(void)
{
        const char *token = "0123456789abcdef-token";
        struct side src;
        uint8_t salt[MIG_SALT_SIZE] = {};
        uint64_t size = 0;

        ASSERT_OK(handshake(token, token, &src, &size, salt));
        ASSERT_OK(src.result);
        ASSERT_EQ(size, 1 << 20);
        ASSERT_EQ(src.channel, MIG_CHANNEL_FAULT);
        ASSERT(memcmp(salt, src.salt, MIG_SALT_SIZE) == 0); /* the source's salt came across */

        /* A wrong token fails on both ends: neither learns the other's secret. */
        ASSERT_EQ(handshake(token, "0123456789abcdef-other", &src, &size, salt), -EKEYREJECTED);
        ASSERT_EQ(src.result, -EKEYREJECTED);
}

static void test_version_mismatch(void)
{
        struct mig_msg m = { .type = MIG_HELLO, .hello = { .version = MIG_VERSION + 1 } };
        struct side src;
        pthread_t t;
        int sv[2], n;
        char msg[256];
        struct mig_msg got;
        ssize_t k;

        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        src = (struct side) { .fd = sv[0], .token = "0123456789abcdef-token" };
        ASSERT_EQ(pthread_create(&t, NULL, source_side, &src), 0);
        n = mig_frame_encode(&m, buf, sizeof(buf));
        ASSERT_EQ(write(sv[1], buf, (size_t) n), n);
        pthread_join(t, NULL);
        ASSERT_EQ(src.result, -EPROTONOSUPPORT);
        /* The source said why: an ERROR naming both versions. */
        k = read(sv[1], buf, sizeof(buf));
        ASSERT(k > (ssize_t) MIG_HEADER_SIZE);
        ASSERT_OK(mig_payload_decode(MIG_ERROR, buf + MIG_HEADER_SIZE, (uint32_t) k - MIG_HEADER_SIZE, &got, msg,
                                     sizeof(msg)));
        ASSERT_EQ(got.error.code, MIG_ERR_VERSION);
        ASSERT_CONTAINS(got.error.text, "version 3, this gmemd version 2");
        close(sv[1]);
}

int main(void)
{
        test_header();
        test_data();
        test_fixed();
        test_errors();
        test_proofs_and_tokens();
        test_endpoints();
        test_handshake();
        test_version_mismatch();
        return 0;
}
