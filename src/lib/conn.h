/* The connection machinery the line-protocol servers (SMTP, POP3, IMAP)
 * share: accept, the per-thread connection list, references, PROXY
 * protocol input, STARTTLS / implicit TLS over a bufferevent filter, the
 * idle timeout, "close once the output is flushed", resuming input
 * after an asynchronous step, and DEFLATE compression (IMAP COMPRESS).  A protocol session embeds a struct conn
 * and gives a struct conn_ops; the protocol keeps its own framing, state
 * machine and replies. */
#ifndef TERN_LIB_CONN_H
#define TERN_LIB_CONN_H

#include "lib/net.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* The session that embeds conn as member `member`. */
#define conn_container(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct conn;
struct compress;

/* A thread's connections of one protocol (a __thread variable of the
 * protocol's server; all fields zero to start). */
struct conn_list {
	struct conn *head;
	unsigned count;
};

/* Protocol callbacks; every one runs on the connection's event loop. */
struct conn_ops {
	const char *log_mod;    /* "smtp", "pop3", "imap": the log module name */
	/* Send the greeting and set the protocol's first state: after the
	 * PROXY header (when one is expected) and the implicit TLS handshake. */
	void (*start)(struct conn *c);
	/* Bytes are readable and no async step is in flight: consume them
	 * while conn_can_read(c).  Called with a reference held, never
	 * re-entered (a resume inside it returns and lets it go on). */
	void (*input)(struct conn *c);
	/* The output drained below the write low watermark and the connection
	 * is not closing (long replies: RETR, FETCH).  May be NULL. */
	void (*writable)(struct conn *c);
	/* The idle timeout expired: queue the protocol's last reply (the
	 * connection is then closed once it is flushed). */
	void (*timeout)(struct conn *c);
	/* The connection limit refused the client: queue the refusal (the
	 * connection is then closed once it is flushed).  May be NULL. */
	void (*refuse)(struct conn *c);
	/* The connection is going away (conn_disconnect): log the protocol's
	 * disconnect line and stop protocol I/O (files, notify).  The session
	 * stays allocated until free. */
	void (*disconnect)(struct conn *c, const char *reason);
	/* The last reference is gone: free the protocol's state and the
	 * session itself (conn's own resources are already released). */
	void (*free)(struct conn *c);
};

/* How conn_accept() sets up a connection. */
struct conn_params {
	const struct conn_ops *ops;
	struct conn_list *list;
	const struct config *cfg;    /* limits.connections(_per_ip), proxy_trusted */
	SSL_CTX *tls;                /* NULL: no TLS offered */
	bool implicit_tls;
	const char *listener;        /* for the connect log line */
	unsigned read_timeout;       /* seconds; 0: none */
	unsigned write_timeout;      /* seconds; 0: none */
	size_t read_high;            /* unread input above which reading pauses; 0: none */
	size_t write_low;            /* write low watermark (writable callback); 0: none */
};

struct conn {
	const struct conn_ops *ops;
	struct conn_list *list;
	struct conn *next, *prev;    /* the list of this thread */
	struct event_base *base;
	struct bufferevent *bev;     /* NULL once disconnected */
	SSL *ssl;                    /* non-NULL once TLS started */
	bool tls_active;             /* handshake done */
	bool implicit_tls;
	SSL_CTX *tls_ctx;
	char tls_desc[128];
	unsigned refs;               /* pending async operations + 1 while connected */
	bool closed;                 /* disconnected (or disconnecting): ignore input */
	bool close_after_write;      /* conn_close() called: disconnect once flushed */
	struct event *close_ev;      /* polls a TLS connection's flush before closing */
	unsigned close_polls;
	bool proxy_pending;          /* waiting for a PROXY header from a trusted peer */
	bool waiting;                /* an async step is in flight: read no input */
	unsigned processing;         /* the input callback is on the stack */
	unsigned read_timeout, write_timeout;
	size_t read_high, write_low;
	bool read_paused;            /* more than read_high bytes wait unread */
	struct compress *compress;   /* COMPRESS active: the streams, owned by the filter
					bufferevent c->bev (NULL once that is freed) */

