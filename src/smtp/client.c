/* The outbound SMTP client session (see client.h): connect, greeting,
 * EHLO/HELO, STARTTLS per policy (with DANE or PKIX checks), AUTH, then
 * transactions (MAIL, RCPT, DATA or BDAT) with PIPELINING, until QUIT.
 *
 * Invariants:
 *  - Everything runs on the session's event loop; one reply is handled at
 *    a time, in the order the commands were sent (steps[]).
 *  - Nothing but EHLO/HELO and STARTTLS is sent before TLS when the
 *    policy requires it; AUTH never goes in clear.  Input buffered after
 *    the 220 to STARTTLS is a protocol error (command injection).
 *  - A user callback may free or quit the session: every libevent entry
 *    point holds `busy`, and the memory is released only when the last
 *    one returns (free_pending).
 *  - Reply texts reach results only through client-reply.c (sanitized).
 * RFC 5321 (3.3 transactions, 4.1.1 commands, 4.2 replies, 4.5.2
 * dot-stuffing, 4.5.3.2 timeouts), RFC 2920 (PIPELINING: RSET, MAIL, RCPT
 * and DATA sent as one group), RFC 1870 (SIZE), RFC 6152 (8BITMIME),
 * RFC 6531 (SMTPUTF8), RFC 3030 (CHUNKING: BDAT n LAST), RFC 3461 (DSN:
 * NOTIFY, ORCPT, RET, ENVID; 4 xtext), RFC 3207 (STARTTLS; 4.2 discard
 * knowledge from before TLS), RFC 4954 and RFC 4616 (AUTH PLAIN), RFC
 * 7672 (DANE for SMTP: usages 2 and 3 only, no name checks for DANE-EE),
 * RFC 8689 (REQUIRETLS), RFC 8314 3 (implicit TLS: the handshake right
 * after the TCP connect, the greeting inside TLS). */
#include "smtp/client.h"
#include "lib/base64.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/tls.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define LOG_MOD "smtp-client"

enum client_state {
	ST_CONNECTING, ST_GREETING, ST_EHLO, ST_HELO, ST_STARTTLS, ST_TLS, ST_AUTH_PLAIN,
	ST_AUTH_LOGIN, ST_AUTH_LOGIN_USER, ST_AUTH_LOGIN_PASS, ST_READY, ST_TXN, ST_QUIT,
	ST_DEAD,
};

enum step_kind { STEP_RSET, STEP_MAIL, STEP_RCPT, STEP_DATA, STEP_FINAL };

struct step {
	enum step_kind kind;
	size_t rcpt;            /* STEP_RCPT: the recipient's index */
	char *line;             /* the command with CRLF; NULL for STEP_FINAL */
};

struct smtp_client {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *timer;     /* the reply (or connect) being waited for */
	struct event *defer;     /* a local result delivered outside smtp_client_send */
	SSL_CTX *tls_ctx;
	bool own_ctx;
	SSL *ssl;

	struct sockaddr_storage addr;
	socklen_t addrlen;
	char *host, *helo_name, *auth_user, *auth_pass, *log_id;
	enum smtp_tls_policy policy;
	struct smtp_tlsa *tlsa;
	size_t n_tlsa;
	struct smtp_client_timeouts to;

	enum client_state state;
	struct smtp_reply_parser parser;
	struct smtp_client_reply reply;
	unsigned ext;
	uint64_t size_limit;
	bool tls_active, tls_verified, tls_dane;
	char *tls_failure;
	bool tried_plain;
	bool implicit_tls;       /* RFC 8314: the handshake before the greeting */
	bool greeted;            /* implicit_tls: the handshake is done */
	bool need_rset;
	unsigned busy;
	bool free_pending;

	smtp_client_cb *cb;      /* the pending callback (connect or message) */
	void *cb_ctx;

	/* the transaction */
	const struct smtp_client_message *m;
	struct step *steps;
	size_t n_steps, n_sent, n_replied;
	struct smtp_client_status *rs;
	bool *rs_done;
	size_t n_accepted;
	bool mail_failed;
	bool data_started, sending_data, final_ignored;
	struct smtp_client_status mst;   /* the message's deciding status */
	struct buf texts;                /* status texts of this result (offsets) */
	size_t *rs_text_off;
	size_t mst_text_off;
	char (*rs_enh)[SMTP_ENHANCED_MAX];
	char mst_enh[SMTP_ENHANCED_MAX];
	bool mst_set;
	bool local_pending;
};

static void client_read_cb(struct bufferevent *bev, void *ctx);
static void client_write_cb(struct bufferevent *bev, void *ctx);
static void client_event_cb(struct bufferevent *bev, short what, void *ctx);

const char *smtp_stage_name(enum smtp_stage stage)
{
	static const char *const names[] = {
		"connect", "greeting", "ehlo", "starttls", "tls", "auth", "ready", "mail",
		"rcpt", "data", "data_end", "rset", "quit",
	};
	return (size_t)stage < sizeof(names) / sizeof(names[0]) ? names[stage] : "?";
}

const char *smtp_status_name(enum smtp_status status)
{
	return status == SMTP_STATUS_OK ? "ok" : status == SMTP_STATUS_TEMP ? "temp" : "perm";
}

static enum smtp_status status_of_code(int code)
{
	return code < 400 ? SMTP_STATUS_OK : code < 500 ? SMTP_STATUS_TEMP : SMTP_STATUS_PERM;
}

/* ---- life cycle ---- */

static void transaction_clear(struct smtp_client *c)
{
	for (size_t i = 0; i < c->n_steps; i++)
		free(c->steps[i].line);
	free(c->steps);
	free(c->rs);
	free(c->rs_done);
	free(c->rs_text_off);
	free(c->rs_enh);
	c->steps = NULL;
	c->rs = NULL;
	c->rs_done = NULL;
	c->rs_text_off = NULL;
	c->rs_enh = NULL;
	c->n_steps = c->n_sent = c->n_replied = 0;
	c->n_accepted = 0;
	c->mail_failed = c->data_started = c->sending_data = c->final_ignored = false;
	c->m = NULL;
	buf_reset(&c->texts);
}

static void client_close(struct smtp_client *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);  /* frees the SSL too (BEV_OPT_CLOSE_ON_FREE) */
		c->bev = NULL;
		c->ssl = NULL;
	}
	if (c->timer != NULL)
		evtimer_del(c->timer);
}

