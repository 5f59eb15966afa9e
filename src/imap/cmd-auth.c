/* IMAP commands of any state and of the not-authenticated state:
 * CAPABILITY, NOOP, LOGOUT (RFC 9051 6.1), STARTTLS (6.2.1), AUTHENTICATE
 * (6.2.2, RFC 4959 SASL-IR) and LOGIN (6.2.3), plus ENABLE (RFC 5161),
 * ID (RFC 2971) and NAMESPACE (RFC 2342).
 *
 * Passwords travel only over TLS, or from loopback when
 * imap.plaintext_auth_loopback is set; otherwise CAPABILITY says
 * LOGINDISABLED, lists no AUTH= mechanism, and LOGIN / AUTHENTICATE answer
 * NO [PRIVACYREQUIRED] (RFC 5530).  Each attempt first waits out the client
 * IP's delay from auth/'s shared penalty table; a failure adds to it, is
 * logged in the stable auth_failed format the fail2ban filter matches, and
 * answers NO [AUTHENTICATIONFAILED]; after limits.auth_failures failures
 * the session is closed with BYE. */
#include "imap/imap-private.h"
#include "auth/auth.h"
#include "lib/base64.h"
#include "lib/config.h"
#include "lib/log.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

/* ---- any state ---- */

void imap_cmd_capability(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf b;

	if (cmd->nargs != 0) {
		imap_bad(s, "CAPABILITY takes no arguments");
		return;
	}
	buf_init(&b, BUF_UNLIMITED);
	imap_capabilities(s, &b);
	imap_untagged(s, "CAPABILITY %s", buf_cstr(&b));
	buf_free(&b);
	imap_tagged(s, "OK", "CAPABILITY completed");
}

void imap_cmd_noop(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->nargs != 0) {
		imap_bad(s, "NOOP takes no arguments");
		return;
	}
	imap_tagged(s, "OK", "NOOP completed");
}

void imap_cmd_logout(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->nargs != 0) {
		imap_bad(s, "LOGOUT takes no arguments");
		return;
	}
	imap_untagged(s, "BYE Logging out");
	s->cur_def = NULL;      /* no mailbox updates after BYE */
	imap_tagged(s, "OK", "LOGOUT completed");
	s->state = IMAP_STATE_LOGOUT;
	imap_close(s, "logout");
}

void imap_cmd_id(struct imap_session *s, const struct imap_command *cmd)
{
	/* RFC 2971: "ID NIL" or a list of field/value pairs; we only log the
	 * client's name and version */
	if (cmd->nargs != 1 || (cmd->args[0].type != IMAP_ARG_NIL &&
				cmd->args[0].type != IMAP_ARG_LIST) ||
	    (cmd->args[0].type == IMAP_ARG_LIST && (cmd->args[0].count % 2 != 0 ||
						     cmd->args[0].count > 60))) {
		imap_bad(s, "Syntax: ID (field value ...) or ID NIL");
		return;
	}
	if (cmd->args[0].type == IMAP_ARG_LIST) {
		const struct imap_arg *a = cmd->args[0].children;
		for (size_t i = 0; i + 1 < cmd->args[0].count; i += 2) {
			struct slice f, v;
			bool nil;
			if (!imap_arg_string(&a[i], &f) || !imap_arg_nstring(&a[i + 1], &v, &nil)) {
				imap_bad(s, "ID fields are strings");
				return;
			}
			if (!nil && (slice_eq_ci(f, "name") || slice_eq_ci(f, "version"))) {
				char *val = xstrndup(v.p, v.len > 64 ? 64 : v.len);
				log_info("imap", "sid=%s event=client_id field=%s value=%s", s->c.id,
					 slice_eq_ci(f, "name") ? "name" : "version", log_quote(val));
				free(val);
			}
		}
	}
	imap_untagged(s, "ID (\"name\" \"Tern\" \"vendor\" \"Tern\")");
	imap_tagged(s, "OK", "ID completed");
}

/* ---- authenticated state helpers ---- */

