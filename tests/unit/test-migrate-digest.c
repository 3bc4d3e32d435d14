/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration's region tag on its own: fed in order, with gaps, repeats or
 * from two threads, inline or on its helper thread, it is the Poly1305 tag of
 * the whole buffer under the key mig_region_key() derives; unkeyed it takes nothing.
 * Taken as a postcopy destination receives them (out of order, repeated), too. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "migrate-digest.h"
#include "migrate-proto.h"
#include "unit.h"

#define SIZE (24U << 20)
#define CHUNK (1U << 20)

#define TOKEN "0123456789abcdef-token"

static uint8_t *buf;
static uint8_t want[MIG_DIGEST_LEN], salt[MIG_DIGEST_SALT_LEN];

static void init(struct mig_digest *d, bool async)
{
        ASSERT_OK(mig_digest_init(d, SIZE, async));
        ASSERT_OK(mig_digest_key(d, TOKEN, salt));
}

/* The expected tag, straight from OpenSSL in one call. */
static void expected_tag(void)
{
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "POLY1305", NULL);
        EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
        uint8_t key[32];
        size_t len = 0;

        ASSERT_OK(mig_region_key(TOKEN, salt, key));
        ASSERT(ctx && EVP_MAC_init(ctx, key, sizeof(key), NULL) == 1);
        ASSERT(EVP_MAC_update(ctx, buf, SIZE) == 1);
        ASSERT(EVP_MAC_final(ctx, want, &len, sizeof(want)) == 1);
        ASSERT_EQ(len, MIG_DIGEST_LEN);
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
}

static void check(struct mig_digest *d)
{
        uint8_t got[MIG_DIGEST_LEN], again[MIG_DIGEST_LEN];

        ASSERT_OK(mig_digest_final(d, buf, got));
        ASSERT(memcmp(got, want, MIG_DIGEST_LEN) == 0);
        ASSERT_OK(mig_digest_final(d, buf, again));
        ASSERT(memcmp(again, want, MIG_DIGEST_LEN) == 0);
        mig_digest_done(d);
}

static void test_in_order(bool async)
{
        struct mig_digest d;

        init(&d, async);
        for (uint64_t off = 0; off < SIZE; off += CHUNK) {
                mig_digest_feed(&d, buf, off, CHUNK);
                ASSERT_U64_EQ(mig_digest_ready(&d), off + CHUNK);
        }
        ASSERT_EQ(d.started, async);
        check(&d);
}

/* Out of order, repeated and overlapping pieces: only what continues counts,
 * and final() takes the rest in order from the buffer. */
static void test_gaps(bool async)
{
        struct mig_digest d;

        init(&d, async);
        mig_digest_feed(&d, buf, 3 * CHUNK, CHUNK);
        ASSERT_U64_EQ(mig_digest_ready(&d), 0);
        mig_digest_feed(&d, buf, 0, 2 * CHUNK);
        mig_digest_feed(&d, buf, 0, CHUNK);
        mig_digest_feed(&d, buf, CHUNK, 2 * CHUNK);
        ASSERT_U64_EQ(mig_digest_ready(&d), 3 * CHUNK);
        check(&d);
}

static void test_nothing_fed(void)
{
        struct mig_digest d;

        init(&d, true);
        check(&d);
}

/* A byte changed after it was fed but before the helper got to it would be
 * hashed as it is then: the digest is of the buffer, not of copies. */
static void test_differs(void)
{
        struct mig_digest d;
        uint8_t got[MIG_DIGEST_LEN];

        init(&d, true);
        buf[SIZE - 1] ^= 1;
        mig_digest_feed(&d, buf, 0, SIZE);
        ASSERT_OK(mig_digest_final(&d, buf, got));
        buf[SIZE - 1] ^= 1;
        ASSERT(memcmp(got, want, MIG_DIGEST_LEN) != 0);
        mig_digest_done(&d);
}

struct feeder {
        struct mig_digest *d;
        unsigned parity;
};

static void *feed_half(void *arg)
{
        struct feeder *f = arg;

        for (uint64_t off = 0; off < SIZE; off += CHUNK)
                if ((off / CHUNK) % 2 == f->parity)
                        mig_digest_feed(f->d, buf, off, CHUNK);
        return NULL;
}

static void test_two_feeders(void)
{
        struct mig_digest d;
        struct feeder f[2] = { { &d, 0 }, { &d, 1 } };
        pthread_t t[2];

        init(&d, true);
        for (unsigned i = 0; i < 2; i++)
                ASSERT_EQ(pthread_create(&t[i], NULL, feed_half, &f[i]), 0);
        for (unsigned i = 0; i < 2; i++)
                pthread_join(t[i], NULL);
        check(&d);
}

/* Unkeyed it takes nothing and has no tag; keyed again with the same salt
 * is fine, with another one (another migration answering) refused. */
