/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libnuma-backed node queries, NUMA policy of regions (mbind() of a mapping
 * or the guest_memfd ioctl) and per-node residency measurement for gmemd. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm.h"
#include "macro.h"
#include "numa-nodes.h"

#define MEASURE_BATCH 4096U
/* The mode flags of include/uapi/linux/mempolicy.h (STATIC_NODES,
 * RELATIVE_NODES, NUMA_BALANCING); numaif.h has only the last. */
#define MPOL_MODE_FLAGS ((1 << 15) | (1 << 14) | (1 << 13))

int node_init(void)
{
        return numa_available() < 0 ? -EOPNOTSUPP : 0;
}

unsigned node_count_max(void)
{
        return (unsigned) numa_max_node() + 1;
}

int node_query(struct node_state **ret, size_t *n_ret)
{
        unsigned max = node_count_max();
        _cleanup_free_ struct node_state *nodes = calloc(max, sizeof(*nodes));
        size_t n = 0;

        if (!nodes)
                return -ENOMEM;
        for (unsigned i = 0; i < max; i++) {
                long long free_bytes = 0;
                long long total;

                if (!numa_bitmask_isbitset(numa_nodes_ptr, i))
                        continue;
                total = numa_node_size64((int) i, &free_bytes);
                if (total <= 0)
                        continue; /* memoryless node */
                nodes[n++] = (struct node_state) {
                        .node = i,
                        .total = (uint64_t) total,
                        .free = (uint64_t) free_bytes,
                        .budget = PLACEMENT_NO_BUDGET,
                };
        }
        *ret = TAKE_PTR(nodes);
        *n_ret = n;
        return 0;
}

static void bitmask_freep(struct bitmask **b)
{
        if (*b)
                numa_bitmask_free(*b);
}

/* The mbind() mode of a placement; -1 for the default policy. */
static int placement_mode(const struct placement *p)
{
        switch (p->applied) {
        case POLICY_DEFAULT:
                return -1;
        case POLICY_BIND:
                return MPOL_BIND;
        case POLICY_PREFERRED:
                return MPOL_PREFERRED;
        case POLICY_INTERLEAVE:
                return MPOL_INTERLEAVE;
        default:
                return -EINVAL;
        }
}

/* Set @mode over @nodes on [offset, offset + length): through the mapping at
 * @addr with mbind(), or, when @addr is NULL, through the guest_memfd @fd. */
static int set_policy(int fd, void *addr, uint64_t offset, uint64_t length, int mode, const unsigned *nodes,
                      size_t n)
{
        _cleanup_(bitmask_freep) struct bitmask *mask = numa_allocate_nodemask();

        if (!mask)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                numa_bitmask_setbit(mask, nodes[i]);
        if (!addr)
                return kvm_guest_memfd_set_policy(fd, offset, length, mode, mask->maskp, mask->size + 1);
        /* MPOL_MF_STRICT | MPOL_MF_MOVE would try to migrate, which guest_memfd
         * folios never do; the policy applies to what is allocated from now on. */
        if (mbind((char *) addr + offset, length, mode, mask->maskp, mask->size + 1, 0) < 0)
                return negative_errno();
        return 0;
}

/* A placement's policy, whole or (a spread) each node on its own range, its share. */
static int apply_placement(int fd, void *addr, uint64_t length, const struct placement *p)
{
        uint64_t offset = 0;
        int mode = placement_mode(p), r;

        if (mode == -EINVAL)
                return mode;
        if (mode < 0) /* default: leave the mapping alone; the ioctl tells whether the kernel can */
                return addr ? 0 : kvm_guest_memfd_set_policy(fd, 0, length, MPOL_DEFAULT, NULL, 0);
        if (!p->shares)
                return set_policy(fd, addr, 0, length, mode, p->nodes, p->n_nodes);
        for (size_t i = 0; i < p->n_nodes && offset < length; i++) {
                uint64_t part = MIN(length - offset, p->shares[i]);

                r = set_policy(fd, addr, offset, part, mode, &p->nodes[i], 1);
                if (r < 0)
                        return r;
                offset += part;
        }
        return 0;
}

int node_apply_placement(void *addr, size_t length, const struct placement *p)
{
        return apply_placement(-1, addr, length, p);
}

int node_apply_placement_fd(int fd, size_t length, const struct placement *p)
{
        return apply_placement(fd, NULL, length, p);
}

