/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemons' metrics endpoint: a small HTTP server (libmicrohttpd) driven
 * by the daemon's zloop, so a scrape renders on the loop thread from the
 * daemon's own state without locks. MHD runs in its external epoll mode:
 * the loop polls one descriptor and a one-shot timer covers MHD's timeouts.
 * Answers GET and HEAD of the handler's paths; other methods get 405.
 */
#ifndef SHOAL_COMMON_HTTPD_H
#define SHOAL_COMMON_HTTPD_H

#include <czmq.h>

#include "common/prom.h"

typedef struct httpd httpd_t;

/*
 * Renders the body of path into out (empty, reused between requests) and
 * returns the HTTP status, 404 for a path it does not serve. The content
 * type is the Prometheus text format for a 200, text/plain otherwise.
 */
typedef int (*httpd_handler_fn)(const char *path, prom_t *out, void *arg);

/* Splits "HOST:PORT" ("[::1]:9464", "*:9464" for every address); 0 or
 * SHOAL_E_INVALID. Also the option validator: httpd_listen_valid() accepts
 * "off" too. */
int httpd_parse_listen(const char *s, char *host, size_t hostlen,
    unsigned *port);
bool httpd_listen_valid(const char *s);
#define HTTPD_LISTEN_EXPECT "HOST:PORT (e.g. 127.0.0.1:9464) or off"

/* Listens on listen ("HOST:PORT"); err says why not (the address, and the
 * system's reason). */
int httpd_new(zloop_t *loop, const char *listen, httpd_handler_fn fn, void *arg,
    httpd_t **ret, char *err, size_t errlen);
/* For the start-up log line: listen, with the port bound when it asked
 * for any (":0"), or "off" when h is NULL. */
void httpd_describe(const httpd_t *h, const char *listen, char *buf,
    size_t size);
void httpd_destroy(httpd_t **h);

#endif
