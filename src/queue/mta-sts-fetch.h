/* MTA-STS policy fetch (RFC 8461 3.3): GET
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt with libcurl, connecting
 * only to the addresses the caller resolved through dns/ (CURLOPT_RESOLVE),
 * so the policy host is looked up by the same validating resolver as
 * everything else.  The transfer runs on a small thread of its own; the
 * result comes back on the caller's event loop, which never blocks. */
#ifndef TERN_QUEUE_MTA_STS_FETCH_H
#define TERN_QUEUE_MTA_STS_FETCH_H

#include <stddef.h>

#include "dns/dns.h"

struct event_base;
struct mta_sts_fetch;

/* The outcome: status 0 with the policy text body[0..len) (at most
 * MTA_STS_POLICY_MAX bytes, NUL-terminated), or -1 with error (a readable
 * reason).  Both are valid only during the call. */
typedef void mta_sts_fetch_cb(int status, const char *body, size_t len, const char *error,
			      void *ctx);

struct mta_sts_fetch_params {
	const char *host;                /* "mta-sts.example.com" */
	unsigned port;                   /* 443 (other ports only for tests) */
	const struct dns_address *addrs; /* where host is (copied) */
	size_t n_addrs;
	const char *ca_file;             /* CA bundle; NULL: the system's */
	unsigned timeout;                /* seconds for the whole transfer */
};

/* Start a fetch whose callback runs later on base (never inside this
 * call).  The certificate must be valid for host, the reply must be a 200
 * with media type text/plain, redirects are not followed and nothing is
 * cached (RFC 8461 3.3).  Returns NULL with *error_r when it cannot start.
 * Needs evthread_use_pthreads() (the callback is posted from a thread). */
struct mta_sts_fetch *mta_sts_fetch_start(struct event_base *base,
					  const struct mta_sts_fetch_params *p,
					  mta_sts_fetch_cb *cb, void *ctx, const char **error_r);

/* Abandon a fetch: its callback will not run.  Waits for the transfer
 * thread, which notices within about a second; *f becomes NULL, NULL is
 * fine.  Never call it from inside the fetch's own callback. */
void mta_sts_fetch_cancel(struct mta_sts_fetch **f);

#endif
