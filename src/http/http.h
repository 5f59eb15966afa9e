/* The HTTP(S) server (libevent's evhttp) and the MTA-STS policy it
 * publishes (RFC 8461).
 *
 * The https listener serves, for every local domain DOMAIN,
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461 3.2, 3.3) with
 * the configured certificate, and GET /health.  The http listener answers
 * /health and redirects everything else to https (the policy must only be
 * served over HTTPS, RFC 8461 3.3).  docs/http.md is the administrator's
 * view.  Later work adds metrics and the admin API here. */
#ifndef TERN_HTTP_H
#define TERN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

struct buf;
struct config;
struct event_base;
struct store;

/* ---- the policy (mta-sts-policy.c) ---- */

/* Length of the policy id: hex digits of a SHA-256 of the policy text
 * (RFC 8461 3.1 allows 1 to 32 letters and digits). */
#define HTTP_MTA_STS_ID_LEN 32

/* Append the policy file text of cfg (RFC 8461 3.2) to out: "version:
 * STSv1", "mode: " cfg->mta_sts.mode, one "mx: " line per configured
 * pattern (lowercased; the hostname when none is configured) and
 * "max_age: ", each line ended by CRLF.  The same text for every local
 * domain.  Returns 0, or -1 when out's maximum is too small. */
int http_mta_sts_policy(const struct config *cfg, struct buf *out);

/* The policy id of cfg in id_r (HTTP_MTA_STS_ID_LEN hex digits and a NUL):
 * derived from the policy text, so it changes whenever the policy does and
 * every sender refetches it (RFC 8461 3.1). */
void http_mta_sts_id(const struct config *cfg, char id_r[HTTP_MTA_STS_ID_LEN + 1]);

/* Append the zone-file line of the _mta-sts TXT record of domain (RFC 8461
 * 3.1) to out, without a line end:
 *   _mta-sts.DOMAIN. IN TXT "v=STSv1; id=ID"
 * For `tern dns records`.  Returns 0, or -1 when out's maximum is too small. */
int http_mta_sts_txt_record(const struct config *cfg, const char *domain, struct buf *out);

/* The domain a request for the policy is about: host is the Host header
 * value ("mta-sts.Example.COM:443"): an optional port (digits after the
 * last ':') is stripped, then the name must be "mta-sts." followed by a
 * host name (LDH labels of 1-63 bytes, 253 bytes at most, one trailing dot
 * allowed) in any case.  Returns 0 with the lowercased DOMAIN in a
 * malloc'd *domain_r, or -1 (anything else, including IP literals and
 * bytes outside printable ASCII). */
int http_mta_sts_host_domain(const char *host, size_t len, char **domain_r);

/* ---- the server (server.c) ---- */

/* What one listener kind needs; shared read-only by the servers of every
 * thread.  Set up with http_listener_init. */
struct http_listener {
	const char *name;           /* "http" or "https" */
	bool tls;                   /* https: TLS on every connection */
	const struct config *cfg;
	SSL_CTX *tls_ctx;           /* the server certificate (https) */
	struct store *store;
	char *policy;               /* the MTA-STS policy text (owned) */
	size_t policy_len;
};

/* Fill l for listener name ("http" or "https"); tls_ctx is needed for
 * https.  Release with http_listener_clear. */
void http_listener_init(struct http_listener *l, const char *name, bool tls,
			const struct config *cfg, SSL_CTX *tls_ctx, struct store *store);
void http_listener_clear(struct http_listener *l);

/* One evhttp on one event loop, serving the listening sockets added to it
 * for listener l (which must outlive it). */
struct http_server;

/* NULL with *error_r when evhttp cannot be created. */
struct http_server *http_server_create(const struct http_listener *l, struct event_base *base,
				       const char **error_r);

/* Accept connections on the listening socket fd (shared with other
 * threads; never closed here).  Returns 0, or -1 with *error_r. */
int http_server_add_socket(struct http_server *s, int fd, const char **error_r);

/* Stop accepting (the sockets stay open); open connections go on, and
 * every later response carries "Connection: close".  Idempotent. */
void http_server_stop_accepting(struct http_server *s);

/* Close every connection and free the server; *s becomes NULL (NULL is
 * fine).  Must run on the server's event loop thread (or after it ended). */
void http_server_free(struct http_server **s);

/* Connections that made a request and are still open, on this thread. */
unsigned http_connections_count(void);

#endif