static void test_keying(void)
{
        struct mig_digest d;
        uint8_t got[MIG_DIGEST_LEN], other[MIG_DIGEST_SALT_LEN];

        ASSERT_OK(mig_digest_init(&d, SIZE, true));
        mig_digest_feed(&d, buf, 0, CHUNK);
        ASSERT_U64_EQ(mig_digest_ready(&d), 0);
        ASSERT_EQ(mig_digest_final(&d, buf, got), -EIO);
        ASSERT_OK(mig_digest_key(&d, TOKEN, salt));
        ASSERT_OK(mig_digest_key(&d, TOKEN, salt));
        memcpy(other, salt, sizeof(other));
        other[0] ^= 1;
        ASSERT_EQ(mig_digest_key(&d, TOKEN, other), -EPROTO);
        check(&d);

        /* Another token: another tag of the same bytes. */
        ASSERT_OK(mig_digest_init(&d, SIZE, false));
        ASSERT_OK(mig_digest_key(&d, "0123456789abcdef-other", salt));
        ASSERT_OK(mig_digest_final(&d, buf, got));
        ASSERT(memcmp(got, want, MIG_DIGEST_LEN) != 0);
        mig_digest_done(&d);
}

/* Stopped (the migration cancelled): final() fails instead of waiting. */
static void test_stopped(void)
{
        struct mig_digest d;
        uint8_t got[MIG_DIGEST_LEN];

        init(&d, true);
        mig_digest_feed(&d, buf, 0, CHUNK);
        mig_digest_stop(&d);
        mig_digest_stop(&d);
        mig_digest_feed(&d, buf, CHUNK, CHUNK);
        ASSERT_U64_EQ(mig_digest_ready(&d), CHUNK);
        ASSERT_EQ(mig_digest_final(&d, buf, got), -EIO);
        mig_digest_done(&d);
}

/* Where the tag stands once [0, @end) came: kept pages right after it are taken too. */
static uint64_t ready_after(uint64_t end, const uint64_t *kept, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (kept[i] * MIG_PAGE_SIZE == end) {
                        end += MIG_PAGE_SIZE;
                        i = (size_t) -1; /* look again from the first */
                }
        return end;
}

/* A postcopy destination: pages taken as they arrive, faults ahead of the
 * stream and repeats included, from buffers the "guest" overwrites right
 * after; the tag is the source's, whatever the mapping holds at final(). */
static void test_take_out_of_order(void)
{
        uint8_t *mapping = calloc(1, SIZE), *rx = malloc(4 * MIG_PAGE_SIZE), got[MIG_DIGEST_LEN];
        const uint64_t faults[] = { 7, 300, 8, 301, 4000, 7, 5000 };
        struct mig_digest d;

        ASSERT(mapping && rx);
        init(&d, false);
        /* Faults first: kept, the tag cannot take them yet. */
        for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
                uint64_t off = faults[i] * MIG_PAGE_SIZE;

                memcpy(rx, buf + off, MIG_PAGE_SIZE);
                ASSERT_OK(mig_digest_take(&d, off, rx, MIG_PAGE_SIZE));
                memset(rx, 0xee, MIG_PAGE_SIZE); /* the receive buffer is reused */
                mapping[off] ^= 1;               /* and the guest writes the page */
        }
        ASSERT_U64_EQ(mig_digest_ready(&d), 0);
        /* The stream, in order, 4 pages at a time, over pages taken before too. */
        for (uint64_t off = 0; off < SIZE; off += 4 * MIG_PAGE_SIZE) {
                memcpy(rx, buf + off, 4 * MIG_PAGE_SIZE);
                ASSERT_OK(mig_digest_take(&d, off, rx, 4 * MIG_PAGE_SIZE));
                memset(rx, 0xee, 4 * MIG_PAGE_SIZE);
                ASSERT_U64_EQ(mig_digest_ready(&d), ready_after(off + 4 * MIG_PAGE_SIZE, faults,
                                                                sizeof(faults) / sizeof(faults[0])));
        }
        /* A late repeat changes nothing; a misaligned take is ignored. */
        ASSERT_OK(mig_digest_take(&d, 0, rx, MIG_PAGE_SIZE));
        ASSERT_OK(mig_digest_take(&d, 1, rx, MIG_PAGE_SIZE));
        ASSERT_OK(mig_digest_final(&d, mapping, got));
        ASSERT(memcmp(got, want, MIG_DIGEST_LEN) == 0);
        mig_digest_done(&d);
        free(mapping);
        free(rx);
}

int main(void)
{
        uint64_t x = 0x9E3779B97F4A7C15ULL;

        buf = malloc(SIZE);
        ASSERT(buf);
        for (size_t i = 0; i < SIZE / 8; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                memcpy(buf + i * 8, &x, 8);
        }
        memset(salt, 0x3c, sizeof(salt));
        expected_tag();
        test_in_order(true);
        test_in_order(false);
        test_gaps(true);
        test_gaps(false);
        test_nothing_fed();
        test_differs();
        test_two_feeders();
        test_keying();
        test_stopped();
        test_take_out_of_order();
        free(buf);
        return 0;
}