static void client_destroy(struct smtp_client *c)
{
	client_close(c);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->defer != NULL)
		event_free(c->defer);
	if (c->own_ctx && c->tls_ctx != NULL)
		SSL_CTX_free(c->tls_ctx);
	transaction_clear(c);
	buf_free(&c->texts);
	smtp_reply_parser_free(&c->parser);
	smtp_client_reply_free(&c->reply);
	for (size_t i = 0; i < c->n_tlsa; i++)
		free((void *)c->tlsa[i].data);
	free(c->tlsa);
	free(c->host);
	free(c->helo_name);
	if (c->auth_pass != NULL)
		OPENSSL_cleanse(c->auth_pass, strlen(c->auth_pass));
	free(c->auth_pass);
	free(c->auth_user);
	free(c->log_id);
	free(c->tls_failure);
	free(c);
}

static void enter(struct smtp_client *c)
{
	c->busy++;
}

/* Leave a libevent entry point; false when the session is gone. */
static bool leave(struct smtp_client *c)
{
	if (--c->busy == 0 && c->free_pending) {
		client_destroy(c);
		return false;
	}
	return true;
}

void smtp_client_free(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	c->cb = NULL;
	c->state = ST_DEAD;
	client_close(c);
	if (c->defer != NULL)
		event_del(c->defer);
	if (c->busy > 0)
		c->free_pending = true;
	else
		client_destroy(c);
}

/* ---- output and timers ---- */

static void arm_timer(struct smtp_client *c, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(c->timer, &tv);
}

static void send_str(struct smtp_client *c, const char *s, size_t len)
{
	if (c->bev != NULL)
		evbuffer_add(bufferevent_get_output(c->bev), s, len);
}

