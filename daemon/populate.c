/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Populate workers: a plan of node-bound workers taking chunks from shared
 * pools, an eventfd for the event loop, cancellation, and the final report. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "numa-nodes.h"
#include "populate-plan.h"
#include "populate.h"
#include "usage.h"

static void job_notify(struct populate_job *j)
{
        uint64_t one = 1;

        /* Nothing to do if this fails: eventfd writes of 1 cannot overflow. */
        (void) !write(j->event_fd, &one, sizeof(one));
}

static bool job_stopping(struct populate_job *j)
{
        return atomic_load(&j->result) < 0 || atomic_load(&j->region->released);
}

static void job_fail(struct populate_job *j, int error, int node)
{
        int expected = 0;

        /* The first failure is the one reported; the others follow from it. */
        if (atomic_compare_exchange_strong(&j->result, &expected, error))
                atomic_store(&j->failed_node, node);
}

/* Bytes of the range in memory, by mincore() alone: what is left to tell
 * when the memory to locate pages by node (page tables) cannot be had. */
static int count_present(struct populate_job *j, uint64_t *ret)
{
        size_t page = (size_t) sysconf(_SC_PAGESIZE), n = j->length / page;
        _cleanup_free_ unsigned char *vec = malloc(n ?: 1);
        uint64_t bytes = 0;

        if (!vec)
                return -ENOMEM;
        if (mincore((char *) j->region->map + j->offset, j->length, vec) < 0)
                return negative_errno();
        for (size_t i = 0; i < n; i++)
                bytes += (vec[i] & 1) ? page : 0;
        *ret = bytes;
        return 0;
}

/* Add what the workers found in their chunks to @per_node, when they
 * measured the whole range: every chunk populated, none cancelled. */
static bool sum_workers(struct populate_job *j, uint64_t *per_node)
{
        if (!j->workers[0].resident || atomic_load(&j->chunks_measured) != j->length)
                return false;
        for (unsigned i = 0; i < j->n_workers; i++)
                for (unsigned node = 0; node < node_count_max(); node++)
                        per_node[node] += j->workers[i].resident[node];
        return true;
}

static void job_measure(struct populate_job *j)
{
        int r = 0;

        if (!sum_workers(j, j->resident))
                r = node_measure_resident((char *) j->region->map + j->offset, j->length, j->resident,
                                          j->n_resident);
        if (r >= 0) {
                j->measured = true;
                return;
        }
        /* A node out of memory may not give the page tables to locate pages. */
        j->measure_error = r;
        memset(j->resident, 0, j->n_resident * sizeof(uint64_t));
        j->present_counted = count_present(j, &j->present) >= 0;
}

static int measure_part(struct populate_job *j, uint64_t offset, uint64_t length)
{
        if (length == 0)
                return 0;
        return node_measure_resident((char *) j->region->map + offset, length, j->region_resident,
                                     node_count_max());
}

/* The whole region now, for Resident: the range's numbers when job_measure()
 * has them, or the workers' sums when they measured every chunk, plus the
 * rest of the region. */
static void job_measure_region(struct populate_job *j)
{
        uint64_t end = j->offset + j->length;
        int r = 0;

        if (j->measured)
                memcpy(j->region_resident, j->resident, j->n_resident * sizeof(uint64_t));
        else if (!sum_workers(j, j->region_resident))
                /* cancelled or failed midway: what it did not reach may hold pages too */
                r = measure_part(j, j->offset, j->length);
        if (r >= 0)
                r = measure_part(j, 0, j->offset);
        if (r >= 0)
                r = measure_part(j, end, j->region->size - end);
        j->region_measured = r >= 0;
}

/* The last worker: measure what the range holds now (never for a private
 * region: the host cannot map it), then let the event loop collect the job. */
static void job_end(struct populate_job *j)
{
        int result = atomic_load(&j->result);
        struct region *region = j->region;

        if (j->resident && !atomic_load(&region->released) &&
            (j->measure || (result < 0 && result != -ECANCELED)))
                job_measure(j);
        if (j->region_resident && !atomic_load(&region->released))
                job_measure_region(j);
        atomic_store(&j->finished, true);
        job_notify(j);
}

/* Before populating a chunk: the node its pages will all be on, if nothing is
 * there yet and a strict bind to one node allocates them; else negative. */
static int chunk_fresh_node(struct populate_job *j, uint64_t offset, uint64_t length)
{
        char *addr = (char *) j->region->map + offset;
        int node = node_strict_bind_at(addr);

        /* The file's policy is the owner's to set too: a node gmemd does not
         * count is located page by page like any other. */
        if (node < 0 || (unsigned) node >= node_count_max())
                return -1;
        return node_range_empty(addr, length) > 0 ? node : -1;
}

/*
 * After populating it, where the chunk's pages are. A chunk that was empty
 * and is bound to one node before and after holds its whole length there:
 * every page in it was allocated under that bind, by this worker or, in the
 * meantime, by the guest or the VMM. Else each page is located (move_pages(),
 * ten times the cost). Only the region's owner, rebinding its guest_memfd
 * and back while the chunk is populated, could make the first answer wrong,
 * about its own region, until the refresher's next round.
 */
static int measure_chunk(struct populate_worker *w, uint64_t offset, uint64_t length, int fresh_node)
{
        char *addr = (char *) w->job->region->map + offset;

        if (fresh_node >= 0 && node_strict_bind_at(addr) == fresh_node) {
                w->resident[fresh_node] += length;
                return 0;
        }
        return node_measure_resident(addr, length, w->resident, node_count_max());
}

