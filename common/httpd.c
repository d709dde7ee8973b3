/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics endpoint's HTTP server, on the daemon's zloop (see httpd.h).
 * The listening socket is made here, so a bind failure names the address
 * and the reason; MHD then owns it. A peer that sends garbage, holds a
 * connection open or opens many gets MHD's limits below, never the loop.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
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

#define CONNECTIONS_MAX 256
#define PER_IP_MAX 64
#define CONNECTION_TIMEOUT_S 10
/* What MHD may take per connection for the request's headers. */
#define CONNECTION_MEMORY 16384
/* Scrapes closer together than this share one rendering. */
#define RENDER_MIN_MS 100
/* Older renderings still being sent; more make scrapes share the newest,
 * unless it is older than STALE_MAX_MS. */
#define RETIRED_MAX 2
#define STALE_MAX_MS 30000
/* MHD_run() rounds in a row while MHD says more is ready at once. */
#define RUNS_MAX 64

typedef struct rendering rendering_t;

struct httpd {
	zloop_t *loop;
	struct MHD_Daemon *mhd;
	zmq_pollitem_t item;
	int timer; /* one-shot, for MHD's next timeout; -1: none */
	unsigned port;
	httpd_handler_fn fn;
	void *arg;
	prom_t body;
	rendering_t *cur; /* the newest rendering, of cur_path */
	char cur_path[256];
	rendering_t *retired;
	unsigned nretired;
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

/* A rendering's response, shared by every request it answers. */
struct rendering {
	struct MHD_Response *resp;
	uint64_t made_mono;
	unsigned users;    /* requests it is queued on, not completed */
	rendering_t *next; /* h->retired */
};

static void
rendering_free(rendering_t *r)
{
	MHD_destroy_response(r->resp);
	free(r);
}

/* The newest rendering is replaced: free it, or keep it while requests
 * still send it. */
static void
retire(httpd_t *h)
{
	rendering_t *r = h->cur;

	h->cur = NULL;
	if (!r)
		return;
	if (r->users == 0) {
		rendering_free(r);
		return;
	}
	r->next = h->retired;
	h->retired = r;
	h->nretired++;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode why)
{
	httpd_t *h = cls;
	rendering_t *r = *con_cls;

	(void)conn;
	(void)why;
	*con_cls = NULL;
	if (!r || (void *)r == (void *)h)
		return;
	if (--r->users > 0 || r == h->cur)
		return;
	for (rendering_t **pp = &h->retired; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			h->nretired--;
			rendering_free(r);
			return;
		}
}

/* The rendering for a request of path: the newest one while it is young
 * (scrapes in a burst, or a peer scraping in a loop, cost one rendering
 * per RENDER_MIN_MS at most), or while RETIRED_MAX older ones are still
 * being sent to slow readers (so they pin that many copies at most), else
 * a new one. NULL with *status set when the handler did not answer 200. */
static rendering_t *
rendering_for(httpd_t *h, const char *path, int *status)
{
	uint64_t now = mono_ms(), age;
	rendering_t *r;

	age = h->cur ? now - h->cur->made_mono : 0;
	if (h->cur && strcmp(h->cur_path, path) == 0 &&
	    (age < RENDER_MIN_MS ||
	        (h->nretired >= RETIRED_MAX && age < STALE_MAX_MS)))
		return h->cur;
	prom_reset(&h->body);
	*status = h->fn(path, &h->body, h->arg);
	if (*status != MHD_HTTP_OK)
		return NULL;
	r = xcalloc(1, sizeof *r);
	/* Copied: the next rendering reuses the buffer while slow readers
	 * may still be sending this one. */
	r->resp = MHD_create_response_from_buffer(h->body.len,
	    h->body.buf ? h->body.buf : (char *)"", MHD_RESPMEM_MUST_COPY);
	if (!r->resp)
		abort(); /* out of memory */
	MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    PROM_CONTENT_TYPE);
	r->made_mono = now;
	retire(h);
	h->cur = r;
	snprintf(h->cur_path, sizeof h->cur_path, "%s", path);
	return r;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	httpd_t *h = cls;
	rendering_t *r;
	int status = MHD_HTTP_OK;

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
	 * that no body follows), and Prometheus keeps its connection. A body
	 * sent with a GET is read and dropped; the answer comes after it. */
	if (!*con_cls) {
		*con_cls = h;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (*con_cls != (void *)h)
		return MHD_YES; /* answered already */
	r = rendering_for(h, url, &status);
	if (!r)
		return reply_text(conn, (unsigned)status,
		           status == MHD_HTTP_NOT_FOUND ? "not found\n"
		                                        : "error\n") == MHD_YES
		    ? MHD_YES
		    : MHD_NO;
	if (MHD_queue_response(conn, MHD_HTTP_OK, r->resp) != MHD_YES)
		return MHD_NO;
	r->users++;
	*con_cls = r; /* on_completed() lets go of it */
	return MHD_YES;
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
	int fd = -1, one = 1, saved = 0, wild, r;

	if (httpd_parse_listen(addr, host, sizeof host, &p) < 0) {
		snprintf(err, errlen, "metrics endpoint '%s': expected %s",
		    addr, HTTPD_LISTEN_EXPECT);
		return SHOAL_E_INVALID;
	}
	snprintf(port, sizeof port, "%u", p);
	/* "*": the IPv6 wildcard, which takes IPv4 too (V6ONLY off below),
	 * where the host has IPv6; getaddrinfo() would list 0.0.0.0 first. */
	wild = strcmp(host, "*") == 0;
	if (wild &&
	    (fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0) {
		struct sockaddr_in6 any = { .sin6_family = AF_INET6,
			.sin6_port = htons((uint16_t)p),
			.sin6_addr = IN6ADDR_ANY_INIT };
		int zero = 0;

		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
		if (bind(fd, (struct sockaddr *)&any, sizeof any) == 0 &&
		    listen(fd, 64) == 0)
			goto bound;
		saved = errno;
		close(fd);
		fd = -1;
		if (saved != EAFNOSUPPORT && saved != EADDRNOTAVAIL)
			goto failed;
	}
	if (wild)
		hints.ai_family = AF_INET;
	r = getaddrinfo(wild ? NULL : host, port, &hints, &ai);
	if (r != 0) {
		snprintf(err, errlen, "metrics endpoint %s: %s", addr,
		    gai_strerror(r));
		return SHOAL_E_INVALID;
	}
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
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
	freeaddrinfo(ai);
	if (fd < 0) {
	failed:
		r = saved ? -saved : -EADDRNOTAVAIL;
		snprintf(err, errlen, "cannot listen on %s: %s", addr,
		    strerror(-r));
		return r;
	}
bound:
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
	        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
	        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
	        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
	if (!h->mhd) {
		snprintf(err, errlen,
		    "metrics endpoint %s: the HTTP server did not start",
		    listen);
		/* Not closed: MHD may have closed it already (a fatal path,
		 * the daemon exits). */
		free(h);
		return SHOAL_E_INVALID;
	}
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info)
		abort(); /* MHD_USE_EPOLL always has one */
	h->item =
	    (zmq_pollitem_t){ .fd = info->epoll_fd, .events = ZMQ_POLLIN };
	zloop_poller(loop, &h->item, on_readable, h);
	arm(h);
	*ret = h;
	return 0;
}

void
httpd_describe(const httpd_t *h, const char *listen, char *buf, size_t size)
{
	size_t n = strlen(listen);

	if (h && n > 2 && strcmp(listen + n - 2, ":0") == 0)
		snprintf(buf, size, "%s (port %u)", listen, h->port);
	else
		snprintf(buf, size, "%s", h ? listen : "off");
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
	/* MHD closes the listening socket it was given, and completes the
	 * requests in progress (on_completed frees the retired renderings). */
	MHD_stop_daemon(h->mhd);
	retire(h);
	while (h->retired) {
		rendering_t *r = h->retired;

		h->retired = r->next;
		rendering_free(r);
	}
	prom_free(&h->body);
	free(h);
	*hp = NULL;
}
