/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics endpoint's HTTP server, on the daemon's zloop (see httpd.h).
 * The listening socket is made here, so a bind failure names the address
 * and the reason; MHD then owns it. A peer that sends garbage, holds a
 * connection open or opens many gets MHD's limits below, never the loop.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/error.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/util.h"

#define CONNECTIONS_MAX 64
#define PER_IP_MAX 16
#define CONNECTION_TIMEOUT_S 10
/* MHD_run() rounds in a row while MHD says more is ready at once. */
#define RUNS_MAX 64

struct httpd {
	zloop_t *loop;
	struct MHD_Daemon *mhd;
	zmq_pollitem_t item;
	int timer; /* one-shot, for MHD's next timeout; -1: none */
	unsigned port;
	httpd_handler_fn fn;
	void *arg;
	prom_t body;
	uint64_t requests;
};

int
httpd_parse_listen(const char *s, char *host, size_t hostlen, unsigned *port)
{
	const char *colon, *h = s;
	size_t n;
	uint64_t p;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return SHOAL_E_INVALID;
		h = s + 1;
		n = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon)
			return SHOAL_E_INVALID;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= hostlen || parse_uint(colon + 1, 65535, &p) < 0)
		return SHOAL_E_INVALID;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (unsigned)p;
	return 0;
}

bool
httpd_listen_valid(const char *s)
{
	char host[256];
	unsigned port;

	return strcmp(s, "off") == 0 ||
	    httpd_parse_listen(s, host, sizeof host, &port) == 0;
}

static void
mhd_log(void *arg, const char *fmt, va_list ap)
{
	char msg[512];

	(void)arg;
	vsnprintf(msg, sizeof msg, fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("metrics endpoint: %s", msg);
}

static int
reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	    strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	int r;

	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
		    "GET, HEAD");
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	httpd_t *h = cls;
	struct MHD_Response *resp;
	int status;

	(void)version;
	(void)upload;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		/* A body is not read: refuse at the first call. */
		*upload_size = 0;
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		           "only GET and HEAD are served here\n") == MHD_YES
		    ? MHD_YES
		    : MHD_NO;
	}
	/* The first call only says a request began; answering there makes
	 * MHD close the connection after the response (it cannot know yet
	 * that no body follows), and Prometheus keeps its connection. */
	if (!*con_cls) {
		*con_cls = h;
		return MHD_YES;
	}
	h->requests++;
	prom_reset(&h->body);
	status = h->fn(url, &h->body, h->arg);
	if (status != MHD_HTTP_OK)
		return reply_text(conn, (unsigned)status,
		           status == MHD_HTTP_NOT_FOUND ? "not found\n"
		                                        : "error\n") == MHD_YES
		    ? MHD_YES
		    : MHD_NO;
	/* Copied: a slow reader may still be sending while the next scrape
	 * renders into the same buffer. */
	resp = MHD_create_response_from_buffer(h->body.len,
	    h->body.buf ? h->body.buf : (char *)"", MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    PROM_CONTENT_TYPE);
	status = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return status == MHD_YES ? MHD_YES : MHD_NO;
}

static void arm(httpd_t *h);

static void
run(httpd_t *h)
{
	MHD_UNSIGNED_LONG_LONG timeout;

	/* MHD keeps connections with work left in a list of its own that
	 * the epoll descriptor does not signal: it says so with a zero
	 * timeout, so run again before going back to the loop. */
	for (int i = 0; i < RUNS_MAX; i++) {
		MHD_run(h->mhd);
		if (MHD_get_timeout(h->mhd, &timeout) != MHD_YES || timeout > 0)
			break;
	}
	arm(h);
}

static int
on_timer(zloop_t *loop, int timer_id, void *arg)
{
	httpd_t *h = arg;

	(void)loop;
	(void)timer_id;
	h->timer = -1; /* one-shot: zloop ends it */
	run(h);
	return 0;
}

