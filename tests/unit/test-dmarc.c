/* Unit tests of the DMARC library (src/mailauth/dmarc*.c): the record
 * parser (every prefix of a record parsed from an exact-size copy, so a
 * read past the length shows under ASan), URI lists and their caps,
 * organisational domains over the system PSL, alignment, pct sampling with
 * an injected random source, and policy discovery with DNS answers given
 * at once, given later, failing, and cancelled.
 *
 * With arguments it is the driver of tests/integration/test_dmarc_cases.py:
 *   test-dmarc [--psl FILE] --record TXT
 *       parse TXT; prints "valid=1 p= sp= adkim= aspf= pct=" or
 *       "valid=0 action=not-a-dmarc-record|no-dmarc-processing"
 *   test-dmarc [--psl FILE] --from DOMAIN [--mail-from D] [--helo H]
 *       [--spf RESULT] [--dkim pass:D|fail:D]... [--random N]
 *       (--record TXT | --dns FILE [--defer])
 *       evaluate against TXT (found at the From domain) or discover the
 *       policy from FILE's lines "NAME<TAB>TXT<TAB>value", "NAME<TAB>NXDOMAIN"
 *       or "NAME<TAB>SERVFAIL" (unlisted names: NXDOMAIN); prints
 *       "result= policy= disposition= local_policy= spf_aligned=
 *       dkim_aligned= report= queries=a,b". */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "mailauth/dmarc.h"
#include "unit.h"

static struct dmarc_psl *psl;

/* Parse s from an exact-size heap copy. */
static int parse(const char *s, struct dmarc_record *rec)
{
	size_t len = strlen(s);
	char *copy = xmalloc(len > 0 ? len : 1);
	const char *error = NULL;

	memcpy(copy, s, len);
	int r = dmarc_record_parse(copy, len, rec, &error);
	CHECK(r == DMARC_PARSE_OK || error != NULL);
	free(copy);
	return r;
}

static void test_record_basic(void)
{
	struct dmarc_record r;

	CHECK(parse("v=DMARC1; p=none", &r) == DMARC_PARSE_OK);
	CHECK(r.p == DMARC_POLICY_NONE && r.sp == DMARC_POLICY_NONE);
	CHECK(r.adkim == DMARC_ALIGN_RELAXED && r.aspf == DMARC_ALIGN_RELAXED);
	CHECK(r.pct == 100 && r.ri == 86400 && r.fo == DMARC_FO_0 && r.rf_afrf);
	CHECK(!r.sp_explicit && r.p_valid && !r.p_fallback && r.rua.count == 0);
	dmarc_record_clear(&r);

	CHECK(parse("v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=s; pct=50; "
		    "fo=1:d:s; rf=afrf; ri=3600", &r) == DMARC_PARSE_OK);
	CHECK(r.p == DMARC_POLICY_REJECT && r.sp == DMARC_POLICY_QUARANTINE && r.sp_explicit);
	CHECK(r.adkim == DMARC_ALIGN_STRICT && r.aspf == DMARC_ALIGN_STRICT);
	CHECK(r.pct == 50 && r.ri == 3600);
	CHECK(r.fo == (DMARC_FO_1 | DMARC_FO_D | DMARC_FO_S));
	CHECK(r.discarded == 0);
	dmarc_record_clear(&r);

	/* whitespace everywhere, upper-case tag names and values */
	CHECK(parse("  v = DMARC1 ;\tP = Reject ; ADKIM=S ;;", &r) == DMARC_PARSE_OK);
	CHECK(r.p == DMARC_POLICY_REJECT && r.sp == DMARC_POLICY_REJECT);
	CHECK(r.adkim == DMARC_ALIGN_STRICT);
	dmarc_record_clear(&r);

	/* the first of a repeated tag wins */
	CHECK(parse("v=DMARC1; p=reject; p=none", &r) == DMARC_PARSE_OK);
	CHECK(r.p == DMARC_POLICY_REJECT);
	dmarc_record_clear(&r);
}

static void test_record_not_dmarc(void)
{
	static const char *const bad[] = {
		"", " ", "v=spf1 -all", "v=dmarc1; p=reject", "p=reject; v=DMARC1",
		"v=DMARC1x; p=reject", "v=DMARC", "=DMARC1", "v DMARC1", "xv=DMARC1",
	};
	struct dmarc_record r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(parse(bad[i], &r) == DMARC_PARSE_NOT_DMARC);
		dmarc_record_clear(&r);
	}
	/* a NUL inside the value */
	const char *error = NULL;
	CHECK(dmarc_record_parse("v=DMARC1; p=no\0ne", 17, &r, &error) == DMARC_PARSE_NOT_DMARC);
	dmarc_record_clear(&r);
	/* "v=DMARC1" alone is a DMARC record, but an unusable one */
	CHECK(parse("v=DMARC1", &r) == DMARC_PARSE_UNUSABLE);
	dmarc_record_clear(&r);
	CHECK(parse("v=DMARC1;", &r) == DMARC_PARSE_UNUSABLE);
	dmarc_record_clear(&r);
}

