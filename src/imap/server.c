/* IMAP server: input through the command reader, the command table and
 * dispatch, replies, and the wire form of mailbox names; the connection
 * life cycle, TLS and PROXY input are lib/conn.c (ops below).
 *
 * Invariants (as in the SMTP and POP3 engines):
 *  - A session belongs to the event loop that accepted it; every callback
 *    (I/O, timers, auth, store completions, notify events) runs there.
 *  - One command at a time: while s->c.waiting, no further input is parsed,
 *    so pipelined commands stay buffered and replies come out in order;
 *    the argument tree of the command in progress stays valid meanwhile
 *    (it lives in the reader's buffer until the next feed).
 *  - Every command ends in exactly one imap_tagged() call, which first
 *    sends the untagged mailbox updates its table flags allow
 *    (RFC 3501 7.4.1: no EXPUNGE during FETCH, STORE or SEARCH).
 *  - A session is freed only when disconnected and no async step holds a
 *    reference.
 * RFC 3501 / RFC 9051 (2.2 client/server protocol, 3 states, 5.4
 * autologout timer of at least 30 minutes, 7.1 status responses),
 * RFC 2595 / RFC 9051 6.2.1 (STARTTLS: bytes pipelined after it are
 * discarded), RFC 8314 (implicit TLS), RFC 3501 5.1.3 (modified UTF-7). */
#include "imap/imap-private.h"
#include "auth/auth.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/notify.h"
#include "lib/tls.h"

#include <event2/buffer.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static __thread struct conn_list sessions;

/* ---- logged-in sessions per user and client address ---- */

/* imap.connections_per_user counts logged-in sessions per (user, client
 * IP) over every worker thread, as Dovecot's mail_max_userip_connections
 * does; a short array under a lock, since logins are rare next to
 * commands and distinct (user, IP) pairs are few per server. */
struct userip {
	int64_t user_id;
	char ip[NET_ADDR_MAX];
	unsigned count;
};
static pthread_mutex_t userip_lock = PTHREAD_MUTEX_INITIALIZER;
static struct userip *userips;
static size_t userip_count, userip_alloc;

/* Count one more session of (user_id, ip); false when limit (nonzero) is
 * already reached. */
static bool userip_acquire(int64_t user_id, const char *ip, unsigned limit)
{
	bool ok = true;
	size_t i;

	pthread_mutex_lock(&userip_lock);
	for (i = 0; i < userip_count; i++)
		if (userips[i].user_id == user_id && strcmp(userips[i].ip, ip) == 0)
			break;
	if (i == userip_count) {
		if (userip_count == userip_alloc) {
			userip_alloc = userip_alloc ? userip_alloc * 2 : 16;
			userips = xrealloc(userips, userip_alloc * sizeof(*userips));
		}
		userips[i] = (struct userip){ .user_id = user_id };
		snprintf(userips[i].ip, sizeof(userips[i].ip), "%s", ip);
		userip_count++;
	}
	if (limit != 0 && userips[i].count >= limit)
		ok = false;
	else
		userips[i].count++;
	if (userips[i].count == 0)
		userips[i] = userips[--userip_count];
	pthread_mutex_unlock(&userip_lock);
	return ok;
}

static void userip_release(int64_t user_id, const char *ip)
{
	pthread_mutex_lock(&userip_lock);
	for (size_t i = 0; i < userip_count; i++) {
		if (userips[i].user_id == user_id && strcmp(userips[i].ip, ip) == 0) {
			if (--userips[i].count == 0)
				userips[i] = userips[--userip_count];
			break;
		}
	}
	pthread_mutex_unlock(&userip_lock);
}

/* ---- life cycle ---- */

unsigned imap_sessions_count(void)
{
	return sessions.count;
}

