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

/*
 * Lines to the journal carry SHOAL_NODE=, SHOAL_SERVICE= and
 * SHOAL_REVISION= (journalctl SHOAL_SERVICE=iris); on stderr they open
 * with "[node=N service=S revision=R]". node falls back to log_set_node()'s;
 * service may be NULL, revision 0 when there is none.
 */
void log_full(int level, const char *node, const char *service,
    unsigned long long revision, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The node every line is about unless it names another (the agent's own
 * id); NULL for none. The string is copied. */
void log_set_node(const char *node);

#define log_error(...) log_full(LOG_ERR, NULL, NULL, 0, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, NULL, NULL, 0, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, NULL, NULL, 0, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, NULL, NULL, 0, __VA_ARGS__)
#define log_node(level, node, ...) log_full(level, node, NULL, 0, __VA_ARGS__)
/* A line about a service (and one of its revisions, or 0) on node (NULL:
 * log_set_node()'s). */
#define log_service(level, node, service, revision, ...) \
	log_full(level, node, service, revision, __VA_ARGS__)

#endif