static void test_record_fallbacks(void)
{
	struct dmarc_record r;

	/* 6.6.3 step 6 */
	CHECK(parse("v=DMARC1; rua=mailto:d@example.com", &r) == DMARC_PARSE_OK);
	CHECK(r.p == DMARC_POLICY_NONE && r.p_fallback && !r.p_valid);
	dmarc_record_clear(&r);
	CHECK(parse("v=DMARC1; p=bogus; rua=mailto:d@example.com", &r) == DMARC_PARSE_OK);
	CHECK(r.p == DMARC_POLICY_NONE && r.p_fallback);
	dmarc_record_clear(&r);
	CHECK(parse("v=DMARC1; p=bogus", &r) == DMARC_PARSE_UNUSABLE);
	dmarc_record_clear(&r);
	CHECK(parse("v=DMARC1; p=reject; sp=bogus", &r) == DMARC_PARSE_UNUSABLE);
	dmarc_record_clear(&r);
	CHECK(parse("v=DMARC1; p=reject; sp=bogus; rua=mailto:a@b.example", &r) == DMARC_PARSE_OK);
	CHECK(r.p == DMARC_POLICY_NONE && r.sp == DMARC_POLICY_NONE && r.p_fallback);
	dmarc_record_clear(&r);
	/* an rua without one valid URI does not rescue a bad p */
	CHECK(parse("v=DMARC1; p=bogus; rua=nonsense", &r) == DMARC_PARSE_UNUSABLE);
	dmarc_record_clear(&r);

	/* 6.3: bad values of other tags fall back to the defaults */
	CHECK(parse("v=DMARC1; p=reject; pct=500; adkim=x; aspf=; fo=2; rf=a b; ri=99999999999; "
		    "tag-without-value", &r) == DMARC_PARSE_OK);
	CHECK(r.pct == 100 && r.adkim == DMARC_ALIGN_RELAXED && r.aspf == DMARC_ALIGN_RELAXED);
	CHECK(r.fo == DMARC_FO_0 && r.rf_afrf && r.ri == 86400);
	CHECK(r.discarded == 7);
	dmarc_record_clear(&r);
	CHECK(parse("v=DMARC1; p=reject; pct=0", &r) == DMARC_PARSE_OK);
	CHECK(r.pct == 0);
	dmarc_record_clear(&r);
	CHECK(parse("v=DMARC1; p=reject; pct=0100", &r) == DMARC_PARSE_OK);
	CHECK(r.pct == 100 && r.discarded == 1);  /* 1*3DIGIT */
	dmarc_record_clear(&r);
	CHECK(parse("v=DMARC1; p=reject; pct=-1", &r) == DMARC_PARSE_OK);
	CHECK(r.pct == 100 && r.discarded == 1);
	dmarc_record_clear(&r);
	CHECK(parse("v=DMARC1; p=reject; rf=iodef", &r) == DMARC_PARSE_OK);
	CHECK(!r.rf_afrf);
	dmarc_record_clear(&r);
	CHECK(parse("v=DMARC1; p=reject; ri=4294967295", &r) == DMARC_PARSE_OK);
	CHECK(r.ri == 4294967295u);
	dmarc_record_clear(&r);
}

