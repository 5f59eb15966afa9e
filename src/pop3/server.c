/* POP3 server: input dispatch, replies and the maildrop lock; the
 * connection life cycle, TLS and PROXY input are lib/conn.c (ops below).
 *
 * Invariants (as in the SMTP engine):
 *  - A session belongs to the event loop that accepted it; every callback
 *    (I/O, timers, auth and store completions) runs on that loop.
 *  - While s->c.waiting, no further command is read: pipelined commands
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
#include "lib/tls.h"

#include <event2/buffer.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static __thread struct conn_list sessions;

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
	return sessions.count;
}

static void pop3_conn_free(struct conn *c)
{
	struct pop3_session *s = conn_container(c, struct pop3_session, c);

	if (s->delay_ev != NULL)
		event_free(s->delay_ev);
	if (s->sasl != NULL)
		auth_sasl_free(&s->sasl);
	pop3_maildrop_free(s);
	free(s->user_arg);
	free(s->auth_mech);
	free(s->auth_pending_user);
	free(s);
}

static void pop3_conn_disconnect(struct conn *c, const char *reason)
{
	struct pop3_session *s = conn_container(c, struct pop3_session, c);

	log_info("pop3", "sid=%s event=disconnect ip=%s user=%s commands=%u reason=%s", s->c.id,
		 s->c.ip, log_quote(s->user ? s->user : ""), s->commands, log_quote(reason));
	if (s->retr_fd >= 0) {
		close(s->retr_fd);
		s->retr_fd = -1;
	}
}

/* ---- replies ---- */

void pop3_send_raw(struct pop3_session *s, const char *p, size_t len)
{
	if (s->c.bev != NULL && !s->c.closed)
		evbuffer_add(bufferevent_get_output(s->c.bev), p, len);
}

static void pop3_vreply(struct pop3_session *s, const char *status, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void pop3_vreply(struct pop3_session *s, const char *status, const char *fmt, va_list ap)
{
	struct evbuffer *out;

	if (s->c.bev == NULL || s->c.closed)
		return;
	out = bufferevent_get_output(s->c.bev);
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
	return s->c.tls_active || (s->c.loopback && s->l->cfg->pop3.plaintext_auth_loopback);
}

static void pop3_greet(struct conn *c)
{
	struct pop3_session *s = conn_container(c, struct pop3_session, c);

	s->state = POP3_STATE_AUTHORIZATION;
	/* no APOP timestamp: APOP needs plaintext passwords on the server */
	pop3_ok(s, "Tern POP3 server ready");
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
	log_warn("pop3", "sid=%s event=http_request ip=%s", s->c.id, s->c.ip);
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

/* Read commands while no async step is in flight; conn holds a reference
 * and keeps resumes from re-entering this loop. */
static void pop3_process_input(struct conn *c)
{
	struct pop3_session *s = conn_container(c, struct pop3_session, c);

	while (conn_can_read(&s->c)) {
		struct evbuffer *in = bufferevent_get_input(s->c.bev);
		size_t avail = evbuffer_get_length(in);

		if (avail == 0)
			break;
		if (s->discard_line) {
			if (!conn_discard_line(&s->c))
				break;
			s->discard_line = false;
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
}

/* RETR/TOP output drained below the low watermark: produce more. */
static void pop3_conn_writable(struct conn *c)
{
	struct pop3_session *s = conn_container(c, struct pop3_session, c);

	if (s->retr_fd >= 0 && !pop3_retr_pump(s))
		pop3_resume(s);
}

/* RFC 1939 3: an autologout timer expiry ends the session without
 * entering UPDATE, so nothing is deleted. */
static void pop3_conn_timeout(struct conn *c)
{
	pop3_fail(conn_container(c, struct pop3_session, c), "Disconnected for inactivity");
}

static void pop3_conn_refuse(struct conn *c)
{
	struct pop3_session *s = conn_container(c, struct pop3_session, c);

	if (!s->l->implicit_tls)
		pop3_fail(s, "[SYS/TEMP] Too many connections, try again later");
}

static const struct conn_ops pop3_conn_ops = {
	.log_mod = "pop3",
	.start = pop3_greet,
	.input = pop3_process_input,
	.writable = pop3_conn_writable,
	.timeout = pop3_conn_timeout,
	.refuse = pop3_conn_refuse,
	.disconnect = pop3_conn_disconnect,
	.free = pop3_conn_free,
};

/* ---- accept ---- */

void pop3_session_accept(const struct pop3_listener *l, struct event_base *base, int fd,
			 const struct sockaddr *sa, socklen_t salen)
{
	(void)salen;
	struct pop3_session *s = xcalloc(1, sizeof(*s));
	struct conn_params p = {
		.ops = &pop3_conn_ops,
		.list = &sessions,
		.cfg = l->cfg,
		.tls = l->tls,
		.implicit_tls = l->implicit_tls,
		.listener = l->name,
		.read_timeout = POP3_IDLE_TIMEOUT,
		.write_timeout = POP3_IDLE_TIMEOUT,
		.read_high = POP3_READ_HIGH_WATERMARK,
		.write_low = POP3_WRITE_LOW_WATERMARK,
	};

	s->l = l;
	s->retr_fd = -1;
	conn_accept(&s->c, &p, base, fd, sa);
}

/* ---- drain ---- */

static void pop3_drain_one(struct conn *c, void *arg)
{
	struct pop3_session *s = conn_container(c, struct pop3_session, c);
	bool immediate = *(const bool *)arg;

	s->draining = true;
	/* A session waiting on its QUIT update finishes it; one between
	 * commands loses nothing by closing (no UPDATE, no deletion). */
	if (immediate || !s->c.waiting) {
		if (s->retr_fd < 0)
			pop3_fail(s, "[SYS/TEMP] Server shutting down");
		pop3_close(s, "shutdown");
	}
}

void pop3_sessions_drain(struct event_base *base, bool immediate)
{
	(void)base;
	conn_list_foreach(&sessions, pop3_drain_one, &immediate);
}
