/* Unit tests of mailauth/dmarc-author.c: the Author Domains of a message
 * (RFC 7489 6.6.1) and the dmarc= clause of Authentication-Results. */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mailauth/dmarc-author.h"
#include "unit.h"

static size_t collect(const char *msg, struct dmarc_authors *a)
{
	return dmarc_authors_collect(msg, strlen(msg), a);
}

static void test_one_from(void)
{
	struct dmarc_authors a;

	CHECK(collect("Received: x\r\nFrom: Alice <alice@Example.COM.>\r\nTo: b@c.d\r\n\r\n"
		      "From: body@not.header\r\n", &a) == 1);
	CHECK_STR(a.domain[0], "example.com");
	CHECK(a.fields == 1);
	CHECK(a.addresses == 1);
	CHECK(!a.too_many);
	dmarc_authors_clear(&a);
	CHECK(a.count == 0);

	/* folded, a comment and a quoted display name holding an '@' */
	CHECK(collect("from:\r\n \"bob@evil.test\" (c@d.e)\r\n <bob@mail.example.org>\r\n\r\n",
		      &a) == 1);
	CHECK_STR(a.domain[0], "mail.example.org");
	dmarc_authors_clear(&a);

	/* header section only (no body separator) */
	CHECK(collect("From: x@a.example", &a) == 1);
	CHECK_STR(a.domain[0], "a.example");
	dmarc_authors_clear(&a);
}

static void test_no_domain(void)
{
	struct dmarc_authors a;

	CHECK(collect("To: b@c.d\r\nSubject: no from\r\n\r\nbody\r\n", &a) == 0);
	CHECK(a.fields == 0);
	dmarc_authors_clear(&a);
	CHECK(collect("From: undisclosed\r\n\r\n", &a) == 0);
	CHECK(a.fields == 1);
	CHECK(a.invalid == 1);
	dmarc_authors_clear(&a);
	CHECK(collect("From: <x@[192.0.2.1]>\r\n\r\n", &a) == 0);
	CHECK(a.invalid == 1);
	dmarc_authors_clear(&a);
	CHECK(collect("From: <x@bad_domain!.test>\r\n\r\n", &a) == 0);
	dmarc_authors_clear(&a);
	CHECK(collect("From: group:;\r\n\r\n", &a) == 0);
	dmarc_authors_clear(&a);
	CHECK(collect("", &a) == 0);
	dmarc_authors_clear(&a);
}

static void test_several(void)
{
	struct dmarc_authors a;

	/* same domain twice, one evaluation */
	CHECK(collect("From: a@x.example, B@X.Example\r\n\r\n", &a) == 1);
	CHECK(a.addresses == 2);
	dmarc_authors_clear(&a);
	/* two fields: both read, in order */
	CHECK(collect("From: a@one.example\r\nSubject: s\r\nFROM: b@two.example\r\n\r\n", &a) == 2);
	CHECK(a.fields == 2);
	CHECK_STR(a.domain[0], "one.example");
	CHECK_STR(a.domain[1], "two.example");
	dmarc_authors_clear(&a);
	/* a group's members count */
	CHECK(collect("From: team: a@g.example, b@h.example;\r\n\r\n", &a) == 2);
	dmarc_authors_clear(&a);
	/* too many distinct domains */
	CHECK(collect("From: a@d1.example, a@d2.example, a@d3.example, a@d4.example, "
		      "a@d5.example, a@d6.example\r\n\r\n", &a) == DMARC_MAX_AUTHORS);
	CHECK(a.too_many);
	dmarc_authors_clear(&a);
	/* exactly the maximum is fine */
	CHECK(collect("From: a@d1.example, a@d2.example, a@d3.example, a@d4.example, "
		      "a@d5.example, z@d1.example\r\n\r\n", &a) == DMARC_MAX_AUTHORS);
	CHECK(!a.too_many);
	dmarc_authors_clear(&a);
}

static void test_many_addresses_capped(void)
{
	struct buf b;
	struct dmarc_authors a;

	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "From: ");
	for (int i = 0; i < 500; i++)
		buf_printf(&b, "%su%d@same.example", i ? ", " : "", i);
	buf_append_str(&b, "\r\n\r\n");
	CHECK(dmarc_authors_collect(b.data, b.len, &a) == 1);
	CHECK(a.addresses == DMARC_MAX_FROM_ADDRESSES);
	dmarc_authors_clear(&a);
	buf_free(&b);
}

