/* The queue scheduler (queue.h): scans the store's queue for due
 * recipients, delivers them, records the outcomes and sends DSNs.
 *
 * One job per (message, destination domain): its due recipients go in one
 * SMTP transaction.  The destination is a configured route (queue.routes:
 * a fixed next hop) or the domain's MX hosts in preference order (an
 * implicit MX when it has none, RFC 5321 5.1); each host's addresses are
 * tried in turn.  A host whose MX answer was DNSSEC-validated and that has
 * validated TLSA records gets DANE (RFC 7672: TLS required and the
 * certificate must match, else the next host, never clear text); others
 * get opportunistic STARTTLS.
 *
 * A smarthost (queue.smarthost) takes every domain without a route: TLS
 * is required and verified against queue.ca_file (STARTTLS, or implicit
 * TLS from the first byte, RFC 8314 3, with tls = "implicit" or port 465),
 * then AUTH.  MTA-STS
 * (RFC 8461) applies to MX delivery: the _mta-sts TXT record (3.1) says
 * whether a policy exists and its id; the policy is fetched over HTTPS
 * (mta-sts-fetch.c, 3.3) when the cache has none with that id, and cached
 * for its max_age, in memory and in the store (store/mta-sts.h), so a
 * restart keeps enforcing it (RFC 8461 5.1); a failed refresh keeps the
 * cached policy until it expires.  In
 * enforce mode (5) MX hosts that do not match the policy are skipped and
 * TLS must verify (DANE, when TLSA records exist, takes precedence, RFC
 * 8461 2); in testing mode the same checks only log an
 * event=mta_sts_report line and delivery goes on (a failed verified TLS
 * is retried with opportunistic TLS).
 *
 * REQUIRETLS (RFC 8689 4.2.1): a message received with the REQUIRETLS
 * MAIL parameter goes only to a host whose TLS is authenticated: DANE
 * when it has TLSA records, else PKIX (queue.ca_file) against the host
 * name when the MX answer was DNSSEC-validated, an MTA-STS policy
 * applies, or the host is a configured route or the smarthost; the
 * peer must offer REQUIRETLS (the client refuses with 5.7.30 otherwise)
 * and gets the parameter passed on.  A host that cannot be
 * authenticated is never contacted; when no host can be, the recipients
 * bounce with 5.7.10 (encryption needed).  Its DSN returns headers only
 * and, when it goes through the queue, is itself REQUIRETLS (RFC 8689 5).
 * A message with "TLS-Required: No" (RFC 8689 3, 4.3) and without
 * REQUIRETLS still tries the same TLS first, but a DANE or MTA-STS
 * failure (or an MTA-STS MX mismatch) no longer stops it: the same
 * address is retried with opportunistic TLS, and the log says the
 * sender asked for it.
 *
 * Signing (queue/sign-hook.h): a message converted for a peer without
 * 8BITMIME is signed again when it carried the hook's signature.
 *
 * Outcomes per recipient: accepted -> DELIVERED; 5xx -> BOUNCED; 4xx, or
 * no host reachable -> DEFERRED until now + queue_retry_delay(), BOUNCED
 * once the message is older than queue.max_age.  NXDOMAIN and null MX
 * (RFC 7505) bounce at once; DNS trouble defers.  A failure DSN goes to
 * the sender for bounced recipients, a delay DSN once for recipients
 * still deferred after queue.warn_after, as their NOTIFY allows (RFC 3461);
 * never to the null sender, so a bounce never bounces.  DSNs for local
 * senders go to their INBOX, others enter the queue with the null sender;
 * a forwarded copy's SRS sender is reversed first, so its DSN reaches the
 * original sender.
 *
 * Per-destination rate limits (queue.rate_limits, rate-limit.h): a job
 * takes one message from the budget of the rule matching its domain
 * (before any lookup) or one of its next hops (after the MX lookup); when
 * the budget is spent the domain is parked until the window ends and the
 * job dropped without an outcome: no attempt counted, no error, no DSN.
 *
 * Sessions are reused per next hop (see "session reuse" below): a usable
 * session stays open for QUEUE_IDLE_SECONDS for the next message with the
 * same connection parameters.
 *
 * Invariants: a message is in at most one job at a time per domain and
 * queue.connections jobs run at once (queue.connections_per_domain per
 * domain), and at most queue.connections sessions are open, busy or idle
 * (besides those closing after QUIT);
 * every outcome goes through store_queue_update, so a recipient
 * recorded as delivered is never tried again, and a crash mid-attempt only
 * repeats that attempt.  Time comes from lib/clock (tests move it). */
#include "queue/queue.h"

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "mail/downgrade.h"
#include "mail/dsn.h"
#include "mail/header.h"
#include "mail/srs.h"
#include "queue/mta-sts-fetch.h"
#include "queue/mta-sts.h"
#include "queue/sign-hook.h"
#include "queue/tlsrpt.h"
#include "queue/dmarcrep.h"
#include "queue/dmarcrep-import.h"
#include "queue/rate-limit.h"
#include "smtp/client.h"
#include "store/mta-sts.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define QUEUE_SCAN_LIMIT 500    /* messages looked at per scan */
#define QUEUE_IDLE_SECONDS 2    /* an unused cached session is closed after this */
#define QUEUE_REUSE_MAX 100     /* messages per session before a fresh connection */
#define STS_CACHE_MAX 10000     /* MTA-STS policies kept in memory */

struct job_rcpt {
	int64_t id;
	char *address, *orcpt;
	unsigned notify;
	int attempts;
	bool warned, give_up;
	bool decided;
	enum store_queue_state state;
	char *error;                /* the reason, for the queue records */
	char *text;                 /* the remote reply or our reason, for the DSN */
	char status[16];            /* enhanced status code "x.y.z", or "" */
	char *remote_mta;           /* the host that answered, or NULL */
};

struct job {
	struct job *next;
	struct queue *q;
	bool updating;              /* its outcome is being committed (update_done frees it) */
	char *qid, *sender, *domain, *envid, *path;
	enum dsn_ret ret;
	unsigned flags;
	time_t created;
	struct job_rcpt *rcpts;
	size_t nrcpts;
	char *data;
	size_t len;
	struct buf converted;       /* 7-bit form for peers without 8BITMIME */
	/* destination */
	char **hosts;
	size_t nhosts, host_i;
	unsigned port;
	bool mx_secure;
	char *host;                 /* the one being tried */
	struct dns_address *addrs;
	size_t naddrs, addr_i;
	struct smtp_tlsa *tlsa;
	size_t ntlsa;
	struct dns_query *query;
	struct smtp_client *client;
	struct smtp_client_message msg;  /* the transaction: lives until its callback */
	struct smtp_client_rcpt *sent;   /* the recipients of the transaction */
	size_t *sent_index;
	size_t nsent;
	char *last_error;
	/* smarthost and MTA-STS */
	bool smarthost;             /* verified TLS and AUTH (queue.smarthost) */
	bool sts_downgrade;         /* testing mode: the next connect is opportunistic */
	enum smtp_tls_policy tls;   /* the policy of the connection being tried */
	struct mta_sts_policy sts;  /* the domain's policy in force (mode NONE: none) */
	struct mta_sts_record sts_txt;
	bool has_sts_txt;
	struct mta_sts_fetch *fetch;
	/* RFC 8689 */
	bool requiretls;            /* REQUIRETLS: only authenticated TLS, peer with REQUIRETLS */
	bool tls_optional;          /* "TLS-Required: No": DANE/MTA-STS failures fall back */
	bool route;                 /* a configured next hop (queue.routes) */
	size_t rtls_skipped;        /* hosts skipped: their TLS could not be authenticated */
	char ip[INET6_ADDRSTRLEN];  /* the address being tried, for TLS reports */
	bool rate_taken;            /* a rate limit admitted it (rate_admit) */
	/* session reuse (idle_take / idle_put) */
	char *conn_key;             /* the session's parameters; NULL: not cacheable */
	unsigned conn_uses;         /* messages sent on the session so far */
	bool conn_tls;              /* the session runs TLS */
	bool reused;                /* the session came from the idle cache */
	bool no_reuse;              /* a reused session failed: connect afresh */
};

/* An open, idle outbound session, kept for the next message to the same
 * next hop with the same parameters (conn_key). */
struct idle_conn {
	struct idle_conn *next;
	struct queue *q;
	struct smtp_client *client;
	char *key;
	unsigned uses;
	bool tls;                   /* it runs TLS */
	struct event *timer;        /* closes it after QUEUE_IDLE_SECONDS */
};

/* A fetched MTA-STS policy, kept until it expires (RFC 8461 5.1). */
struct sts_entry {
	struct sts_entry *next;
	char *domain;
	char id[MTA_STS_ID_MAX + 1];
	struct mta_sts_policy policy;
	time_t expires;
};

struct queue {
	struct queue_deps d;
	char **srs;                 /* SRS secrets for DSNs to forwarded mail's senders */
	int nsrs;
	bool srs_tried;
	bool own_tls;
	struct event *timer, *kick;
	struct job *jobs;
	unsigned in_flight;
	bool stopped;
	struct sts_entry *sts_cache;
	char *smarthost_pass;       /* from queue.smarthost.password_file */
	struct tlsrpt_collector *tlsrpt;     /* TLS results (RFC 8460), NULL when off */
	struct tlsrpt_service *tlsrpt_daily; /* the daily reports */
	struct dmarcrep_service *dmarc_daily; /* daily DMARC aggregate reports */
	struct dmarcrep_import_service *dmarc_import; /* received reports, imported */
	struct queue_rate *rate;    /* queue.rate_limits */
	struct event *rate_timer;   /* a scan when the earliest parked window ends */
	struct idle_conn *idle;     /* cached sessions, newest first */
	unsigned nidle;
};

