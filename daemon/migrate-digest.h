/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The whole-region tag of a migration (Poly1305, keyed per migration), computed
 * in order from the region's mapping as pages are sent or present, inline or
 * on a helper thread of its own. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define MIG_DIGEST_LEN 16 /* MIG_DIGEST_SIZE */
#define MIG_DIGEST_SALT_LEN 32

struct mig_digest {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        void *ctx;                /* EVP_MAC_CTX once keyed: the helper's alone once it started */
        const uint8_t *base;      /* the region's mapping */
        uint64_t size;
        uint64_t cursor;          /* hashed so far */
        _Atomic uint64_t ready;   /* [0, ready) may be hashed: sent, or present at the destination */
        bool async;               /* hash on the helper thread (else in feed(), under the lock) */
        bool live, keyed;
        uint8_t salt[MIG_DIGEST_SALT_LEN];
        bool started, want_final, done, failed;
        atomic_bool stop;
        pthread_t thread;
        void *kept;               /* take(): pages received ahead of cursor, a tsearch() tree by offset */
        uint8_t value[MIG_DIGEST_LEN];
};

int mig_digest_init(struct mig_digest *d, uint64_t size, bool async);
/* Key it with the token and the migration's salt (mig_region_key()); once
 * keyed, the same salt again is 0 and another one -EPROTO. Nothing is
 * taken before: feed() ignores what comes unkeyed, final() fails. */
int mig_digest_key(struct mig_digest *d, const char *token, const uint8_t salt[MIG_DIGEST_SALT_LEN]);
/* [offset, offset + length) of @base is final: the digest may take it when it
 * continues what is ready (else ignored; final() takes the rest in order). */
void mig_digest_feed(struct mig_digest *d, const uint8_t *base, uint64_t offset, uint64_t length);
/* A postcopy destination's pages [offset, offset + length) as they arrived in
 * @bytes: the guest may write a page as soon as it is installed, so the tag
 * takes the received bytes, never the mapping. A page ahead of what is hashed
 * is kept (a copy) until the pages before it came; a page taken before is
 * ignored. Synchronous digests only (not async). -ENOMEM, or 0. */
int mig_digest_take(struct mig_digest *d, uint64_t offset, const uint8_t *bytes, uint64_t length);
/* Where the ready part ends: the next feed() should start there. */
uint64_t mig_digest_ready(struct mig_digest *d);
/* The tag of all @size bytes at @base (the rest taken now), the same value
 * on every call after the first; -EIO when unkeyed, stopped or OpenSSL failed. */
int mig_digest_final(struct mig_digest *d, const uint8_t *base, uint8_t out[MIG_DIGEST_LEN]);
/* Stop and join the helper (before the mapping goes); idempotent. */
void mig_digest_stop(struct mig_digest *d);
void mig_digest_done(struct mig_digest *d);
