/* SPF and DKIM on the MX port (see receive-mailauth.h).
 *
 * The checks run at end of data, when the whole transaction is known and
 * the session already waits for the data hook's answer (the engine holds
 * a reference on it until smtp_session_data_done()), so nothing else of
 * the session can change meanwhile.  Both start at once and run in
 * parallel on the loop's resolver; the session has one waiting point,
 * the moment both are done (or the overall deadline passes).  The message
 * is parsed once for DKIM (its verifier hashes the body as it is fed the
 * bytes already in memory) and once more when the field is inserted.
 *
 * SPF: one evaluation per message, the MAIL FROM identity, or for the
 * null reverse-path the HELO identity (RFC 7208 2.4: postmaster@HELO).
 * The result is recorded, never acted on, except temperror, which defers
 * the message (451 4.4.3, RFC 7208 8.6 leaves the choice to the receiver;
 * a retry is safer than a wrong verdict).  A fail is left to DMARC and
 * local policy, as RFC 7489 10.1 recommends.
 * DKIM: every signature (the library checks at most DKIM_MAX_SIGNATURES)
 * gets its own result, recorded, never acted on: a temperror too (RFC
 * 6376 6.1: a TEMPFAIL is a result; an unverifiable signature leaves the
 * message no worse than an unsigned one, which is accepted).
 * Both end with temperror after RECEIVE_MAILAUTH_TIME_LIMIT seconds in all
 * (RFC 7208 4.6.4), however quickly each lookup answers.
 * Invariants: each loop uses only its own resolver (the registry maps an
 * event_base to its adapters and is written before the loops start);
 * exactly one of deliver() and smtp_session_data_done() ends each check;
 * callbacks that run while the checks are being started only record.
 * RFC 7208 (SPF), RFC 6376 (DKIM), RFC 8601 2.2, 2.7.1, 2.7.2 and 5 (one
 * field, resinfo clauses separated by ';', where it goes, removal of
 * forged fields). */
#include "smtp/receive-mailauth.h"

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
#include "mailauth/dkim-dns.h"
#include "mailauth/dkim.h"
#include "mailauth/spf-dns.h"
#include "mailauth/spf.h"
#include "smtp/parse.h"

/* seconds for the whole check (RFC 7208 4.6.4: at least 20) */
#define RECEIVE_MAILAUTH_TIME_LIMIT 20

struct registration {
	struct event_base *base;
	struct spf_dns_adapter *spf;
	struct dkim_dns_adapter *dkim;
};

static struct registration *registry;
static size_t registry_count;

void receive_mailauth_register(struct event_base *base, struct spf_dns_adapter *spf,
			       struct dkim_dns_adapter *dkim)
{
	registry = xrealloc(registry, (registry_count + 1) * sizeof(*registry));
	registry[registry_count++] = (struct registration){ base, spf, dkim };
}

void receive_mailauth_unregister_all(void)
{
	free(registry);
	registry = NULL;
	registry_count = 0;
}

static const struct registration *registration_of(struct event_base *base)
{
	for (size_t i = 0; i < registry_count; i++) {
		if (registry[i].base == base)
			return &registry[i];
	}
	return NULL;
}

bool receive_mailauth_wanted(struct smtp_session *s)
{
	const struct smtp_listener *l = smtp_session_listener(s);

	return l->role == SMTP_ROLE_MX && (l->cfg->mailauth.spf || l->cfg->mailauth.dkim) &&
	       smtp_session_user_id(s) == 0;
}

struct mailauth_wait {
	struct smtp_session *s;
	struct buf msg;
	receive_mailauth_deliver_fn *deliver;
	struct event *deadline; /* the overall time limit */
	bool starting;          /* inside receive_mailauth_check(): it finishes */
	/* SPF */
	bool spf_on, spf_pending;
	char *sender;           /* the MAIL FROM address, "" for the null path */
	bool helo_identity;
	struct spf_eval *ev;    /* in flight, or NULL */
	enum spf_result spf_result;
	/* DKIM */
	bool dkim_on, dkim_pending;
	struct dkim_verify *dkim;
	struct dkim_outcome dkim_outcome;  /* a copy; results owned by dkim
					      (the callback's struct is its own) */
	bool dkim_timed_out;
};

static void mailauth_wait_free(struct mailauth_wait *w)
{
	if (w->deadline != NULL)
		event_free(w->deadline);
	dkim_verify_destroy(&w->dkim);
	buf_free(&w->msg);
	free(w->sender);
	free(w);
}

/* A DNS for a loop without a resolver: every key lookup fails at once. */
static void no_dns_txt(void *ctx, const char *name, dkim_dns_cb *cb, void *qctx)
{
	struct dkim_dns_answer ans = { .status = DKIM_DNS_TEMPFAIL };

	(void)ctx;
	(void)name;
	cb(qctx, &ans);
}