static void imap_conn_free(struct conn *c)
{
	struct imap_session *s = conn_container(c, struct imap_session, c);

	if (s->userip_held)
		userip_release(s->user_id, s->c.ip);
	imap_notify_free(s);
	imap_view_close(s);
	if (s->delay_ev != NULL)
		event_free(s->delay_ev);
	if (s->sasl != NULL)
		auth_sasl_free(&s->sasl);
	imap_reader_destroy(&s->reader);
	imap_arena_clear(&s->arena);
	free(s->tag);
	free(s->auth_mech);
	free(s->auth_pending_user);
	free(s->user);
	free(s);
}

static void imap_conn_disconnect(struct conn *c, const char *reason)
{
	struct imap_session *s = conn_container(c, struct imap_session, c);

	log_info("imap", "sid=%s event=disconnect ip=%s user=%s commands=%u reason=%s", s->c.id,
		 s->c.ip, log_quote(s->user ? s->user : ""), s->commands, log_quote(reason));
	/* no more notify callbacks once disconnected */
	imap_view_close(s);
}

/* ---- replies ---- */

void imap_send_raw(struct imap_session *s, const void *p, size_t len)
{
	if (s->c.bev != NULL && !s->c.closed)
		evbuffer_add(bufferevent_get_output(s->c.bev), p, len);
}

