/* A fixed pool of worker threads with one FIFO job queue (see threadpool.h).
 *
 * Invariants: jobs start in submission order; a job's done() runs after its
 * work() returned, either on the pool thread (base == NULL) or on the
 * job's event_base through event_base_once(), which libevent makes safe
 * to call from another thread once evthread_use_pthreads() has run, and
 * which wakes that loop.  threadpool_destroy() lets the workers drain the
 * queue before they exit, so no submitted job is ever dropped.  Submitting
 * after destroy has started is a programming error (panic). */
#include "lib/threadpool.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct threadpool_job {
	struct threadpool_job *next;
	struct event_base *base;
	void (*work)(void *arg);
	void (*done)(void *arg);
	void *arg;
};

struct threadpool {
	pthread_mutex_t lock;
	pthread_cond_t cond;          /* signalled when a job is queued or on stop */
	struct threadpool_job *head;  /* FIFO: take from head, add at tail */
	struct threadpool_job *tail;
	bool stopping;
	unsigned nthreads;
	pthread_t *threads;
};

/* Runs on the job's event_base: call done and free the job. */
static void threadpool_done_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what;
	struct threadpool_job *job = arg;
	job->done(job->arg);
	free(job);
}

static void threadpool_run(struct threadpool_job *job)
{
	job->work(job->arg);
	if (job->done == NULL) {
		free(job);
	} else if (job->base == NULL) {
		job->done(job->arg);
		free(job);
	} else if (event_base_once(job->base, -1, EV_TIMEOUT, threadpool_done_cb,
				   job, NULL) < 0) {
		/* Only fails on allocation failure; the caller waits for done
		 * forever otherwise, so there is no safe way on. */
		panic("threadpool: event_base_once failed");
	}
}

static void *threadpool_thread(void *arg)
{
	struct threadpool *pool = arg;
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (pool->head == NULL && !pool->stopping)
			pthread_cond_wait(&pool->cond, &pool->lock);
		struct threadpool_job *job = pool->head;
		if (job == NULL)
			break;   /* stopping and drained */
		pool->head = job->next;
		if (pool->head == NULL)
			pool->tail = NULL;
		pthread_mutex_unlock(&pool->lock);
		threadpool_run(job);
		pthread_mutex_lock(&pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

struct threadpool *threadpool_create(unsigned threads)
{
	struct threadpool *pool = xcalloc(1, sizeof(*pool));
	if (threads == 0)
		threads = 1;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pool->threads = xcalloc(threads, sizeof(pthread_t));
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&pool->threads[i], NULL, threadpool_thread, pool) != 0)
			fatal("threadpool: cannot create thread %u", i);
		pool->nthreads++;
	}
	return pool;
}

void threadpool_destroy(struct threadpool **poolp)
{
	struct threadpool *pool = *poolp;
	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool->threads);
	free(pool);
	*poolp = NULL;
}

void threadpool_submit(struct threadpool *pool, struct event_base *base,
		       void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
	struct threadpool_job *job = xcalloc(1, sizeof(*job));
	job->base = base;
	job->work = work;
	job->done = done;
	job->arg = arg;
	pthread_mutex_lock(&pool->lock);
	if (pool->stopping) {
		pthread_mutex_unlock(&pool->lock);
		panic("threadpool: submit after destroy");
	}
	if (pool->tail != NULL)
		pool->tail->next = job;
	else
		pool->head = job;
	pool->tail = job;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}
