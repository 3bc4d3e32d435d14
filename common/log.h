/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one logging dialect of gmemd and gmemctl: syslog levels, a message
 * per line on stderr, and log_*_errno() helpers that return the error they
 * log and make %m print it. gmemd writes "<N>message" (the journal keeps the
 * level); a tool that called log_set_program("gmemctl") writes
 * "gmemctl: message". libgmem does not log: it records errors per client. */
#pragma once

#include <syslog.h>

#include "macro.h"

void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);
/* Prefix every line with "@program: " instead of the "<N>" level. */
void log_set_program(const char *program);

/* Always returns -abs(error) (or 0 when error is 0), so that
 * "return log_error_errno(r, ...)" works. %m prints strerror(error). */
int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);

#define log_full_errno(level, error, ...) log_internal(level, error, __VA_ARGS__)
#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_internal(LOG_DEBUG, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_ERR, e, __VA_ARGS__)
/* Out of memory, the message every caller would write. */
#define log_oom() log_error_errno(-ENOMEM, "Out of memory")