static void send_cmd(struct smtp_client *c, unsigned timeout, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void send_cmd(struct smtp_client *c, unsigned timeout, const char *fmt, ...)
{
	va_list ap;

	if (c->bev == NULL)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
	evbuffer_add(bufferevent_get_output(c->bev), "\r\n", 2);
	arm_timer(c, timeout);
}

/* ---- results ---- */

static void tls_info(struct smtp_client *c, struct smtp_client_tls_info *t)
{
	memset(t, 0, sizeof(*t));
	t->active = c->tls_active;
	t->verified = c->tls_verified;
	t->dane = c->tls_dane;
	t->version = c->tls_active && c->ssl != NULL ? SSL_get_version(c->ssl) : "";
	t->cipher = c->tls_active && c->ssl != NULL ? SSL_get_cipher_name(c->ssl) : "";
	t->failure = c->tls_failure;
}

/* Deliver the pending callback (if any) with res.  Always called inside
 * a libevent entry point (busy > 0), so the callback may free the session:
 * that only marks it, and the entry point releases it on its way out. */
static void deliver(struct smtp_client *c, struct smtp_client_result *res)
{
	smtp_client_cb *cb = c->cb;
	void *ctx = c->cb_ctx;

	c->cb = NULL;
	tls_info(c, &res->tls);
	if (cb != NULL)
		cb(c, res, ctx);
}

/* A session-level outcome (connect phase) to the connect callback. */
static void session_result(struct smtp_client *c, enum smtp_stage stage, enum smtp_status st,
			   int code, const char *enh, const char *text, bool local)
{
	struct smtp_client_result res;

	memset(&res, 0, sizeof(res));
	res.stage = stage;
	res.st.status = st;
	res.st.code = code;
	res.st.enhanced = enh != NULL ? enh : "";
	res.st.text = text != NULL ? text : "";
	res.st.local = local;
	deliver(c, &res);
}

static void set_status(struct smtp_client *c, struct smtp_client_status *s, char *enh_store,
		       size_t *off_store, enum smtp_status st, int code, const char *enh,
		       const char *text, bool local)
{
	s->status = st;
	s->code = code;
	s->local = local;
	snprintf(enh_store, SMTP_ENHANCED_MAX, "%s", enh != NULL ? enh : "");
	*off_store = c->texts.len;
	buf_append_str(&c->texts, text != NULL ? text : "");
	buf_append(&c->texts, "", 1);
}

static void set_rcpt(struct smtp_client *c, size_t i, enum smtp_status st, int code,
		     const char *enh, const char *text, bool local)
{
	set_status(c, &c->rs[i], c->rs_enh[i], &c->rs_text_off[i], st, code, enh, text, local);
	c->rs_done[i] = true;
}

static void set_rcpt_reply(struct smtp_client *c, size_t i, const struct smtp_client_reply *r)
{
	set_rcpt(c, i, status_of_code(r->code), r->code, r->enhanced, buf_cstr(&r->text), false);
}

static void set_msg(struct smtp_client *c, enum smtp_status st, int code, const char *enh,
		    const char *text, bool local)
{
	set_status(c, &c->mst, c->mst_enh, &c->mst_text_off, st, code, enh, text, local);
	c->mst_set = true;
}

/* The transaction is over: report every recipient and the message. */
static void message_finish(struct smtp_client *c, bool clean)
{
	struct smtp_client_result res;
	size_t n = c->m != NULL ? c->m->n_rcpts : 0, delivered = 0;
	bool any_temp = false;

	memset(&res, 0, sizeof(res));
	for (size_t i = 0; i < n; i++) {
		if (!c->rs_done[i])   /* accepted, no data reply: cannot happen when clean */
			set_rcpt(c, i, SMTP_STATUS_TEMP, 0, "", "no reply to the message data",
				 true);
	}
	for (size_t i = 0; i < n; i++) {
		c->rs[i].enhanced = c->rs_enh[i];
		c->rs[i].text = c->texts.data + c->rs_text_off[i];
		if (c->rs[i].status == SMTP_STATUS_OK)
			delivered++;
		else if (c->rs[i].status == SMTP_STATUS_TEMP)
			any_temp = true;
	}
	if (!c->mst_set)
		set_msg(c, SMTP_STATUS_TEMP, 0, "", "no result", true);
	c->mst.enhanced = c->mst_enh;
	c->mst.text = c->texts.data + c->mst_text_off;
	c->mst.status = delivered > 0 ? SMTP_STATUS_OK : any_temp ? SMTP_STATUS_TEMP :
		SMTP_STATUS_PERM;
	res.stage = SMTP_STAGE_DATA_END;
	res.st = c->mst;
	res.rcpts = c->rs;
	res.n_rcpts = n;
	res.n_delivered = delivered;
	log_info(LOG_MOD, "cid=%s event=message host=%s status=%s rcpts=%zu delivered=%zu "
		 "code=%d reply=%s", c->log_id, log_quote(c->host), smtp_status_name(res.st.status),
		 n, delivered, res.st.code, log_quote(res.st.text));
	c->need_rset = !clean;
	if (c->state == ST_TXN)
		c->state = ST_READY;
	deliver(c, &res);
	/* the texts stay valid until the next transaction starts */
}

/* The session failed: close and tell whoever waits. */
static void client_fail(struct smtp_client *c, enum smtp_stage stage, int code, const char *enh,
			const char *text, bool local, enum smtp_status st)
{
	enum client_state was = c->state;

	log_info(LOG_MOD, "cid=%s event=fail host=%s stage=%s code=%d error=%s", c->log_id,
		 log_quote(c->host), smtp_stage_name(stage), code, log_quote(text));
	c->state = ST_DEAD;
	c->local_pending = false;
	client_close(c);
	if (was == ST_TXN && c->m != NULL) {
		for (size_t i = 0; i < c->m->n_rcpts; i++) {
			if (!c->rs_done[i] || c->rs[i].status == SMTP_STATUS_OK)
				set_rcpt(c, i, st, code, enh, text, local);
		}
		set_msg(c, st, code, enh, text, local);
		message_finish(c, false);
		return;
	}
	if (was == ST_QUIT)
		c->free_pending = true;   /* nobody holds the session any more */
	if (was == ST_READY || was == ST_QUIT)
		return;   /* nobody waits */
	session_result(c, stage, st, code, enh, text, local);
}

static void fail_temp(struct smtp_client *c, enum smtp_stage stage, const char *text)
{
	client_fail(c, stage, 0, "", text, true, SMTP_STATUS_TEMP);
}

static void fail_reply(struct smtp_client *c, enum smtp_stage stage, const struct smtp_client_reply *r)
{
	enum smtp_status st = status_of_code(r->code);

	client_fail(c, stage, r->code, r->enhanced, buf_cstr(&r->text), false,
		    st == SMTP_STATUS_OK ? SMTP_STATUS_TEMP : st);
}

static enum smtp_stage state_stage(enum client_state s)
{
	switch (s) {
	case ST_CONNECTING: return SMTP_STAGE_CONNECT;
	case ST_GREETING: return SMTP_STAGE_GREETING;
	case ST_EHLO: case ST_HELO: return SMTP_STAGE_EHLO;
	case ST_STARTTLS: return SMTP_STAGE_STARTTLS;
	case ST_TLS: return SMTP_STAGE_TLS;
	case ST_AUTH_PLAIN: case ST_AUTH_LOGIN: case ST_AUTH_LOGIN_USER:
	case ST_AUTH_LOGIN_PASS: return SMTP_STAGE_AUTH;
	case ST_READY: return SMTP_STAGE_READY;
	case ST_QUIT: return SMTP_STAGE_QUIT;
	default: return SMTP_STAGE_DATA;
	}
}

/* ---- the session set-up ---- */

static void ready(struct smtp_client *c)
{
	c->state = ST_READY;
	evtimer_del(c->timer);
	log_info(LOG_MOD, "cid=%s event=ready host=%s tls=%s verified=%s dane=%s ext=0x%x",
		 c->log_id, log_quote(c->host), c->tls_active ? "yes" : "no",
		 c->tls_verified ? "yes" : "no", c->tls_dane ? "yes" : "no", c->ext);
	session_result(c, SMTP_STAGE_READY, SMTP_STATUS_OK, c->reply.code, c->reply.enhanced,
		       buf_cstr(&c->reply.text), false);
}

static void start_auth(struct smtp_client *c)
{
	if (c->auth_user == NULL) {
		ready(c);
		return;
	}
	if (!c->tls_active) {
		client_fail(c, SMTP_STAGE_AUTH, 530, "4.7.0",
			    "not sending credentials without TLS", true, SMTP_STATUS_TEMP);
		return;
	}
	if ((c->ext & SMTP_EXT_AUTH_PLAIN) && !c->tried_plain) {
		struct buf raw;
		char *b64;

		c->tried_plain = true;
		buf_init(&raw, BUF_UNLIMITED);
		buf_append(&raw, "", 1);
		buf_append_str(&raw, c->auth_user);
		buf_append(&raw, "", 1);
		buf_append_str(&raw, c->auth_pass);
		b64 = base64_encode_str(raw.data, raw.len);
		OPENSSL_cleanse(raw.data, raw.len);
		buf_free(&raw);
		c->state = ST_AUTH_PLAIN;
		send_cmd(c, c->to.command, "AUTH PLAIN %s", b64);
		OPENSSL_cleanse(b64, strlen(b64));
		free(b64);
		return;
	}
	if (c->ext & SMTP_EXT_AUTH_LOGIN) {
		c->state = ST_AUTH_LOGIN;
		send_cmd(c, c->to.command, "AUTH LOGIN");
		return;
	}
	client_fail(c, SMTP_STAGE_AUTH, 0, "4.7.0",
		    "server offers neither AUTH PLAIN nor AUTH LOGIN", true, SMTP_STATUS_TEMP);
}

static void after_ehlo(struct smtp_client *c)
{
	bool required = c->policy == SMTP_TLS_REQUIRE_VERIFY || c->policy == SMTP_TLS_DANE;

	if (!c->tls_active && c->policy != SMTP_TLS_NONE) {
		if (c->ext & SMTP_EXT_STARTTLS) {
			c->state = ST_STARTTLS;
			send_cmd(c, c->to.command, "STARTTLS");
			return;
		}
		if (required) {
			client_fail(c, SMTP_STAGE_STARTTLS, 0, "4.7.4",
				    "TLS is required but the server does not offer STARTTLS", true,
				    SMTP_STATUS_TEMP);
			return;
		}
	}
	start_auth(c);
}

static void parse_ehlo(struct smtp_client *c, const struct smtp_client_reply *r)
{
	struct slice arg;

	c->ext = 0;
	c->size_limit = 0;
	if (smtp_client_reply_has_keyword(r, "PIPELINING", NULL))
		c->ext |= SMTP_EXT_PIPELINING;
	if (smtp_client_reply_has_keyword(r, "SIZE", &arg)) {
		uint64_t v = 0;
		c->ext |= SMTP_EXT_SIZE;
		for (size_t i = 0; i < arg.len && arg.p[i] >= '0' && arg.p[i] <= '9'; i++) {
			if (v > UINT64_MAX / 10 - 10) {
				v = 0;   /* absurd: treat as unlimited */
				break;
			}
			v = v * 10 + (uint64_t)(arg.p[i] - '0');
		}
		c->size_limit = v;
	}
	if (smtp_client_reply_has_keyword(r, "8BITMIME", NULL))
		c->ext |= SMTP_EXT_8BITMIME;
	if (smtp_client_reply_has_keyword(r, "SMTPUTF8", NULL))
		c->ext |= SMTP_EXT_SMTPUTF8;
	if (smtp_client_reply_has_keyword(r, "CHUNKING", NULL))
		c->ext |= SMTP_EXT_CHUNKING;
	if (smtp_client_reply_has_keyword(r, "DSN", NULL))
		c->ext |= SMTP_EXT_DSN;
	if (smtp_client_reply_has_keyword(r, "STARTTLS", NULL))
		c->ext |= SMTP_EXT_STARTTLS;
	if (smtp_client_reply_has_keyword(r, "REQUIRETLS", NULL))
		c->ext |= SMTP_EXT_REQUIRETLS;
	if (smtp_client_reply_has_keyword(r, "ENHANCEDSTATUSCODES", NULL))
		c->ext |= SMTP_EXT_ENHANCEDSTATUSCODES;
	if (smtp_client_reply_has_keyword(r, "AUTH", &arg)) {
		size_t i = 0;
		while (i < arg.len) {
			size_t j = i;
			while (j < arg.len && arg.p[j] != ' ')
				j++;
			struct slice w = { arg.p + i, j - i };
			if (slice_eq_ci(w, "PLAIN"))
				c->ext |= SMTP_EXT_AUTH_PLAIN;
			else if (slice_eq_ci(w, "LOGIN"))
				c->ext |= SMTP_EXT_AUTH_LOGIN;
			i = j + 1;
		}
	}
}

static int start_tls(struct smtp_client *c, const char **error_r)
{
	struct bufferevent *tls_bev;
	size_t usable = 0;

	c->ssl = SSL_new(c->tls_ctx);
	if (c->ssl == NULL) {
		*error_r = tls_last_error();
		return -1;
	}
	SSL_set_tlsext_host_name(c->ssl, c->host);
	if (c->policy == SMTP_TLS_DANE) {
		for (size_t i = 0; i < c->n_tlsa; i++)
			if (c->tlsa[i].usage == 2 || c->tlsa[i].usage == 3)
				usable++;
	}
	if (c->policy == SMTP_TLS_DANE && usable > 0) {
		/* RFC 7672 2.2: the TLSA base domain name and the MX host name
		 * are the reference identifiers (for DANE-TA only) */
		if (SSL_dane_enable(c->ssl, c->host) <= 0)
			goto ssl_error;
		SSL_dane_set_flags(c->ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
		usable = 0;
		for (size_t i = 0; i < c->n_tlsa; i++) {
			const struct smtp_tlsa *t = &c->tlsa[i];
			if (t->usage != 2 && t->usage != 3)
				continue;   /* PKIX-TA/EE: unusable for SMTP (RFC 7672 3.1.3) */
			int rc = SSL_dane_tlsa_add(c->ssl, t->usage, t->selector, t->mtype,
						   t->data, t->len);
			if (rc > 0)
				usable++;
			else
				ERR_clear_error();   /* malformed or unsupported: unusable */
		}
	}
	if (c->policy == SMTP_TLS_DANE && usable > 0) {
		SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
	} else if (c->policy == SMTP_TLS_REQUIRE_VERIFY) {
		SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(c->ssl, c->host) != 1)
			goto ssl_error;
		SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
	} else {
		/* opportunistic, or DANE with no usable record: encrypted but
		 * unauthenticated (RFC 7672 2.2) */
		SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
	}
	tls_bev = bufferevent_openssl_filter_new(c->base, c->bev, c->ssl,
						 BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls_bev == NULL)
		goto ssl_error;
	c->bev = tls_bev;
	bufferevent_openssl_set_allow_dirty_shutdown(tls_bev, 1);
	bufferevent_setcb(tls_bev, client_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_enable(tls_bev, EV_READ | EV_WRITE);
	c->state = ST_TLS;
	arm_timer(c, c->to.command);
	return 0;
ssl_error:
	*error_r = tls_last_error();
	SSL_free(c->ssl);
	c->ssl = NULL;
	return -1;
}

static void tls_done(struct smtp_client *c)
{
	c->tls_active = true;
	if (c->policy == SMTP_TLS_DANE)
		c->tls_dane = SSL_get0_dane_authority(c->ssl, NULL, NULL) >= 0;
	if (c->policy == SMTP_TLS_REQUIRE_VERIFY)
		c->tls_verified = SSL_get_verify_result(c->ssl) == X509_V_OK;
	log_info(LOG_MOD, "cid=%s event=tls host=%s version=%s cipher=%s verified=%s dane=%s",
		 c->log_id, log_quote(c->host), SSL_get_version(c->ssl),
		 SSL_get_cipher_name(c->ssl), c->tls_verified ? "yes" : "no",
		 c->tls_dane ? "yes" : "no");
	if (c->implicit_tls && c->state == ST_TLS && !c->greeted) {
		/* RFC 8314 3.3: the greeting comes inside TLS */
		c->greeted = true;
		c->state = ST_GREETING;
		arm_timer(c, c->to.greeting);
		return;
	}
	/* RFC 3207 4.2: forget what the server said before TLS */
	c->ext = 0;
	c->state = ST_EHLO;
	send_cmd(c, c->to.command, "EHLO %s", c->helo_name);
}

static void tls_failed(struct smtp_client *c)
{
	char text[300];
	long v = c->ssl != NULL ? SSL_get_verify_result(c->ssl) : X509_V_OK;

	if (v != X509_V_OK) {
		snprintf(text, sizeof(text), "TLS handshake failed: certificate verification: %s",
			 X509_verify_cert_error_string(v));
	} else {
		unsigned long e = c->bev != NULL ? bufferevent_get_openssl_error(c->bev) : 0;
		char es[200];
		if (e != 0)
			ERR_error_string_n(e, es, sizeof(es));
		snprintf(text, sizeof(text), "TLS handshake failed: %s",
			 e != 0 ? es : "connection closed");
	}
	free(c->tls_failure);
	c->tls_failure = xstrdup(text);
	client_fail(c, SMTP_STAGE_TLS, 0, "4.7.5", text, true, SMTP_STATUS_TEMP);
}

/* ---- transactions ---- */

static void xtext_append(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch >= '!' && ch <= '~' && ch != '+' && ch != '=')
			buf_append(b, s, 1);
		else
			buf_printf(b, "+%02X", ch);
	}
}

