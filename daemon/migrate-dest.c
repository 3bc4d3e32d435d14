/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The destination side: a bulk thread pulls every missing page in order with
 * a window of REQUESTs; with postcopy a fault thread reads the kernel's fault
 * fd (and the VMM's fast channel) and fetches those pages on a channel of
 * their own. Pages are installed in batches; a dropped connection is
 * re-established and only what is still missing is asked for again. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "kvm-uapi.h"
#include "log.h"
#include "migrate-dest.h"
#include "migrate-io.h"
#include "migration.h"
#include "region.h"

#define WINDOW 8             /* REQUESTs of up to 1 MiB in flight on the bulk channel */
#define DATA_TIMEOUT_MS 30000
#define FAULT_BATCH 64
#define PREFAULT_STEP (4ULL << 20)

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

/* Errors a new connection may cure. */
static bool transient(int r)
{
        return r == -ECONNRESET || r == -ETIMEDOUT;
}

/* Present pages from where the digest stands on, to the digest's helper
 * thread (precopy; postcopy takes the received bytes in install()). */
static void digest_advance(struct migration *mig)
{
        uint64_t from = mig_digest_ready(&mig->digest), end = from;

        if (mig->postcopy)
                return;

        while (end < mig->size && end - from < MIG_MAX_PAGES * MIG_PAGE_SIZE && atomic_load(&mig->present[end / MIG_PAGE_SIZE]))
                end += MIG_PAGE_SIZE;
        if (end > from)
                migration_digest_feed(mig, from, end - from);
}

static void mark_present(struct migration *mig, uint64_t first, uint64_t count)
{
        for (uint64_t p = first; p < first + count; p++)
                if (!atomic_exchange(&mig->present[p], 1))
                        atomic_fetch_add(&mig->pages_present, 1);
}

/* Install @count pages at @offset: KVM_GMEM_INSTALL in one call where it can
 * (a page present already is skipped), else through the mapping. */
static int install(struct migration *mig, uint64_t offset, uint32_t count, const uint8_t *pages)
{
        uint64_t done = 0, len = (uint64_t) count * MIG_PAGE_SIZE;
        int r;

        if (!mig->postcopy) {
                /* Read there directly (precopy_sink()), unless it was out of bounds. */
                if (pages != (uint8_t *) mig->region->map + offset)
                        memcpy((uint8_t *) mig->region->map + offset, pages, len);
                mark_present(mig, offset / MIG_PAGE_SIZE, count);
                return 0;
        }
        while (done < len) {
                struct kvm_gmem_install in = { .offset = offset + done, .size = len - done,
                                               .src = (uintptr_t) (pages + done), .mode = KVM_GMEM_INSTALL_COPY };
                r = ioctl(mig->region->fd, KVM_GMEM_INSTALL, &in);

                /* EEXIST: that page came the other way meanwhile; EINTR: go on after what is done. */
                if (r < 0 && errno != EEXIST && errno != EINTR)
                        return negative_errno();
                done += in.installed + (r < 0 && errno == EEXIST ? MIG_PAGE_SIZE : 0);
                if (r >= 0 && in.installed == 0)
                        return -EIO;
        }
        /* The tag takes what arrived: the guest may write the pages from now on. A
         * page that came the other way meanwhile holds the same bytes (the source is
         * stopped), and is taken once. */
        r = mig_digest_take(&mig->digest, offset, pages, len);
        if (r < 0)
                return r;
        mark_present(mig, offset / MIG_PAGE_SIZE, count);
        return 0;
}

static int receive_data(struct migration *mig, struct mig_conn *c, struct mig_msg *m)
{
        int r = mig_expect(c, MIG_DATA, m);

        if (r < 0)
                return r;
        if (m->data.offset > mig->size || (uint64_t) m->data.count * MIG_PAGE_SIZE > mig->size - m->data.offset) {
                snprintf(c->error, sizeof(c->error), "DATA at %" PRIu64 " reaches past the region", m->data.offset);
                return -EPROTO;
        }
        r = mig_data_verify(m, c->error, sizeof(c->error));
        if (r < 0)
                return r;
        atomic_fetch_add(&mig->bytes, (uint64_t) m->data.count * MIG_PAGE_SIZE);
        r = install(mig, m->data.offset, m->data.count, m->data.pages);
        if (r < 0)
                snprintf(c->error, sizeof(c->error), "installing %u pages at %" PRIu64 " failed: %s", m->data.count,
                         m->data.offset, strerror(-r));
        return r;
}

/* Sleep @ms unless cancelled: 0 or -ECANCELED. */
static int pause_ms(struct migration *mig, int ms)
{
        struct pollfd p = { .fd = mig->cancel_fd, .events = POLLIN };

        return poll(&p, 1, ms) > 0 ? -ECANCELED : 0;
}

/* Connected and authenticated on @channel, retrying while the source may
 * come back; -EHOSTDOWN once reconnect_timeout_ms passed without it. */
static int connect_channel(struct migration *mig, struct mig_conn *c, enum mig_channel channel)
{
        uint64_t deadline = now_ns() + (uint64_t) mig->reconnect_timeout_ms * 1000000ULL, size;
        uint8_t salt[MIG_SALT_SIZE];
        int backoff = 20, r;

        for (;;) {
                c->timeout_ms = 10000;
                r = mig_connect(c, mig->endpoint);
                if (r >= 0)
                        r = mig_handshake_dst(c, mig->token, channel, &size, salt);
                if (r >= 0 && size != mig->size) {
                        snprintf(c->error, sizeof(c->error), "the source region is %" PRIu64 " bytes, this one %"
                                 PRIu64, size, mig->size);
                        r = -EINVAL;
                }
                /* Every connection of one migration carries its salt: another one is another migration. */
                if (r >= 0 && (r = mig_digest_key(&mig->digest, mig->token, salt)) == -EPROTO)
                        snprintf(c->error, sizeof(c->error), "the source at %s answers for another migration "
                                 "(its salt changed)", mig->endpoint);
                if (r >= 0 || !transient(r))
                        return r;
                if (now_ns() >= deadline) {
                        snprintf(c->error + strlen(c->error), sizeof(c->error) - strlen(c->error),
                                 "; the source at %s is gone (no connection for %u ms)", mig->endpoint,
                                 mig->reconnect_timeout_ms);
                        return -EHOSTDOWN;
                }
                if (pause_ms(mig, backoff) < 0)
                        return -ECANCELED;
                backoff = backoff < 1000 ? backoff * 2 : 1000;
        }
}

/* The next run of missing pages from *cursor on, up to MIG_MAX_PAGES. */
static bool next_missing(struct migration *mig, uint64_t *cursor, uint64_t *first, uint32_t *count)
{
        uint64_t p = *cursor;

        while (p < mig->pages_total && atomic_load(&mig->present[p]))
                p++;
        if (p >= mig->pages_total) {
                *cursor = p;
                return false;
        }
        *first = p;
        *count = 0;
        while (p < mig->pages_total && *count < MIG_MAX_PAGES && !atomic_load(&mig->present[p])) {
                p++;
                (*count)++;
        }
        *cursor = p;
        return true;
}

static int finish(struct migration *mig, struct mig_conn *c, struct mig_msg *m)
{
        uint8_t ours[MIG_DIGEST_SIZE];
        int r;

        /* Both ends hash at once: ours while the source computes its own. */
        m->type = MIG_FINISH;
        if ((r = mig_send(c, m)) < 0 || (r = migration_digest_final(mig, ours)) < 0 ||
            (r = mig_expect(c, MIG_DIGEST, m)) < 0)
                return r;
        if (CRYPTO_memcmp(ours, m->digest.digest, MIG_DIGEST_SIZE) != 0) {
                snprintf(c->error, sizeof(c->error), "the region's Poly1305 tag differs from the source's after "
                         "every page arrived");
                r = -EBADMSG;
        }
        *m = (struct mig_msg) { .type = MIG_DONE, .done.status = r < 0 ? MIG_ERR_CORRUPT : 0 };
        if (r < 0) {
                mig_send_error(c, r); /* keeps c->error: the verdict, not how the send went */
                return r;
        }
        if (mig_send(c, m) < 0)
                log_debug("Migration %" PRIu64 ": the source left before DONE", mig->id);
        return 0;
}

/* Everything missing, in order, WINDOW requests ahead; then the digest. */
static int stream(struct migration *mig, struct mig_conn *c)
{
        _cleanup_free_ struct mig_msg *m = malloc(sizeof(*m));
        uint64_t cursor = 0, first;
        unsigned outstanding = 0;
        uint32_t count;
        int r;

        if (!m)
                return -ENOMEM;
        for (;;) {
                while (outstanding < WINDOW && next_missing(mig, &cursor, &first, &count)) {
                        *m = (struct mig_msg) { .type = MIG_REQUEST,
                                                .request = { .offset = first * MIG_PAGE_SIZE, .count = count } };
                        r = mig_send(c, m);
                        if (r < 0)
                                return r;
                        outstanding++;
                }
                if (outstanding == 0) {
                        if (atomic_load(&mig->pages_present) >= mig->pages_total)
                                return finish(mig, c, m);
                        cursor = 0; /* a page the fault channel had asked for never came */
                        continue;
                }
                r = receive_data(mig, c, m);
                if (r < 0)
                        return r;
                digest_advance(mig);
                outstanding--;
        }
}

static void fail(struct migration *mig, struct mig_conn *c, int r)
{
        if (r == -ECANCELED)
                return;
        if (r != -EHOSTDOWN && c->fd >= 0)
                mig_send_error(c, r);
        migration_set_state(mig, MIGRATION_FAILED, r, "%s", c->error[0] ? c->error : strerror(-r));
}

/* Run @work on @channel, connecting again after each transient failure:
 * each round asks only for what is still missing. */
static int run_channel(struct migration *mig, struct mig_conn *c, enum mig_channel channel,
                       int (*work)(struct migration *mig, struct mig_conn *c))
{
        for (;;) {
                int r = connect_channel(mig, c, channel);

                if (r < 0)
                        return r;
                c->timeout_ms = DATA_TIMEOUT_MS;
                r = work(mig, c);
                if (!transient(r))
                        return r;
                atomic_fetch_add(&mig->reconnects, 1);
                log_info("Migration %" PRIu64 ": %s; reconnecting, %" PRIu64 " of %" PRIu64 " pages present",
                         mig->id, c->error, (uint64_t) atomic_load(&mig->pages_present), mig->pages_total);
        }
}

/* Precopy: DATA lands in the region at once; receive_data() still checks
 * the CRC32s there before the page counts as present. */
static uint8_t *precopy_sink(void *userdata, uint64_t offset, uint32_t count)
{
        struct migration *mig = userdata;

        if (offset > mig->size || (uint64_t) count * MIG_PAGE_SIZE > mig->size - offset)
                return NULL;
        return (uint8_t *) mig->region->map + offset;
}

/* Precopy: the region's pages allocated and cleared (MADV_POPULATE_WRITE)
 * ahead of the stream on a thread of their own, so that the bulk thread's
 * reads copy into mapped pages instead of faulting each one in. Nothing for
 * correctness: a page the stream reaches first is simply faulted there. */
static void *prefault_thread(void *arg)
{
        struct migration *mig = arg;

        for (uint64_t off = 0; off < mig->size && !migration_stopping(mig); off += PREFAULT_STEP) {
                uint64_t n = mig->size - off < PREFAULT_STEP ? mig->size - off : PREFAULT_STEP;

                if (madvise((uint8_t *) mig->region->map + off, n, MADV_POPULATE_WRITE) < 0)
                        break; /* the stream faults them in itself */
        }
        migration_thread_exit(mig);
        return NULL;
}

static void *bulk_thread(void *arg)
{
        struct migration *mig = arg;
        struct mig_conn c;
        int r;

        r = mig_conn_init(&c, -1, mig->cancel_fd, 10000);
        if (!mig->postcopy) {
                c.data_sink = precopy_sink;
                c.sink_userdata = mig;
        }
        if (r >= 0)
                r = run_channel(mig, &c, MIG_CHANNEL_BULK, stream);
        /* Completed first: a fault thread whose late install fails once the
         * file is disarmed cannot turn it into a failure any more. */
        if (r >= 0)
                migration_set_state(mig, MIGRATION_COMPLETED, 0, NULL);
        else
                fail(mig, &c, r);
        /* Every page is here: the guest_memfd becomes an ordinary one again, so
         * that a page discarded later is simply zero, not missing for good. */
        if (r >= 0 && mig->postcopy && ioctl(mig->region->fd, KVM_GMEM_DISARM_MISSING) < 0)
                log_warning_errno(negative_errno(), "Migration %" PRIu64 ": KVM_GMEM_DISARM_MISSING failed: %m",
                                  mig->id);
        mig_conn_done(&c);
        migration_thread_exit(mig);
        return NULL;
}

/* --- postcopy: the fault channel ---------------------------------------------- */

struct fault_wait {
        uint64_t offset, since;
        bool fast; /* answer the VMM's fast channel */
};

/* Read what the kernel and the VMM report: up to FAULT_BATCH waits in @w. */
static int collect_faults(struct migration *mig, struct fault_wait *w, size_t *n)
{
        struct kvm_gmem_fault f[FAULT_BATCH];
        uint64_t off;
        ssize_t k;

        *n = 0;
        k = read(mig->fault_fd, f, sizeof(f));
        if (k == 0)
                return -EPIPE; /* disarmed: nothing can be missing any more */
        for (ssize_t i = 0; k > 0 && i < k / (ssize_t) sizeof(f[0]); i++)
                w[(*n)++] = (struct fault_wait) { .offset = f[i].offset, .since = now_ns() };
        while (mig->fast_fd >= 0 && *n < FAULT_BATCH && recv(mig->fast_fd, &off, sizeof(off), MSG_DONTWAIT) == sizeof(off))
                w[(*n)++] = (struct fault_wait) { .offset = off, .since = now_ns(), .fast = true };
        return 0;
}

static void answer_fast(struct migration *mig, const struct fault_wait *w, int r)
{
        int64_t reply[2] = { (int64_t) w->offset, r };

        if (w->fast)
                (void) !send(mig->fast_fd, reply, sizeof(reply), MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* One batch: REQUEST each missing page, then take the answers in order. */
static int serve_faults(struct migration *mig, struct mig_conn *c, struct fault_wait *w, size_t n)
{
        _cleanup_free_ struct mig_msg *m = malloc(sizeof(*m));
        size_t asked = 0;
        int r;

        if (!m)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                uint64_t page = w[i].offset / MIG_PAGE_SIZE;

                if (w[i].offset >= mig->size || atomic_load(&mig->present[page])) {
                        answer_fast(mig, &w[i], w[i].offset >= mig->size ? -EINVAL : 0);
                        continue;
                }
                *m = (struct mig_msg) { .type = MIG_REQUEST, .request = { .offset = page * MIG_PAGE_SIZE, .count = 1 } };
                r = mig_send(c, m);
                if (r < 0)
                        return r;
                w[asked++] = w[i];
        }
        for (size_t i = 0; i < asked; i++) {
                r = receive_data(mig, c, m);
                if (r < 0)
                        return r;
                atomic_fetch_add(&mig->faults, 1);
                migration_add_latency(mig, now_ns() - w[i].since);
                answer_fast(mig, &w[i], 0);
        }
        return 0;
}

static int fault_loop(struct migration *mig, struct mig_conn *c)
{
        struct fault_wait w[2 * FAULT_BATCH];
        size_t n;
        int r;

        for (;;) {
                struct pollfd p[3] = { { .fd = mig->cancel_fd, .events = POLLIN },
                                       { .fd = mig->fault_fd, .events = POLLIN },
                                       { .fd = mig->fast_fd, .events = POLLIN } };

                if (poll(p, 3, -1) < 0 && errno != EINTR)
                        return negative_errno();
                if (p[0].revents)
                        return -ECANCELED;
                r = collect_faults(mig, w, &n);
                if (r < 0)
                        return r;
                r = serve_faults(mig, c, w, n);
                if (r < 0)
                        return r;
        }
}

static void *fault_thread(void *arg)
{
        struct migration *mig = arg;
        struct mig_conn c;
        int r;

        r = mig_conn_init(&c, -1, mig->cancel_fd, 10000);
        if (r >= 0)
                r = run_channel(mig, &c, MIG_CHANNEL_FAULT, fault_loop);
        /* EPIPE: disarmed, nothing can be missing any more. */
        if (r < 0 && r != -EPIPE)
                fail(mig, &c, r);
        mig_conn_done(&c);
        migration_thread_exit(mig);
        return NULL;
}

int migrate_dest_start(struct migration *mig)
{
        int r;

        mig->digest.async = !mig->postcopy;
        r = migration_spawn(mig, bulk_thread, mig);
        if (r >= 0 && mig->postcopy)
                r = migration_spawn(mig, fault_thread, mig);
        else if (r >= 0)
                (void) migration_spawn(mig, prefault_thread, mig); /* only an optimisation */
        return r;
}
