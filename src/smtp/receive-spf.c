/* SPF on the MX port (see receive-spf.h).
 *
 * The check runs at end of data, when the whole transaction is known and
 * the session already waits for the data hook's answer (the engine holds
 * a reference on it until smtp_session_data_done()), so nothing else of
 * the session can change meanwhile.  One evaluation per message: the MAIL
 * FROM identity, or for the null reverse-path the HELO identity (RFC 7208
 * 2.4: postmaster@HELO).  The result is recorded, never acted on, except
 * temperror, which defers the message (451 4.4.3, RFC 7208 8.6 leaves the
 * choice to the receiver; a retry is safer than a wrong verdict).  A fail
 * is left to DMARC and local policy, as RFC 7489 10.1 recommends.
 * A check ends with temperror after RECEIVE_SPF_TIME_LIMIT seconds in all
 * (RFC 7208 4.6.4), however quickly each lookup answers.
 * Invariants: each loop uses only its own resolver (the registry maps an
 * event_base to its adapter and is written before the loops start);
 * exactly one of deliver() and smtp_session_data_done() ends each check.
 * RFC 7208 (SPF), RFC 8601 2.7.2 and 5 (the spf method, smtp.mailfrom /
 * smtp.helo, where the field goes, removal of forged fields). */
#include "smtp/receive-spf.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "mail/address.h"
#include "mailauth/auth-results.h"
#include "mailauth/spf-dns.h"
#include "mailauth/spf.h"
#include "smtp/parse.h"

/* seconds for a whole check (RFC 7208 4.6.4: at least 20) */
#define RECEIVE_SPF_TIME_LIMIT 20

struct registration {
	struct event_base *base;
	struct spf_dns_adapter *a;
};

static struct registration *registry;
static size_t registry_count;

void receive_spf_register(struct event_base *base, struct spf_dns_adapter *a)
{
	registry = xrealloc(registry, (registry_count + 1) * sizeof(*registry));
	registry[registry_count++] = (struct registration){ base, a };
}

void receive_spf_unregister_all(void)
{
	free(registry);
	registry = NULL;
	registry_count = 0;
}

static struct spf_dns_adapter *adapter_of(struct event_base *base)
{
	for (size_t i = 0; i < registry_count; i++) {
		if (registry[i].base == base)
			return registry[i].a;
	}
	return NULL;
}

bool receive_spf_wanted(struct smtp_session *s)
{
	const struct smtp_listener *l = smtp_session_listener(s);

	return l->role == SMTP_ROLE_MX && l->cfg->mailauth.spf && smtp_session_user_id(s) == 0;
}

struct spf_wait {
	struct smtp_session *s;
	struct buf msg;
	receive_spf_deliver_fn *deliver;
	char *sender;           /* the MAIL FROM address, "" for the null path */
	bool helo_identity;
	struct spf_eval *ev;    /* in flight, or NULL */
	struct event *deadline; /* the overall time limit */
	bool in_check;          /* inside spf_check(): the caller frees */
	bool finished;
};

static void spf_defer(struct spf_wait *w, const char *why)
{
	struct smtp_reply reply = { 0 };

	smtp_reply_set(&reply, 451, "4.4.3", "SPF check failed temporarily (%s), try again later",
		       why);
	smtp_session_data_done(w->s, &reply);
}

static void spf_wait_free(struct spf_wait *w)
{
	if (w->deadline != NULL)
		event_free(w->deadline);
	buf_free(&w->msg);
	free(w->sender);
	free(w);
}

