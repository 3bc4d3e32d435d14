/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration's region tag: Poly1305 (OpenSSL's EVP_MAC, vectorised) under a
 * one-time key per migration, on a helper thread so it overlaps the socket I/O. */
#include <errno.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "migrate-digest.h"
#include "migrate-proto.h"

#define STEP (4ULL << 20) /* the helper looks for stop between steps */

int mig_digest_init(struct mig_digest *d, uint64_t size, bool async)
{
        *d = (struct mig_digest) { .size = size, .async = async, .live = true };
        pthread_mutex_init(&d->lock, NULL);
        pthread_cond_init(&d->cond, NULL);
        return 0;
}

static int key_locked(struct mig_digest *d, const char *token, const uint8_t salt[MIG_DIGEST_SALT_LEN])
{
        EVP_MAC *mac;
        uint8_t key[32];
        int r;

        if (d->keyed)
                return memcmp(d->salt, salt, MIG_DIGEST_SALT_LEN) == 0 ? 0 : -EPROTO;
        r = mig_region_key(token, salt, key);
        mac = r >= 0 ? EVP_MAC_fetch(NULL, "POLY1305", NULL) : NULL;
        d->ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
        EVP_MAC_free(mac);
        if (!d->ctx || EVP_MAC_init(d->ctx, key, sizeof(key), NULL) != 1) {
                EVP_MAC_CTX_free(d->ctx);
                d->ctx = NULL;
                r = -EIO;
        }
        explicit_bzero(key, sizeof(key));
        if (r < 0)
                return r;
        memcpy(d->salt, salt, MIG_DIGEST_SALT_LEN);
        d->keyed = true;
        return 0;
}

int mig_digest_key(struct mig_digest *d, const char *token, const uint8_t salt[MIG_DIGEST_SALT_LEN])
{
        int r;

        pthread_mutex_lock(&d->lock);
        r = key_locked(d, token, salt);
        pthread_mutex_unlock(&d->lock);
        return r;
}

/* Hash [cursor, end) unlocked: only the helper (or final() before it
 * started) does; false when OpenSSL failed. */
static bool hash_to(struct mig_digest *d, uint64_t end)
{
        while (d->cursor < end && !atomic_load(&d->stop)) {
                uint64_t n = end - d->cursor < STEP ? end - d->cursor : STEP;

                if (EVP_MAC_update(d->ctx, d->base + d->cursor, n) != 1)
                        return false;
                d->cursor += n;
        }
        return true;
}

static bool finalize(struct mig_digest *d)
{
        size_t len = 0;

        return hash_to(d, d->size) && d->cursor == d->size &&
               EVP_MAC_final(d->ctx, d->value, &len, MIG_DIGEST_LEN) == 1 && len == MIG_DIGEST_LEN;
}

/* Until final() asked and everything is hashed, or stop. */
static void *helper(void *arg)
{
        struct mig_digest *d = arg;

        pthread_mutex_lock(&d->lock);
        while (!atomic_load(&d->stop) && !d->done && !d->failed) {
                uint64_t end = atomic_load(&d->ready);
                bool last = d->want_final, ok;

                if (d->cursor == end && !last) {
                        pthread_cond_wait(&d->cond, &d->lock);
                        continue;
                }
                pthread_mutex_unlock(&d->lock);
                ok = last ? finalize(d) : hash_to(d, end);
                pthread_mutex_lock(&d->lock);
                d->failed = !ok;
                d->done = ok && last;
                pthread_cond_broadcast(&d->cond);
        }
        pthread_mutex_unlock(&d->lock);
        return NULL;
}

void mig_digest_feed(struct mig_digest *d, const uint8_t *base, uint64_t offset, uint64_t length)
{
        pthread_mutex_lock(&d->lock);
        if (!d->base) /* the same mapping every time; set before the helper starts */
                d->base = base;
        if (!d->keyed || d->done || d->failed || atomic_load(&d->stop) || offset > atomic_load(&d->ready) ||
            offset + length <= atomic_load(&d->ready))
                goto out;
        atomic_store(&d->ready, offset + length);
        if (!d->async) {
                d->failed = !hash_to(d, offset + length);
                goto out;
        }
        if (!d->started)
                d->started = pthread_create(&d->thread, NULL, helper, d) == 0;
        if (!d->started) /* no thread: hash here, as without one */
                d->failed = !hash_to(d, offset + length);
        pthread_cond_signal(&d->cond);
out:
        pthread_mutex_unlock(&d->lock);
}

/* Hash @n bytes at @bytes as the next ones, under the lock. */
static bool take_next(struct mig_digest *d, const uint8_t *bytes, uint64_t n)
{
        if (EVP_MAC_update(d->ctx, bytes, n) != 1)
                return false;
        d->cursor += n;
        atomic_store(&d->ready, d->cursor);
        return true;
}

