/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the running kernel offers gmemd: KVM capabilities (KVM_CHECK_EXTENSION
 * on /dev/kvm) and the state and key parameters of the kvm modules (libkmod). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct kvm_module_state {
        const char *name;  /* "kvm", "kvm_amd", ... */
        const char *state; /* "builtin", "live", "coming", "going", "absent" */
        char *tdp_mmu;     /* value of the module's tdp_mmu parameter, or NULL */
        char *nested;      /* value of the module's nested parameter, or NULL */
};

#define KERNEL_FEATURES_MODULES 4
#define KERNEL_FEATURES_FOLIO_SIZES 4

struct kernel_features {
        char release[65];           /* uname -r */
        bool kvm;                   /* /dev/kvm could be opened */
        bool guest_memfd;           /* KVM_CAP_GUEST_MEMFD */
        uint64_t guest_memfd_flags; /* KVM_CAP_GUEST_MEMFD_FLAGS */
        bool memory_fault_info;     /* KVM_CAP_MEMORY_FAULT_INFO */
        bool pre_fault_memory;      /* KVM_CAP_PRE_FAULT_MEMORY */
        bool user_memory2;          /* KVM_CAP_USER_MEMORY2 */
        bool numa_aware_page_tables; /* KVM_CAP_NUMA_AWARE_PAGE_TABLES (gmem series) */
        /* guest_memfd without a mapping (gmem series): */
        bool guest_memfd_any_mm;      /* KVM_CAP_GUEST_MEMFD_ANY_MM: gmemd may create it on a VMM's VM */
        bool guest_memfd_info;        /* KVM_CAP_GUEST_MEMFD_INFO: per-node counts, owning VM */
        bool guest_memfd_policy;      /* KVM_CAP_GUEST_MEMFD_POLICY: NUMA policy set on the fd */
        bool guest_memfd_owner_memcg; /* KVM_CAP_GUEST_MEMFD_OWNER_MEMCG: charged to the VM's owner */
        bool guest_memfd_missing;   /* KVM_CAP_GUEST_MEMFD_MISSING (gmem series, postcopy) */
        struct kvm_module_state modules[KERNEL_FEATURES_MODULES];
        /* The folio sizes guest_memfd allocated for a probe file (bytes,
         * ascending); none when the probe could not tell (no KVM, no
         * GUEST_MEMFD_FLAG_MMAP, or no CAP_SYS_ADMIN to read page flags). */
        uint64_t folio_sizes[KERNEL_FEATURES_FOLIO_SIZES];
        unsigned n_folio_sizes;
};

/* Probe with @kvm_fd (an open /dev/kvm, or -1 when it could not be opened). */
int kernel_features_probe(struct kernel_features *f, int kvm_fd);
void kernel_features_done(struct kernel_features *f);
