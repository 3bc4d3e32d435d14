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
/* Migrations (docs/migration.md). */
#define GMEM_ERROR_AUTHENTICATION_FAILED "org.gmem1.Error.AuthenticationFailed"
#define GMEM_ERROR_VERSION_MISMATCH "org.gmem1.Error.VersionMismatch"
#define GMEM_ERROR_CORRUPTED "org.gmem1.Error.Corrupted"
#define GMEM_ERROR_PROTOCOL "org.gmem1.Error.ProtocolError"
#define GMEM_ERROR_FRAME_TOO_LARGE "org.gmem1.Error.FrameTooLarge"
#define GMEM_ERROR_TRUNCATED_FRAME "org.gmem1.Error.TruncatedFrame"
#define GMEM_ERROR_SOURCE_GONE "org.gmem1.Error.SourceGone"
#define GMEM_ERROR_CANCELLED "org.gmem1.Error.Cancelled"

/* Register the mapping with sd-bus (idempotent). */
int gmem_bus_errors_register(void);
/* The error name for a negative errno; EIO-like failures map to NULL, which
 * callers turn into org.freedesktop.DBus.Error.Failed. */
const char *gmem_bus_error_from_errno(int error);
