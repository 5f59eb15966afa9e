/* POP3 AUTHORIZATION-state commands: CAPA (RFC 2449 5), STLS (RFC 2595 4),
 * USER/PASS (RFC 1939 7), APOP (refused: it needs plaintext passwords on
 * the server) and AUTH (RFC 5034) over auth/'s SASL mechanisms.
 *
 * Passwords travel only over TLS, or from loopback when
 * pop3.plaintext_auth_loopback is set; otherwise USER, PASS and AUTH answer
 * -ERR and CAPA lists neither USER nor SASL (RFC 2595 2.3).  Each attempt
 * first waits out the client IP's delay from auth/'s shared penalty table;
 * a failure adds to it, is logged in the stable format the fail2ban filter
 * matches, and answers "-ERR [AUTH]" (RFC 3206); after
 * limits.auth_failures failures the session is closed. */
#include "pop3/pop3-private.h"
#include "auth/auth.h"
#include "lib/base64.h"
#include "lib/config.h"
#include "lib/log.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

/* ---- CAPA ---- */

void pop3_cmd_capa(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	const struct config *cfg = s->l->cfg;
	struct buf r;

	buf_init(&r, BUF_UNLIMITED);
	buf_append_str(&r, "+OK Capability list follows\r\n"
			   "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
	if (cfg->pop3.expire_days > 0)
		buf_printf(&r, "EXPIRE %u\r\n", cfg->pop3.expire_days);
	else
		buf_append_str(&r, "EXPIRE NEVER\r\n");
	if (s->state == POP3_STATE_AUTHORIZATION) {
		if (s->l->tls != NULL && s->c.ssl == NULL)
			buf_append_str(&r, "STLS\r\n");
		if (pop3_plaintext_allowed(s))
			buf_printf(&r, "USER\r\nSASL %s\r\n", auth_sasl_mechanisms());
	}
	buf_append_str(&r, "IMPLEMENTATION Tern\r\n.\r\n");
	pop3_send_raw(s, r.data, r.len);
	buf_free(&r);
}

/* ---- STLS ---- */

void pop3_cmd_stls(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct evbuffer *in = bufferevent_get_input(s->c.bev);
	size_t pending;

	if (cmd->argc > 0) {
		pop3_err(s, "STLS takes no arguments");
		return;
	}
	if (s->c.ssl != NULL) {
		pop3_err(s, "TLS already active");
		return;
	}
	if (s->l->tls == NULL) {
		pop3_fail(s, "[SYS/TEMP] TLS not available");
		return;
	}
	pop3_ok(s, "Begin TLS negotiation now");
	/* RFC 2595 4 / the CVE-2011-0411 class: whatever the client sent
	 * after STLS came in plaintext and must not be acted upon. */
	pending = evbuffer_get_length(in);
	if (pending > 0) {
		log_warn("pop3", "sid=%s event=stls_pipelined ip=%s bytes=%zu", s->c.id, s->c.ip, pending);
		evbuffer_drain(in, pending);
	}
	free(s->user_arg);
	s->user_arg = NULL;
	if (pop3_start_tls(s) < 0) {
		log_error("pop3", "sid=%s event=tls_setup_failed", s->c.id);
		pop3_close(s, "TLS setup failed");
	}
}

/* ---- shared by PASS and AUTH ---- */

static void pop3_sasl_end(struct pop3_session *s)
{
	auth_sasl_free(&s->sasl);
	if (s->state == POP3_STATE_SASL)
		s->state = POP3_STATE_AUTHORIZATION;
}

static void pop3_auth_failed(struct pop3_session *s, const char *user, const char *reason)
{
	auth_penalty_fail(s->c.ip);
	s->auth_failures++;
	log_warn("auth", "event=auth_failed proto=pop3 sid=%s ip=%s user=%s mech=%s reason=%s",
		 s->c.id, s->c.ip, log_quote(user != NULL ? user : ""), s->auth_mech,
		 log_quote(reason != NULL ? reason : "failed"));
	pop3_sasl_end(s);
	pop3_fail(s, "[AUTH] Authentication failed");
	if (s->auth_failures >= s->l->cfg->limits.auth_failures) {
		pop3_fail(s, "Too many authentication failures");
		pop3_close(s, "authentication failures");
	}
}

static void pop3_auth_cb(void *ctx, const struct auth_result *r)
{
	struct pop3_session *s = ctx;

	if (s->c.closed) {
		pop3_sasl_end(s);
		pop3_session_unref(s);
		return;
	}
	s->c.waiting = false;     /* opening the maildrop may wait again */
	switch (r->status) {
	case AUTH_SASL_CONTINUE: {
		char *b64 = base64_encode_str(r->out, r->out_len);
		s->state = POP3_STATE_SASL;
		/* RFC 5034 4: "+ " and the base64 challenge */
		pop3_send_raw(s, "+ ", 2);
		pop3_send_raw(s, b64, strlen(b64));
		pop3_send_raw(s, "\r\n", 2);
		free(b64);
		break;
	}
	case AUTH_SASL_OK:
		auth_penalty_success(s->c.ip);
		if (r->out_len > 0) {
			/* SCRAM's server-final: in a last "+" continuation, the client
			 * answers with an empty line (RFC 5034 4, as in SMTP AUTH) */
			char *b64 = base64_encode_str(r->out, r->out_len);
			s->auth_pending_user = xstrdup(r->address);
			s->auth_pending_id = r->user_id;
			pop3_send_raw(s, "+ ", 2);
			pop3_send_raw(s, b64, strlen(b64));
			pop3_send_raw(s, "\r\n", 2);
			free(b64);
			auth_sasl_free(&s->sasl);
			s->state = POP3_STATE_SASL;
		} else {
			char *addr = xstrdup(r->address);
			int64_t id = r->user_id;
			pop3_sasl_end(s);      /* r points into the exchange: copy first */
			pop3_maildrop_open(s, id, addr, s->auth_mech);
			free(addr);
		}
		break;
	case AUTH_SASL_FAIL:
		pop3_auth_failed(s, r->address, r->reason);
		break;
	case AUTH_SASL_ERROR:
	default:
		log_info("auth", "event=auth_error proto=pop3 sid=%s ip=%s mech=%s reason=%s", s->c.id,
			 s->c.ip, s->auth_mech, log_quote(r->reason ? r->reason : ""));
		pop3_sasl_end(s);
		pop3_err(s, "[AUTH] Malformed authentication exchange");
		break;
	}
	if (pop3_session_unref(s) && !s->c.waiting)
		pop3_resume(s);
}

static void pop3_sasl_step(struct pop3_session *s, const unsigned char *in, size_t len,
			   bool have_input)
{
	s->c.waiting = true;
	pop3_session_ref(s);
	auth_sasl_step(s->sasl, in, len, have_input, pop3_auth_cb, s);
}

static void pop3_sasl_feed_b64(struct pop3_session *s, struct slice b64)
{
	struct buf raw;

	buf_init(&raw, POP3_AUTH_LINE_MAX);
	if (base64_decode(&raw, b64.p, b64.len) < 0) {
		buf_free(&raw);
		pop3_sasl_end(s);
		pop3_err(s, "[AUTH] Invalid base64 in authentication response");
		return;
	}
	pop3_sasl_step(s, (const unsigned char *)buf_cstr(&raw), raw.len, true);
	explicit_bzero(raw.data != NULL ? raw.data : (char *)"", raw.len);
	buf_free(&raw);
}

/* Start the exchange once the penalty delay is over.  initial: NULL (none),
 * "=" (empty) or base64; for PASS, the raw PLAIN message in plain/plain_len. */
struct pop3_auth_start {
	struct pop3_session *s;
	char *initial;
	char *plain;
	size_t plain_len;
};

static void pop3_auth_begin(struct pop3_session *s, struct pop3_auth_start *a)
{
	const char *mech = a->plain != NULL ? "PLAIN" : s->auth_mech;

	s->sasl = auth_sasl_begin(mech, s->l->store, s->l->pool, s->c.base);
	if (s->sasl == NULL) {
		pop3_err(s, "[AUTH] Unsupported authentication mechanism");
		return;
	}
	s->state = POP3_STATE_SASL;
	if (a->plain != NULL)
		pop3_sasl_step(s, (const unsigned char *)a->plain, a->plain_len, true);
	else if (a->initial == NULL)
		pop3_sasl_step(s, NULL, 0, false);
	else if (strcmp(a->initial, "=") == 0)
		pop3_sasl_step(s, (const unsigned char *)"", 0, true);
	else
		pop3_sasl_feed_b64(s, slice_from(a->initial));
}

static void pop3_auth_start_free(struct pop3_auth_start *a)
{
	free(a->initial);
	if (a->plain != NULL)
		explicit_bzero(a->plain, a->plain_len);
	free(a->plain);
	free(a);
}

static void pop3_auth_delay_done(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd; (void)what;
	struct pop3_auth_start *a = ctx;
	struct pop3_session *s = a->s;

	s->c.waiting = false;
	if (!s->c.closed)
		pop3_auth_begin(s, a);
	pop3_auth_start_free(a);
	if (pop3_session_unref(s) && !s->c.waiting)
		pop3_resume(s);
}

static void pop3_auth_schedule(struct pop3_session *s, struct pop3_auth_start *a)
{
	unsigned delay = auth_penalty_delay_ms(s->c.ip);

	a->s = s;
	if (delay == 0) {
		pop3_auth_begin(s, a);
		pop3_auth_start_free(a);
		return;
	}
	struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
	if (s->delay_ev != NULL)
		event_free(s->delay_ev);
	s->delay_ev = evtimer_new(s->c.base, pop3_auth_delay_done, a);
	s->c.waiting = true;
	pop3_session_ref(s);
	evtimer_add(s->delay_ev, &tv);
}

/* ---- USER / PASS / APOP ---- */

void pop3_cmd_user(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (!pop3_plaintext_allowed(s)) {
		pop3_err(s, "[AUTH] Plaintext authentication disallowed on non-secure connections, "
			 "use STLS");
		return;
	}
	if (cmd->argc != 1 || cmd->args[0].len > 255) {
		pop3_err(s, "Syntax: USER name");
		return;
	}
	free(s->user_arg);
	s->user_arg = slice_dup(cmd->args[0]);
	pop3_ok(s, "Send PASS");
}

void pop3_cmd_pass(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct pop3_auth_start *a;
	size_t ulen;

	if (!pop3_plaintext_allowed(s)) {
		pop3_err(s, "[AUTH] Plaintext authentication disallowed on non-secure connections, "
			 "use STLS");
		return;
	}
	if (s->user_arg == NULL) {
		pop3_err(s, "Send USER first");
		return;
	}
	if (cmd->rest.len == 0 || cmd->rest.len > AUTH_MAX_PASSWORD) {
		free(s->user_arg);
		s->user_arg = NULL;
		pop3_err(s, "Syntax: PASS password");
		return;
	}
	/* RFC 4616 message: "" NUL user NUL password */
	ulen = strlen(s->user_arg);
	a = xcalloc(1, sizeof(*a));
	a->plain_len = 1 + ulen + 1 + cmd->rest.len;
	a->plain = xmalloc(a->plain_len);
	a->plain[0] = '\0';
	memcpy(a->plain + 1, s->user_arg, ulen);
	a->plain[1 + ulen] = '\0';
	memcpy(a->plain + 2 + ulen, cmd->rest.p, cmd->rest.len);
	free(s->user_arg);
	s->user_arg = NULL;
	free(s->auth_mech);
	s->auth_mech = xstrdup("USER");
	pop3_auth_schedule(s, a);
}

void pop3_cmd_apop(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	pop3_err(s, "APOP not supported, use USER/PASS or AUTH over TLS");
}

/* ---- AUTH ---- */

void pop3_cmd_auth(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct pop3_auth_start *a;

	if (cmd->argc == 0) {
		/* the pre-CAPA listing of mechanisms (RFC 1734 practice) */
		struct buf r;
		buf_init(&r, BUF_UNLIMITED);
		buf_append_str(&r, "+OK\r\n");
		for (const char *m = pop3_plaintext_allowed(s) ? auth_sasl_mechanisms() : ""; *m;) {
			size_t n = strcspn(m, " ");
			buf_append(&r, m, n);
			buf_append_str(&r, "\r\n");
			m += n;
			while (*m == ' ')
				m++;
		}
		buf_append_str(&r, ".\r\n");
		pop3_send_raw(s, r.data, r.len);
		buf_free(&r);
		return;
	}
	if (!pop3_plaintext_allowed(s)) {
		pop3_err(s, "[AUTH] Plaintext authentication disallowed on non-secure connections, "
			 "use STLS");
		return;
	}
	if (cmd->args[0].len > 32) {
		pop3_err(s, "[AUTH] Unsupported authentication mechanism");
		return;
	}
	free(s->auth_mech);
	s->auth_mech = slice_dup(cmd->args[0]);
	for (char *p = s->auth_mech; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	a = xcalloc(1, sizeof(*a));
	if (cmd->argc == 2)
		a->initial = slice_dup(cmd->args[1]);
	pop3_auth_schedule(s, a);
}

void pop3_sasl_input(struct pop3_session *s, struct slice line)
{
	if (s->auth_pending_user != NULL) {
		/* the answer to our server-final continuation: empty, then done */
		char *user = s->auth_pending_user;
		int64_t id = s->auth_pending_id;
		s->auth_pending_user = NULL;
		s->state = POP3_STATE_AUTHORIZATION;
		if (line.len == 0)
			pop3_maildrop_open(s, id, user, s->auth_mech);
		else
			pop3_err(s, "[AUTH] Expected an empty response");
		free(user);
		return;
	}
	if (line.len == 1 && line.p[0] == '*') {
		/* RFC 5034 4: the client cancels */
		pop3_sasl_end(s);
		pop3_err(s, "[AUTH] Authentication cancelled");
		return;
	}
	pop3_sasl_feed_b64(s, line);
}