static void test_idn(void)
{
	struct dmarc_authors a;

	/* U-labels become A-labels (RFC 7489 6.6.1) */
	CHECK(collect("From: =?utf-8?q?J=C3=B6rg?= <j@b\xc3\xbc" "cher.example>\r\n\r\n", &a) == 1);
	CHECK_STR(a.domain[0], "xn--bcher-kva.example");
	dmarc_authors_clear(&a);
	/* an invalid UTF-8 domain is not a domain */
	CHECK(collect("From: j@b\xc3" "cher.example\r\n\r\n", &a) == 0);
	dmarc_authors_clear(&a);
}

static void test_byte_by_byte_prefixes(void)
{
	/* every prefix of a message is a message too: never crash, and the
	 * full one gives the domain */
	const char *msg = "Subject: x\r\nFrom: \"A (b)\" <a@pre.example>, c@pre.example\r\n\r\nhi";
	size_t len = strlen(msg);

	for (size_t i = 0; i <= len; i++) {
		struct dmarc_authors a;
		char *copy = malloc(i + 1);
		memcpy(copy, msg, i);
		copy[i] = '\0';
		size_t n = dmarc_authors_collect(copy, i, &a);
		CHECK(n <= 2);  /* a cut second domain differs */
		if (i == len)
			CHECK(n == 1 && strcmp(a.domain[0], "pre.example") == 0);
		dmarc_authors_clear(&a);
		free(copy);
	}
}

static char *clause(const struct dmarc_clause *c)
{
	struct buf b;

	buf_init(&b, 4096);
	CHECK(dmarc_clause_format(c, &b) == 0);
	return buf_steal(&b);
}

static void test_clause(void)
{
	char *s;

	s = clause(&(struct dmarc_clause){
		.result = DMARC_RESULT_FAIL, .from_domain = "example.com", .have_policy = true,
		.p = DMARC_POLICY_REJECT, .sp = DMARC_POLICY_NONE,
		.dis = DMARC_DISPOSITION_QUARANTINE });
	CHECK_STR(s, "dmarc=fail (p=REJECT sp=NONE dis=QUARANTINE) header.from=example.com");
	free(s);
	s = clause(&(struct dmarc_clause){
		.result = DMARC_RESULT_PASS, .from_domain = "a.example", .have_policy = true,
		.p = DMARC_POLICY_QUARANTINE, .sp = DMARC_POLICY_QUARANTINE,
		.dis = DMARC_DISPOSITION_NONE, .comment = "ignored with a policy" });
	CHECK_STR(s, "dmarc=pass (p=QUARANTINE sp=QUARANTINE dis=NONE) header.from=a.example");
	free(s);
	s = clause(&(struct dmarc_clause){ .result = DMARC_RESULT_NONE, .from_domain = "b.example" });
	CHECK_STR(s, "dmarc=none header.from=b.example");
	free(s);
	s = clause(&(struct dmarc_clause){ .result = DMARC_RESULT_PERMERROR,
					   .comment = "no From domain" });
	CHECK_STR(s, "dmarc=permerror (no From domain)");
	free(s);
	/* comment characters that would end or escape the comment are dropped */
	s = clause(&(struct dmarc_clause){ .result = DMARC_RESULT_TEMPERROR,
					   .from_domain = "c.example",
					   .comment = "DNS (lookup) \\failed\r\n" });
	CHECK_STR(s, "dmarc=temperror (DNS lookup failed) header.from=c.example");
	free(s);
}

static void test_clause_full(void)
{
	struct buf b;

	buf_init(&b, 10);
	CHECK(dmarc_clause_format(&(struct dmarc_clause){ .result = DMARC_RESULT_NONE,
							  .from_domain = "long.example" }, &b) < 0);
	buf_free(&b);
}

int main(void)
{
	RUN(test_one_from);
	RUN(test_no_domain);
	RUN(test_several);
	RUN(test_many_addresses_capped);
	RUN(test_idn);
	RUN(test_byte_by_byte_prefixes);
	RUN(test_clause);
	RUN(test_clause_full);
	return unit_summary("dmarc-author");
}
