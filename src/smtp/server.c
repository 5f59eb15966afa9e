/* SMTP server engine: connection life cycle, input dispatch, replies, TLS.
 *
 * Invariants:
 *  - A session belongs to the event loop that accepted it; every callback
 *    (I/O, timers, store and auth completions) runs on that loop.
 *  - While s->waiting, no further command is read; pipelined input stays
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
#include "lib/proxy.h"
#include "lib/tls.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SMTP_READ_HIGH_WATERMARK (256 * 1024)

static __thread struct smtp_session *sessions;
static __thread unsigned session_count;

static void smtp_process_input(struct smtp_session *s);
static void smtp_read_cb(struct bufferevent *bev, void *ctx);
static void smtp_write_cb(struct bufferevent *bev, void *ctx);
static void smtp_event_cb(struct bufferevent *bev, short what, void *ctx);

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
	return session_count;
}

static void smtp_session_free(struct smtp_session *s)
{
	smtp_transaction_reset(s);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else if (sessions == s)
		sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	session_count--;
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->delay_ev != NULL)
		event_free(s->delay_ev);
	if (s->close_ev != NULL)
		event_free(s->close_ev);
	if (s->sasl != NULL)
		auth_sasl_free(&s->sasl);
	if (s->conn_ip[0] != '\0')
		net_conn_release(s->conn_ip);
	buf_free(&s->msg);
	free(s->helo);
	free(s->auth_mech);
	free(s->user);
	free(s->auth_pending_user);
	free(s->rcpts);
	free(s);
}

void smtp_session_ref(struct smtp_session *s)
{
	s->refs++;
}

bool smtp_session_unref(struct smtp_session *s)
{
	if (--s->refs > 0)
		return true;
	smtp_session_free(s);
	return false;
}

/* The connection is gone (or we hung up): stop all I/O now, free when the
 * last async step is done. */
static void smtp_disconnect(struct smtp_session *s, const char *reason)
{
	if (s->closed)
		return;
	s->closed = true;
	log_info("smtp", "sid=%s event=disconnect ip=%s commands=%u reason=%s", s->id, s->ip,
		 s->commands, log_quote(reason));
	if (s->bev != NULL) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	smtp_session_unref(s);
}

/* Has every reply reached the socket?  With TLS the filter's output
 * drains into the socket bufferevent first, which may still hold it. */
