/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sd_notify and signals for the daemons (see lifecycle.h).
 */
#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "common/lifecycle.h"
#include "common/log.h"
#include "common/util.h"

struct lifecycle {
	zloop_t *loop;
	lifecycle_reload_fn reload;
	void *arg;
	int sfd;
	zmq_pollitem_t item;
	int watchdog_timer;
};

static char last_status[512];

static void
fill_mask(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

int
lifecycle_block_signals(void)
{
	sigset_t set;
	int r;

	/* czmq would install its own SIGINT/SIGTERM handler in zsys_init();
	 * the signals come through our signalfd instead. */
	zsys_handler_set(NULL);
	fill_mask(&set);
	r = pthread_sigmask(SIG_BLOCK, &set, NULL);
	return r ? -r : 0;
}

void
lifecycle_status(const char *fmt, ...)
{
	char buf[sizeof last_status];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (strcmp(buf, last_status) == 0)
		return;
	memcpy(last_status, buf, sizeof buf);
	sd_notifyf(0, "STATUS=%s", last_status);
}

void
lifecycle_ready(lifecycle_t *lc)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", last_status);
}

static int
on_watchdog(zloop_t *loop, int timer_id, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
	return 0;
}

static int
on_signal(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
	lifecycle_t *lc = arg;
	struct signalfd_siginfo si;
	ssize_t n;

	n = read(lc->sfd, &si, sizeof si);
	if (n != (ssize_t)sizeof si)
		return 0; /* EAGAIN: another reader took it */
	switch (si.ssi_signo) {
	case SIGHUP: {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		/* MONOTONIC_USEC: what Type=notify-reload (systemd 253)
		 * matches the reload by; older managers ignore it. */
		sd_notifyf(0,
		    "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
		    (unsigned long long)ts.tv_sec * 1000000ULL +
		        (unsigned long long)ts.tv_nsec / 1000);
		log_info("SIGHUP: reloading the configuration");
		if (lc->reload)
			lc->reload(lc->arg);
		sd_notifyf(0, "READY=1\nSTATUS=%s", last_status);
		return 0;
	}
	case SIGTERM:
	case SIGINT:
		snprintf(last_status, sizeof last_status, "stopping (%s)",
		    si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		sd_notifyf(0, "STOPPING=1\nSTATUS=%s", last_status);
		log_info("%s: shutting down",
		    si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		return -1; /* ends zloop_start() */
	default:
		return 0;
	}
}

int
lifecycle_new(zloop_t *loop, lifecycle_reload_fn reload, void *arg,
    lifecycle_t **ret)
{
	lifecycle_t *lc = xcalloc(1, sizeof *lc);
	uint64_t usec = 0;
	sigset_t set;

	lc->loop = loop;
	lc->reload = reload;
	lc->arg = arg;
	lc->watchdog_timer = -1;
	fill_mask(&set);
	/* Blocked here too, in case main() did not: a signal the signalfd
	 * is to read must not take its default action first. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	lc->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (lc->sfd < 0) {
		int e = errno;

		free(lc);
		return -e;
	}
	lc->item = (zmq_pollitem_t){ .fd = lc->sfd, .events = ZMQ_POLLIN };
	zloop_poller(loop, &lc->item, on_signal, lc);

	/* WATCHDOG_USEC (and WATCHDOG_PID, when set, naming us): ping at
	 * half the interval, systemd's advice. */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		uint64_t ms = usec / 2000;
		if (ms == 0)
			ms = 1;
		lc->watchdog_timer =
		    zloop_timer(loop, (size_t)ms, 0, on_watchdog, lc);
		log_info("watchdog: WatchdogSec is %llums, pinging every "
		         "%llums",
		    (unsigned long long)(usec / 1000), (unsigned long long)ms);
		sd_notify(0, "WATCHDOG=1");
	}
	*ret = lc;
	return 0;
}

void
lifecycle_destroy(lifecycle_t **lcp)
{
	lifecycle_t *lc = *lcp;

	if (!lc)
		return;
	zloop_poller_end(lc->loop, &lc->item);
	if (lc->watchdog_timer >= 0)
		zloop_timer_end(lc->loop, lc->watchdog_timer);
	close(lc->sfd);
	free(lc);
	*lcp = NULL;
}
