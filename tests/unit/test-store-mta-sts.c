/* Unit tests of the MTA-STS policy cache in the store (store/mta-sts.c,
 * schema 6): a put then a get (any case of the domain), replacing a
 * domain's policy, an expired policy never returned and removed by the
 * next put or a prune, the listing, delete, what a put refuses (CR, NUL,
 * overlong or missing fields, expiry before the fetch), and the cache
 * surviving a reopen (a restart keeps enforcing, RFC 8461 5.1). */
#include "unit.h"
#include "store-test-util.h"
#include "store/mta-sts.h"
#include "lib/buf.h"
#include "lib/clock.h"

#include <stdlib.h>
#include <string.h>

static char dirbuf[64];

static const char POLICY[] = "version: STSv1\nmode: enforce\nmx: mx.a.test\nmax_age: 600\n";

static int put(struct store *s, const char *domain, const char *id, const char *policy,
	       time_t fetched, time_t expires, struct res *r)
{
	struct store_mta_sts p = {
		.domain = domain, .policy_id = id, .policy = policy,
		.fetched = fetched, .expires = expires,
	};
	return RUNW(*r, store_mta_sts_put(s, NULL, &p, res_cb, r));
}

struct listed {
	int n;
	char domains[8][64];
};

static int list_cb(void *ctx, const struct store_mta_sts *p)
{
	struct listed *l = ctx;

	if (l->n < 8)
		snprintf(l->domains[l->n], sizeof(l->domains[0]), "%s", p->domain);
	l->n++;
	return 0;
}

static void test_put_get_replace_expire(void)
{
	struct store *s = store_test_open(store_test_mkdtemp(dirbuf, "/tmp/tern-sts-XXXXXX"), NULL);
	struct store_mta_sts p;
	struct listed l = { 0 };
	const char *err = NULL;
	time_t now = clock_now();
	struct res r;

	CHECK(store_mta_sts_get(s, "a.test", now, &p, &err) == 0);
	CHECK(p.domain == NULL);
	CHECK(put(s, "A.Test", "20261128T1", POLICY, now, now + 600, &r) == 0);
	CHECK(store_mta_sts_get(s, "a.TEST", now, &p, &err) == 1);
	CHECK_STR(p.domain, "a.test");
	CHECK_STR(p.policy_id, "20261128T1");
	CHECK_STR(p.policy, POLICY);
	CHECK(p.fetched == now && p.expires == now + 600);
	store_mta_sts_clear(&p);
	CHECK(p.domain == NULL && p.policy == NULL);

	/* a new id replaces the row */
	CHECK(put(s, "a.test", "id2", "version: STSv1\nmode: testing\nmx: *.a.test\nmax_age: 60\n",
		  now + 10, now + 70, &r) == 0);
	CHECK(store_mta_sts_get(s, "a.test", now + 10, &p, &err) == 1);
	CHECK_STR(p.policy_id, "id2");
	CHECK(p.expires == now + 70);
	store_mta_sts_clear(&p);
	/* expired: never returned, though still listed until removed */
	CHECK(store_mta_sts_get(s, "a.test", now + 70, &p, &err) == 0);
	CHECK(put(s, "b.test", "b1", POLICY, now, now + 1000, &r) == 0);
	CHECK(r.count == 0);
	CHECK(store_mta_sts_list(s, list_cb, &l, &err) == 0);
	CHECK(l.n == 2);
	CHECK_STR(l.domains[0], "a.test");
	CHECK_STR(l.domains[1], "b.test");
	/* a put at a later time removes what expired by then */
	CHECK(put(s, "c.test", "c1", POLICY, now + 80, now + 680, &r) == 0);
	CHECK(r.count == 1);
	memset(&l, 0, sizeof(l));
	CHECK(store_mta_sts_list(s, list_cb, &l, &err) == 0);
	CHECK(l.n == 2);
	CHECK_STR(l.domains[0], "b.test");
	CHECK_STR(l.domains[1], "c.test");
	/* prune */
	CHECK(RUNW(r, store_mta_sts_prune(s, NULL, now + 700, res_cb, &r)) == 0);
	CHECK(r.count == 1);
	CHECK(store_mta_sts_get(s, "c.test", now + 100, &p, &err) == 0);
	CHECK(store_mta_sts_get(s, "b.test", now + 100, &p, &err) == 1);
	store_mta_sts_clear(&p);
	/* delete */
	CHECK(store_mta_sts_delete(s, "B.test", &err) == 1);
	CHECK(store_mta_sts_delete(s, "b.test", &err) == 0);
	CHECK(store_mta_sts_delete(s, "bad domain", &err) < 0);
	CHECK(store_mta_sts_get(s, "b.test", now, &p, &err) == 0);
	store_close(&s);
	store_test_rm_rf(dirbuf);
}