static void test_record_uris(void)
{
	struct dmarc_record r;

	CHECK(parse("v=DMARC1; p=none; rua=mailto:a@example.com!10m , mailto:b@example.net!5, "
		    "https://r.example/x%2Cy; ruf=mailto:f@example.com!1k", &r) == DMARC_PARSE_OK);
	CHECK(r.rua.count == 3 && r.rua.dropped == 0 && r.rua.present);
	CHECK_STR(r.rua.uri[0].uri, "mailto:a@example.com");
	CHECK(r.rua.uri[0].max_size == 10ULL << 20);
	CHECK_STR(r.rua.uri[1].uri, "mailto:b@example.net");
	CHECK(r.rua.uri[1].max_size == 5);
	CHECK_STR(r.rua.uri[2].uri, "https://r.example/x%2Cy");
	CHECK(r.rua.uri[2].max_size == 0);
	CHECK(r.ruf.count == 1 && r.ruf.uri[0].max_size == 1024);
	dmarc_record_clear(&r);

	/* bad URIs are dropped one by one */
	CHECK(parse("v=DMARC1; p=none; rua=mailto:, nocolon, mailto:a@b.example!x, "
		    "mailto:a@b.example!, mail to:x, mailto:%zz, 1abc:x, mailto:ok@b.example!2G",
		    &r) == DMARC_PARSE_OK);
	CHECK(r.rua.count == 1 && r.rua.dropped == 7);
	CHECK_STR(r.rua.uri[0].uri, "mailto:ok@b.example");
	CHECK(r.rua.uri[0].max_size == 2ULL << 30);
	dmarc_record_clear(&r);

	/* a size too large to count is dropped, not wrapped */
	CHECK(parse("v=DMARC1; p=none; rua=mailto:a@b.example!99999999999999999999t", &r)
	      == DMARC_PARSE_OK);
	CHECK(r.rua.count == 0 && r.rua.dropped == 1 && r.discarded == 1);
	dmarc_record_clear(&r);

	/* at most DMARC_MAX_URIS kept; a long URI is refused */
	struct buf b;
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "v=DMARC1; p=none; rua=");
	for (int i = 0; i < DMARC_MAX_URIS + 3; i++)
		buf_printf(&b, "%smailto:r%d@example.com", i ? "," : "", i);
	buf_append_str(&b, "; ruf=mailto:");
	for (int i = 0; i < DMARC_MAX_URI; i++)
		buf_append_str(&b, "a");
	CHECK(parse(buf_cstr(&b), &r) == DMARC_PARSE_OK);
	CHECK(r.rua.count == DMARC_MAX_URIS && r.rua.dropped == 3);
	CHECK(r.ruf.count == 0 && r.ruf.dropped == 1);
	dmarc_record_clear(&r);

	/* a record over DMARC_MAX_RECORD is not parsed */
	buf_reset(&b);
	buf_append_str(&b, "v=DMARC1; p=reject; x=");
	while (b.len <= DMARC_MAX_RECORD)
		buf_append_str(&b, "xxxxxxxx");
	CHECK(parse(buf_cstr(&b), &r) == DMARC_PARSE_UNUSABLE);
	dmarc_record_clear(&r);
	buf_free(&b);
}

/* Every prefix of a record parses without reading past its length, and
 * the full record parses as expected. */
static void test_record_prefixes(void)
{
	const char *full = "v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=r; pct=25; "
			   "rua=mailto:a@example.com!10m,mailto:b@example.com; "
			   "ruf=mailto:f@example.com; fo=0:1:d:s; rf=afrf; ri=3600";
	size_t len = strlen(full);
	struct dmarc_record r;
	const char *error;

	for (size_t n = 0; n <= len; n++) {
		char *copy = xmalloc(n > 0 ? n : 1);
		memcpy(copy, full, n);
		error = NULL;
		int st = dmarc_record_parse(copy, n, &r, &error);
		CHECK(st == DMARC_PARSE_OK || st == DMARC_PARSE_NOT_DMARC ||
		      st == DMARC_PARSE_UNUSABLE);
		CHECK(n >= 8 || st == DMARC_PARSE_NOT_DMARC);
		if (n == len) {
			CHECK(st == DMARC_PARSE_OK);
			CHECK(r.p == DMARC_POLICY_QUARANTINE && r.sp == DMARC_POLICY_REJECT);
			CHECK(r.pct == 25 && r.rua.count == 2 && r.ruf.count == 1 && r.ri == 3600);
		}
		dmarc_record_clear(&r);
		free(copy);
	}
}

static void test_org_domain(void)
{
	static const struct { const char *in, *org; } cases[] = {
		{ "example.com", "example.com" },
		{ "Mail.Example.COM", "example.com" },
		{ "a.b.example.co.uk", "example.co.uk" },
		{ "example.com.", "example.com" },
		{ "com", "com" },
		{ "user.github.io", "user.github.io" },  /* private section */
		{ "x.user.github.io", "user.github.io" },
		{ "host.example.invalid", "example.invalid" },  /* implicit "*" rule */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *org = dmarc_org_domain(psl, cases[i].in);
		CHECK_STR(org, cases[i].org);
		free(org);
	}
	CHECK(dmarc_psl_registrable(psl, "co.uk") == NULL);
	CHECK(dmarc_psl_registrable(psl, "a..example.com") == NULL);
	CHECK(dmarc_psl_registrable(psl, "") == NULL);
	CHECK(dmarc_psl_registrable(psl, "bad name.com") == NULL);

	CHECK(dmarc_aligned(psl, "mail.example.com", "example.com", DMARC_ALIGN_RELAXED));
	CHECK(!dmarc_aligned(psl, "mail.example.com", "example.com", DMARC_ALIGN_STRICT));
	CHECK(dmarc_aligned(psl, "EXAMPLE.com.", "example.COM", DMARC_ALIGN_STRICT));
	CHECK(!dmarc_aligned(psl, "example.co.uk", "other.co.uk", DMARC_ALIGN_RELAXED));
	CHECK(!dmarc_aligned(psl, "a.github.io", "b.github.io", DMARC_ALIGN_RELAXED));
	CHECK(!dmarc_aligned(psl, NULL, "example.com", DMARC_ALIGN_RELAXED));
	CHECK(!dmarc_aligned(psl, "", "", DMARC_ALIGN_STRICT));

	const char *error = NULL;
	CHECK(dmarc_psl_open("/nonexistent/psl.dat", &error) == NULL && error != NULL);
}

