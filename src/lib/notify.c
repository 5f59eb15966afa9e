/* The in-process notification hub (see notify.h).
 *
 * Subscribers hang off a small hash table keyed by user id.  Publishing
 * takes a reference on each matching subscriber and schedules one delivery
 * on its event loop; the delivery runs on that loop, so it cannot race with
 * notify_unsubscribe() (same thread), which only marks the subscriber dead
 * and drops its own reference.  The last reference frees it.
 * Invariants: a subscriber is in the table iff it is live; refs counts the
 * table's reference plus one per queued delivery. */
#include "lib/notify.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define NOTIFY_BUCKETS 256

struct notify_sub {
	struct notify_sub *next;
	int64_t user_id;
	struct event_base *base;
	notify_cb *cb;
	void *ctx;
	unsigned refs;       /* under hub_lock */
	bool live;           /* read and written on the subscriber's thread */
};

struct notify_delivery {
	struct notify_sub *sub;
	struct notify_event ev;
};

static pthread_mutex_t hub_lock = PTHREAD_MUTEX_INITIALIZER;
static struct notify_sub *hub[NOTIFY_BUCKETS];
static unsigned hub_count;

static unsigned bucket(int64_t user_id)
{
	return (unsigned)((uint64_t)user_id * 0x9e3779b97f4a7c15ull >> 56) % NOTIFY_BUCKETS;
}

static void sub_unref(struct notify_sub *sub)
{
	bool last;

	pthread_mutex_lock(&hub_lock);
	last = --sub->refs == 0;
	pthread_mutex_unlock(&hub_lock);
	if (last)
		free(sub);
}

struct notify_sub *notify_subscribe(int64_t user_id, struct event_base *base, notify_cb *cb,
				    void *ctx)
{
	struct notify_sub *sub = xcalloc(1, sizeof(*sub));
	unsigned b = bucket(user_id);

	sub->user_id = user_id;
	sub->base = base;
	sub->cb = cb;
	sub->ctx = ctx;
	sub->refs = 1;
	sub->live = true;
	pthread_mutex_lock(&hub_lock);
	sub->next = hub[b];
	hub[b] = sub;
	hub_count++;
	pthread_mutex_unlock(&hub_lock);
	return sub;
}

void notify_unsubscribe(struct notify_sub **subp)
{
	struct notify_sub *sub = *subp, **pp;

	if (sub == NULL)
		return;
	*subp = NULL;
	sub->live = false;
	pthread_mutex_lock(&hub_lock);
	for (pp = &hub[bucket(sub->user_id)]; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == sub) {
			*pp = sub->next;
			hub_count--;
			break;
		}
	}
	pthread_mutex_unlock(&hub_lock);
	sub_unref(sub);
}

static void notify_deliver(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what;
	struct notify_delivery *d = arg;

	if (d->sub->live)
		d->sub->cb(d->sub->ctx, &d->ev);
	sub_unref(d->sub);
	free(d);
}

void notify_publish(const struct notify_event *ev)
{
	struct notify_delivery **batch = NULL;
	size_t n = 0, cap = 0;
	struct notify_sub *sub;

	/* collect under the lock, schedule outside it: event_base_once takes
	 * the target loop's lock, which must never nest inside hub_lock */
	pthread_mutex_lock(&hub_lock);
	for (sub = hub[bucket(ev->user_id)]; sub != NULL; sub = sub->next) {
		if (sub->user_id != ev->user_id)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			batch = xrealloc(batch, cap * sizeof(*batch));
		}
		batch[n] = xmalloc(sizeof(*batch[n]));
		batch[n]->sub = sub;
		batch[n]->ev = *ev;
		sub->refs++;
		n++;
	}
	pthread_mutex_unlock(&hub_lock);
	for (size_t i = 0; i < n; i++)
		if (event_base_once(batch[i]->sub->base, -1, EV_TIMEOUT, notify_deliver, batch[i],
				    NULL) < 0)
			panic("notify: event_base_once failed");
	free(batch);
}

unsigned notify_subscriber_count(void)
{
	unsigned n;
	pthread_mutex_lock(&hub_lock);
	n = hub_count;
	pthread_mutex_unlock(&hub_lock);
	return n;
}
