/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The whole-region SHA-256 of a migration, hashed in order from the region's
 * mapping as pages are sent or present, inline or on a helper thread of its own. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define MIG_DIGEST_LEN 32

struct mig_digest {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        void *ctx;                /* EVP_MD_CTX: the helper's alone once it started */
        const uint8_t *base;      /* the region's mapping */
        uint64_t size;
        uint64_t cursor;          /* hashed so far */
        _Atomic uint64_t ready;   /* [0, ready) may be hashed: sent, or present at the destination */
        bool async;               /* hash on the helper thread (else in feed(), under the lock) */
        bool started, want_final, done, failed;
        atomic_bool stop;
        pthread_t thread;
        uint8_t value[MIG_DIGEST_LEN];
};

int mig_digest_init(struct mig_digest *d, uint64_t size, bool async);
/* [offset, offset + length) of @base is final: the digest may take it when it
 * continues what is ready (else ignored; final() takes the rest in order). */
void mig_digest_feed(struct mig_digest *d, const uint8_t *base, uint64_t offset, uint64_t length);
/* Where the ready part ends: the next feed() should start there. */
uint64_t mig_digest_ready(struct mig_digest *d);
/* SHA-256 of all @size bytes at @base (the rest hashed now), the same value
 * on every call after the first; -EIO when OpenSSL failed. */
int mig_digest_final(struct mig_digest *d, const uint8_t *base, uint8_t out[MIG_DIGEST_LEN]);
/* Stop and join the helper (before the mapping goes); idempotent. */
void mig_digest_stop(struct mig_digest *d);
void mig_digest_done(struct mig_digest *d);