time_t queue_retry_delay(unsigned retry_min, unsigned retry_max, int attempts)
{
	uint64_t d = retry_min > 0 ? retry_min : 1;

	for (int i = 1; i < attempts && d < retry_max; i++)
		d *= 2;
	return (time_t)(d < retry_max ? d : retry_max);
}

/* ---- jobs ---- */

static void job_free(struct job *j)
{
	for (size_t i = 0; i < j->nrcpts; i++) {
		free(j->rcpts[i].address);
		free(j->rcpts[i].orcpt);
		free(j->rcpts[i].error);
		free(j->rcpts[i].text);
		free(j->rcpts[i].remote_mta);
	}
	free(j->rcpts);
	for (size_t i = 0; i < j->nhosts; i++)
		free(j->hosts[i]);
	free(j->hosts);
	for (size_t i = 0; i < j->ntlsa; i++)
		free((void *)j->tlsa[i].data);
	free(j->tlsa);
	free(j->addrs);
	free(j->sent);
	free(j->sent_index);
	dns_cancel(&j->query);
	mta_sts_fetch_cancel(&j->fetch);
	mta_sts_policy_clear(&j->sts);
	smtp_client_free(&j->client);
	buf_free(&j->converted);
	free(j->qid);
	free(j->sender);
	free(j->domain);
	free(j->envid);
	free(j->path);
	free(j->host);
	free(j->data);
	free(j->last_error);
	free(j->conn_key);
	free(j);
}

static void job_unlink(struct job *j)
{
	struct queue *q = j->q;

	for (struct job **p = &q->jobs; *p != NULL; p = &(*p)->next) {
		if (*p == j) {
			*p = j->next;
			break;
		}
	}
	q->in_flight--;
}

static bool job_busy(const struct queue *q, const char *qid, const char *domain,
		     unsigned *per_domain_r)
{
	bool busy = false;

	*per_domain_r = 0;
	for (const struct job *j = q->jobs; j != NULL; j = j->next) {
		if (strcasecmp(j->domain, domain) != 0)
			continue;
		(*per_domain_r)++;
		if (strcmp(j->qid, qid) == 0)
			busy = true;
	}
	return busy;
}

/* An enhanced status code at the start of text ("5.1.1 ..."), into out. */
static void leading_status(const char *text, char out[16])
{
	size_t n = strspn(text, "0123456789.");

	out[0] = '\0';
	if (n >= 5 && n < 16 && (text[0] == '2' || text[0] == '4' || text[0] == '5') &&
	    text[1] == '.' && (text[n] == ' ' || text[n] == '\0')) {
		memcpy(out, text, n);
		out[n] = '\0';
	}
}

