/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging for the daemons: to stderr with a timestamp, or to the systemd
 * journal with structured fields (SHOAL_NODE=, SHOAL_SERVICE=) when stderr
 * is connected to the journal (JOURNAL_STREAM). Library code in common/
 * logs at debug level at most; daemons log where they decide.
 */
#ifndef SHOAL_LOG_H
#define SHOAL_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* ident: program name; level: LOG_ERR..LOG_DEBUG, messages above it drop. */
void log_open(const char *ident, int level);
void log_set_level(int level);
/* "error", "warning", "notice", "info", "debug" -> LOG_*; -1 when
 * unknown. */
int log_level_from_name(const char *name);
bool log_level_valid(const char *name);
#define LOG_LEVEL_EXPECT "error, warning, notice, info or debug"

/* node and service may be NULL; they become journal fields. */
void log_full(int level, const char *node, const char *service, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

#define log_error(...) log_full(LOG_ERR, NULL, NULL, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, NULL, NULL, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, NULL, NULL, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, NULL, NULL, __VA_ARGS__)
#define log_node(level, node, ...) log_full(level, node, NULL, __VA_ARGS__)

#endif
