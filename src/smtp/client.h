/* The outbound SMTP client: one asynchronous session over a libevent
 * bufferevent, used by the queue to deliver to an MX host or a smarthost.
 *
 * Life of a session (every callback runs on the session's event loop):
 *   c = smtp_client_connect(base, &params, cb, ctx);
 *     -> cb(c, result with stage SMTP_STAGE_READY or a failure): after the
 *        greeting, EHLO (HELO if EHLO gets 500/502), STARTTLS per policy,
 *        EHLO again and AUTH when credentials are given (with implicit_tls
 *        the TLS handshake comes first, then the greeting, EHLO, AUTH);
 *   smtp_client_send(c, &msg, cb, ctx);   (only after a READY result)
 *     -> cb(c, result with per-recipient outcomes);
 *   smtp_client_send(...) again while smtp_client_usable(c) (RSET is sent
 *     first when the previous transaction did not end cleanly);
 *   smtp_client_quit(&c) or smtp_client_free(&c).
 * After a failure result the connection is closed; only free is left.
 * smtp_client_free and smtp_client_quit may be called inside a callback.
 *
 * Security: with a TLS policy other than NONE and OPPORTUNISTIC nothing
 * but EHLO and STARTTLS is ever sent in clear (TLS missing or failing is
 * a temporary failure); AUTH is only sent over TLS; every reply text in
 * a result is sanitized (client-reply.h).  Details in docs/delivery.md. */
#ifndef TERN_SMTP_CLIENT_H
#define TERN_SMTP_CLIENT_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "smtp/client-reply.h"

enum smtp_tls_policy {
	SMTP_TLS_NONE,           /* never STARTTLS */
	SMTP_TLS_OPPORTUNISTIC,  /* STARTTLS when offered, certificate not checked */
	SMTP_TLS_REQUIRE_VERIFY, /* STARTTLS required; chain checked against the CA
				    store of the context, name against host
				    (MTA-STS enforce, smarthost) */
	SMTP_TLS_DANE,           /* STARTTLS required; certificate must match the
				    usable TLSA records (RFC 7672) */
};

/* One TLSA record (RFC 6698 2.1).  Usages 0 and 1 (PKIX) are unusable
 * for SMTP (RFC 7672 3.1.3) and ignored. */
struct smtp_tlsa {
	uint8_t usage;           /* 2 DANE-TA, 3 DANE-EE */
	uint8_t selector;        /* 0 full certificate, 1 SubjectPublicKeyInfo */
	uint8_t mtype;           /* 0 exact, 1 SHA-256, 2 SHA-512 */
	const unsigned char *data;
	size_t len;
};

/* Timeouts in milliseconds; 0 takes the RFC 5321 4.5.3.2 value. */
struct smtp_client_timeouts {
	unsigned connect;        /* TCP connect (default 30 s) */
	unsigned greeting;       /* 220 greeting (5 min) */
	unsigned command;        /* EHLO, STARTTLS, TLS handshake, AUTH, RSET, QUIT (5 min) */
	unsigned mail;           /* MAIL (5 min) */
	unsigned rcpt;           /* RCPT (5 min) */
	unsigned data_init;      /* DATA's 354 (2 min) */
	unsigned data_block;     /* no write progress while sending the data (3 min) */
	unsigned data_final;     /* reply after the data (10 min) */
};

