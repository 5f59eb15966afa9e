/* Receiving policy and local delivery (see receive.h).
 *
 * MX: a recipient must resolve to a local user (or alias); any other
 * domain is refused with 554 5.7.1 whatever the client's address, so Tern
 * is never an open relay.  Relay tricks (percent hack, bang paths, quoted
 * local parts holding '@', source routes, IP literals, trailing dots) all
 * reduce to "this domain is not ours" or "no such user here", because the
 * address parser takes the last domain and the directory only matches
 * exact local parts.
 * Submission: the authenticated user may send only as their own addresses
 * and aliases (per-domain policy), both in MAIL FROM (553 5.7.1) and in the
 * From header (550 5.7.1 at end of data).  Its remote recipients enter the
 * outbound queue (queue/) in the same commit as the local copies, with
 * their DSN NOTIFY/ORCPT and the message's 8-bit/SMTPUTF8/REQUIRETLS
 * flags (RFC 8689 4.1: the REQUIRETLS tag travels with the message).
 * A message from one of our senders passes through the signing hook
 * (queue/sign-hook.h) as it enters the queue; with no hook registered
 * that costs nothing.
 * Forwarding: an alias whose targets include remote addresses puts those
 * targets in the queue copy (ORCPT = the alias address), its envelope
 * sender rewritten with SRS (mail/srs.h, group srs of the config) when it
 * arrived on the MX port from a foreign domain, so SPF passes at the
 * destination; such mail is also ARC-sealed by the alias's domain through
 * the hook's seal callback (RFC 8617 5.1, docs/arc.md), unless our check
 * found its chain failed.  Mail to SRS0=/SRS1= addresses at the SRS domain is a bounce
 * coming back: only the null sender may send there (anything else would
 * let whoever saw one forwarded message mail the original sender through
 * us), the hash and age are checked (550 5.1.1 when wrong) and the message
 * goes to the reversed address with the null sender.
 * Quota: checked at RCPT with the SIZE parameter (452 4.2.2) and again with
 * the real size at end of data.  There, on the MX port, a user over quota
 * no longer fails the whole message when someone else gets it: the others
 * are delivered and the sender gets a DSN (5.2.2, RFC 3464) for that user,
 * as Postfix does; when nobody would get it the reply stays 452 4.2.2 so
 * the client retries.  Submission keeps the 452 (the user sees it at once).
 * SPF, DKIM, DMARC: on the MX port the message is checked first (receive-mailauth.c),
 * which adds the Authentication-Results field, or rejects (550 5.7.1, DMARC) or
 * defers it (451), and names the mailbox of the local copies (Junk when DMARC
 * quarantines it; forwarded copies leave unchanged).
 * Invariant: a DSN is only stored after the message's own commit succeeded,
 * so a 451 and the client's retry never send it twice. */
#include "smtp/receive.h"
#include "smtp/receive-mailauth.h"
#include "smtp/parse.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "mail/address.h"
#include "mail/downgrade.h"
#include "mail/dsn.h"
#include "mail/srs.h"
#include "mail/header.h"
#include "queue/queue.h"
#include "queue/sign-hook.h"
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *subaddr_sep(struct smtp_session *s)
{
	const char *sep = smtp_session_listener(s)->cfg->subaddress_separator;
	return sep != NULL ? sep : "";
}

/* ---- SRS: the secrets are read at first use and kept for the process ---- */

static pthread_mutex_t srs_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct config *srs_cfg;    /* whose secrets srs_secrets holds */
static char **srs_secrets;
static size_t srs_count;

enum receive_srs_op { RECEIVE_SRS_FORWARD, RECEIVE_SRS_REVERSE };

static const char *receive_srs_domain(const struct config *cfg)
{
	return cfg->srs.domain != NULL ? cfg->srs.domain : cfg->hostname;
}

/* srs_forward or srs_reverse of addr with cfg's secrets, appended to out.
 * Returns 0, 1 when SRS is not configured (out unchanged), or a negative
 * enum srs_error (SRS_ERR_CONFIG: the secrets file cannot be read, logged)
 * with *error_r. */
static int receive_srs(const struct config *cfg, enum receive_srs_op op, const char *addr,
		       struct buf *out, const char **error_r)
{
	int ret;

