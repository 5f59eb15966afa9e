/* SPF, DKIM and DMARC on the MX port (see receive-mailauth.h).
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
 * DMARC: once both are done (it needs their results), one policy discovery
 * per Author Domain (mailauth/dmarc-author.h; RFC 7489 6.6.1: several
 * domains are each evaluated and the strictest disposition applied), in
 * parallel on the same resolver, in the same waiting point.  It runs only
 * when SPF and DKIM both ran (with one of them off, mail that passes could
 * fail DMARC).  The disposition: reject -> 550 5.7.1; quarantine -> every
 * local copy into Junk; a temperror -> 451 4.4.3, as for SPF (RFC 7489
 * 6.6.3 keeps a DNS failure apart from "no policy"; a retry is safer than
 * a wrong verdict); a DMARC fail is also a temperror when a DKIM signature
 * that could have aligned gave temperror.  mailauth.dmarc_overrides
 * replaces the disposition of failing mail per domain; with
 * mailauth.dmarc_enforce off nothing is applied, only recorded.
 * ARC (RFC 8617 5.2): the chain is verified beside SPF and DKIM (same
 * resolver, same waiting point) and recorded as arc=pass|fail|none; when
 * DMARC fails for an Author Domain, the chain passes and the d= of its
 * newest ARC-Seal is in mailauth.arc_trusted_sealers, the owner's reject
 * or quarantine is not applied (RFC 7489 6.7 "local policy override",
 * RFC 8617 7.2); an administrator's dmarc_overrides entry for the domain
 * still wins.  The ARC check taking too long gives arc=fail (no override).
 * All end with temperror after RECEIVE_MAILAUTH_TIME_LIMIT seconds in all
 * (RFC 7208 4.6.4), however quickly each lookup answers.
 * Invariants: each loop uses only its own resolver (the registry maps an
 * event_base to its adapters and is written before the loops start);
 * exactly one of deliver() and smtp_session_data_done() ends each check;
 * callbacks that run while the checks are being started only record.
 * RFC 7208 (SPF), RFC 6376 (DKIM), RFC 7489 6.6 and 6.7 (DMARC), RFC 8601 2.2, 2.7.1, 2.7.2 and 5 (one
 * field, resinfo clauses separated by ';', where it goes, removal of
 * forged fields). */
#include "smtp/receive-mailauth.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "mail/address.h"
#include "mailauth/arc.h"
#include "mailauth/auth-results.h"
#include "mailauth/dkim-dns.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc-author.h"
#include "mailauth/dmarc.h"
#include "mailauth/spf-dns.h"
#include "mailauth/spf.h"
#include "smtp/parse.h"
#include "store/dmarc.h"

/* seconds for the whole check (RFC 7208 4.6.4: at least 20) */
#define RECEIVE_MAILAUTH_TIME_LIMIT 20

struct registration {
	struct event_base *base;
	struct spf_dns_adapter *spf;
	struct dkim_dns_adapter *dkim;
	struct dmarc_spf_dns *dmarc;   /* over spf, made here */
};

static struct registration *registry;
static size_t registry_count;
/* the Public Suffix List, loaded once at the first registration and only
 * read afterwards (from every loop); NULL when it could not be loaded */
static struct dmarc_psl *psl;
static bool psl_tried;

void receive_mailauth_register(struct event_base *base, struct spf_dns_adapter *spf,
			       struct dkim_dns_adapter *dkim)
{
	struct dmarc_spf_dns *dmarc = NULL;

	if (!psl_tried) {
		const char *error = NULL;
		psl_tried = true;
		psl = dmarc_psl_open(NULL, &error);
		if (psl == NULL)
			log_error("smtp", "event=dmarc_unavailable error=%s", log_quote(error));
	}
	if (spf != NULL)
		dmarc = dmarc_spf_dns_new(spf_dns_adapter_dns(spf));
	registry = xrealloc(registry, (registry_count + 1) * sizeof(*registry));
	registry[registry_count++] = (struct registration){ base, spf, dkim, dmarc };
}

