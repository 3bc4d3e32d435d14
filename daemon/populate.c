/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Worker threads for region population: chunked fallocate + clearing, an
 * eventfd to tell the event loop, cancellation when the region goes away. */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "macro.h"
#include "populate.h"

/* Big enough to run at full speed, small enough to stop soon when released. */
#define POPULATE_CHUNK (256ULL << 20)

static void *populate_worker(void *arg)
{
        struct populate_job *j = arg;
        uint64_t end = j->offset + j->length, one = 1;

        j->result = 0;
        for (uint64_t off = j->offset; off < end; off += POPULATE_CHUNK) {
                uint64_t len = end - off < POPULATE_CHUNK ? end - off : POPULATE_CHUNK;

                if (atomic_load(&j->region->released)) {
                        j->result = -ECANCELED;
                        break;
                }
                j->result = region_populate(j->region, off, len);
                if (j->result < 0)
                        break;
        }
        /* Nothing to do if this fails: eventfd writes of 1 cannot overflow. */
        (void) !write(j->event_fd, &one, sizeof(one));
        return NULL;
}

int populate_job_start(struct region *region, uint64_t offset, uint64_t length, struct populate_job **ret)
{
        struct populate_job *j = calloc(1, sizeof(*j));
        int r;

        if (!j)
                return -ENOMEM;
        *j = (struct populate_job) { .region = region, .offset = offset, .length = length };
        j->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (j->event_fd < 0) {
                r = negative_errno();
                free(j);
                return r;
        }
        r = -pthread_create(&j->thread, NULL, populate_worker, j);
        if (r < 0) {
                safe_close(j->event_fd);
                free(j);
                return r;
        }
        region->jobs++;
        *ret = j;
        return 0;
}

int populate_job_finish(struct populate_job *j)
{
        int result;

        pthread_join(j->thread, NULL);
        result = j->result;
        j->region->jobs--;
        safe_close(j->event_fd);
        free(j);
        return result;
}