static void test_refused(void)
{
	struct store *s = store_test_open(store_test_mkdtemp(dirbuf, "/tmp/tern-sts-XXXXXX"), NULL);
	time_t now = clock_now();
	struct store_mta_sts p = {
		.domain = "a.test", .policy_id = "1", .policy = POLICY,
		.fetched = now, .expires = now + 1,
	};
	struct store_mta_sts q;
	struct res r;
	char *big;

	q = p; q.policy = "version: STSv1\r\nmode: none\r\n";
	CHECK(store_mta_sts_put(s, NULL, &q, res_cb, &r) < 0);
	q = p; q.policy_id = "a\nb";
	CHECK(store_mta_sts_put(s, NULL, &q, res_cb, &r) < 0);
	q = p; q.policy_id = "id with space";
	CHECK(store_mta_sts_put(s, NULL, &q, res_cb, &r) < 0);
	q = p; q.policy_id = "123456789012345678901234567890123";   /* 33 */
	CHECK(store_mta_sts_put(s, NULL, &q, res_cb, &r) < 0);
	q = p; q.domain = "a.test\r";
	CHECK(store_mta_sts_put(s, NULL, &q, res_cb, &r) < 0);
	q = p; q.domain = "";
	CHECK(store_mta_sts_put(s, NULL, &q, res_cb, &r) < 0);
	q = p; q.domain = NULL;
	CHECK(store_mta_sts_put(s, NULL, &q, res_cb, &r) < 0);
	q = p; q.policy = NULL;
	CHECK(store_mta_sts_put(s, NULL, &q, res_cb, &r) < 0);
	q = p; q.expires = now;
	CHECK(store_mta_sts_put(s, NULL, &q, res_cb, &r) < 0);
	CHECK(store_mta_sts_put(s, NULL, &p, NULL, NULL) < 0);
	big = xmalloc(STORE_MTA_STS_POLICY_MAX + 2);
	memset(big, 'x', STORE_MTA_STS_POLICY_MAX + 1);
	big[STORE_MTA_STS_POLICY_MAX + 1] = '\0';
	q = p; q.policy = big;
	CHECK(store_mta_sts_put(s, NULL, &q, res_cb, &r) < 0);
	big[STORE_MTA_STS_POLICY_MAX] = '\0';
	CHECK(put(s, "a.test", "1", big, now, now + 5, &r) == 0);
	free(big);
	store_close(&s);
	store_test_rm_rf(dirbuf);
}

/* A restart (close and reopen) keeps the policy until it expires. */
static void test_survives_reopen(void)
{
	struct store *s = store_test_open(store_test_mkdtemp(dirbuf, "/tmp/tern-sts-XXXXXX"), NULL);
	struct store_mta_sts p;
	const char *err = NULL;
	time_t now = clock_now();
	struct res r;

	CHECK(put(s, "kept.test", "k1", POLICY, now, now + 3600, &r) == 0);
	store_close(&s);
	s = store_test_open(dirbuf, NULL);
	CHECK(store_mta_sts_get(s, "kept.test", now + 3599, &p, &err) == 1);
	CHECK_STR(p.policy, POLICY);
	store_mta_sts_clear(&p);
	CHECK(store_mta_sts_get(s, "kept.test", now + 3600, &p, &err) == 0);
	store_close(&s);
	store_test_rm_rf(dirbuf);
}

int main(void)
{
	RUN(test_put_get_replace_expire);
	RUN(test_refused);
	RUN(test_survives_reopen);
	return unit_summary("store-mta-sts");
}