void imap_cmd_enable(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf b;

	if (cmd->nargs == 0) {
		imap_bad(s, "Syntax: ENABLE capability ...");
		return;
	}
	buf_init(&b, BUF_UNLIMITED);
	for (size_t i = 0; i < cmd->nargs; i++) {
		struct slice a;
		if (!imap_arg_atom(&cmd->args[i], &a)) {
			buf_free(&b);
			imap_bad(s, "ENABLE takes capability names");
			return;
		}
		/* RFC 5161 3.1: unknown capabilities are ignored; only those that
		 * change state now are listed in ENABLED */
		if (slice_eq_ci(a, "IMAP4rev2") && !s->rev2) {
			s->rev2 = true;
			s->utf8 = true;
			buf_append_str(&b, " IMAP4rev2");
		} else if (slice_eq_ci(a, "UTF8=ACCEPT") && !s->utf8_accept) {
			/* RFC 6855 3: mailbox names and quoted strings in
			 * UTF-8 from now on, APPEND UTF8 (literal) allowed */
			s->utf8_accept = true;
			s->utf8 = true;
			buf_append_str(&b, " UTF8=ACCEPT");
		}
		/* RFC 7162 3.1, 3.2.3: QRESYNC implies CONDSTORE */
		if (slice_eq_ci(a, "CONDSTORE") && !s->condstore) {
			imap_condstore_enable(s);
			buf_append_str(&b, " CONDSTORE");
		}
		if (slice_eq_ci(a, "QRESYNC") && !s->qresync) {
			imap_condstore_enable(s);
			s->qresync = true;
			buf_append_str(&b, " QRESYNC");
		}
	}
	imap_untagged(s, "ENABLED%s", buf_cstr(&b));
	buf_free(&b);
	imap_tagged(s, "OK", "ENABLE completed");
}

void imap_cmd_namespace(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->nargs != 0) {
		imap_bad(s, "NAMESPACE takes no arguments");
		return;
	}
	/* RFC 2342: one personal namespace, no other users' or shared ones */
	imap_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_tagged(s, "OK", "NAMESPACE completed");
}

/* ---- STARTTLS ---- */

void imap_cmd_starttls(struct imap_session *s, const struct imap_command *cmd)
{
	struct evbuffer *in;
	size_t pending;

	if (cmd->nargs != 0) {
		imap_bad(s, "STARTTLS takes no arguments");
		return;
	}
	if (s->c.ssl != NULL) {
		imap_bad(s, "TLS already active");
		return;
	}
	if (s->l->tls == NULL) {
		imap_tagged(s, "NO", "[UNAVAILABLE] TLS not available");
		return;
	}
	imap_tagged(s, "OK", "Begin TLS negotiation now");
	/* RFC 9051 6.2.1 / the CVE-2011-0411 class: whatever the client sent
	 * after STARTTLS came in plaintext and must not be acted upon */
	in = bufferevent_get_input(s->c.bev);
	pending = evbuffer_get_length(in);
	if (pending > 0) {
		log_warn("imap", "sid=%s event=starttls_pipelined ip=%s bytes=%zu", s->c.id, s->c.ip,
			 pending);
		evbuffer_drain(in, pending);
	}
	if (!imap_reader_idle(s->reader)) {
		/* bytes of a following command already in the reader: drop them */
		struct imap_reader_limits lim = {
			.max_line = IMAP_MAX_LINE_PREAUTH, .max_literal = IMAP_LITERAL_PREAUTH,
			.max_args = IMAP_MAX_ARGS, .max_depth = IMAP_MAX_DEPTH,
		};
		imap_reader_destroy(&s->reader);
		s->reader = imap_reader_create(&lim);
	}
	if (imap_start_tls(s) < 0) {
		log_error("imap", "sid=%s event=tls_setup_failed", s->c.id);
		imap_close(s, "TLS setup failed");
	}
}

/* ---- authentication ---- */

static void imap_sasl_end(struct imap_session *s)
{
	auth_sasl_free(&s->sasl);
	s->in_sasl = false;
}

static void imap_auth_failed(struct imap_session *s, const char *user, const char *reason)
{
	auth_penalty_fail(s->c.ip);
	s->auth_failures++;
	log_warn("auth", "event=auth_failed proto=imap sid=%s ip=%s user=%s mech=%s reason=%s",
		 s->c.id, s->c.ip, log_quote(user != NULL ? user : ""), s->auth_mech,
		 log_quote(reason != NULL ? reason : "failed"));
	imap_sasl_end(s);
	imap_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
	if (s->auth_failures >= s->l->cfg->limits.auth_failures) {
		imap_untagged(s, "BYE Too many authentication failures");
		imap_close(s, "authentication failures");
	}
}