	if (cfg->srs.secrets_file == NULL)
		return 1;
	pthread_mutex_lock(&srs_lock);
	if (srs_cfg != cfg) {
		char **list = NULL, *err = NULL;
		int n = config_srs_secrets_load(cfg, &list, &err);
		if (n <= 0) {
			pthread_mutex_unlock(&srs_lock);
			log_error("smtp", "event=srs_unavailable error=%s",
				  log_quote(err != NULL ? err : "no secret"));
			free(err);
			*error_r = "the SRS secrets cannot be read";
			return SRS_ERR_CONFIG;
		}
		config_srs_secrets_free(&srs_secrets);
		srs_secrets = list;
		srs_count = (size_t)n;
		srs_cfg = cfg;
	}
	if (op == RECEIVE_SRS_FORWARD)
		ret = srs_forward((const char *const *)srs_secrets, srs_count,
				  receive_srs_domain(cfg), addr, out, error_r);
	else
		ret = srs_reverse((const char *const *)srs_secrets, srs_count, addr,
				  cfg->srs.max_age, out, error_r);
	pthread_mutex_unlock(&srs_lock);
	return ret;
}

/* Is to (formatted as addr) an SRS address of ours: SRS configured, the
 * SRS domain, an SRS0/SRS1 local part? */
static bool receive_is_srs_rcpt(const struct config *cfg, const struct address *to,
				const char *addr)
{
	return cfg->srs.secrets_file != NULL && to->local != NULL && to->domain != NULL &&
	       !to->ip_literal && strcasecmp(to->domain, receive_srs_domain(cfg)) == 0 &&
	       srs_is_srs(addr);
}

/* A bounce coming back to an SRS address: check it and resolve the
 * original sender into r (a foreign one becomes a local address with one
 * remote target, like a forwarding alias).  Returns 0, or -1 with reply. */
static int receive_srs_rcpt(struct smtp_session *s, const char *addr, struct store_rcpt *r,
			    struct smtp_reply *reply)
{
	const struct smtp_listener *l = smtp_session_listener(s);
	const char *error = NULL;
	struct buf orig;
	int ret;

	if (smtp_session_mail(s)->from.local != NULL) {
		smtp_reply_set(reply, 550, "5.7.1",
			       "<%s>: This address only accepts bounces (MAIL FROM:<>)", addr);
		return -1;
	}
	buf_init(&orig, 1 << 16);
	ret = receive_srs(l->cfg, RECEIVE_SRS_REVERSE, addr, &orig, &error);
	if (ret != 0) {
		log_info("smtp", "sid=%s event=srs_refused rcpt=%s error=%s", smtp_session_id(s),
			 log_quote(addr), log_quote(error != NULL ? error : "not configured"));
		if (ret == SRS_ERR_CONFIG || ret > 0)
			smtp_reply_set(reply, 451, "4.3.0", "<%s>: Temporary failure, try again later",
				       addr);
		else
			smtp_reply_set(reply, 550, "5.1.1", "<%s>: Invalid or expired SRS address",
				       addr);
		buf_free(&orig);
		return -1;
	}
	if (store_rcpt_resolve(l->store, buf_cstr(&orig), subaddr_sep(s), r, &error) < 0) {
		log_error("smtp", "sid=%s event=lookup_failed rcpt=%s error=%s", smtp_session_id(s),
			  log_quote(buf_cstr(&orig)), log_quote(error));
		smtp_reply_set(reply, 451, "4.3.0", "Temporary lookup failure, try again later");
		buf_free(&orig);
		return -1;
	}
	log_info("smtp", "sid=%s event=srs_reversed rcpt=%s to=%s", smtp_session_id(s),
		 log_quote(addr), log_quote(buf_cstr(&orig)));
	if (r->kind == STORE_RCPT_REMOTE) {
		r->kind = STORE_RCPT_LOCAL;
		r->remote = xcalloc(1, sizeof(*r->remote));
		r->remote[0] = buf_steal(&orig);
		r->remote_count = 1;
	}
	buf_free(&orig);
	return 0;
}

static void receive_mail(struct smtp_session *s, const struct smtp_mail_params *p,
			 struct smtp_reply *reply)
{
	const struct smtp_listener *l = smtp_session_listener(s);
	const char *error = NULL;
	char *from;
	int ret;

	if (l->role != SMTP_ROLE_SUBMISSION || p->from.local == NULL)
		return;
	from = address_format(&p->from);
	ret = store_sender_allowed(l->store, smtp_session_user_id(s), from, subaddr_sep(s), &error);
	if (ret < 0)
		smtp_reply_set(reply, 451, "4.3.0", "Temporary lookup failure");
	else if (ret == 0)
		smtp_reply_set(reply, 553, "5.7.1", "Sender address <%s> is not owned by %s", from,
			       smtp_session_user(s));
	if (ret <= 0)
		log_info("smtp", "sid=%s event=sender_refused user=%s from=%s error=%s",
			 smtp_session_id(s), log_quote(smtp_session_user(s)), log_quote(from),
			 log_quote(error ? error : "not owned"));
	free(from);
}

static void receive_free_rcpt(void *ctx)
{
	struct store_rcpt *r = ctx;
	store_rcpt_clear(r);
	free(r);
}

