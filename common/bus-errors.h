/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The org.gmem1.Error.* names and their errno mapping, shared by gmemd (which
 * raises them) and libgmem/gmemctl (which turn them back into errno). */
#pragma once

#include <systemd/sd-bus.h>

#define GMEM_ERROR_INVALID_ARGUMENT "org.gmem1.Error.InvalidArgument"
#define GMEM_ERROR_NOT_A_VM "org.gmem1.Error.NotAVm"
#define GMEM_ERROR_NO_SPACE "org.gmem1.Error.NoSpace"
#define GMEM_ERROR_QUOTA_EXCEEDED "org.gmem1.Error.QuotaExceeded"
#define GMEM_ERROR_PERMISSION_DENIED "org.gmem1.Error.PermissionDenied"
#define GMEM_ERROR_UNSUPPORTED "org.gmem1.Error.Unsupported"
#define GMEM_ERROR_NOT_FOUND "org.gmem1.Error.NotFound"
#define GMEM_ERROR_CANCELLED "org.gmem1.Error.Cancelled"

/* Register the mapping with sd-bus (idempotent). */
int gmem_bus_errors_register(void);
/* The error name for a negative errno; EIO-like failures map to NULL, which
 * callers turn into org.freedesktop.DBus.Error.Failed. */
const char *gmem_bus_error_from_errno(int error);
