/* Email authentication on the MX port: SPF and DKIM checks of an inbound
 * message at end of data, run side by side, then DMARC over their
 * results, their one Authentication-Results field and the DMARC
 * disposition (docs/spf.md, docs/dkim.md, docs/dmarc.md). */
#ifndef TERN_SMTP_RECEIVE_MAILAUTH_H
#define TERN_SMTP_RECEIVE_MAILAUTH_H

#include <stdbool.h>

#include "smtp/server.h"

struct event_base;
struct spf_dns_adapter;
struct dkim_dns_adapter;

/* Make spf and dkim the DNS of the event loop base (one resolver per
 * loop); DMARC asks through spf.  The first call also loads the Public
 * Suffix List.  Call for every loop before any of them runs; later the
 * registry is only read.  A NULL adapter records that the loop has no
 * resolver: SPF checks then defer (451), DKIM signatures give temperror. */
void receive_mailauth_register(struct event_base *base, struct spf_dns_adapter *spf,
			       struct dkim_dns_adapter *dkim);
/* Forget every registration and free what register made (the worker,
 * after its loops ended, before it frees the adapters). */
void receive_mailauth_unregister_all(void);

/* Should this transaction be checked: the MX role, mailauth.spf or
 * mailauth.dkim on, and no authenticated user (submission mail is never
 * checked). */
bool receive_mailauth_wanted(struct smtp_session *s);

/* Continue the data hook with the message to store; mailbox is the one
 * for every local recipient's copy: NULL for INBOX, "Junk" when DMARC
 * quarantines the message. */
typedef void receive_mailauth_deliver_fn(struct smtp_session *s, const struct buf *message,
					 const char *mailbox);

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
 * incoming header claiming our authserv-id removed (RFC 8601 5).
 * With mailauth.dmarc (and both checks on), DMARC is evaluated next for
 * every From domain and one dmarc clause per domain added to the field
 * (mailauth/dmarc-author.h gives its form); its disposition, after
 * mailauth.dmarc_overrides and unless mailauth.dmarc_enforce is off:
 * reject -> 550 5.7.1, a temperror -> 451 4.4.3, quarantine -> deliver()
 * with mailbox "Junk".  message (our Received field first) is copied;
 * deliver may run before this returns. */
void receive_mailauth_check(struct smtp_session *s, const struct buf *message,
			    receive_mailauth_deliver_fn *deliver);

#endif
