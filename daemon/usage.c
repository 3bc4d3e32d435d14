/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-region residency kept up to date by one refresher thread (batches of
 * regions it holds like a populate job does, region->jobs, so a region
 * released meanwhile is freed by the batch's end), and the sums budgets and
 * GetNodes/GetUsage read.
 * Budget check for Populate: budget_check_populate() (usage.h). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bus-contract.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "migration.h"
#include "numa-nodes.h"
#include "usage.h"
#include "util.h"

#define BATCH_MAX 64U                  /* regions per batch: a stop waits for one batch at most */
#define REFRESH_GAP_USEC 20000ULL      /* between batches while regions changed */
#define REFRESH_PERIOD_USEC 2000000ULL /* a region not changed by gmemd is measured again after this */

struct usage_item {
        struct region *region; /* held: region->jobs counts the batch */
        uint64_t seq;
        int result;
        uint64_t *resident;
};

struct usage_refresher {
        struct manager *manager;
        uint64_t seq; /* measurements and changes, counted on the event loop */
        pthread_t thread;
        bool have_thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        /* Guarded by lock: the batch handed over, and the thread told to stop. */
        struct usage_item *batch;
        size_t n_batch;
        bool work, stop;
        bool in_flight; /* event loop's view: a batch is with the thread */
        /* Rate limits: one batch per REFRESH_GAP_USEC at most; a round over the
         * regions gmemd did not change only after a pause of ten times the
         * last round's work (and REFRESH_PERIOD_USEC at least). */
        uint64_t batch_start, sweep_busy, next_sweep;
        uint64_t sweep_start; /* the round going on began then (0: none); each region once a round */
        int done_fd;
        sd_event_source *done_source, *timer;
};

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static uint64_t *resident_array(void)
{
        return calloc(node_count_max(), sizeof(uint64_t));
}

/* --- the thread ---------------------------------------------------------------- */

static void *refresher_thread(void *arg)
{
        struct usage_refresher *u = arg;
        uint64_t one = 1;

        pthread_mutex_lock(&u->lock);
        for (;;) {
                while (!u->work && !u->stop)
                        pthread_cond_wait(&u->cond, &u->lock);
                if (u->stop)
                        break;
                pthread_mutex_unlock(&u->lock);
                for (size_t i = 0; i < u->n_batch; i++) {
                        struct usage_item *item = &u->batch[i];

                        /* map, size and shared never change while the region lives. */
                        item->result = region_measure_resident(item->region, item->resident, node_count_max());
                }
                pthread_mutex_lock(&u->lock);
                u->work = false;
                (void) !write(u->done_fd, &one, sizeof(one));
        }
        pthread_mutex_unlock(&u->lock);
        return NULL;
}

/* --- the event loop's side ------------------------------------------------------ */

/* With the kernel's per-node counts (gmem series, KVM_GUEST_MEMFD_GET_INFO)
 * a region of any size and kind costs one ioctl to measure: private ones
 * too, and on the event loop. Without them only shared regions can be
 * measured, through gmemd's mapping, a walk of every page. */
static bool kernel_counts(const struct region *region)
{
        return region->manager && region->manager->features.guest_memfd_info;
}

static bool measurable(const struct region *region)
{
        return region->shared || kernel_counts(region);
}

/* A migration is moving it: a walk of its pages would race the copy (and
 * cost gmemd about a tenth of its CPU in bench-migrate); measured at the end
 * (migration.c calls usage_region_changed() then). */
static bool migrating(const struct region *region)
{
        struct migration *mig = region->manager ? migration_find_by_region(region->manager, region) : NULL;

        return mig && !mig->finished;
}

/* Changed by gmemd (or never measured), or, in a round over all (begun at
 * @sweep_start, 0 when none), not measured since the round began. */
static bool region_stale(const struct region *region, uint64_t sweep_start)
{
        if (!measurable(region) || migrating(region))
                return false;
        return !region->resident || region->changed_seq >= region->resident_seq ||
               (sweep_start && region->measured_usec < sweep_start);
}

/* Drop the batch's holds: a region released while measured is freed here. */
static void batch_free(struct usage_item *batch, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                struct region *region = batch[i].region;

                free(batch[i].resident);
                region->usage_holds--;
                if (--region->jobs == 0 && atomic_load(&region->released))
                        region_free(region);
        }
        free(batch);
}

