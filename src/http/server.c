/* The HTTP and HTTPS listeners over libevent's evhttp: the MTA-STS policy
 * (RFC 8461 3.3) on https, /health on both, a redirect to https for
 * everything else on http.
 *
 * One evhttp per event-loop thread and listener kind, bound (through an
 * evconnlistener of our own, evhttp_bind_listener) to the listening
 * sockets the master handed over, which every thread shares.  On https
 * the bufferevent of each connection is an OpenSSL one made from the
 * master's SSL_CTX (the configured certificate; the same one for every
 * SNI name), so a reload (new worker, new SSL_CTX) picks up a new
 * certificate.
 *
 * Invariants:
 *  - Handlers answer synchronously (one short store read), so a request
 *    never outlives its callback and stopping needs no bookkeeping per
 *    request.
 *  - Limits: request line plus headers at most HTTP_MAX_HEADERS bytes
 *    (evhttp answers 413 past it), a body at most HTTP_MAX_BODY bytes,
 *    HTTP_TIMEOUT seconds for any read or write, only GET and HEAD (405),
 *    and limits.connections_per_ip / limits.connections counted with the
 *    other protocols (lib/net.h) from a connection's first request until
 *    it closes; a connection over the limit gets 503 and is closed.
 *  - Nothing a peer sends reaches a response header except a validated
 *    host name (LDH) and a request target of printable ASCII, in the
 *    redirect's Location.
 *  - The connections this thread counts are in s->conns; each one leaves
 *    it in its evhttp close callback, which evhttp_free also runs.
 * RFC 8461 3.3 (policy over HTTPS only, 200 with text/plain, no
 * redirects followed by senders), RFC 9110 15.5.6 (405 with Allow). */
#include "http/http.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/tls.h"
#include "store/store.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_MAX_HEADERS 8192       /* request line and header section, bytes */
#define HTTP_MAX_BODY 1024          /* request body, bytes (GET and HEAD need none) */
#define HTTP_TIMEOUT 30             /* seconds for any read or write on a connection */
#define HTTP_MAX_TARGET 2048        /* request target copied into a redirect */
#define HTTP_MAX_SOCKETS 64

#define MTA_STS_PATH "/.well-known/mta-sts.txt"

struct http_conn {
	struct http_server *srv;
	struct evhttp_connection *evcon;
	char ip[NET_ADDR_MAX];
	struct http_conn *next, *prev;
};

struct http_server {
	const struct http_listener *l;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound[HTTP_MAX_SOCKETS];
	unsigned bound_count;
	bool stopping;
	struct http_conn *conns;
};

static __thread unsigned thread_conns;

unsigned http_connections_count(void)
{
	return thread_conns;
}

/* ---- the listener ---- */

void http_listener_init(struct http_listener *l, const char *name, bool tls,
			const struct config *cfg, SSL_CTX *tls_ctx, struct store *store)
{
	struct buf b;

	memset(l, 0, sizeof(*l));
	l->name = name;
	l->tls = tls;
	l->cfg = cfg;
	l->tls_ctx = tls_ctx;
	l->store = store;
	buf_init(&b, BUF_UNLIMITED);
	http_mta_sts_policy(cfg, &b);
	l->policy_len = b.len;
	l->policy = buf_steal(&b);
	if (tls) {
		/* the id to publish in _mta-sts TXT records (docs/http.md) */
		char id[HTTP_MTA_STS_ID_LEN + 1];
		http_mta_sts_id(cfg, id);
		log_info("http", "event=mta_sts_published mode=%s mx_count=%u max_age=%u id=%s",
			 cfg->mta_sts.mode, cfg->mta_sts.mx_count > 0 ? cfg->mta_sts.mx_count : 1,
			 cfg->mta_sts.max_age, id);
	}
}

void http_listener_clear(struct http_listener *l)
{
	free(l->policy);
	l->policy = NULL;
	l->policy_len = 0;
}

/* ---- connection accounting ---- */

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct http_conn *hc = arg;
	struct http_server *s = hc->srv;

	(void)evcon;
	if (hc->prev != NULL)
		hc->prev->next = hc->next;
	else
		s->conns = hc->next;
	if (hc->next != NULL)
		hc->next->prev = hc->prev;
	net_conn_release(hc->ip);
	thread_conns--;
	free(hc);
}

static struct http_conn *conn_find(struct http_server *s, struct evhttp_connection *evcon)
{
	for (struct http_conn *hc = s->conns; hc != NULL; hc = hc->next)
		if (hc->evcon == evcon)
			return hc;
	return NULL;
}

