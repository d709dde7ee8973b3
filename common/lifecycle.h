/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemons' life under systemd (Type=notify), driven by their zloop:
 *
 *   READY=1     once the store is open and the sockets are bound;
 *   STATUS=     one line saying what the daemon is doing, sent on change;
 *   WATCHDOG=1  from a loop timer at half of WatchdogSec (WATCHDOG_USEC),
 *               so a loop that hangs stops the pings and systemd acts;
 *   RELOADING=1 and READY=1 around a SIGHUP reload;
 *   STOPPING=1  on SIGTERM or SIGINT, before the loop ends.
 *
 * Signals arrive through a signalfd on the loop, so handlers run as
 * ordinary loop callbacks (no async-signal-safety to mind). Without
 * NOTIFY_SOCKET every notification is a no-op and only the signals remain.
 */
#ifndef SHOAL_COMMON_LIFECYCLE_H
#define SHOAL_COMMON_LIFECYCLE_H

#include <stdint.h>

#include <czmq.h>

typedef struct lifecycle lifecycle_t;

/* SIGHUP: re-read the configuration. Runs on the loop. */
typedef void (*lifecycle_reload_fn)(void *arg);

/*
 * Blocks SIGTERM, SIGINT and SIGHUP in the calling thread, so that every
 * thread it starts later (libzmq's, libcurl's, ours) inherits the mask and
 * the signals wait for the signalfd. Call first in main(), before any
 * thread exists; it also turns czmq's own SIGINT/SIGTERM handler off.
 * 0, or -errno.
 */
int lifecycle_block_signals(void);

/*
 * Reads the signals on loop and starts the watchdog timer when systemd
 * asked for one. 0, or -errno (the signalfd could not be made).
 */
int lifecycle_new(zloop_t *loop, lifecycle_reload_fn reload, void *arg,
    lifecycle_t **ret);
void lifecycle_destroy(lifecycle_t **lc);

/* READY=1, with the last status line. */
void lifecycle_ready(lifecycle_t *lc);

/* STATUS=...: sent only when the text changed. Needs no lifecycle_t, so
 * start-up can say what it is doing before the loop runs. */
void lifecycle_status(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif
