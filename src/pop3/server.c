/* POP3 server: connection life cycle, input dispatch, replies, TLS, PROXY,
 * and the maildrop lock.
 *
 * Invariants (as in the SMTP engine):
 *  - A session belongs to the event loop that accepted it; every callback
 *    (I/O, timers, auth and store completions) runs on that loop.
 *  - While s->waiting, no further command is read: pipelined commands
 *    (RFC 2449 6.6) stay buffered and run in order, so replies come out in
 *    command order.  RETR/TOP output is produced in chunks as the socket
 *    drains, and also holds the session in waiting.
 *  - A session is freed only when disconnected and no async step holds a
 *    reference.  Dropping the connection before QUIT deletes nothing
 *    (RFC 1939 6: only the UPDATE state changes the maildrop).
 *  - The maildrop lock of a user is held from login until the UPDATE is
 *    committed or the session is freed.
 * RFC 1939 (POP3; 3: 10-minute minimum idle timer), RFC 2449 (CAPA,
 * PIPELINING, RESP-CODES), RFC 2595 4 (STLS: bytes pipelined after STLS are
 * discarded). */
#include "pop3/pop3-private.h"
#include "auth/auth.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/proxy.h"
#include "lib/tls.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static __thread struct pop3_session *sessions;
static __thread unsigned session_count;

static void pop3_process_input(struct pop3_session *s);
static void pop3_read_cb(struct bufferevent *bev, void *ctx);
static void pop3_write_cb(struct bufferevent *bev, void *ctx);
static void pop3_event_cb(struct bufferevent *bev, short what, void *ctx);

/* ---- the maildrop lock ----
 * A small set of user ids under a mutex: sessions of every loop thread of
 * this process share it.  A linear scan is fine: it holds one entry per
 * logged-in POP3 session. */
static pthread_mutex_t lock_mutex = PTHREAD_MUTEX_INITIALIZER;
static int64_t *lock_ids;
static size_t lock_count, lock_alloc;

bool pop3_lock_acquire(int64_t user_id)
{
	bool ok = true;

	pthread_mutex_lock(&lock_mutex);
	for (size_t i = 0; i < lock_count; i++) {
		if (lock_ids[i] == user_id) {
			ok = false;
			break;
		}
	}
	if (ok) {
		if (lock_count == lock_alloc) {
			lock_alloc = lock_alloc ? lock_alloc * 2 : 64;
			lock_ids = xrealloc(lock_ids, lock_alloc * sizeof(*lock_ids));
		}
		lock_ids[lock_count++] = user_id;
	}
	pthread_mutex_unlock(&lock_mutex);
	return ok;
}

void pop3_lock_release(int64_t user_id)
{
	pthread_mutex_lock(&lock_mutex);
	for (size_t i = 0; i < lock_count; i++) {
		if (lock_ids[i] == user_id) {
			lock_ids[i] = lock_ids[--lock_count];
			break;
		}
	}
	pthread_mutex_unlock(&lock_mutex);
}

/* ---- life cycle ---- */

unsigned pop3_sessions_count(void)
{
	return session_count;
}

static void pop3_session_free(struct pop3_session *s)
{
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
	pop3_maildrop_free(s);
	free(s->user_arg);
	free(s->auth_mech);
	free(s->auth_pending_user);
	free(s);
}

void pop3_session_ref(struct pop3_session *s)
{
	s->refs++;
}

bool pop3_session_unref(struct pop3_session *s)
{
	if (--s->refs > 0)
		return true;
	pop3_session_free(s);
	return false;
}

static void pop3_disconnect(struct pop3_session *s, const char *reason)
{
	if (s->closed)
		return;
	s->closed = true;
	log_info("pop3", "sid=%s event=disconnect ip=%s user=%s commands=%u reason=%s", s->id,
		 s->ip, log_quote(s->user ? s->user : ""), s->commands, log_quote(reason));
	if (s->retr_fd >= 0) {
		close(s->retr_fd);
		s->retr_fd = -1;
	}
	if (s->bev != NULL) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	pop3_session_unref(s);
}

