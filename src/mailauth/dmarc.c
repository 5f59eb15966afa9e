/* DMARC policy discovery and evaluation (RFC 7489 sections 3.1, 4.2, 6.6).
 *
 * Discovery (6.6.3): ask TXT at _dmarc.<From domain>; drop answers that do
 * not start with v=DMARC1; exactly one record left is the policy; none left
 * (or NXDOMAIN) moves on to _dmarc.<organisational domain> unless that is
 * the same name; more than one ends with no DMARC processing (result
 * none).  A transient DNS failure ends with temperror, never "no policy";
 * a DMARC record with no usable p= (6.6.3 step 6) ends with permerror.
 * RFC 7489 asks only these two names; DMARCbis's tree walk is not done.
 *
 * Evaluation (4.2, 6.6.2): DMARC passes when SPF passed for an identifier
 * aligned with the From domain (the MAIL FROM domain, or the HELO name for
 * the null reverse-path, whose SPF check used postmaster@HELO, RFC 7208
 * 2.4), or when any verified DKIM signature's d= is aligned.  The policy is
 * p, or sp for a From domain below the organisational domain whose own
 * _dmarc name had no record.  A failing message not selected by pct (6.6.4)
 * is quarantined under p=reject and left to local policy under
 * p=quarantine.
 *
 * Invariants: the state machine loops, never recurses, whether answers come
 * inside the DNS call or later; the done callback runs exactly once unless
 * cancelled; answers are borrowed only during their callback. */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "mailauth/dmarc.h"

const char *dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_RESULT_NONE: return "none";
	case DMARC_RESULT_PASS: return "pass";
	case DMARC_RESULT_FAIL: return "fail";
	case DMARC_RESULT_TEMPERROR: return "temperror";
	case DMARC_RESULT_PERMERROR: return "permerror";
	}
	return "none";
}

const char *dmarc_disposition_name(enum dmarc_disposition d)
{
	switch (d) {
	case DMARC_DISPOSITION_NONE: return "none";
	case DMARC_DISPOSITION_QUARANTINE: return "quarantine";
	case DMARC_DISPOSITION_REJECT: return "reject";
	}
	return "none";
}

/* The From domain as DMARC compares it: lower case, no trailing dot; NULL
 * when it is not a plausible domain name. */