static void receive_rcpt(struct smtp_session *s, const struct smtp_rcpt_params *p,
			 struct smtp_reply *reply, void **ctx_r)
{
	const struct smtp_listener *l = smtp_session_listener(s);
	const struct smtp_mail_params *mail = smtp_session_mail(s);
	struct store_rcpt *r = xcalloc(1, sizeof(*r));
	const char *error = NULL;
	char *addr;

	if (p->to.domain == NULL)  /* <Postmaster> (RFC 5321 4.5.1) */
		addr = xasprintf("postmaster@%s", l->cfg->hostname);
	else
		addr = address_format(&p->to);
	if (p->to.ip_literal) {
		r->kind = STORE_RCPT_REMOTE;
	} else if (receive_is_srs_rcpt(l->cfg, &p->to, addr)) {
		if (receive_srs_rcpt(s, addr, r, reply) < 0)
			goto refuse;
	} else if (store_rcpt_resolve(l->store, addr, subaddr_sep(s), r, &error) < 0) {
		log_error("smtp", "sid=%s event=lookup_failed rcpt=%s error=%s", smtp_session_id(s),
			  log_quote(addr), log_quote(error));
		smtp_reply_set(reply, 451, "4.3.0", "Temporary lookup failure, try again later");
		goto refuse;
	}
	switch (r->kind) {
	case STORE_RCPT_REMOTE:
		if (l->role == SMTP_ROLE_MX) {
			smtp_reply_set(reply, 554, "5.7.1", "<%s>: Relay access denied", addr);
			goto refuse;
		}
		if (p->to.ip_literal) {
			smtp_reply_set(reply, 550, "5.1.2",
				       "<%s>: Address literals are not delivered to", addr);
			goto refuse;
		}
		if (l->queue == NULL) {
			/* the resolver could not start: see the worker's log */
			smtp_reply_set(reply, 451, "4.3.0",
				       "<%s>: Outbound delivery is not available now", addr);
			goto refuse;
		}
		/* submission by an authenticated user: to the outbound queue */
		free(addr);
		*ctx_r = r;
		return;
	case STORE_RCPT_UNKNOWN:
		smtp_reply_set(reply, 550, "5.1.1", "<%s>: Recipient address rejected: User unknown",
			       addr);
		goto refuse;
	case STORE_RCPT_LOCAL:
		break;
	}
	if (r->user_count == 0 && r->remote_count == 0) {
		smtp_reply_set(reply, 550, "5.1.1", "<%s>: Recipient address rejected: User unknown",
			       addr);
		goto refuse;
	}
	if (r->remote_count > 0 && l->queue == NULL) {
		/* an alias forwarding outside: never accept what we cannot deliver */
		smtp_reply_set(reply, 451, "4.3.0", "<%s>: Forwarding is not available now", addr);
		goto refuse;
	}
	for (size_t i = 0; i < r->user_count; i++) {
		int over = store_quota_exceeded(l->store, r->users[i].user_id,
						mail->size > 0 ? mail->size : 0, &error);
		if (over != 0) {
			if (over > 0)
				smtp_reply_set(reply, 452, "4.2.2", "<%s>: Mailbox full", addr);
			else
				smtp_reply_set(reply, 451, "4.3.0", "Temporary lookup failure");
			goto refuse;
		}
	}
	free(addr);
	*ctx_r = r;
	return;
refuse:
	log_info("smtp", "sid=%s event=rcpt_refused ip=%s rcpt=%s code=%d", smtp_session_id(s),
		 smtp_session_ip(s), log_quote(addr), reply->code);
	free(addr);
	receive_free_rcpt(r);
}

/* ---- end of data ---- */

struct from_check {
	struct smtp_session *s;
	bool refused;
	char *bad;
};

static void from_check_cb(void *ctx, const struct address *a)
{
	struct from_check *fc = ctx;
	const struct smtp_listener *l = smtp_session_listener(fc->s);
	const char *error;
	char *addr;

	if (fc->refused)
		return;
	addr = address_format(a);
	if (store_sender_allowed(l->store, smtp_session_user_id(fc->s), addr, subaddr_sep(fc->s),
				 &error) != 1) {
		fc->refused = true;
		fc->bad = addr;
		return;
	}
	free(addr);
}

/* Submission: every address in From: must belong to the user.  Returns
 * false with *reply set when it does not. */
static bool receive_check_from(struct smtp_session *s, const struct buf *msg,
			       struct smtp_reply *reply)
{
	struct header_field f;
	struct from_check fc = { s, false, NULL };
	const char *error = NULL;
	unsigned count = 0;