static unsigned fixed_random(void *ctx)
{
	return *(unsigned *)ctx;
}

static void test_evaluate(void)
{
	struct dmarc_record rec;
	struct dmarc_outcome o;
	struct dmarc_dkim sigs[2] = { { "example.net", true }, { "mail.example.com", true } };
	unsigned rnd = 0;
	struct dmarc_request req = { .from_domain = "Example.com", .spf = SPF_RESULT_PASS,
				     .mail_from = "bounce.example.com", .helo = "mx.example.org",
				     .random = fixed_random, .random_ctx = &rnd };

	CHECK(parse("v=DMARC1; p=reject; pct=50", &rec) == DMARC_PARSE_OK);
	dmarc_evaluate(psl, &req, &rec, "example.com", &o);
	CHECK(o.result == DMARC_RESULT_PASS && o.spf_aligned && !o.dkim_aligned);
	CHECK(o.disposition == DMARC_DISPOSITION_NONE);
	CHECK_STR(o.from_domain, "example.com");
	dmarc_outcome_clear(&o);

	req.spf = SPF_RESULT_SOFTFAIL;
	req.dkim = sigs;
	req.dkim_count = 2;
	dmarc_evaluate(psl, &req, &rec, "example.com", &o);
	CHECK(o.result == DMARC_RESULT_PASS && !o.spf_aligned && o.dkim_aligned);
	CHECK_STR(o.aligned_dkim_domain, "mail.example.com");
	dmarc_outcome_clear(&o);

	/* fail: pct 50 selects random values 0..49 */
	req.dkim_count = 1;
	rnd = 49;
	dmarc_evaluate(psl, &req, &rec, "example.com", &o);
	CHECK(o.result == DMARC_RESULT_FAIL && o.sampled && o.policy == DMARC_POLICY_REJECT);
	CHECK(o.disposition == DMARC_DISPOSITION_REJECT);
	dmarc_outcome_clear(&o);
	rnd = 50;
	dmarc_evaluate(psl, &req, &rec, "example.com", &o);
	CHECK(o.result == DMARC_RESULT_FAIL && !o.sampled);
	CHECK(o.disposition == DMARC_DISPOSITION_QUARANTINE && !o.local_policy);
	dmarc_outcome_clear(&o);
	dmarc_record_clear(&rec);

	/* sp applies to a subdomain's mail under the organisational record */
	CHECK(parse("v=DMARC1; p=reject; sp=quarantine", &rec) == DMARC_PARSE_OK);
	req.from_domain = "news.example.com";
	dmarc_evaluate(psl, &req, &rec, "example.com", &o);
	CHECK(o.result == DMARC_RESULT_FAIL && o.policy == DMARC_POLICY_QUARANTINE);
	CHECK(o.disposition == DMARC_DISPOSITION_QUARANTINE);
	dmarc_outcome_clear(&o);
	/* the null reverse-path: the HELO name is the SPF identity */
	req.spf = SPF_RESULT_PASS;
	req.mail_from = "";
	req.helo = "mx.example.com";
	dmarc_evaluate(psl, &req, &rec, "example.com", &o);
	CHECK(o.result == DMARC_RESULT_PASS && o.spf_aligned);
	dmarc_outcome_clear(&o);
	/* a whole MAIL FROM address */
	req.mail_from = "bounce+x=y@Bounces.Example.com";
	req.helo = "mx.example.org";
	dmarc_evaluate(psl, &req, &rec, "example.com", &o);
	CHECK(o.result == DMARC_RESULT_PASS && o.spf_aligned);
	dmarc_outcome_clear(&o);
	req.mail_from = "bounce@example.org";
	dmarc_evaluate(psl, &req, &rec, "example.com", &o);
	CHECK(o.result == DMARC_RESULT_FAIL && !o.spf_aligned);
	dmarc_outcome_clear(&o);
	/* no From domain */
	req.from_domain = "";
	dmarc_evaluate(psl, &req, &rec, "example.com", &o);
	CHECK(o.result == DMARC_RESULT_PERMERROR);
	dmarc_outcome_clear(&o);
	dmarc_record_clear(&rec);

	/* the default random source stays in range */
	CHECK(parse("v=DMARC1; p=quarantine; pct=1", &rec) == DMARC_PARSE_OK);
	req.from_domain = "example.com";
	req.spf = SPF_RESULT_FAIL;
	req.dkim_count = 0;
	req.random = NULL;
	int quarantined = 0;
	for (int i = 0; i < 1000; i++) {
		dmarc_evaluate(psl, &req, &rec, "example.com", &o);
		CHECK(o.result == DMARC_RESULT_FAIL);
		quarantined += o.disposition == DMARC_DISPOSITION_QUARANTINE;
		CHECK(o.disposition == DMARC_DISPOSITION_QUARANTINE || o.local_policy);
		dmarc_outcome_clear(&o);
	}
	CHECK(quarantined < 100);  /* about 10 expected */
	dmarc_record_clear(&rec);
}

