/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The memory floor of the agent's libraries: a process linked like
 * shoal-agent that initialises what the agent initialises at start
 * (libcurl with its TLS, czmq and a ZeroMQ socket with its I/O thread)
 * and then waits, doing nothing. bench_scrape.sh shows its RSS beside the
 * agent's, so what the agent itself costs can be told from what loading
 * libcurl, OpenSSL, ZeroMQ and libstdc++ costs any process.
 *
 * usage: rss_floor   (runs until SIGTERM or SIGINT)
 */
#include "autoconf.h"

#include <signal.h>
#include <unistd.h>

#include <curl/curl.h>
#include <czmq.h>

int
main(void)
{
	zsock_t *s;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	zsys_init();
	zsys_set_logstream(NULL);
	s = zsock_new(ZMQ_DEALER);
	zsock_connect(s, "tcp://127.0.0.1:9");
	sigwait(&set, &sig);
	zsock_destroy(&s);
	curl_global_cleanup();
	return 0;
}