static void arm_timer(struct usage_refresher *u, uint64_t delay)
{
        if (!u->timer)
                return;
        (void) sd_event_source_set_time(u->timer, now_usec() + delay);
        (void) sd_event_source_set_enabled(u->timer, SD_EVENT_ONESHOT);
}

/* Up to BATCH_MAX regions whose numbers are out of date, held for the thread. */
static int batch_build(struct usage_refresher *u, struct usage_item **ret, size_t *n_ret)
{
        struct usage_item *batch = calloc(BATCH_MAX, sizeof(*batch));
        size_t n = 0;

        if (!batch)
                return -ENOMEM;
        LIST_FOREACH(region, u->manager->regions) {
                struct usage_item *item = &batch[n];

                if (n == BATCH_MAX)
                        break;
                if (!region_stale(region, u->sweep_start))
                        continue;
                *item = (struct usage_item) { .region = region, .seq = ++u->seq, .resident = resident_array() };
                region->jobs++;
                region->usage_holds++;
                n++;
                if (!item->resident) {
                        batch_free(batch, n);
                        return -ENOMEM;
                }
        }
        *ret = batch;
        *n_ret = n;
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct usage_refresher *u = userdata;
        uint64_t now = now_usec();
        struct usage_item *batch;
        size_t n;
        int r;

        if (u->in_flight)
                return 0;
        if (!u->sweep_start && now >= u->next_sweep)
                u->sweep_start = now;
        r = batch_build(u, &batch, &n);
        if (r < 0) {
                log_warning_errno(r, "Cannot prepare measuring residency: %m");
                arm_timer(u, REFRESH_PERIOD_USEC);
                return 0;
        }
        if (n == 0) {
                free(batch);
                if (u->sweep_start) { /* the round is done: pause */
                        u->next_sweep = now + MAX(REFRESH_PERIOD_USEC, 10 * u->sweep_busy);
                        u->sweep_busy = 0;
                        u->sweep_start = 0;
                }
                arm_timer(u, u->next_sweep - now);
                return 0;
        }
        pthread_mutex_lock(&u->lock);
        u->batch = batch;
        u->n_batch = n;
        u->work = true;
        pthread_cond_signal(&u->cond);
        pthread_mutex_unlock(&u->lock);
        u->batch_start = now;
        u->in_flight = true;
        return 0;
}

/* Keep @resident (taken over) as @region's numbers; tell watchers when they changed. */
static void store_resident(struct region *region, uint64_t *resident, uint64_t seq, uint64_t now)
{
        bool changed = !region->resident || memcmp(region->resident, resident, node_count_max() * sizeof(uint64_t));
        struct manager *m = region->manager;
        _cleanup_free_ char *path = NULL;

        free(region->resident);
        region->resident = resident;
        region->resident_seq = seq;
        region->measured_usec = now;
        if (!changed || !m || !m->bus || gmem_region_path(region->id, &path) < 0)
                return;
        (void) sd_bus_emit_properties_changed(m->bus, path, GMEM_REGION_INTERFACE, "Resident", NULL);
}