/* The client's address text; "unknown" when evhttp has none. */
static void peer_ip(struct evhttp_connection *evcon, char *out, size_t outsz)
{
	const struct sockaddr *sa = evcon != NULL ? evhttp_connection_get_addr(evcon) : NULL;

	if (sa == NULL || net_addr_str(sa, out, outsz) == NULL)
		snprintf(out, outsz, "unknown");
}

/* Count a connection at its first request.  false: over the limit. */
static bool conn_admit(struct http_server *s, struct evhttp_connection *evcon, const char *ip)
{
	const struct config *cfg = s->l->cfg;
	struct http_conn *hc;

	if (conn_find(s, evcon) != NULL)
		return true;
	if (!net_conn_acquire(ip, cfg->limits.connections_per_ip, cfg->limits.connections))
		return false;
	hc = xcalloc(1, sizeof(*hc));
	hc->srv = s;
	hc->evcon = evcon;
	snprintf(hc->ip, sizeof(hc->ip), "%s", ip);
	hc->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = hc;
	s->conns = hc;
	thread_conns++;
	evhttp_connection_set_closecb(evcon, conn_closed, hc);
	return true;
}

/* ---- responses ---- */

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "other";
}

/* Send code with a text/plain body (HEAD: its length only). */
static void reply(struct http_server *s, struct evhttp_request *req, int code,
		  const char *reason, const char *body, size_t len, bool close)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	char num[32];

	evhttp_add_header(h, "Content-Type", "text/plain");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (s->l->tls)
		evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		snprintf(num, sizeof(num), "%zu", len);
		evhttp_add_header(h, "Content-Length", num);
	} else {
		evbuffer_add(out, body, len);
	}
	if (close || s->stopping)
		evhttp_add_header(h, "Connection", "close");
	evhttp_send_reply(req, code, reason, NULL);
}

static void reply_text(struct http_server *s, struct evhttp_request *req, int code,
		       const char *reason, const char *text)
{
	reply(s, req, code, reason, text, strlen(text), false);
}

/* /health: does the store answer a cheap read? */
static int serve_health(struct http_server *s, struct evhttp_request *req)
{
	struct store_domain d = { 0 };
	const char *error = NULL;
	int r = store_domain_get(s->l->store, "health.invalid", &d, &error);

	if (r > 0)
		store_domain_clear(&d);
	if (r < 0) {
		log_warn("http", "event=health_failed error=%s", log_quote(error));
		reply_text(s, req, 503, "Service Unavailable", "unavailable\n");
		return 503;
	}
	reply_text(s, req, 200, "OK", "ok\n");
	return 200;
}

/* GET /.well-known/mta-sts.txt on https (RFC 8461 3.3) */
static int serve_policy(struct http_server *s, struct evhttp_request *req, const char *host)
{
	struct store_domain d = { 0 };
	const char *error = NULL;
	char *domain = NULL;
	int r;

	if (host == NULL || http_mta_sts_host_domain(host, strlen(host), &domain) < 0) {
		reply_text(s, req, 404, "Not Found", "not found\n");
		return 404;
	}
	r = store_domain_get(s->l->store, domain, &d, &error);
	free(domain);
	if (r > 0)
		store_domain_clear(&d);
	if (r < 0) {
		log_warn("http", "event=policy_failed error=%s", log_quote(error));
		reply_text(s, req, 503, "Service Unavailable", "unavailable\n");
		return 503;
	}
	if (r == 0) {
		reply_text(s, req, 404, "Not Found", "not found\n");
		return 404;
	}
	reply(s, req, 200, "OK", s->l->policy, s->l->policy_len, false);
	return 200;
}

/* A host name (LDH, dots) with an optional :port: the length of the name
 * part, or 0 when host is anything else. */