static bool pop3_output_flushed(struct pop3_session *s)
{
	struct bufferevent *under;

	if (evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
		return false;
	under = bufferevent_get_underlying(s->bev);
	return under == NULL || evbuffer_get_length(bufferevent_get_output(under)) == 0;
}

/* TLS: the socket bufferevent under the filter may still hold output whose
 * callbacks belong to the filter, so poll briefly until it is gone. */
static void pop3_close_poll(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd; (void)what;
	struct pop3_session *s = ctx;

	if (s->closed)
		return;
	if (pop3_output_flushed(s) || ++s->close_polls > 200) {
		pop3_disconnect(s, "closed");
		return;
	}
	struct timeval tv = { 0, 10 * 1000 };
	event_add(s->close_ev, &tv);
}

static void pop3_close_when_flushed(struct pop3_session *s)
{
	if (pop3_output_flushed(s)) {
		pop3_disconnect(s, "closed");
		return;
	}
	if (bufferevent_get_underlying(s->bev) != NULL &&
	    evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
		if (s->close_ev == NULL)
			s->close_ev = evtimer_new(s->base, pop3_close_poll, s);
		pop3_close_poll(-1, 0, s);
	}
}

void pop3_close(struct pop3_session *s, const char *reason)
{
	if (s->closed || s->close_after_write)
		return;
	s->close_after_write = true;
	log_debug("pop3", "sid=%s event=closing reason=%s", s->id, log_quote(reason));
	bufferevent_disable(s->bev, EV_READ);
	pop3_close_when_flushed(s);
}

/* ---- replies ---- */

void pop3_send_raw(struct pop3_session *s, const char *p, size_t len)
{
	if (s->bev != NULL && !s->closed)
		evbuffer_add(bufferevent_get_output(s->bev), p, len);
}

static void pop3_vreply(struct pop3_session *s, const char *status, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void pop3_vreply(struct pop3_session *s, const char *status, const char *fmt, va_list ap)
{
	struct evbuffer *out;

	if (s->bev == NULL || s->closed)
		return;
	out = bufferevent_get_output(s->bev);
	evbuffer_add_printf(out, "%s ", status);
	evbuffer_add_vprintf(out, fmt, ap);
	evbuffer_add(out, "\r\n", 2);
}

void pop3_ok(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pop3_vreply(s, "+OK", fmt, ap);
	va_end(ap);
}

void pop3_fail(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pop3_vreply(s, "-ERR", fmt, ap);
	va_end(ap);
}

void pop3_err(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pop3_vreply(s, "-ERR", fmt, ap);
	va_end(ap);
	if (++s->errors >= s->l->cfg->limits.errors) {
		pop3_fail(s, "Too many errors, closing connection");
		pop3_close(s, "too many errors");
	}
}

bool pop3_plaintext_allowed(struct pop3_session *s)
{
	return s->tls_active || (s->loopback && s->l->cfg->pop3.plaintext_auth_loopback);
}

static void pop3_greet(struct pop3_session *s)
{
	s->state = POP3_STATE_AUTHORIZATION;
	/* no APOP timestamp: APOP needs plaintext passwords on the server */
	pop3_ok(s, "Tern POP3 server ready");
}

/* ---- TLS ---- */

int pop3_start_tls(struct pop3_session *s)
{
	struct bufferevent *tls_bev;

	s->ssl = SSL_new(s->l->tls);
	if (s->ssl == NULL)
		return -1;
	tls_bev = bufferevent_openssl_filter_new(s->base, s->bev, s->ssl,
						 BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls_bev == NULL) {
		SSL_free(s->ssl);
		s->ssl = NULL;
		return -1;
	}
	s->bev = tls_bev;
	bufferevent_openssl_set_allow_dirty_shutdown(tls_bev, 1);
	bufferevent_setcb(tls_bev, pop3_read_cb, pop3_write_cb, pop3_event_cb, s);
	bufferevent_setwatermark(tls_bev, EV_READ, 0, POP3_READ_HIGH_WATERMARK);
	bufferevent_setwatermark(tls_bev, EV_WRITE, POP3_WRITE_LOW_WATERMARK, 0);
	{
		struct timeval tv = { POP3_IDLE_TIMEOUT, 0 };
		bufferevent_set_timeouts(tls_bev, &tv, &tv);
	}
	bufferevent_enable(tls_bev, EV_READ | EV_WRITE);
	s->waiting = true;  /* until the handshake completes */
	return 0;
}

static void pop3_tls_ready(struct pop3_session *s)
{
	s->tls_active = true;
	tls_describe(s->ssl, s->tls_desc, sizeof(s->tls_desc));
	log_info("pop3", "sid=%s event=tls ip=%s tls=%s", s->id, s->ip, log_quote(s->tls_desc));
	s->waiting = false;
	if (s->l->implicit_tls)
		pop3_greet(s);
	pop3_process_input(s);
}

/* ---- PROXY protocol ---- */

static bool pop3_proxy_input(struct pop3_session *s)
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
		log_warn("pop3", "sid=%s event=proxy_error ip=%s error=%s", s->id, s->ip,
			 log_quote(error));
		pop3_close(s, "bad PROXY header");
		return false;
	}
	evbuffer_drain(in, consumed);
	if (!info.local) {
		char ip[NET_ADDR_MAX];
		net_addr_str((struct sockaddr *)&info.src, ip, sizeof(ip));
		log_info("pop3", "sid=%s event=proxy proxy=%s ip=%s", s->id, s->ip, ip);
		snprintf(s->ip, sizeof(s->ip), "%s", ip);
		s->port = net_addr_port((struct sockaddr *)&info.src);
		s->loopback = net_addr_is_loopback((struct sockaddr *)&info.src);
	}
	if (s->l->implicit_tls) {
		if (pop3_start_tls(s) < 0)
			pop3_disconnect(s, "TLS setup failed");
		return false;
	}
	pop3_greet(s);
	return true;
}

/* ---- command dispatch ---- */

enum cmd_flags {
	CMD_AUTHORIZATION = 1 << 0,   /* allowed before login */
	CMD_TRANSACTION = 1 << 1,     /* allowed after login */
};

struct pop3_cmd_def {
	enum pop3_verb verb;
	void (*handler)(struct pop3_session *s, const struct pop3_command *cmd);
	unsigned flags;
};

static void cmd_noop(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (cmd->argc > 0) {
		pop3_err(s, "NOOP takes no arguments");
		return;
	}
	pop3_ok(s, "NOOP");
}

static void cmd_http(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	log_warn("pop3", "sid=%s event=http_request ip=%s", s->id, s->ip);
	pop3_fail(s, "This is a POP3 server");
	pop3_close(s, "HTTP request");
}

static const struct pop3_cmd_def pop3_commands[] = {
	{ POP3_VERB_CAPA, pop3_cmd_capa, CMD_AUTHORIZATION | CMD_TRANSACTION },
	{ POP3_VERB_STLS, pop3_cmd_stls, CMD_AUTHORIZATION },
	{ POP3_VERB_USER, pop3_cmd_user, CMD_AUTHORIZATION },
	{ POP3_VERB_PASS, pop3_cmd_pass, CMD_AUTHORIZATION },
	{ POP3_VERB_APOP, pop3_cmd_apop, CMD_AUTHORIZATION },
	{ POP3_VERB_AUTH, pop3_cmd_auth, CMD_AUTHORIZATION },
	{ POP3_VERB_QUIT, pop3_cmd_quit, CMD_AUTHORIZATION | CMD_TRANSACTION },
	{ POP3_VERB_STAT, pop3_cmd_stat, CMD_TRANSACTION },
	{ POP3_VERB_LIST, pop3_cmd_list, CMD_TRANSACTION },
	{ POP3_VERB_UIDL, pop3_cmd_uidl, CMD_TRANSACTION },
	{ POP3_VERB_RETR, pop3_cmd_retr, CMD_TRANSACTION },
	{ POP3_VERB_TOP, pop3_cmd_top, CMD_TRANSACTION },
	{ POP3_VERB_DELE, pop3_cmd_dele, CMD_TRANSACTION },
	{ POP3_VERB_RSET, pop3_cmd_rset, CMD_TRANSACTION },
	{ POP3_VERB_NOOP, cmd_noop, CMD_TRANSACTION },
	{ POP3_VERB_HTTP, cmd_http, CMD_AUTHORIZATION | CMD_TRANSACTION },
};