static const struct dkim_dns no_dns = { .txt = no_dns_txt };

static void spf_record(struct mailauth_wait *w, enum spf_result result, const char *reason)
{
	struct smtp_session *s = w->s;
	const char *helo = smtp_session_helo(s);

	w->spf_result = result;
	w->spf_pending = false;
	log_info("smtp", "sid=%s id=%s event=spf ip=%s identity=%s from=%s helo=%s result=%s "
		 "reason=%s", smtp_session_id(s), smtp_session_msgid(s), smtp_session_ip(s),
		 w->helo_identity ? "helo" : "mailfrom", log_quote(w->sender),
		 log_quote(helo != NULL ? helo : ""), spf_result_name(result),
		 log_quote(reason != NULL ? reason : ""));
}

static void dkim_log(struct mailauth_wait *w)
{
	struct smtp_session *s = w->s;
	const struct dkim_outcome *o = &w->dkim_outcome;

	if (w->dkim_timed_out) {
		log_info("smtp", "sid=%s id=%s event=dkim result=temperror reason=%s",
			 smtp_session_id(s), smtp_session_msgid(s),
			 log_quote("the DKIM check took too long"));
		return;
	}
	if (o->count == 0) {
		log_info("smtp", "sid=%s id=%s event=dkim result=none", smtp_session_id(s),
			 smtp_session_msgid(s));
		return;
	}
	for (size_t i = 0; i < o->count; i++) {
		const struct dkim_sig_result *r = &o->results[i];
		log_info("smtp", "sid=%s id=%s event=dkim d=%s s=%s a=%s result=%s reason=%s",
			 smtp_session_id(s), smtp_session_msgid(s), log_quote(r->domain),
			 log_quote(r->selector), log_quote(r->alg), dkim_result_name(r->result),
			 log_quote(r->reason != NULL ? r->reason : ""));
	}
	if (o->ignored > 0)
		log_info("smtp", "sid=%s id=%s event=dkim_ignored count=%zu", smtp_session_id(s),
			 smtp_session_msgid(s), o->ignored);
}

/* The resinfo clauses of the field, separated by ";" and folded. */
static int build_resinfo(struct mailauth_wait *w, struct buf *out)
{
	const char *helo = smtp_session_helo(w->s);
	int e = 0;

	if (w->spf_on) {
		e |= auth_results_append_separator(out);
		e |= buf_printf(out, "spf=%s ", spf_result_name(w->spf_result));
		if (w->helo_identity) {
			e |= buf_append_str(out, "smtp.helo=");
			e |= auth_results_append_pvalue(out, helo != NULL ? helo : "");
		} else {
			e |= buf_append_str(out, "smtp.mailfrom=");
			e |= auth_results_append_pvalue(out, w->sender);
		}
	}
	if (w->dkim_on) {
		const struct dkim_outcome *o = &w->dkim_outcome;
		if (w->dkim_timed_out) {
			e |= auth_results_append_separator(out);
			e |= buf_append_str(out, "dkim=temperror (the DKIM check took too long)");
		} else if (o->count == 0) {
			e |= auth_results_append_separator(out);
			e |= buf_append_str(out, "dkim=none");
		}
		for (size_t i = 0; !w->dkim_timed_out && i < o->count; i++) {
			e |= auth_results_append_separator(out);
			e |= dkim_result_format(&o->results[i], out);
		}
	}
	return e != 0 ? -1 : 0;
}