struct smtp_client_params {
	const struct sockaddr *addr;     /* where to connect (IPv4 or IPv6, port set) */
	socklen_t addrlen;
	const char *host;                /* the server's name: SNI, certificate name checks,
					    logs; NULL: the address text */
	const char *helo_name;           /* our name for EHLO */
	enum smtp_tls_policy tls;
	/* A client context from smtp_client_tls_ctx_create(), shared by
	 * sessions (it holds the CA store); NULL: the session makes one with
	 * the system CA store. */
	SSL_CTX *tls_ctx;
	const struct smtp_tlsa *tlsa;    /* SMTP_TLS_DANE: the TLSA RRset */
	size_t n_tlsa;
	bool implicit_tls;               /* TLS from the first byte, before the greeting
					    (RFC 8314 3, port 465); needs a tls policy of
					    REQUIRE_VERIFY or DANE (OPPORTUNISTIC: not checked) */
	const char *auth_user;           /* AUTH PLAIN (LOGIN fallback) after TLS; NULL: none */
	const char *auth_pass;
	struct smtp_client_timeouts timeouts;
	const char *log_id;              /* a queue id or similar for log lines; may be NULL */
};

/* How a message is sent. */
enum smtp_client_msg_flags {
	SMTP_MSG_8BIT = 1 << 0,          /* the body has 8-bit bytes: BODY=8BITMIME needed */
	SMTP_MSG_SMTPUTF8 = 1 << 1,      /* UTF-8 addresses or headers: SMTPUTF8 needed */
	SMTP_MSG_REQUIRETLS = 1 << 2,    /* RFC 8689: verified TLS and REQUIRETLS needed */
};

enum smtp_dsn_notify {
	SMTP_NOTIFY_NEVER = 1 << 0,
	SMTP_NOTIFY_SUCCESS = 1 << 1,
	SMTP_NOTIFY_FAILURE = 1 << 2,
	SMTP_NOTIFY_DELAY = 1 << 3,
};

enum smtp_dsn_ret { SMTP_DSN_RET_NONE, SMTP_DSN_RET_FULL, SMTP_DSN_RET_HDRS };

struct smtp_client_rcpt {
	const char *addr;                /* without angle brackets */
	unsigned notify;                 /* enum smtp_dsn_notify bits; 0: no NOTIFY */
	const char *orcpt;               /* "rfc822;user@example.org" (decoded; xtext-encoded
					    when sent); NULL: none */
};

struct smtp_client_message {
	const char *sender;              /* "" for the null reverse-path */
	const struct smtp_client_rcpt *rcpts;
	size_t n_rcpts;
	const char *data;                /* the message, CRLF line ends, not dot-stuffed */
	size_t len;
	unsigned flags;                  /* enum smtp_client_msg_flags */
	enum smtp_dsn_ret ret;           /* DSN RET=, sent only if the server has DSN */
	const char *envid;               /* DSN ENVID= (decoded); NULL: none */
};

enum smtp_status {
	SMTP_STATUS_OK,
	SMTP_STATUS_TEMP,                /* try again later (4xx, network, timeout, TLS) */
	SMTP_STATUS_PERM,                /* give up: bounce (5xx or a local permanent reason) */
};

/* Where in the session a result was decided. */
enum smtp_stage {
	SMTP_STAGE_CONNECT, SMTP_STAGE_GREETING, SMTP_STAGE_EHLO, SMTP_STAGE_STARTTLS,
	SMTP_STAGE_TLS, SMTP_STAGE_AUTH, SMTP_STAGE_READY, SMTP_STAGE_MAIL, SMTP_STAGE_RCPT,
	SMTP_STAGE_DATA, SMTP_STAGE_DATA_END, SMTP_STAGE_RSET, SMTP_STAGE_QUIT,
};

/* An outcome: the server's reply, or a local one (local = true; code and
 * enhanced code then chosen by the client, e.g. 552 5.3.4 for SIZE).
 * Strings are sanitized and valid until the callback returns. */
struct smtp_client_status {
	enum smtp_status status;
	int code;                        /* 0 when there was no reply (network, timeout) */
	const char *enhanced;            /* "" when none */
	const char *text;                /* never NULL */
	bool local;
};

/* The TLS outcome, for logs, Received headers and TLS reports. */
struct smtp_client_tls_info {
	bool active;
	bool verified;                   /* REQUIRE_VERIFY: chain and name checked */
	bool dane;                       /* DANE: a TLSA record matched */
	const char *version;             /* "TLSv1.3"; "" when not active */
	const char *cipher;              /* "" when not active */
	const char *failure;             /* why TLS failed (verification error); NULL */
};