static void store_measurement(struct region *region, struct usage_item *item, uint64_t now)
{
        if (item->seq <= region->resident_seq)
                return; /* measured inline meanwhile, later than this */
        if (item->seq < region->changed_seq)
                return; /* gmemd changed it after this began (it may predate the change): the next batch */
        if (item->result < 0) {
                log_debug_errno(item->result, "Cannot measure region %" PRIu64 ": %m", region->id);
                return;
        }
        store_resident(region, TAKE_PTR(item->resident), item->seq, now);
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct usage_refresher *u = userdata;
        struct usage_item *batch;
        uint64_t value, now = now_usec();
        size_t n;

        (void) !read(fd, &value, sizeof(value));
        pthread_mutex_lock(&u->lock);
        batch = TAKE_PTR(u->batch);
        n = u->n_batch;
        u->n_batch = 0;
        pthread_mutex_unlock(&u->lock);
        u->in_flight = false;
        u->sweep_busy += now - u->batch_start;
        for (size_t i = 0; i < n; i++)
                if (!atomic_load(&batch[i].region->released))
                        store_measurement(batch[i].region, &batch[i], now);
        batch_free(batch, n);
        arm_timer(u, REFRESH_GAP_USEC); /* the next batch, or on_timer() finds nothing and pauses */
        return 0;
}

int usage_start(struct manager *m)
{
        struct usage_refresher *u = calloc(1, sizeof(*u));
        int r;

        if (!u)
                return -ENOMEM;
        m->usage = u;
        u->manager = m;
        pthread_mutex_init(&u->lock, NULL);
        pthread_cond_init(&u->cond, NULL);
        u->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (u->done_fd < 0)
                return negative_errno();
        r = sd_event_add_io(m->event, &u->done_source, u->done_fd, EPOLLIN, on_done, u);
        if (r >= 0)
                r = sd_event_add_time(m->event, &u->timer, CLOCK_MONOTONIC, 0, 1000, on_timer, u);
        if (r >= 0)
                r = sd_event_source_set_priority(u->timer, SD_EVENT_PRIORITY_IDLE);
        if (r < 0)
                return r;
        r = -pthread_create(&u->thread, NULL, refresher_thread, u);
        if (r < 0)
                return r;
        u->have_thread = true;
        return 0;
}

void usage_stop(struct manager *m)
{
        struct usage_refresher *u = m->usage;

        if (!u)
                return;
        if (u->have_thread) {
                pthread_mutex_lock(&u->lock);
                u->stop = true;
                pthread_cond_signal(&u->cond);
                pthread_mutex_unlock(&u->lock);
                /* A batch being measured finishes first: at most BATCH_MAX regions. */
                pthread_join(u->thread, NULL);
        }
        batch_free(u->batch, u->n_batch);
        sd_event_source_disable_unref(u->done_source);
        sd_event_source_disable_unref(u->timer);
        safe_close(u->done_fd);
        pthread_mutex_destroy(&u->lock);
        pthread_cond_destroy(&u->cond);
        free(u);
        m->usage = NULL;
}

void usage_region_changed(struct region *region)
{
        struct usage_refresher *u = region->manager ? region->manager->usage : NULL;

        if (!u)
                return;
        region->changed_seq = ++u->seq;
        if (!u->in_flight) {
                uint64_t now = now_usec(), due = u->batch_start + REFRESH_GAP_USEC;

                arm_timer(u, due > now ? due - now : 0);
        }
}

bool usage_measure_after_populate(const struct region *region, uint64_t length)
{
        if (!region->shared || !region->map || kernel_counts(region))
                return false; /* nothing to walk, or one ioctl on the loop does it */
        return region->size <= USAGE_INLINE_MAX || region->size / USAGE_POPULATE_MEASURE_FACTOR <= length;
}

static const uint64_t *measure_inline(struct region *region)
{
        struct usage_refresher *u = region->manager ? region->manager->usage : NULL;
        uint64_t *resident = resident_array();
        uint64_t seq = u ? ++u->seq : region->resident_seq + 1;

        if (!resident)
                return region->resident;
        if (region_measure_resident(region, resident, node_count_max()) < 0) {
                free(resident);
                return region->resident;
        }
        store_resident(region, resident, seq, now_usec());
        return resident;
}