static void add_step(struct smtp_client *c, enum step_kind kind, size_t rcpt, char *line)
{
	c->steps[c->n_steps++] = (struct step){ kind, rcpt, line };
}

static unsigned step_timeout(struct smtp_client *c, const struct step *s)
{
	switch (s->kind) {
	case STEP_MAIL: return c->to.mail;
	case STEP_RCPT: return c->to.rcpt;
	case STEP_DATA: return c->to.data_init;
	case STEP_FINAL: return c->to.data_final;
	default: return c->to.command;
	}
}

/* Send what may go now: everything (PIPELINING) or the next command. */
static void send_steps(struct smtp_client *c)
{
	bool pipe = (c->ext & SMTP_EXT_PIPELINING) != 0;

	while (c->n_sent < c->n_steps && c->steps[c->n_sent].line != NULL &&
	       (pipe || c->n_sent == c->n_replied)) {
		const char *l = c->steps[c->n_sent].line;
		send_str(c, l, strlen(l));
		c->n_sent++;
	}
	if (c->n_replied < c->n_sent)
		arm_timer(c, step_timeout(c, &c->steps[c->n_replied]));
}

/* Queue the message data: dot-stuffed with the final "." for DATA, or one
 * BDAT LAST chunk (RFC 3030 2: BDAT carries the bytes as they are). */