int node_resident_from_kernel(int fd, uint64_t *per_node, unsigned n_max)
{
        _cleanup_free_ uint64_t *pages = calloc(2 * (size_t) n_max ?: 2, sizeof(*pages));
        uint64_t page = (uint64_t) sysconf(_SC_PAGESIZE);
        struct kvm_guest_memfd_info info;
        int r;

        if (!pages)
                return -ENOMEM;
        r = kvm_guest_memfd_info(fd, -1, pages, n_max, &info);
        if (r < 0)
                return r;
        /* Shared and private pages both hold memory on the node. */
        for (unsigned i = 0; i < n_max && i < info.nr_nodes; i++)
                per_node[i] += (pages[2 * i] + pages[2 * i + 1]) * page;
        return 0;
}

static int locate_batch(void **pages, unsigned n, uint64_t *per_node, unsigned n_max, size_t page)
{
        int status[MEASURE_BATCH];

        if (n == 0)
                return 0;
        if (numa_move_pages(0, n, pages, NULL, status, 0) < 0)
                return negative_errno();
        for (unsigned i = 0; i < n; i++)
                if (status[i] >= 0 && (unsigned) status[i] < n_max)
                        per_node[status[i]] += page;
        return 0;
}

int node_measure_resident(void *addr, size_t length, uint64_t *per_node, unsigned n_max)
{
        size_t page = (size_t) sysconf(_SC_PAGESIZE);
        size_t n_pages = length / page;
        _cleanup_free_ unsigned char *vec = malloc(n_pages ? n_pages : 1);
        void *batch[MEASURE_BATCH];
        unsigned n = 0;
        int r;

        if (!vec)
                return -ENOMEM;
        if (mincore(addr, length, vec) < 0)
                return negative_errno();

        for (size_t i = 0; i < n_pages; i++) {
                size_t run;

                if (!(vec[i] & 1))
                        continue;
                /* Map the whole run of present pages in one call: it faults in
                 * page-cache pages, it never allocates over a present page. */
                for (run = 1; i + run < n_pages && (vec[i + run] & 1); run++)
                        ;
                if (madvise((char *) addr + i * page, run * page, MADV_POPULATE_READ) < 0 && errno != EFAULT)
                        return negative_errno();
                for (size_t j = i; j < i + run; j++) {
                        batch[n++] = (char *) addr + j * page;
                        if (n == MEASURE_BATCH) {
                                r = locate_batch(batch, n, per_node, n_max, page);
                                if (r < 0)
                                        return r;
                                n = 0;
                        }
                }
                i += run - 1;
        }
        return locate_batch(batch, n, per_node, n_max, page);
}

int node_strict_bind_at(void *addr)
{
        _cleanup_(bitmask_freep) struct bitmask *mask = numa_allocate_nodemask();
        int mode, node = -1;

        if (!mask)
                return -ENOMEM;
        /* The policy that allocates at @addr: the VMA's, or for a shared
         * mapping the file's own (guest_memfd keeps one per inode). */
        if (get_mempolicy(&mode, mask->maskp, mask->size + 1, addr, MPOL_F_ADDR) < 0)
                return negative_errno();
        /* A bind is strict whatever its flags: allocation fails rather than
         * leave the nodemask, and NUMA balancing stays inside it. */
        if ((mode & ~MPOL_MODE_FLAGS) != MPOL_BIND)
                return -1;
        for (unsigned i = 0; i < mask->size; i++) {
                if (!numa_bitmask_isbitset(mask, i))
                        continue;
                if (node >= 0)
                        return -1;
                node = (int) i;
        }
        return node;
}

int node_range_empty(void *addr, size_t length)
{
        size_t page = (size_t) sysconf(_SC_PAGESIZE), n = length / page;
        _cleanup_free_ unsigned char *vec = malloc(n ?: 1);

        if (!vec)
                return -ENOMEM;
        if (mincore(addr, length, vec) < 0)
                return negative_errno();
        for (size_t i = 0; i < n; i++)
                if (vec[i] & 1)
                        return 0;
        return 1;
}

/* --- node facts ------------------------------------------------------------------- */

