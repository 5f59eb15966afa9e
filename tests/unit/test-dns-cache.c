/* The resolver's answer cache (src/dns/cache.c): TTL expiry, what is not
 * kept, case and trailing-dot blind names, reference counts, eviction of
 * the least recently used entry.  Answers are built by hand the way
 * libunbound allocates them, so ub_resolve_free() releases them. */
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

#include "dns/cache.h"
#include "unit.h"

static struct ub_result *answer(int ttl, int rcode, int bogus)
{
	struct ub_result *r = calloc(1, sizeof(*r));

	r->qname = strdup("example.test");
	r->data = calloc(2, sizeof(char *));
	r->len = calloc(2, sizeof(int));
	r->data[0] = strdup("\x05hello");
	r->len[0] = 6;
	r->havedata = rcode == 0;
	r->rcode = rcode;
	r->nxdomain = rcode == 3;
	r->bogus = bogus;
	r->ttl = ttl;
	return r;
}

static void test_ttl(void)
{
	struct dns_cache *c = dns_cache_new(8);
	struct dns_answer *a = dns_answer_wrap(answer(60, 0, 0)), *hit;

	dns_cache_put(c, "Example.TEST.", 16, a, 1000);
	CHECK(a->refs == 2);
	hit = dns_cache_get(c, "example.test", 16, 1000 + 59999);
	CHECK(hit == a);
	CHECK(a->refs == 3);
	dns_answer_unref(&hit);
	CHECK(hit == NULL);
	CHECK(dns_cache_get(c, "example.test", 1, 2000) == NULL);       /* other type */
	CHECK(dns_cache_get(c, "example.test", 16, 1000 + 60000) == NULL); /* expired */
	CHECK(a->refs == 1);             /* the expired entry let go */
	dns_answer_unref(&a);
	dns_cache_free(&c);
	CHECK(c == NULL);
}

static void test_not_kept(void)
{
	struct dns_cache *c = dns_cache_new(8);
	struct ub_result *kinds[] = {
		answer(0, 0, 0),         /* TTL 0: this transaction only */
		answer(60, 2, 0),        /* SERVFAIL */
		answer(60, 0, 1),        /* bogus */
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct dns_answer *a = dns_answer_wrap(kinds[i]);
		dns_cache_put(c, "x.test", 16, a, 0);
		CHECK(a->refs == 1);
		CHECK(dns_cache_get(c, "x.test", 16, 1) == NULL);
		dns_answer_unref(&a);
	}
	/* NXDOMAIN with a TTL (the SOA minimum) is kept */
	struct dns_answer *nx = dns_answer_wrap(answer(30, 3, 0)), *hit;
	dns_cache_put(c, "gone.test", 16, nx, 0);
	hit = dns_cache_get(c, "GONE.test.", 16, 29999);
	CHECK(hit == nx);
	dns_answer_unref(&hit);
	dns_answer_unref(&nx);
	dns_cache_free(&c);
}

static void test_eviction(void)
{
	struct dns_cache *c = dns_cache_new(2);
	struct dns_answer *a = dns_answer_wrap(answer(60, 0, 0));
	struct dns_answer *b = dns_answer_wrap(answer(60, 0, 0));
	struct dns_answer *d = dns_answer_wrap(answer(60, 0, 0)), *hit;

	dns_cache_put(c, "a.test", 16, a, 0);
	dns_cache_put(c, "b.test", 16, b, 0);
	hit = dns_cache_get(c, "a.test", 16, 1);         /* a is now the newest */
	dns_answer_unref(&hit);
	dns_cache_put(c, "d.test", 16, d, 2);            /* full: b goes */
	CHECK(b->refs == 1);
	CHECK(dns_cache_get(c, "b.test", 16, 3) == NULL);
	hit = dns_cache_get(c, "a.test", 16, 3);
	CHECK(hit == a);
	dns_answer_unref(&hit);
	/* a new answer for a known question replaces the old one */
	struct dns_answer *a2 = dns_answer_wrap(answer(60, 0, 0));
	dns_cache_put(c, "A.test", 16, a2, 4);
	CHECK(a->refs == 1);
	hit = dns_cache_get(c, "a.test", 16, 5);
	CHECK(hit == a2);
	dns_answer_unref(&hit);
	dns_answer_unref(&a);
	dns_answer_unref(&b);
	dns_answer_unref(&a2);
	/* the cache still holds d and a2; freeing it releases them */
	CHECK(d->refs == 2);
	dns_answer_unref(&d);
	dns_cache_free(&c);
}

static void test_disabled(void)
{
	struct dns_cache *c = dns_cache_new(0);
	struct dns_answer *a = dns_answer_wrap(answer(60, 0, 0));

	dns_cache_put(c, "a.test", 16, a, 0);
	CHECK(a->refs == 1);
	CHECK(dns_cache_get(c, "a.test", 16, 0) == NULL);
	dns_answer_unref(&a);
	dns_cache_free(&c);
}

int main(void)
{
	RUN(test_ttl);
	RUN(test_not_kept);
	RUN(test_eviction);
	RUN(test_disabled);
	return unit_summary("dns-cache");
}
