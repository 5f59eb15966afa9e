/* SPF on the MX port: the check of an inbound message at end of data and
 * its Authentication-Results field (docs/spf.md). */
#ifndef TERN_SMTP_RECEIVE_SPF_H
#define TERN_SMTP_RECEIVE_SPF_H

#include <stdbool.h>

#include "smtp/server.h"

struct event_base;
struct spf_dns_adapter;

/* Make a the SPF DNS of the event loop base (one resolver per loop).  Call
 * for every loop before any of them runs; later the registry is only read.
 * A NULL a records that the loop has no resolver (checks then defer). */
void receive_spf_register(struct event_base *base, struct spf_dns_adapter *a);
/* Forget every registration (the worker, after its loops ended). */
void receive_spf_unregister_all(void);

/* Should this transaction be checked: the MX role, mailauth.spf on, and
 * no authenticated user (submission mail is never checked). */
bool receive_spf_wanted(struct smtp_session *s);

/* Continue the data hook with the message to store. */
typedef void receive_spf_deliver_fn(struct smtp_session *s, const struct buf *message);

/* Check SPF for the client IP, MAIL FROM (postmaster@HELO for the null
 * sender) and HELO, on the session's loop without blocking it.  Then:
 * temperror -> smtp_session_data_done() with 451 4.4.3 (the client
 * retries: a DNS failure never becomes a pass or a fail); any other result
 * -> deliver() with message rewritten: an Authentication-Results field
 * (authserv-id = the hostname) just below our Received field, and every
 * field of the incoming header claiming our authserv-id removed (RFC 8601
 * 5).  message is copied; deliver may run before this returns. */
void receive_spf_check(struct smtp_session *s, const struct buf *message,
		       receive_spf_deliver_fn *deliver);

#endif
