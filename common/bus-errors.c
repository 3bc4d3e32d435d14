/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One table maps gmem's D-Bus error names to errno, both ways. */
#include <errno.h>

#include "bus-errors.h"
#include "macro.h"

static const sd_bus_error_map gmem_error_map[] = {
        SD_BUS_ERROR_MAP(GMEM_ERROR_INVALID_ARGUMENT, EINVAL),
        SD_BUS_ERROR_MAP(GMEM_ERROR_NOT_A_VM, ENOTTY),
        SD_BUS_ERROR_MAP(GMEM_ERROR_NO_SPACE, ENOSPC),
        SD_BUS_ERROR_MAP(GMEM_ERROR_QUOTA_EXCEEDED, EDQUOT),
        SD_BUS_ERROR_MAP(GMEM_ERROR_PERMISSION_DENIED, EACCES),
        SD_BUS_ERROR_MAP(GMEM_ERROR_UNSUPPORTED, EOPNOTSUPP),
        SD_BUS_ERROR_MAP(GMEM_ERROR_NOT_FOUND, ENOENT),
        SD_BUS_ERROR_MAP(GMEM_ERROR_AUTHENTICATION_FAILED, EKEYREJECTED),
        SD_BUS_ERROR_MAP(GMEM_ERROR_VERSION_MISMATCH, EPROTONOSUPPORT),
        SD_BUS_ERROR_MAP(GMEM_ERROR_CORRUPTED, EBADMSG),
        SD_BUS_ERROR_MAP(GMEM_ERROR_PROTOCOL, EPROTO),
        SD_BUS_ERROR_MAP(GMEM_ERROR_FRAME_TOO_LARGE, EMSGSIZE),
        SD_BUS_ERROR_MAP(GMEM_ERROR_TRUNCATED_FRAME, ENODATA),
        SD_BUS_ERROR_MAP(GMEM_ERROR_SOURCE_GONE, EHOSTDOWN),
        SD_BUS_ERROR_MAP(GMEM_ERROR_CANCELLED, ECANCELED),
        SD_BUS_ERROR_MAP_END
};

int gmem_bus_errors_register(void)
{
        int r = sd_bus_error_add_map(gmem_error_map);

        return r < 0 ? r : 0;
}

const char *gmem_bus_error_from_errno(int error)
{
        if (error < 0)
                error = -error;
        switch (error) {
        case ENOMEM:
        case ENOSPC:
                return GMEM_ERROR_NO_SPACE;
        case EPERM:
        case EACCES:
                return GMEM_ERROR_PERMISSION_DENIED;
        case EOPNOTSUPP:
                return GMEM_ERROR_UNSUPPORTED;
        case ENOENT:
        case ENXIO:
                return GMEM_ERROR_NOT_FOUND;
        case EDQUOT:
                return GMEM_ERROR_QUOTA_EXCEEDED;
        case ECANCELED:
                return GMEM_ERROR_CANCELLED;
        case ENOTTY:
                return GMEM_ERROR_NOT_A_VM;
        case EKEYREJECTED:
                return GMEM_ERROR_AUTHENTICATION_FAILED;
        case EPROTONOSUPPORT:
                return GMEM_ERROR_VERSION_MISMATCH;
        case EBADMSG:
                return GMEM_ERROR_CORRUPTED;
        case EPROTO:
                return GMEM_ERROR_PROTOCOL;
        case EMSGSIZE:
                return GMEM_ERROR_FRAME_TOO_LARGE;
        case ENODATA:
                return GMEM_ERROR_TRUNCATED_FRAME;
        case EHOSTDOWN:
                return GMEM_ERROR_SOURCE_GONE;
        case EINVAL:
        case ERANGE:
        case EBADF:
                return GMEM_ERROR_INVALID_ARGUMENT;
        default:
                return NULL;
        }
}
