/* Connection machinery shared by the SMTP, POP3 and IMAP servers: accept,
 * the per-thread list, references, PROXY input, TLS, timeouts, closing
 * once the output is flushed, and resuming input after an async step.
 *
 * Invariants:
 *  - A connection belongs to the event loop that accepted it; every
 *    callback runs there, so nothing here locks (net_conn_* does its own).
 *  - refs counts the connection itself (dropped by conn_disconnect) plus
 *    every async step in flight; c is freed (ops->free) at zero.
 *  - While waiting (an async step or the TLS handshake), ops->input is not
 *    called; pipelined input stays buffered, bounded by read_high.
 *  - ops->input is never re-entered through conn_resume: a step that
 *    completes synchronously inside it only clears waiting, and the input
 *    loop on the stack goes on (re-entering would read undrained bytes).
 *  - Closing waits until the output reached the socket; with TLS the
 *    filter's output first drains into the socket bufferevent, whose
 *    callbacks belong to the filter, so that case is polled (at most 2 s).
 *  - Layers, protocol side first: [compression filter] [TLS filter]
 *    socket.  c->bev is always the top one; each filter owns the one below
 *    (freed with it) and every layer below the top has a write high
 *    watermark, so long replies wait above, in conn_output_pending().
 *  - With compression, flow control counts inflated bytes; compressed
 *    bytes wait in the layer below while they are over the bound (the
 *    filter only runs when new bytes arrive there, so conn kicks it).
 * RFC 3207 / RFC 2595 / RFC 8314 (STARTTLS and implicit TLS: the handshake
 * before any protocol byte), RFC 4978 (COMPRESS=DEFLATE: compression from
 * the byte after the tagged OK, over TLS), the PROXY protocol v1/v2
 * (lib/proxy.h). */
#include "lib/conn.h"
#include "lib/compress.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/proxy.h"
#include "lib/tls.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CONN_CLOSE_POLL_USEC (10 * 1000)
#define CONN_CLOSE_POLL_MAX 200

/* Ciphertext buffered for the socket under a TLS filter, at most. */
#define CONN_TLS_SOCKET_BUFFER (256 * 1024)
/* Compressed output buffered under the compression filter, at most. */
#define CONN_COMPRESS_BUFFER (64 * 1024)

static void conn_read_cb(struct bufferevent *bev, void *ctx);
static void conn_write_cb(struct bufferevent *bev, void *ctx);
static void conn_event_cb(struct bufferevent *bev, short what, void *ctx);

/* ---- life cycle ---- */

static void conn_free(struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else if (c->list->head == c)
		c->list->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->list->count--;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	c->bev = NULL;
	c->compress = NULL;
	if (c->close_ev != NULL)
		event_free(c->close_ev);
	c->close_ev = NULL;
	if (c->conn_ip[0] != '\0')
		net_conn_release(c->conn_ip);
	c->ops->free(c);
}

void conn_ref(struct conn *c)
{
	c->refs++;
}

bool conn_unref(struct conn *c)
{
	if (--c->refs > 0)
		return true;
	conn_free(c);
	return false;
}

void conn_disconnect(struct conn *c, const char *reason)
{
	if (c->closed)
		return;
	c->closed = true;
	c->ops->disconnect(c, reason);
	if (c->compress != NULL) {
		struct compress_stats st;
		compress_get_stats(c->compress, &st);
		log_info(c->ops->log_mod, "sid=%s event=compress_stats in_wire=%llu in=%llu "
			 "out=%llu out_wire=%llu", c->id, (unsigned long long)st.in_wire,
			 (unsigned long long)st.in_plain, (unsigned long long)st.out_plain,
			 (unsigned long long)st.out_wire);
	}
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->compress = NULL;
	conn_unref(c);
}

/* ---- output ---- */

struct evbuffer *conn_output(struct conn *c)
{
	if (c->bev == NULL || c->closed)
		return NULL;
	return bufferevent_get_output(c->bev);
}

struct evbuffer *conn_input(struct conn *c)
{
	if (c->bev == NULL || c->closed)
		return NULL;
	return bufferevent_get_input(c->bev);
}

void conn_send(struct conn *c, const void *p, size_t len)
{
	if (c->bev != NULL && !c->closed)
		evbuffer_add(bufferevent_get_output(c->bev), p, len);
}