static void decide(struct job_rcpt *r, enum store_queue_state state, const char *host,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Record r's outcome: text is the remote reply (host set) or our reason,
 * starting with its enhanced status code when there is one. */
static void decide(struct job_rcpt *r, enum store_queue_state state, const char *host,
		   const char *fmt, ...)
{
	va_list ap;
	struct buf b;

	if (r->decided)
		return;
	buf_init(&b, 4096);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	r->decided = true;
	r->state = state;
	free(r->text);
	r->text = buf_steal(&b);
	free(r->error);
	r->error = host != NULL ? xasprintf("%s said: %s", host, r->text) : xstrdup(r->text);
	free(r->remote_mta);
	r->remote_mta = host != NULL ? xstrdup(host) : NULL;
	/* "550 5.1.1 text" or "5.1.2 text" */
	leading_status(r->text + (host != NULL && strspn(r->text, "0123456789") == 3 &&
				  r->text[3] == ' ' ? 4 : 0), r->status);
	if (host != NULL && r->status[0] == '\0') {
		/* no enhanced code in the reply: the class from the reply code */
		snprintf(r->status, sizeof(r->status), "%c.0.0",
			 state == STORE_QUEUE_DELIVERED ? '2' :
			 state == STORE_QUEUE_BOUNCED ? '5' : '4');
	}
}

/* Every undecided recipient of j, with the reason text (malloc'd, freed here). */
static void decide_all(struct job *j, enum store_queue_state state, char *text)
{
	for (size_t i = 0; i < j->nrcpts; i++)
		decide(&j->rcpts[i], state, NULL, "%s", text);
	free(text);
}

static void set_last_error(struct job *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_last_error(struct job *j, const char *fmt, ...)
{
	va_list ap;
	struct buf b;

	buf_init(&b, 4096);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	free(j->last_error);
	j->last_error = buf_steal(&b);
}

/* ---- REQUIRETLS and TLS-Required (RFC 8689) ---- */

/* Does the message carry "TLS-Required: No" (RFC 8689 3)?  Only the
 * first such field counts; its value is compared without case and
 * surrounding white space. */
static bool tls_required_no(const char *data, size_t len)
{
	struct header_field f;
	char *v;
	bool no;

	if (header_find(data, len, "TLS-Required", &f, NULL) != 1)
		return false;
	v = header_value_unfold(f.value);
	no = strcasecmp(v, "No") == 0;
	free(v);
	return no;
}

/* What the sender asked for, once the message is read. */
static void job_tls_request(struct job *j)
{
	j->requiretls = (j->flags & STORE_QUEUE_F_REQUIRETLS) != 0;
	/* RFC 8689 4.1: with REQUIRETLS the header field is ignored */
	j->tls_optional = !j->requiretls && tls_required_no(j->data, j->len);
	if (j->requiretls)
		log_info("queue", "event=requiretls qid=%s domain=%s", j->qid, log_quote(j->domain));
	if (j->tls_optional)
		log_info("queue", "event=tls_required_no qid=%s domain=%s reason=%s", j->qid,
			 log_quote(j->domain), "the sender asked that DANE and MTA-STS failures "
			 "not stop delivery (TLS-Required: No)");
}

/* The TLS policy for the next connection of j into *p; -1 when j needs
 * REQUIRETLS and this host's TLS cannot be authenticated. */
static int job_tls_policy(const struct job *j, enum smtp_tls_policy *p)
{
	if (j->sts_downgrade && !j->requiretls)
		*p = SMTP_TLS_OPPORTUNISTIC;   /* MTA-STS testing, or TLS-Required: No */
	else if (j->ntlsa > 0)
		*p = SMTP_TLS_DANE;            /* DANE wins over MTA-STS (RFC 8461 2) */
	else if (j->smarthost || j->sts.mode != MTA_STS_MODE_NONE)
		*p = SMTP_TLS_REQUIRE_VERIFY;
	else if (j->requiretls && (j->mx_secure || j->route))
		*p = SMTP_TLS_REQUIRE_VERIFY;  /* RFC 8689 4.2.1: PKIX, name from DNSSEC or config */
	else if (j->requiretls)
		return -1;
	else
		*p = SMTP_TLS_OPPORTUNISTIC;
	return 0;
}

/* A TLS failure on j's connection: with "TLS-Required: No", retry the
 * same address with opportunistic TLS (true: the caller does it). */
static bool tls_optional_fallback(struct job *j, enum smtp_stage stage)
{
	if (!j->tls_optional || j->smarthost || j->sts_downgrade ||
	    (j->tls != SMTP_TLS_DANE && j->tls != SMTP_TLS_REQUIRE_VERIFY) ||
	    (stage != SMTP_STAGE_STARTTLS && stage != SMTP_STAGE_TLS))
		return false;
	log_info("queue", "event=tls_policy_ignored qid=%s host=%s tls=%s reason=%s", j->qid,
		 log_quote(j->host), j->tls == SMTP_TLS_DANE ? "dane" : "verify",
		 "TLS-Required: No");
	return true;
}

/* The client refused to send a REQUIRETLS message on an authenticated
 * session because the host does not offer REQUIRETLS (its local 5.7.30):
 * like a host we cannot authenticate, the next one is tried (true). */
static bool requiretls_refused(struct job *j, const struct smtp_client_result *r)
{
	if (!j->requiretls || !r->st.local || strcmp(r->st.enhanced, "5.7.30") != 0)
		return false;
	set_last_error(j, "5.7.30 %s: REQUIRETLS support required, and the host does not "
		       "offer it", j->host);
	log_info("queue", "event=requiretls_skip qid=%s host=%s reason=%s", j->qid,
		 log_quote(j->host), "no REQUIRETLS");
	j->rtls_skipped++;
	return true;
}

/* Every host of j was skipped for REQUIRETLS (no authenticated TLS, or
 * no REQUIRETLS offered): the undecided recipients fail for good, with
 * the last such reason (5.7.10 or 5.7.30). */
static void requiretls_unmet(struct job *j)
{
	if (j->nhosts == 0 || j->rtls_skipped < j->nhosts)
		return;
	for (size_t i = 0; i < j->nrcpts; i++)
		decide(&j->rcpts[i], STORE_QUEUE_BOUNCED, NULL, "%s",
		       j->last_error != NULL && strncmp(j->last_error, "5.7.", 4) == 0
		       ? j->last_error
		       : "5.7.10 REQUIRETLS: no mail server can be reached over authenticated TLS");
}

/* ---- DSNs ---- */

static void dsn_stored(void *ctx, int status, const char *error)
{
	char *qid = ctx;

	if (status < 0)
		log_error("queue", "event=dsn_failed qid=%s error=%s", qid, log_quote(error));
	free(qid);
}

/* The SRS secrets (loaded once): their count, 0 without SRS. */
static int srs_secrets(struct queue *q)
{
	char *error = NULL;

	if (!q->srs_tried) {
		q->srs_tried = true;
		q->nsrs = config_srs_secrets_load(q->d.cfg, &q->srs, &error);
		if (q->nsrs < 0) {
			log_error("queue", "event=srs_unavailable error=%s", log_quote(error));
			free(error);
			q->nsrs = 0;
		}
	}
	return q->nsrs;
}

/* Send a DSN for the recipients of j marked in which[] with action. */
static void send_dsn(struct job *j, const bool *which, enum dsn_action action)
{
	struct queue *q = j->q;
	struct dsn_recipient *dr = xcalloc(j->nrcpts, sizeof(*dr));
	struct store_rcpt owner = { 0 };
	struct store_delivery_rcpt *local = NULL;
	struct store_queue_rcpt_in remote = { 0 };
	const char *error = NULL, *to = j->sender;
	struct buf msg, unsrs;
	size_t n = 0;
	time_t now = clock_now();

	buf_init(&unsrs, 1024);
	if (j->sender[0] == '\0')
		goto out;   /* never a DSN to the null sender (RFC 3464 / 5321 6.1) */
	/* a forwarded copy's sender is our SRS address: the DSN goes to the
	 * original sender it stands for */
	if (srs_is_srs(j->sender) && srs_secrets(q) > 0 &&
	    srs_reverse((const char *const *)q->srs, (size_t)q->nsrs, j->sender,
			q->d.cfg->srs.max_age, &unsrs, &error) == 0)
		to = buf_cstr(&unsrs);
	remote.address = to;
	for (size_t i = 0; i < j->nrcpts; i++) {
		const struct job_rcpt *r = &j->rcpts[i];
		if (!which[i])
			continue;
		dr[n++] = (struct dsn_recipient){
			.address = r->address, .orcpt = r->orcpt, .action = action,
			.status = r->status[0] ? r->status : NULL,
			.remote_mta = r->remote_mta,
			.reply = r->remote_mta != NULL ? r->text : NULL,
			.reason = r->remote_mta == NULL ? r->text : NULL,
			.last_attempt = now,
			.will_retry_until = action == DSN_ACTION_DELAYED
				? j->created + (time_t)q->d.cfg->queue.max_age : 0,
		};
	}
	if (n == 0)
		goto out;
	buf_init(&msg, BUF_UNLIMITED);
	struct dsn_params p = {
		.hostname = q->d.cfg->hostname, .sender = to, .envid = j->envid,
		/* RFC 8689 5: the content of a REQUIRETLS message is not returned */
		.ret = j->requiretls ? DSN_RET_HDRS : j->ret,
		.arrival = j->created, .rcpts = dr, .rcpt_count = n,
		.original = j->data, .original_len = j->len,
		.smtputf8 = (j->flags & STORE_QUEUE_F_SMTPUTF8) != 0,
	};
	if (dsn_build(&p, &msg, &error) < 0) {
		log_error("queue", "event=dsn_failed qid=%s error=%s", j->qid, log_quote(error));
		buf_free(&msg);
		goto out;
	}
	struct store_delivery d = {
		.return_path = "", .body = msg.data, .body_len = msg.len,
		.internal_date = now,
		.queue_flags = j->requiretls ? STORE_QUEUE_F_REQUIRETLS : 0,
	};
	/* a sender of ours gets it in the INBOX; anyone else through the queue */
	if (store_rcpt_resolve(q->d.store, to, "+", &owner, &error) == 0 &&
	    owner.kind == STORE_RCPT_LOCAL && owner.user_count > 0) {
		local = store_rcpt_deliveries(&owner);
		d.rcpts = local;
		d.rcpt_count = owner.user_count;
	} else {
		d.remote = &remote;
		d.remote_count = 1;
	}
	if (store_deliver(q->d.store, q->d.base, &d, dsn_stored, xstrdup(j->qid)) < 0)
		log_error("queue", "event=dsn_failed qid=%s error=%s", j->qid,
			  "the store refused the DSN");
	else
		log_info("queue", "event=dsn qid=%s action=%s to=%s rcpts=%zu", j->qid,
			 dsn_action_name(action), log_quote(to), n);
	if (d.remote_count > 0)
		queue_kick(q);
	buf_free(&msg);
	free(local);
out:
	store_rcpt_clear(&owner);
	buf_free(&unsrs);
	free(dr);
}

/* ---- finishing an attempt ---- */

static void scan_soon(struct queue *q);

static void update_done(void *ctx, const struct store_write_result *r)
{
	struct job *j = ctx;
	struct queue *q = j->q;

	if (r->status < 0)
		log_error("queue", "event=update_failed qid=%s error=%s", j->qid,
			  log_quote(r->error ? r->error : ""));
	job_unlink(j);
	job_free(j);
	if (!q->stopped)
		scan_soon(q);
}

static void job_finish(struct job *j)
{
	struct queue *q = j->q;
	const struct config *cfg = q->d.cfg;
	struct store_queue_result *res = xcalloc(j->nrcpts, sizeof(*res));
	bool *failed = xcalloc(j->nrcpts, sizeof(*failed));
	bool *delayed = xcalloc(j->nrcpts, sizeof(*delayed));
	time_t now = clock_now();

	smtp_client_free(&j->client);
	dns_cancel(&j->query);
	if (j->requiretls)
		requiretls_unmet(j);
	for (size_t i = 0; i < j->nrcpts; i++) {
		struct job_rcpt *r = &j->rcpts[i];
		if (!r->decided)
			decide(r, STORE_QUEUE_DEFERRED, NULL, "%s",
			       j->last_error ? j->last_error : "4.4.1 no host could be reached");
		if (r->state == STORE_QUEUE_DEFERRED) {
			time_t next = now + queue_retry_delay(cfg->queue.retry_min, cfg->queue.retry_max,
							      r->attempts + 1);
			if (next - j->created > (time_t)cfg->queue.max_age) {
				char *why = r->error;
				r->error = xasprintf("4.4.7 delivery time expired: %s", why);
				free(why);
				free(r->text);
				r->text = xstrdup(r->error);
				free(r->remote_mta);
				r->remote_mta = NULL;
				snprintf(r->status, sizeof(r->status), "4.4.7");
				r->state = STORE_QUEUE_BOUNCED;
			} else {
				res[i].next_attempt = next;
				if (!r->warned && cfg->queue.warn_after > 0 &&
				    now - j->created >= (time_t)cfg->queue.warn_after &&
				    dsn_should_notify(r->notify, DSN_ACTION_DELAYED)) {
					delayed[i] = true;
					r->warned = true;
				}
			}
		}
		if (r->state == STORE_QUEUE_BOUNCED &&
		    dsn_should_notify(r->notify, DSN_ACTION_FAILED))
			failed[i] = true;
		res[i].rcpt_id = r->id;
		res[i].state = r->state;
		res[i].error = r->error;
		res[i].warned = r->warned;
		log_info("queue", "event=%s qid=%s rcpt=%s host=%s attempts=%d reason=%s",
			 r->state == STORE_QUEUE_DELIVERED ? "delivered" :
			 r->state == STORE_QUEUE_BOUNCED ? "bounced" : "deferred",
			 j->qid, log_quote(r->address), log_quote(r->remote_mta ? r->remote_mta : ""),
			 r->attempts + 1, log_quote(r->error ? r->error : ""));
	}
	send_dsn(j, failed, DSN_ACTION_FAILED);
	send_dsn(j, delayed, DSN_ACTION_DELAYED);
	j->updating = true;   /* the store holds j until update_done */
	if (store_queue_update(q->d.store, q->d.base, res, j->nrcpts, update_done, j) < 0) {
		log_error("queue", "event=update_failed qid=%s error=%s", j->qid,
			  "the store refused the update");
		job_unlink(j);
		job_free(j);
	}
	free(res);
	free(failed);
	free(delayed);
}

/* ---- TLS reporting (RFC 8460) ---- */

static const struct config_route *route_for(const struct config *cfg, const char *domain);

/* The policy j delivers under (RFC 8460 4.3) and its strings, one per
 * line, into pol: DANE when the host has usable TLSA records, else
 * MTA-STS when a policy is in force, else none. */
static const char *tls_policy(const struct job *j, struct buf *pol)
{
	if (j->ntlsa > 0) {
		for (size_t i = 0; i < j->ntlsa; i++) {
			const struct smtp_tlsa *t = &j->tlsa[i];
			buf_printf(pol, "%s%u %u %u ", i ? "\n" : "", t->usage, t->selector, t->mtype);
			for (size_t k = 0; k < t->len; k++)
				buf_printf(pol, "%02x", t->data[k]);
		}
		return "tlsa";
	}
	if (j->sts.mode != MTA_STS_MODE_NONE) {
		buf_printf(pol, "version: STSv1\nmode: %s", mta_sts_mode_name(j->sts.mode));
		for (size_t i = 0; i < j->sts.mx_count; i++)
			buf_printf(pol, "\nmx: %s", j->sts.mx[i]);
		buf_printf(pol, "\nmax_age: %u", (unsigned)j->sts.max_age);
		return "sts";
	}
	return "no-policy-found";
}

/* Note one TLS outcome of j for the recipient domain's report: type NULL
 * for j's policy (tls_policy), result NULL for a success.  Smarthost and
 * routed mail have no policy domain to report to. */
static void tls_note(struct job *j, const char *type, const char *mx, const char *ip,
		     const char *result, const char *detail)
{
	struct queue *q = j->q;
	struct buf pol;

	if (q->tlsrpt == NULL || j->smarthost || j->domain[0] == '[' ||
	    route_for(q->d.cfg, j->domain) != NULL)
		return;
	buf_init(&pol, STORE_TLSRPT_TEXT_MAX);
	if (type == NULL)
		type = tls_policy(j, &pol);
	tlsrpt_note(q->tlsrpt, j->domain, type, buf_cstr(&pol), mx, ip, result, detail);
	buf_free(&pol);
}

/* ---- talking SMTP ---- */

static void next_host(struct job *j);
static void connect_next(struct job *j);

/* "550 5.1.1 text" (a reply) or the client's own reason. */
static void format_status(struct buf *b, const struct smtp_client_status *st)
{
	if (st->code > 0)
		buf_printf(b, "%d %s%s%s", st->code, st->enhanced, st->enhanced[0] ? " " : "",
			   st->text);
	else
		buf_printf(b, "%s", st->text);
}

/* ---- session reuse ----
 * A session still usable after its transaction is kept open for a short
 * while (QUEUE_IDLE_SECONDS), so the next message to the same next hop
 * skips the TCP and TLS handshakes, the greeting, EHLO and QUIT: its
 * next MAIL starts a new transaction (RFC 5321 3.3; the client sends RSET
 * first only after a transaction that did not end cleanly).  A session is
 * reused only by a job whose connection parameters (address, port, host
 * name, TLS policy, implicit TLS, AUTH user) are the same, so it carries
 * no weaker TLS than a fresh one would;
 * DANE sessions are never cached (their TLSA records belong to one
 * lookup).  Open sessions, busy or idle, never exceed queue.connections:
 * a fresh connection first closes the oldest idle one when needed. */

/* The cache key of the session p describes, or NULL when it is not to be
 * cached. */
static char *conn_key(const struct smtp_client_params *p, const char *ip, unsigned port)
{
	if (p->tls == SMTP_TLS_DANE)
		return NULL;
	return xasprintf("%s|%u|%s|%d|%d|%s", ip, port, p->host, (int)p->tls,
			 p->implicit_tls ? 1 : 0, p->auth_user != NULL ? p->auth_user : "");
}

static void idle_free(struct idle_conn *ic)
{
	smtp_client_quit(&ic->client);
	event_free(ic->timer);
	free(ic->key);
	free(ic);
}

/* Remove ic from q's cache (it must be there). */
static void idle_unlink(struct queue *q, struct idle_conn *ic)
{
	for (struct idle_conn **p = &q->idle; *p != NULL; p = &(*p)->next) {
		if (*p == ic) {
			*p = ic->next;
			q->nidle--;
			return;
		}
	}
}

static void idle_expired(evutil_socket_t fd, short what, void *arg)
{
	struct idle_conn *ic = arg;

	(void)fd; (void)what;
	idle_unlink(ic->q, ic);
	idle_free(ic);
}

/* Close the oldest idle session (the list is newest first). */
static void idle_drop_oldest(struct queue *q)
{
	struct idle_conn **p = &q->idle;

	if (*p == NULL)
		return;
	while ((*p)->next != NULL)
		p = &(*p)->next;
	struct idle_conn *ic = *p;
	*p = NULL;
	q->nidle--;
	idle_free(ic);
}

static void idle_close_all(struct queue *q)
{
	while (q->idle != NULL) {
		struct idle_conn *ic = q->idle;
		q->idle = ic->next;
		idle_free(ic);
	}
	q->nidle = 0;
}

/* A usable idle session with this key (taken out of the cache), or NULL.
 * Sessions the server closed meanwhile are dropped on the way. */
static struct smtp_client *idle_take(struct queue *q, const char *key, unsigned *uses_r,
				     bool *tls_r)
{
	for (struct idle_conn **p = &q->idle; *p != NULL;) {
		struct idle_conn *ic = *p;
		if (!smtp_client_usable(ic->client)) {
			*p = ic->next;
			q->nidle--;
			idle_free(ic);
			continue;
		}
		if (strcmp(ic->key, key) != 0) {
			p = &ic->next;
			continue;
		}
		struct smtp_client *c = ic->client;
		*p = ic->next;
		q->nidle--;
		ic->client = NULL;
		*uses_r = ic->uses;
		*tls_r = ic->tls;
		idle_free(ic);
		return c;
	}
	return NULL;
}

/* j's transaction is over: keep its session for the next message to the
 * same next hop when it can carry one, else QUIT. */
static void conn_release(struct job *j)
{
	struct queue *q = j->q;
	struct timeval tv = { QUEUE_IDLE_SECONDS, 0 };

	if (j->client == NULL)
		return;
	if (q->stopped || j->conn_key == NULL || j->conn_uses >= QUEUE_REUSE_MAX ||
	    !smtp_client_usable(j->client) || q->nidle >= q->d.cfg->queue.connections) {
		smtp_client_quit(&j->client);
		return;
	}
	struct idle_conn *ic = xcalloc(1, sizeof(*ic));
	ic->q = q;
	ic->client = j->client;
	j->client = NULL;
	ic->key = xstrdup(j->conn_key);
	ic->uses = j->conn_uses;
	ic->tls = j->conn_tls;
	ic->timer = evtimer_new(q->d.base, idle_expired, ic);
	evtimer_add(ic->timer, &tv);
	ic->next = q->idle;
	q->idle = ic;
	q->nidle++;
}

/* A reused session failed without a recipient accepted, because the
 * connection closed or the server answered 421 (it had timed the idle
 * session out): try the same address again at once with a fresh
 * connection, once (true: done).  A deferral would retry the same way,
 * only later, so this sends nothing a deferral would not. */
static bool reuse_retry(struct job *j, const struct smtp_client_result *r)
{
	if (!j->reused || j->no_reuse || r->n_delivered > 0 ||
	    r->st.status != SMTP_STATUS_TEMP || (r->st.code != 0 && r->st.code != 421))
		return false;
	log_info("queue", "event=reuse_failed qid=%s host=%s stage=%s reason=%s", j->qid,
		 log_quote(j->host), smtp_stage_name(r->stage), log_quote(r->st.text));
	smtp_client_free(&j->client);
	j->no_reuse = true;
	if (j->addr_i > 0)
		j->addr_i--;
	connect_next(j);
	return true;
}

static void session_note(struct job *j);

static void client_sent(struct smtp_client *c, const struct smtp_client_result *r, void *ctx)
{
	struct job *j = ctx;
	struct buf b;

	(void)c;
	if (reuse_retry(j, r))
		return;
	if (j->reused)
		session_note(j);   /* a fresh session is noted in client_ready */
	if (requiretls_refused(j, r)) {
		smtp_client_quit(&j->client);
		j->addr_i = j->naddrs;     /* not another address of this host */
		connect_next(j);
		return;
	}
	buf_init(&b, 4096);
	for (size_t k = 0; k < j->nsent && k < r->n_rcpts; k++) {
		struct job_rcpt *rc = &j->rcpts[j->sent_index[k]];
		const struct smtp_client_status *st = &r->rcpts[k];

		buf_reset(&b);
		format_status(&b, st);
		if (st->status == SMTP_STATUS_OK)
			decide(rc, STORE_QUEUE_DELIVERED, j->host, "%s", buf_cstr(&b));
		else if (st->status == SMTP_STATUS_PERM)
			decide(rc, STORE_QUEUE_BOUNCED, j->host, "%s", buf_cstr(&b));
		else
			decide(rc, STORE_QUEUE_DEFERRED, j->host, "%s", buf_cstr(&b));
	}
	buf_free(&b);
	conn_release(j);
	job_finish(j);
}

static void job_send(struct job *j);

/* Note the TLS outcome of j's session for its domain's report: once per
 * message, also on a reused session (RFC 8460 counts sessions per policy
 * domain, and the reused one carried this domain's message under the same
 * TLS).  A testing-mode downgrade was noted when the policy's TLS failed. */
static void session_note(struct job *j)
{
	if (!(j->tls == SMTP_TLS_OPPORTUNISTIC && j->sts.mode != MTA_STS_MODE_NONE))
		tls_note(j, NULL, j->host, j->ip,
			 j->conn_tls ? NULL : TLSRPT_STARTTLS_NOT_SUPPORTED, NULL);
}

static void client_ready(struct smtp_client *c, const struct smtp_client_result *r, void *ctx)
{
	struct job *j = ctx;
	struct buf b;

	if (r->stage != SMTP_STAGE_READY || r->st.status != SMTP_STATUS_OK) {
		buf_init(&b, 4096);
		format_status(&b, &r->st);
		set_last_error(j, "%s: %s", j->host, buf_cstr(&b));
		if (r->stage == SMTP_STAGE_STARTTLS)
			tls_note(j, NULL, j->host, j->ip, TLSRPT_STARTTLS_NOT_SUPPORTED, NULL);
		else if (r->stage == SMTP_STAGE_TLS)
			tls_note(j, NULL, j->host, j->ip,
				 tlsrpt_classify_tls_failure(r->tls.failure ? r->tls.failure
									   : r->st.text,
							     j->tls == SMTP_TLS_DANE),
				 r->tls.failure ? r->tls.failure : r->st.text);
		smtp_client_free(&j->client);
		if (j->sts.mode != MTA_STS_MODE_NONE && j->tls == SMTP_TLS_REQUIRE_VERIFY &&
		    (r->stage == SMTP_STAGE_STARTTLS || r->stage == SMTP_STAGE_TLS)) {
			/* RFC 8461 5: the policy's TLS requirement failed */
			log_info("queue", "event=mta_sts_report qid=%s domain=%s mode=%s host=%s "
				 "result=%s reason=%s", j->qid, log_quote(j->domain),
				 mta_sts_mode_name(j->sts.mode), log_quote(j->host),
				 r->stage == SMTP_STAGE_STARTTLS ? "starttls-not-supported"
								 : "certificate-not-valid",
				 log_quote(buf_cstr(&b)));
			if (j->sts.mode == MTA_STS_MODE_TESTING && !j->requiretls) {
				/* testing mode: report, then deliver the way we would
				 * without a policy, on the same address */
				j->sts_downgrade = true;
				j->addr_i--;
			}
		}
		if (!j->sts_downgrade && tls_optional_fallback(j, r->stage)) {
			j->sts_downgrade = true;
			j->addr_i--;
		}
		buf_free(&b);
		connect_next(j);
		return;
	}
	(void)c;
	j->conn_tls = r->tls.active;
	session_note(j);
	job_send(j);
}

/* Send j's message on its READY session (fresh or reused). */
static void job_send(struct job *j)
{
	struct smtp_client *c = j->client;
	struct smtp_client_message *m = &j->msg;
	const char *error = NULL;
	const char *data = j->data;
	size_t len = j->len;

	if ((j->flags & STORE_QUEUE_F_8BIT) && !smtp_client_has(c, SMTP_EXT_8BITMIME)) {
		/* RFC 6152 3: convert for a peer without 8BITMIME, signed again
		 * when it was signed (sign-hook.h) */
		const char *at = strrchr(j->sender, '@');
		if (sign_hook_downgrade(at != NULL ? at + 1 : "", j->data, j->len, j->qid,
					&j->converted, &error) < 0) {
			decide_all(j, STORE_QUEUE_BOUNCED,
				   xasprintf("5.6.3 the message has 8-bit headers and the receiving "
					     "server does not accept 8-bit data (%s)", error));
			smtp_client_quit(&j->client);
			job_finish(j);
			return;
		}
		data = j->converted.data;
		len = j->converted.len;
	}
	j->nsent = 0;
	for (size_t i = 0; i < j->nrcpts; i++) {
		if (j->rcpts[i].decided)
			continue;
		j->sent[j->nsent] = (struct smtp_client_rcpt){
			.addr = j->rcpts[i].address, .notify = j->rcpts[i].notify,
			.orcpt = j->rcpts[i].orcpt,
		};
		j->sent_index[j->nsent++] = i;
	}
	memset(m, 0, sizeof(*m));
	m->sender = j->sender;
	m->rcpts = j->sent;
	m->n_rcpts = j->nsent;
	m->data = data;
	m->len = len;
	m->flags = (data == j->data && (j->flags & STORE_QUEUE_F_8BIT) ? SMTP_MSG_8BIT : 0) |
		  (j->flags & STORE_QUEUE_F_SMTPUTF8 ? SMTP_MSG_SMTPUTF8 : 0) |
		  (j->flags & STORE_QUEUE_F_REQUIRETLS ? SMTP_MSG_REQUIRETLS : 0);
	m->ret = j->ret == DSN_RET_FULL ? SMTP_DSN_RET_FULL : j->ret == DSN_RET_HDRS ? SMTP_DSN_RET_HDRS
										  : SMTP_DSN_RET_NONE;
	m->envid = j->envid;
	j->conn_uses++;
	if (smtp_client_send(c, m, client_sent, j, &error) < 0) {
		smtp_client_free(&j->client);
		if (j->reused && !j->no_reuse) {
			/* the cached session could not take it: a fresh one */
			j->no_reuse = true;
			if (j->addr_i > 0)
				j->addr_i--;
		} else {
			set_last_error(j, "%s: %s", j->host, error);
		}
		connect_next(j);
	}
}

static void connect_next(struct job *j)
{
	struct queue *q = j->q;
	struct smtp_client_params p = { 0 };
	struct sockaddr_storage ss = { 0 };
	const char *error = NULL;
	char ip[INET6_ADDRSTRLEN];

	if (q->stopped)
		return;
	if (j->addr_i >= j->naddrs) {
		next_host(j);
		return;
	}
	const struct dns_address *a = &j->addrs[j->addr_i++];
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)j->port);
		s6->sin6_addr = a->addr.v6;
		p.addrlen = sizeof(*s6);
		inet_ntop(AF_INET6, &a->addr.v6, ip, sizeof(ip));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)j->port);
		s4->sin_addr = a->addr.v4;
		p.addrlen = sizeof(*s4);
		inet_ntop(AF_INET, &a->addr.v4, ip, sizeof(ip));
	}
	p.addr = (const struct sockaddr *)&ss;
	memcpy(j->ip, ip, sizeof(j->ip));
	p.host = j->host;
	p.helo_name = q->d.cfg->hostname;
	if (job_tls_policy(j, &p.tls) < 0) {
		/* RFC 8689 4.2.1: never to a host we cannot authenticate */
		set_last_error(j, "5.7.10 %s: REQUIRETLS needs TLS authenticated by DANE or "
			       "MTA-STS, which this host does not have", j->host);
		log_info("queue", "event=requiretls_skip qid=%s host=%s", j->qid, log_quote(j->host));
		j->rtls_skipped++;
		j->addr_i = j->naddrs;
		next_host(j);
		return;
	}
	j->sts_downgrade = false;
	j->tls = p.tls;
	p.tls_ctx = q->d.tls;
	p.implicit_tls = j->smarthost && q->d.cfg->queue.smarthost.implicit_tls;
	p.tlsa = j->tlsa;
	p.n_tlsa = j->ntlsa;
	p.log_id = j->qid;
	if (j->smarthost && q->d.cfg->queue.smarthost.user != NULL) {
		p.auth_user = q->d.cfg->queue.smarthost.user;
		p.auth_pass = q->smarthost_pass != NULL ? q->smarthost_pass : "";
	}
	free(j->conn_key);
	j->conn_key = conn_key(&p, ip, j->port);
	j->reused = false;
	if (j->conn_key != NULL && !j->no_reuse &&
	    (j->client = idle_take(q, j->conn_key, &j->conn_uses, &j->conn_tls)) != NULL) {
		j->reused = true;
		log_info("queue", "event=reuse qid=%s host=%s ip=%s port=%u uses=%u", j->qid,
			 log_quote(j->host), ip, j->port, j->conn_uses);
		job_send(j);
		return;
	}
	j->conn_uses = 0;
	/* open sessions, busy (in_flight, this job included) or idle, stay
	 * within queue.connections */
	while (q->nidle > 0 && q->in_flight + q->nidle > q->d.cfg->queue.connections)
		idle_drop_oldest(q);
	log_info("queue", "event=connect qid=%s host=%s ip=%s port=%u tls=%s%s%s", j->qid,
		 log_quote(j->host), ip, j->port,
		 p.tls == SMTP_TLS_DANE ? "dane" : p.tls == SMTP_TLS_REQUIRE_VERIFY ? "verify"
										: "opportunistic",
		 p.implicit_tls ? " implicit_tls=yes" : "", j->smarthost ? " smarthost=yes" : "");
	j->client = smtp_client_connect(q->d.base, &p, client_ready, j, &error);
	if (j->client == NULL) {
		set_last_error(j, "%s [%s]: %s", j->host, ip, error);
		connect_next(j);
	}
}

