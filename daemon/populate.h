/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Populating a region on worker threads bound to the CPUs of the node they
 * fill, so a large allocation never stalls the event loop and is cleared
 * where it will live; chunked, cancellable, with progress counters. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "region.h"

/* Workers per node a call may ask for, and the default's ceiling (memory
 * bandwidth, not CPUs, is the limit beyond a few). */
#define POPULATE_WORKERS_MAX ((unsigned) CONFIG_POPULATE_WORKERS_MAX)
#define POPULATE_WORKERS_DEFAULT_CAP 8U
/* One step of a worker: progress and cancellation are seen per chunk. */
#define POPULATE_CHUNK (32ULL << 20)

#include <sched.h>

/* A range the workers of one or more nodes take chunks from. */
struct populate_pool {
        atomic_uint_fast64_t next;
        uint64_t end;
};

struct populate_worker {
        struct populate_job *job;
        struct populate_pool *pool;
        int node;      /* the node it fills, -1 for none in particular */
        bool bound;    /* created with cpus as its affinity */
        cpu_set_t cpus;
        pthread_t thread;
        char cpu_list[128]; /* what it found itself allowed on, set when it starts */
        /* Per node, the chunks it populated, each measured right after; NULL
         * when the job measures neither the range (the report) nor the region
         * (usage_measure_after_populate()). */
        uint64_t *resident;
};

struct populate_job {
        struct region *region;
        uint64_t offset, length;
        bool measure; /* measure residency of the range at the end */

        struct populate_pool *pools;
        unsigned n_pools;
        struct populate_worker *workers;
        unsigned n_workers, n_started;

        atomic_uint_fast64_t done; /* bytes populated so far */
        atomic_uint_fast64_t chunks_measured; /* of those, measured by their worker */
        atomic_int result;         /* first failure, or -ECANCELED */
        atomic_int failed_node;    /* node of the worker that failed, -1 for none/any */
        atomic_uint running;       /* workers not yet ended */
        atomic_bool finished;      /* every worker ended: join, read the results */
        int event_fd;              /* readable on progress and when finished */

        /* Set by the last worker when measure, or on a failure of a shared region. */
        uint64_t *resident; /* per node, node_count_max() entries */
        unsigned n_resident;
        bool measured;
        /* Not measured by node (measure_error): the bytes present, if counted. */
        int measure_error;
        uint64_t present;
        bool present_counted;

        /* The whole region after the workers, per node (node_count_max()
         * entries; NULL when not measured: usage_measure_after_populate()),
         * for Resident (usage_region_populated()). */
        uint64_t *region_resident;
        bool region_measured;
};

struct populate_params {
        uint64_t offset, length;
        unsigned workers_per_node; /* 0: the configured or the CPU-derived default */
        bool measure;
};

/* Plan the workers for @region's placement, create them bound to their node's
 * CPUs (before any of them touches memory) and start populating; counts the
 * job in region->jobs. */
int populate_job_start(struct region *region, const struct populate_params *p, unsigned config_workers,
                       struct populate_job **ret);
/* Ask the workers to stop at their next chunk with @reason (-ECANCELED). */
void populate_job_cancel(struct populate_job *j, int reason);
/* Worker i's node (-1: not bound to one) and the CPUs it found itself allowed
 * on when it started, as a list ("0-3,8"); NULL before it started. */
int populate_job_worker_node(const struct populate_job *j, unsigned i);
const char *populate_job_worker_cpus(const struct populate_job *j, unsigned i);
/* Wait for the workers (they are done or stop within one chunk); returns the
 * job's result. The report (done, resident, workers) stays readable. */
int populate_job_join(struct populate_job *j);
/* Join, drop the job from r->jobs and free it. */
void populate_job_free(struct populate_job *j);
/* Join and free; returns the job's result. */
int populate_job_finish(struct populate_job *j);
