/* The resolver's answer cache.
 *
 * libunbound caches answers itself, but each lookup still goes through
 * its background thread: the question is written to a pipe, the thread
 * wakes up, finds the answer, writes it back, and the loop wakes up to
 * read it.  Under load (port 25 with SPF, DKIM and DMARC: three or four
 * lookups per message for the same few domains) that round trip cost
 * more CPU than the checks it served.  This cache answers a repeated
 * question in the loop itself, from the same ub_result libunbound gave,
 * for no longer than its TTL: what a caller sees is what libunbound
 * would have said from its own cache, without the thread hop.
 *
 * Invariants: an entry holds one reference on its answer; a lookup that
 * hits gets its own; an expired entry is never returned and is dropped
 * when met.  At most max_entries entries; when full, the least recently
 * used goes.  Errors, timeouts, bogus (DNSSEC-failed) and rate-limited
 * answers, and answers with a TTL of 0, are not kept (RFC 1035 3.2.1: a
 * zero TTL is for this transaction only; RFC 2308 5: negative answers
 * for the TTL the resolver gave them). */
#include "dns/cache.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unbound.h>

#include "lib/buf.h"

#define MAX_TTL_S 86400u
#define RCODE_NXDOMAIN 3

struct entry {
	struct entry *chain;             /* next in the bucket */
	struct entry *newer, *older;     /* recency list */
	char *name;
	int rrtype;
	uint64_t expires_ms;
	struct dns_answer *answer;
};

struct dns_cache {
	struct entry **buckets;
	size_t mask;
	unsigned count, max;
	struct entry *newest, *oldest;
};

struct dns_answer *dns_answer_wrap(struct ub_result *res)
{
	struct dns_answer *a = xcalloc(1, sizeof(*a));

	a->res = res;
	a->refs = 1;
	return a;
}

void dns_answer_unref(struct dns_answer **ap)
{
	struct dns_answer *a = *ap;

	if (a == NULL)
		return;
	*ap = NULL;
	if (--a->refs > 0)
		return;
	ub_resolve_free(a->res);
	free(a);
}

struct dns_cache *dns_cache_new(unsigned max_entries)
{
	struct dns_cache *c = xcalloc(1, sizeof(*c));
	size_t n = 16;

	while (n < max_entries)
		n <<= 1;
	c->buckets = xcalloc(n, sizeof(*c->buckets));
	c->mask = n - 1;
	c->max = max_entries;
	return c;
}

/* Length of name without one trailing dot */
static size_t name_len(const char *name)
{
	size_t len = strlen(name);

	return len > 1 && name[len - 1] == '.' ? len - 1 : len;
}

/* FNV-1a over the lower-cased name and the type */
static size_t bucket_of(const struct dns_cache *c, const char *name, size_t len, int rrtype)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		h = (h ^ (ch >= 'A' && ch <= 'Z' ? ch + 32 : ch)) * 16777619u;
	}
	h = (h ^ (uint32_t)rrtype) * 16777619u;
	return h & c->mask;
}

static void unlink_recency(struct dns_cache *c, struct entry *e)
{
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void push_newest(struct dns_cache *c, struct entry *e)
{
	e->older = c->newest;
	e->newer = NULL;
	if (c->newest != NULL)
		c->newest->newer = e;
	c->newest = e;
	if (c->oldest == NULL)
		c->oldest = e;
}

/* The link pointing at the entry for (name, rrtype), or at the bucket's end */
static struct entry **find(struct dns_cache *c, const char *name, size_t len, int rrtype)
{
	struct entry **pp = &c->buckets[bucket_of(c, name, len, rrtype)];

	for (; *pp != NULL; pp = &(*pp)->chain) {
		struct entry *e = *pp;
		if (e->rrtype == rrtype && strlen(e->name) == len &&
		    strncasecmp(e->name, name, len) == 0)
			break;
	}
	return pp;
}

static void remove_at(struct dns_cache *c, struct entry **pp)
{
	struct entry *e = *pp;

	*pp = e->chain;
	unlink_recency(c, e);
	dns_answer_unref(&e->answer);
	free(e->name);
	free(e);
	c->count--;
}

void dns_cache_free(struct dns_cache **cp)
{
	struct dns_cache *c = *cp;

	if (c == NULL)
		return;
	for (size_t i = 0; i <= c->mask; i++) {
		while (c->buckets[i] != NULL)
			remove_at(c, &c->buckets[i]);
	}
	free(c->buckets);
	free(c);
	*cp = NULL;
}

struct dns_answer *dns_cache_get(struct dns_cache *c, const char *name, int rrtype,
				 uint64_t now_ms)
{
	size_t len = name_len(name);
	struct entry **pp;

	if (c == NULL || c->max == 0)
		return NULL;
	pp = find(c, name, len, rrtype);
	if (*pp == NULL)
		return NULL;
	if ((*pp)->expires_ms <= now_ms) {
		remove_at(c, pp);
		return NULL;
	}
	unlink_recency(c, *pp);
	push_newest(c, *pp);
	(*pp)->answer->refs++;
	return (*pp)->answer;
}

static bool cacheable(const struct ub_result *res)
{
	if (res == NULL || res->bogus || res->was_ratelimited || res->ttl <= 0)
		return false;
	return res->rcode == 0 || res->rcode == RCODE_NXDOMAIN || res->nxdomain;
}

void dns_cache_put(struct dns_cache *c, const char *name, int rrtype, struct dns_answer *a,
		   uint64_t now_ms)
{
	size_t len = name_len(name);
	unsigned ttl;
	struct entry **pp, *e;

	if (c == NULL || c->max == 0 || !cacheable(a->res))
		return;
	ttl = (unsigned)a->res->ttl < MAX_TTL_S ? (unsigned)a->res->ttl : MAX_TTL_S;
	pp = find(c, name, len, rrtype);
	if (*pp != NULL)
		remove_at(c, pp);
	else if (c->count >= c->max)
		remove_at(c, find(c, c->oldest->name, strlen(c->oldest->name), c->oldest->rrtype));
	e = xcalloc(1, sizeof(*e));
	e->name = xstrndup(name, len);
	e->rrtype = rrtype;
	e->expires_ms = now_ms + (uint64_t)ttl * 1000;
	e->answer = a;
	a->refs++;
	pp = &c->buckets[bucket_of(c, name, len, rrtype)];
	e->chain = *pp;
	*pp = e;
	push_newest(c, e);
	c->count++;
}
