/* What the daily report senders share (TLS reports, queue/tlsrpt.h, and
 * DMARC aggregate reports, queue/dmarcrep.h): queueing a report mail, and
 * the once-a-day run in the server. */
#ifndef TERN_QUEUE_REPORT_H
#define TERN_QUEUE_REPORT_H

#include "lib/buf.h"

#include <stdbool.h>

struct event_base;
struct store;

/* Queue the complete message msg (CRLF line ends) to the address to with
 * the null envelope sender (a report that cannot be delivered never
 * bounces into a loop): delivered to the mailbox when to is one of our
 * users, else through the outbound queue, which the caller kicks.  Waits
 * for the commit.  0, or -1 with *error_r. */
int report_mail_deliver(struct store *store, const char *to, const struct buf *msg,
			const char **error_r);

struct report_daily;

/* Run run(ctx) on a thread of its own once per UTC day, the first time
 * the clock (lib/clock) shows hour or later on a day not yet done; a
 * timer on base looks every few minutes (and once soon after start).
 * When run returns > 0 (mails were queued), kick(kick_ctx) is called from
 * that thread. */
struct report_daily *report_daily_start(struct event_base *base, unsigned hour,
					int (*run)(void *ctx), void *ctx,
					void (*kick)(void *ctx), void *kick_ctx);
/* Stop the timer and wait for a run in progress; *d = NULL. */
void report_daily_stop(struct report_daily **d);

#endif