void receive_mailauth_unregister_all(void)
{
	for (size_t i = 0; i < registry_count; i++)
		dmarc_spf_dns_free(&registry[i].dmarc);
	free(registry);
	registry = NULL;
	registry_count = 0;
	dmarc_psl_free(&psl);
	psl_tried = false;
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

struct mailauth_wait;

/* One Author Domain's DMARC evaluation and what was decided for it. */
struct dmarc_author_state {
	struct mailauth_wait *w;
	const char *domain;                /* w->authors.domain[i] */
	struct dmarc_eval *ev;             /* in flight, or NULL */
	bool pending;
	enum dmarc_result result;
	const char *reason;                /* static text */
	bool have_policy;
	enum dmarc_policy p, sp, policy;   /* the record's p and sp, the one used */
	enum dmarc_disposition asked;      /* by the domain owner (pct applied) */
	enum dmarc_disposition applied;    /* after overrides and enforcement */
	bool defer;                        /* temperror acted on: 451 */
	const char *override;              /* the override's action, or NULL */
	const char *arc_sealer;            /* the trusted ARC sealer that lifted
					      the disposition, or NULL */
	char *policy_domain;
	/* for aggregate reports (store/dmarc.h), when the record had a rua */
	bool spf_aligned, dkim_aligned;
	char *report_policy;               /* "adkim aspf p sp pct" */
	char *report_rua;                  /* the rua URIs, "!size" kept */
};

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
	/* ARC */
	bool arc_on, arc_pending;
	struct arc_verify *arc;
	enum arc_result arc_result;
	unsigned arc_oldest_pass;
	char *arc_sealer, *arc_reason;     /* copies */
	/* DMARC */
	bool dmarc_on, dmarc_started;
	bool expired;           /* the overall deadline has passed */
	const struct registration *reg;
	struct dmarc_authors authors;
	struct dmarc_author_state *dm;   /* authors.count of them */
	size_t dmarc_pending;
};

static void mailauth_wait_free(struct mailauth_wait *w)
{
	if (w->deadline != NULL)
		event_free(w->deadline);
	for (size_t i = 0; w->dm != NULL && i < w->authors.count; i++) {
		dmarc_cancel(&w->dm[i].ev);
		free(w->dm[i].policy_domain);
		free(w->dm[i].report_policy);
		free(w->dm[i].report_rua);
	}
	free(w->dm);
	dmarc_authors_clear(&w->authors);
	dkim_verify_destroy(&w->dkim);
	arc_verify_destroy(&w->arc);
	free(w->arc_sealer);
	free(w->arc_reason);
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
	/* arc=none is left out, as most receivers do: no chain, nothing to say */
	if (w->arc_on && w->arc_result != ARC_RESULT_NONE) {
		struct arc_outcome ao = {
			.result = w->arc_result,
			.reason = w->arc_reason != NULL ? w->arc_reason : "",
			.oldest_pass = w->arc_oldest_pass,
		};
		const char *ip = smtp_session_ip(w->s);
		e |= auth_results_append_separator(out);
		e |= arc_result_format(&ao, ip, out);
	}
	if (w->dmarc_on && w->dmarc_started) {
		if (w->authors.count == 0 || w->authors.too_many) {
			struct dmarc_clause c = {
				.result = DMARC_RESULT_PERMERROR,
				.comment = w->authors.too_many ? "too many From domains"
							       : "no From domain",
			};
			e |= auth_results_append_separator(out);
			e |= dmarc_clause_format(&c, out);
		}
		for (size_t i = 0; !w->authors.too_many && i < w->authors.count; i++) {
			const struct dmarc_author_state *d = &w->dm[i];
			struct dmarc_clause c = {
				.result = d->result,
				.from_domain = d->domain,
				.have_policy = d->have_policy,
				.p = d->p,
				.sp = d->sp,
				.dis = d->applied,
				.comment = d->result == DMARC_RESULT_TEMPERROR ||
					   d->result == DMARC_RESULT_PERMERROR ? d->reason : NULL,
			};
			e |= auth_results_append_separator(out);
			e |= dmarc_clause_format(&c, out);
			if (d->arc_sealer != NULL)
				e |= buf_printf(out, " policy.dmarc=none (ARC override: trusted "
						"sealer %s)", d->arc_sealer);
		}
	}
	return e != 0 ? -1 : 0;
}