void usage_region_populated(struct region *region, uint64_t changed_seq, uint64_t *resident)
{
        struct usage_refresher *u = region->manager ? region->manager->usage : NULL;
        /* Another change since the job started (a Discard, another populate
         * done) may have come after the walk: then the refresher's turn. */
        bool exact = resident && region->changed_seq == changed_seq && !atomic_load(&region->released);

        usage_region_changed(region);
        if (!exact) {
                free(resident);
                /* Counted by the kernel: one ioctl now, and Resident's PropertiesChanged
                 * goes out before the reply as it does after a walk. */
                if (kernel_counts(region) && !atomic_load(&region->released))
                        (void) measure_inline(region);
                return;
        }
        /* Newer than the change, and than any batch in flight: that one's
         * older measurement is dropped when it comes back (store_measurement()). */
        store_resident(region, resident, u ? ++u->seq : region->changed_seq + 1, now_usec());
}

static const uint64_t zeroes[1024]; /* a region never measured: nothing known resident */

/* Measured on the event loop only when gmemd changed it and it fits in what
 * is left of *inline_left, the bytes one call may walk. */
static const uint64_t *resident_capped(struct region *region, uint64_t *inline_left)
{
        bool changed = !region->resident || region->changed_seq >= region->resident_seq;

        if (changed && kernel_counts(region))
                return measure_inline(region) ?: zeroes;
        if (region->shared && changed && region->size <= *inline_left) {
                *inline_left -= region->size;
                return measure_inline(region) ?: zeroes;
        }
        return region->resident ?: zeroes;
}

const uint64_t *region_usage_per_node(struct region *region)
{
        uint64_t inline_left = USAGE_INLINE_MAX;

        return resident_capped(region, &inline_left);
}

const uint64_t *region_usage_per_node_fresh(struct region *region)
{
        if (kernel_counts(region) || (region->shared && region->size <= USAGE_INLINE_MAX))
                return measure_inline(region) ?: zeroes;
        return region_usage_per_node(region);
}

/* --- the sums --------------------------------------------------------------------- */

static uint64_t charge(const struct region *region, const uint64_t *resident, unsigned node)
{
        uint64_t share = placement_share(&region->placement, region->size, node);

        return MAX(share, resident[node]);
}