static void imap_vline(struct imap_session *s, const char *prefix, const char *status,
		       const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void imap_vline(struct imap_session *s, const char *prefix, const char *status,
		       const char *fmt, va_list ap)
{
	struct evbuffer *out;

	if (s->c.bev == NULL || s->c.closed)
		return;
	out = bufferevent_get_output(s->c.bev);
	if (status != NULL)
		evbuffer_add_printf(out, "%s %s ", prefix, status);
	else
		evbuffer_add_printf(out, "%s ", prefix);
	evbuffer_add_vprintf(out, fmt, ap);
	evbuffer_add(out, "\r\n", 2);
}

void imap_untagged(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	imap_vline(s, "*", NULL, fmt, ap);
	va_end(ap);
}

void imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
{
	va_list ap;
	const struct imap_cmd_def *def = s->cur_def;

	/* RFC 3501 7.4.1 / RFC 9051 7.5.1: mailbox updates go before the
	 * tagged reply; EXPUNGE not during FETCH, STORE, SEARCH (UID forms may) */
	if (s->view != NULL && s->state == IMAP_STATE_SELECTED) {
		bool allow = def == NULL || !(def->flags & IMAP_CF_NO_EXPUNGE) || s->cur_uid;
		imap_view_sync(s, allow);
	}
	va_start(ap, fmt);
	imap_vline(s, s->tag != NULL ? s->tag : "*", status, fmt, ap);
	va_end(ap);
	s->cur_def = NULL;
	free(s->tag);
	s->tag = NULL;
	imap_arena_clear(&s->arena);
}

static void imap_count_error(struct imap_session *s)
{
	if (++s->errors >= s->l->cfg->limits.errors) {
		imap_untagged(s, "BYE Too many invalid commands");
		imap_close(s, "too many errors");
	}
}

void imap_bad(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	s->cur_def = NULL;   /* no mailbox updates after a BAD */
	va_start(ap, fmt);
	imap_vline(s, s->tag != NULL ? s->tag : "*", "BAD", fmt, ap);
	va_end(ap);
	free(s->tag);
	s->tag = NULL;
	imap_arena_clear(&s->arena);
	imap_count_error(s);
}

void imap_parse_failed(struct imap_session *s, const struct imap_parse_error *err)
{
	if (err->kind == IMAP_ERR_BADCHARSET)
		imap_tagged(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] %s", err->text);
	else if (err->kind == IMAP_ERR_LITERAL_TOO_LARGE)
		imap_tagged(s, "NO", "[TOOBIG] %s", err->text);
	else
		imap_bad(s, "%s", err->text);
}

void imap_store_failed(struct imap_session *s, const char *what, const char *code,
		       const char *error)
{
	log_info("imap", "sid=%s event=store_failed what=%s code=%s error=%s", s->c.id, what,
		 code ? code : "", log_quote(error ? error : ""));
	if (code != NULL && strcmp(code, "NONEXISTENT") == 0)
		imap_tagged(s, "NO", "[NONEXISTENT] Mailbox doesn't exist");
	else if (code != NULL && strcmp(code, "ALREADYEXISTS") == 0)
		imap_tagged(s, "NO", "[ALREADYEXISTS] Mailbox already exists");
	else if (code != NULL)
		imap_tagged(s, "NO", "[%s] %s failed: %s", code, what, error ? error : "error");
	else
		imap_tagged(s, "NO", "[SERVERBUG] %s failed, try again later", what);
}

bool imap_plaintext_allowed(struct imap_session *s)
{
	return s->c.tls_active || (s->c.loopback && s->l->cfg->imap.plaintext_auth_loopback);
}

void imap_capabilities(struct imap_session *s, struct buf *out)
{
	buf_append_str(out, "IMAP4rev1 IMAP4rev2");
	if (s->state == IMAP_STATE_NOT_AUTH) {
		if (s->l->tls != NULL && s->c.ssl == NULL)
			buf_append_str(out, " STARTTLS");
		if (imap_plaintext_allowed(s)) {
			const char *m = auth_sasl_mechanisms();
			while (*m) {
				size_t n = strcspn(m, " ");
				/* AUTH=LOGIN is not an IMAP mechanism worth offering */
				if (!(n == 5 && strncmp(m, "LOGIN", 5) == 0)) {
					buf_append_str(out, " AUTH=");
					buf_append(out, m, n);
				}
				m += n;
				while (*m == ' ')
					m++;
			}
		} else {
			buf_append_str(out, " LOGINDISABLED");
		}
		buf_append_str(out, " SASL-IR");
	}
	buf_append_str(out, " LITERAL+ ENABLE ID IDLE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN"
			    " SPECIAL-USE");
	/* mailbox-management extensions (cmd-mailbox.c, cmd-auth.c) */
	buf_append_str(out, " LIST-EXTENDED LIST-STATUS CREATE-SPECIAL-USE STATUS=SIZE UTF8=ACCEPT");
	/* FETCH / SEARCH / STORE / SELECT extensions (cmd-fetch.c, cmd-search.c, ...) */
	buf_append_str(out, " CONDSTORE QRESYNC ESEARCH BINARY SEARCHRES WITHIN");
	/* from the store's per-message summaries (cmd-fetch.c, cmd-search.c) */
	buf_append_str(out, " OBJECTID SAVEDATE PREVIEW");
	/* APPEND extensions (cmd-append.c) */
	buf_append_str(out, " MULTIAPPEND CATENATE");
	/* RFC 5256 SORT / THREAD, RFC 5267 ESORT, RFC 5957 (cmd-sort.c) */
	buf_append_str(out, " SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES");
	/* RFC 9208 (cmd-quota.c) */
	buf_append_str(out, " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE");
	/* RFC 5464 (cmd-metadata.c), RFC 5465 (cmd-notify.c) */
	buf_append_str(out, " METADATA NOTIFY");
	/* RFC 4978 (cmd-compress.c): once logged in, until it is active */
	if ((s->state == IMAP_STATE_AUTH || s->state == IMAP_STATE_SELECTED) &&
	    !conn_compressed(&s->c))
		buf_append_str(out, " COMPRESS=DEFLATE");
	buf_printf(out, " APPENDLIMIT=%zu", s->l->cfg->limits.message_size);
}

static void imap_greet(struct conn *c)
{
	struct imap_session *s = conn_container(c, struct imap_session, c);
	struct buf b;

	s->state = IMAP_STATE_NOT_AUTH;
	buf_init(&b, BUF_UNLIMITED);
	imap_capabilities(s, &b);
	imap_untagged(s, "OK [CAPABILITY %s] Tern IMAP server ready", buf_cstr(&b));
	buf_free(&b);
}

static void imap_set_timeout(struct imap_session *s, unsigned seconds)
{
	conn_set_timeouts(&s->c, seconds, 0);
}

void imap_login_done(struct imap_session *s, int64_t user_id, const char *address,
		     const char *mech)
{
	struct imap_reader_limits lim = {
		.max_line = IMAP_MAX_LINE,
		.max_literal = s->l->cfg->limits.message_size,
		.max_args = IMAP_MAX_ARGS,
		.max_depth = IMAP_MAX_DEPTH,
	};
	struct buf b;
	unsigned limit = s->l->cfg->imap.connections_per_user;

	if (!userip_acquire(user_id, s->c.ip, limit)) {
		log_warn("imap", "sid=%s event=userip_limit ip=%s user=%s limit=%u", s->c.id, s->c.ip,
			 log_quote(address), limit);
		imap_tagged(s, "NO", "[LIMIT] Too many connections for this user from this "
			    "address (imap.connections_per_user=%u)", limit);
		return;
	}
	s->userip_held = true;
	s->user_id = user_id;
	free(s->user);
	s->user = xstrdup(address);
	s->state = IMAP_STATE_AUTH;
	imap_reader_set_limits(s->reader, &lim);
	imap_set_timeout(s, IMAP_IDLE_TIMEOUT_AUTH);
	log_info("imap", "sid=%s event=login ip=%s user=%s mech=%s tls=%s", s->c.id, s->c.ip,
		 log_quote(address), mech ? mech : "", s->c.tls_active ? "yes" : "no");
	buf_init(&b, BUF_UNLIMITED);
	imap_capabilities(s, &b);
	imap_tagged(s, "OK", "[CAPABILITY %s] Logged in", buf_cstr(&b));
	buf_free(&b);
}

/* ---- mailbox names ---- */

char *imap_mailbox_from_wire(struct imap_session *s, struct slice name)
{
	struct buf b;

	if (name.len == 0 || name.len > 1024 || memchr(name.p, '\0', name.len) != NULL)
		return NULL;
	buf_init(&b, 4096);
	if (s->utf8) {
		if (!imap_utf8_valid(name) || buf_append_slice(&b, name) < 0) {
			buf_free(&b);
			return NULL;
		}
	} else if (imap_mutf7_decode(name, &b) < 0) {
		buf_free(&b);
		return NULL;
	}
	/* no control characters, no empty levels, no leading or trailing '/' */
	const char *p = buf_cstr(&b);
	for (size_t i = 0; i < b.len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c == 0x7f || (c == '/' && (i == 0 || i + 1 == b.len ||
							    p[i + 1] == '/'))) {
			buf_free(&b);
			return NULL;
		}
	}
	if (b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	char *out = buf_steal(&b);
	/* RFC 3501 5.1: INBOX is case-insensitive, also as a hierarchy root */
	if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == '\0' || out[5] == '/'))
		memcpy(out, "INBOX", 5);
	return out;
}