/* --- DMARC --- */

/* Could a DKIM signature that gave temperror have made DMARC pass for
 * domain?  (Relaxed alignment is the widest a record can ask.) */
static bool dkim_unknown_for(const struct mailauth_wait *w, const char *domain)
{
	const struct dkim_outcome *o = &w->dkim_outcome;

	if (w->dkim_timed_out)
		return true;
	for (size_t i = 0; i < o->count; i++) {
		const struct dkim_sig_result *r = &o->results[i];
		if (r->result == DKIM_RESULT_TEMPERROR && r->domain != NULL &&
		    dmarc_aligned(psl, r->domain, domain, DMARC_ALIGN_RELAXED))
			return true;
	}
	return false;
}

/* The administrator's override for domain: its own entry, else its
 * organisational domain's; NULL when there is none. */
static const struct config_dmarc_override *override_of(const struct config *cfg,
							const char *domain)
{
	const struct config_dmarc_override *found = NULL;
	char *org;

	for (unsigned i = 0; i < cfg->mailauth.dmarc_override_count; i++)
		if (strcasecmp(cfg->mailauth.dmarc_override[i].domain, domain) == 0)
			return &cfg->mailauth.dmarc_override[i];
	org = dmarc_org_domain(psl, domain);
	for (unsigned i = 0; found == NULL && i < cfg->mailauth.dmarc_override_count; i++)
		if (strcasecmp(cfg->mailauth.dmarc_override[i].domain, org) == 0)
			found = &cfg->mailauth.dmarc_override[i];
	free(org);
	return found;
}

static const char *const override_names[] = {
	[CONFIG_DMARC_NONE] = "none",
	[CONFIG_DMARC_QUARANTINE] = "quarantine",
	[CONFIG_DMARC_REJECT] = "reject",
};

/* Did the ARC chain pass, sealed last by a sealer the administrator trusts? */
static bool arc_trusted(const struct mailauth_wait *w, const struct config *cfg)
{
	if (!w->arc_on || w->arc_result != ARC_RESULT_PASS || w->arc_sealer == NULL)
		return false;
	for (unsigned i = 0; i < cfg->mailauth.arc_trusted_sealer_count; i++)
		if (strcasecmp(cfg->mailauth.arc_trusted_sealer[i], w->arc_sealer) == 0)
			return true;
	return false;
}

/* Decide each Author Domain's disposition: the owner's, replaced by an
 * override for failing mail, nothing at all when not enforcing; a
 * temperror defers unless overridden to none. */
static void dmarc_decide(struct mailauth_wait *w, const struct config *cfg)
{
	for (size_t i = 0; i < w->authors.count && !w->authors.too_many; i++) {
		struct dmarc_author_state *d = &w->dm[i];
		const struct config_dmarc_override *o;

		/* a fail that DNS may have caused: the owner's policy would act on it */
		if (d->result == DMARC_RESULT_FAIL && d->asked != DMARC_DISPOSITION_NONE &&
		    dkim_unknown_for(w, d->domain)) {
			d->result = DMARC_RESULT_TEMPERROR;
			d->reason = "an aligned DKIM signature could not be checked";
		}
		o = override_of(cfg, d->domain);
		d->override = o != NULL ? override_names[o->action] : NULL;
		d->applied = DMARC_DISPOSITION_NONE;
		if (d->result == DMARC_RESULT_FAIL) {
			d->applied = d->asked;
			if (o != NULL)
				d->applied = o->action == CONFIG_DMARC_REJECT ? DMARC_DISPOSITION_REJECT
					: o->action == CONFIG_DMARC_QUARANTINE
					? DMARC_DISPOSITION_QUARANTINE : DMARC_DISPOSITION_NONE;
		} else if (d->result == DMARC_RESULT_TEMPERROR) {
			d->defer = o == NULL || o->action != CONFIG_DMARC_NONE;
		}
		/* RFC 8617 7.2: a trusted intermediary vouches for the original
		 * authentication; the administrator's own override still wins */
		if (d->result == DMARC_RESULT_FAIL && o == NULL &&
		    d->applied != DMARC_DISPOSITION_NONE && arc_trusted(w, cfg)) {
			d->applied = DMARC_DISPOSITION_NONE;
			d->arc_sealer = w->arc_sealer;
		}
		if (!cfg->mailauth.dmarc_enforce) {
			d->applied = DMARC_DISPOSITION_NONE;
			d->defer = false;
		}
	}
}