static void send_data(struct smtp_client *c, bool bdat)
{
	const struct smtp_client_message *m = c->m;
	struct evbuffer *out;
	const char *p = m->data, *end = m->data + m->len;

	if (c->bev == NULL)
		return;
	out = bufferevent_get_output(c->bev);
	if (bdat) {
		evbuffer_add_printf(out, "BDAT %zu LAST\r\n", m->len);
		evbuffer_add(out, m->data, m->len);
	} else {
		/* RFC 5321 4.5.2: a line that starts with "." gets one more */
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *e = nl != NULL ? nl + 1 : end;
			if (*p == '.')
				evbuffer_add(out, ".", 1);
			evbuffer_add(out, p, (size_t)(e - p));
			p = e;
		}
		if (m->len > 0 && !(m->len >= 2 && end[-2] == '\r' && end[-1] == '\n'))
			evbuffer_add(out, "\r\n", 2);
		evbuffer_add(out, ".\r\n", 3);
	}
	c->steps[c->n_steps] = (struct step){ STEP_FINAL, 0, NULL };
	c->n_steps++;
	c->n_sent = c->n_steps;
	c->data_started = true;
	c->sending_data = true;
	/* no reply timer while the data is going out: the write timeout
	 * (data block) watches progress; the final timer starts once the
	 * output drained (client_write_cb) */
	evtimer_del(c->timer);
	struct timeval w = { c->to.data_block / 1000, (c->to.data_block % 1000) * 1000 };
	bufferevent_set_timeouts(c->bev, NULL, &w);
}

/* Every recipient has its RCPT reply: go on to the data or finish. */
static void envelope_done(struct smtp_client *c, bool chunking)
{
	if (c->mail_failed || c->n_accepted == 0) {
		if (!c->mail_failed) {
			/* all recipients refused: the message takes the first refusal */
			size_t i = 0;
			set_msg(c, c->rs[i].status, c->rs[i].code, c->rs_enh[i],
				c->texts.data + c->rs_text_off[i], c->rs[i].local);
		}
		message_finish(c, false);
		return;
	}
	if (chunking)
		send_data(c, true);
}

static void txn_reply(struct smtp_client *c, const struct smtp_client_reply *r)
{
	struct step *s = &c->steps[c->n_replied++];
	bool chunking = (c->ext & SMTP_EXT_CHUNKING) != 0;
	size_t i;

	switch (s->kind) {
	case STEP_RSET:
		if (r->code / 100 != 2) {
			fail_reply(c, SMTP_STAGE_RSET, r);
			return;
		}
		break;
	case STEP_MAIL:
		if (r->code / 100 != 2) {
			c->mail_failed = true;
			set_msg(c, status_of_code(r->code), r->code, r->enhanced,
				buf_cstr(&r->text), false);
			for (i = 0; i < c->m->n_rcpts; i++)
				set_rcpt_reply(c, i, r);
		}
		break;
	case STEP_RCPT:
		if (c->mail_failed)
			break;
		if (r->code / 100 == 2)
			c->n_accepted++;
		else
			set_rcpt_reply(c, s->rcpt, r);
		break;
	case STEP_DATA:
		if (r->code == 354) {
			if (c->mail_failed || c->n_accepted == 0) {
				/* RFC 2920 3.1: end the empty message; its reply is moot */
				send_str(c, ".\r\n", 3);
				c->final_ignored = true;
				c->steps[c->n_steps++] = (struct step){ STEP_FINAL, 0, NULL };
				c->n_sent = c->n_steps;
				arm_timer(c, c->to.data_final);
				return;
			}
			send_data(c, false);
			return;
		}
		if (!c->mail_failed && c->n_accepted > 0) {
			set_msg(c, status_of_code(r->code) == SMTP_STATUS_OK ? SMTP_STATUS_TEMP :
				status_of_code(r->code), r->code, r->enhanced, buf_cstr(&r->text), false);
			for (i = 0; i < c->m->n_rcpts; i++)
				if (!c->rs_done[i])
					set_rcpt_reply(c, i, r);
		} else if (!c->mail_failed) {
			envelope_done(c, false);
			return;
		}
		message_finish(c, false);
		return;
	case STEP_FINAL:
		evtimer_del(c->timer);
		if (c->sending_data && c->bev != NULL)
			bufferevent_set_timeouts(c->bev, NULL, NULL);
		c->sending_data = false;
		if (c->final_ignored) {
			if (!c->mail_failed)
				envelope_done(c, false);
			else
				message_finish(c, r->code / 100 == 2);
			return;
		}
		set_msg(c, status_of_code(r->code), r->code, r->enhanced, buf_cstr(&r->text),
			false);
		for (i = 0; i < c->m->n_rcpts; i++)
			if (!c->rs_done[i])
				set_rcpt_reply(c, i, r);
		message_finish(c, r->code / 100 == 2);
		return;
	}
	if (c->n_replied == c->n_steps) {
		/* every command of the envelope has its reply (no DATA step
		 * with CHUNKING) */
		envelope_done(c, chunking);
		return;
	}
	if (!(c->ext & SMTP_EXT_PIPELINING)) {
		/* one command at a time: stop as soon as the rest is moot */
		if (c->mail_failed) {
			message_finish(c, false);
			return;
		}
		if (c->steps[c->n_replied].kind == STEP_DATA && c->n_accepted == 0) {
			envelope_done(c, false);
			return;
		}
	}
	send_steps(c);
}

