/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The worker pool (see jobs.h): one mutex guards a queue of jobs to run and
 * a queue of jobs done; workers wait on a condition variable; the loop reads
 * an eventfd and calls each done in completion order.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent/jobs.h"
#include "common/util.h"

struct jobs {
	zloop_t *loop;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	job_t *todo, **todo_tail;
	job_t *done, **done_tail;
	pthread_t *threads;
	unsigned nthreads;
	unsigned pending; /* loop thread only */
	int stopping;
	int efd;
};

static void
push(job_t **head, job_t ***tail, job_t *job)
{
	job->next = NULL;
	**tail = job;
	*tail = &job->next;
}

static job_t *
pop(job_t **head, job_t ***tail)
{
	job_t *job = *head;

	if (job) {
		*head = job->next;
		if (!*head)
			*tail = head;
	}
	return job;
}

static void *
worker(void *arg)
{
	jobs_t *j = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&j->lock);
	for (;;) {
		job_t *job;

		while (!j->todo && !j->stopping)
			pthread_cond_wait(&j->wake, &j->lock);
		if (j->stopping)
			break;
		job = pop(&j->todo, &j->todo_tail);
		pthread_mutex_unlock(&j->lock);
		job->run(job);
		pthread_mutex_lock(&j->lock);
		push(&j->done, &j->done_tail, job);
		if (write(j->efd, &one, sizeof one) < 0) {
			/* The counter cannot overflow in practice; the loop
			 * drains the queue at its next wake-up anyway. */
		}
	}
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

/* Runs the completions of finished jobs on the loop thread. */
static void
drain(jobs_t *j)
{
	job_t *list, *job;

	pthread_mutex_lock(&j->lock);
	list = j->done;
	j->done = NULL;
	j->done_tail = &j->done;
	pthread_mutex_unlock(&j->lock);
	while ((job = list)) {
		list = job->next;
		j->pending--;
		job->done(job, job->arg);
	}
}

static int
on_efd(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
	jobs_t *j = arg;
	uint64_t n;

	if (read(j->efd, &n, sizeof n) < 0 && errno != EAGAIN)
		return 0;
	drain(j);
	return 0;
}

int
jobs_new(zloop_t *loop, unsigned threads, jobs_t **ret)
{
	jobs_t *j = xcalloc(1, sizeof *j);
	zmq_pollitem_t item = { .events = ZMQ_POLLIN };

	j->loop = loop;
	j->todo_tail = &j->todo;
	j->done_tail = &j->done;
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->wake, NULL);
	j->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (j->efd < 0) {
		int r = -errno;

		free(j);
		return r;
	}
	item.fd = j->efd;
	zloop_poller(loop, &item, on_efd, j);
	j->threads = xcalloc(threads, sizeof *j->threads);
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&j->threads[i], NULL, worker, j) != 0)
			abort();
		j->nthreads++;
	}
	*ret = j;
	return 0;
}

void
jobs_submit(jobs_t *j, job_t *job)
{
	job->cancelled = 0;
	j->pending++;
	pthread_mutex_lock(&j->lock);
	push(&j->todo, &j->todo_tail, job);
	pthread_cond_signal(&j->wake);
	pthread_mutex_unlock(&j->lock);
}

unsigned
jobs_pending(const jobs_t *j)
{
	return j->pending;
}

void
jobs_destroy(jobs_t **jp)
{
	jobs_t *j = *jp;
	zmq_pollitem_t item = { .events = ZMQ_POLLIN };
	job_t *job;

	if (!j)
		return;
	pthread_mutex_lock(&j->lock);
	j->stopping = 1;
	pthread_cond_broadcast(&j->wake);
	pthread_mutex_unlock(&j->lock);
	for (unsigned i = 0; i < j->nthreads; i++)
		pthread_join(j->threads[i], NULL);
	drain(j);
	while ((job = pop(&j->todo, &j->todo_tail))) {
		job->cancelled = 1;
		j->pending--;
		job->done(job, job->arg);
	}
	item.fd = j->efd;
	if (j->loop)
		zloop_poller_end(j->loop, &item);
	close(j->efd);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->wake);
	free(j->threads);
	free(j);
	*jp = NULL;
}