static void tlsa_done(const struct dns_tlsa_result *res, void *ctx)
{
	struct job *j = ctx;

	j->query = NULL;
	if (res->status == DNS_BOGUS || res->status == DNS_TEMPFAIL) {
		/* RFC 7672 2.1.1: TLSA we cannot trust or read: not this host
		 * (unless the sender asked to go on: TLS-Required: No) */
		set_last_error(j, "%s: TLSA lookup %s", j->host, dns_status_name(res->status));
		if (res->status == DNS_BOGUS)
			tls_note(j, "tlsa", j->host, "", TLSRPT_DNSSEC_INVALID, "TLSA lookup bogus");
		if (!j->tls_optional) {
			next_host(j);
			return;
		}
		log_info("queue", "event=tls_policy_ignored qid=%s host=%s tls=dane reason=%s",
			 j->qid, log_quote(j->host), "TLS-Required: No");
	}
	if (res->status == DNS_OK && res->secure) {
		j->tlsa = xcalloc(res->count ? res->count : 1, sizeof(*j->tlsa));
		for (size_t i = 0; i < res->count; i++) {
			unsigned char *d = xmalloc(res->records[i].len ? res->records[i].len : 1);
			memcpy(d, res->records[i].data, res->records[i].len);
			j->tlsa[j->ntlsa++] = (struct smtp_tlsa){
				.usage = res->records[i].usage, .selector = res->records[i].selector,
				.mtype = res->records[i].mtype, .data = d, .len = res->records[i].len,
			};
		}
	}
	connect_next(j);
}