size_t conn_output_pending(struct conn *c)
{
	if (c->bev == NULL || c->closed)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* Every byte written to the socket, the buffers of the layers below
 * (compressed, TLS) included. */
static bool conn_output_flushed(struct conn *c)
{
	struct bufferevent *under;

	if (conn_output_pending(c) > 0)
		return false;
	for (under = bufferevent_get_underlying(c->bev); under != NULL;
	     under = bufferevent_get_underlying(under))
		if (evbuffer_get_length(bufferevent_get_output(under)) > 0)
			return false;
	return true;
}

/* ---- closing once flushed ---- */

static void conn_close_poll(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd; (void)what;
	struct conn *c = ctx;

	if (c->closed)
		return;
	if (conn_output_flushed(c) || ++c->close_polls > CONN_CLOSE_POLL_MAX) {
		conn_disconnect(c, "closed");
		return;
	}
	struct timeval tv = { 0, CONN_CLOSE_POLL_USEC };
	event_add(c->close_ev, &tv);
}

static void conn_close_when_flushed(struct conn *c)
{
	if (conn_output_flushed(c)) {
		conn_disconnect(c, "closed");
		return;
	}
	if (bufferevent_get_underlying(c->bev) != NULL &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		if (c->close_ev == NULL)
			c->close_ev = evtimer_new(c->base, conn_close_poll, c);
		conn_close_poll(-1, 0, c);
	}
	/* otherwise the write callback comes back here */
}

void conn_close(struct conn *c, const char *reason)
{
	if (c->closed || c->close_after_write)
		return;
	c->close_after_write = true;
	log_debug(c->ops->log_mod, "sid=%s event=closing reason=%s", c->id, log_quote(reason));
	bufferevent_disable(c->bev, EV_READ);
	conn_close_when_flushed(c);
}

/* ---- timeouts ---- */

static void conn_apply_timeouts(struct conn *c)
{
	struct timeval r = { c->read_timeout, 0 }, w = { c->write_timeout, 0 };

	if (c->bev != NULL)
		bufferevent_set_timeouts(c->bev, c->read_timeout ? &r : NULL,
					 c->write_timeout ? &w : NULL);
}

void conn_set_timeouts(struct conn *c, unsigned read_timeout, unsigned write_timeout)
{
	c->read_timeout = read_timeout;
	c->write_timeout = write_timeout;
	conn_apply_timeouts(c);
}

/* Callbacks, watermarks and timeouts of a new (socket or TLS) bufferevent. */
static void conn_setup_bev(struct conn *c)
{
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	/* no read watermark: see conn_flow_control() */
	if (c->write_low > 0)
		bufferevent_setwatermark(c->bev, EV_WRITE, c->write_low, 0);
	conn_apply_timeouts(c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---- input ---- */

bool conn_can_read(const struct conn *c)
{
	return !c->closed && !c->close_after_write && !c->waiting && c->bev != NULL;
}

bool conn_discard_line(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr pos = evbuffer_search(in, "\n", 1, NULL);

	if (pos.pos < 0) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return false;
	}
	evbuffer_drain(in, (size_t)pos.pos + 1);
	return true;
}

/* The PROXY header from a trusted peer; true when the protocol may read
 * the rest of the input now. */
static bool conn_proxy_input(struct conn *c)
{
	const char *mod = c->ops->log_mod;
	struct evbuffer *in = bufferevent_get_input(c->bev);
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
		log_warn(mod, "sid=%s event=proxy_error ip=%s error=%s", c->id, c->ip,
			 log_quote(error));
		conn_close(c, "bad PROXY header");
		return false;
	}
	evbuffer_drain(in, consumed);
	c->proxy_pending = false;
	if (!info.local) {
		char ip[NET_ADDR_MAX];
		net_addr_str((struct sockaddr *)&info.src, ip, sizeof(ip));
		log_info(mod, "sid=%s event=proxy proxy=%s ip=%s", c->id, c->ip, ip);
		snprintf(c->ip, sizeof(c->ip), "%s", ip);
		c->port = net_addr_port((struct sockaddr *)&info.src);
		c->loopback = net_addr_is_loopback((struct sockaddr *)&info.src);
	}
	if (c->implicit_tls) {
		if (conn_start_tls(c) < 0)
			conn_disconnect(c, "TLS setup failed");
		return false;
	}
	c->ops->start(c);
	return true;
}

/* Input flow control, by hand.  libevent's read high watermark on a TLS
 * filter bufferevent loses the order of the input once it is reached (seen
 * with a few hundred KiB of commands pipelined after STARTTLS: later
 * commands were read before earlier ones), so none is set; instead reading
 * pauses here while more than read_high bytes wait unread, and resumes once
 * the protocol has consumed most of them. */
static void conn_flow_control(struct conn *c)
{
	size_t pending;

	if (c->closed || c->bev == NULL || c->close_after_write)
		return;
	pending = evbuffer_get_length(bufferevent_get_input(c->bev));
	if (c->read_high == 0) {
		/* no bound */
	} else if (!c->read_paused && pending > c->read_high) {
		c->read_paused = true;
		bufferevent_disable(c->bev, EV_READ);
	} else if (c->read_paused && pending <= c->read_high / 2) {
		c->read_paused = false;
		bufferevent_enable(c->bev, EV_READ);
	}
	/* Compressed input may wait below the compression filter (the
	 * inflate bound, or pipelined before the filter came): the filter
	 * runs only on new bytes from the peer, who may be waiting for our
	 * replies to those.  The read callback comes (deferred) when more
	 * was inflated; the bound keeps this from looping. */
	if (c->compress != NULL && !c->read_paused)
		compress_filter_kick(c->bev, c->compress);
}

static void conn_process(struct conn *c)
{
	if (c->closed || c->bev == NULL)
		return;
	conn_ref(c);
	c->processing++;
	while (c->proxy_pending && conn_can_read(c) &&
	       evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
		if (!conn_proxy_input(c))
			break;
	}
	if (!c->proxy_pending && conn_can_read(c))
		c->ops->input(c);
	c->processing--;
	if (!c->closed && c->close_after_write)
		conn_close_when_flushed(c);
	conn_flow_control(c);
	conn_unref(c);
}

void conn_resume(struct conn *c)
{
	c->waiting = false;
	/* An async step that completed synchronously, inside the input loop:
	 * that loop goes on by itself once the current input is consumed
	 * (re-entering it here would read bytes not yet drained). */
	if (c->processing > 0)
		return;
	conn_process(c);
}

/* ---- TLS ---- */

int conn_start_tls(struct conn *c)
{
	struct bufferevent *tls_bev;

	if (c->tls_ctx == NULL || c->bev == NULL || c->compress != NULL)
		return -1;
	c->ssl = SSL_new(c->tls_ctx);
	if (c->ssl == NULL)
		return -1;
	tls_bev = bufferevent_openssl_filter_new(c->base, c->bev, c->ssl,
						 BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls_bev == NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		return -1;
	}
	/* The filter now owns the socket bufferevent (closed with it).  Its
	 * idle timeouts move to the filter: left on the socket one, its read
	 * timeout would fire during a long download (the client sends
	 * nothing meanwhile) whatever the protocol set later. */
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	/* The filter moves output into the socket bufferevent only while that
	 * holds less than this; so the protocol's output (conn_output_pending)
	 * stays queued above the filter, where its write callback — "the
	 * output drained" — can see it shrink.  Without it a long FETCH or
	 * RETR paused on pending output would wait for a callback that never
	 * comes, and the socket buffer would grow without bound. */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, CONN_TLS_SOCKET_BUFFER);
	c->bev = tls_bev;
	bufferevent_openssl_set_allow_dirty_shutdown(tls_bev, 1);
	c->waiting = true;  /* until the handshake completes */
	conn_setup_bev(c);
	return 0;
}

