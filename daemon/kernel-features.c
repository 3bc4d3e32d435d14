/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Probes KVM capabilities and, through libkmod, whether the kvm modules are
 * built in or loaded; parameter values come from the modules' sysfs. */
#include <errno.h>
#include <libkmod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kernel-features.h"
#include "kvm-uapi.h"
#include "kvm.h"
#include "macro.h"

static const char *const module_names[KERNEL_FEATURES_MODULES] = { "kvm", "kvm_amd", "kvm_intel", "kvm_pvm" };

static bool has_cap(int kvm_fd, long cap)
{
        return kvm_fd >= 0 && kvm_check_extension(kvm_fd, cap) > 0;
}

static char *read_parameter(const char *module, const char *param)
{
        char path[256], value[64];
        FILE *f;

        snprintf(path, sizeof(path), "/sys/module/%s/parameters/%s", module, param);
        f = fopen(path, "re");
        if (!f)
                return NULL;
        if (!fgets(value, sizeof(value), f)) {
                fclose(f);
                return NULL;
        }
        fclose(f);
        value[strcspn(value, "\n")] = '\0';
        return strdup(value);
}

static const char *module_state(struct kmod_ctx *ctx, const char *name)
{
        struct kmod_module *mod = NULL;
        const char *s = "absent";
        int state;

        if (!ctx || kmod_module_new_from_name(ctx, name, &mod) < 0)
                return "unknown";
        state = kmod_module_get_initstate(mod);
        /* Without modules.builtin for the running kernel (custom kernels),
         * libkmod calls a /sys/module dir without initstate "coming"; a
         * module that is really loading has that file, a built-in never. */
        if (state == KMOD_MODULE_COMING) {
                char path[128];

                snprintf(path, sizeof(path), "/sys/module/%s/initstate", name);
                if (access(path, F_OK) < 0 && errno == ENOENT)
                        state = KMOD_MODULE_BUILTIN;
        }
        if (state >= 0)
                s = kmod_module_initstate_str((enum kmod_module_initstate) state);
        kmod_module_unref(mod);
        return s ? s : "unknown";
}

int kernel_features_probe(struct kernel_features *f, int kvm_fd)
{
        struct kmod_ctx *ctx;
        struct utsname u;

        *f = (struct kernel_features) {};
        if (uname(&u) == 0)
                snprintf(f->release, sizeof(f->release), "%s", u.release);

        f->kvm = kvm_fd >= 0;
        f->guest_memfd = has_cap(kvm_fd, KVM_CAP_GUEST_MEMFD);
        if (kvm_fd >= 0) {
                int flags = kvm_check_extension(kvm_fd, KVM_CAP_GUEST_MEMFD_FLAGS);

                f->guest_memfd_flags = flags > 0 ? (uint64_t) flags : 0;
        }
        f->memory_fault_info = has_cap(kvm_fd, KVM_CAP_MEMORY_FAULT_INFO);
        f->pre_fault_memory = has_cap(kvm_fd, KVM_CAP_PRE_FAULT_MEMORY);
        f->user_memory2 = has_cap(kvm_fd, KVM_CAP_USER_MEMORY2);
        f->numa_aware_page_tables = has_cap(kvm_fd, KVM_CAP_NUMA_AWARE_PAGE_TABLES);
        f->guest_memfd_missing = has_cap(kvm_fd, KVM_CAP_GUEST_MEMFD_MISSING);

        /* Module state only needs sysfs, not the module index: no config. */
        ctx = kmod_new(NULL, NULL);
        for (size_t i = 0; i < KERNEL_FEATURES_MODULES; i++) {
                struct kvm_module_state *m = &f->modules[i];

                m->name = module_names[i];
                m->state = module_state(ctx, m->name);
                m->tdp_mmu = read_parameter(m->name, "tdp_mmu");
                m->nested = read_parameter(m->name, "nested");
        }
        kmod_unref(ctx);
        return 0;
}

void kernel_features_done(struct kernel_features *f)
{
        for (size_t i = 0; i < KERNEL_FEATURES_MODULES; i++) {
                free(f->modules[i].tdp_mmu);
                free(f->modules[i].nested);
        }
        *f = (struct kernel_features) {};
}