void imap_mailbox_to_wire(struct imap_session *s, struct buf *out, const char *name)
{
	struct buf enc;

	buf_init(&enc, BUF_UNLIMITED);
	if (s->utf8)
		buf_append_str(&enc, name);
	else if (imap_mutf7_encode(slice_from(name), &enc) < 0)
		buf_append_str(&enc, name);
	/* a quoted string always works for names: no CR/LF/NUL in them */
	buf_append_str(out, "\"");
	for (size_t i = 0; i < enc.len; i++) {
		char c = enc.data[i];
		if (c == '"' || c == '\\')
			buf_append(out, "\\", 1);
		buf_append(out, &c, 1);
	}
	buf_append_str(out, "\"");
	buf_free(&enc);
}

/* ---- the command table ---- */

#define ANY (IMAP_CF_NOT_AUTH | IMAP_CF_AUTH | IMAP_CF_SELECTED)
#define AUTHED (IMAP_CF_AUTH | IMAP_CF_SELECTED)

static const struct imap_cmd_def imap_commands[] = {
	{ IMAP_CMD_CAPABILITY, imap_cmd_capability, ANY },
	{ IMAP_CMD_NOOP, imap_cmd_noop, ANY },
	{ IMAP_CMD_LOGOUT, imap_cmd_logout, ANY },
	{ IMAP_CMD_ID, imap_cmd_id, ANY },
	{ IMAP_CMD_STARTTLS, imap_cmd_starttls, IMAP_CF_NOT_AUTH },
	{ IMAP_CMD_AUTHENTICATE, imap_cmd_authenticate, IMAP_CF_NOT_AUTH },
	{ IMAP_CMD_LOGIN, imap_cmd_login, IMAP_CF_NOT_AUTH },
	/* RFC 9051 6.3.1 / RFC 5161 3.1: authenticated state only; 6.4 does
	 * not list it among the selected state's commands */
	{ IMAP_CMD_ENABLE, imap_cmd_enable, IMAP_CF_AUTH },
	{ IMAP_CMD_NAMESPACE, imap_cmd_namespace, AUTHED },
	{ IMAP_CMD_SELECT, imap_cmd_select, AUTHED },
	{ IMAP_CMD_EXAMINE, imap_cmd_select, AUTHED },
	{ IMAP_CMD_CREATE, imap_cmd_create, AUTHED },
	{ IMAP_CMD_DELETE, imap_cmd_delete, AUTHED },
	{ IMAP_CMD_RENAME, imap_cmd_rename, AUTHED },
	{ IMAP_CMD_SUBSCRIBE, imap_cmd_subscribe, AUTHED },
	{ IMAP_CMD_UNSUBSCRIBE, imap_cmd_subscribe, AUTHED },
	{ IMAP_CMD_LIST, imap_cmd_list, AUTHED },
	{ IMAP_CMD_LSUB, imap_cmd_list, AUTHED },
	{ IMAP_CMD_STATUS, imap_cmd_status, AUTHED },
	{ IMAP_CMD_APPEND, imap_cmd_append, AUTHED },
	{ IMAP_CMD_IDLE, imap_cmd_idle, AUTHED },
	{ IMAP_CMD_COMPRESS, imap_cmd_compress, AUTHED },
	{ IMAP_CMD_CHECK, imap_cmd_check, IMAP_CF_SELECTED },
	{ IMAP_CMD_CLOSE, imap_cmd_close, IMAP_CF_SELECTED },
	{ IMAP_CMD_UNSELECT, imap_cmd_close, IMAP_CF_SELECTED },
	{ IMAP_CMD_EXPUNGE, imap_cmd_expunge, IMAP_CF_SELECTED | IMAP_CF_UID | IMAP_CF_WRITE },
	{ IMAP_CMD_SEARCH, imap_cmd_search, IMAP_CF_SELECTED | IMAP_CF_UID | IMAP_CF_NO_EXPUNGE },
	{ IMAP_CMD_SORT, imap_cmd_sort, IMAP_CF_SELECTED | IMAP_CF_UID | IMAP_CF_NO_EXPUNGE },
	{ IMAP_CMD_THREAD, imap_cmd_thread, IMAP_CF_SELECTED | IMAP_CF_UID | IMAP_CF_NO_EXPUNGE },
	{ IMAP_CMD_FETCH, imap_cmd_fetch, IMAP_CF_SELECTED | IMAP_CF_UID | IMAP_CF_NO_EXPUNGE },
	{ IMAP_CMD_STORE, imap_cmd_store,
	  IMAP_CF_SELECTED | IMAP_CF_UID | IMAP_CF_NO_EXPUNGE | IMAP_CF_WRITE },
	{ IMAP_CMD_COPY, imap_cmd_copy, IMAP_CF_SELECTED | IMAP_CF_UID },
	{ IMAP_CMD_MOVE, imap_cmd_copy, IMAP_CF_SELECTED | IMAP_CF_UID | IMAP_CF_WRITE },
	{ IMAP_CMD_GETQUOTAROOT, imap_cmd_getquotaroot, AUTHED },
	{ IMAP_CMD_GETQUOTA, imap_cmd_getquota, AUTHED },
	{ IMAP_CMD_SETQUOTA, imap_cmd_setquota, AUTHED },
	{ IMAP_CMD_GETMETADATA, imap_cmd_getmetadata, AUTHED },
	{ IMAP_CMD_SETMETADATA, imap_cmd_setmetadata, AUTHED },
	{ IMAP_CMD_NOTIFY, imap_cmd_notify, AUTHED },
};