static void conn_tls_ready(struct conn *c)
{
	c->tls_active = true;
	tls_describe(c->ssl, c->tls_desc, sizeof(c->tls_desc));
	log_info(c->ops->log_mod, "sid=%s event=tls ip=%s tls=%s", c->id, c->ip,
		 log_quote(c->tls_desc));
	c->waiting = false;
	if (c->implicit_tls)
		c->ops->start(c);
	conn_process(c);
}

/* ---- compression ---- */

bool conn_compressed(const struct conn *c)
{
	return c->compress != NULL;
}

int conn_start_compress(struct conn *c, const char **error_r)
{
	struct bufferevent *under = c->bev, *zbev;
	struct compress *z = NULL;
	size_t inflate_max;

	if (c->bev == NULL || c->closed) {
		*error_r = "connection closed";
		return -1;
	}
	if (c->compress != NULL) {
		*error_r = "compression already active";
		return -1;
	}
	/* inflate a little past the flow-control bound, so that reaching
	 * the bound pauses reading (and stops the kicks) */
	inflate_max = c->read_high > 0 ? c->read_high + 64 * 1024 : 0;
	zbev = compress_filter_new(under, inflate_max, &z, error_r);
	if (zbev == NULL)
		return -1;
	/* The layer below keeps only a bounded amount of compressed output
	 * (the rest waits above, where conn_output_pending() and the
	 * writable callback see it, as under TLS); its idle timeouts move to
	 * the filter, and it read-enabled itself for the filter. */
	bufferevent_set_timeouts(under, NULL, NULL);
	bufferevent_setwatermark(under, EV_WRITE, 0, CONN_COMPRESS_BUFFER);
	c->bev = zbev;
	c->compress = z;
	c->read_paused = false;
	conn_setup_bev(c);
	log_info(c->ops->log_mod, "sid=%s event=compress ip=%s method=deflate tls=%s", c->id, c->ip,
		 c->tls_active ? "yes" : "no");
	/* bytes the client pipelined after the command are compressed */
	compress_filter_kick(c->bev, c->compress);
	return 0;
}

