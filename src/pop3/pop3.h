/* The POP3 server (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595), AUTH
 * (RFC 5034) and implicit TLS on 995, over the store's INBOX.
 *
 * A session is a state machine owned by one event loop, as in the SMTP
 * engine; nothing in it blocks except short synchronous store reads (the
 * maildrop snapshot at login).  Deletions are applied at QUIT through one
 * asynchronous store request (store_pop3_update).  Only one POP3 session
 * per user at a time in this process: a second login gets [IN-USE]
 * (RFC 2449 8.1.2).  The lock lives in the worker process; during a reload
 * the old and the new worker do not share it (docs/pop3.md). */
#ifndef TERN_POP3_H
#define TERN_POP3_H

#include <stdbool.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

struct event_base;
struct config;
struct store;
struct threadpool;

/* What a listener needs; shared read-only by its sessions. */
struct pop3_listener {
	const char *name;           /* "pop3", "pop3s" */
	bool implicit_tls;
	const struct config *cfg;
	SSL_CTX *tls;               /* NULL: STLS not offered (and no POP3S) */
	struct store *store;
	struct threadpool *pool;    /* password hashing */
};

/* Take over an accepted connection (the server closes fd). */
void pop3_session_accept(const struct pop3_listener *l, struct event_base *base, int fd,
			 const struct sockaddr *sa, socklen_t salen);

/* Stop this loop's sessions (SIGTERM): immediately, or gracefully (idle
 * sessions now, a session busy with a command or its QUIT update when that
 * ends).  Sessions that did not reach QUIT delete nothing.  Must run on
 * base's thread. */
void pop3_sessions_drain(struct event_base *base, bool immediate);
/* Sessions alive on this thread. */
unsigned pop3_sessions_count(void);

#endif