static void imap_dispatch(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_cmd_def *def = NULL;
	unsigned need;

	s->commands++;
	free(s->tag);
	s->tag = slice_dup(cmd->tag);
	s->cur_uid = cmd->uid;
	s->cur_def = NULL;
	for (size_t i = 0; i < sizeof(imap_commands) / sizeof(imap_commands[0]); i++)
		if (imap_commands[i].cmd == cmd->cmd)
			def = &imap_commands[i];
	if (def == NULL) {
		imap_bad(s, "Unknown command %.*s", (int)(cmd->name.len > 32 ? 32 : cmd->name.len),
			 imap_is_atom(cmd->name) ? cmd->name.p : "");
		return;
	}
	if (cmd->uid && !(def->flags & IMAP_CF_UID)) {
		imap_bad(s, "UID %s is not a command", imap_cmd_name(cmd->cmd));
		return;
	}
	if (s->draining && cmd->cmd != IMAP_CMD_LOGOUT) {
		imap_untagged(s, "BYE Server shutting down");
		imap_close(s, "draining");
		return;
	}
	need = s->state == IMAP_STATE_NOT_AUTH ? IMAP_CF_NOT_AUTH :
	       s->state == IMAP_STATE_AUTH ? IMAP_CF_AUTH : IMAP_CF_SELECTED;
	if (!(def->flags & need)) {
		if (s->state == IMAP_STATE_NOT_AUTH)
			imap_bad(s, "Log in first");
		else if (s->state == IMAP_STATE_AUTH && (def->flags & IMAP_CF_SELECTED))
			imap_bad(s, "No mailbox selected");
		else if (s->state == IMAP_STATE_SELECTED && (def->flags & IMAP_CF_AUTH))
			imap_bad(s, "%s not allowed in selected state", imap_cmd_name(cmd->cmd));
		else
			imap_bad(s, "Already logged in");
		return;
	}
	s->cur_def = def;
	if ((def->flags & IMAP_CF_WRITE) && s->view != NULL && s->view->readonly) {
		imap_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only (EXAMINE)");
		return;
	}
	def->handler(s, cmd);
}

