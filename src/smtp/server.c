/* SMTP server engine: input dispatch, replies, the session state; the
 * connection life cycle, TLS and PROXY input are lib/conn.c.
 *
 * Invariants:
 *  - A session belongs to the event loop that accepted it; every callback
 *    (I/O, timers, store and auth completions) runs on that loop.
 *  - While s->c.waiting, no further command is read; pipelined input stays
 *    buffered (bounded by the read watermark) and is processed on resume,
 *    so replies always come out in command order (RFC 2920).
 *  - A session is freed only when it is disconnected and no async step
 *    holds a reference (refs == 0).
 * RFC 5321 (SMTP), RFC 2920 (PIPELINING), RFC 3207 (STARTTLS: pipelined
 * bytes after STARTTLS are discarded and the session is reset). */
#include "smtp/server-private.h"
#include "auth/auth.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/tls.h"

#include <event2/buffer.h>
#include <sys/un.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SMTP_READ_HIGH_WATERMARK (256 * 1024)

static __thread struct conn_list sessions;

void smtp_reply_set(struct smtp_reply *r, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;
	r->code = code;
	r->enhanced = enhanced;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

unsigned smtp_sessions_count(void)
{
	return sessions.count;
}

static void smtp_conn_free(struct conn *c)
{
	struct smtp_session *s = conn_container(c, struct smtp_session, c);

	smtp_transaction_reset(s);
	if (s->delay_ev != NULL)
		event_free(s->delay_ev);
	if (s->sasl != NULL)
		auth_sasl_free(&s->sasl);
	buf_free(&s->msg);
	free(s->helo);
	free(s->auth_mech);
	free(s->user);
	free(s->auth_pending_user);
	free(s->local_peer);
	free(s->local_refusal);
	free(s->rcpts);
	free(s);
}

/* The connection is gone (or we hung up): conn stops all I/O and frees
 * the session when the last async step is done. */
static void smtp_conn_disconnect(struct conn *c, const char *reason)
{
	struct smtp_session *s = conn_container(c, struct smtp_session, c);

	log_info("smtp", "sid=%s event=disconnect ip=%s commands=%u reason=%s", s->c.id, s->c.ip,
		 s->commands, log_quote(reason));
}

void smtp_send_raw(struct smtp_session *s, const char *text)
{
	if (s->c.bev != NULL && !s->c.closed)
		evbuffer_add(bufferevent_get_output(s->c.bev), text, strlen(text));
}

static void smtp_vsend(struct smtp_session *s, int code, const char *enhanced, const char *fmt,
		       va_list ap) __attribute__((format(printf, 4, 0)));

static void smtp_vsend(struct smtp_session *s, int code, const char *enhanced, const char *fmt,
		       va_list ap)
{
	char text[1024];
	const char *p, *nl;
	struct evbuffer *out;

	if (s->c.bev == NULL || s->c.closed)
		return;
	out = bufferevent_get_output(s->c.bev);
	vsnprintf(text, sizeof(text), fmt, ap);
	/* multi-line replies: "250-line" for all but the last (RFC 5321 4.2.1) */
	for (p = text;; p = nl + 1) {
		nl = strchr(p, '\n');
		if (enhanced != NULL && enhanced[0] != '\0')
			evbuffer_add_printf(out, "%d%c%s %.*s\r\n", code, nl ? '-' : ' ', enhanced,
					    nl ? (int)(nl - p) : (int)strlen(p), p);
		else
			evbuffer_add_printf(out, "%d%c%.*s\r\n", code, nl ? '-' : ' ',
					    nl ? (int)(nl - p) : (int)strlen(p), p);
		if (nl == NULL)
			break;
	}
}

void smtp_send(struct smtp_session *s, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	smtp_vsend(s, code, enhanced, fmt, ap);
	va_end(ap);
}

void smtp_error(struct smtp_session *s, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	smtp_vsend(s, code, enhanced, fmt, ap);
	va_end(ap);
	if (++s->errors >= s->l->cfg->limits.errors) {
		smtp_send(s, 421, "4.7.0", "%s Too many errors, closing connection",
			  s->l->cfg->hostname);
		smtp_close(s, "too many errors");
	}
}

void smtp_transaction_reset(struct smtp_session *s)
{
	for (unsigned i = 0; i < s->rcpt_count; i++) {
		if (s->l->hooks->free_rcpt != NULL && s->rcpts[i].ctx != NULL)
			s->l->hooks->free_rcpt(s->rcpts[i].ctx);
		smtp_rcpt_params_clear(&s->rcpts[i].params);
		free(s->rcpts[i].address);
	}
	s->rcpt_count = 0;
	if (s->have_mail)
		smtp_mail_params_clear(&s->mail);
	s->have_mail = false;
	s->body_started = false;
	s->bdat_failed = false;
	s->bdat_remaining = 0;
	s->msgid[0] = '\0';
	buf_free(&s->msg);
	if (s->state == SMTP_STATE_MAIL || s->state == SMTP_STATE_RCPT ||
	    s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT)
		s->state = SMTP_STATE_READY;
}

void smtp_param_ext(struct smtp_session *s, struct smtp_param_ext *ext)
{
	ext->size = true;
	ext->eightbitmime = true;
	ext->binarymime = false;
	ext->smtputf8 = true;
	ext->dsn = true;
	ext->auth = s->l->role == SMTP_ROLE_SUBMISSION;
	ext->requiretls = s->c.tls_active;   /* RFC 8689 2: only over TLS */
}

bool smtp_auth_allowed(struct smtp_session *s)
{
	if (s->l->role != SMTP_ROLE_SUBMISSION)
		return false;
	return s->c.tls_active || (s->c.loopback && s->l->cfg->plaintext_auth_loopback);
}

static void smtp_greet(struct conn *c)
{
	struct smtp_session *s = conn_container(c, struct smtp_session, c);

	s->state = SMTP_STATE_INIT;
	if (s->local_refusal != NULL) {
		/* RFC 5321 3.1: a 554 greeting, then the server closes */
		smtp_send(s, 554, "5.7.1", "%s", s->local_refusal);
		smtp_close(s, "local user refused");
		return;
	}
	smtp_send(s, 220, NULL, "%s ESMTP Tern", s->l->cfg->hostname);
}

/* ---- command dispatch ---- */

enum cmd_flags {
	CMD_NEEDS_HELO = 1 << 0,    /* only after HELO/EHLO (RFC 5321 4.1.4) */
	CMD_NEEDS_AUTH = 1 << 1,    /* on submission, only after AUTH */
};

struct smtp_cmd_def {
	enum smtp_verb verb;
	void (*handler)(struct smtp_session *s, struct slice arg);
	unsigned flags;
};

static void cmd_helo(struct smtp_session *s, struct slice arg) { smtp_cmd_helo(s, arg, false); }
static void cmd_ehlo(struct smtp_session *s, struct slice arg) { smtp_cmd_helo(s, arg, true); }

static void cmd_noop(struct smtp_session *s, struct slice arg)
{
	(void)arg;
	smtp_send(s, 250, "2.0.0", "OK");
}

static void cmd_quit(struct smtp_session *s, struct slice arg)
{
	(void)arg;
	smtp_send(s, 221, "2.0.0", "%s closing connection", s->l->cfg->hostname);
	smtp_close(s, "QUIT");
}

static void cmd_vrfy(struct smtp_session *s, struct slice arg)
{
	(void)arg;
	/* RFC 5321 3.5.3: 252 when we do not verify (address harvesting) */
	smtp_send(s, 252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct smtp_session *s, struct slice arg)
{
	(void)arg;
	smtp_error(s, 502, "5.5.1", "EXPN is not supported");
}

static void cmd_help(struct smtp_session *s, struct slice arg)
{
	(void)arg;
	smtp_send(s, 214, "2.0.0", "See RFC 5321; Tern supports the commands listed in EHLO");
}

static void cmd_http(struct smtp_session *s, struct slice arg)
{
	(void)arg;
	log_warn("smtp", "sid=%s event=http_request ip=%s", s->c.id, s->c.ip);
	smtp_send(s, 554, "5.7.0", "This is an SMTP server, not a web proxy");
	smtp_close(s, "HTTP request");
}

static const struct smtp_cmd_def smtp_commands[] = {
	{ SMTP_VERB_HELO, cmd_helo, 0 },
	{ SMTP_VERB_EHLO, cmd_ehlo, 0 },
	{ SMTP_VERB_MAIL, smtp_cmd_mail, CMD_NEEDS_HELO | CMD_NEEDS_AUTH },
	{ SMTP_VERB_RCPT, smtp_cmd_rcpt, CMD_NEEDS_HELO | CMD_NEEDS_AUTH },
	{ SMTP_VERB_DATA, smtp_cmd_data, CMD_NEEDS_HELO | CMD_NEEDS_AUTH },
	{ SMTP_VERB_BDAT, smtp_cmd_bdat, CMD_NEEDS_HELO | CMD_NEEDS_AUTH },
	{ SMTP_VERB_RSET, smtp_cmd_rset, 0 },
	{ SMTP_VERB_NOOP, cmd_noop, 0 },
	{ SMTP_VERB_QUIT, cmd_quit, 0 },
	{ SMTP_VERB_VRFY, cmd_vrfy, 0 },
	{ SMTP_VERB_EXPN, cmd_expn, 0 },
	{ SMTP_VERB_HELP, cmd_help, 0 },
	{ SMTP_VERB_STARTTLS, smtp_cmd_starttls, CMD_NEEDS_HELO },
	{ SMTP_VERB_AUTH, smtp_cmd_auth, CMD_NEEDS_HELO },
	{ SMTP_VERB_HTTP, cmd_http, 0 },
};

static void smtp_command_line(struct smtp_session *s, struct slice line)
{
	struct smtp_command cmd;
	const struct smtp_cmd_def *def = NULL;

	s->commands++;
	if (smtp_command_parse(line, &cmd) < 0) {
		smtp_error(s, 500, "5.5.2", "Syntax error, invalid characters in command");
		return;
	}
	for (size_t i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++)
		if (smtp_commands[i].verb == cmd.verb)
			def = &smtp_commands[i];
	if (def == NULL) {
		smtp_error(s, 500, "5.5.2", "Command unrecognized");
		return;
	}
	if (s->draining && s->state <= SMTP_STATE_READY && cmd.verb != SMTP_VERB_QUIT) {
		smtp_send(s, 421, "4.3.2", "%s Service shutting down, try again later",
			  s->l->cfg->hostname);
		smtp_close(s, "draining");
		return;
	}
	if ((def->flags & CMD_NEEDS_HELO) && s->state == SMTP_STATE_INIT) {
		smtp_error(s, 503, "5.5.1", "Send HELO or EHLO first");
		return;
	}
	if ((def->flags & CMD_NEEDS_AUTH) && s->l->role == SMTP_ROLE_SUBMISSION && s->user == NULL) {
		smtp_error(s, 530, "5.7.0", "Authentication required");
		return;
	}
	def->handler(s, cmd.arg);
}

/* Read commands (or body bytes) while no async step is in flight; conn
 * holds a reference and keeps resumes from re-entering this loop. */
static void smtp_process_input(struct conn *c)
{
	struct smtp_session *s = conn_container(c, struct smtp_session, c);

	while (conn_can_read(&s->c)) {
		struct evbuffer *in = bufferevent_get_input(s->c.bev);
		size_t avail = evbuffer_get_length(in);

		if (avail == 0)
			break;
		if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT) {
			/* feed contiguous chunks without linearising the buffer */
			struct evbuffer_iovec v;
			if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
				break;
			size_t used = smtp_body_input(s, v.iov_base, v.iov_len);
			evbuffer_drain(in, used);
			continue;
		}
		if (s->discard_line) {
			if (!conn_discard_line(&s->c))
				break;
			s->discard_line = false;
			continue;
		}
		size_t max = s->state == SMTP_STATE_AUTH ? SMTP_AUTH_LINE_MAX : s->l->cfg->limits.smtp_line;
		size_t look = avail < max ? avail : max;
		const char *p = (const char *)evbuffer_pullup(in, (ssize_t)look);
		struct slice line;
		size_t consumed = 0;
		bool bare_lf = false;
		enum smtp_line_status st = smtp_line_find(p, look, max, &line, &consumed, &bare_lf);

		if (st == SMTP_LINE_NEED_MORE)
			break;
		if (st == SMTP_LINE_TOO_LONG) {
			bool ended = consumed > 0 && p[consumed - 1] == '\n';
			evbuffer_drain(in, consumed);
			if (!ended)
				s->discard_line = true;
			smtp_error(s, 500, "5.5.6", "Line too long (limit %zu bytes)", max);
			continue;
		}
		/* copy: handlers may start TLS and drain the buffer */
		char *copy = xstrndup(line.p, line.len);
		struct slice l = { copy, line.len };
		evbuffer_drain(in, consumed);
		if (bare_lf)
			log_debug("smtp", "sid=%s event=bare_lf_command", s->c.id);
		if (s->state == SMTP_STATE_AUTH)
			smtp_auth_input(s, l);
		else
			smtp_command_line(s, l);
		free(copy);
	}
}

static void smtp_conn_timeout(struct conn *c)
{
	struct smtp_session *s = conn_container(c, struct smtp_session, c);

	smtp_send(s, 421, "4.4.2", "%s Timeout, closing connection", s->l->cfg->hostname);
}

static void smtp_conn_refuse(struct conn *c)
{
	struct smtp_session *s = conn_container(c, struct smtp_session, c);

	smtp_send(s, 421, "4.7.0", "%s Too many connections, try again later", s->l->cfg->hostname);
}

static const struct conn_ops smtp_conn_ops = {
	.log_mod = "smtp",
	.start = smtp_greet,
	.input = smtp_process_input,
	.timeout = smtp_conn_timeout,
	.refuse = smtp_conn_refuse,
	.disconnect = smtp_conn_disconnect,
	.free = smtp_conn_free,
};

/* ---- accept ---- */

void smtp_session_accept(const struct smtp_listener *l, struct event_base *base, int fd,
			 const struct sockaddr *sa, socklen_t salen)
{
	(void)salen;
	const struct config *cfg = l->cfg;
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	struct conn_params p = {
		.ops = &smtp_conn_ops,
		.list = &sessions,
		.cfg = cfg,
		.tls = l->tls,
		.implicit_tls = l->implicit_tls,
		.listener = l->name,
		.read_timeout = cfg->limits.timeout,
		.write_timeout = cfg->limits.timeout,
		.read_high = SMTP_READ_HIGH_WATERMARK,
	};

	s->l = l;
	buf_init(&s->msg, cfg->limits.message_size + 65536);
	conn_accept(&s->c, &p, base, fd, sa);
}

void smtp_session_accept_local(const struct smtp_listener *l, struct event_base *base, int fd,
			       const char *peer, int64_t user_id, const char *user,
			       const char *refusal)
{
	const struct config *cfg = l->cfg;
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct conn_params p = {
		.ops = &smtp_conn_ops,
		.list = &sessions,
		.cfg = cfg,
		.tls = NULL,           /* nothing to protect on a local socket */
		.listener = l->name,
		.read_timeout = cfg->limits.timeout,
		.write_timeout = cfg->limits.timeout,
		.read_high = SMTP_READ_HIGH_WATERMARK,
	};

	s->l = l;
	s->local_peer = xstrdup(peer);
	if (user != NULL) {
		s->user_id = user_id;
		s->user = xstrdup(user);
	} else {
		s->local_refusal = xstrdup(refusal != NULL ? refusal : "Local submission refused");
	}
	buf_init(&s->msg, cfg->limits.message_size + 65536);
	log_info("smtp", "event=local_peer peer=%s user=%s", log_quote(peer),
		 user != NULL ? log_quote(user) : "-");
	conn_accept(&s->c, &p, base, fd, (const struct sockaddr *)&sun);
}

/* ---- drain ---- */

static void smtp_drain_one(struct conn *c, void *arg)
{
	struct smtp_session *s = conn_container(c, struct smtp_session, c);
	bool immediate = *(const bool *)arg;

	s->draining = true;
	/* idle between transactions: nothing to lose by closing now */
	if (immediate || (s->state <= SMTP_STATE_READY && !s->c.waiting)) {
		smtp_send(s, 421, "4.3.2", "%s Service shutting down", s->l->cfg->hostname);
		smtp_close(s, "shutdown");
	}
}

void smtp_sessions_drain(struct event_base *base, bool immediate)
{
	(void)base;
	conn_list_foreach(&sessions, smtp_drain_one, &immediate);
}

/* ---- accessors ---- */

const struct smtp_listener *smtp_session_listener(struct smtp_session *s) { return s->l; }
const char *smtp_session_id(struct smtp_session *s) { return s->c.id; }
const char *smtp_session_ip(struct smtp_session *s) { return s->c.ip; }
const char *smtp_session_msgid(struct smtp_session *s) { return s->msgid; }
const char *smtp_session_helo(struct smtp_session *s) { return s->helo; }
struct event_base *smtp_session_base(struct smtp_session *s) { return s->c.base; }
int64_t smtp_session_user_id(struct smtp_session *s) { return s->user_id; }
const char *smtp_session_user(struct smtp_session *s) { return s->user; }
const struct smtp_mail_params *smtp_session_mail(struct smtp_session *s) { return &s->mail; }
unsigned smtp_session_rcpt_count(struct smtp_session *s) { return s->rcpt_count; }
void *smtp_session_rcpt_ctx(struct smtp_session *s, unsigned i) { return s->rcpts[i].ctx; }
const char *smtp_session_rcpt_address(struct smtp_session *s, unsigned i) { return s->rcpts[i].address; }
const struct smtp_rcpt_params *smtp_session_rcpt_params(struct smtp_session *s, unsigned i)
{
	return &s->rcpts[i].params;
}