/* --- a fake DNS: zone lines, answered at once or on demand --- */

struct zone_entry {
	char *name;
	int kind;  /* 0 TXT, 1 NXDOMAIN, 2 SERVFAIL */
	char *txt;
};

struct fake_dns {
	struct zone_entry entries[64];
	size_t count;
	bool defer;
	struct buf queries;     /* names asked, comma separated */
	/* one deferred question */
	char *pending_name;
	dmarc_dns_cb *pending_cb;
	void *pending_q;
	int cancelled;
};

static void zone_add(struct fake_dns *z, const char *name, int kind, const char *txt)
{
	if (z->count == sizeof(z->entries) / sizeof(z->entries[0]))
		return;
	z->entries[z->count].name = xstrdup(name);
	z->entries[z->count].kind = kind;
	z->entries[z->count].txt = txt != NULL ? xstrdup(txt) : NULL;
	z->count++;
}

static void zone_free(struct fake_dns *z)
{
	for (size_t i = 0; i < z->count; i++) {
		free(z->entries[i].name);
		free(z->entries[i].txt);
	}
	free(z->pending_name);
	buf_free(&z->queries);
}

static void zone_answer(struct fake_dns *z, const char *name, dmarc_dns_cb *cb, void *q)
{
	const char *strs[64];
	struct dmarc_dns_answer a = { .status = DMARC_DNS_NXDOMAIN, .strings = strs };

	for (size_t i = 0; i < z->count; i++) {
		if (strcasecmp(z->entries[i].name, name) != 0)
			continue;
		if (z->entries[i].kind == 2) {
			a.status = DMARC_DNS_TEMPFAIL;
			break;
		}
		if (z->entries[i].kind == 0) {
			a.status = DMARC_DNS_OK;
			strs[a.count++] = z->entries[i].txt;
		}
	}
	cb(q, &a);
}

static void fake_txt(void *ctx, const char *name, dmarc_dns_cb *cb, void *q)
{
	struct fake_dns *z = ctx;

	buf_printf(&z->queries, "%s%s", z->queries.len ? "," : "", name);
	if (!z->defer) {
		zone_answer(z, name, cb, q);
		return;
	}
	z->pending_name = xstrdup(name);
	z->pending_cb = cb;
	z->pending_q = q;
}

static void fake_cancel(void *ctx, void *q)
{
	struct fake_dns *z = ctx;

	if (z->pending_q == q) {
		free(z->pending_name);
		z->pending_name = NULL;
		z->pending_q = NULL;
		z->cancelled++;
	}
}

/* Answer deferred questions until none is left; bounded. */
static void fake_run(struct fake_dns *z)
{
	for (int i = 0; i < 10 && z->pending_name != NULL; i++) {
		char *name = z->pending_name;
		z->pending_name = NULL;
		zone_answer(z, name, z->pending_cb, z->pending_q);
		free(name);
	}
}

struct result {
	int calls;
	enum dmarc_result result;
	enum dmarc_disposition disposition;
	enum dmarc_policy policy;
	bool local_policy, spf_aligned, dkim_aligned, report;
	char policy_domain[300];
};

static void on_done(void *ctx, const struct dmarc_outcome *o)
{
	struct result *r = ctx;

	r->calls++;
	r->result = o->result;
	r->disposition = o->disposition;
	r->policy = o->policy;
	r->local_policy = o->local_policy;
	r->spf_aligned = o->spf_aligned;
	r->dkim_aligned = o->dkim_aligned;
	r->report = o->record != NULL;
	snprintf(r->policy_domain, sizeof(r->policy_domain), "%s",
		 o->policy_domain != NULL ? o->policy_domain : "-");
}

/* Run one discovery for from over z, both ways; returns the result of the
 * deferred run after checking that both agree. */
static struct result discover(struct fake_dns *z, const char *from, const char *expect_queries)
{
	struct dmarc_dns dns = { z, fake_txt, fake_cancel };
	struct dmarc_dkim sig = { "example.com", true };
	struct dmarc_request req = { .from_domain = from, .spf = SPF_RESULT_NONE,
				     .dkim = &sig, .dkim_count = 1 };
	struct result now = { 0 }, later = { 0 };

	buf_init(&z->queries, BUF_UNLIMITED);
	z->defer = false;
	CHECK(dmarc_check(psl, &req, &dns, on_done, &now) == NULL);
	CHECK(now.calls == 1);
	if (expect_queries != NULL)
		CHECK_STR(buf_cstr(&z->queries), expect_queries);