/* A one-shot timer for MHD's next timeout, replacing a pending one. */
static void
arm(httpd_t *h)
{
	MHD_UNSIGNED_LONG_LONG timeout;

	if (MHD_get_timeout(h->mhd, &timeout) != MHD_YES)
		timeout = 1000;
	if (timeout < 1)
		timeout = 1;
	if (timeout > 1000)
		timeout = 1000;
	if (h->timer >= 0)
		zloop_timer_end(h->loop, h->timer);
	h->timer = zloop_timer(h->loop, (size_t)timeout, 1, on_timer, h);
}

static int
on_readable(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
	(void)loop;
	(void)item;
	run(arg);
	return 0;
}

static int
listen_socket(const char *addr, unsigned *ret_port, char *err, size_t errlen)
{
	char host[256], port[8];
	unsigned p;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} bound;
	socklen_t blen = sizeof bound;
	int fd = -1, one = 1, saved = 0, r;

	if (httpd_parse_listen(addr, host, sizeof host, &p) < 0) {
		snprintf(err, errlen, "metrics endpoint '%s': expected %s",
		    addr, HTTPD_LISTEN_EXPECT);
		return SHOAL_E_INVALID;
	}
	snprintf(port, sizeof port, "%u", p);
	r = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints,
	    &ai);
	if (r != 0) {
		snprintf(err, errlen, "metrics endpoint %s: %s", addr,
		    gai_strerror(r));
		return SHOAL_E_INVALID;
	}
	/* "*": the IPv6 wildcard takes IPv4 too where it exists. */
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		if (fd >= 0)
			close(fd);
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 &&
		    listen(fd, 64) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		r = saved ? -saved : -EADDRNOTAVAIL;
		snprintf(err, errlen, "cannot listen on %s: %s", addr,
		    strerror(-r));
		freeaddrinfo(ai);
		return r;
	}
	freeaddrinfo(ai);
	if (getsockname(fd, &bound.sa, &blen) == 0)
		*ret_port =
		    ntohs(bound.sa.sa_family == AF_INET6 ? bound.in6.sin6_port
		                                         : bound.in.sin_port);
	return fd;
}

int
httpd_new(zloop_t *loop, const char *listen, httpd_handler_fn fn, void *arg,
    httpd_t **ret, char *err, size_t errlen)
{
	httpd_t *h;
	const union MHD_DaemonInfo *info;
	unsigned port = 0;
	int fd;

	fd = listen_socket(listen, &port, err, errlen);
	if (fd < 0)
		return fd;
	h = xcalloc(1, sizeof *h);
	h->loop = loop;
	h->fn = fn;
	h->arg = arg;
	h->timer = -1;
	h->port = port;
	h->mhd =
	    MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ERROR_LOG,
	        0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
	        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX,
	        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)PER_IP_MAX,
	        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
	        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
	if (!h->mhd) {
		snprintf(err, errlen,
		    "metrics endpoint %s: the HTTP server did not start",
		    listen);
		close(fd);
		free(h);
		return SHOAL_E_INVALID;
	}
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	h->item =
	    (zmq_pollitem_t){ .fd = info->epoll_fd, .events = ZMQ_POLLIN };
	zloop_poller(loop, &h->item, on_readable, h);
	arm(h);
	*ret = h;
	return 0;
}

unsigned
httpd_port(const httpd_t *h)
{
	return h->port;
}

uint64_t
httpd_requests(const httpd_t *h)
{
	return h->requests;
}

void
httpd_destroy(httpd_t **hp)
{
	httpd_t *h = *hp;

	if (!h)
		return;
	zloop_poller_end(h->loop, &h->item);
	if (h->timer >= 0)
		zloop_timer_end(h->loop, h->timer);
	/* MHD closes the listening socket it was given. */
	MHD_stop_daemon(h->mhd);
	prom_free(&h->body);
	free(h);
	*hp = NULL;
}