/* A page take() keeps until the tag reaches it; a node of d->kept. */
struct kept_page {
        uint64_t offset; /* first: the tree compares it */
        uint8_t bytes[MIG_PAGE_SIZE];
};

static int kept_compare(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* The page kept for @offset, out of the tree (the caller frees it), or NULL. */
static struct kept_page *kept_remove(struct mig_digest *d, uint64_t offset)
{
        void **node = d->kept ? tfind(&offset, &d->kept, kept_compare) : NULL;
        struct kept_page *k = node ? *node : NULL;

        if (k)
                tdelete(k, &d->kept, kept_compare);
        return k;
}

/* Keep a copy of the page at @offset, unless one is kept already. */
static int kept_add(struct mig_digest *d, uint64_t offset, const uint8_t *bytes)
{
        struct kept_page *k;
        void **node;

        if (d->kept && tfind(&offset, &d->kept, kept_compare))
                return 0;
        k = malloc(sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->offset = offset;
        memcpy(k->bytes, bytes, MIG_PAGE_SIZE);
        node = tsearch(k, &d->kept, kept_compare);
        if (!node) {
                free(k);
                return -ENOMEM;
        }
        return 0;
}

/* The kept pages that continue what is hashed now. */
static bool take_kept(struct mig_digest *d)
{
        struct kept_page *k;

        while (d->cursor < d->size && (k = kept_remove(d, d->cursor))) {
                bool ok = take_next(d, k->bytes, MIG_PAGE_SIZE);

                free(k);
                if (!ok)
                        return false;
        }
        return true;
}

static int take_locked(struct mig_digest *d, uint64_t offset, const uint8_t *bytes, uint64_t length)
{
        uint64_t end = offset + length;
        int r;

        if (offset < d->cursor) { /* taken before, in part */
                if (end <= d->cursor)
                        return 0;
                bytes += d->cursor - offset;
                offset = d->cursor;
        }
        if (offset == d->cursor) {
                /* The same bytes, kept when they came the other way. */
                for (uint64_t o = offset; d->kept && o < end; o += MIG_PAGE_SIZE)
                        free(kept_remove(d, o));
                if (!take_next(d, bytes, end - offset) || !take_kept(d))
                        d->failed = true;
                return 0;
        }
        for (; offset < end; offset += MIG_PAGE_SIZE, bytes += MIG_PAGE_SIZE) {
                r = kept_add(d, offset, bytes);
                if (r < 0)
                        return r;
        }
        return 0;
}

int mig_digest_take(struct mig_digest *d, uint64_t offset, const uint8_t *bytes, uint64_t length)
{
        int r = 0;

        pthread_mutex_lock(&d->lock);
        if (d->keyed && !d->async && !d->done && !d->failed && !atomic_load(&d->stop) &&
            offset % MIG_PAGE_SIZE == 0 && length % MIG_PAGE_SIZE == 0 && offset <= d->size &&
            length <= d->size - offset)
                r = take_locked(d, offset, bytes, length);
        pthread_mutex_unlock(&d->lock);
        return r;
}

uint64_t mig_digest_ready(struct mig_digest *d)
{
        return atomic_load(&d->ready);
}

int mig_digest_final(struct mig_digest *d, const uint8_t *base, uint8_t out[MIG_DIGEST_LEN])
{
        int r;

        pthread_mutex_lock(&d->lock);
        if (!d->base)
                d->base = base;
        /* Stopped: a helper being joined may still hold the context. */
        if (!d->done && (!d->keyed || atomic_load(&d->stop))) {
                pthread_mutex_unlock(&d->lock);
                return -EIO;
        }
        if (!d->done && !d->failed && !d->started)
                d->done = !(d->failed = !finalize(d));
        d->want_final = true;
        pthread_cond_broadcast(&d->cond);
        while (!d->done && !d->failed && !atomic_load(&d->stop))
                pthread_cond_wait(&d->cond, &d->lock);
        r = d->done ? 0 : -EIO;
        if (r >= 0)
                memcpy(out, d->value, MIG_DIGEST_LEN);
        pthread_mutex_unlock(&d->lock);
        return r;
}

void mig_digest_stop(struct mig_digest *d)
{
        bool join;

        pthread_mutex_lock(&d->lock);
        atomic_store(&d->stop, true);
        pthread_cond_broadcast(&d->cond);
        join = d->started;
        d->started = false;
        pthread_mutex_unlock(&d->lock);
        if (join)
                pthread_join(d->thread, NULL);
}

void mig_digest_done(struct mig_digest *d)
{
        if (!d->live)
                return;
        mig_digest_stop(d);
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->cond);
        EVP_MAC_CTX_free(d->ctx);
        d->ctx = NULL;
        tdestroy(d->kept, free);
        d->kept = NULL;
        d->live = false;
}