	buf_reset(&z->queries);
	z->defer = true;
	struct dmarc_eval *ev = dmarc_check(psl, &req, &dns, on_done, &later);
	CHECK(ev != NULL || later.calls == 1);
	fake_run(z);
	CHECK(later.calls == 1);
	CHECK(later.result == now.result && later.disposition == now.disposition);
	CHECK(strcmp(later.policy_domain, now.policy_domain) == 0);
	if (expect_queries != NULL)
		CHECK_STR(buf_cstr(&z->queries), expect_queries);
	buf_free(&z->queries);
	return later;
}

static void test_discovery(void)
{
	struct fake_dns z = { 0 };
	struct result r;

	zone_add(&z, "_dmarc.example.com", 0, "v=DMARC1; p=reject; sp=quarantine");
	zone_add(&z, "_dmarc.example.com", 0, "v=spf1 -all");
	zone_add(&z, "_dmarc.own.example.com", 0, "v=DMARC1; p=none");
	zone_add(&z, "_dmarc.multi.example", 0, "v=DMARC1; p=none");
	zone_add(&z, "_dmarc.multi.example", 0, "v=DMARC1; p=reject");
	zone_add(&z, "_dmarc.bad.example", 0, "v=DMARC1; p=bogus");
	zone_add(&z, "_dmarc.sub.tf.example", 1, NULL);
	zone_add(&z, "_dmarc.tf.example", 2, NULL);
	zone_add(&z, "_dmarc.spfonly.example", 0, "v=spf1 -all");

	r = discover(&z, "example.com", "_dmarc.example.com");
	CHECK(r.result == DMARC_RESULT_PASS && r.policy == DMARC_POLICY_REJECT);
	CHECK_STR(r.policy_domain, "example.com");

	r = discover(&z, "a.b.Example.com", "_dmarc.a.b.example.com,_dmarc.example.com");
	CHECK(r.result == DMARC_RESULT_PASS && r.policy == DMARC_POLICY_QUARANTINE);
	CHECK_STR(r.policy_domain, "example.com");

	r = discover(&z, "own.example.com", "_dmarc.own.example.com");
	CHECK(r.result == DMARC_RESULT_PASS && r.policy == DMARC_POLICY_NONE);

	r = discover(&z, "multi.example", "_dmarc.multi.example");
	CHECK(r.result == DMARC_RESULT_NONE && !r.report);

	r = discover(&z, "bad.example", "_dmarc.bad.example");
	CHECK(r.result == DMARC_RESULT_PERMERROR);

	r = discover(&z, "sub.tf.example", "_dmarc.sub.tf.example,_dmarc.tf.example");
	CHECK(r.result == DMARC_RESULT_TEMPERROR);

	r = discover(&z, "spfonly.example", "_dmarc.spfonly.example");
	CHECK(r.result == DMARC_RESULT_NONE);

	r = discover(&z, "nowhere.example", "_dmarc.nowhere.example");
	CHECK(r.result == DMARC_RESULT_NONE);

	r = discover(&z, "bad..example", "");
	CHECK(r.result == DMARC_RESULT_PERMERROR);
	zone_free(&z);
}

static void test_cancel(void)
{
	struct fake_dns z = { 0 };
	struct dmarc_dns with = { &z, fake_txt, fake_cancel };
	struct dmarc_dns without = { &z, fake_txt, NULL };
	struct dmarc_request req = { .from_domain = "example.com" };
	struct result r = { 0 };

	buf_init(&z.queries, BUF_UNLIMITED);
	z.defer = true;
	struct dmarc_eval *ev = dmarc_check(psl, &req, &with, on_done, &r);
	CHECK(ev != NULL);
	dmarc_cancel(&ev);
	CHECK(ev == NULL && z.cancelled == 1 && z.pending_name == NULL);
	CHECK(r.calls == 0);

	/* without dns->cancel the state waits for the answer, then goes */
	ev = dmarc_check(psl, &req, &without, on_done, &r);
	CHECK(ev != NULL);
	dmarc_cancel(&ev);
	CHECK(ev == NULL);
	fake_run(&z);
	CHECK(r.calls == 0);
	dmarc_cancel(&ev);  /* NULL is ignored */
	zone_free(&z);
}

/* --- DMARC's DNS over an SPF DNS interface --- */

struct fake_spf {
	bool defer;
	int asked, cancelled;
	spf_dns_cb *cb;
	void *q;
};

static void spf_answer(spf_dns_cb *cb, void *q)
{
	const char *strs[2] = { "v=spf1 -all", "v=DMARC1; p=quarantine" };
	struct spf_dns_answer a = { .status = SPF_DNS_OK, .count = 2, .strings = strs };
	cb(q, &a);
}

