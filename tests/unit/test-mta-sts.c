/* queue/mta-sts: policy file parsing (RFC 8461 3.2), the TXT record
 * (3.1) and MX pattern matching (4.1). */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "queue/mta-sts.h"
#include "unit.h"

static int parse(const char *text, struct mta_sts_policy *pol, const char **err)
{
	return mta_sts_policy_parse(text, strlen(text), pol, err);
}

static void test_rfc_example(void)
{
	/* the example policy of RFC 8461 3.2 */
	const char *text = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
			   "mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";
	struct mta_sts_policy pol;
	const char *err = NULL;

	CHECK(parse(text, &pol, &err) == 0);
	CHECK(pol.mode == MTA_STS_MODE_ENFORCE);
	CHECK(pol.max_age == 604800);
	CHECK(pol.mx_count == 3);
	if (pol.mx_count == 3) {
		CHECK_STR(pol.mx[0], "mail.example.com");
		CHECK_STR(pol.mx[1], "*.example.net");
		CHECK_STR(pol.mx[2], "backupmx.example.com");
	}
	CHECK(mta_sts_mx_matches(&pol, "mail.example.com"));
	CHECK(mta_sts_mx_matches(&pol, "MAIL.Example.COM."));
	CHECK(mta_sts_mx_matches(&pol, "mx1.example.net"));
	CHECK(!mta_sts_mx_matches(&pol, "example.net"));
	CHECK(!mta_sts_mx_matches(&pol, "a.b.example.net"));
	CHECK(!mta_sts_mx_matches(&pol, ".example.net"));
	CHECK(!mta_sts_mx_matches(&pol, "mail.example.com.evil.org"));
	CHECK(!mta_sts_mx_matches(&pol, "xmail.example.com"));
	CHECK(!mta_sts_mx_matches(&pol, ""));
	CHECK_STR(mta_sts_mode_name(pol.mode), "enforce");
	mta_sts_policy_clear(&pol);
	CHECK(pol.mx == NULL && pol.mx_count == 0);
}

static void test_variants(void)
{
	struct mta_sts_policy pol;
	const char *err = NULL;

	/* LF only, no final line end, fields in another order, tabs after colon */
	CHECK(parse("mode:\ttesting\nmx: MX.Example.ORG\nmax_age:86400\nversion: STSv1", &pol,
		    &err) == 0);
	CHECK(pol.mode == MTA_STS_MODE_TESTING && pol.max_age == 86400);
	CHECK(pol.mx_count == 1 && strcmp(pol.mx[0], "mx.example.org") == 0);
	mta_sts_policy_clear(&pol);

	/* mode none needs no mx; trailing white space and blank lines at the end */
	CHECK(parse("version: STSv1  \r\nmode: none\r\nmax_age: 0\r\n\r\n\n", &pol, &err) == 0);
	CHECK(pol.mode == MTA_STS_MODE_NONE && pol.max_age == 0 && pol.mx_count == 0);
	CHECK(!mta_sts_mx_matches(&pol, "anything.example"));
	mta_sts_policy_clear(&pol);

	/* unknown fields ignored (even UTF-8 values); first of a repeated key wins */
	CHECK(parse("version: STSv1\nmode: enforce\nmode: none\nmx: a.example\n"
		    "comment: h\xc3\xa9llo world\nx_ext.1: v\nmax_age: 100\nmax_age: 5\n",
		    &pol, &err) == 0);
	CHECK(pol.mode == MTA_STS_MODE_ENFORCE && pol.max_age == 100);
	mta_sts_policy_clear(&pol);

	/* max_age clamped to a year; ten digits still syntax */
	CHECK(parse("version: STSv1\nmode: none\nmax_age: 9999999999\n", &pol, &err) == 0);
	CHECK(pol.max_age == MTA_STS_MAX_AGE_MAX);
	mta_sts_policy_clear(&pol);
	CHECK(parse("version: STSv1\nmode: none\nmax_age: 31557600\n", &pol, &err) == 0);
	CHECK(pol.max_age == 31557600);
	mta_sts_policy_clear(&pol);
}

