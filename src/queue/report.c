/* Shared by the daily report senders (queue/report.h): queueing a report
 * mail with the null sender, and the once-a-day timer that runs a sender
 * on its own thread.
 *
 * Invariants: a run never happens on an event loop (it blocks on DNS and
 * store writes); at most one run of a service at a time; a day's run
 * starts at most once (a run that fails waits for the next day, or for
 * the administrator's `tern ... send`). */
#include "queue/report.h"

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/threadpool.h"
#include "store/store.h"

#include <event2/event.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_CHECK_SECONDS 300      /* the timer looks at the clock this often */

int report_mail_deliver(struct store *store, const char *to, const struct buf *msg,
			const char **error_r)
{
	struct store_rcpt owner = { 0 };
	struct store_delivery_rcpt *local = NULL;
	struct store_queue_rcpt_in remote = { .address = to };
	const char *err = NULL;
	struct store_delivery d = {
		.return_path = "", .body = msg->data, .body_len = msg->len,
		.internal_date = clock_now(),
	};
	int rc;

	/* a rua of ours goes to the mailbox, anyone else's through the queue */
	if (store_rcpt_resolve(store, to, "+", &owner, &err) == 0 &&
	    owner.kind == STORE_RCPT_LOCAL && owner.user_count > 0) {
		local = store_rcpt_deliveries(&owner);
		d.rcpts = local;
		d.rcpt_count = owner.user_count;
	} else {
		d.remote = &remote;
		d.remote_count = 1;
	}
	rc = store_deliver_sync(store, &d, error_r);
	free(local);
	store_rcpt_clear(&owner);
	return rc;
}

struct report_daily {
	struct event *timer, *first;
	struct threadpool *pool;
	unsigned hour;
	int (*run)(void *ctx);
	void *ctx;
	void (*kick)(void *ctx);
	void *kick_ctx;
	int64_t done_day;           /* the UTC day whose run has started */
	atomic_bool running;
};

static void daily_work(void *arg)
{
	struct report_daily *d = arg;

	if (d->run(d->ctx) > 0 && d->kick != NULL)
		d->kick(d->kick_ctx);
	atomic_store(&d->running, false);
}

static void daily_tick(evutil_socket_t fd, short what, void *arg)
{
	struct report_daily *d = arg;
	time_t now = clock_now();
	int64_t day = (int64_t)(now / 86400);
	unsigned hour = (unsigned)((now % 86400) / 3600);

	(void)fd; (void)what;
	if (day == d->done_day || hour < d->hour || atomic_load(&d->running))
		return;
	d->done_day = day;
	atomic_store(&d->running, true);
	threadpool_submit(d->pool, NULL, daily_work, NULL, d);
}

struct report_daily *report_daily_start(struct event_base *base, unsigned hour,
					int (*run)(void *ctx), void *ctx,
					void (*kick)(void *ctx), void *kick_ctx)
{
	struct report_daily *d = xcalloc(1, sizeof(*d));
	struct timeval tv = { REPORT_CHECK_SECONDS, 0 }, soon = { 10, 0 };

	d->hour = hour;
	d->run = run;
	d->ctx = ctx;
	d->kick = kick;
	d->kick_ctx = kick_ctx;
	d->done_day = -1;
	d->pool = threadpool_create(1);
	d->timer = event_new(base, -1, EV_PERSIST, daily_tick, d);
	event_add(d->timer, &tv);
	/* the first look soon after start, then every REPORT_CHECK_SECONDS */
	d->first = evtimer_new(base, daily_tick, d);
	evtimer_add(d->first, &soon);
	return d;
}

void report_daily_stop(struct report_daily **dp)
{
	struct report_daily *d = *dp;

	if (d == NULL)
		return;
	event_free(d->timer);
	event_free(d->first);
	threadpool_destroy(&d->pool);
	free(d);
	*dp = NULL;
}
