/* SMTP AUTH (RFC 4954) over auth/'s SASL mechanisms.
 *
 * Offered only on submission, and only over TLS (or from loopback when the
 * administrator allows plaintext there).  Each attempt first waits out the
 * client IP's penalty delay from the shared table; a failure adds to it and
 * is logged in the stable format etc/fail2ban/filter.d/tern.conf matches;
 * after limits.auth_failures failures the session is closed. */
#include "smtp/server-private.h"
#include "auth/auth.h"
#include "lib/base64.h"
#include "lib/config.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>

static void smtp_auth_step(struct smtp_session *s, const unsigned char *in, size_t len,
			   bool have_input);

static void smtp_auth_end(struct smtp_session *s)
{
	auth_sasl_free(&s->sasl);
	if (s->state == SMTP_STATE_AUTH)
		s->state = SMTP_STATE_READY;
}

static void smtp_auth_failed(struct smtp_session *s, const char *user, const char *reason)
{
	auth_penalty_fail(s->c.ip);
	s->auth_failures++;
	log_warn("auth", "event=auth_failed proto=smtp sid=%s ip=%s user=%s mech=%s reason=%s",
		 s->c.id, s->c.ip, log_quote(user != NULL ? user : ""), s->auth_mech,
		 log_quote(reason != NULL ? reason : "failed"));
	smtp_auth_end(s);
	smtp_send(s, 535, "5.7.8", "Authentication credentials invalid");
	if (s->auth_failures >= s->l->cfg->limits.auth_failures) {
		smtp_send(s, 421, "4.7.0", "%s Too many authentication failures",
			  s->l->cfg->hostname);
		smtp_close(s, "authentication failures");
	}
}

static void smtp_auth_cb(void *ctx, const struct auth_result *r)
{
	struct smtp_session *s = ctx;

	if (s->c.closed) {
		smtp_auth_end(s);
		smtp_session_unref(s);
		return;
	}
	switch (r->status) {
	case AUTH_SASL_CONTINUE: {
		char *b64 = base64_encode_str(r->out, r->out_len);
		s->state = SMTP_STATE_AUTH;
		smtp_send(s, 334, NULL, "%s", b64);
		free(b64);
		break;
	}
	case AUTH_SASL_OK:
		auth_penalty_success(s->c.ip);
		s->user_id = r->user_id;
		log_info("auth", "event=auth_ok proto=smtp sid=%s ip=%s user=%s mech=%s", s->c.id,
			 s->c.ip, log_quote(r->address), s->auth_mech);
		if (r->out_len > 0) {
			/* RFC 4954 has no data on 235: SCRAM's server-final goes in a
			 * last 334, the client answers with an empty line, then 235. */
			char *b64 = base64_encode_str(r->out, r->out_len);
			s->auth_pending_user = xstrdup(r->address);
			s->state = SMTP_STATE_AUTH;
			smtp_send(s, 334, NULL, "%s", b64);
			free(b64);
		} else {
			s->user = xstrdup(r->address);
			smtp_send(s, 235, "2.7.0", "Authentication successful");
		}
		smtp_auth_end(s);   /* r points into the exchange: free it last */
		if (s->auth_pending_user != NULL)
			s->state = SMTP_STATE_AUTH;
		break;
	case AUTH_SASL_FAIL:
		smtp_auth_failed(s, r->address, r->reason);
		break;
	case AUTH_SASL_ERROR:
	default:
		log_info("auth", "event=auth_error proto=smtp sid=%s ip=%s mech=%s reason=%s", s->c.id,
			 s->c.ip, s->auth_mech, log_quote(r->reason ? r->reason : ""));
		smtp_auth_end(s);
		smtp_error(s, 501, "5.5.2", "Malformed authentication exchange");
		break;
	}
	if (smtp_session_unref(s))
		smtp_resume(s);
}

static void smtp_auth_step(struct smtp_session *s, const unsigned char *in, size_t len,
			   bool have_input)
{
	s->c.waiting = true;
	smtp_session_ref(s);
	auth_sasl_step(s->sasl, in, len, have_input, smtp_auth_cb, s);
}

