/* lib/threadpool: every job and done callback runs, FIFO order with one
 * thread, destroy drains the queue, and done callbacks on an event_base
 * run on the loop's thread. */
#include "unit.h"
#include "lib/threadpool.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#define NJOBS 100

static atomic_int work_count, done_count;
static int order[NJOBS], order_len;
static pthread_t loop_thread;
static atomic_int done_on_loop;
static struct event_base *test_base;

struct job {
	int n;
	atomic_bool worked;
};

static void job_work(void *arg)
{
	struct job *j = arg;
	atomic_store(&j->worked, true);
	atomic_fetch_add(&work_count, 1);
}

static void job_work_slow(void *arg)
{
	usleep(1000);
	job_work(arg);
}

static void job_work_ordered(void *arg)
{
	struct job *j = arg;
	order[order_len++] = j->n;   /* one pool thread: no race */
	job_work(arg);
}

static void job_done(void *arg)
{
	struct job *j = arg;
	if (atomic_load(&j->worked))   /* done only after work */
		atomic_fetch_add(&done_count, 1);
}

static void job_done_loop(void *arg)
{
	job_done(arg);
	if (pthread_equal(pthread_self(), loop_thread))
		atomic_fetch_add(&done_on_loop, 1);
	if (atomic_load(&done_count) == NJOBS)
		event_base_loopbreak(test_base);
}

static void reset(struct job *jobs)
{
	atomic_store(&work_count, 0);
	atomic_store(&done_count, 0);
	atomic_store(&done_on_loop, 0);
	order_len = 0;
	for (int i = 0; i < NJOBS; i++) {
		jobs[i].n = i;
		atomic_store(&jobs[i].worked, false);
	}
}

static void test_all_run(void)
{
	struct job jobs[NJOBS];
	reset(jobs);
	struct threadpool *pool = threadpool_create(4);
	for (int i = 0; i < NJOBS; i++)
		threadpool_submit(pool, NULL, job_work, i % 2 ? job_done : NULL, &jobs[i]);
	threadpool_destroy(&pool);
	CHECK(pool == NULL);
	CHECK(atomic_load(&work_count) == NJOBS);
	CHECK(atomic_load(&done_count) == NJOBS / 2);
}

static void test_fifo_and_drain(void)
{
	struct job jobs[NJOBS];
	reset(jobs);
	struct threadpool *pool = threadpool_create(1);
	for (int i = 0; i < NJOBS; i++)
		threadpool_submit(pool, NULL, job_work_ordered, job_done, &jobs[i]);
	threadpool_destroy(&pool);
	CHECK(order_len == NJOBS);
	int in_order = 1;
	for (int i = 0; i < order_len; i++)
		in_order &= order[i] == i;
	CHECK(in_order);
	CHECK(atomic_load(&done_count) == NJOBS);

	/* slow jobs still queued at destroy all run */
	reset(jobs);
	pool = threadpool_create(2);
	for (int i = 0; i < 40; i++)
		threadpool_submit(pool, NULL, job_work_slow, job_done, &jobs[i]);
	threadpool_destroy(&pool);
	CHECK(atomic_load(&work_count) == 40);
	CHECK(atomic_load(&done_count) == 40);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what;
	event_base_loopbreak(arg);
}

static void keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
}

static void test_event_base(void)
{
	struct job jobs[NJOBS];
	reset(jobs);
	CHECK(evthread_use_pthreads() == 0);
	test_base = event_base_new();
	loop_thread = pthread_self();
	/* a persistent timer keeps the loop running while jobs are out;
	 * a 10 s one-shot stops a hung test */
	struct timeval tick = { 1, 0 }, limit = { 10, 0 };
	struct event *keep = event_new(test_base, -1, EV_PERSIST, keepalive_cb, NULL);
	event_add(keep, &tick);
	struct event *stop = evtimer_new(test_base, timeout_cb, test_base);
	event_add(stop, &limit);

	struct threadpool *pool = threadpool_create(3);
	for (int i = 0; i < NJOBS; i++)
		threadpool_submit(pool, test_base, job_work, job_done_loop, &jobs[i]);
	event_base_dispatch(test_base);
	CHECK(atomic_load(&work_count) == NJOBS);
	CHECK(atomic_load(&done_count) == NJOBS);
	CHECK(atomic_load(&done_on_loop) == NJOBS);
	threadpool_destroy(&pool);
	event_free(keep);
	event_free(stop);
	event_base_free(test_base);
}

int main(void)
{
	RUN(test_all_run);
	RUN(test_fifo_and_drain);
	RUN(test_event_base);
	return unit_summary("threadpool");
}