static void addr_done(const struct dns_addr_result *res, void *ctx)
{
	struct job *j = ctx;

	j->query = NULL;
	if (res->status != DNS_OK || res->count == 0) {
		set_last_error(j, "%s: address lookup %s", j->host, dns_status_name(res->status));
		next_host(j);
		return;
	}
	j->addrs = xmalloc(res->count * sizeof(*j->addrs));
	memcpy(j->addrs, res->addrs, res->count * sizeof(*j->addrs));
	j->naddrs = res->count;
	j->addr_i = 0;
	if (j->mx_secure && res->secure) {
		j->query = dns_tlsa(j->q->d.dns, j->port, j->host, tlsa_done, j);
		if (j->query != NULL)
			return;
	}
	connect_next(j);
}

static void next_host(struct job *j)
{
	struct dns_address a = { 0 };

	free(j->addrs);
	j->addrs = NULL;
	j->naddrs = j->addr_i = 0;
	for (size_t i = 0; i < j->ntlsa; i++)
		free((void *)j->tlsa[i].data);
	free(j->tlsa);
	j->tlsa = NULL;
	j->ntlsa = 0;
	if (j->host_i >= j->nhosts) {
		job_finish(j);   /* every host tried: the undecided are deferred */
		return;
	}
	free(j->host);
	j->host = xstrdup(j->hosts[j->host_i++]);
	/* a route may name an address */
	if (inet_pton(AF_INET, j->host, &a.addr.v4) == 1) {
		a.family = AF_INET;
	} else if (inet_pton(AF_INET6, j->host, &a.addr.v6) == 1) {
		a.family = AF_INET6;
	} else {
		j->query = dns_addresses(j->q->d.dns, j->host, DNS_ADDR_V6_FIRST, addr_done, j);
		if (j->query == NULL) {
			set_last_error(j, "%s: cannot look up the address", j->host);
			next_host(j);
		}
		return;
	}
	j->addrs = xmalloc(sizeof(*j->addrs));
	j->addrs[0] = a;
	j->naddrs = 1;
	connect_next(j);
}