int node_of_cpus(const char *cpus, unsigned **ret, size_t *n_ret, char *msg, size_t msg_size)
{
        _cleanup_(bitmask_freep) struct bitmask *mask = NULL;
        unsigned max = node_count_max(), n = 0;
        _cleanup_free_ bool *seen = calloc(max, sizeof(bool));
        _cleanup_free_ unsigned *nodes = calloc(max, sizeof(unsigned));

        if (!seen || !nodes)
                return -ENOMEM;
        /* libnuma's parser also takes "+", "!" and "all"; a VMM names CPUs. */
        if (!*cpus || cpus[strspn(cpus, "0123456789,-")]) {
                snprintf(msg, msg_size, "'%s' is not a CPU list such as \"0-3,8\"", cpus);
                return -EINVAL;
        }
        mask = numa_parse_cpustring_all(cpus);
        if (!mask) {
                snprintf(msg, msg_size, "'%s' is not a CPU list of this host (CPUs 0-%d)", cpus,
                         numa_num_possible_cpus() - 1);
                return -EINVAL;
        }
        for (unsigned cpu = 0; cpu < mask->size; cpu++) {
                int node;

                if (!numa_bitmask_isbitset(mask, cpu))
                        continue;
                node = numa_node_of_cpu((int) cpu);
                if (node < 0) {
                        snprintf(msg, msg_size, "CPU %u in '%s' is not online on this host", cpu, cpus);
                        return -EINVAL;
                }
                if ((unsigned) node < max)
                        seen[node] = true;
        }
        for (unsigned node = 0; node < max; node++)
                if (seen[node])
                        nodes[n++] = node;
        *ret = TAKE_PTR(nodes);
        *n_ret = n;
        return 0;
}

int node_cpus(unsigned node, char *buf, size_t size)
{
        _cleanup_(bitmask_freep) struct bitmask *mask = numa_allocate_cpumask();
        size_t off = 0;

        buf[0] = '\0';
        if (!mask)
                return -ENOMEM;
        if (numa_node_to_cpus((int) node, mask) < 0)
                return negative_errno();
        for (unsigned cpu = 0; cpu < mask->size && off < size; cpu++) {
                unsigned last = cpu;

                if (!numa_bitmask_isbitset(mask, cpu))
                        continue;
                while (last + 1 < mask->size && numa_bitmask_isbitset(mask, last + 1))
                        last++;
                off += (size_t) (last > cpu ? snprintf(buf + off, size - off, "%s%u-%u", off ? "," : "", cpu, last) :
                                              snprintf(buf + off, size - off, "%s%u", off ? "," : "", cpu));
                cpu = last;
        }
        return 0;
}

unsigned node_distance(unsigned a, unsigned b)
{
        int d = numa_distance((int) a, (int) b);

        return d > 0 ? (unsigned) d : 0;
}

static int read_u64_file(const char *path, uint64_t *ret)
{
        FILE *f = fopen(path, "re");
        int r;

        if (!f)
                return negative_errno();
        r = fscanf(f, "%" SCNu64, ret) == 1 ? 0 : -EINVAL;
        fclose(f);
        return r;
}

int node_hugepages(unsigned node, struct node_hugepages *pages, size_t max, size_t *n_ret)
{
        char dir[96], path[512];
        struct dirent *de;
        size_t n = 0;
        DIR *d;

        snprintf(dir, sizeof(dir), "/sys/devices/system/node/node%u/hugepages", node);
        *n_ret = 0;
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : negative_errno(); /* no hugetlbfs in this kernel */
        while ((de = readdir(d)) && n < max) {
                uint64_t kb;

                if (sscanf(de->d_name, "hugepages-%" SCNu64 "kB", &kb) != 1)
                        continue;
                pages[n] = (struct node_hugepages) { .size = kb * 1024 };
                snprintf(path, sizeof(path), "%s/%s/nr_hugepages", dir, de->d_name);
                if (read_u64_file(path, &pages[n].total) < 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s/free_hugepages", dir, de->d_name);
                if (read_u64_file(path, &pages[n].free) < 0)
                        continue;
                n++;
        }
        closedir(d);
        *n_ret = n;
        return 0;
}

int node_thp_mode(char *buf, size_t size)
{
        char line[128], *open_br, *close_br;
        FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");

        snprintf(buf, size, "unavailable");
        if (!f)
                return 0; /* a kernel without CONFIG_TRANSPARENT_HUGEPAGE */
        if (!fgets(line, sizeof(line), f))
                line[0] = '\0';
        fclose(f);
        open_br = strchr(line, '[');
        close_br = open_br ? strchr(open_br, ']') : NULL;
        if (close_br)
                snprintf(buf, size, "%.*s", (int) (close_br - open_br - 1), open_br + 1);
        return 0;
}