static void *populate_worker(void *arg)
{
        struct populate_worker *w = arg;
        struct populate_job *j = w->job;
        cpu_set_t cpus;

        if (sched_getaffinity(0, sizeof(cpus), &cpus) >= 0)
                populate_format_cpus(&cpus, w->cpu_list, sizeof(w->cpu_list));
        while (!job_stopping(j)) {
                uint64_t off = atomic_fetch_add(&w->pool->next, POPULATE_CHUNK), len;
                int fresh_node, r;

                if (off >= w->pool->end)
                        break;
                len = w->pool->end - off < POPULATE_CHUNK ? w->pool->end - off : POPULATE_CHUNK;
                fresh_node = w->resident ? chunk_fresh_node(j, off, len) : -1;
                r = region_populate(j->region, off, len);
                if (r < 0) {
                        job_fail(j, r, w->node);
                        break;
                }
                atomic_fetch_add(&j->done, len);
                job_notify(j);
                /* Here, while the chunk is fresh, on its node's CPUs, in parallel. */
                if (w->resident && measure_chunk(w, off, len, fresh_node) >= 0)
                        atomic_fetch_add(&j->chunks_measured, len);
        }
        if (atomic_load(&j->region->released))
                job_fail(j, -ECANCELED, -1);
        if (atomic_fetch_sub(&j->running, 1) == 1)
                job_end(j);
        return NULL;
}

static void job_free(struct populate_job *j)
{
        safe_close(j->event_fd);
        for (unsigned i = 0; j->workers && i < j->n_workers; i++)
                free(j->workers[i].resident);
        free(j->pools);
        free(j->workers);
        free(j->resident);
        free(j->region_resident);
        free(j);
}

static int job_spawn(struct populate_job *j)
{
        /* Counted first: a worker that ends at once must not be taken for the last. */
        atomic_store(&j->running, j->n_workers);
        for (unsigned i = 0; i < j->n_workers; i++) {
                struct populate_worker *w = &j->workers[i];
                pthread_attr_t attr;
                char name[16];
                int r;

                r = -pthread_attr_init(&attr);
                /* Bound from its first instruction: its stack, and every page it
                 * clears, are touched on its node. */
                if (r >= 0 && w->bound)
                        r = -pthread_attr_setaffinity_np(&attr, sizeof(w->cpus), &w->cpus);
                if (r >= 0)
                        r = -pthread_create(&w->thread, &attr, populate_worker, w);
                pthread_attr_destroy(&attr);
                if (r < 0) {
                        /* The ones not started will never end: count them out. */
                        job_fail(j, r, -1);
                        if (atomic_fetch_sub(&j->running, j->n_workers - i) == j->n_workers - i)
                                job_end(j);
                        return r;
                }
                j->n_started++;
                snprintf(name, sizeof(name), "gmemd-pop-n%d", w->node);
                (void) pthread_setname_np(w->thread, name);
        }
        return 0;
}

/* Each worker's numbers of its chunks, and the region's when @region_too. */
static int job_alloc_measure(struct populate_job *j, bool region_too)
{
        if (region_too) {
                j->region_resident = calloc(node_count_max(), sizeof(uint64_t));
                if (!j->region_resident)
                        return -ENOMEM;
        }
        for (unsigned i = 0; i < j->n_workers; i++) {
                j->workers[i].resident = calloc(node_count_max(), sizeof(uint64_t));
                if (!j->workers[i].resident)
                        return -ENOMEM;
        }
        return 0;
}

int populate_job_start(struct region *region, const struct populate_params *p, unsigned config_workers,
                       struct populate_job **ret)
{
        struct populate_job *j = calloc(1, sizeof(*j));
        int r;

        if (!j)
                return -ENOMEM;
        *j = (struct populate_job) { .region = region, .offset = p->offset, .length = p->length,
                                     .measure = p->measure, .event_fd = -1 };
        atomic_init(&j->failed_node, -1);
        r = populate_plan(j, p->workers_per_node ?: config_workers);
        if (r >= 0 && region->shared) {
                j->n_resident = node_count_max();
                j->resident = calloc(j->n_resident, sizeof(uint64_t));
                if (!j->resident)
                        r = -ENOMEM;
        }
        if (r >= 0 && region->shared && region->map) {
                bool region_too = usage_measure_after_populate(region, p->length);

                if (region_too || p->measure)
                        r = job_alloc_measure(j, region_too);
        }
        if (r >= 0) {
                j->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (j->event_fd < 0)
                        r = negative_errno();
        }
        if (r < 0) {
                job_free(j);
                return r;
        }
        region->jobs++;
        /* A failure to spawn every worker is reported as the job's result. */
        (void) job_spawn(j);
        *ret = j;
        return 0;
}

void populate_job_cancel(struct populate_job *j, int reason)
{
        job_fail(j, reason, -1);
}

int populate_job_worker_node(const struct populate_job *j, unsigned i)
{
        return i < j->n_workers ? j->workers[i].node : -1;
}

const char *populate_job_worker_cpus(const struct populate_job *j, unsigned i)
{
        return i < j->n_workers && j->workers[i].cpu_list[0] ? j->workers[i].cpu_list : NULL;
}

int populate_job_join(struct populate_job *j)
{
        for (unsigned i = 0; i < j->n_started; i++)
                pthread_join(j->workers[i].thread, NULL);
        j->n_started = 0;
        return atomic_load(&j->result);
}

void populate_job_free(struct populate_job *j)
{
        if (!j)
                return;
        (void) populate_job_join(j);
        j->region->jobs--;
        job_free(j);
}

int populate_job_finish(struct populate_job *j)
{
        int result = populate_job_join(j);

        populate_job_free(j);
        return result;
}
