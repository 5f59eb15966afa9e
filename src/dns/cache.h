/* The resolver's answer cache: libunbound answers kept, shared and
 * reference-counted, for their TTL, per resolver (one event loop, so no
 * locking).  See cache.c. */
#ifndef TERN_DNS_CACHE_H
#define TERN_DNS_CACHE_H

#include <stdint.h>

struct ub_result;

/* A libunbound answer that several lookups may read at once; read-only
 * while shared, freed (ub_resolve_free) when the last holder lets go. */
struct dns_answer {
	struct ub_result *res;
	unsigned refs;
};

struct dns_cache;

/* A cache holding at most max_entries answers (0: no cache at all, every
 * call below does nothing). */
struct dns_cache *dns_cache_new(unsigned max_entries);
void dns_cache_free(struct dns_cache **cp);

/* Wrap a libunbound answer (ownership passes) with one reference. */
struct dns_answer *dns_answer_wrap(struct ub_result *res);
/* Drop one reference; frees the answer with the last one. */
void dns_answer_unref(struct dns_answer **ap);

/* The answer for (name, rrtype) that has not expired at now_ms (a
 * monotonic clock in milliseconds), with a reference for the caller, or
 * NULL.  Names compare without case and without a trailing dot. */
struct dns_answer *dns_cache_get(struct dns_cache *c, const char *name, int rrtype,
				 uint64_t now_ms);

/* Keep a (second) reference to answer a for (name, rrtype) until now_ms
 * plus its TTL, when it may be kept: a validated or insecure answer with
 * data, NXDOMAIN or NODATA and a TTL above zero (never an error, a bogus
 * or rate-limited one).  TTLs over one day count as one day. */
void dns_cache_put(struct dns_cache *c, const char *name, int rrtype, struct dns_answer *a,
		   uint64_t now_ms);

#endif