	char id[9];                  /* random session id for the logs */
	char ip[NET_ADDR_MAX];       /* the client (after PROXY: the real one) */
	char conn_ip[NET_ADDR_MAX];  /* the address counted by the connection limit */
	int port;
	bool loopback;
};

/* Set up c (zeroed, embedded in the caller's session) for the accepted
 * socket fd: id, addresses, list, bufferevent, connect log line, the
 * per-IP limit (refuse + close), then PROXY wait, implicit TLS or
 * ops->start.  c may already be freed on return (ops->free was called);
 * the caller must not touch it afterwards. */
void conn_accept(struct conn *c, const struct conn_params *p, struct event_base *base, int fd,
		 const struct sockaddr *sa);

/* Start TLS (STARTTLS or implicit) on the connection: wraps the socket
 * bufferevent in an OpenSSL filter; waiting until the handshake is done,
 * then input resumes (and, for implicit TLS, ops->start is called).
 * Returns -1 when no TLS context is set, OpenSSL fails, or compression
 * is already active (TLS must sit below it). */
int conn_start_tls(struct conn *c);

/* Compress both directions from now on (raw DEFLATE, RFC 4978) with a
 * filter above the socket or TLS: output queued so far (the reply that
 * started it) goes out as it is, input not consumed yet (pipelined after
 * the command) is inflated.  The protocol keeps using conn_input(),
 * conn_output() and c->bev, which now carry plain bytes; flow control
 * counts inflated bytes.  Returns -1 with *error_r when already active
 * or zlib cannot start (the caller should then close: the peer already
 * compresses). */
int conn_start_compress(struct conn *c, const char **error_r);

/* Is compression active? */
bool conn_compressed(const struct conn *c);

/* Stop reading and disconnect once every queued reply reached the socket
 * (also through the TLS filter).  Idempotent. */
void conn_close(struct conn *c, const char *reason);

/* Disconnect now: ops->disconnect, free the bufferevent, drop the
 * connection's reference.  Idempotent. */
void conn_disconnect(struct conn *c, const char *reason);

void conn_ref(struct conn *c);
/* Drop a reference; false when it was the last one and c was freed. */
bool conn_unref(struct conn *c);

/* An async step finished: clear waiting and read pending input (unless
 * called from inside the input callback, which then goes on itself). */
void conn_resume(struct conn *c);

/* May the input callback consume another command? */
bool conn_can_read(const struct conn *c);

/* The output buffer, or NULL when the connection is gone. */
struct evbuffer *conn_output(struct conn *c);
/* The input buffer, or NULL when the connection is gone. */
struct evbuffer *conn_input(struct conn *c);
/* Drop input up to and including the next LF (the rest of an over-long
 * line); true when the LF was found, false when all input was dropped. */
bool conn_discard_line(struct conn *c);
/* Queue bytes for the client (nothing once disconnected). */
void conn_send(struct conn *c, const void *p, size_t len);
/* Bytes queued for the client that the socket (or, with TLS, the TLS
 * layer, which buffers at most 256 KiB more; with compression, bytes not
 * deflated yet, 64 KiB compressed more) has not taken yet: what a long
 * reply compares with its pause threshold; the writable callback comes as
 * it shrinks. */
size_t conn_output_pending(struct conn *c);

/* Change the idle timeouts (seconds; 0: none), now and after STARTTLS. */
void conn_set_timeouts(struct conn *c, unsigned read_timeout, unsigned write_timeout);

/* Call fn for every connection of list that is not disconnected; fn may
 * close or disconnect the connection it is given. */
void conn_list_foreach(struct conn_list *list, void (*fn)(struct conn *c, void *arg), void *arg);

#endif