static bool unsafe_text(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static void defer_cb(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd; (void)what;
	struct smtp_client *c = ctx;

	enter(c);
	if (c->local_pending) {
		c->local_pending = false;
		message_finish(c, !c->need_rset);
	}
	leave(c);
}

/* A local decision before anything is sent: every recipient gets it. */
static void local_refusal(struct smtp_client *c, enum smtp_status st, int code, const char *enh,
			  const char *text)
{
	for (size_t i = 0; i < c->m->n_rcpts; i++)
		set_rcpt(c, i, st, code, enh, text, true);
	set_msg(c, st, code, enh, text, true);
	c->local_pending = true;
	event_active(c->defer, 0, 0);
}

int smtp_client_send(struct smtp_client *c, const struct smtp_client_message *m,
		     smtp_client_cb *cb, void *ctx, const char **error_r)
{
	bool dsn;
	struct buf b;
	size_t n;

	if (c->state != ST_READY || c->bev == NULL) {
		*error_r = "session not ready";
		return -1;
	}
	if (m->n_rcpts == 0 || m->sender == NULL) {
		*error_r = "no recipients or no sender";
		return -1;
	}
	if (unsafe_text(m->sender) || (m->envid != NULL && unsafe_text(m->envid))) {
		*error_r = "control character in the sender or ENVID";
		return -1;
	}
	for (size_t i = 0; i < m->n_rcpts; i++) {
		if (m->rcpts[i].addr == NULL || unsafe_text(m->rcpts[i].addr) ||
		    (m->rcpts[i].orcpt != NULL && unsafe_text(m->rcpts[i].orcpt))) {
			*error_r = "control character in a recipient";
			return -1;
		}
	}
	transaction_clear(c);
	c->m = m;
	c->cb = cb;
	c->cb_ctx = ctx;
	c->state = ST_TXN;
	n = m->n_rcpts;
	c->steps = xcalloc(n + 5, sizeof(*c->steps));
	c->rs = xcalloc(n, sizeof(*c->rs));
	c->rs_done = xcalloc(n, sizeof(*c->rs_done));
	c->rs_text_off = xcalloc(n, sizeof(*c->rs_text_off));
	c->rs_enh = xcalloc(n, sizeof(*c->rs_enh));
	memset(&c->mst, 0, sizeof(c->mst));
	c->mst_set = false;
	c->mst_enh[0] = '\0';
	c->mst_text_off = 0;

	/* local refusals: nothing is sent (the session stays usable) */
	if ((c->ext & SMTP_EXT_SIZE) && c->size_limit > 0 && m->len > c->size_limit) {
		local_refusal(c, SMTP_STATUS_PERM, 552, "5.3.4",
			      "message too big for the recipient's server (SIZE)");
		return 0;
	}
	if ((m->flags & SMTP_MSG_SMTPUTF8) && !(c->ext & SMTP_EXT_SMTPUTF8)) {
		local_refusal(c, SMTP_STATUS_PERM, 553, "5.6.7",
			      "recipient's server does not support SMTPUTF8");
		return 0;
	}
	if ((m->flags & SMTP_MSG_8BIT) && !(c->ext & SMTP_EXT_8BITMIME)) {
		local_refusal(c, SMTP_STATUS_PERM, 554, "5.6.3",
			      "8-bit message not converted for a server without 8BITMIME");
		return 0;
	}
	if ((m->flags & SMTP_MSG_REQUIRETLS) &&
	    (!(c->ext & SMTP_EXT_REQUIRETLS) || !(c->tls_verified || c->tls_dane))) {
		local_refusal(c, SMTP_STATUS_PERM, 550, "5.7.30", "REQUIRETLS support required");
		return 0;
	}

	dsn = (c->ext & SMTP_EXT_DSN) != 0;
	if (c->need_rset)
		add_step(c, STEP_RSET, 0, xstrdup("RSET\r\n"));
	c->need_rset = true;   /* until a transaction ends cleanly */
	buf_init(&b, BUF_UNLIMITED);
	buf_printf(&b, "MAIL FROM:<%s>", m->sender);
	if (c->ext & SMTP_EXT_SIZE)
		buf_printf(&b, " SIZE=%zu", m->len);
	if (m->flags & SMTP_MSG_8BIT)
		buf_append_str(&b, " BODY=8BITMIME");
	if (m->flags & SMTP_MSG_SMTPUTF8)
		buf_append_str(&b, " SMTPUTF8");
	if (dsn && m->ret != SMTP_DSN_RET_NONE)
		buf_append_str(&b, m->ret == SMTP_DSN_RET_FULL ? " RET=FULL" : " RET=HDRS");
	if (dsn && m->envid != NULL) {
		buf_append_str(&b, " ENVID=");
		xtext_append(&b, m->envid);
	}
	if (m->flags & SMTP_MSG_REQUIRETLS)
		buf_append_str(&b, " REQUIRETLS");
	buf_append_str(&b, "\r\n");
	add_step(c, STEP_MAIL, 0, buf_steal(&b));
	for (size_t i = 0; i < n; i++) {
		const struct smtp_client_rcpt *r = &m->rcpts[i];
		buf_printf(&b, "RCPT TO:<%s>", r->addr);
		if (dsn && r->notify != 0) {
			if (r->notify & SMTP_NOTIFY_NEVER) {
				buf_append_str(&b, " NOTIFY=NEVER");
			} else {
				const char *sep = " NOTIFY=";
				if (r->notify & SMTP_NOTIFY_SUCCESS) {
					buf_printf(&b, "%sSUCCESS", sep);
					sep = ",";
				}
				if (r->notify & SMTP_NOTIFY_FAILURE) {
					buf_printf(&b, "%sFAILURE", sep);
					sep = ",";
				}
				if (r->notify & SMTP_NOTIFY_DELAY)
					buf_printf(&b, "%sDELAY", sep);
			}
		}
		if (dsn && r->orcpt != NULL) {
			const char *semi = strchr(r->orcpt, ';');
			if (semi != NULL) {
				buf_append_str(&b, " ORCPT=");
				buf_append(&b, r->orcpt, (size_t)(semi - r->orcpt) + 1);
				xtext_append(&b, semi + 1);
			}
		}
		buf_append_str(&b, "\r\n");
		add_step(c, STEP_RCPT, i, buf_steal(&b));
	}
	if (!(c->ext & SMTP_EXT_CHUNKING))
		add_step(c, STEP_DATA, 0, xstrdup("DATA\r\n"));
	buf_free(&b);
	send_steps(c);
	return 0;
}

/* ---- replies ---- */

static void on_reply(struct smtp_client *c, const struct smtp_client_reply *r)
{
	const char *err = NULL;
	char *b64;

	switch (c->state) {
	case ST_GREETING:
		if (r->code != 220) {
			fail_reply(c, SMTP_STAGE_GREETING, r);
			return;
		}
		c->state = ST_EHLO;
		send_cmd(c, c->to.command, "EHLO %s", c->helo_name);
		return;
	case ST_EHLO:
		if (r->code == 250) {
			parse_ehlo(c, r);
			after_ehlo(c);
			return;
		}
		if ((r->code == 500 || r->code == 502) && !c->tls_active) {
			c->state = ST_HELO;
			send_cmd(c, c->to.command, "HELO %s", c->helo_name);
			return;
		}
		fail_reply(c, SMTP_STAGE_EHLO, r);
		return;
	case ST_HELO:
		if (r->code != 250) {
			fail_reply(c, SMTP_STAGE_EHLO, r);
			return;
		}
		c->ext = 0;
		after_ehlo(c);
		return;
	case ST_STARTTLS:
		if (r->code != 220) {
			if (c->policy == SMTP_TLS_OPPORTUNISTIC) {
				start_auth(c);   /* RFC 3207 4: go on without TLS */
				return;
			}
			client_fail(c, SMTP_STAGE_STARTTLS, r->code, r->enhanced, buf_cstr(&r->text),
				    false, SMTP_STATUS_TEMP);
			return;
		}
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
			fail_temp(c, SMTP_STAGE_STARTTLS,
				  "server sent data after its STARTTLS reply (injection?)");
			return;
		}
		if (start_tls(c, &err) < 0) {
			fail_temp(c, SMTP_STAGE_TLS, err);
			return;
		}
		return;
	case ST_AUTH_PLAIN:
		if (r->code == 235) {
			ready(c);
			return;
		}
		if (r->code == 504 && (c->ext & SMTP_EXT_AUTH_LOGIN)) {
			start_auth(c);
			return;
		}
		fail_reply(c, SMTP_STAGE_AUTH, r);
		return;
	case ST_AUTH_LOGIN:
	case ST_AUTH_LOGIN_USER:
		if (r->code != 334) {
			fail_reply(c, SMTP_STAGE_AUTH, r);
			return;
		}
		b64 = base64_encode_str(c->state == ST_AUTH_LOGIN ? c->auth_user : c->auth_pass,
					strlen(c->state == ST_AUTH_LOGIN ? c->auth_user : c->auth_pass));
		c->state = c->state == ST_AUTH_LOGIN ? ST_AUTH_LOGIN_USER : ST_AUTH_LOGIN_PASS;
		send_cmd(c, c->to.command, "%s", b64);
		OPENSSL_cleanse(b64, strlen(b64));
		free(b64);
		return;
	case ST_AUTH_LOGIN_PASS:
		if (r->code == 235) {
			ready(c);
			return;
		}
		fail_reply(c, SMTP_STAGE_AUTH, r);
		return;
	case ST_TXN:
		if (c->n_replied >= c->n_sent) {
			fail_temp(c, SMTP_STAGE_DATA, "unexpected reply from the server");
			return;
		}
		txn_reply(c, r);
		return;
	case ST_QUIT:
		c->state = ST_DEAD;
		client_close(c);
		c->free_pending = true;
		return;
	case ST_READY:
		/* e.g. 421 on the server's idle timeout: the session is over */
		log_info(LOG_MOD, "cid=%s event=unsolicited host=%s code=%d reply=%s", c->log_id,
			 log_quote(c->host), r->code, log_quote(buf_cstr(&r->text)));
		c->state = ST_DEAD;
		client_close(c);
		return;
	default:
		fail_temp(c, state_stage(c->state), "unexpected reply from the server");
		return;
	}
}