static void test_errors(void)
{
	static const char *const bad[] = {
		"",
		"\n",
		"mode: enforce\nmx: a.example\nmax_age: 1\n",                  /* no version */
		"version: STSv2\nmode: none\nmax_age: 1\n",
		"version: stsv1\nmode: none\nmax_age: 1\n",                    /* case-sensitive */
		"version: STSv1\nmax_age: 1\n",                                /* no mode */
		"version: STSv1\nmode: none\n",                                /* no max_age */
		"version: STSv1\nmode: enforce\nmax_age: 1\n",                 /* no mx */
		"version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
		"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901\n",
		"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1x\n",
		"version: STSv1\nmode: enforce\nmx: a.example\nmax_age:\n",
		"version : STSv1\nmode: none\nmax_age: 1\n",                   /* space before colon */
		"version: STSv1\nmode: none\nmax_age 1\n",                     /* no colon */
		"version: STSv1\n\nmode: none\nmax_age: 1\n",                  /* empty line inside */
		"version: STSv1\rmode: none\rmax_age: 1\r",                    /* bare CR */
		"version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a.example.\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: [192.0.2.1]\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a.example b.example\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n",
		"version: STSv1\nmode: none\nmax_age: 1\n_bad: x\n",            /* ext name start */
		"version: STSv1\nmode: none\nmax_age: 1\nabcdefghijabcdefghijabcdefghijabc: x\n",
		"version: STSv1\nmode: none\nmax_age: 1\next: a\001b\n",      /* control char */
		"version: STSv1\nmode: none\nmax_age: 1\next: \xc3\n",          /* bad UTF-8 */
	};
	struct mta_sts_policy pol;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = NULL;
		int r = parse(bad[i], &pol, &err);
		CHECK(r == -1);
		CHECK(err != NULL);
		CHECK(pol.mx == NULL && pol.mx_count == 0);
		if (r == 0) {
			fprintf(stderr, "  accepted bad policy %zu\n", i);
			mta_sts_policy_clear(&pol);
		}
	}

	/* NUL inside; size limit */
	const char nul[] = "version: STSv1\nmode: none\0\nmax_age: 1\n";
	const char *err = NULL;
	CHECK(mta_sts_policy_parse(nul, sizeof(nul) - 1, &pol, &err) == -1);
	size_t big = MTA_STS_POLICY_MAX + 1;
	char *text = malloc(big);
	memset(text, 'a', big);
	CHECK(mta_sts_policy_parse(text, big, &pol, &err) == -1);
	free(text);
}

static void test_too_many_mx(void)
{
	char *text = malloc(64 * 1024);
	size_t len = 0;
	struct mta_sts_policy pol;
	const char *err = NULL;

	len += (size_t)sprintf(text, "version: STSv1\nmode: enforce\nmax_age: 1\n");
	for (int i = 0; i < MTA_STS_MX_MAX; i++)
		len += (size_t)sprintf(text + len, "mx: mx%d.example\n", i);
	CHECK(mta_sts_policy_parse(text, len, &pol, &err) == 0);
	CHECK(pol.mx_count == MTA_STS_MX_MAX);
	CHECK(mta_sts_mx_matches(&pol, "mx99.example"));
	mta_sts_policy_clear(&pol);
	len += (size_t)sprintf(text + len, "mx: one-too-many.example\n");
	CHECK(mta_sts_policy_parse(text, len, &pol, &err) == -1);
	free(text);
}

/* The parser takes a whole document, but a fetch may end anywhere: every
 * prefix must give a clean answer (no crash, nothing leaked), and only the
 * complete text the right one. */