static void pop3_command_line(struct pop3_session *s, struct slice line)
{
	struct pop3_command cmd;
	const struct pop3_cmd_def *def = NULL;
	const char *error = NULL;

	s->commands++;
	if (pop3_command_parse(line, &cmd, &error) < 0) {
		pop3_err(s, "%s", error);
		return;
	}
	for (size_t i = 0; i < sizeof(pop3_commands) / sizeof(pop3_commands[0]); i++)
		if (pop3_commands[i].verb == cmd.verb)
			def = &pop3_commands[i];
	if (def == NULL) {
		pop3_err(s, "Unknown command");
		return;
	}
	if (s->draining && cmd.verb != POP3_VERB_QUIT) {
		pop3_fail(s, "[SYS/TEMP] Server shutting down, try again later");
		pop3_close(s, "draining");
		return;
	}
	if (s->state == POP3_STATE_AUTHORIZATION && !(def->flags & CMD_AUTHORIZATION)) {
		pop3_err(s, "Unknown command in AUTHORIZATION state, log in first");
		return;
	}
	if (s->state == POP3_STATE_TRANSACTION && !(def->flags & CMD_TRANSACTION)) {
		pop3_err(s, "Command not valid in TRANSACTION state");
		return;
	}
	def->handler(s, &cmd);
}

static bool pop3_discard_line(struct pop3_session *s, struct evbuffer *in)
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

static void pop3_process_input(struct pop3_session *s)
{
	pop3_session_ref(s);
	while (!s->closed && !s->close_after_write && !s->waiting && s->bev != NULL) {
		struct evbuffer *in = bufferevent_get_input(s->bev);
		size_t avail = evbuffer_get_length(in);

		if (avail == 0)
			break;
		if (s->state == POP3_STATE_PROXY) {
			if (!pop3_proxy_input(s))
				break;
			continue;
		}
		if (s->discard_line) {
			if (!pop3_discard_line(s, in))
				break;
			continue;
		}
		size_t max = s->state == POP3_STATE_SASL ? POP3_AUTH_LINE_MAX : POP3_LINE_MAX;
		size_t look = avail < max ? avail : max;
		const char *p = (const char *)evbuffer_pullup(in, (ssize_t)look);
		struct slice line;
		size_t consumed = 0;
		enum pop3_line_status st = pop3_line_find(p, look, max, &line, &consumed);

		if (st == POP3_LINE_NEED_MORE)
			break;
		if (st == POP3_LINE_TOO_LONG) {
			bool ended = consumed > 0 && p[consumed - 1] == '\n';
			evbuffer_drain(in, consumed);
			if (!ended)
				s->discard_line = true;
			if (s->state == POP3_STATE_SASL) {
				auth_sasl_free(&s->sasl);
				s->state = POP3_STATE_AUTHORIZATION;
			}
			pop3_err(s, "Line too long (limit %zu bytes)", max);
			continue;
		}
		/* copy: a handler may start TLS and drain the buffer */
		char *copy = xstrndup(line.p, line.len);
		struct slice l = { copy, line.len };
		evbuffer_drain(in, consumed);
		if (s->state == POP3_STATE_SASL)
			pop3_sasl_input(s, l);
		else
			pop3_command_line(s, l);
		/* the line may hold a password: wipe the copy */
		explicit_bzero(copy, line.len);
		free(copy);
	}
	pop3_session_unref(s);
}

void pop3_resume(struct pop3_session *s)
{
	s->waiting = false;
	if (!s->closed && s->bev != NULL) {
		pop3_process_input(s);
		if (!s->closed && s->close_after_write)
			pop3_close_when_flushed(s);
	}
}

/* ---- libevent callbacks ---- */

static void pop3_read_cb(struct bufferevent *bev, void *ctx)
{
	(void)bev;
	pop3_process_input(ctx);
}

static void pop3_write_cb(struct bufferevent *bev, void *ctx)
{
	(void)bev;
	struct pop3_session *s = ctx;

	if (s->close_after_write) {
		pop3_close_when_flushed(s);
		return;
	}
	if (s->retr_fd >= 0 && !pop3_retr_pump(s))
		pop3_resume(s);
}