/* Decode one base64 client response and feed it. */
static void smtp_auth_feed_b64(struct smtp_session *s, struct slice b64)
{
	struct buf raw;

	buf_init(&raw, SMTP_AUTH_LINE_MAX);
	if (base64_decode(&raw, b64.p, b64.len) < 0) {
		buf_free(&raw);
		smtp_auth_end(s);
		smtp_error(s, 501, "5.5.2", "Invalid base64 in authentication response");
		return;
	}
	smtp_auth_step(s, (const unsigned char *)buf_cstr(&raw), raw.len, true);
	buf_free(&raw);
}

struct auth_start {
	struct smtp_session *s;
	char *initial;          /* NULL: no initial response */
};

static void smtp_auth_begin(struct smtp_session *s, const char *initial)
{
	s->sasl = auth_sasl_begin(s->auth_mech, s->l->store, s->l->pool, s->c.base);
	if (s->sasl == NULL) {
		smtp_error(s, 504, "5.5.4", "Unrecognized authentication type");
		return;
	}
	s->state = SMTP_STATE_AUTH;
	if (initial == NULL)
		smtp_auth_step(s, NULL, 0, false);
	else if (strcmp(initial, "=") == 0)
		smtp_auth_step(s, (const unsigned char *)"", 0, true);
	else
		smtp_auth_feed_b64(s, slice_from(initial));
}

static void smtp_auth_delay_done(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd; (void)what;
	struct auth_start *a = ctx;
	struct smtp_session *s = a->s;

	s->c.waiting = false;
	if (!s->c.closed)
		smtp_auth_begin(s, a->initial);
	free(a->initial);
	free(a);
	if (smtp_session_unref(s) && !s->c.waiting)
		smtp_resume(s);
}

void smtp_cmd_auth(struct smtp_session *s, struct slice arg)
{
	struct slice mech = arg, initial = { NULL, 0 };
	const char *sp = memchr(arg.p, ' ', arg.len);
	unsigned delay;

	if (s->l->role != SMTP_ROLE_SUBMISSION) {
		smtp_error(s, 502, "5.5.1", "AUTH not available on this port");
		return;
	}
	if (!smtp_auth_allowed(s)) {
		smtp_error(s, 538, "5.7.11", "Encryption required for authentication, use STARTTLS");
		return;
	}
	if (s->user != NULL) {
		smtp_error(s, 503, "5.5.1", "Already authenticated");
		return;
	}
	if (s->have_mail) {
		smtp_error(s, 503, "5.5.1", "AUTH not allowed during a mail transaction");
		return;
	}
	if (sp != NULL) {
		mech.len = (size_t)(sp - arg.p);
		initial.p = sp + 1;
		initial.len = arg.len - mech.len - 1;
	}
	if (mech.len == 0 || mech.len > 32) {
		smtp_error(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
		return;
	}
	free(s->auth_mech);
	s->auth_mech = slice_dup(mech);
	for (char *p = s->auth_mech; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');

	delay = auth_penalty_delay_ms(s->c.ip);
	if (delay > 0) {
		struct auth_start *a = xcalloc(1, sizeof(*a));
		struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
		a->s = s;
		a->initial = initial.p != NULL ? slice_dup(initial) : NULL;
		if (s->delay_ev != NULL)
			event_free(s->delay_ev);
		s->delay_ev = evtimer_new(s->c.base, smtp_auth_delay_done, a);
		s->c.waiting = true;
		smtp_session_ref(s);
		evtimer_add(s->delay_ev, &tv);
		return;
	}
	{
		char *init = initial.p != NULL ? slice_dup(initial) : NULL;
		smtp_auth_begin(s, init);
		free(init);
	}
}

void smtp_auth_input(struct smtp_session *s, struct slice line)
{
	if (s->auth_pending_user != NULL) {
		/* the reply to our server-final 334: empty, then we are done */
		char *user = s->auth_pending_user;
		s->auth_pending_user = NULL;
		s->state = SMTP_STATE_READY;
		if (line.len == 0) {
			s->user = user;
			smtp_send(s, 235, "2.7.0", "Authentication successful");
		} else {
			free(user);
			s->user_id = 0;
			smtp_error(s, 501, "5.5.2", "Expected an empty response");
		}
		return;
	}
	if (line.len == 1 && line.p[0] == '*') {
		smtp_auth_end(s);
		smtp_error(s, 501, "5.0.0", "Authentication cancelled");
		return;
	}
	smtp_auth_feed_b64(s, line);
}