static void client_read_cb(struct bufferevent *bev, void *ctx)
{
	(void)bev;
	struct smtp_client *c = ctx;

	enter(c);
	while (c->bev != NULL && c->state != ST_DEAD && !c->free_pending) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		size_t len = evbuffer_get_length(in), used = 0;
		const char *err = NULL;
		enum smtp_reply_status st;

		if (len == 0 || c->state == ST_TLS || c->state == ST_CONNECTING)
			break;
		/* a reply is at most LINES_MAX lines; look at a bounded window */
		if (len > SMTP_REPLY_LINE_MAX)
			len = SMTP_REPLY_LINE_MAX;
		st = smtp_reply_parse(&c->parser, (const char *)evbuffer_pullup(in, (ssize_t)len),
				      len, &used, &c->reply, &err);
		evbuffer_drain(in, used);
		if (st == SMTP_REPLY_ERROR) {
			fail_temp(c, state_stage(c->state), err);
			break;
		}
		if (st == SMTP_REPLY_NEED_MORE)
			continue;  /* drained; the loop ends when the input is empty */
		evtimer_del(c->timer);
		on_reply(c, &c->reply);
	}
	leave(c);
}

static void client_write_cb(struct bufferevent *bev, void *ctx)
{
	(void)bev;
	struct smtp_client *c = ctx;

	if (c->sending_data && c->bev != NULL) {
		/* the data went out: now wait for the final reply */
		c->sending_data = false;
		bufferevent_set_timeouts(c->bev, NULL, NULL);
		arm_timer(c, c->to.data_final);
	}
}

static void client_event_cb(struct bufferevent *bev, short what, void *ctx)
{
	(void)bev;
	struct smtp_client *c = ctx;

	enter(c);
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == ST_CONNECTING && c->implicit_tls) {
			const char *err = NULL;
			if (start_tls(c, &err) < 0)
				fail_temp(c, SMTP_STAGE_TLS, err);
		} else if (c->state == ST_CONNECTING) {
			c->state = ST_GREETING;
			arm_timer(c, c->to.greeting);
		} else if (c->state == ST_TLS) {
			evtimer_del(c->timer);
			tls_done(c);
			client_read_cb(c->bev, c);   /* nothing should be there */
		}
	} else if (what & BEV_EVENT_TIMEOUT) {
		fail_temp(c, SMTP_STAGE_DATA, "timeout sending the message data");
	} else if (c->state == ST_TLS && (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))) {
		tls_failed(c);
	} else if (c->state == ST_QUIT) {
		c->state = ST_DEAD;
		client_close(c);
		c->free_pending = true;
	} else if (what & BEV_EVENT_ERROR) {
		char text[200];
		int e = EVUTIL_SOCKET_ERROR();
		snprintf(text, sizeof(text), "%s: %s",
			 c->state == ST_CONNECTING ? "cannot connect" : "connection error",
			 e != 0 ? evutil_socket_error_to_string(e) : tls_last_error());
		fail_temp(c, state_stage(c->state), text);
	} else if (what & BEV_EVENT_EOF) {
		fail_temp(c, state_stage(c->state), "connection closed by the server");
	}
	leave(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd; (void)what;
	struct smtp_client *c = ctx;
	char text[64];

	enter(c);
	if (c->state == ST_QUIT) {
		c->state = ST_DEAD;
		client_close(c);
		c->free_pending = true;
	} else {
		enum smtp_stage stage = state_stage(c->state);
		if (c->state == ST_TXN && c->n_replied < c->n_steps) {
			enum step_kind k = c->steps[c->n_replied].kind;
			stage = k == STEP_MAIL ? SMTP_STAGE_MAIL : k == STEP_RCPT ? SMTP_STAGE_RCPT :
				k == STEP_RSET ? SMTP_STAGE_RSET : k == STEP_DATA ? SMTP_STAGE_DATA :
				SMTP_STAGE_DATA_END;
		}
		snprintf(text, sizeof(text), "timeout waiting for the %s reply", smtp_stage_name(stage));
		fail_temp(c, stage, text);
	}
	leave(c);
}