static void imap_send_continuation(struct imap_session *s, const unsigned char *p, size_t len)
{
	char *b64 = base64_encode_str(p, len);
	/* RFC 9051 6.2.2: "+ " and the base64 challenge (empty allowed) */
	imap_send_raw(s, "+ ", 2);
	imap_send_raw(s, b64, strlen(b64));
	imap_send_raw(s, "\r\n", 2);
	free(b64);
}

static void imap_auth_cb(void *ctx, const struct auth_result *r)
{
	struct imap_session *s = ctx;

	if (s->c.closed) {
		imap_sasl_end(s);
		imap_session_unref(s);
		return;
	}
	s->c.waiting = false;
	switch (r->status) {
	case AUTH_SASL_CONTINUE:
		s->in_sasl = true;
		imap_send_continuation(s, r->out, r->out_len);
		break;
	case AUTH_SASL_OK:
		auth_penalty_success(s->c.ip);
		if (r->out_len > 0) {
			/* SCRAM's server-final in a last continuation; the client
			 * answers with an empty line (RFC 9051 6.2.2) */
			s->auth_pending_user = xstrdup(r->address);
			s->auth_pending_id = r->user_id;
			imap_send_continuation(s, r->out, r->out_len);
			auth_sasl_free(&s->sasl);
			s->in_sasl = true;
		} else {
			char *addr = xstrdup(r->address);
			int64_t id = r->user_id;
			imap_sasl_end(s);
			imap_login_done(s, id, addr, s->auth_mech);
			free(addr);
		}
		break;
	case AUTH_SASL_FAIL:
		imap_auth_failed(s, r->address, r->reason);
		break;
	case AUTH_SASL_ERROR:
	default:
		log_info("auth", "event=auth_error proto=imap sid=%s ip=%s mech=%s reason=%s", s->c.id,
			 s->c.ip, s->auth_mech, log_quote(r->reason ? r->reason : ""));
		imap_sasl_end(s);
		imap_bad(s, "Malformed authentication exchange");
		break;
	}
	if (imap_session_unref(s) && !s->c.waiting)
		imap_resume(s);
}

static void imap_sasl_step(struct imap_session *s, const unsigned char *in, size_t len,
			   bool have_input)
{
	s->c.waiting = true;
	imap_session_ref(s);
	auth_sasl_step(s->sasl, in, len, have_input, imap_auth_cb, s);
}

static void imap_sasl_feed_b64(struct imap_session *s, struct slice b64)
{
	struct buf raw;

	buf_init(&raw, IMAP_MAX_LINE);
	if (base64_decode(&raw, b64.p, b64.len) < 0) {
		buf_free(&raw);
		imap_sasl_end(s);
		imap_bad(s, "Invalid base64 in authentication response");
		return;
	}
	imap_sasl_step(s, (const unsigned char *)buf_cstr(&raw), raw.len, true);
	explicit_bzero(raw.data != NULL ? raw.data : (char *)"", raw.len);
	buf_free(&raw);
}

/* What to start once the penalty delay is over.  initial: NULL (none), "="
 * (empty) or base64; for LOGIN, the raw PLAIN message. */
struct imap_auth_start {
	struct imap_session *s;
	char *initial;
	char *plain;
	size_t plain_len;
};

static void imap_auth_start_free(struct imap_auth_start *a)
{
	if (a->initial != NULL)
		explicit_bzero(a->initial, strlen(a->initial));
	free(a->initial);
	if (a->plain != NULL)
		explicit_bzero(a->plain, a->plain_len);
	free(a->plain);
	free(a);
}

static void imap_auth_begin(struct imap_session *s, struct imap_auth_start *a)
{
	const char *mech = a->plain != NULL ? "PLAIN" : s->auth_mech;

	s->sasl = auth_sasl_begin(mech, s->l->store, s->l->pool, s->c.base);
	if (s->sasl == NULL || strcasecmp(mech, "LOGIN") == 0) {
		auth_sasl_free(&s->sasl);
		imap_tagged(s, "NO", "[CANNOT] Unsupported authentication mechanism");
		return;
	}
	if (a->plain != NULL)
		imap_sasl_step(s, (const unsigned char *)a->plain, a->plain_len, true);
	else if (a->initial == NULL)
		imap_sasl_step(s, NULL, 0, false);
	else if (strcmp(a->initial, "=") == 0)
		imap_sasl_step(s, (const unsigned char *)"", 0, true);
	else
		imap_sasl_feed_b64(s, slice_from(a->initial));
}

