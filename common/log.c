/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Leveled logging for gmemd and gmemctl: one line per message on stderr,
 * with a syslog priority prefix (journald keeps the level) or a program name. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

static int max_level = LOG_INFO;
static const char *program;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
        [LOG_ERR] = "err",     [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

void log_set_max_level(int level)
{
        max_level = level;
}

void log_set_program(const char *name)
{
        program = name;
}

int log_get_max_level(void)
{
        return max_level;
}

int log_level_from_string(const char *s)
{
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (streq(s, level_names[i]))
                        return (int) i;
        return -EINVAL;
}

const char *log_level_to_string(int level)
{
        if (level < 0 || (size_t) level >= ELEMENTSOF(level_names))
                return NULL;
        return level_names[level];
}

int log_internal(int level, int error, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;

        if (error < 0)
                error = -error;
        if (level <= max_level) {
                int saved = errno;

                errno = error; /* for %m */
                va_start(ap, fmt);
                vsnprintf(buf, sizeof(buf), fmt, ap);
                va_end(ap);
                if (program)
                        fprintf(stderr, "%s: %s\n", program, buf);
                else
                        fprintf(stderr, "<%d>%s\n", level, buf);
                errno = saved;
        }
        return -error;
}