static void imap_read_result(struct imap_session *s, struct imap_read_result *res)
{
	switch (res->status) {
	case IMAP_READ_NEED_MORE:
		break;
	case IMAP_READ_NEED_CONTINUATION:
		/* RFC 3501 7.5: the client waits for us before sending the literal */
		imap_send_raw(s, "+ OK\r\n", 6);
		break;
	case IMAP_READ_ERROR:
		free(s->tag);
		s->tag = res->cmd.tag.len > 0 ? slice_dup(res->cmd.tag) : NULL;
		s->commands++;
		if (s->in_sasl) {
			s->in_sasl = false;
			auth_sasl_free(&s->sasl);
		}
		if (res->error.kind == IMAP_ERR_LINE_TOO_LONG && s->tag == NULL) {
			imap_untagged(s, "BYE Line too long");
			imap_close(s, "line too long");
			break;
		}
		s->cur_def = NULL;
		imap_parse_failed(s, &res->error);
		break;
	case IMAP_READ_OK:
		if (s->in_sasl) {
			imap_sasl_input(s, res->cmd.line);
		} else if (s->idling) {
			imap_idle_input(s, &res->cmd);
		} else {
			imap_dispatch(s, &res->cmd);
		}
		break;
	}
}

/* Feed input to the command reader while no command is in progress; conn
 * holds a reference and keeps resumes from re-entering this loop. */