/* Record the outcome and end the data hook: deliver() or a reply. */
static void spf_finish(struct spf_wait *w, const struct spf_outcome *o)
{
	struct smtp_session *s = w->s;
	const struct config *cfg = smtp_session_listener(s)->cfg;
	const char *helo = smtp_session_helo(s);
	struct buf resinfo, out;
	const char *error = NULL;
	unsigned removed = 0;

	log_info("smtp", "sid=%s id=%s event=spf ip=%s identity=%s from=%s helo=%s result=%s "
		 "reason=%s", smtp_session_id(s), smtp_session_msgid(s), smtp_session_ip(s),
		 w->helo_identity ? "helo" : "mailfrom", log_quote(w->sender),
		 log_quote(helo != NULL ? helo : ""), spf_result_name(o->result),
		 log_quote(o->reason != NULL ? o->reason : ""));
	if (o->result == SPF_RESULT_TEMPERROR) {
		spf_defer(w, "DNS");
		return;
	}
	buf_init(&resinfo, 4096);
	buf_printf(&resinfo, "spf=%s ", spf_result_name(o->result));
	if (w->helo_identity) {
		buf_append_str(&resinfo, "smtp.helo=");
		auth_results_append_pvalue(&resinfo, helo != NULL ? helo : "");
	} else {
		buf_append_str(&resinfo, "smtp.mailfrom=");
		auth_results_append_pvalue(&resinfo, w->sender);
	}
	/* room for our field on top of the message limit */
	buf_init(&out, w->msg.max > SIZE_MAX - 8192 ? w->msg.max : w->msg.max + 8192);
	if (auth_results_rewrite(w->msg.data != NULL ? w->msg.data : "", w->msg.len, 1,
				 cfg->hostname, buf_cstr(&resinfo), &out, &removed, &error) < 0) {
		struct smtp_reply reply = { 0 };
		smtp_reply_set(&reply, 552, "5.3.4", "Message size exceeds fixed limit");
		smtp_session_data_done(s, &reply);
	} else {
		if (removed > 0)
			log_info("smtp", "sid=%s id=%s event=auth_results_removed count=%u",
				 smtp_session_id(s), smtp_session_msgid(s), removed);
		w->deliver(s, &out);
	}
	buf_free(&out);
	buf_free(&resinfo);
}

static void on_spf_done(void *ctx, const struct spf_outcome *o)
{
	struct spf_wait *w = ctx;

	w->ev = NULL;           /* the handle is invalid from here on */
	spf_finish(w, o);
	if (w->in_check)
		w->finished = true;
	else
		spf_wait_free(w);
}

/* RFC 7208 4.6.4: an overall limit (at least 20 s) whose end is a
 * temperror; each lookup is also bounded by dns.timeout. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct spf_wait *w = arg;
	struct spf_outcome o = { .result = SPF_RESULT_TEMPERROR,
				 .reason = "the SPF check took too long" };

	(void)fd;
	(void)what;
	spf_cancel(&w->ev);
	spf_finish(w, &o);
	spf_wait_free(w);
}

void receive_spf_check(struct smtp_session *s, const struct buf *message,
		       receive_spf_deliver_fn *deliver)
{
	const struct config *cfg = smtp_session_listener(s)->cfg;
	const struct smtp_mail_params *m = smtp_session_mail(s);
	struct spf_dns_adapter *a = adapter_of(smtp_session_base(s));
	struct spf_wait *w = xcalloc(1, sizeof(*w));
	struct spf_request req = { 0 };

	w->s = s;
	w->deliver = deliver;
	w->sender = m->from.local != NULL ? address_format(&m->from) : xstrdup("");
	w->helo_identity = w->sender[0] == '\0';
	buf_init(&w->msg, message->max);
	buf_append(&w->msg, message->data != NULL ? message->data : "", message->len);
	if (a == NULL) {
		/* the loop's resolver could not start (see the worker's log) */
		log_error("smtp", "sid=%s id=%s event=spf_unavailable error=%s", smtp_session_id(s),
			  smtp_session_msgid(s), "no resolver on this loop");
		spf_defer(w, "no resolver");
		spf_wait_free(w);
		return;
	}
	if (spf_ip_parse(smtp_session_ip(s), &req.ip) < 0) {
		/* not an IP client (cannot happen on a TCP listener): nothing to check */
		struct spf_outcome o = { .result = SPF_RESULT_NONE, .reason = "no client IP" };
		spf_finish(w, &o);
		spf_wait_free(w);
		return;
	}
	req.sender = w->sender;
	req.helo = smtp_session_helo(s) != NULL ? smtp_session_helo(s) : "";
	req.receiver = cfg->hostname;
	req.now = clock_now();
	/* the outcome comes through on_spf_done(), now or from the loop */
	w->in_check = true;
	w->ev = spf_check(&req, spf_dns_adapter_dns(a), on_spf_done, w);
	w->in_check = false;
	if (w->finished) {
		spf_wait_free(w);
		return;
	}
	struct timeval limit = { RECEIVE_SPF_TIME_LIMIT, 0 };
	w->deadline = evtimer_new(smtp_session_base(s), on_deadline, w);
	if (w->deadline == NULL)
		panic("smtp: cannot create the SPF deadline");
	evtimer_add(w->deadline, &limit);
}