static void test_prefixes(void)
{
	const char *text = "version: STSv1\r\nmode: testing\r\nmx: *.example.org\r\nmax_age: 42\r\n";
	size_t len = strlen(text), ok = 0;

	for (size_t n = 0; n <= len; n++) {
		struct mta_sts_policy pol;
		const char *err = NULL;
		char *copy = malloc(n + 1);
		memcpy(copy, text, n);
		if (mta_sts_policy_parse(copy, n, &pol, &err) == 0) {
			ok++;
			CHECK(pol.mode == MTA_STS_MODE_TESTING && pol.mx_count == 1);
			mta_sts_policy_clear(&pol);
		} else {
			CHECK(err != NULL);
		}
		free(copy);
	}
	/* "...max_age: 4", "...max_age: 42" and the whole text; "...42\r" has a bare CR */
	CHECK(ok == 3);
}

static void test_txt(void)
{
	struct mta_sts_record rec;
	const char *err = NULL;

#define TXT(s) mta_sts_txt_parse(s, strlen(s), &rec, &err)
	CHECK(TXT("v=STSv1; id=20160831085700Z;") == 1);
	CHECK_STR(rec.id, "20160831085700Z");
	CHECK(TXT("v=STSv1;id=abc") == 1);
	CHECK_STR(rec.id, "abc");
	CHECK(TXT("v=STSv1 ;\tid=X1 ; ext_1=val.ue;  ") == 1);
	CHECK_STR(rec.id, "X1");
	CHECK(TXT("v=STSv1; foo=bar; id=first; id=second") == 1);
	CHECK_STR(rec.id, "first");
	CHECK(TXT("v=STSv1; id=12345678901234567890123456789012") == 1);

	/* not STS records: ignored */
	CHECK(TXT("v=spf1 -all") == 0);
	CHECK(TXT("") == 0);
	CHECK(TXT("v=STSv10; id=1") == 0);
	CHECK(TXT(" v=STSv1; id=1") == 0);
	CHECK(TXT("V=STSv1; id=1") == 0);

	/* malformed */
	CHECK(TXT("v=STSv1") == -1);
	CHECK(TXT("v=STSv1;") == -1);
	CHECK(TXT("v=STSv1; id=") == -1);
	CHECK(TXT("v=STSv1; id=123456789012345678901234567890123") == -1);
	CHECK(TXT("v=STSv1; id=a-b") == -1);
	CHECK(TXT("v=STSv1 id=1") == -1);
	CHECK(TXT("v=STSv1; id=1 x") == -1);
	CHECK(TXT("v=STSv1; =1; id=2") == -1);
	CHECK(TXT("v=STSv1; id=1; ext=a=b") == -1);
	CHECK(TXT("v=STSv1; id=1; ext=\xc3\xa9") == -1);
	CHECK(err != NULL);
#undef TXT
}

/* mta_sts_policy_format gives a text that parses back to the same policy
 * (what the store's policy cache keeps). */
static void test_format_round_trip(void)
{
	static const char text[] = "version: STSv1\r\nmode: testing\r\nmx: *.A.example\r\n"
				   "mx: mx2.a.example\r\nmax_age: 99999999\r\nextra: x\r\n";
	struct mta_sts_policy p = { 0 }, q = { 0 };
	const char *err = NULL;
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	CHECK(mta_sts_policy_parse(text, sizeof(text) - 1, &p, &err) == 0);
	mta_sts_policy_format(&p, &b);
	CHECK_STR(buf_cstr(&b), "version: STSv1\nmode: testing\nmx: *.a.example\n"
		  "mx: mx2.a.example\nmax_age: 31557600\n");
	CHECK(mta_sts_policy_parse(b.data, b.len, &q, &err) == 0);
	CHECK(q.mode == p.mode && q.max_age == p.max_age && q.mx_count == 2);
	CHECK(q.mx_count == 2 && strcmp(q.mx[1], "mx2.a.example") == 0);
	mta_sts_policy_clear(&p);
	mta_sts_policy_clear(&q);
	buf_free(&b);
}

int main(void)
{
	RUN(test_format_round_trip);
	RUN(test_rfc_example);
	RUN(test_variants);
	RUN(test_errors);
	RUN(test_too_many_mx);
	RUN(test_prefixes);
	RUN(test_txt);
	return unit_summary("mta-sts");
}