static void imap_process_input(struct conn *c)
{
	struct imap_session *s = conn_container(c, struct imap_session, c);

	while (conn_can_read(&s->c)) {
		struct evbuffer *in = bufferevent_get_input(s->c.bev);
		size_t avail = evbuffer_get_length(in);
		struct imap_read_result res;

		if (avail == 0)
			break;
		if (s->state == IMAP_STATE_LOGOUT) {
			evbuffer_drain(in, avail);
			break;
		}
		/* arm line mode once per line: the line may come in pieces */
		if ((s->in_sasl || s->idling) && !s->line_armed) {
			imap_reader_expect_line(s->reader);
			s->line_armed = true;
		}
		size_t look = avail < IMAP_READ_CHUNK ? avail : IMAP_READ_CHUNK;
		const char *p = (const char *)evbuffer_pullup(in, (ssize_t)look);
		imap_reader_feed(s->reader, p, look, &res);
		/* the reader copied what it needs; a handler may start TLS and
		 * drain the rest of the input itself */
		evbuffer_drain(in, res.consumed);
		if (res.status == IMAP_READ_OK || res.status == IMAP_READ_ERROR)
			s->line_armed = false;
		imap_read_result(s, &res);
	}
}

void imap_resume(struct imap_session *s)
{
	if (!s->c.closed && s->c.bev != NULL && s->draining && s->cur_def == NULL && !s->in_sasl) {
		imap_untagged(s, "BYE Server shutting down");
		imap_close(s, "shutdown");
	}
	conn_resume(&s->c);
}

/* A long reply (FETCH) goes on as the output drains. */
static void imap_conn_writable(struct conn *c)
{
	struct imap_session *s = conn_container(c, struct imap_session, c);

	if (s->pump != NULL)
		s->pump(s);
}

/* RFC 9051 5.4: the autologout timer */
static void imap_conn_timeout(struct conn *c)
{
	imap_untagged(conn_container(c, struct imap_session, c), "BYE Disconnected for inactivity");
}

static void imap_conn_refuse(struct conn *c)
{
	struct imap_session *s = conn_container(c, struct imap_session, c);

	if (!s->l->implicit_tls)
		imap_untagged(s, "BYE [UNAVAILABLE] Too many connections, try again later");
}

static const struct conn_ops imap_conn_ops = {
	.log_mod = "imap",
	.start = imap_greet,
	.input = imap_process_input,
	.writable = imap_conn_writable,
	.timeout = imap_conn_timeout,
	.refuse = imap_conn_refuse,
	.disconnect = imap_conn_disconnect,
	.free = imap_conn_free,
};

/* ---- accept ---- */

void imap_session_accept(const struct imap_listener *l, struct event_base *base, int fd,
			 const struct sockaddr *sa, socklen_t salen)
{
	(void)salen;
	struct imap_session *s = xcalloc(1, sizeof(*s));
	struct imap_reader_limits lim = {
		.max_line = IMAP_MAX_LINE_PREAUTH,
		.max_literal = IMAP_LITERAL_PREAUTH,
		.max_args = IMAP_MAX_ARGS,
		.max_depth = IMAP_MAX_DEPTH,
	};
	struct conn_params p = {
		.ops = &imap_conn_ops,
		.list = &sessions,
		.cfg = l->cfg,
		.tls = l->tls,
		.implicit_tls = l->implicit_tls,
		.listener = l->name,
		.read_timeout = IMAP_IDLE_TIMEOUT_PREAUTH,
		.read_high = IMAP_READ_HIGH_WATERMARK,
		.write_low = IMAP_WRITE_LOW_WATERMARK,
	};

	s->l = l;
	s->reader = imap_reader_create(&lim);
	imap_arena_init(&s->arena);
	conn_accept(&s->c, &p, base, fd, sa);
}

/* ---- drain ---- */

static void imap_drain_one(struct conn *c, void *arg)
{
	struct imap_session *s = conn_container(c, struct imap_session, c);
	bool immediate = *(const bool *)arg;

	s->draining = true;
	/* a command waiting on a commit finishes it first (its OK means
	 * durable); a session between commands or in IDLE loses nothing */
	if (immediate || !s->c.waiting || s->idling) {
		imap_untagged(s, "BYE Server shutting down");
		imap_close(s, "shutdown");
	}
}

void imap_sessions_drain(struct event_base *base, bool immediate)
{
	(void)base;
	conn_list_foreach(&sessions, imap_drain_one, &immediate);
}
