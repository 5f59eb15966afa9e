/* Email authentication on the MX port: SPF and DKIM checks of an inbound
 * message at end of data, run side by side, and their one
 * Authentication-Results field (docs/spf.md, docs/dkim.md). */
#ifndef TERN_SMTP_RECEIVE_MAILAUTH_H
#define TERN_SMTP_RECEIVE_MAILAUTH_H

#include <stdbool.h>

#include "smtp/server.h"

struct event_base;
struct spf_dns_adapter;
struct dkim_dns_adapter;

/* Make spf and dkim the DNS of the event loop base (one resolver per
 * loop).  Call for every loop before any of them runs; later the registry
 * is only read.  A NULL adapter records that the loop has no resolver:
 * SPF checks then defer (451), DKIM signatures give temperror. */
void receive_mailauth_register(struct event_base *base, struct spf_dns_adapter *spf,
			       struct dkim_dns_adapter *dkim);
/* Forget every registration (the worker, after its loops ended). */
void receive_mailauth_unregister_all(void);

/* Should this transaction be checked: the MX role, mailauth.spf or
 * mailauth.dkim on, and no authenticated user (submission mail is never
 * checked). */
bool receive_mailauth_wanted(struct smtp_session *s);

/* Continue the data hook with the message to store. */
typedef void receive_mailauth_deliver_fn(struct smtp_session *s, const struct buf *message);

/* On the session's loop, without blocking it, and in parallel: check SPF
 * for the client IP, MAIL FROM (postmaster@HELO for the null sender) and
 * HELO (mailauth.spf), and verify every DKIM-Signature of message, up to
 * DKIM_MAX_SIGNATURES (mailauth.dkim).  When both are done: an SPF
 * temperror -> smtp_session_data_done() with 451 4.4.3 (the client
 * retries: a DNS failure never becomes a pass or a fail); otherwise
 * deliver() with message rewritten: one Authentication-Results field
 * (authserv-id = the hostname) holding the spf clause and one dkim clause
 * per signature ("dkim=none" when unsigned; a DKIM temperror is recorded,
 * not deferred) just below our Received field, and every field of the
 * incoming header claiming our authserv-id removed (RFC 8601 5).  message
 * (our Received field first) is copied; deliver may run before this
 * returns. */
void receive_mailauth_check(struct smtp_session *s, const struct buf *message,
			    receive_mailauth_deliver_fn *deliver);

#endif