static void fake_spf_txt(void *ctx, const char *name, spf_dns_cb *cb, void *q)
{
	struct fake_spf *f = ctx;

	f->asked++;
	if (strcmp(name, "_dmarc.example.com") != 0) {
		struct spf_dns_answer a = { .status = SPF_DNS_TEMPFAIL };
		cb(q, &a);
		return;
	}
	if (!f->defer) {
		spf_answer(cb, q);
		return;
	}
	f->cb = cb;
	f->q = q;
}

static void fake_spf_cancel(void *ctx, void *q)
{
	struct fake_spf *f = ctx;

	if (f->q == q) {
		f->q = NULL;
		f->cancelled++;
	}
}

static void direct_cb(void *q, const struct dmarc_dns_answer *a)
{
	(void)a;
	(*(int *)q)++;
}

static void test_spf_dns_shim(void)
{
	struct fake_spf f = { 0 };
	struct spf_dns spf = { .ctx = &f, .txt = fake_spf_txt, .cancel = fake_spf_cancel };
	struct dmarc_spf_dns *a = dmarc_spf_dns_new(&spf);
	struct dmarc_request req = { .from_domain = "example.com", .spf = SPF_RESULT_FAIL };
	struct result r = { 0 };

	/* at once */
	CHECK(dmarc_check(psl, &req, dmarc_spf_dns_get(a), on_done, &r) == NULL);
	CHECK(r.calls == 1 && r.result == DMARC_RESULT_FAIL && r.policy == DMARC_POLICY_QUARANTINE);
	/* a DNS failure */
	memset(&r, 0, sizeof(r));
	req.from_domain = "other.example";
	CHECK(dmarc_check(psl, &req, dmarc_spf_dns_get(a), on_done, &r) == NULL);
	CHECK(r.calls == 1 && r.result == DMARC_RESULT_TEMPERROR);
	/* later */
	memset(&r, 0, sizeof(r));
	req.from_domain = "example.com";
	f.defer = true;
	struct dmarc_eval *ev = dmarc_check(psl, &req, dmarc_spf_dns_get(a), on_done, &r);
	CHECK(ev != NULL && r.calls == 0 && f.q != NULL);
	if (f.q != NULL)
		spf_answer(f.cb, f.q);
	CHECK(r.calls == 1 && r.disposition == DMARC_DISPOSITION_QUARANTINE);
	/* cancelled through to the SPF interface */
	memset(&r, 0, sizeof(r));
	f.q = NULL;
	ev = dmarc_check(psl, &req, dmarc_spf_dns_get(a), on_done, &r);
	CHECK(ev != NULL);
	dmarc_cancel(&ev);
	CHECK(f.cancelled == 1 && f.q == NULL && r.calls == 0);
	/* freeing the adapter cancels what is in flight; the callback of a
	 * question asked directly never runs */
	int direct = 0;
	const struct dmarc_dns *d = dmarc_spf_dns_get(a);
	d->txt(d->ctx, "_dmarc.example.com", direct_cb, &direct);
	CHECK(f.q != NULL);
	dmarc_spf_dns_free(&a);
	CHECK(a == NULL && f.cancelled == 2 && direct == 0);

	/* without spf->cancel the adapter lingers until the answer, which
	 * is dropped */
	spf.cancel = NULL;
	a = dmarc_spf_dns_new(&spf);
	d = dmarc_spf_dns_get(a);
	CHECK(d->cancel == NULL);
	d->txt(d->ctx, "_dmarc.example.com", direct_cb, &direct);
	dmarc_spf_dns_free(&a);
	CHECK(a == NULL && f.q != NULL);
	if (f.q != NULL)
		spf_answer(f.cb, f.q);
	CHECK(direct == 0);
}

/* --- driver --- */