static void dmarc_log(struct mailauth_wait *w, const struct config *cfg, bool quarantine)
{
	struct smtp_session *s = w->s;

	if (w->authors.count == 0 || w->authors.too_many) {
		log_info("smtp", "sid=%s id=%s event=dmarc domain= result=permerror policy=- "
			 "disposition=%s override=- enforce=%s reason=%s", smtp_session_id(s),
			 smtp_session_msgid(s), quarantine ? "quarantine" : "none",
			 cfg->mailauth.dmarc_enforce ? "yes" : "no",
			 log_quote(w->authors.too_many ? "too many From domains" : "no From domain"));
		return;
	}
	for (size_t i = 0; i < w->authors.count; i++) {
		const struct dmarc_author_state *d = &w->dm[i];
		if (d->arc_sealer != NULL)
			log_info("smtp", "sid=%s id=%s event=arc_override domain=%s sealer=%s "
				 "policy=%s", smtp_session_id(s), smtp_session_msgid(s), d->domain,
				 d->arc_sealer, d->have_policy ? dmarc_policy_name(d->policy) : "-");
		log_info("smtp", "sid=%s id=%s event=dmarc domain=%s result=%s policy=%s "
			 "disposition=%s override=%s enforce=%s policy_domain=%s reason=%s",
			 smtp_session_id(s), smtp_session_msgid(s), d->domain,
			 dmarc_result_name(d->result),
			 d->have_policy ? dmarc_policy_name(d->policy) : "-",
			 d->defer ? "defer" : dmarc_disposition_name(d->applied),
			 d->override != NULL ? d->override : "-",
			 cfg->mailauth.dmarc_enforce ? "yes" : "no",
			 d->policy_domain != NULL ? d->policy_domain : "-",
			 log_quote(d->reason != NULL ? d->reason : ""));
	}
}

static void dmarc_report_record(struct mailauth_wait *w);

/* Every check is done: end the data hook with deliver() or a reply. */
static void mailauth_finish(struct mailauth_wait *w)
{
	struct smtp_session *s = w->s;
	const struct config *cfg = smtp_session_listener(s)->cfg;
	struct smtp_reply reply = { 0 };
	struct buf resinfo, out;
	const char *error = NULL;
	const char *rejected = NULL, *deferred = NULL, *rejected_by = NULL;
	bool quarantine = false;
	unsigned removed = 0;

	if (w->dkim_on)
		dkim_log(w);
	if (w->arc_on)
		log_info("smtp", "sid=%s id=%s event=arc result=%s oldest_pass=%u sealer=%s reason=%s",
			 smtp_session_id(s), smtp_session_msgid(s), arc_result_name(w->arc_result),
			 w->arc_oldest_pass, w->arc_sealer != NULL ? w->arc_sealer : "-",
			 log_quote(w->arc_reason != NULL ? w->arc_reason : ""));
	if (w->spf_on && w->spf_result == SPF_RESULT_TEMPERROR) {
		smtp_reply_set(&reply, 451, "4.4.3",
			       "SPF check failed temporarily (DNS), try again later");
		smtp_session_data_done(s, &reply);
		return;
	}
	if (w->dmarc_on && w->dmarc_started) {
		dmarc_decide(w, cfg);
		/* RFC 7489 6.6.1: the strictest of the domains' dispositions */
		for (size_t i = 0; i < w->authors.count && !w->authors.too_many; i++) {
			const struct dmarc_author_state *d = &w->dm[i];
			if (d->applied == DMARC_DISPOSITION_REJECT && rejected == NULL) {
				rejected = d->domain;
				rejected_by = d->override;
			}
			if (d->defer && deferred == NULL)
				deferred = d->domain;
			if (d->applied == DMARC_DISPOSITION_QUARANTINE)
				quarantine = true;
		}
		/* more Author Domains than we evaluate: most such mail is abuse
		 * (DMARCbis 6.6.1 allows a negative disposition); keep it, as Junk */
		if (w->authors.too_many && cfg->mailauth.dmarc_enforce)
			quarantine = true;
		dmarc_log(w, cfg, quarantine && rejected == NULL && deferred == NULL);
		if (deferred == NULL)
			dmarc_report_record(w);
		if (rejected != NULL) {
			smtp_reply_set(&reply, 550, "5.7.1", "Message rejected: it fails DMARC "
				       "authentication for the From domain %s, %s", rejected,
				       rejected_by != NULL ? "and this server rejects such mail"
				       : "whose policy is to reject such mail");
			smtp_session_data_done(s, &reply);
			return;
		}
		if (deferred != NULL) {
			smtp_reply_set(&reply, 451, "4.4.3", "DMARC check of the From domain %s "
				       "failed temporarily (DNS), try again later", deferred);
			smtp_session_data_done(s, &reply);
			return;
		}
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
		w->deliver(s, &out, quarantine ? "Junk" : NULL);
	}
	buf_free(&out);
	buf_free(&resinfo);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg);