int usage_node_states(struct manager *m, struct node_state **ret, size_t *n_ret)
{
        _cleanup_free_ struct node_state *nodes = NULL;
        uint64_t inline_left = USAGE_INLINE_MAX;
        unsigned max = node_count_max();
        size_t n;
        int r;

        r = node_query(&nodes, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                nodes[i].budget = config_node_budget(&m->config, nodes[i].node, nodes[i].total);
        LIST_FOREACH(region, m->regions) {
                const uint64_t *resident = resident_capped(region, &inline_left);

                for (size_t i = 0; i < n; i++) {
                        unsigned node = nodes[i].node;
                        uint64_t share = placement_share(&region->placement, region->size, node);

                        if (node >= max)
                                continue;
                        nodes[i].charged += MAX(share, resident[node]);
                        nodes[i].held += resident[node];
                        if (share > resident[node])
                                nodes[i].outstanding += share - resident[node];
                }
        }
        *ret = TAKE_PTR(nodes);
        *n_ret = n;
        return 0;
}

void user_usage_free(struct user_usage *u, size_t n)
{
        for (size_t i = 0; u && i < n; i++)
                free(u[i].per_node);
        free(u);
}

/* The entry of @uid in the sorted @users, added if missing. */
static struct user_usage *user_entry(struct user_usage *users, size_t *n, uid_t uid)
{
        size_t i = 0;

        while (i < *n && users[i].uid < uid)
                i++;
        if (i < *n && users[i].uid == uid)
                return &users[i];
        memmove(&users[i + 1], &users[i], (*n - i) * sizeof(*users));
        users[i] = (struct user_usage) { .uid = uid, .per_node = resident_array() };
        (*n)++;
        return users[i].per_node ? &users[i] : NULL;
}

int usage_per_user(struct manager *m, uid_t include, struct user_usage **ret, size_t *n_ret)
{
        struct user_usage *users = calloc(m->n_regions + 1, sizeof(*users));
        uint64_t inline_left = USAGE_INLINE_MAX;
        unsigned max = node_count_max();
        size_t n = 0;

        if (!users || !user_entry(users, &n, include)) {
                user_usage_free(users, n);
                return -ENOMEM;
        }
        LIST_FOREACH(region, m->regions) {
                struct user_usage *u = user_entry(users, &n, region->owner_uid);
                const uint64_t *resident = resident_capped(region, &inline_left);

                if (!u) {
                        user_usage_free(users, n);
                        return -ENOMEM;
                }
                u->regions++;
                u->bytes += region->size;
                for (unsigned node = 0; node < max; node++)
                        u->per_node[node] += charge(region, resident, node);
        }
        *ret = users;
        *n_ret = n;
        return 0;
}

/* --- Populate's check ------------------------------------------------------------ */

static int check_node_need(const struct node_state *h, uint64_t need, bool budget, char *msg, size_t msg_size)
{
        char need_buf[FORMAT_BYTES_MAX], free_buf[FORMAT_BYTES_MAX], left_buf[FORMAT_BYTES_MAX];
        uint64_t room = h->free > h->outstanding ? h->free - h->outstanding : 0;

        if (budget && need > placement_budget_left(h)) {
                snprintf(msg, msg_size, "populating needs %s more on node %u, which has %s left of its budget",
                         format_bytes(need_buf, sizeof(need_buf), need), h->node,
                         format_bytes(left_buf, sizeof(left_buf), placement_budget_left(h)));
                return -ENOSPC;
        }
        if (need > h->free) {
                snprintf(msg, msg_size, "populating needs %s on node %u, which has %s free (%s after what gmemd "
                         "regions will still take)", format_bytes(need_buf, sizeof(need_buf), need), h->node,
                         format_bytes(free_buf, sizeof(free_buf), h->free),
                         format_bytes(left_buf, sizeof(left_buf), room));
                return -ENOSPC;
        }
        return 0;
}

int budget_check_populate(struct manager *m, struct region *region, uint64_t offset, uint64_t length, char *msg,
                          size_t msg_size)
{
        _cleanup_free_ struct node_state *nodes = NULL;
        const uint64_t *resident;
        uint64_t held = 0, need;
        size_t n;
        int r;

        r = usage_node_states(m, &nodes, &n);
        if (r < 0) {
                snprintf(msg, msg_size, "cannot read the host's NUMA nodes: %s", strerror(-r));
                return r;
        }
        resident = region_usage_per_node(region);
        for (unsigned node = 0; node < node_count_max(); node++)
                held += resident[node];
        /* Placed regions are charged their shares already: each of their
         * nodes needs its part of the range free. The default policy is not
         * steered: what it does not hold yet must fit some budget and memory. */
        if (region->placement.applied == POLICY_DEFAULT) {
                struct node_state all = { .node = 0, .budget = PLACEMENT_NO_BUDGET };
                uint64_t budget_sum = 0;
                bool budgets = false;

                for (size_t i = 0; i < n; i++) {
                        all.free += nodes[i].free;
                        all.charged += nodes[i].charged;
                        budgets = budgets || nodes[i].budget != PLACEMENT_NO_BUDGET;
                        budget_sum += MIN(nodes[i].budget, nodes[i].total);
                }
                if (budgets)
                        all.budget = budget_sum;
                need = MIN(length, region->size > held ? region->size - held : 0);
                r = check_node_need(&all, need, budgets, msg, msg_size);
                if (r < 0)
                        snprintf(msg + strlen(msg), msg_size - strlen(msg), " (all nodes together)");
                return r;
        }
        for (size_t i = 0; i < n; i++) {
                uint64_t share = placement_share(&region->placement, region->size, nodes[i].node);
                uint64_t part = region->size ? (uint64_t) ((__uint128_t) length * share / region->size) : 0;
                uint64_t have = nodes[i].node < node_count_max() ? resident[nodes[i].node] : 0;

                need = MIN(part, share > have ? share - have : 0);
                r = check_node_need(&nodes[i], need, false, msg, msg_size);
                if (r < 0)
                        return r;
        }
        return 0;
}