/* ---- per-destination rate limits (rate-limit.h) ---- */

static void rate_wake(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;

	(void)fd; (void)what;
	if (!q->stopped)
		scan_soon(q);
}

/* Arm the wake-up for the earliest end of a parked window. */
static void rate_arm(struct queue *q)
{
	time_t now = clock_now(), wake = queue_rate_next_wake(q->rate, now);
	struct timeval tv = { wake > now ? wake - now : 1, 0 };

	if (wake != 0)
		evtimer_add(q->rate_timer, &tv);
}

/* May j go to its next hops hosts[0..n) now?  Takes one message from
 * the budget of the rule that applies (the first time for j).  When the
 * budget is spent, j's domain is parked until the window ends and j is
 * dropped without an outcome: its recipients stay due, no attempt is
 * counted, no DSN goes out.  false when j was dropped (freed). */
static bool rate_admit(struct job *j, const char *const *hosts, size_t n)
{
	struct queue *q = j->q;
	time_t now = clock_now(), until;
	bool first;
	int rule;

	if (j->rate_taken || q->rate == NULL ||
	    (rule = queue_rate_match(q->rate, j->domain, hosts, n)) < 0)
		return true;
	if (queue_rate_take(q->rate, rule, now, &until, &first) == 0) {
		j->rate_taken = true;
		return true;
	}
	const struct config_rate_limit *c = &q->d.cfg->queue.rate_limit[rule];
	if (first)
		log_info("queue", "event=rate_limited %s=%s domain=%s messages=%u seconds=%u "
			 "until=%lld", c->domain != NULL ? "rule_domain" : "rule_mx",
			 log_quote(c->domain != NULL ? c->domain : c->mx), log_quote(j->domain),
			 c->messages, c->seconds, (long long)until);
	queue_rate_park(q->rate, j->domain, now, until);
	rate_arm(q);
	job_unlink(j);
	job_free(j);
	return false;
}

static void mx_done(const struct dns_mx_result *res, void *ctx)
{
	struct job *j = ctx;

	j->query = NULL;
	switch (res->status) {
	case DNS_OK:
		break;
	case DNS_NXDOMAIN:
		decide_all(j, STORE_QUEUE_BOUNCED,
			   xasprintf("5.1.2 the domain %s does not exist", j->domain));
		job_finish(j);
		return;
	case DNS_NULL_MX:
		decide_all(j, STORE_QUEUE_BOUNCED,
			   xasprintf("5.1.10 the domain %s accepts no mail (null MX)", j->domain));
		job_finish(j);
		return;
	case DNS_NODATA:
		decide_all(j, STORE_QUEUE_BOUNCED,
			   xasprintf("5.1.2 the domain %s has no mail server", j->domain));
		job_finish(j);
		return;
	default:
		set_last_error(j, "4.4.3 DNS lookup of %s failed: %s%s%s", j->domain,
			       dns_status_name(res->status), res->error ? ": " : "",
			       res->error ? res->error : "");
		job_finish(j);
		return;
	}
	j->hosts = xcalloc(res->count ? res->count : 1, sizeof(*j->hosts));
	for (size_t i = 0; i < res->count; i++) {
		const char *name = res->hosts[i].name;
		if (j->sts.mode != MTA_STS_MODE_NONE && !mta_sts_mx_matches(&j->sts, name)) {
			/* RFC 8461 4.1: an MX host the policy does not name */
			log_info("queue", "event=mta_sts_report qid=%s domain=%s mode=%s host=%s "
				 "result=mx-mismatch", j->qid, log_quote(j->domain),
				 mta_sts_mode_name(j->sts.mode), log_quote(name));
			tls_note(j, NULL, name, "", TLSRPT_VALIDATION_FAILURE, "mx-mismatch");
			if (j->sts.mode == MTA_STS_MODE_ENFORCE && !j->tls_optional) {
				set_last_error(j, "4.7.5 MX host %s does not match the MTA-STS "
					       "policy of %s", name, j->domain);
				continue;
			}
		}
		j->hosts[j->nhosts++] = xstrdup(name);
	}
	j->mx_secure = res->secure;
	if (!rate_admit(j, (const char *const *)j->hosts, j->nhosts))
		return;   /* parked: j is gone */
	next_host(j);
}

/* ---- MTA-STS (RFC 8461) ---- */

static void start_mx(struct job *j)
{
	j->query = dns_mx(j->q->d.dns, j->domain, mx_done, j);
	if (j->query == NULL) {
		set_last_error(j, "4.4.3 cannot look up the MX of %s", j->domain);
		job_finish(j);
	}
}

static void sts_policy_copy(struct mta_sts_policy *dst, const struct mta_sts_policy *src)
{
	mta_sts_policy_clear(dst);
	dst->mode = src->mode;
	dst->max_age = src->max_age;
	dst->mx = xcalloc(src->mx_count ? src->mx_count : 1, sizeof(*dst->mx));
	for (size_t i = 0; i < src->mx_count; i++)
		dst->mx[i] = xstrdup(src->mx[i]);
	dst->mx_count = src->mx_count;
}

static void sts_cache_prune(struct queue *q);

/* The unexpired policy of domain in the store's cache (store/mta-sts.h),
 * put in the memory cache; NULL when there is none (or it is unreadable). */
static struct sts_entry *sts_store_load(struct queue *q, const char *domain, time_t now)
{
	struct store_mta_sts row;
	struct mta_sts_policy pol = { 0 };
	const char *error = NULL;
	struct sts_entry *e;
	int rc = store_mta_sts_get(q->d.store, domain, now, &row, &error);

	if (rc <= 0) {
		if (rc < 0)
			log_error("queue", "event=mta_sts_cache_failed domain=%s error=%s",
				  log_quote(domain), log_quote(error));
		return NULL;
	}
	if (strlen(row.policy_id) > MTA_STS_ID_MAX ||
	    mta_sts_policy_parse(row.policy, strlen(row.policy), &pol, &error) < 0) {
		log_error("queue", "event=mta_sts_cache_failed domain=%s error=%s",
			  log_quote(domain), log_quote(error != NULL ? error : "bad policy id"));
		store_mta_sts_clear(&row);
		return NULL;
	}
	sts_cache_prune(q);
	e = xcalloc(1, sizeof(*e));
	e->domain = xstrdup(domain);
	e->policy = pol;
	snprintf(e->id, sizeof(e->id), "%s", row.policy_id);
	e->expires = row.expires;
	e->next = q->sts_cache;
	q->sts_cache = e;
	log_info("queue", "event=mta_sts_cache_loaded domain=%s id=%s mode=%s expires=%lld",
		 log_quote(domain), e->id, mta_sts_mode_name(pol.mode), (long long)e->expires);
	store_mta_sts_clear(&row);
	return e;
}

/* The unexpired cached policy of domain: from memory, else from the
 * store (a policy fetched before a restart, RFC 8461 5.1); or NULL. */
static struct sts_entry *sts_cache_find(struct queue *q, const char *domain)
{
	time_t now = clock_now();

	for (struct sts_entry *e = q->sts_cache; e != NULL; e = e->next)
		if (strcasecmp(e->domain, domain) == 0)
			return e->expires > now ? e : NULL;
	return sts_store_load(q, domain, now);
}

static void sts_stored(void *ctx, const struct store_write_result *r)
{
	(void)ctx;
	if (r->status < 0)
		log_error("queue", "event=mta_sts_cache_failed error=%s",
			  log_quote(r->error ? r->error : ""));
	else if (r->count > 0)
		log_info("queue", "event=mta_sts_cache_pruned expired=%zu", r->count);
}