/* Start the overall time limit, once. */
static void deadline_arm(struct mailauth_wait *w)
{
	struct timeval limit = { RECEIVE_MAILAUTH_TIME_LIMIT, 0 };

	if (w->deadline != NULL)
		return;
	w->deadline = evtimer_new(smtp_session_base(w->s), on_deadline, w);
	if (w->deadline == NULL)
		panic("smtp: cannot create the mailauth deadline");
	evtimer_add(w->deadline, &limit);
}

static void mailauth_maybe_finish(struct mailauth_wait *w);

/* Keep what an aggregate report needs of a record with a rua. */
static void dmarc_report_note(struct dmarc_author_state *d, const struct dmarc_outcome *o)
{
	const struct dmarc_record *rec = o->record;
	struct buf b;

	d->spf_aligned = o->spf_aligned;
	d->dkim_aligned = o->dkim_aligned;
	d->report_policy = xasprintf("%s %s %s %s %u", rec->adkim == DMARC_ALIGN_STRICT ? "s" : "r",
				     rec->aspf == DMARC_ALIGN_STRICT ? "s" : "r",
				     dmarc_policy_name(rec->p), dmarc_policy_name(rec->sp), rec->pct);
	/* whole URIs only, as many as the store keeps */
	buf_init(&b, STORE_DMARC_TEXT_MAX);
	for (size_t i = 0; i < rec->rua.count; i++) {
		char *u = rec->rua.uri[i].max_size > 0
			? xasprintf("%s%s!%llu", b.len ? " " : "", rec->rua.uri[i].uri,
				    (unsigned long long)rec->rua.uri[i].max_size)
			: xasprintf("%s%s", b.len ? " " : "", rec->rua.uri[i].uri);
		buf_append_str(&b, u);
		free(u);
	}
	d->report_rua = buf_steal(&b);
}

/* The commit thread's answer to a recorded evaluation (runs there). */
static void dmarc_recorded(void *ctx, int status, const char *error)
{
	(void)ctx;
	if (status < 0)
		log_error("smtp", "event=dmarc_record_failed error=%s", log_quote(error ? error : ""));
}

/* Record the evaluations of domains whose record had a rua for the daily
 * aggregate report (store/dmarc.h): queued to the commit thread, never
 * waited for; a deferred message is not recorded (it comes back). */
