/* Internals of the SMTP server engine, shared by server.c (I/O, session
 * life cycle, input dispatch) and server-cmd-*.c (one file per command
 * family). */
#ifndef TERN_SMTP_SERVER_PRIVATE_H
#define TERN_SMTP_SERVER_PRIVATE_H

#include "smtp/server.h"
#include "smtp/parse.h"
#include "lib/buf.h"
#include "lib/conn.h"
#include "lib/net.h"

#include <event2/bufferevent.h>
#include <event2/event.h>

#define SMTP_AUTH_LINE_MAX 12288   /* RFC 4954 4: SASL responses may be long */

enum smtp_state {
	SMTP_STATE_PROXY,       /* not started: PROXY header or implicit TLS pending (lib/conn.c) */
	SMTP_STATE_INIT,        /* before HELO/EHLO */
	SMTP_STATE_READY,       /* after HELO/EHLO, no transaction */
	SMTP_STATE_MAIL,        /* MAIL accepted */
	SMTP_STATE_RCPT,        /* at least one RCPT accepted */
	SMTP_STATE_DATA,        /* receiving a DATA body */
	SMTP_STATE_BDAT,        /* receiving a BDAT chunk */
	SMTP_STATE_AUTH,        /* inside a SASL exchange */
};

struct smtp_rcpt {
	char *address;          /* formatted forward-path */
	struct smtp_rcpt_params params;
	void *ctx;              /* from the rcpt hook */
};

struct smtp_session {
	struct conn c;          /* first: connection, TLS, id, addresses (lib/conn.h) */
	const struct smtp_listener *l;
	bool draining;          /* send 421 at the next command outside a transaction */

	enum smtp_state state;
	bool discard_line;      /* discarding the rest of an over-long line */
	bool esmtp;
	char *helo;
	unsigned errors;
	unsigned auth_failures;
	unsigned commands;

	/* authentication */
	struct auth_sasl *sasl;
	char *auth_mech;
	int64_t user_id;
	char *user;
	char *auth_pending_user; /* SCRAM done, waiting for the client's empty line */
	char *local_peer;       /* local submission socket: "uid N LOGIN", else NULL */
	char *local_refusal;    /* local peer not allowed: the 554 greeting text */
	struct event *delay_ev;

	/* transaction */
	bool have_mail;
	struct smtp_mail_params mail;
	struct smtp_rcpt *rcpts;
	unsigned rcpt_count, rcpt_alloc;
	char msgid[17];
	struct buf msg;
	struct smtp_body body;
	bool body_started;      /* a DATA or first BDAT began the body */
	bool bdat_failed;       /* a BDAT chunk error: swallow chunks until LAST */
	uint64_t bdat_remaining;
	bool bdat_last;
	struct smtp_parse_error bdat_error;
};

/* Replies.  smtp_reply_send adds "code enhanced text" (or a multi-line
 * reply when text has '\n's) to the output.  smtp_error does the same and
 * counts a protocol error; past the limit it sends 421 and closes. */
void smtp_send(struct smtp_session *s, int code, const char *enhanced, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void smtp_error(struct smtp_session *s, int code, const char *enhanced, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void smtp_send_raw(struct smtp_session *s, const char *text);
/* Close after the output is flushed. */
static inline void smtp_close(struct smtp_session *s, const char *reason)
{
	conn_close(&s->c, reason);
}
/* Clear the transaction (RSET, end of data, HELO). */
void smtp_transaction_reset(struct smtp_session *s);
/* Resume reading commands after an async step. */
static inline void smtp_resume(struct smtp_session *s)
{
	conn_resume(&s->c);
}
static inline void smtp_session_ref(struct smtp_session *s)
{
	conn_ref(&s->c);
}
/* Drop a reference; returns false when the session was freed. */
static inline bool smtp_session_unref(struct smtp_session *s)
{
	return conn_unref(&s->c);
}
/* Begin TLS on the connection (STARTTLS or implicit). */
static inline int smtp_start_tls(struct smtp_session *s)
{
	return conn_start_tls(&s->c);
}
/* The parameter extensions offered on this session. */
void smtp_param_ext(struct smtp_session *s, struct smtp_param_ext *ext);
bool smtp_auth_allowed(struct smtp_session *s);

/* Command handlers (server-cmd-*.c).  Each gets the argument and writes
 * its own replies. */
void smtp_cmd_helo(struct smtp_session *s, struct slice arg, bool ehlo);
void smtp_cmd_mail(struct smtp_session *s, struct slice arg);
void smtp_cmd_rcpt(struct smtp_session *s, struct slice arg);
void smtp_cmd_rset(struct smtp_session *s, struct slice arg);
void smtp_cmd_data(struct smtp_session *s, struct slice arg);
void smtp_cmd_bdat(struct smtp_session *s, struct slice arg);
void smtp_cmd_auth(struct smtp_session *s, struct slice arg);
void smtp_cmd_starttls(struct smtp_session *s, struct slice arg);
/* Body bytes (DATA/BDAT): consumes from the input, returns bytes used. */
size_t smtp_body_input(struct smtp_session *s, const char *p, size_t len);
/* One SASL response line while in SMTP_STATE_AUTH. */
void smtp_auth_input(struct smtp_session *s, struct slice line);

#endif