/* ---- public ---- */

SSL_CTX *smtp_client_tls_ctx_create(const char *ca_file, const char *ca_dir,
				    const char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		*error_r = tls_last_error();
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
	if (ca_file != NULL || ca_dir != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, ca_dir) != 1)
			goto fail;
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		goto fail;
	}
	if (SSL_CTX_dane_enable(ctx) <= 0)
		goto fail;
	return ctx;
fail:
	*error_r = tls_last_error();
	SSL_CTX_free(ctx);
	return NULL;
}

static unsigned ms_or(unsigned v, unsigned dflt)
{
	return v != 0 ? v : dflt;
}

struct smtp_client *smtp_client_connect(struct event_base *base,
					const struct smtp_client_params *p,
					smtp_client_cb *cb, void *ctx, const char **error_r)
{
	struct smtp_client *c;
	char addr[NET_ADDR_MAX];

	if (p->addr == NULL || p->addrlen == 0 || p->addrlen > sizeof(c->addr) ||
	    p->helo_name == NULL || unsafe_text(p->helo_name) || strchr(p->helo_name, ' ') != NULL) {
		*error_r = "bad address or HELO name";
		return NULL;
	}
	if (p->implicit_tls && p->tls == SMTP_TLS_NONE) {
		*error_r = "implicit TLS with TLS policy none";
		return NULL;
	}
	if (p->auth_user != NULL && (p->auth_pass == NULL)) {
		*error_r = "AUTH user without password";
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->base = base;
	memcpy(&c->addr, p->addr, p->addrlen);
	c->addrlen = p->addrlen;
	c->host = xstrdup(p->host != NULL ? p->host : net_addr_str(p->addr, addr, sizeof(addr)));
	c->helo_name = xstrdup(p->helo_name);
	c->auth_user = p->auth_user != NULL ? xstrdup(p->auth_user) : NULL;
	c->auth_pass = p->auth_pass != NULL ? xstrdup(p->auth_pass) : NULL;
	c->log_id = xstrdup(p->log_id != NULL ? p->log_id : "-");
	c->policy = p->tls;
	c->implicit_tls = p->implicit_tls;
	if (p->n_tlsa > 0) {
		c->tlsa = xcalloc(p->n_tlsa, sizeof(*c->tlsa));
		for (size_t i = 0; i < p->n_tlsa; i++) {
			unsigned char *d = xmalloc(p->tlsa[i].len + 1);
			memcpy(d, p->tlsa[i].data, p->tlsa[i].len);
			c->tlsa[i] = p->tlsa[i];
			c->tlsa[i].data = d;
		}
		c->n_tlsa = p->n_tlsa;
	}
	c->to.connect = ms_or(p->timeouts.connect, 30 * 1000);
	c->to.greeting = ms_or(p->timeouts.greeting, 5 * 60 * 1000);
	c->to.command = ms_or(p->timeouts.command, 5 * 60 * 1000);
	c->to.mail = ms_or(p->timeouts.mail, 5 * 60 * 1000);
	c->to.rcpt = ms_or(p->timeouts.rcpt, 5 * 60 * 1000);
	c->to.data_init = ms_or(p->timeouts.data_init, 2 * 60 * 1000);
	c->to.data_block = ms_or(p->timeouts.data_block, 3 * 60 * 1000);
	c->to.data_final = ms_or(p->timeouts.data_final, 10 * 60 * 1000);
	smtp_reply_parser_init(&c->parser);
	smtp_client_reply_init(&c->reply);
	buf_init(&c->texts, BUF_UNLIMITED);
	c->cb = cb;
	c->cb_ctx = ctx;
	c->timer = evtimer_new(base, timer_cb, c);
	c->defer = event_new(base, -1, 0, defer_cb, c);
	if (p->tls != SMTP_TLS_NONE) {
		if (p->tls_ctx != NULL) {
			c->tls_ctx = p->tls_ctx;
			SSL_CTX_up_ref(c->tls_ctx);
		} else {
			c->tls_ctx = smtp_client_tls_ctx_create(NULL, NULL, error_r);
			if (c->tls_ctx == NULL)
				goto fail;
		}
		c->own_ctx = true;   /* one reference is ours either way */
	}
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL || c->timer == NULL || c->defer == NULL) {
		*error_r = "cannot create the connection";
		goto fail;
	}
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = ST_CONNECTING;
	arm_timer(c, c->to.connect);
	log_info(LOG_MOD, "cid=%s event=connect host=%s addr=%s port=%d tls_policy=%d", c->log_id,
		 log_quote(c->host), net_addr_str(p->addr, addr, sizeof(addr)),
		 net_addr_port(p->addr), (int)c->policy);
	/* a synchronous connect failure must not call back inside this call */
	c->cb = NULL;
	enter(c);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&c->addr, (int)c->addrlen) < 0) {
		c->busy--;
		*error_r = "cannot connect";
		goto fail;
	}
	c->busy--;
	c->cb = cb;
	if (c->state == ST_DEAD) {
		*error_r = "cannot connect";
		goto fail;
	}
	return c;
fail:
	c->cb = NULL;
	client_destroy(c);
	return NULL;
}

bool smtp_client_usable(const struct smtp_client *c)
{
	return c != NULL && c->state == ST_READY && c->bev != NULL;
}

bool smtp_client_has(const struct smtp_client *c, unsigned ext)
{
	return (c->ext & ext) == ext;
}

uint64_t smtp_client_size_limit(const struct smtp_client *c)
{
	return c->size_limit;
}

void smtp_client_quit(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;

	if (c == NULL)
		return;
	if (!smtp_client_usable(c)) {
		smtp_client_free(cp);
		return;
	}
	*cp = NULL;
	c->cb = NULL;
	c->state = ST_QUIT;
	send_cmd(c, c->to.command, "QUIT");
}