/* ---- libevent callbacks ---- */

static void conn_read_cb(struct bufferevent *bev, void *ctx)
{
	(void)bev;
	conn_process(ctx);
}

static void conn_write_cb(struct bufferevent *bev, void *ctx)
{
	(void)bev;
	struct conn *c = ctx;

	if (c->close_after_write) {
		conn_close_when_flushed(c);
		return;
	}
	if (c->ops->writable != NULL && !c->closed) {
		conn_ref(c);
		c->ops->writable(c);
		conn_unref(c);
	}
}

static void conn_event_cb(struct bufferevent *bev, short what, void *ctx)
{
	(void)bev;
	struct conn *c = ctx;

	if (what & BEV_EVENT_CONNECTED) {
		if (c->ssl != NULL && !c->tls_active)
			conn_tls_ready(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (c->close_after_write || (what & BEV_EVENT_WRITING)) {
			conn_disconnect(c, "timeout");   /* the peer does not read */
			return;
		}
		c->ops->timeout(c);
		conn_close(c, "timeout");
		return;
	}
	if ((what & BEV_EVENT_ERROR) && c->compress != NULL && compress_error(c->compress) != NULL) {
		log_warn(c->ops->log_mod, "sid=%s event=compress_error ip=%s error=%s", c->id, c->ip,
			 log_quote(compress_error(c->compress)));
		conn_disconnect(c, "compression error");
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		const char *why = c->ssl != NULL && !c->tls_active ? "TLS handshake failed" :
			"connection error";
		if (c->ssl != NULL)
			log_info(c->ops->log_mod, "sid=%s event=tls_error ip=%s error=%s", c->id, c->ip,
				 log_quote(tls_last_error()));
		conn_disconnect(c, why);
		return;
	}
	if (what & BEV_EVENT_EOF)
		conn_disconnect(c, "client closed");
}

/* ---- accept ---- */

void conn_accept(struct conn *c, const struct conn_params *p, struct event_base *base, int fd,
		 const struct sockaddr *sa)
{
	const struct config *cfg = p->cfg;
	const char *mod = p->ops->log_mod;
	unsigned char rnd[4];

	c->ops = p->ops;
	c->list = p->list;
	c->base = base;
	c->refs = 1;
	c->tls_ctx = p->tls;
	c->implicit_tls = p->implicit_tls;
	c->read_timeout = p->read_timeout;
	c->write_timeout = p->write_timeout;
	c->read_high = p->read_high;
	c->write_low = p->write_low;
	RAND_bytes(rnd, sizeof(rnd));
	snprintf(c->id, sizeof(c->id), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
	net_addr_str(sa, c->ip, sizeof(c->ip));
	c->port = net_addr_port(sa);
	c->loopback = net_addr_is_loopback(sa);
	c->next = c->list->head;
	if (c->list->head != NULL)
		c->list->head->prev = c;
	c->list->head = c;
	c->list->count++;

	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		c->closed = true;
		conn_unref(c);
		return;
	}
	conn_setup_bev(c);
	log_info(mod, "sid=%s event=connect ip=%s port=%d listener=%s", c->id, c->ip, c->port,
		 p->listener);

	if (!net_conn_acquire(c->ip, cfg->limits.connections_per_ip, cfg->limits.connections)) {
		log_warn(mod, "sid=%s event=connection_limit ip=%s", c->id, c->ip);
		if (c->ops->refuse != NULL)
			c->ops->refuse(c);
		conn_close(c, "connection limit");
		return;
	}
	snprintf(c->conn_ip, sizeof(c->conn_ip), "%s", c->ip);

	if (cfg->proxy_trusted_count > 0 &&
	    proxy_addr_trusted(sa, (const char *const *)cfg->proxy_trusted, cfg->proxy_trusted_count)) {
		c->proxy_pending = true;
		return;
	}
	if (c->implicit_tls) {
		if (conn_start_tls(c) < 0)
			conn_disconnect(c, "TLS setup failed");
		return;
	}
	c->ops->start(c);
}

/* ---- the list ---- */

void conn_list_foreach(struct conn_list *list, void (*fn)(struct conn *c, void *arg), void *arg)
{
	struct conn *c, *next;

	for (c = list->head; c != NULL; c = next) {
		next = c->next;
		if (!c->closed)
			fn(c, arg);
	}
}
