/* The IMAP server (RFC 3501 IMAP4rev1 by default, RFC 9051 IMAP4rev2 after
 * ENABLE IMAP4rev2) over the message store: port 143 with STARTTLS
 * (RFC 2595 / RFC 9051 6.2.1) and port 993 with implicit TLS (RFC 8314).
 *
 * A session is a state machine owned by one event loop, as in the SMTP and
 * POP3 engines.  Every store write is asynchronous (group commit) and the
 * tagged OK is sent only when it is durable.  Changes made by other
 * sessions reach a selected mailbox through lib/notify.h and are reported
 * as untagged EXISTS / EXPUNGE / FETCH at the moments RFC 3501 7.4.1 and
 * RFC 9051 7.5.1 allow (docs/imap.md). */
#ifndef TERN_IMAP_H
#define TERN_IMAP_H

#include <stdbool.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

struct event_base;
struct config;
struct store;
struct threadpool;

/* What a listener needs; shared read-only by its sessions. */
struct imap_listener {
	const char *name;           /* "imap", "imaps" */
	bool implicit_tls;
	const struct config *cfg;
	SSL_CTX *tls;               /* NULL: STARTTLS not offered (and no IMAPS) */
	struct store *store;
	struct threadpool *pool;    /* password hashing */
};

/* Take over an accepted connection (the server closes fd). */
void imap_session_accept(const struct imap_listener *l, struct event_base *base, int fd,
			 const struct sockaddr *sa, socklen_t salen);

/* Stop this loop's sessions (SIGTERM): immediately, or gracefully (idle
 * and IDLEing sessions now with "* BYE", a session whose command waits on
 * a store commit when that commit completes).  Must run on base's thread. */
void imap_sessions_drain(struct event_base *base, bool immediate);
/* Sessions alive on this thread. */
unsigned imap_sessions_count(void);

#endif