static int driver(int argc, char **argv)
{
	const char *psl_path = NULL, *record = NULL, *dns_file = NULL;
	struct dmarc_request req = { .spf = SPF_RESULT_NONE };
	struct dmarc_dkim sigs[16];
	unsigned rnd = 0;
	bool defer = false;
	const char *error = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--defer") == 0) {
			defer = true;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "%s needs a value\n", a);
			return 2;
		}
		i++;
		if (strcmp(a, "--psl") == 0) {
			psl_path = v;
		} else if (strcmp(a, "--record") == 0) {
			record = v;
		} else if (strcmp(a, "--dns") == 0) {
			dns_file = v;
		} else if (strcmp(a, "--from") == 0) {
			req.from_domain = v;
		} else if (strcmp(a, "--mail-from") == 0) {
			req.mail_from = v;
		} else if (strcmp(a, "--helo") == 0) {
			req.helo = v;
		} else if (strcmp(a, "--random") == 0) {
			rnd = (unsigned)atoi(v);
			req.random = fixed_random;
			req.random_ctx = &rnd;
		} else if (strcmp(a, "--spf") == 0) {
			static const char *const names[] = { "none", "neutral", "pass", "fail",
							     "softfail", "temperror", "permerror" };
			for (size_t k = 0; k < 7; k++)
				if (strcmp(v, names[k]) == 0)
					req.spf = (enum spf_result)k;
		} else if (strcmp(a, "--dkim") == 0) {
			const char *colon = strchr(v, ':');
			if (colon == NULL || req.dkim_count == 16) {
				fprintf(stderr, "bad --dkim %s\n", v);
				return 2;
			}
			sigs[req.dkim_count].pass = strncmp(v, "pass:", 5) == 0;
			sigs[req.dkim_count].domain = colon + 1;
			req.dkim_count++;
		} else {
			fprintf(stderr, "unknown option %s\n", a);
			return 2;
		}
	}
	req.dkim = sigs;

	struct dmarc_psl *list = dmarc_psl_open(psl_path, &error);
	if (list == NULL) {
		fprintf(stderr, "%s\n", error);
		return 2;
	}
	int rc = 0;
	if (record != NULL && req.from_domain == NULL) {
		struct dmarc_record rec;
		int st = dmarc_record_parse(record, strlen(record), &rec, &error);
		if (st == DMARC_PARSE_OK)
			printf("valid=1 p=%s sp=%s adkim=%c aspf=%c pct=%u\n",
			       dmarc_policy_name(rec.p), dmarc_policy_name(rec.sp),
			       rec.adkim == DMARC_ALIGN_STRICT ? 's' : 'r',
			       rec.aspf == DMARC_ALIGN_STRICT ? 's' : 'r', rec.pct);
		else
			printf("valid=0 action=%s\n", st == DMARC_PARSE_NOT_DMARC
			       ? "not-a-dmarc-record" : "no-dmarc-processing");
		dmarc_record_clear(&rec);
	} else if (req.from_domain != NULL && (record != NULL || dns_file != NULL)) {
		struct fake_dns z = { 0 };
		struct dmarc_dns dns = { &z, fake_txt, fake_cancel };
		struct result r = { 0 };
		buf_init(&z.queries, BUF_UNLIMITED);
		if (record != NULL) {
			char *name = xasprintf("_dmarc.%s", req.from_domain);
			zone_add(&z, name, 0, record);
			free(name);
		} else {
			FILE *f = fopen(dns_file, "r");
			char line[8192];
			if (f == NULL) {
				fprintf(stderr, "cannot open %s\n", dns_file);
				return 2;
			}
			while (fgets(line, sizeof(line), f) != NULL) {
				line[strcspn(line, "\r\n")] = '\0';
				char *kind = strchr(line, '\t');
				if (kind == NULL)
					continue;
				*kind++ = '\0';
				char *val = strchr(kind, '\t');
				if (val != NULL)
					*val++ = '\0';
				zone_add(&z, line, strcmp(kind, "TXT") == 0 ? 0 :
					 strcmp(kind, "NXDOMAIN") == 0 ? 1 : 2, val);
			}
			fclose(f);
		}
		z.defer = defer;
		struct dmarc_eval *ev = dmarc_check(list, &req, &dns, on_done, &r);
		if (defer) {
			if (ev == NULL)
				rc = 1;  /* a deferred DNS cannot have answered yet */
			fake_run(&z);
		}
		if (r.calls != 1) {
			fprintf(stderr, "done callback ran %d times\n", r.calls);
			rc = 1;
		}
		printf("result=%s policy=%s disposition=%s local_policy=%d spf_aligned=%d "
		       "dkim_aligned=%d report=%d policy_domain=%s queries=%s\n",
		       dmarc_result_name(r.result), dmarc_policy_name(r.policy),
		       dmarc_disposition_name(r.disposition), r.local_policy, r.spf_aligned,
		       r.dkim_aligned, r.report, r.policy_domain, buf_cstr(&z.queries));
		zone_free(&z);
	} else {
		fprintf(stderr, "give --record, or --from with --record or --dns\n");
		rc = 2;
	}
	dmarc_psl_free(&list);
	return rc;
}

int main(int argc, char **argv)
{
	const char *error = NULL;

	log_set_level(LOG_LEVEL_ERROR);
	if (argc > 1)
		return driver(argc, argv);
	psl = dmarc_psl_open(NULL, &error);
	if (psl == NULL) {
		fprintf(stderr, "cannot load the PSL: %s\n", error);
		return 1;
	}
	RUN(test_record_basic);
	RUN(test_record_not_dmarc);
	RUN(test_record_fallbacks);
	RUN(test_record_uris);
	RUN(test_record_prefixes);
	RUN(test_org_domain);
	RUN(test_evaluate);
	RUN(test_discovery);
	RUN(test_cancel);
	RUN(test_spf_dns_shim);
	dmarc_psl_free(&psl);
	return unit_summary("dmarc");
}