struct smtp_client_result {
	enum smtp_stage stage;           /* READY after connect, DATA_END after a message */
	/* the session's outcome (connect), or the message's: status OK when
	 * a recipient was delivered, else TEMP when any may be retried, else
	 * PERM; code and text from the deciding reply (data, DATA, MAIL, or
	 * the first refused RCPT) */
	struct smtp_client_status st;
	/* smtp_client_send: one per recipient, in the message's order; the
	 * final status of each (an accepted RCPT takes the reply to the data) */
	const struct smtp_client_status *rcpts;
	size_t n_rcpts;
	size_t n_delivered;              /* recipients with SMTP_STATUS_OK */
	struct smtp_client_tls_info tls;
};

struct smtp_client;

typedef void smtp_client_cb(struct smtp_client *c, const struct smtp_client_result *r, void *ctx);

/* Extensions the server announced (smtp_client_has). */
enum smtp_client_ext {
	SMTP_EXT_PIPELINING = 1 << 0, SMTP_EXT_SIZE = 1 << 1, SMTP_EXT_8BITMIME = 1 << 2,
	SMTP_EXT_SMTPUTF8 = 1 << 3, SMTP_EXT_CHUNKING = 1 << 4, SMTP_EXT_DSN = 1 << 5,
	SMTP_EXT_STARTTLS = 1 << 6, SMTP_EXT_AUTH_PLAIN = 1 << 7, SMTP_EXT_AUTH_LOGIN = 1 << 8,
	SMTP_EXT_REQUIRETLS = 1 << 9, SMTP_EXT_ENHANCEDSTATUSCODES = 1 << 10,
};

/* A client TLS context: TLS 1.2+, DANE enabled, the CA store from
 * ca_file and/or ca_dir (both NULL: OpenSSL's default paths).  NULL with
 * *error_r on failure.  Free with SSL_CTX_free once no session uses it. */
SSL_CTX *smtp_client_tls_ctx_create(const char *ca_file, const char *ca_dir,
				    const char **error_r);

/* Start a session.  p and everything it points to need only live during
 * the call (copied).  Returns the session (cb comes later, never inside
 * this call), or NULL with *error_r when it cannot even start (bad
 * parameters, socket failure). */
struct smtp_client *smtp_client_connect(struct event_base *base,
					const struct smtp_client_params *p,
					smtp_client_cb *cb, void *ctx, const char **error_r);

/* Send one message on a READY session; cb comes once, later, with the
 * recipients' outcomes.  m and what it points to must stay valid until
 * then.  Returns -1 with *error_r when the session is not usable. */
int smtp_client_send(struct smtp_client *c, const struct smtp_client_message *m,
		     smtp_client_cb *cb, void *ctx, const char **error_r);

/* Can the session carry another message now? */
bool smtp_client_usable(const struct smtp_client *c);

/* Did the server announce ext (enum smtp_client_ext)?  Meaningful after
 * READY; used by the caller to convert 8-bit bodies (mail/downgrade.h). */
bool smtp_client_has(const struct smtp_client *c, unsigned ext);

/* The server's SIZE limit (0: none announced or unlimited). */
uint64_t smtp_client_size_limit(const struct smtp_client *c);

/* Send QUIT (when the session is usable), then close and free the
 * session by itself; no callback comes any more.  *c is set to NULL. */
void smtp_client_quit(struct smtp_client **c);

/* Close the connection at once and free the session (deferred while
 * inside a callback); no callback comes any more.  *c is set to NULL;
 * NULL is fine. */
void smtp_client_free(struct smtp_client **c);

/* Names for logs. */
const char *smtp_stage_name(enum smtp_stage stage);
const char *smtp_status_name(enum smtp_status status);

#endif
