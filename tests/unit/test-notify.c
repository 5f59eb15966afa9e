/* lib/notify: delivery to the right user's subscribers on their loop,
 * nothing after unsubscribe, publishing from another thread. */
#include "unit.h"
#include "lib/notify.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>

struct got {
	int count;
	int64_t last_mailbox;
	pthread_t thread;
};

static void on_event(void *ctx, const struct notify_event *ev)
{
	struct got *g = ctx;
	g->count++;
	g->last_mailbox = ev->mailbox_id;
	g->thread = pthread_self();
}

static void run_loop(struct event_base *base)
{
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_loop(base, EVLOOP_NONBLOCK);
}

static void test_routing(void)
{
	struct event_base *base = event_base_new();
	struct got a = { 0 }, a2 = { 0 }, b = { 0 };
	struct notify_sub *sa = notify_subscribe(1, base, on_event, &a);
	struct notify_sub *sa2 = notify_subscribe(1, base, on_event, &a2);
	struct notify_sub *sb = notify_subscribe(2, base, on_event, &b);

	CHECK(notify_subscriber_count() == 3);
	notify_publish(&(struct notify_event){ .user_id = 1, .mailbox_id = 7,
					       .kinds = NOTIFY_MESSAGE_NEW });
	CHECK(a.count == 0);   /* asynchronous: only on the loop */
	run_loop(base);
	CHECK(a.count == 1 && a.last_mailbox == 7);
	CHECK(a2.count == 1);
	CHECK(b.count == 0);
	CHECK(pthread_equal(a.thread, pthread_self()));

	/* queued, then unsubscribed before the loop runs: dropped */
	notify_publish(&(struct notify_event){ .user_id = 1, .mailbox_id = 8 });
	notify_unsubscribe(&sa);
	CHECK(sa == NULL);
	run_loop(base);
	CHECK(a.count == 1);
	CHECK(a2.count == 2 && a2.last_mailbox == 8);
	notify_unsubscribe(&sa2);
	notify_unsubscribe(&sb);
	CHECK(notify_subscriber_count() == 0);
	event_base_free(base);
}

static void *publisher(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++)
		notify_publish(&(struct notify_event){ .user_id = 3, .mailbox_id = i });
	return NULL;
}

static void test_cross_thread(void)
{
	struct event_base *base = event_base_new();
	struct got g = { 0 };
	struct notify_sub *subs[70];
	struct got gs[70] = { { 0 } };
	pthread_t t;

	/* more subscribers than one publishing chunk holds */
	for (int i = 0; i < 70; i++)
		subs[i] = notify_subscribe(3, base, on_event, &gs[i]);
	struct notify_sub *s = notify_subscribe(3, base, on_event, &g);
	pthread_create(&t, NULL, publisher, NULL);
	pthread_join(t, NULL);
	while (g.count < 100 && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	CHECK(g.count == 100 && g.last_mailbox == 99);
	int all = 1;
	for (int i = 0; i < 70; i++) {
		all &= gs[i].count == 100;
		notify_unsubscribe(&subs[i]);
	}
	CHECK(all);
	notify_unsubscribe(&s);
	event_base_free(base);
}

int main(void)
{
	evthread_use_pthreads();
	RUN(test_routing);
	RUN(test_cross_thread);
	return unit_summary("notify");
}
