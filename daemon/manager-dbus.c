/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.gmem1.Manager on /org/gmem1: the daemon-wide properties and the
 * vtable: CreateRegion (create-region.c), listings (list-regions.c), ... */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-caller.h"
#include "bus-contract.h"
#include "create-region.h"
#include "gmem-config.h"
#include "kvm-uapi.h"
#include "list-regions.h"
#include "log.h"
#include "manager-dbus.h"
#include "manager.h"
#include "usage-dbus.h"
#include "migration-dbus.h"
#include "numa-nodes.h"
#include "util.h"

static int property_get_restored(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        struct manager *m = userdata;

        return sd_bus_message_append(reply, "u", (uint32_t) m->n_restored);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        return sd_bus_message_append(reply, "s", GMEM_VERSION);
}

static int append_modules(sd_bus_message *reply, const struct kernel_features *f, bool parameters)
{
        int r;

        r = bus_open_dict_entry(reply, parameters ? "ModuleParameters" : "Modules", "a{ss}");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "{ss}");
        if (r < 0)
                return r;
        for (size_t i = 0; i < KERNEL_FEATURES_MODULES; i++) {
                const struct kvm_module_state *mod = &f->modules[i];
                const char *names[] = { "tdp_mmu", "nested" };
                const char *values[] = { mod->tdp_mmu, mod->nested };
                char key[64];

                if (!parameters) {
                        r = sd_bus_message_append(reply, "{ss}", mod->name, mod->state);
                        if (r < 0)
                                return r;
                        continue;
                }
                for (size_t j = 0; j < ELEMENTSOF(names); j++) {
                        if (!values[j])
                                continue;
                        snprintf(key, sizeof(key), "%s.%s", mod->name, names[j]);
                        r = sd_bus_message_append(reply, "{ss}", key, values[j]);
                        if (r < 0)
                                return r;
                }
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return bus_close_dict_entry(reply);
}

static int append_folio_sizes(sd_bus_message *reply, const struct kernel_features *f)
{
        int r = bus_open_dict_entry(reply, "GuestMemfdFolioSizes", "at");

        if (r >= 0)
                r = sd_bus_message_append_array(reply, 't', f->folio_sizes, f->n_folio_sizes * sizeof(uint64_t));
        return r < 0 ? r : bus_close_dict_entry(reply);
}

static int property_get_kernel_features(sd_bus *bus, const char *path, const char *interface,
                                        const char *property, sd_bus_message *reply, void *userdata,
                                        sd_bus_error *error)
{
        struct manager *m = userdata;
        const struct kernel_features *f = &m->features;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        if ((r = bus_append_dict_entry(reply, "KernelRelease", "s", f->release)) < 0 ||
            (r = bus_append_dict_entry(reply, "KVM", "b", (int) f->kvm)) < 0 ||
            (r = bus_append_dict_entry(reply, "GuestMemfd", "b", (int) f->guest_memfd)) < 0 ||
            (r = bus_append_dict_entry(reply, "GuestMemfdFlags", "t", f->guest_memfd_flags)) < 0 ||
            (r = bus_append_dict_entry(reply, "GuestMemfdMmap", "b",
                                       (int) !!(f->guest_memfd_flags & GUEST_MEMFD_FLAG_MMAP))) < 0 ||
            (r = bus_append_dict_entry(reply, "GuestMemfdInitShared", "b",
                                       (int) !!(f->guest_memfd_flags & GUEST_MEMFD_FLAG_INIT_SHARED))) < 0 ||
            (r = bus_append_dict_entry(reply, "MemoryFaultInfo", "b", (int) f->memory_fault_info)) < 0 ||
            (r = bus_append_dict_entry(reply, "PreFaultMemory", "b", (int) f->pre_fault_memory)) < 0 ||
            (r = bus_append_dict_entry(reply, "UserMemory2", "b", (int) f->user_memory2)) < 0 ||
            (r = bus_append_dict_entry(reply, "NumaAwarePageTables", "b", (int) f->numa_aware_page_tables)) < 0 ||
            (r = append_folio_sizes(reply, f)) < 0 ||
            (r = bus_append_dict_entry(reply, "GuestMemfdAnyProcess", "b", (int) f->guest_memfd_any_mm)) < 0 ||
            (r = bus_append_dict_entry(reply, "GuestMemfdInfo", "b", (int) f->guest_memfd_info)) < 0 ||
            (r = bus_append_dict_entry(reply, "GuestMemfdPolicy", "b", (int) f->guest_memfd_policy)) < 0 ||
            (r = bus_append_dict_entry(reply, "GuestMemfdOwnerMemcg", "b", (int) f->guest_memfd_owner_memcg)) < 0 ||
            (r = bus_append_dict_entry(reply, "GuestMemfdMissing", "b", (int) f->guest_memfd_missing)) < 0 ||
            (r = append_modules(reply, f, false)) < 0 ||
            (r = append_modules(reply, f, true)) < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("KernelFeatures", "a{sv}", property_get_kernel_features, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("RestoredRegions", "u", property_get_restored, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("CreateRegion",
                                SD_BUS_ARGS("h", vm, "t", size, "a{sv}", options),
                                SD_BUS_RESULT("o", region, "h", memfd),
                                bus_method_create_region, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListRegions",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(ostsu)", regions),
                                bus_method_list_regions, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListRegionsFiltered",
                                SD_BUS_ARGS("a{sv}", filter),
                                SD_BUS_RESULT("a(ostsu)", regions),
                                bus_method_list_regions_filtered, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetNodes",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(uttt)", nodes),
                                bus_method_get_nodes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetNodeFacts",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(ua{sv})", nodes),
                                bus_method_get_node_facts, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetUsage",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(uuta(ut)tua(ut))", users),
                                bus_method_get_usage, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ExportRegion",
                                SD_BUS_ARGS("o", region, "a{sv}", options),
                                SD_BUS_RESULT("s", endpoint, "s", token),
                                bus_method_export_region, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ImportRegion",
                                SD_BUS_ARGS("h", vm, "t", size, "s", endpoint, "s", token, "a{sv}", options),
                                SD_BUS_RESULT("o", region, "h", memfd),
                                bus_method_import_region, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListMigrations",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(oossstt)", migrations),
                                bus_method_list_migrations, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("RegionAdded", SD_BUS_ARGS("o", region), 0),
        SD_BUS_SIGNAL_WITH_ARGS("RegionRemoved", SD_BUS_ARGS("o", region), 0),
        SD_BUS_VTABLE_END
};

int manager_bus_register(struct manager *m)
{
        int r = sd_bus_add_object_vtable(m->bus, NULL, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE, manager_vtable, m);

        if (r < 0)
                return log_error_errno(r, "Failed to add the Manager object: %m");
        return 0;
}