static bool smtp_output_flushed(struct smtp_session *s)
{
	struct bufferevent *under;

	if (evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
		return false;
	under = bufferevent_get_underlying(s->bev);
	return under == NULL || evbuffer_get_length(bufferevent_get_output(under)) == 0;
}

/* Closing: disconnect once the output is flushed, polling briefly for the
 * TLS case (the socket bufferevent's callbacks belong to the filter). */
static void smtp_close_poll(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd; (void)what;
	struct smtp_session *s = ctx;

	if (s->closed)
		return;
	if (smtp_output_flushed(s) || ++s->close_polls > 200) {
		smtp_disconnect(s, "closed");
		return;
	}
	struct timeval tv = { 0, 10 * 1000 };
	event_add(s->close_ev, &tv);
}

static void smtp_close_when_flushed(struct smtp_session *s)
{
	if (smtp_output_flushed(s)) {
		smtp_disconnect(s, "closed");
		return;
	}
	if (bufferevent_get_underlying(s->bev) != NULL &&
	    evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
		if (s->close_ev == NULL)
			s->close_ev = evtimer_new(s->base, smtp_close_poll, s);
		smtp_close_poll(-1, 0, s);
	}
	/* otherwise the write callback comes back here */
}

void smtp_close(struct smtp_session *s, const char *reason)
{
	if (s->closed || s->close_after_write)
		return;
	s->close_after_write = true;
	log_debug("smtp", "sid=%s event=closing reason=%s", s->id, log_quote(reason));
	bufferevent_disable(s->bev, EV_READ);
	smtp_close_when_flushed(s);
}

void smtp_send_raw(struct smtp_session *s, const char *text)
{
	if (s->bev != NULL && !s->closed)
		evbuffer_add(bufferevent_get_output(s->bev), text, strlen(text));
}

static void smtp_vsend(struct smtp_session *s, int code, const char *enhanced, const char *fmt,
		       va_list ap) __attribute__((format(printf, 4, 0)));

static void smtp_vsend(struct smtp_session *s, int code, const char *enhanced, const char *fmt,
		       va_list ap)
{
	char text[1024];
	const char *p, *nl;
	struct evbuffer *out;

	if (s->bev == NULL || s->closed)
		return;
	out = bufferevent_get_output(s->bev);
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
}

bool smtp_auth_allowed(struct smtp_session *s)
{
	if (s->l->role != SMTP_ROLE_SUBMISSION)
		return false;
	return s->tls_active || (s->loopback && s->l->cfg->plaintext_auth_loopback);
}

static void smtp_greet(struct smtp_session *s)
{
	s->state = SMTP_STATE_INIT;
	smtp_send(s, 220, NULL, "%s ESMTP Tern", s->l->cfg->hostname);
}

/* ---- TLS ---- */

int smtp_start_tls(struct smtp_session *s)
{
	struct bufferevent *tls_bev;

	s->ssl = SSL_new(s->l->tls);
	if (s->ssl == NULL)
		return -1;
	tls_bev = bufferevent_openssl_filter_new(s->base, s->bev, s->ssl,
						 BUFFEREVENT_SSL_ACCEPTING,
						 BEV_OPT_CLOSE_ON_FREE);
	if (tls_bev == NULL) {
		SSL_free(s->ssl);
		s->ssl = NULL;
		return -1;
	}
	/* the filter now owns the socket bufferevent (closed with it) */
	s->bev = tls_bev;
	bufferevent_openssl_set_allow_dirty_shutdown(tls_bev, 1);
	bufferevent_setcb(tls_bev, smtp_read_cb, smtp_write_cb, smtp_event_cb, s);
	bufferevent_setwatermark(tls_bev, EV_READ, 0, SMTP_READ_HIGH_WATERMARK);
	{
		struct timeval tv = { s->l->cfg->limits.timeout, 0 };
		bufferevent_set_timeouts(tls_bev, &tv, &tv);
	}
	bufferevent_enable(tls_bev, EV_READ | EV_WRITE);
	s->waiting = true;  /* until the handshake completes */
	return 0;
}

static void smtp_tls_ready(struct smtp_session *s)
{
	s->tls_active = true;
	tls_describe(s->ssl, s->tls_desc, sizeof(s->tls_desc));
	log_info("smtp", "sid=%s event=tls ip=%s tls=%s", s->id, s->ip, log_quote(s->tls_desc));
	s->waiting = false;
	if (s->l->implicit_tls)
		smtp_greet(s);
	smtp_process_input(s);
}

/* ---- PROXY protocol ---- */

static bool smtp_proxy_input(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t len = evbuffer_get_length(in), consumed = 0;
	struct proxy_info info;
	const char *error = NULL;
	enum proxy_status st;

	if (len > PROXY_V2_MAX)
		len = PROXY_V2_MAX;
	st = proxy_parse(evbuffer_pullup(in, (ssize_t)len), len, &info, &consumed, &error);
	if (st == PROXY_NEED_MORE)
		return false;
	if (st == PROXY_ERROR) {
		log_warn("smtp", "sid=%s event=proxy_error ip=%s error=%s", s->id, s->ip,
			 log_quote(error));
		smtp_close(s, "bad PROXY header");
		return false;
	}
	evbuffer_drain(in, consumed);
	if (!info.local) {
		char ip[NET_ADDR_MAX];
		net_addr_str((struct sockaddr *)&info.src, ip, sizeof(ip));
		log_info("smtp", "sid=%s event=proxy proxy=%s ip=%s", s->id, s->ip, ip);
		snprintf(s->ip, sizeof(s->ip), "%s", ip);
		s->port = net_addr_port((struct sockaddr *)&info.src);
		s->loopback = net_addr_is_loopback((struct sockaddr *)&info.src);
	}
	if (s->l->implicit_tls) {
		if (smtp_start_tls(s) < 0)
			smtp_disconnect(s, "TLS setup failed");
		return false;
	}
	smtp_greet(s);
	return true;
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
	log_warn("smtp", "sid=%s event=http_request ip=%s", s->id, s->ip);
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

/* Discard input up to and including the next LF (rest of an over-long line). */
static bool smtp_discard_line(struct smtp_session *s, struct evbuffer *in)
{
	struct evbuffer_ptr pos = evbuffer_search(in, "\n", 1, NULL);
	if (pos.pos < 0) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return false;
	}
	evbuffer_drain(in, (size_t)pos.pos + 1);
	s->discard_line = false;
	return true;
}

static void smtp_process_input(struct smtp_session *s)
{
	smtp_session_ref(s);
	s->processing++;
	while (!s->closed && !s->close_after_write && !s->waiting && s->bev != NULL) {
		struct evbuffer *in = bufferevent_get_input(s->bev);
		size_t avail = evbuffer_get_length(in);

		if (avail == 0)
			break;
		if (s->state == SMTP_STATE_PROXY) {
			if (!smtp_proxy_input(s))
				break;
			continue;
		}
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
			if (!smtp_discard_line(s, in))
				break;
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
			log_debug("smtp", "sid=%s event=bare_lf_command", s->id);
		if (s->state == SMTP_STATE_AUTH)
			smtp_auth_input(s, l);
		else
			smtp_command_line(s, l);
		free(copy);
	}
	s->processing--;
	smtp_session_unref(s);
}

void smtp_resume(struct smtp_session *s)
{
	s->waiting = false;
	/* An async step that completed synchronously, inside the input loop:
	 * that loop goes on by itself once the current input is consumed
	 * (re-entering it here would read bytes not yet drained). */
	if (s->processing > 0)
		return;
	if (!s->closed && s->bev != NULL) {
		smtp_process_input(s);
		if (!s->closed && s->close_after_write)
			smtp_close_when_flushed(s);
	}
}

/* ---- libevent callbacks ---- */

static void smtp_read_cb(struct bufferevent *bev, void *ctx)
{
	(void)bev;
	smtp_process_input(ctx);
}

static void smtp_write_cb(struct bufferevent *bev, void *ctx)
{
	(void)bev;
	struct smtp_session *s = ctx;
	if (s->close_after_write)
		smtp_close_when_flushed(s);
}

static void smtp_event_cb(struct bufferevent *bev, short what, void *ctx)
{
	(void)bev;
	struct smtp_session *s = ctx;

	if (what & BEV_EVENT_CONNECTED) {
		if (s->ssl != NULL && !s->tls_active)
			smtp_tls_ready(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->close_after_write || (what & BEV_EVENT_WRITING)) {
			smtp_disconnect(s, "timeout");   /* the peer does not read */
			return;
		}
		smtp_send(s, 421, "4.4.2", "%s Timeout, closing connection", s->l->cfg->hostname);
		smtp_close(s, "timeout");
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		const char *why = s->ssl != NULL && !s->tls_active ? "TLS handshake failed" : "connection error";
		if (s->ssl != NULL)
			log_info("smtp", "sid=%s event=tls_error ip=%s error=%s", s->id, s->ip,
				 log_quote(tls_last_error()));
		smtp_disconnect(s, why);
		return;
	}
	if (what & BEV_EVENT_EOF)
		smtp_disconnect(s, "client closed");
}

/* ---- accept ---- */

void smtp_session_accept(const struct smtp_listener *l, struct event_base *base, int fd,
			 const struct sockaddr *sa, socklen_t salen)
{
	(void)salen;
	const struct config *cfg = l->cfg;
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	unsigned char rnd[4];
	struct timeval tv = { cfg->limits.timeout, 0 };

	s->l = l;
	s->base = base;
	s->refs = 1;
	RAND_bytes(rnd, sizeof(rnd));
	snprintf(s->id, sizeof(s->id), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
	net_addr_str(sa, s->ip, sizeof(s->ip));
	s->port = net_addr_port(sa);
	s->loopback = net_addr_is_loopback(sa);
	buf_init(&s->msg, cfg->limits.message_size + 65536);
	s->next = sessions;
	if (sessions != NULL)
		sessions->prev = s;
	sessions = s;
	session_count++;

	s->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		close(fd);
		s->closed = true;
		smtp_session_unref(s);
		return;
	}
	bufferevent_setcb(s->bev, smtp_read_cb, smtp_write_cb, smtp_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_READ_HIGH_WATERMARK);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	log_info("smtp", "sid=%s event=connect ip=%s port=%d listener=%s", s->id, s->ip, s->port,
		 l->name);

	if (!net_conn_acquire(s->ip, cfg->limits.connections_per_ip, cfg->limits.connections)) {
		log_warn("smtp", "sid=%s event=connection_limit ip=%s", s->id, s->ip);
		smtp_send(s, 421, "4.7.0", "%s Too many connections, try again later", cfg->hostname);
		smtp_close(s, "connection limit");
		return;
	}
	snprintf(s->conn_ip, sizeof(s->conn_ip), "%s", s->ip);

	if (cfg->proxy_trusted_count > 0 &&
	    proxy_addr_trusted(sa, (const char *const *)cfg->proxy_trusted, cfg->proxy_trusted_count)) {
		s->state = SMTP_STATE_PROXY;
		return;
	}
	if (l->implicit_tls) {
		if (smtp_start_tls(s) < 0)
			smtp_disconnect(s, "TLS setup failed");
		return;
	}
	smtp_greet(s);
}

/* ---- drain ---- */

void smtp_sessions_drain(struct event_base *base, bool immediate)
{
	(void)base;
	struct smtp_session *s, *next;

	for (s = sessions; s != NULL; s = next) {
		next = s->next;
		if (s->closed)
			continue;
		s->draining = true;
		/* idle between transactions: nothing to lose by closing now */
		if (immediate || (s->state <= SMTP_STATE_READY && !s->waiting)) {
			smtp_send(s, 421, "4.3.2", "%s Service shutting down", s->l->cfg->hostname);
			smtp_close(s, "shutdown");
		}
	}
}

/* ---- accessors ---- */

const struct smtp_listener *smtp_session_listener(struct smtp_session *s) { return s->l; }
const char *smtp_session_id(struct smtp_session *s) { return s->id; }
const char *smtp_session_ip(struct smtp_session *s) { return s->ip; }
const char *smtp_session_msgid(struct smtp_session *s) { return s->msgid; }
struct event_base *smtp_session_base(struct smtp_session *s) { return s->base; }
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
