/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The parts of the org.gmem1 contract that are data or parsing. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-contract.h"
#include "macro.h"
#include "util.h"

/* tests/docs/check-dbus-api.sh reads this table, one key and signature a line. */
const struct gmem_option_type gmem_create_options[_GMEM_OPTION_MAX] = {
        [GMEM_OPTION_NAME] = { "name", "s" },
        [GMEM_OPTION_POLICY] = { "policy", "s" },
        [GMEM_OPTION_NODES] = { "nodes", "au" },
        [GMEM_OPTION_POPULATE] = { "populate", "b" },
        [GMEM_OPTION_SHARED] = { "shared", "b" },
        [GMEM_OPTION_PERSIST] = { "persist", "b" },
        [GMEM_OPTION_MEMFD] = { "memfd", "h" },
        [GMEM_OPTION_NUMA_PAGE_TABLES] = { "numa_page_tables", "b" },
        [GMEM_OPTION_CPUS] = { "cpus", "s" },
        [GMEM_OPTION_SPILL] = { "spill", "b" },
        [GMEM_OPTION_POPULATE_WORKERS] = { "populate_workers", "u" },
};

int gmem_create_option_from_key(const char *key)
{
        for (size_t i = 0; i < ELEMENTSOF(gmem_create_options); i++)
                if (streq(key, gmem_create_options[i].key))
                        return (int) i;
        return -EINVAL;
}

static const char *const policy_names[GMEM_N_POLICIES] = {
        "default", "bind", "preferred", "interleave", "auto",
};

const char *gmem_policy_name(unsigned policy)
{
        return policy < ELEMENTSOF(policy_names) ? policy_names[policy] : NULL;
}

int gmem_policy_from_name(const char *name)
{
        for (size_t i = 0; name && i < ELEMENTSOF(policy_names); i++)
                if (streq(name, policy_names[i]))
                        return (int) i;
        return -EINVAL;
}

void gmem_region_path_format(uint64_t id, char buf[static GMEM_REGION_PATH_MAX])
{
        snprintf(buf, GMEM_REGION_PATH_MAX, GMEM_REGION_PATH_PREFIX "/%" PRIu64, id);
}

int gmem_region_path(uint64_t id, char **ret)
{
        return asprintf(ret, GMEM_REGION_PATH_PREFIX "/%" PRIu64, id) < 0 ? -ENOMEM : 0;
}

int gmem_region_id_from_path(const char *path, uint64_t *ret)
{
        const size_t n = strlen(GMEM_REGION_PATH_PREFIX "/");
        const char *p;
        char *end;
        uint64_t id;

        if (!path || strncmp(path, GMEM_REGION_PATH_PREFIX "/", n) != 0)
                return -EINVAL;
        p = path + n;
        if (*p < '1' || *p > '9')
                return -EINVAL;
        errno = 0;
        id = strtoull(p, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *ret = id;
        return 0;
}
