/* The notification hub: events that cross sessions — new mail for an IDLE
 * client, flags changed or messages expunged by another session — go from
 * whoever committed them (the store's commit thread) to every session of
 * that user, on the session's own event loop.
 *
 * In-process only: one worker process serves all sessions.  Cluster mode
 * will relay the same events through PostgreSQL LISTEN/NOTIFY.
 * Thread-safe: publish from any thread; subscribe and unsubscribe on the
 * subscriber's loop thread.  Callbacks run on the subscriber's loop, never
 * after notify_unsubscribe() has returned. */
#ifndef TERN_LIB_NOTIFY_H
#define TERN_LIB_NOTIFY_H

#include <stdint.h>

struct event_base;
struct notify_sub;

enum notify_kind {
	NOTIFY_MESSAGE_NEW = 1 << 0,      /* messages appended to mailbox_id */
	NOTIFY_MESSAGE_EXPUNGE = 1 << 1,  /* messages removed from mailbox_id */
	NOTIFY_FLAGS = 1 << 2,            /* flags changed in mailbox_id */
	NOTIFY_MAILBOX = 1 << 3,          /* mailbox created, renamed or deleted */
	NOTIFY_SUBSCRIPTION = 1 << 4,     /* subscriptions changed (mailbox_id 0) */
};

struct notify_event {
	int64_t user_id;
	int64_t mailbox_id;
	unsigned kinds;                   /* enum notify_kind bits */
	uint64_t modseq;                  /* the mailbox's HIGHESTMODSEQ after the change */
};

typedef void notify_cb(void *ctx, const struct notify_event *ev);

/* Receive user_id's events on base.  Never fails (aborts on OOM). */
struct notify_sub *notify_subscribe(int64_t user_id, struct event_base *base, notify_cb *cb,
				    void *ctx);
/* Stop receiving; events already queued for this subscriber are dropped.
 * Sets *sub to NULL.  Call on the subscriber's loop thread. */
void notify_unsubscribe(struct notify_sub **sub);
/* Deliver ev to every subscriber of ev->user_id (asynchronously). */
void notify_publish(const struct notify_event *ev);
/* Number of live subscriptions (tests, metrics). */
unsigned notify_subscriber_count(void);

#endif