static void dmarc_report_record(struct mailauth_wait *w)
{
	struct smtp_session *s = w->s;
	struct store *store = smtp_session_listener(s)->store;
	const char *helo = smtp_session_helo(s);
	const char *at = strrchr(w->sender, '@');
	const char *env = at != NULL ? at + 1 : "";
	const struct dkim_outcome *o = &w->dkim_outcome;
	size_t ndkim = w->dkim_timed_out ? 0 : o->count;
	struct buf dk;

	if (store == NULL || !smtp_session_listener(s)->cfg->dmarc_reports.enabled)
		return;
	buf_init(&dk, 4096);
	for (size_t i = 0; i < ndkim; i++)
		buf_printf(&dk, "%s%s:%s", dk.len ? " " : "", o->results[i].domain,
			   dkim_result_name(o->results[i].result));
	for (size_t i = 0; i < w->authors.count && !w->authors.too_many; i++) {
		const struct dmarc_author_state *d = &w->dm[i];
		if (d->report_rua == NULL || d->defer || d->policy_domain == NULL)
			continue;
		struct store_dmarc_result r = {
			.day = (int64_t)(clock_now() / 86400),
			.policy_domain = d->policy_domain,
			.from_domain = d->domain,
			.source_ip = smtp_session_ip(s),
			.envelope_from = env,
			.spf_domain = env[0] != '\0' ? env : (helo != NULL ? helo : ""),
			.spf_result = spf_result_name(w->spf_result),
			.dkim = buf_cstr(&dk),
			.spf_aligned = d->spf_aligned,
			.dkim_aligned = d->dkim_aligned,
			.disposition = dmarc_disposition_name(d->applied),
			.policy = d->report_policy,
			.rua = d->report_rua,
		};
		if (store_dmarc_add(store, NULL, &r, dmarc_recorded, NULL) < 0)
			log_error("smtp", "sid=%s id=%s event=dmarc_record_failed domain=%s",
				  smtp_session_id(s), smtp_session_msgid(s), d->domain);
	}
	buf_free(&dk);
}

static void on_dmarc_done(void *ctx, const struct dmarc_outcome *o)
{
	struct dmarc_author_state *d = ctx;
	struct mailauth_wait *w = d->w;

	d->ev = NULL;           /* the handle is invalid from here on */
	d->pending = false;
	w->dmarc_pending--;
	d->result = o->result;
	d->reason = o->reason;  /* static texts */
	if (o->record != NULL) {
		d->have_policy = true;
		d->p = o->record->p;
		d->sp = o->record->sp;
		d->policy = o->policy;
		d->asked = o->disposition;
		if (o->record->rua.count > 0)
			dmarc_report_note(d, o);
	}
	if (o->policy_domain != NULL)
		d->policy_domain = xstrdup(o->policy_domain);
	mailauth_maybe_finish(w);
}

/* SPF and DKIM are done: discover and evaluate DMARC for every Author
 * Domain, all at once. */
static void dmarc_start(struct mailauth_wait *w)
{
	const struct dkim_outcome *o = &w->dkim_outcome;
	size_t ndkim = w->dkim_timed_out ? 0 : o->count;
	struct dmarc_dkim *dk = xcalloc(ndkim > 0 ? ndkim : 1, sizeof(*dk));
	const char *helo = smtp_session_helo(w->s);
	struct dmarc_request req = {
		.spf = w->spf_result,
		.mail_from = w->sender,
		.helo = helo != NULL ? helo : "",
		.dkim = dk,
		.dkim_count = ndkim,
	};

	w->dmarc_started = true;
	dmarc_authors_collect(w->msg.data != NULL ? w->msg.data : "", w->msg.len, &w->authors);
	if (w->authors.count == 0 || w->authors.too_many) {
		free(dk);
		return;
	}
	for (size_t i = 0; i < ndkim; i++) {
		dk[i].domain = o->results[i].domain;
		dk[i].pass = o->results[i].result == DKIM_RESULT_PASS;
	}
	w->dm = xcalloc(w->authors.count, sizeof(*w->dm));
	w->starting = true;
	for (size_t i = 0; i < w->authors.count; i++) {
		struct dmarc_author_state *d = &w->dm[i];
		d->w = w;
		d->domain = w->authors.domain[i];
		if (w->expired || w->reg == NULL || w->reg->dmarc == NULL) {
			d->result = DMARC_RESULT_TEMPERROR;
			d->reason = w->expired ? "the checks took too long" : "no resolver";
			continue;
		}
		d->pending = true;
		w->dmarc_pending++;
		req.from_domain = d->domain;
		/* the outcome comes through on_dmarc_done(), now or from the loop */
		struct dmarc_eval *ev = dmarc_check(psl, &req, dmarc_spf_dns_get(w->reg->dmarc),
						    on_dmarc_done, d);
		if (d->pending)
			d->ev = ev;
	}
	w->starting = false;
	free(dk);
}

