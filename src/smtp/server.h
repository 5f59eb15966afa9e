/* The SMTP server engine: one implementation of the protocol (RFC 5321
 * with PIPELINING, 8BITMIME, SMTPUTF8, SIZE, ENHANCEDSTATUSCODES, STARTTLS,
 * AUTH, CHUNKING, DSN) serving every role.  A session is a state machine
 * owned by one event loop; nothing in it blocks.
 *
 * The role decides policy, through the hooks in struct smtp_hooks:
 *  - MX (port 25): local domains only, no AUTH, never relays;
 *  - submission (587 STARTTLS, 465 implicit TLS): AUTH required, sender
 *    checks, local delivery (remote mail will go to the outbound queue).
 * src/smtp/receive.c holds the hooks that deliver into the store; the
 * engine itself knows nothing of domains, users or storage. */
#ifndef TERN_SMTP_SERVER_H
#define TERN_SMTP_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

struct event_base;
struct config;
struct store;
struct threadpool;
struct smtp_session;
struct smtp_mail_params;
struct smtp_rcpt_params;
struct buf;

enum smtp_role { SMTP_ROLE_MX, SMTP_ROLE_SUBMISSION };

/* A reply chosen by a hook. */
struct smtp_reply {
	int code;               /* 0 = the engine's default success reply */
	const char *enhanced;   /* "5.1.1" */
	char text[256];
};

/* Called after the engine's own checks (syntax, state, limits).  Each
 * fills *reply to refuse; leaving code 0 accepts. */
struct smtp_hooks {
	void (*mail)(struct smtp_session *s, const struct smtp_mail_params *p,
		     struct smtp_reply *reply);
	/* *rcpt_ctx_r may be set; it is given back to data and freed with free_rcpt */
	void (*rcpt)(struct smtp_session *s, const struct smtp_rcpt_params *p,
		     struct smtp_reply *reply, void **rcpt_ctx_r);
	void (*free_rcpt)(void *rcpt_ctx);
	/* The whole message (trace header included, CRLF line ends) has been
	 * received.  Call smtp_session_data_done() exactly once, now or later
	 * on the session's event loop; the session waits meanwhile. */
	void (*data)(struct smtp_session *s, const struct buf *message);
};

/* What a listener of one role needs; shared read-only by its sessions. */
struct queue;

struct smtp_listener {
	enum smtp_role role;
	const char *name;           /* "smtp", "submission", "submissions" */
	bool implicit_tls;
	const struct config *cfg;
	SSL_CTX *tls;               /* NULL: STARTTLS not offered */
	struct store *store;
	struct threadpool *pool;
	const struct smtp_hooks *hooks;
	struct queue *queue;        /* the outbound queue to kick, or NULL */
};

/* Take over an accepted connection (the engine closes fd). */
void smtp_session_accept(const struct smtp_listener *l, struct event_base *base, int fd,
			 const struct sockaddr *sa, socklen_t salen);

/* Take over a connection on the local submission socket (`tern sendmail`,
 * docs/delivery.md): the caller identified the peer by its uid (peer, like
 * "uid 33 www-data", goes into logs and the Received field) and found the
 * Tern user it submits as (user_id, user: copied), so the session starts
 * authenticated and never offers AUTH.  With user NULL, refusal says why
 * the local user may not submit: the session greets with 554 5.7.1 and
 * that text, then closes.  The engine closes fd. */
void smtp_session_accept_local(const struct smtp_listener *l, struct event_base *base, int fd,
			       const char *peer, int64_t user_id, const char *user,
			       const char *refusal);

/* Stop this loop's sessions (SIGTERM): immediately (close at once with
 * 421), or gracefully (sessions between transactions get 421 now; one in a
 * transaction finishes it and gets 421 at its next command).  A reload does
 * not call this: old sessions live on until they end.  Must run on base's
 * thread. */
void smtp_sessions_drain(struct event_base *base, bool immediate);
/* Sessions alive on this thread. */
unsigned smtp_sessions_count(void);

/* ---- accessors for hooks ---- */
const struct smtp_listener *smtp_session_listener(struct smtp_session *s);
const char *smtp_session_id(struct smtp_session *s);        /* "0a1b2c3d" */
const char *smtp_session_ip(struct smtp_session *s);        /* client IP (after PROXY) */
const char *smtp_session_msgid(struct smtp_session *s);     /* this transaction's queue id */
const char *smtp_session_helo(struct smtp_session *s);      /* HELO/EHLO name (sanitised), or NULL */
struct event_base *smtp_session_base(struct smtp_session *s);
/* The authenticated user, or 0 / NULL. */
int64_t smtp_session_user_id(struct smtp_session *s);
const char *smtp_session_user(struct smtp_session *s);
const struct smtp_mail_params *smtp_session_mail(struct smtp_session *s);
/* Recipients accepted in this transaction: count, and each rcpt_ctx / address. */
unsigned smtp_session_rcpt_count(struct smtp_session *s);
void *smtp_session_rcpt_ctx(struct smtp_session *s, unsigned i);
const char *smtp_session_rcpt_address(struct smtp_session *s, unsigned i);
const struct smtp_rcpt_params *smtp_session_rcpt_params(struct smtp_session *s, unsigned i);
/* Finish the DATA/BDAT of this transaction: reply (code 0 = 250 2.0.0 OK
 * with the queue id).  The transaction is reset either way. */
void smtp_session_data_done(struct smtp_session *s, const struct smtp_reply *reply);

void smtp_reply_set(struct smtp_reply *r, int code, const char *enhanced, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
