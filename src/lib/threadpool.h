/* A small pool of worker threads for slow blocking work (password hashing,
 * on purpose slow) that must not stall an event loop.  work() runs on a pool
 * thread; done() then runs on the event_base given with the job. */
#ifndef TERN_LIB_THREADPOOL_H
#define TERN_LIB_THREADPOOL_H

struct event_base;
struct threadpool;

struct threadpool *threadpool_create(unsigned threads);
/* Waits for queued jobs to finish, joins the threads, sets *pool NULL. */
void threadpool_destroy(struct threadpool **pool);
/* Queue a job.  done may be NULL; with base NULL, done runs on the pool
 * thread right after work.  Needs evthread_use_pthreads() for base != NULL. */
void threadpool_submit(struct threadpool *pool, struct event_base *base,
		       void (*work)(void *arg), void (*done)(void *arg), void *arg);

#endif