/* Finish and free w once nothing is pending (never while starting):
 * DMARC starts when SPF and DKIM are done. */
static void mailauth_maybe_finish(struct mailauth_wait *w)
{
	if (w->starting || w->spf_pending || w->dkim_pending || w->arc_pending)
		return;
	if (w->dmarc_on && !w->dmarc_started &&
	    !(w->spf_on && w->spf_result == SPF_RESULT_TEMPERROR)) {
		dmarc_start(w);
		if (w->dmarc_pending > 0) {
			deadline_arm(w);
			return;
		}
	}
	if (w->dmarc_pending > 0)
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

static void on_arc_done(void *ctx, const struct arc_outcome *o)
{
	struct mailauth_wait *w = ctx;

	w->arc_result = o->result;
	w->arc_oldest_pass = o->oldest_pass;
	w->arc_sealer = o->sealer[0] != '\0' ? xstrdup(o->sealer) : NULL;
	w->arc_reason = xstrdup(o->reason);
	w->arc_pending = false;
	mailauth_maybe_finish(w);
}

/* RFC 7208 4.6.4: an overall limit (at least 20 s) whose end is a
 * temperror; each lookup is also bounded by dns.timeout. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct mailauth_wait *w = arg;

	(void)fd;
	(void)what;
	w->expired = true;
	if (w->spf_pending) {
		spf_cancel(&w->ev);
		spf_record(w, SPF_RESULT_TEMPERROR, "the SPF check took too long");
	}
	if (w->dkim_pending) {
		dkim_verify_destroy(&w->dkim);  /* cancels its lookups */
		w->dkim_pending = false;
		w->dkim_timed_out = true;
	}
	if (w->arc_pending) {
		arc_verify_destroy(&w->arc);    /* cancels its lookups */
		w->arc_pending = false;
		w->arc_result = ARC_RESULT_FAIL;
		w->arc_reason = xstrdup("the ARC check took too long");
	}
	for (size_t i = 0; w->dm != NULL && i < w->authors.count; i++) {
		struct dmarc_author_state *d = &w->dm[i];
		if (!d->pending)
			continue;
		dmarc_cancel(&d->ev);
		d->pending = false;
		w->dmarc_pending--;
		d->result = DMARC_RESULT_TEMPERROR;
		d->reason = "the DMARC check took too long";
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

static void arc_start(struct mailauth_wait *w, const struct registration *reg)
{
	const struct dkim_dns *dns = reg != NULL && reg->dkim != NULL
		? dkim_dns_adapter_dns(reg->dkim) : &no_dns;

	w->arc = arc_verify_create(NULL);
	arc_verify_feed(w->arc, w->msg.data != NULL ? w->msg.data : "", w->msg.len);
	/* the outcome comes through on_arc_done(), now or from the loop */
	arc_verify_finish(w->arc, dns, on_arc_done, w);
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
	/* ARC uses the DKIM machinery and matters only beside it */
	w->arc_on = cfg->mailauth.arc && w->dkim_on;
	/* DMARC needs both results (with one missing, passing mail could fail) */
	w->dmarc_on = cfg->mailauth.dmarc && w->spf_on && w->dkim_on && psl != NULL;
	w->reg = reg;
	w->spf_pending = w->spf_on;
	w->dkim_pending = w->dkim_on;
	w->arc_pending = w->arc_on;
	buf_init(&w->msg, message->max);
	buf_append(&w->msg, message->data != NULL ? message->data : "", message->len);
	w->starting = true;
	if (w->spf_on)
		spf_start(w, reg);
	if (w->dkim_on)
		dkim_start(w, reg);
	if (w->arc_on)
		arc_start(w, reg);
	w->starting = false;
	if (!w->spf_pending && !w->dkim_pending && !w->arc_pending) {
		mailauth_maybe_finish(w);
		return;
	}
	deadline_arm(w);
}
