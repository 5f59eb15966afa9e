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
 * their DSN NOTIFY/ORCPT and the message's 8-bit/SMTPUTF8 flags.
 * Quota: checked at RCPT with the SIZE parameter (452 4.2.2) and again with
 * the real size at end of data. */
#include "smtp/receive.h"
#include "smtp/parse.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "mail/address.h"
#include "mail/downgrade.h"
#include "mail/header.h"
#include "queue/queue.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *subaddr_sep(struct smtp_session *s)
{
	const char *sep = smtp_session_listener(s)->cfg->subaddress_separator;
	return sep != NULL ? sep : "";
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
	if (r->remote_count > 0 || r->user_count == 0) {
		/* an alias forwarding outside: never accept what we cannot deliver */
		smtp_reply_set(reply, 451, "4.3.0", "<%s>: Forwarding to remote addresses is not available yet",
			       addr);
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
};

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
		log_info("smtp", "sid=%s id=%s event=delivered ip=%s from=%s rcpts=%u copies=%u size=%zu",
			 smtp_session_id(s), smtp_session_msgid(s), smtp_session_ip(s), log_quote(from),
			 smtp_session_rcpt_count(s), w->copies, w->size);
		free(from);
	}
	if (status == 0 && w->queued)
		queue_kick(smtp_session_listener(s)->queue);
	free(w);
	smtp_session_data_done(s, &reply);
}

static void receive_data(struct smtp_session *s, const struct buf *msg)
{
	const struct smtp_listener *l = smtp_session_listener(s);
	const struct smtp_mail_params *m = smtp_session_mail(s);
	unsigned nrcpt = smtp_session_rcpt_count(s);
	struct store_delivery_rcpt *rcpts = NULL;
	struct store_queue_rcpt_in *remote = NULL;
	size_t count = 0, alloc = 0, nremote = 0, remote_alloc = 0;
	struct smtp_reply reply = { 0 };
	const char *error = NULL;
	char *return_path = NULL, *dsn = NULL;
	struct delivery_wait *w;

	if (l->role == SMTP_ROLE_SUBMISSION && !receive_check_from(s, msg, &reply))
		goto reply;
	/* one copy per distinct user, however many addresses reached them */
	for (unsigned i = 0; i < nrcpt; i++) {
		const struct store_rcpt *r = smtp_session_rcpt_ctx(s, i);
		for (size_t u = 0; r != NULL && u < r->user_count; u++) {
			bool dup = false;
			for (size_t k = 0; k < count && !dup; k++)
				dup = rcpts[k].user_id == r->users[u].user_id;
			if (dup)
				continue;
			int over = store_quota_exceeded(l->store, r->users[u].user_id,
							(int64_t)msg->len, &error);
			if (over != 0) {
				if (over > 0)
					smtp_reply_set(&reply, 452, "4.2.2", "<%s>: Mailbox full",
						       r->users[u].address);
				else
					smtp_reply_set(&reply, 451, "4.3.0", "Temporary lookup failure");
				goto reply;
			}
			if (count == alloc) {
				alloc = alloc ? alloc * 2 : 4;
				rcpts = xrealloc(rcpts, alloc * sizeof(*rcpts));
			}
			rcpts[count].user_id = r->users[u].user_id;
			rcpts[count].delivered_to = r->users[u].address;
			rcpts[count].mailbox = NULL;
			count++;
		}
	}
	/* remote recipients (submission only) go to the queue */
	for (unsigned i = 0; i < nrcpt; i++) {
		const struct store_rcpt *r = smtp_session_rcpt_ctx(s, i);
		const struct smtp_rcpt_params *p = smtp_session_rcpt_params(s, i);
		if (r == NULL || r->kind != STORE_RCPT_REMOTE)
			continue;
		if (nremote == remote_alloc) {
			remote_alloc = remote_alloc ? remote_alloc * 2 : 4;
			remote = xrealloc(remote, remote_alloc * sizeof(*remote));
		}
		/* the SMTP and store NOTIFY bits are the same RFC 3461 set */
		remote[nremote++] = (struct store_queue_rcpt_in){
			.address = smtp_session_rcpt_address(s, i), .orcpt = p->orcpt,
			.notify = p->notify,
		};
	}
	return_path = address_format(&m->from);
	dsn = receive_dsn_string(s);
	w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->size = msg->len;
	w->copies = (unsigned)count;
	w->queued = nremote > 0;
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
			       (m->smtputf8 ? STORE_QUEUE_F_SMTPUTF8 : 0),
	};
	if (store_deliver(l->store, smtp_session_base(s), &d, receive_stored, w) < 0) {
		free(w);
		smtp_reply_set(&reply, 451, "4.3.0", "Temporary storage failure, try again later");
		goto reply;
	}
	free(rcpts);
	free(remote);
	free(return_path);
	free(dsn);
	return;
reply:
	free(rcpts);
	free(remote);
	free(return_path);
	free(dsn);
	smtp_session_data_done(s, &reply);
}

const struct smtp_hooks smtp_receive_hooks = {
	.mail = receive_mail,
	.rcpt = receive_rcpt,
	.free_rcpt = receive_free_rcpt,
	.data = receive_data,
};
