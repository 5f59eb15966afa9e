/* Unit tests for src/mailauth/auth-results.c: which Authentication-Results
 * fields claim an authserv-id (RFC 8601 2.2, 5), property values, and the
 * rewrite that puts ours below our Received field and removes forged ones
 * from the header section only. */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mailauth/auth-results.h"
#include "unit.h"

static bool claims(const char *v, const char *id)
{
	return auth_results_claims(v, strlen(v), id);
}

static void test_claims(void)
{
	CHECK(claims(" mx.example.test; spf=pass", "mx.example.test"));
	CHECK(claims("MX.Example.TEST; none", "mx.example.test"));
	CHECK(claims(" mx.example.test.; none", "mx.example.test"));
	CHECK(claims(" mx.example.test 1; spf=pass", "mx.example.test"));
	CHECK(claims(" (a comment (nested) \\) here)\r\n\tmx.example.test;\r\n\tspf=fail",
		     "mx.example.test"));
	CHECK(claims(" \"mx.example.test\"; dkim=pass", "mx.example.test"));
	CHECK(claims("mx.example.test", "mx.example.test"));
	CHECK(!claims(" mx.example.test.evil; spf=pass", "mx.example.test"));
	CHECK(!claims(" other.example; spf=pass", "mx.example.test"));
	CHECK(!claims(" example.test; spf=pass", "mx.example.test"));
	CHECK(!claims(" (unterminated mx.example.test; spf=pass", "mx.example.test"));
	CHECK(!claims(" \"mx.example.test; spf=pass", "mx.example.test"));
	CHECK(!claims("", "mx.example.test"));
	CHECK(!claims("  ;spf=pass", "mx.example.test"));
	/* deep nesting is only counted */
	struct buf b;
	buf_init(&b, BUF_UNLIMITED);
	for (int i = 0; i < 100000; i++)
		buf_append_str(&b, "(");
	buf_append_str(&b, " mx.example.test;");
	CHECK(!auth_results_claims(b.data, b.len, "mx.example.test"));
	buf_free(&b);
}

static void test_pvalue(void)
{
	struct buf b;
	buf_init(&b, 1024);
	CHECK(auth_results_append_pvalue(&b, "user@example.com") == 0);
	CHECK_STR(buf_cstr(&b), "user@example.com");
	buf_reset(&b);
	auth_results_append_pvalue(&b, "\"a b\"@example.com");
	CHECK_STR(buf_cstr(&b), "\"\\\"a b\\\"@example.com\"");
	buf_reset(&b);
	auth_results_append_pvalue(&b, "x;y(z)\r\n");
	CHECK_STR(buf_cstr(&b), "\"x;y(z)\"");
	buf_reset(&b);
	auth_results_append_pvalue(&b, "");
	CHECK_STR(buf_cstr(&b), "\"\"");
	buf_free(&b);
}

static const char *rewrite(const char *msg, unsigned *removed)
{
	static struct buf out;
	const char *error = NULL;
	buf_free(&out);
	buf_init(&out, 1 << 20);
	CHECK(auth_results_rewrite(msg, strlen(msg), 1, "mx.example.test",
				   "spf=pass smtp.mailfrom=a@example.org", &out, removed,
				   &error) == 0);
	return buf_cstr(&out);
}

static void test_rewrite(void)
{
	unsigned removed = 99;
	const char *r = rewrite("Received: from x\r\n\tby mx.example.test; date\r\n"
				"Authentication-Results: mx.example.test; spf=pass\r\n"
				"Authentication-Results: other.example; spf=fail\r\n"
				"authentication-results:\r\n MX.EXAMPLE.TEST;\r\n dkim=pass\r\n"
				"Subject: hi\r\n"
				"\r\n"
				"Authentication-Results: mx.example.test; in the body\r\n", &removed);
	CHECK_STR(r, "Received: from x\r\n\tby mx.example.test; date\r\n"
		     "Authentication-Results: mx.example.test;\r\n\tspf=pass smtp.mailfrom=a@example.org\r\n"
		     "Authentication-Results: other.example; spf=fail\r\n"
		     "Subject: hi\r\n"
		     "\r\n"
		     "Authentication-Results: mx.example.test; in the body\r\n");
	CHECK(removed == 2);
	/* only our Received: ours goes before the empty line */
	r = rewrite("Received: x\r\n\r\nbody\r\n", &removed);
	CHECK_STR(r, "Received: x\r\nAuthentication-Results: mx.example.test;\r\n"
		     "\tspf=pass smtp.mailfrom=a@example.org\r\n\r\nbody\r\n");
	CHECK(removed == 0);
	/* no body at all */
	r = rewrite("Received: x\r\n", &removed);
	CHECK_STR(r, "Received: x\r\nAuthentication-Results: mx.example.test;\r\n"
		     "\tspf=pass smtp.mailfrom=a@example.org\r\n");
	/* a malformed line is kept where it was; a forged field right after
	 * our Received is removed and ours takes its place */
	r = rewrite("Received: x\r\nAuthentication-Results: mx.example.test; forged\r\n"
		    "no colon here\r\nTo: b\r\n\r\n", &removed);
	CHECK_STR(r, "Received: x\r\nAuthentication-Results: mx.example.test;\r\n"
		     "\tspf=pass smtp.mailfrom=a@example.org\r\nno colon here\r\nTo: b\r\n\r\n");
	CHECK(removed == 1);
	/* out too small: an error, never a cut message */
	struct buf small;
	const char *error = NULL;
	buf_init(&small, 16);
	CHECK(auth_results_rewrite("Received: x\r\n\r\n", 15, 1, "mx.example.test", "spf=none",
				   &small, NULL, &error) < 0);
	CHECK(error != NULL);
	buf_free(&small);
	rewrite("", &removed);
}

int main(void)
{
	RUN(test_claims);
	RUN(test_pvalue);
	RUN(test_rewrite);
	return unit_summary("auth-results");
}