	if (header_find(msg->data, msg->len, "From", &f, &count) <= 0)
		return true;   /* no From: nothing to impersonate */
	if (count > 1) {
		smtp_reply_set(reply, 550, "5.6.0", "Message has more than one From header");
		return false;
	}
	char *value = header_value_unfold(f.value);
	int n = address_parse_list(value, strlen(value), ADDRESS_ALLOW_UTF8, from_check_cb, &fc,
				   &error);
	free(value);
	if (n <= 0) {
		smtp_reply_set(reply, 550, "5.6.0", "Cannot parse the From header");
		return false;
	}
	if (fc.refused) {
		smtp_reply_set(reply, 550, "5.7.1", "From header address <%s> is not owned by %s",
			       fc.bad, smtp_session_user(s));
		log_info("smtp", "sid=%s event=from_refused user=%s from=%s", smtp_session_id(s),
			 log_quote(smtp_session_user(s)), log_quote(fc.bad));
		free(fc.bad);
		return false;
	}
	return true;
}

/* DSN parameters kept with each copy for the queue (printable, no CR/LF:
 * the parser only lets printable ASCII through). */
static char *receive_dsn_string(struct smtp_session *s)
{
	const struct smtp_mail_params *m = smtp_session_mail(s);
	struct buf b;
	buf_init(&b, 1 << 20);

	if (m->envid != NULL)
		buf_printf(&b, "ENVID=%s ", m->envid);
	if (m->ret != SMTP_RET_UNSET)
		buf_printf(&b, "RET=%s ", m->ret == SMTP_RET_FULL ? "FULL" : "HDRS");
	for (unsigned i = 0; i < smtp_session_rcpt_count(s); i++) {
		const struct smtp_rcpt_params *p = smtp_session_rcpt_params(s, i);
		if (p->notify == 0 && p->orcpt == NULL)
			continue;
		buf_printf(&b, "RCPT=<%s>", smtp_session_rcpt_address(s, i));
		if (p->notify != 0)
			buf_printf(&b, " NOTIFY=%s%s%s%s", p->notify & SMTP_NOTIFY_NEVER ? "NEVER" : "",
				   p->notify & SMTP_NOTIFY_SUCCESS ? "SUCCESS," : "",
				   p->notify & SMTP_NOTIFY_FAILURE ? "FAILURE," : "",
				   p->notify & SMTP_NOTIFY_DELAY ? "DELAY," : "");
		if (p->orcpt != NULL)
			buf_printf(&b, " ORCPT=%s", p->orcpt);
		buf_append_str(&b, " ");
	}
	if (b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	b.data[--b.len] = '\0';
	return buf_steal(&b);
}

struct delivery_wait {
	struct smtp_session *s;
	size_t size;
	unsigned copies;
	bool queued;
	char *dsn_to;           /* over-quota DSN for this sender, stored after the commit */
	struct buf dsn_msg;
};

static void receive_dsn_stored(void *ctx, int status, const char *error)
{
	char *to = ctx;

	if (status < 0)
		log_error("smtp", "event=dsn_failed to=%s error=%s", log_quote(to), log_quote(error));
	free(to);
}

/* Store the over-quota DSN of w: in the sender's INBOX when the sender is
 * one of our users, else through the queue (null sender: no bounce loop). */
static void receive_send_dsn(struct smtp_session *s, struct delivery_wait *w)
{
	const struct smtp_listener *l = smtp_session_listener(s);
	struct store_rcpt owner = { 0 };
	struct store_delivery_rcpt *local = NULL;
	struct store_queue_rcpt_in remote = { .address = w->dsn_to };
	const char *error = NULL;
	struct store_delivery d = {
		.return_path = "", .body = buf_cstr(&w->dsn_msg), .body_len = w->dsn_msg.len,
		.internal_date = clock_now(),
	};

	if (store_rcpt_resolve(l->store, w->dsn_to, subaddr_sep(s), &owner, &error) < 0) {
		log_error("smtp", "sid=%s id=%s event=dsn_failed to=%s error=%s", smtp_session_id(s),
			  smtp_session_msgid(s), log_quote(w->dsn_to), log_quote(error));
		return;
	}
	if (owner.kind == STORE_RCPT_LOCAL && owner.user_count > 0) {
		local = store_rcpt_deliveries(&owner);
		d.rcpts = local;
		d.rcpt_count = owner.user_count;
	} else if (owner.kind == STORE_RCPT_REMOTE && l->queue != NULL) {
		d.remote = &remote;
		d.remote_count = 1;
	} else {
		log_info("smtp", "sid=%s id=%s event=dsn_dropped to=%s reason=%s", smtp_session_id(s),
			 smtp_session_msgid(s), log_quote(w->dsn_to),
			 owner.kind == STORE_RCPT_REMOTE ? "no queue" : "unknown local sender");
		store_rcpt_clear(&owner);
		return;
	}
	if (store_deliver(l->store, smtp_session_base(s), &d, receive_dsn_stored,
			  xstrdup(w->dsn_to)) < 0)
		log_error("smtp", "sid=%s id=%s event=dsn_failed to=%s error=%s", smtp_session_id(s),
			  smtp_session_msgid(s), log_quote(w->dsn_to), "the store refused the DSN");
	else
		log_info("smtp", "sid=%s id=%s event=dsn reason=over_quota to=%s", smtp_session_id(s),
			 smtp_session_msgid(s), log_quote(w->dsn_to));
	if (d.remote_count > 0)
		queue_kick(l->queue);
	free(local);
	store_rcpt_clear(&owner);
}

static void receive_stored(void *ctx, int status, const char *error)
{
	struct delivery_wait *w = ctx;
	struct smtp_session *s = w->s;
	struct smtp_reply reply = { 0 };

	if (status < 0) {
		log_error("smtp", "sid=%s id=%s event=store_failed error=%s", smtp_session_id(s),
			  smtp_session_msgid(s), log_quote(error));
		smtp_reply_set(&reply, 451, "4.3.0", "Temporary storage failure, try again later");
	} else {
		const struct smtp_mail_params *m = smtp_session_mail(s);
		char *from = address_format(&m->from);
		log_info("smtp", "sid=%s id=%s event=delivered ip=%s from=%s rcpts=%u copies=%u size=%zu%s",
			 smtp_session_id(s), smtp_session_msgid(s), smtp_session_ip(s), log_quote(from),
			 smtp_session_rcpt_count(s), w->copies, w->size,
			 m->requiretls ? " requiretls=yes" : "");
		free(from);
		if (w->dsn_to != NULL)
			receive_send_dsn(s, w);
	}
	if (status == 0 && w->queued)
		queue_kick(smtp_session_listener(s)->queue);
	free(w->dsn_to);
	buf_free(&w->dsn_msg);
	free(w);
	smtp_session_data_done(s, &reply);
}

/* A local user over quota at end of data, reported by DSN. */
struct over_quota {
	int64_t user_id;
	const char *address;        /* the user's address */
	const char *orcpt;          /* the recipient's ORCPT, or NULL */
	unsigned notify;
};

/* Build the failure DSN for the over-quota users in full[] into w (the
 * ones whose NOTIFY asks for it); nothing for the null sender. */
static void receive_build_dsn(struct smtp_session *s, const struct buf *msg,
			      const struct over_quota *full, size_t nfull, const char *sender,
			      struct delivery_wait *w)
{
	const struct smtp_mail_params *m = smtp_session_mail(s);
	struct dsn_recipient *dr = xcalloc(nfull, sizeof(*dr));
	const char *error = NULL;
	time_t now = clock_now();
	size_t n = 0;

	for (size_t i = 0; i < nfull; i++) {
		if (!dsn_should_notify(full[i].notify, DSN_ACTION_FAILED))
			continue;
		dr[n++] = (struct dsn_recipient){
			.address = full[i].address, .orcpt = full[i].orcpt,
			.action = DSN_ACTION_FAILED, .status = "5.2.2",
			.reason = "Mailbox full: the recipient's storage quota is exceeded",
			.last_attempt = now,
		};
	}
	if (sender[0] != '\0' && n > 0) {
		struct dsn_params p = {
			.hostname = smtp_session_listener(s)->cfg->hostname, .sender = sender,
			.envid = m->envid,
			.ret = m->ret == SMTP_RET_FULL ? DSN_RET_FULL :
			       m->ret == SMTP_RET_HDRS ? DSN_RET_HDRS : DSN_RET_DEFAULT,
			.arrival = now, .rcpts = dr, .rcpt_count = n,
			.original = buf_cstr(msg), .original_len = msg->len,
			.smtputf8 = m->smtputf8,
		};
		if (dsn_build(&p, &w->dsn_msg, &error) == 0)
			w->dsn_to = xstrdup(sender);
		else
			log_error("smtp", "sid=%s id=%s event=dsn_failed to=%s error=%s",
				  smtp_session_id(s), smtp_session_msgid(s), log_quote(sender),
				  log_quote(error));
	}
	for (size_t i = 0; i < nfull; i++)
		log_info("smtp", "sid=%s id=%s event=over_quota rcpt=%s dsn=%s", smtp_session_id(s),
			 smtp_session_msgid(s), log_quote(full[i].address),
			 w->dsn_to != NULL ? "yes" : "no");
	free(dr);
}

/* Is the envelope sender one of our addresses (a local user or alias, or
 * a domain of ours)?  Those are never SRS-rewritten: our SPF covers them. */
static bool receive_sender_is_ours(struct smtp_session *s, const char *sender)
{
	struct store_rcpt r = { 0 };
	const char *error = NULL;
	bool ours = store_rcpt_resolve(smtp_session_listener(s)->store, sender, subaddr_sep(s), &r,
				       &error) == 0 && r.kind != STORE_RCPT_REMOTE;
	store_rcpt_clear(&r);
	return ours;
}

/* The signing hook (queue/sign-hook.h) for a message entering the queue
 * from one of our senders (submission and `tern sendmail`, or forwarded
 * mail whose sender is ours): on success *out holds the signed message.
 * A failing signer is logged and the message queued unsigned, so a key
 * problem never stops mail.  Returns true when *out is to be stored. */
static bool receive_sign(struct smtp_session *s, const struct buf *msg, const char *sender,
			 struct buf *out)
{
	const char *at = strrchr(sender, '@'), *error = NULL;
	int ret;

	if (at == NULL || at[1] == '\0')
		return false;   /* the null sender: a DSN, nobody's domain */
	if (smtp_session_listener(s)->role != SMTP_ROLE_SUBMISSION &&
	    !receive_sender_is_ours(s, sender))
		return false;
	ret = sign_hook_sign(at + 1, buf_cstr(msg), msg->len, smtp_session_msgid(s), out, &error);
	if (ret < 0)
		log_error("smtp", "sid=%s id=%s event=sign_failed domain=%s error=%s",
			  smtp_session_id(s), smtp_session_msgid(s), log_quote(at + 1),
			  log_quote(error));
	return ret == 1;
}

/* ARC sealing (docs/arc.md) of mail forwarded from a foreign sender on
 * port 25: the alias's domain seals it with its DKIM key, recording our
 * Authentication-Results (the first such field of msg) in the new set.
 * Not sealed: a chain our check found failed (arc=fail), ARC fields our
 * check did not pass (mailauth.arc off), no field of ours.  A failing
 * sealer is logged and the message forwarded unsealed.  Returns true when
 * *out holds the sealed message. */
static bool receive_seal(struct smtp_session *s, const struct buf *msg, const char *domain,
			 struct buf *out)
{
	static const char ar[] = "Authentication-Results:";
	const char *data = buf_cstr(msg), *error = NULL;
	const char *end, *hdr_end;
	char *value;
	bool sealed;

	/* ours is the first (receive-mailauth.c puts it under our Received) */
	hdr_end = strstr(data, "\r\n\r\n");
	const char *f = data;
	while (f != NULL && (hdr_end == NULL || f < hdr_end) &&
	       strncasecmp(f, ar, sizeof(ar) - 1) != 0) {
		f = strstr(f, "\r\n");
		f = f != NULL ? f + 2 : NULL;
	}
	if (f == NULL || (hdr_end != NULL && f >= hdr_end))
		return false;
	end = f + sizeof(ar) - 1;
	while ((end = strstr(end, "\r\n")) != NULL && (end[2] == ' ' || end[2] == '\t'))
		end += 2;
	if (end == NULL)
		return false;
	value = xstrndup(f + sizeof(ar) - 1, (size_t)(end - f) - (sizeof(ar) - 1));
	bool has_arc = false;
	for (const char *p = data; p != NULL && (hdr_end == NULL || p < hdr_end);
	     p = strstr(p + 1, "\r\n"))
		if (strncasecmp(p, "\r\nARC-Seal:", 11) == 0)
			has_arc = true;
	/* each clause of ours starts a line (auth_results_append_separator);
	 * "\tarc=" so that "dmarc=fail" does not count */
	if (strstr(value, "\tarc=fail") != NULL ||
	    (has_arc && strstr(value, "\tarc=pass") == NULL)) {
		log_info("smtp", "sid=%s id=%s event=arc_seal_skipped domain=%s reason=%s",
			 smtp_session_id(s), smtp_session_msgid(s), log_quote(domain),
			 "chain_not_verified");
		free(value);
		return false;
	}
	int ret = sign_hook_seal(domain, data, msg->len, value, out, &error);
	free(value);
	if (ret < 0)
		log_error("smtp", "sid=%s id=%s event=arc_seal_failed domain=%s error=%s",
			  smtp_session_id(s), smtp_session_msgid(s), log_quote(domain),
			  log_quote(error));
	sealed = ret == 1;
	return sealed;
}

/* mailbox: of every local copy (NULL = INBOX; "Junk" for DMARC quarantine) */
static void receive_deliver(struct smtp_session *s, const struct buf *msg, const char *mailbox)
{
	const struct smtp_listener *l = smtp_session_listener(s);
	const struct smtp_mail_params *m = smtp_session_mail(s);
	unsigned nrcpt = smtp_session_rcpt_count(s);
	struct store_delivery_rcpt *rcpts = NULL;
	struct store_queue_rcpt_in *remote = NULL;
	struct over_quota *full = NULL;
	char **owned = NULL;    /* ORCPT strings made here */
	size_t count = 0, alloc = 0, nremote = 0, remote_alloc = 0, nfull = 0, nowned = 0;
	struct smtp_reply reply = { 0 };
	const char *error = NULL;
	char *return_path = NULL, *dsn = NULL, *queue_sender = NULL;
	bool forwarded = false;
	const char *forward_domain = NULL;  /* of the first forwarding alias */
	struct delivery_wait *w = NULL;
	struct buf signed_msg, sealed_msg;

	buf_init(&signed_msg, BUF_UNLIMITED);
	buf_init(&sealed_msg, BUF_UNLIMITED);

	if (l->role == SMTP_ROLE_SUBMISSION && !receive_check_from(s, msg, &reply))
		goto reply;
	/* one copy per distinct user, however many addresses reached them */
	for (unsigned i = 0; i < nrcpt; i++) {
		const struct store_rcpt *r = smtp_session_rcpt_ctx(s, i);
		const struct smtp_rcpt_params *p = smtp_session_rcpt_params(s, i);
		for (size_t u = 0; r != NULL && u < r->user_count; u++) {
			bool dup = false;
			for (size_t k = 0; k < count && !dup; k++)
				dup = rcpts[k].user_id == r->users[u].user_id;
			for (size_t k = 0; k < nfull && !dup; k++)
				dup = full[k].user_id == r->users[u].user_id;
			if (dup)
				continue;
			int over = store_quota_exceeded(l->store, r->users[u].user_id,
							(int64_t)msg->len, &error);
			if (over < 0) {
				smtp_reply_set(&reply, 451, "4.3.0", "Temporary lookup failure");
				goto reply;
			}
			if (over > 0) {
				if (l->role != SMTP_ROLE_MX) {
					smtp_reply_set(&reply, 452, "4.2.2", "<%s>: Mailbox full",
						       r->users[u].address);
					goto reply;
				}
				/* port 25: the others get it, the sender a DSN (below) */
				full = xrealloc(full, (nfull + 1) * sizeof(*full));
				full[nfull++] = (struct over_quota){
					.user_id = r->users[u].user_id, .address = r->users[u].address,
					.orcpt = p->orcpt, .notify = p->notify,
				};
				continue;
			}
			if (count == alloc) {
				alloc = alloc ? alloc * 2 : 4;
				rcpts = xrealloc(rcpts, alloc * sizeof(*rcpts));
			}
			rcpts[count].user_id = r->users[u].user_id;
			rcpts[count].delivered_to = r->users[u].address;
			rcpts[count].mailbox = mailbox;
			count++;
		}
	}
	/* remote recipients go to the queue: those of submission, and the
	 * remote targets of forwarding aliases (and of SRS bounces) */
	for (unsigned i = 0; i < nrcpt; i++) {
		const struct store_rcpt *r = smtp_session_rcpt_ctx(s, i);
		const struct smtp_rcpt_params *p = smtp_session_rcpt_params(s, i);
		const char *rcpt = smtp_session_rcpt_address(s, i);
		size_t targets;
		if (r == NULL)
			continue;
		targets = r->kind == STORE_RCPT_REMOTE ? 1 : r->remote_count;
		for (size_t k = 0; k < targets; k++) {
			const char *a = r->kind == STORE_RCPT_REMOTE ? rcpt : r->remote[k];
			const char *orcpt = p->orcpt;
			bool dup = false;
			for (size_t j = 0; j < nremote && !dup; j++)
				dup = strcasecmp(remote[j].address, a) == 0;
			if (dup)
				continue;
			if (nremote == remote_alloc) {
				remote_alloc = remote_alloc ? remote_alloc * 2 : 4;
				remote = xrealloc(remote, remote_alloc * sizeof(*remote));
				owned = xrealloc(owned, remote_alloc * sizeof(*owned));
			}
			if (r->kind != STORE_RCPT_REMOTE) {
				forwarded = true;
				if (forward_domain == NULL && strrchr(rcpt, '@') != NULL)
					forward_domain = strrchr(rcpt, '@') + 1;
				/* RFC 3461 4.2: the address the client gave, so a DSN
				 * names the alias (ASCII only: "rfc822" type) */
				bool ascii = true;
				for (const char *c = rcpt; *c != '\0' && ascii; c++)
					ascii = (unsigned char)*c < 0x80;
				if (orcpt == NULL && ascii)
					orcpt = owned[nowned++] = xasprintf("rfc822;%s", rcpt);
			}
			/* the SMTP and store NOTIFY bits are the same RFC 3461 set */
			remote[nremote++] = (struct store_queue_rcpt_in){
				.address = a, .orcpt = orcpt, .notify = p->notify,
			};
		}
	}
	if (count == 0 && nremote == 0) {
		/* nobody would get it: the client keeps it and retries */
		smtp_reply_set(&reply, 452, "4.2.2", "<%s>: Mailbox full",
			       nfull > 0 ? full[0].address : "");
		goto reply;
	}
	return_path = address_format(&m->from);
	/* forwarded from a foreign sender on port 25: SRS (mail/srs.h) */
	if (forwarded && l->role == SMTP_ROLE_MX && m->from.local != NULL &&
	    !receive_sender_is_ours(s, return_path)) {
		struct buf srs;
		buf_init(&srs, 1 << 16);
		int ret = receive_srs(l->cfg, RECEIVE_SRS_FORWARD, return_path, &srs, &error);
		if (ret == 0) {
			queue_sender = buf_steal(&srs);
		} else if (ret == SRS_ERR_CONFIG) {
			buf_free(&srs);
			smtp_reply_set(&reply, 451, "4.3.0", "Forwarding is not available now, try "
				       "again later");
			goto reply;
		} else if (ret < 0) {
			log_info("smtp", "sid=%s id=%s event=srs_skipped from=%s error=%s",
				 smtp_session_id(s), smtp_session_msgid(s), log_quote(return_path),
				 log_quote(error));
		}
		buf_free(&srs);
	}
	/* no hook registered: one load, no copy */
	if (nremote > 0 && queue_sender == NULL && sign_hook_active() &&
	    receive_sign(s, msg, return_path, &signed_msg))
		msg = &signed_msg;
	else if (forwarded && forward_domain != NULL && l->role == SMTP_ROLE_MX &&
		 sign_hook_active() && receive_seal(s, msg, forward_domain, &sealed_msg))
		msg = &sealed_msg;
	dsn = receive_dsn_string(s);
	w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->size = msg->len;
	w->copies = (unsigned)count;
	w->queued = nremote > 0;
	buf_init(&w->dsn_msg, BUF_UNLIMITED);
	if (nfull > 0)
		receive_build_dsn(s, msg, full, nfull, return_path, w);
	struct store_delivery d = {
		.return_path = return_path,
		.body = buf_cstr(msg),
		.body_len = msg->len,
		.internal_date = clock_now(),
		.dsn = dsn,
		.rcpts = rcpts,
		.rcpt_count = count,
		.remote = remote,
		.remote_count = nremote,
		.submit_user_id = smtp_session_user_id(s),
		.queue_flags = (m->body != SMTP_BODY_7BIT || mail_has_8bit(buf_cstr(msg), msg->len) ?
				STORE_QUEUE_F_8BIT : 0) |
			       (m->smtputf8 ? STORE_QUEUE_F_SMTPUTF8 : 0) |
			       (m->requiretls ? STORE_QUEUE_F_REQUIRETLS : 0),
		.queue_sender = queue_sender,
	};
	if (queue_sender != NULL)
		log_info("smtp", "sid=%s id=%s event=forward from=%s srs=%s targets=%zu",
			 smtp_session_id(s), smtp_session_msgid(s), log_quote(return_path),
			 log_quote(queue_sender), nremote);
	if (store_deliver(l->store, smtp_session_base(s), &d, receive_stored, w) < 0) {
		smtp_reply_set(&reply, 451, "4.3.0", "Temporary storage failure, try again later");
		goto reply;
	}
	w = NULL;
reply:
	if (w != NULL) {
		free(w->dsn_to);
		buf_free(&w->dsn_msg);
		free(w);
	}
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]);
	free(owned);
	free(full);
	free(rcpts);
	free(remote);
	free(return_path);
	free(queue_sender);
	free(dsn);
	buf_free(&signed_msg);
	buf_free(&sealed_msg);
	if (reply.code != 0)
		smtp_session_data_done(s, &reply);
}

/* Port 25: SPF, DKIM and DMARC first (receive-mailauth.c), which goes on
 * with the message carrying its Authentication-Results field (into Junk
 * when DMARC quarantines it), or rejects or defers it. */
static void receive_data(struct smtp_session *s, const struct buf *msg)
{
	if (receive_mailauth_wanted(s)) {
		receive_mailauth_check(s, msg, receive_deliver);
		return;
	}
	receive_deliver(s, msg, NULL);
}

const struct smtp_hooks smtp_receive_hooks = {
	.mail = receive_mail,
	.rcpt = receive_rcpt,
	.free_rcpt = receive_free_rcpt,
	.data = receive_data,
};