/* Both checks are done: end the data hook with deliver() or a reply. */
static void mailauth_finish(struct mailauth_wait *w)
{
	struct smtp_session *s = w->s;
	const struct config *cfg = smtp_session_listener(s)->cfg;
	struct smtp_reply reply = { 0 };
	struct buf resinfo, out;
	const char *error = NULL;
	unsigned removed = 0;

	if (w->dkim_on)
		dkim_log(w);
	if (w->spf_on && w->spf_result == SPF_RESULT_TEMPERROR) {
		smtp_reply_set(&reply, 451, "4.4.3",
			       "SPF check failed temporarily (DNS), try again later");
		smtp_session_data_done(s, &reply);
		return;
	}
	/* at most 10 clauses of a few hundred bytes each */
	buf_init(&resinfo, 64 * 1024);
	/* room for our field on top of the message limit */
	buf_init(&out, w->msg.max > SIZE_MAX - 80 * 1024 ? w->msg.max : w->msg.max + 80 * 1024);
	if (build_resinfo(w, &resinfo) < 0 ||
	    auth_results_rewrite(w->msg.data != NULL ? w->msg.data : "", w->msg.len, 1,
				 cfg->hostname, buf_cstr(&resinfo), &out, &removed, &error) < 0) {
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

/* Finish and free w once nothing is pending (never while starting). */
static void mailauth_maybe_finish(struct mailauth_wait *w)
{
	if (w->starting || w->spf_pending || w->dkim_pending)
		return;
	mailauth_finish(w);
	mailauth_wait_free(w);
}

static void on_spf_done(void *ctx, const struct spf_outcome *o)
{
	struct mailauth_wait *w = ctx;

	w->ev = NULL;           /* the handle is invalid from here on */
	spf_record(w, o->result, o->reason);
	mailauth_maybe_finish(w);
}

static void on_dkim_done(void *ctx, const struct dkim_outcome *o)
{
	struct mailauth_wait *w = ctx;

	w->dkim_outcome = *o;
	w->dkim_pending = false;
	mailauth_maybe_finish(w);
}

/* RFC 7208 4.6.4: an overall limit (at least 20 s) whose end is a
 * temperror; each lookup is also bounded by dns.timeout. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct mailauth_wait *w = arg;

	(void)fd;
	(void)what;
	if (w->spf_pending) {
		spf_cancel(&w->ev);
		spf_record(w, SPF_RESULT_TEMPERROR, "the SPF check took too long");
	}
	if (w->dkim_pending) {
		dkim_verify_destroy(&w->dkim);  /* cancels its lookups */
		w->dkim_pending = false;
		w->dkim_timed_out = true;
	}
	mailauth_maybe_finish(w);
}

static void spf_start(struct mailauth_wait *w, const struct registration *reg)
{
	struct smtp_session *s = w->s;
	const struct config *cfg = smtp_session_listener(s)->cfg;
	struct spf_request req = { 0 };

	if (reg == NULL || reg->spf == NULL) {
		/* the loop's resolver could not start (see the worker's log) */
		log_error("smtp", "sid=%s id=%s event=spf_unavailable error=%s", smtp_session_id(s),
			  smtp_session_msgid(s), "no resolver on this loop");
		spf_record(w, SPF_RESULT_TEMPERROR, "no resolver");
		return;
	}
	if (spf_ip_parse(smtp_session_ip(s), &req.ip) < 0) {
		/* not an IP client (cannot happen on a TCP listener): nothing to check */
		spf_record(w, SPF_RESULT_NONE, "no client IP");
		return;
	}
	req.sender = w->sender;
	req.helo = smtp_session_helo(s) != NULL ? smtp_session_helo(s) : "";
	req.receiver = cfg->hostname;
	req.now = clock_now();
	/* the outcome comes through on_spf_done(), now or from the loop */
	w->ev = spf_check(&req, spf_dns_adapter_dns(reg->spf), on_spf_done, w);
}

static void dkim_start(struct mailauth_wait *w, const struct registration *reg)
{
	const struct dkim_dns *dns = reg != NULL && reg->dkim != NULL
		? dkim_dns_adapter_dns(reg->dkim) : &no_dns;

	w->dkim = dkim_verify_create(NULL);
	/* our Received field is first: never signed, so harmless to hash */
	dkim_verify_feed(w->dkim, w->msg.data != NULL ? w->msg.data : "", w->msg.len);
	/* the outcome comes through on_dkim_done(), now or from the loop */
	dkim_verify_finish(w->dkim, dns, on_dkim_done, w);
}

void receive_mailauth_check(struct smtp_session *s, const struct buf *message,
			    receive_mailauth_deliver_fn *deliver)
{
	const struct config *cfg = smtp_session_listener(s)->cfg;
	const struct smtp_mail_params *m = smtp_session_mail(s);
	const struct registration *reg = registration_of(smtp_session_base(s));
	struct mailauth_wait *w = xcalloc(1, sizeof(*w));

	w->s = s;
	w->deliver = deliver;
	w->sender = m->from.local != NULL ? address_format(&m->from) : xstrdup("");
	w->helo_identity = w->sender[0] == '\0';
	w->spf_on = cfg->mailauth.spf;
	w->dkim_on = cfg->mailauth.dkim;
	w->spf_pending = w->spf_on;
	w->dkim_pending = w->dkim_on;
	buf_init(&w->msg, message->max);
	buf_append(&w->msg, message->data != NULL ? message->data : "", message->len);
	w->starting = true;
	if (w->spf_on)
		spf_start(w, reg);
	if (w->dkim_on)
		dkim_start(w, reg);
	w->starting = false;
	if (!w->spf_pending && !w->dkim_pending) {
		mailauth_maybe_finish(w);
		return;
	}
	struct timeval limit = { RECEIVE_MAILAUTH_TIME_LIMIT, 0 };
	w->deadline = evtimer_new(smtp_session_base(s), on_deadline, w);
	if (w->deadline == NULL)
		panic("smtp: cannot create the mailauth deadline");
	evtimer_add(w->deadline, &limit);
}
