/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The org.gmem1 bus contract, written once for gmemd, libgmem and gmemctl:
 * the bus name, object paths, interface names, CreateRegion's option keys
 * and their types, the policy names, and object path <-> region id. The
 * error names are in bus-errors.h. docs/dbus-api.md describes all of it. */
#pragma once

#include <stdint.h>

#define GMEM_BUS_NAME "org.gmem1"
#define GMEM_MANAGER_PATH "/org/gmem1"
#define GMEM_MANAGER_INTERFACE "org.gmem1.Manager"
#define GMEM_REGION_INTERFACE "org.gmem1.Region"
/* Regions are GMEM_REGION_PATH_PREFIX "/<id>", id counting up from 1. */
#define GMEM_REGION_PATH_PREFIX "/org/gmem1/region"
/* Migrations (ExportRegion, ImportRegion) are GMEM_MIGRATION_PATH_PREFIX "/<id>". */
#define GMEM_MIGRATION_INTERFACE "org.gmem1.Migration"
#define GMEM_MIGRATION_PATH_PREFIX "/org/gmem1/migration"

/* CreateRegion's a{sv} options: the key and the D-Bus signature of its value. */
enum gmem_create_option {
        GMEM_OPTION_NAME,
        GMEM_OPTION_POLICY,
        GMEM_OPTION_NODES,
        GMEM_OPTION_POPULATE,
        GMEM_OPTION_SHARED,
        GMEM_OPTION_PERSIST,
        GMEM_OPTION_MEMFD,
        GMEM_OPTION_NUMA_PAGE_TABLES,
        GMEM_OPTION_CPUS,
        GMEM_OPTION_SPILL,
        GMEM_OPTION_POPULATE_WORKERS,
        _GMEM_OPTION_MAX,
};

struct gmem_option_type {
        const char *key;
        const char *signature;
};

extern const struct gmem_option_type gmem_create_options[_GMEM_OPTION_MAX];
/* The option called @key, or -EINVAL. */
int gmem_create_option_from_key(const char *key);

/* Placement policy names, indexed like gmem_policy (gmem.h) and
 * placement_policy (daemon/placement.h): default, bind, preferred,
 * interleave, auto. */
#define GMEM_N_POLICIES 5
const char *gmem_policy_name(unsigned policy);
/* The policy's index, or -EINVAL. */
int gmem_policy_from_name(const char *name);

/* "/org/gmem1/region/<id>" into *ret (malloc()ed). */
int gmem_region_path(uint64_t id, char **ret);
/* The same into a buffer of GMEM_REGION_PATH_MAX bytes (a region keeps its own). */
#define GMEM_REGION_PATH_MAX (sizeof(GMEM_REGION_PATH_PREFIX "/") + 20)
void gmem_region_path_format(uint64_t id, char buf[static GMEM_REGION_PATH_MAX]);
/* The id of a region object path: -EINVAL unless @path is the prefix, a
 * slash and a decimal id from 1 up without leading zeros. */
int gmem_region_id_from_path(const char *path, uint64_t *ret);