static char *from_domain_normalise(const char *from)
{
	if (from == NULL || from[0] == '\0' || from[0] == '.' ||
	    strlen(from) > DMARC_MAX_DOMAIN + 1)
		return NULL;
	for (const char *p = from; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || (p[0] == '.' && p[1] == '.'))
			return NULL;
	size_t len = strlen(from);
	if (from[len - 1] == '.')
		len--;
	char *s = xstrndup(from, len);
	for (char *p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

static unsigned pick(const struct dmarc_request *req)
{
	if (req->random != NULL)
		return req->random(req->random_ctx) % 100;
	return arc4random_uniform(100);
}

void dmarc_outcome_clear(struct dmarc_outcome *o)
{
	free(o->owned_from);
	free(o->owned_policy_domain);
	memset(o, 0, sizeof(*o));
}

void dmarc_evaluate(const struct dmarc_psl *psl, const struct dmarc_request *req,
		    const struct dmarc_record *rec, const char *policy_domain,
		    struct dmarc_outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->owned_from = from_domain_normalise(req->from_domain);
	o->from_domain = o->owned_from;
	if (o->owned_from == NULL) {
		o->result = DMARC_RESULT_PERMERROR;
		o->reason = "no valid From domain";
		return;
	}
	if (rec == NULL) {
		o->result = DMARC_RESULT_NONE;
		o->reason = "no DMARC record";
		return;
	}
	o->record = rec;
	if (policy_domain != NULL) {
		o->owned_policy_domain = xstrdup(policy_domain);
		o->policy_domain = o->owned_policy_domain;
	}

	/* 3.1.2: the SPF-authenticated identifier */
	const char *spf_id = req->mail_from != NULL && req->mail_from[0] != '\0'
			     ? req->mail_from : req->helo;
	const char *at = spf_id != NULL ? strrchr(spf_id, '@') : NULL;
	if (at != NULL)
		spf_id = at + 1;  /* given a whole address */
	o->spf_aligned = req->spf == SPF_RESULT_PASS && spf_id != NULL &&
			 dmarc_aligned(psl, spf_id, o->from_domain, rec->aspf);
	/* 3.1.1, 4.2: any one verified, aligned signature */
	for (size_t i = 0; i < req->dkim_count && !o->dkim_aligned; i++) {
		const struct dmarc_dkim *d = &req->dkim[i];
		if (d->pass && d->domain != NULL &&
		    dmarc_aligned(psl, d->domain, o->from_domain, rec->adkim)) {
			o->dkim_aligned = true;
			o->aligned_dkim_domain = d->domain;
		}
	}

	bool subdomain = policy_domain != NULL && strcasecmp(policy_domain, o->from_domain) != 0;
	o->policy = subdomain ? rec->sp : rec->p;
	o->sampled = true;
	if (o->spf_aligned || o->dkim_aligned) {
		o->result = DMARC_RESULT_PASS;
		o->disposition = DMARC_DISPOSITION_NONE;
		o->reason = o->dkim_aligned ? "aligned DKIM pass" : "aligned SPF pass";
		return;
	}
	o->result = DMARC_RESULT_FAIL;
	o->reason = "no aligned SPF or DKIM pass";
	if (o->policy == DMARC_POLICY_NONE) {
		o->disposition = DMARC_DISPOSITION_NONE;
		return;
	}
	/* 6.6.4: pct selects the share of failing mail the policy applies to */
	o->sampled = rec->pct >= 100 || (rec->pct > 0 && pick(req) < rec->pct);
	if (o->sampled) {
		o->disposition = o->policy == DMARC_POLICY_REJECT ? DMARC_DISPOSITION_REJECT
								  : DMARC_DISPOSITION_QUARANTINE;
	} else if (o->policy == DMARC_POLICY_REJECT) {
		o->disposition = DMARC_DISPOSITION_QUARANTINE;
		o->reason = "not selected by pct: quarantine instead of reject";
	} else {
		o->disposition = DMARC_DISPOSITION_NONE;
		o->local_policy = true;
		o->reason = "not selected by pct: local policy";
	}
}

/* --- discovery --- */

enum stage {
	STAGE_FROM,     /* asking _dmarc.<From domain> */
	STAGE_ORG,      /* asking _dmarc.<organisational domain> */
	STAGE_DONE,
};

struct dmarc_eval {
	const struct dmarc_psl *psl;
	const struct dmarc_dns *dns;
	dmarc_done_cb *cb;
	void *ctx;

	struct dmarc_request req;   /* strings owned */
	struct dmarc_dkim *dkim;
	char *from, *org;

	enum stage stage;
	bool waiting, in_call, cancelled;
	enum dmarc_result result;   /* when no record was found */
	const char *reason;
	bool have_record;
	struct dmarc_record record;
	char *policy_domain;
};

static void eval_free(struct dmarc_eval *ev)
{
	free((char *)ev->req.from_domain);
	free((char *)ev->req.mail_from);
	free((char *)ev->req.helo);
	for (size_t i = 0; i < ev->req.dkim_count; i++)
		free((char *)ev->dkim[i].domain);
	free(ev->dkim);
	free(ev->from);
	free(ev->org);
	free(ev->policy_domain);
	dmarc_record_clear(&ev->record);
	free(ev);
}

static void finish(struct dmarc_eval *ev)
{
	struct dmarc_outcome o;

	if (ev->have_record) {
		dmarc_evaluate(ev->psl, &ev->req, &ev->record, ev->policy_domain, &o);
	} else {
		memset(&o, 0, sizeof(o));
		o.from_domain = ev->from;
		o.result = ev->result;
		o.reason = ev->reason;
	}
	log_debug("dmarc", "from=%s policy_domain=%s result=%s disposition=%s reason=\"%s\"",
		  ev->from != NULL ? ev->from : "-",
		  o.policy_domain != NULL ? o.policy_domain : "-",
		  dmarc_result_name(o.result), dmarc_disposition_name(o.disposition),
		  o.reason != NULL ? o.reason : "");
	ev->cb(ev->ctx, &o);
	dmarc_outcome_clear(&o);
	eval_free(ev);
}

/* Take one TXT answer: a record, the next name to ask, or the end. */
static void handle_answer(struct dmarc_eval *ev, const struct dmarc_dns_answer *a)
{
	const char *name = ev->stage == STAGE_FROM ? ev->from : ev->org;
	size_t found = 0;
	int status = DMARC_PARSE_NOT_DMARC;

	if (a->status == DMARC_DNS_TEMPFAIL) {
		ev->result = DMARC_RESULT_TEMPERROR;
		ev->reason = "DNS failure looking up the DMARC record";
		ev->stage = STAGE_DONE;
		return;
	}
	if (a->status == DMARC_DNS_OK) {
		/* 6.6.3 steps 2-5: keep the records starting with v=DMARC1 */
		for (size_t i = 0; i < a->count; i++) {
			const char *s = a->strings[i];
			size_t len = a->lengths != NULL ? a->lengths[i] : strlen(s);
			struct dmarc_record rec;
			const char *error = NULL;
			int r = dmarc_record_parse(s, len, &rec, &error);
			if (r == DMARC_PARSE_NOT_DMARC) {
				dmarc_record_clear(&rec);
				continue;
			}
			if (++found == 1) {
				status = r;
				ev->record = rec;
				ev->reason = error;
			} else {
				dmarc_record_clear(&rec);
			}
		}
	}
	if (found > 1) {
		dmarc_record_clear(&ev->record);
		ev->result = DMARC_RESULT_NONE;
		ev->reason = "more than one DMARC record";
		ev->stage = STAGE_DONE;
	} else if (found == 1 && status == DMARC_PARSE_OK) {
		ev->have_record = true;
		ev->policy_domain = xstrdup(name);
		ev->stage = STAGE_DONE;
	} else if (found == 1) {
		ev->result = DMARC_RESULT_PERMERROR;
		ev->stage = STAGE_DONE;
	} else if (ev->stage == STAGE_FROM && strcmp(ev->from, ev->org) != 0) {
		ev->stage = STAGE_ORG;
	} else {
		ev->result = DMARC_RESULT_NONE;
		ev->reason = "no DMARC record";
		ev->stage = STAGE_DONE;
	}
}

static bool run(struct dmarc_eval *ev);

/* The DNS callback: inside the txt() call the loop in run() continues by
 * itself; a later answer restarts it. */
static void on_answer(void *query_ctx, const struct dmarc_dns_answer *a)
{
	struct dmarc_eval *ev = query_ctx;

	ev->waiting = false;
	if (ev->cancelled) {
		eval_free(ev);
		return;
	}
	handle_answer(ev, a);
	if (!ev->in_call)
		(void)run(ev);
}

/* Ask the next question or finish.  Returns true when the evaluation has
 * finished (and ev is freed), false while an answer is awaited. */
static bool run(struct dmarc_eval *ev)
{
	for (;;) {
		if (ev->stage == STAGE_DONE) {
			finish(ev);
			return true;
		}
		char *name = xasprintf("_dmarc.%s", ev->stage == STAGE_FROM ? ev->from : ev->org);
		ev->waiting = true;
		ev->in_call = true;
		ev->dns->txt(ev->dns->ctx, name, on_answer, ev);
		free(name);
		ev->in_call = false;
		if (ev->waiting)
			return false;
	}
}

struct dmarc_eval *dmarc_check(const struct dmarc_psl *psl, const struct dmarc_request *req,
			       const struct dmarc_dns *dns, dmarc_done_cb *cb, void *ctx)
{
	struct dmarc_eval *ev = xcalloc(1, sizeof(*ev));

	ev->psl = psl;
	ev->dns = dns;
	ev->cb = cb;
	ev->ctx = ctx;
	ev->req = *req;
	ev->req.from_domain = req->from_domain != NULL ? xstrdup(req->from_domain) : NULL;
	ev->req.mail_from = req->mail_from != NULL ? xstrdup(req->mail_from) : NULL;
	ev->req.helo = req->helo != NULL ? xstrdup(req->helo) : NULL;
	if (req->dkim_count > 0) {
		ev->dkim = xcalloc(req->dkim_count, sizeof(*ev->dkim));
		for (size_t i = 0; i < req->dkim_count; i++) {
			ev->dkim[i].pass = req->dkim[i].pass;
			ev->dkim[i].domain = req->dkim[i].domain != NULL
					     ? xstrdup(req->dkim[i].domain) : NULL;
		}
	}
	ev->req.dkim = ev->dkim;
	dmarc_record_clear(&ev->record);

	ev->from = from_domain_normalise(req->from_domain);
	if (ev->from == NULL) {
		ev->result = DMARC_RESULT_PERMERROR;
		ev->reason = "no valid From domain";
		ev->stage = STAGE_DONE;
	} else {
		ev->org = dmarc_org_domain(psl, ev->from);
		ev->stage = STAGE_FROM;
	}
	return run(ev) ? NULL : ev;
}

void dmarc_cancel(struct dmarc_eval **evp)
{
	struct dmarc_eval *ev = *evp;

	if (ev == NULL)
		return;
	*evp = NULL;
	if (ev->dns->cancel != NULL) {
		ev->dns->cancel(ev->dns->ctx, ev);
		eval_free(ev);
	} else {
		ev->cancelled = true;
	}
}