static void pop3_event_cb(struct bufferevent *bev, short what, void *ctx)
{
	(void)bev;
	struct pop3_session *s = ctx;

	if (what & BEV_EVENT_CONNECTED) {
		if (s->ssl != NULL && !s->tls_active)
			pop3_tls_ready(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		/* RFC 1939 3: an autologout timer expiry ends the session without
		 * entering UPDATE, so nothing is deleted */
		pop3_fail(s, "Disconnected for inactivity");
		bufferevent_flush(s->bev, EV_WRITE, BEV_FLUSH);
		pop3_disconnect(s, "timeout");
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		const char *why = s->ssl != NULL && !s->tls_active ? "TLS handshake failed" :
			"connection error";
		if (s->ssl != NULL)
			log_info("pop3", "sid=%s event=tls_error ip=%s error=%s", s->id, s->ip,
				 log_quote(tls_last_error()));
		pop3_disconnect(s, why);
		return;
	}
	if (what & BEV_EVENT_EOF)
		pop3_disconnect(s, "client closed");
}

/* ---- accept ---- */

void pop3_session_accept(const struct pop3_listener *l, struct event_base *base, int fd,
			 const struct sockaddr *sa, socklen_t salen)
{
	(void)salen;
	const struct config *cfg = l->cfg;
	struct pop3_session *s = xcalloc(1, sizeof(*s));
	unsigned char rnd[4];
	struct timeval tv = { POP3_IDLE_TIMEOUT, 0 };

	s->l = l;
	s->base = base;
	s->refs = 1;
	s->retr_fd = -1;
	RAND_bytes(rnd, sizeof(rnd));
	snprintf(s->id, sizeof(s->id), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
	net_addr_str(sa, s->ip, sizeof(s->ip));
	s->port = net_addr_port(sa);
	s->loopback = net_addr_is_loopback(sa);
	s->next = sessions;
	if (sessions != NULL)
		sessions->prev = s;
	sessions = s;
	session_count++;

	s->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		close(fd);
		s->closed = true;
		pop3_session_unref(s);
		return;
	}
	bufferevent_setcb(s->bev, pop3_read_cb, pop3_write_cb, pop3_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, POP3_READ_HIGH_WATERMARK);
	bufferevent_setwatermark(s->bev, EV_WRITE, POP3_WRITE_LOW_WATERMARK, 0);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	log_info("pop3", "sid=%s event=connect ip=%s port=%d listener=%s", s->id, s->ip, s->port,
		 l->name);

	if (!net_conn_acquire(s->ip, cfg->limits.connections_per_ip, cfg->limits.connections)) {
		log_warn("pop3", "sid=%s event=connection_limit ip=%s", s->id, s->ip);
		if (!l->implicit_tls)
			pop3_fail(s, "[SYS/TEMP] Too many connections, try again later");
		pop3_close(s, "connection limit");
		return;
	}
	snprintf(s->conn_ip, sizeof(s->conn_ip), "%s", s->ip);

	if (cfg->proxy_trusted_count > 0 &&
	    proxy_addr_trusted(sa, (const char *const *)cfg->proxy_trusted, cfg->proxy_trusted_count)) {
		s->state = POP3_STATE_PROXY;
		return;
	}
	if (l->implicit_tls) {
		if (l->tls == NULL || pop3_start_tls(s) < 0)
			pop3_disconnect(s, "TLS setup failed");
		return;
	}
	pop3_greet(s);
}

/* ---- drain ---- */

void pop3_sessions_drain(struct event_base *base, bool immediate)
{
	(void)base;
	struct pop3_session *s, *next;

	for (s = sessions; s != NULL; s = next) {
		next = s->next;
		if (s->closed)
			continue;
		s->draining = true;
		/* A session waiting on its QUIT update finishes it; one between
		 * commands loses nothing by closing (no UPDATE, no deletion). */
		if (immediate || !s->waiting) {
			if (s->retr_fd < 0)
				pop3_fail(s, "[SYS/TEMP] Server shutting down");
			pop3_close(s, "shutdown");
		}
	}
}