/* Keep e (just fetched) in the store's cache, replacing the domain's
 * previous policy; expired ones go in the same transaction. */
static void sts_store_save(struct queue *q, const struct sts_entry *e, time_t fetched)
{
	struct buf text;

	buf_init(&text, BUF_UNLIMITED);
	mta_sts_policy_format(&e->policy, &text);
	struct store_mta_sts row = {
		.domain = e->domain, .policy_id = e->id, .policy = buf_cstr(&text),
		.fetched = fetched, .expires = e->expires,
	};
	if (store_mta_sts_put(q->d.store, q->d.base, &row, sts_stored, NULL) < 0)
		log_error("queue", "event=mta_sts_cache_failed domain=%s error=%s",
			  log_quote(e->domain), "the store refused the policy");
	buf_free(&text);
}

/* Drop the store's expired policies (at start). */
static void sts_store_prune(struct queue *q)
{
	if (store_mta_sts_prune(q->d.store, q->d.base, clock_now(), sts_stored, NULL) < 0)
		log_error("queue", "event=mta_sts_cache_failed error=%s",
			  "the store refused the prune");
}

/* Drop expired policies, and the oldest ones past STS_CACHE_MAX (the
 * list is newest first), so the cache cannot grow without bound. */
static void sts_cache_prune(struct queue *q)
{
	time_t now = clock_now();
	size_t n = 0;

	for (struct sts_entry **p = &q->sts_cache; *p != NULL;) {
		struct sts_entry *e = *p;
		if (e->expires > now && n < STS_CACHE_MAX) {
			n++;
			p = &e->next;
			continue;
		}
		*p = e->next;
		mta_sts_policy_clear(&e->policy);
		free(e->domain);
		free(e);
	}
}

static void sts_cache_free(struct queue *q)
{
	while (q->sts_cache != NULL) {
		struct sts_entry *e = q->sts_cache;
		q->sts_cache = e->next;
		mta_sts_policy_clear(&e->policy);
		free(e->domain);
		free(e);
	}
}

/* Deliver under policy p (NULL: no policy). */
static void sts_use(struct job *j, const struct mta_sts_policy *p, const char *how)
{
	if (p != NULL && p->mode != MTA_STS_MODE_NONE) {
		sts_policy_copy(&j->sts, p);
		log_info("queue", "event=mta_sts qid=%s domain=%s mode=%s source=%s", j->qid,
			 log_quote(j->domain), mta_sts_mode_name(p->mode), how);
	}
	start_mx(j);
}

/* The fetch failed: a cached policy still counts (RFC 8461 5.1), else none. */
static void sts_fail(struct job *j, const char *reason)
{
	struct sts_entry *e = sts_cache_find(j->q, j->domain);

	log_info("queue", "event=mta_sts_fetch_failed qid=%s domain=%s reason=%s", j->qid,
		 log_quote(j->domain), log_quote(reason));
	/* RFC 8460 4.3.2: the policy could not be fetched, read or trusted */
	tls_note(j, "sts", "", "",
		 strncmp(reason, "policy: ", 8) == 0 ? TLSRPT_STS_INVALID :
		 strstr(reason, "SSL") != NULL || strstr(reason, "certificate") != NULL
			? TLSRPT_STS_WEBPKI_INVALID : TLSRPT_STS_FETCH_ERROR, reason);
	sts_use(j, e != NULL ? &e->policy : NULL, "cache");
}

static void sts_fetched(int status, const char *body, size_t len, const char *error, void *ctx)
{
	struct job *j = ctx;
	struct queue *q = j->q;
	struct mta_sts_policy pol = { 0 };
	const char *perr = NULL;
	struct sts_entry *e;

	j->fetch = NULL;
	if (status < 0) {
		char *why = xasprintf("policy fetch: %s", error);
		sts_fail(j, why);
		free(why);
		return;
	}
	if (mta_sts_policy_parse(body, len, &pol, &perr) < 0) {
		char *why = xasprintf("policy: %s", perr);
		sts_fail(j, why);
		free(why);
		return;
	}
	log_info("queue", "event=mta_sts_policy domain=%s id=%s mode=%s max_age=%u mx=%zu",
		 log_quote(j->domain), j->sts_txt.id, mta_sts_mode_name(pol.mode), pol.max_age,
		 pol.mx_count);
	sts_cache_prune(q);
	for (e = q->sts_cache; e != NULL; e = e->next)
		if (strcasecmp(e->domain, j->domain) == 0)
			break;
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->domain = xstrdup(j->domain);
		e->next = q->sts_cache;
		q->sts_cache = e;
	}
	mta_sts_policy_clear(&e->policy);
	e->policy = pol;
	memcpy(e->id, j->sts_txt.id, sizeof(e->id));
	e->expires = clock_now() + (time_t)pol.max_age;
	if (pol.max_age > 0)
		sts_store_save(q, e, clock_now());
	sts_use(j, &e->policy, "fetched");
}

static void sts_addr_done(const struct dns_addr_result *res, void *ctx)
{
	struct job *j = ctx;
	const struct config *cfg = j->q->d.cfg;
	const char *error = NULL;
	char *host = xasprintf("mta-sts.%s", j->domain);

	j->query = NULL;
	if (res->status != DNS_OK || res->count == 0) {
		char *why = xasprintf("address of %s: %s", host, dns_status_name(res->status));
		sts_fail(j, why);
		free(why);
		free(host);
		return;
	}
	struct mta_sts_fetch_params p = {
		.host = host, .port = cfg->queue.mta_sts.port, .addrs = res->addrs,
		.n_addrs = res->count, .ca_file = cfg->queue.mta_sts.ca_file,
		.timeout = cfg->queue.mta_sts.timeout,
	};
	j->fetch = mta_sts_fetch_start(j->q->d.base, &p, sts_fetched, j, &error);
	free(host);
	if (j->fetch == NULL)
		sts_fail(j, error);
}

static void sts_txt_done(const struct dns_txt_result *res, void *ctx)
{
	struct job *j = ctx;
	struct sts_entry *e = sts_cache_find(j->q, j->domain);
	struct mta_sts_record rec;
	const char *error = NULL;
	size_t found = 0;

	j->query = NULL;
	for (size_t i = 0; res->status == DNS_OK && i < res->count; i++) {
		int rc = mta_sts_txt_parse(res->records[i].text, res->records[i].len, &rec, &error);
		if (rc > 0 && found++ == 0)
			j->sts_txt = rec;
		else if (rc < 0)
			found += 2;   /* a malformed STS record: as if none (RFC 8461 3.1) */
	}
	j->has_sts_txt = found == 1;
	if (!j->has_sts_txt || (e != NULL && strcmp(e->id, j->sts_txt.id) == 0)) {
		/* no (usable) record: a cached policy still applies (RFC 8461 5.1) */
		sts_use(j, e != NULL ? &e->policy : NULL, "cache");
		return;
	}
	char *host = xasprintf("mta-sts.%s", j->domain);
	j->query = dns_addresses(j->q->d.dns, host, DNS_ADDR_V6_FIRST, sts_addr_done, j);
	free(host);
	if (j->query == NULL)
		sts_fail(j, "cannot look up the policy host");
}

/* Find the domain's MTA-STS policy, then its MX hosts. */
static void sts_begin(struct job *j)
{
	char *name;

	if (!j->q->d.cfg->queue.mta_sts.enabled || j->domain[0] == '[') {
		start_mx(j);
		return;
	}
	name = xasprintf("_mta-sts.%s", j->domain);
	j->query = dns_txt(j->q->d.dns, name, sts_txt_done, j);
	free(name);
	if (j->query == NULL)
		start_mx(j);
}

/* ---- starting jobs ---- */

static int read_file(const char *path, char **data_r, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct buf b;
	char chunk[65536];

	if (fd < 0)
		return -1;
	buf_init(&b, BUF_UNLIMITED);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			buf_free(&b);
			return -1;
		}
		if (n == 0)
			break;
		buf_append(&b, chunk, (size_t)n);
	}
	close(fd);
	*len_r = b.len;
	*data_r = buf_steal(&b);
	return 0;
}

/* ENVID=... RET=FULL|HDRS from the DSN string kept with the message. */
static void parse_dsn(struct job *j, const char *dsn)
{
	for (const char *p = dsn; p != NULL && *p;) {
		size_t n = strcspn(p, " ");
		if (n > 6 && strncmp(p, "ENVID=", 6) == 0) {
			free(j->envid);
			j->envid = strndup(p + 6, n - 6);
		} else if (n == 8 && strncmp(p, "RET=FULL", 8) == 0) {
			j->ret = DSN_RET_FULL;
		} else if (n == 8 && strncmp(p, "RET=HDRS", 8) == 0) {
			j->ret = DSN_RET_HDRS;
		}
		p += n;
		p += strspn(p, " ");
	}
}

static const struct config_route *route_for(const struct config *cfg, const char *domain)
{
	for (unsigned i = 0; i < cfg->queue.route_count; i++)
		if (strcasecmp(cfg->queue.route[i].domain, domain) == 0)
			return &cfg->queue.route[i];
	return NULL;
}

