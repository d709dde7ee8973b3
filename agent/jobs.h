/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small pool of worker threads for the agent's blocking work (container
 * runtime calls, health probes), so the event loop never waits on them.
 * A job runs on a worker; its completion runs on the loop thread, woken
 * through an eventfd the loop polls. Jobs embed job_t as their first member.
 */
#ifndef SHOAL_AGENT_JOBS_H
#define SHOAL_AGENT_JOBS_H

#include <czmq.h>

typedef struct job job_t;
struct job {
	job_t *next;
	void (*run)(job_t *job);             /* on a worker thread */
	void (*done)(job_t *job, void *arg); /* on the loop thread; frees */
	void *arg;
	int cancelled; /* set when the pool closed before the job ran */
};

typedef struct jobs jobs_t;

int jobs_new(zloop_t *loop, unsigned threads, jobs_t **ret);
/* Queues job; run and done must be set. */
void jobs_submit(jobs_t *j, job_t *job);
/* Jobs queued or running. */
unsigned jobs_pending(const jobs_t *j);
/* Waits for running jobs, cancels queued ones, and calls every done. */
void jobs_destroy(jobs_t **j);

#endif