static void imap_auth_delay_done(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd; (void)what;
	struct imap_auth_start *a = ctx;
	struct imap_session *s = a->s;

	s->c.waiting = false;
	if (!s->c.closed)
		imap_auth_begin(s, a);
	imap_auth_start_free(a);
	if (imap_session_unref(s) && !s->c.waiting)
		imap_resume(s);
}

static void imap_auth_schedule(struct imap_session *s, struct imap_auth_start *a)
{
	unsigned delay = auth_penalty_delay_ms(s->c.ip);

	a->s = s;
	if (delay == 0) {
		imap_auth_begin(s, a);
		imap_auth_start_free(a);
		return;
	}
	struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
	if (s->delay_ev != NULL)
		event_free(s->delay_ev);
	s->delay_ev = evtimer_new(s->c.base, imap_auth_delay_done, a);
	s->c.waiting = true;
	imap_session_ref(s);
	evtimer_add(s->delay_ev, &tv);
}

void imap_cmd_authenticate(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_auth_start *a;
	struct slice mech, ir = { NULL, 0 };

	if (cmd->nargs < 1 || cmd->nargs > 2 || !imap_arg_atom(&cmd->args[0], &mech) ||
	    (cmd->nargs == 2 && !imap_arg_atom(&cmd->args[1], &ir))) {
		imap_bad(s, "Syntax: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	if (!imap_plaintext_allowed(s)) {
		imap_tagged(s, "NO", "[PRIVACYREQUIRED] Authentication disallowed on non-secure "
			    "connections, use STARTTLS");
		return;
	}
	if (mech.len > 32) {
		imap_tagged(s, "NO", "[CANNOT] Unsupported authentication mechanism");
		return;
	}
	free(s->auth_mech);
	s->auth_mech = slice_dup(mech);
	for (char *p = s->auth_mech; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	a = xcalloc(1, sizeof(*a));
	if (cmd->nargs == 2)
		a->initial = slice_dup(ir);   /* RFC 4959: "=" is an empty response */
	imap_auth_schedule(s, a);
}

void imap_sasl_input(struct imap_session *s, struct slice line)
{
	if (s->auth_pending_user != NULL) {
		char *user = s->auth_pending_user;
		int64_t id = s->auth_pending_id;
		s->auth_pending_user = NULL;
		s->in_sasl = false;
		if (line.len == 0)
			imap_login_done(s, id, user, s->auth_mech);
		else
			imap_bad(s, "Expected an empty response");
		free(user);
		return;
	}
	if (line.len == 1 && line.p[0] == '*') {
		/* RFC 9051 6.2.2: the client cancels */
		imap_sasl_end(s);
		imap_bad(s, "Authentication cancelled");
		return;
	}
	s->in_sasl = false;
	imap_sasl_feed_b64(s, line);
}

void imap_cmd_login(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_auth_start *a;
	struct slice user, pass;

	if (cmd->nargs != 2 || !imap_arg_astring(&cmd->args[0], &user) ||
	    !imap_arg_astring(&cmd->args[1], &pass)) {
		imap_bad(s, "Syntax: LOGIN user password");
		return;
	}
	if (!imap_plaintext_allowed(s)) {
		imap_tagged(s, "NO", "[PRIVACYREQUIRED] Plaintext authentication disallowed on "
			    "non-secure connections, use STARTTLS");
		return;
	}
	if (user.len == 0 || user.len > 255 || pass.len == 0 || pass.len > AUTH_MAX_PASSWORD ||
	    memchr(user.p, '\0', user.len) != NULL || memchr(pass.p, '\0', pass.len) != NULL) {
		free(s->auth_mech);
		s->auth_mech = xstrdup("LOGIN");
		imap_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
		return;
	}
	/* RFC 4616 message: "" NUL user NUL password */
	a = xcalloc(1, sizeof(*a));
	a->plain_len = 1 + user.len + 1 + pass.len;
	a->plain = xmalloc(a->plain_len);
	a->plain[0] = '\0';
	memcpy(a->plain + 1, user.p, user.len);
	a->plain[1 + user.len] = '\0';
	memcpy(a->plain + 2 + user.len, pass.p, pass.len);
	free(s->auth_mech);
	s->auth_mech = xstrdup("LOGIN");
	imap_auth_schedule(s, a);
}