static void job_start(struct queue *q, const struct store_queue_msg *m, const char *domain)
{
	const struct config *cfg = q->d.cfg;
	struct job *j = xcalloc(1, sizeof(*j));
	time_t now = clock_now();
	bool pending = false;

	j->q = q;
	j->qid = xstrdup(m->qid);
	j->sender = xstrdup(m->sender);
	j->domain = xstrdup(domain);
	j->path = xstrdup(m->path);
	j->flags = m->flags;
	j->created = m->created;
	buf_init(&j->converted, BUF_UNLIMITED);
	parse_dsn(j, m->dsn);
	j->rcpts = xcalloc(m->rcpt_count, sizeof(*j->rcpts));
	for (size_t i = 0; i < m->rcpt_count; i++) {
		const struct store_queue_rcpt *r = &m->rcpts[i];
		if (strcasecmp(r->domain, domain) != 0 || r->state >= STORE_QUEUE_DELIVERED ||
		    r->next_attempt > now)
			continue;
		struct job_rcpt *jr = &j->rcpts[j->nrcpts++];
		jr->id = r->id;
		jr->address = xstrdup(r->address);
		jr->orcpt = r->orcpt ? xstrdup(r->orcpt) : NULL;
		jr->notify = r->notify;
		jr->attempts = r->attempts;
		jr->warned = r->warned;
		jr->give_up = r->give_up;
		if (r->give_up)
			decide(jr, STORE_QUEUE_BOUNCED, NULL, "5.0.0 returned by the administrator");
		else
			pending = true;
	}
	j->sent = xcalloc(j->nrcpts ? j->nrcpts : 1, sizeof(*j->sent));
	j->sent_index = xcalloc(j->nrcpts ? j->nrcpts : 1, sizeof(*j->sent_index));
	j->next = q->jobs;
	q->jobs = j;
	q->in_flight++;
	if (j->nrcpts == 0) {
		job_unlink(j);
		job_free(j);
		return;
	}
	if (read_file(j->path, &j->data, &j->len) < 0) {
		log_error("queue", "event=read_failed qid=%s path=%s error=%s", j->qid,
			  log_quote(j->path), log_quote(strerror(errno)));
		set_last_error(j, "4.3.0 cannot read the queued message");
		job_finish(j);
		return;
	}
	job_tls_request(j);
	if (!pending) {
		job_finish(j);
		return;
	}
	const struct config_route *route = route_for(cfg, domain);
	if (route != NULL) {
		j->route = true;
		j->hosts = xcalloc(1, sizeof(*j->hosts));
		j->hosts[j->nhosts++] = xstrdup(route->host);
		j->port = route->port;
		if (rate_admit(j, (const char *const *)j->hosts, j->nhosts))
			next_host(j);
		return;
	}
	if (cfg->queue.smarthost.host != NULL) {
		j->hosts = xcalloc(1, sizeof(*j->hosts));
		j->hosts[j->nhosts++] = xstrdup(cfg->queue.smarthost.host);
		j->port = cfg->queue.smarthost.port;
		j->smarthost = true;
		if (rate_admit(j, (const char *const *)j->hosts, j->nhosts))
			next_host(j);
		return;
	}
	j->port = cfg->queue.remote_port;
	/* a domain rule applies before any lookup; mx rules after the MX lookup */
	if (rate_admit(j, NULL, 0))
		sts_begin(j);
}

struct scan_ctx {
	struct queue *q;
};

static int scan_message(void *ctx, const struct store_queue_msg *m)
{
	struct scan_ctx *c = ctx;
	struct queue *q = c->q;
	const struct config *cfg = q->d.cfg;
	time_t now = clock_now();

	for (size_t i = 0; i < m->rcpt_count; i++) {
		const char *domain = m->rcpts[i].domain;
		unsigned per_domain;
		bool seen = false;

		if (q->in_flight >= cfg->queue.connections)
			return 1;
		if (m->rcpts[i].state >= STORE_QUEUE_DELIVERED || m->rcpts[i].next_attempt > now)
			continue;
		for (size_t k = 0; k < i && !seen; k++)
			seen = strcasecmp(m->rcpts[k].domain, domain) == 0;
		if (seen || job_busy(q, m->qid, domain, &per_domain) ||
		    per_domain >= cfg->queue.connections_per_domain ||
		    queue_rate_parked(q->rate, domain, now))
			continue;
		job_start(q, m, domain);
	}
	return 0;
}

static void scan(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;
	struct store_queue_filter f = {
		.due = true, .pending_only = true, .now = clock_now(), .limit = QUEUE_SCAN_LIMIT,
	};
	struct scan_ctx c = { q };
	const char *error = NULL;

	(void)fd; (void)what;
	if (q->stopped || q->in_flight >= q->d.cfg->queue.connections)
		return;
	if (store_queue_list(q->d.store, &f, scan_message, &c, &error) < 0)
		log_error("queue", "event=scan_failed error=%s", log_quote(error));
}

static void scan_soon(struct queue *q)
{
	event_active(q->kick, EV_TIMEOUT, 0);
}

void queue_kick(struct queue *q)
{
	if (q != NULL)
		scan_soon(q);
}

static void tlsrpt_kick(void *ctx)
{
	queue_kick(ctx);
}

/* TLS reporting: the collector of results and the daily reports. */
static void tlsrpt_begin(struct queue *q)
{
	q->dmarc_daily = dmarcrep_service_start(q->d.base, q->d.store, q->d.cfg, tlsrpt_kick, q);
	q->dmarc_import = dmarcrep_import_start(q->d.base, q->d.store, q->d.cfg);
	if (!q->d.cfg->tlsrpt.enabled)
		return;
	q->tlsrpt = tlsrpt_collector_new(q->d.base, q->d.store, 5);
	q->tlsrpt_daily = tlsrpt_service_start(q->d.base, q->d.store, q->d.cfg, tlsrpt_kick, q);
}

struct queue *queue_start(const struct queue_deps *d, const char **error_r)
{
	struct queue *q;
	struct timeval tv = { d->cfg->queue.scan_interval, 0 };

	if (d->base == NULL || d->store == NULL || d->dns == NULL || d->cfg == NULL) {
		*error_r = "queue_start: missing dependency";
		return NULL;
	}
	if (d->cfg->queue.smarthost.user != NULL && d->cfg->queue.smarthost.password_file == NULL) {
		*error_r = "queue.smarthost.user needs queue.smarthost.password_file";
		return NULL;
	}
	q = xcalloc(1, sizeof(*q));
	q->d = *d;
	if (d->cfg->queue.smarthost.password_file != NULL) {
		char *pw;
		size_t len;
		if (read_file(d->cfg->queue.smarthost.password_file, &pw, &len) < 0) {
			log_error("queue", "event=smarthost_password_failed path=%s error=%s",
				  log_quote(d->cfg->queue.smarthost.password_file),
				  log_quote(strerror(errno)));
			*error_r = "cannot read queue.smarthost.password_file";
			free(q);
			return NULL;
		}
		/* the first line; a trailing CR LF is not part of the password */
		pw[strcspn(pw, "\r\n")] = '\0';
		q->smarthost_pass = pw;
	}
	if (q->d.tls == NULL) {
		/* the CA store for verified TLS (smarthost, MTA-STS) */
		q->d.tls = smtp_client_tls_ctx_create(d->cfg->queue.ca_file, NULL, error_r);
		if (q->d.tls == NULL) {
			free(q->smarthost_pass);
			free(q);
			return NULL;
		}
		q->own_tls = true;
	}
	q->timer = event_new(d->base, -1, EV_PERSIST, scan, q);
	q->kick = event_new(d->base, -1, 0, scan, q);
	tlsrpt_begin(q);   /* after q->kick: the daily run may kick the queue */
	q->rate = queue_rate_create(d->cfg->queue.rate_limit, d->cfg->queue.rate_limit_count);
	q->rate_timer = evtimer_new(d->base, rate_wake, q);
	sts_store_prune(q);
	event_add(q->timer, &tv);
	scan_soon(q);
	log_info("queue", "event=started scan_interval=%u connections=%u", d->cfg->queue.scan_interval,
		 d->cfg->queue.connections);
	return q;
}

void queue_pause(struct queue *q)
{
	if (q == NULL || q->stopped)
		return;
	q->stopped = true;
	event_del(q->timer);
	event_del(q->rate_timer);
	idle_close_all(q);
	/* abandon every attempt; one whose outcome the store is recording is
	 * freed by update_done when that commit completes */
	for (struct job **p = &q->jobs; *p != NULL;) {
		struct job *j = *p;
		if (j->updating) {
			p = &j->next;
			continue;
		}
		*p = j->next;
		q->in_flight--;
		job_free(j);
	}
	log_info("queue", "event=paused");
}

void queue_stop(struct queue **qp)
{
	struct queue *q = *qp;

	if (q == NULL)
		return;
	queue_pause(q);
	/* the loops have stopped: no update_done will come for the rest */
	while (q->jobs != NULL) {
		struct job *j = q->jobs;
		q->jobs = j->next;
		job_free(j);
	}
	tlsrpt_service_stop(&q->tlsrpt_daily);
	dmarcrep_service_stop(&q->dmarc_daily);
	dmarcrep_import_stop(&q->dmarc_import);
	tlsrpt_collector_free(&q->tlsrpt);
	event_free(q->timer);
	event_free(q->kick);
	event_free(q->rate_timer);
	queue_rate_free(&q->rate);
	if (q->own_tls)
		SSL_CTX_free(q->d.tls);
	config_srs_secrets_free(&q->srs);
	sts_cache_free(q);
	if (q->smarthost_pass != NULL)
		explicit_bzero(q->smarthost_pass, strlen(q->smarthost_pass));
	free(q->smarthost_pass);
	free(q);
	*qp = NULL;
}
