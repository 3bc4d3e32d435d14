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

struct kernel_features {
        char release[65];           /* uname -r */
        bool kvm;                   /* /dev/kvm could be opened */
        bool guest_memfd;           /* KVM_CAP_GUEST_MEMFD */
        uint64_t guest_memfd_flags; /* KVM_CAP_GUEST_MEMFD_FLAGS */
        bool memory_fault_info;     /* KVM_CAP_MEMORY_FAULT_INFO */
        bool pre_fault_memory;      /* KVM_CAP_PRE_FAULT_MEMORY */
        bool user_memory2;          /* KVM_CAP_USER_MEMORY2 */
        bool numa_aware_page_tables; /* KVM_CAP_NUMA_AWARE_PAGE_TABLES (gmem series) */
        bool guest_memfd_missing;   /* KVM_CAP_GUEST_MEMFD_MISSING (gmem series, postcopy) */
        struct kvm_module_state modules[KERNEL_FEATURES_MODULES];
};

/* Probe with @kvm_fd (an open /dev/kvm, or -1 when it could not be opened). */
int kernel_features_probe(struct kernel_features *f, int kvm_fd);
void kernel_features_done(struct kernel_features *f);