static size_t redirect_host_len(const char *host)
{
	size_t n = 0;

	if (host == NULL)
		return 0;
	while (host[n] != '\0' && host[n] != ':') {
		char c = host[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.') || n >= 253)
			return 0;
		n++;
	}
	for (size_t i = n + (host[n] == ':'); host[i] != '\0'; i++)
		if (host[i] < '0' || host[i] > '9')
			return 0;
	return n;
}

/* http: everything but /health goes to the same host and target on https */
static int serve_redirect(struct http_server *s, struct evhttp_request *req, const char *host)
{
	const struct config *cfg = s->l->cfg;
	int https_port = cfg->port[LISTENER_HTTPS];
	const char *target = evhttp_request_get_uri(req);
	size_t hlen = redirect_host_len(host);
	char port[16] = "";
	struct buf loc;

	if (https_port <= 0) {
		reply_text(s, req, 404, "Not Found", "not found\n");
		return 404;
	}
	if (target == NULL || target[0] != '/' || strlen(target) > HTTP_MAX_TARGET)
		target = "/";
	for (const char *c = target; *c != '\0'; c++)
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f) {
			target = "/";
			break;
		}
	if (hlen == 0) {
		host = cfg->hostname;
		hlen = strlen(host);
	}
	if (https_port != 443)
		snprintf(port, sizeof(port), ":%d", https_port);
	buf_init(&loc, BUF_UNLIMITED);
	buf_printf(&loc, "https://%.*s%s%s", (int)hlen, host, port, target);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Location", buf_cstr(&loc));
	buf_free(&loc);
	reply_text(s, req, 301, "Moved Permanently", "moved to https\n");
	return 301;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct http_server *s = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
	char ip[NET_ADDR_MAX];
	int code;

	peer_ip(evcon, ip, sizeof(ip));
	if (evcon != NULL && !conn_admit(s, evcon, ip)) {
		log_info("http", "listener=%s ip=%s event=refused reason=\"too many connections\"",
			 s->l->name, ip);
		reply(s, req, 503, "Service Unavailable", "too many connections\n",
		      strlen("too many connections\n"), true);
		return;
	}
	if (path == NULL)
		path = "";
	if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		reply_text(s, req, 405, "Method Not Allowed", "method not allowed\n");
		code = 405;
	} else if (strcmp(path, "/health") == 0) {
		code = serve_health(s, req);
	} else if (!s->l->tls) {
		code = serve_redirect(s, req, host);
	} else if (strcmp(path, MTA_STS_PATH) == 0) {
		code = serve_policy(s, req, host);
	} else {
		reply_text(s, req, 404, "Not Found", "not found\n");
		code = 404;
	}
	log_info("http", "listener=%s ip=%s method=%s host=%s path=%s status=%d", s->l->name, ip,
		 method_name(method), log_quote(host != NULL ? host : ""), log_quote(path), code);
}

/* evhttp asks for the bufferevent of each new connection: TLS on https */
static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
	struct http_server *s = arg;
	SSL *ssl;

	if (!s->l->tls)
		return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	ssl = SSL_new(s->l->tls_ctx);
	/* evhttp would fall back to plain HTTP on NULL: never on the https port */
	if (ssl == NULL)
		panic("http: SSL_new failed: %s", tls_last_error());
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE);
}

/* ---- the server ---- */

struct http_server *http_server_create(const struct http_listener *l, struct event_base *base,
				       const char **error_r)
{
	struct http_server *s = xcalloc(1, sizeof(*s));

	s->l = l;
	s->base = base;
	s->http = evhttp_new(base);
	if (s->http == NULL) {
		free(s);
		*error_r = "evhttp_new failed";
		return NULL;
	}
	evhttp_set_max_headers_size(s->http, HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(s->http, HTTP_MAX_BODY);
	evhttp_set_timeout(s->http, HTTP_TIMEOUT);
	/* every method reaches on_request, which answers 405 (evhttp: 501) */
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
				   EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
				   EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(s->http, "text/plain");
	evhttp_set_bevcb(s->http, make_bev, s);
	evhttp_set_gencb(s->http, on_request, s);
	return s;
}

int http_server_add_socket(struct http_server *s, int fd, const char **error_r)
{
	struct evconnlistener *lev;
	struct evhttp_bound_socket *b;

	if (s->bound_count >= HTTP_MAX_SOCKETS) {
		*error_r = "too many HTTP listening sockets";
		return -1;
	}
	/* no LEV_OPT_CLOSE_ON_FREE: the socket is shared and the worker closes it */
	lev = evconnlistener_new(s->base, NULL, NULL, LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (lev == NULL) {
		*error_r = "evconnlistener_new failed";
		return -1;
	}
	b = evhttp_bind_listener(s->http, lev);
	if (b == NULL) {
		evconnlistener_free(lev);
		*error_r = "evhttp_bind_listener failed";
		return -1;
	}
	s->bound[s->bound_count++] = b;
	return 0;
}

void http_server_stop_accepting(struct http_server *s)
{
	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->bound_count; i++)
		evhttp_del_accept_socket(s->http, s->bound[i]);
	s->bound_count = 0;
	s->stopping = true;
}

void http_server_free(struct http_server **sp)
{
	struct http_server *s = *sp;

	if (s == NULL)
		return;
	http_server_stop_accepting(s);
	evhttp_free(s->http);   /* closes the connections: conn_closed for each */
	while (s->conns != NULL)   /* one evhttp did not report (never expected) */
		conn_closed(s->conns->evcon, s->conns);
	free(s);
	*sp = NULL;
}
