/* Internals of the POP3 server, shared by server.c (I/O, session life
 * cycle, dispatch, the maildrop lock) and cmd-*.c (one file per command
 * family). */
#ifndef TERN_POP3_PRIVATE_H
#define TERN_POP3_PRIVATE_H

#include "pop3/pop3.h"
#include "pop3/parse.h"
#include "lib/buf.h"
#include "lib/conn.h"
#include "lib/net.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>

#define POP3_IDLE_TIMEOUT 600          /* RFC 1939 3: at least 10 minutes */
#define POP3_READ_HIGH_WATERMARK (64 * 1024)
#define POP3_WRITE_LOW_WATERMARK (64 * 1024)   /* refill RETR output below this */
#define POP3_RETR_CHUNK (64 * 1024)
#define POP3_MAX_MESSAGES 1000000      /* a maildrop larger than this is refused */

enum pop3_state {
	POP3_STATE_PROXY,       /* not started: PROXY header or implicit TLS pending (lib/conn.c) */
	POP3_STATE_AUTHORIZATION,
	POP3_STATE_SASL,        /* inside an AUTH exchange */
	POP3_STATE_TRANSACTION,
	POP3_STATE_UPDATE,      /* QUIT: the store update is in flight */
};

/* One message of the snapshot taken at login (RFC 1939 numbers are
 * index + 1 and never change during the session). */
struct pop3_msg {
	uint32_t uid;
	int64_t size;
	char *path;
	bool deleted;           /* DELE'd in this session */
	bool retrieved;         /* RETR'd in this session */
};

struct pop3_session {
	struct conn c;          /* first: connection, TLS, id, addresses (lib/conn.h) */
	const struct pop3_listener *l;
	bool draining;

	enum pop3_state state;
	bool discard_line;
	unsigned errors;
	unsigned auth_failures;
	unsigned commands;

	/* authentication */
	char *user_arg;         /* USER name waiting for PASS */
	struct auth_sasl *sasl;
	char *auth_mech;        /* for logs: "PLAIN", "SCRAM-SHA-256", "USER" */
	char *auth_pending_user; /* SCRAM done, waiting for the client's empty line */
	int64_t auth_pending_id;
	struct event *delay_ev;
	int64_t user_id;
	char *user;             /* set once the maildrop is open */
	bool locked;            /* holds the maildrop lock of user_id */

	/* the maildrop */
	int64_t mailbox_id;     /* 0: the user has no INBOX yet (empty maildrop) */
	uint32_t uidvalidity;
	struct pop3_msg *msgs;
	uint32_t msg_count;
	uint32_t live_count;    /* not deleted */
	int64_t live_bytes;

	/* RETR/TOP output in progress */
	int retr_fd;
	struct pop3_stuff stuff;
	uint32_t retr_index;
	uint64_t retr_bytes;
};

/* Replies: "+OK text" / "-ERR text" with CRLF.  pop3_err counts a
 * protocol error; past limits.errors the session is closed. */
void pop3_ok(struct pop3_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pop3_err(struct pop3_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An -ERR that is not the client's fault (not counted). */
void pop3_fail(struct pop3_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pop3_send_raw(struct pop3_session *s, const char *p, size_t len);
/* Close after the output is flushed. */
static inline void pop3_close(struct pop3_session *s, const char *reason)
{
	conn_close(&s->c, reason);
}
/* An async step or RETR output finished (c.waiting cleared): read on. */
static inline void pop3_resume(struct pop3_session *s)
{
	conn_resume(&s->c);
}
static inline void pop3_session_ref(struct pop3_session *s)
{
	conn_ref(&s->c);
}
/* Drop a reference; false when the session was freed. */
static inline bool pop3_session_unref(struct pop3_session *s)
{
	return conn_unref(&s->c);
}
static inline int pop3_start_tls(struct pop3_session *s)
{
	return conn_start_tls(&s->c);
}
/* May this session send a password (TLS, or loopback when configured)? */
bool pop3_plaintext_allowed(struct pop3_session *s);

/* The maildrop lock (process-wide, thread-safe). */
bool pop3_lock_acquire(int64_t user_id);
void pop3_lock_release(int64_t user_id);

/* cmd-auth.c */
void pop3_cmd_capa(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_stls(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_user(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_pass(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_apop(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_auth(struct pop3_session *s, const struct pop3_command *cmd);
/* One client line inside an AUTH exchange. */
void pop3_sasl_input(struct pop3_session *s, struct slice line);

/* cmd-maildrop.c */
/* Open the maildrop of an authenticated user (lock, expiry, snapshot) and
 * reply; called by the AUTH and PASS paths. */
void pop3_maildrop_open(struct pop3_session *s, int64_t user_id, const char *address,
			const char *mech);
void pop3_maildrop_free(struct pop3_session *s);
void pop3_cmd_stat(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_list(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_uidl(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_retr(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_top(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_dele(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_rset(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_quit(struct pop3_session *s, const struct pop3_command *cmd);
/* Continue RETR/TOP output (write callback); true while still streaming. */
bool pop3_retr_pump(struct pop3_session *s);

#endif
