/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Populating a region on a worker thread, so a large allocation never stalls
 * the event loop; the job stops early once its region is released. */
#pragma once

#include <pthread.h>
#include <stdint.h>

#include "region.h"

struct populate_job {
        struct region *region;
        uint64_t offset, length;
        int result;   /* valid once finished: 0, -ECANCELED or the error */
        int event_fd; /* becomes readable when the worker is done */
        pthread_t thread;
};

/* Start populating [offset, offset + length) of @region (already validated);
 * counts the job in r->jobs. */
int populate_job_start(struct region *region, uint64_t offset, uint64_t length, struct populate_job **ret);
/* Wait for the worker (it is done or stops within one chunk once the region
 * is released), drop it from r->jobs, free the job; returns its result. */
int populate_job_finish(struct populate_job *j);
