/* Unit tests for src/mailauth/auth-results.c: which Authentication-Results
 * fields claim an authserv-id (RFC 8601 2.2, 5), property values, and the
 * rewrite that puts ours below our Received field and removes forged ones
 * from the header section only; the field with several resinfo clauses
 * (spf and one dkim clause per signature) as port 25 builds it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mailauth/auth-results.h"
#include "mailauth/dkim.h"
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

static struct dkim_sig_result sig_result(enum dkim_result res, const char *reason,
					  const char *d, const char *sel, const char *alg,
					  const char *b)
{
	struct dkim_sig_result r = { .result = res, .reason = reason, .domain = d,
				     .selector = sel, .auid = "", .alg = alg };
	snprintf(r.header_b, sizeof(r.header_b), "%s", b);
	return r;
}

/* The clauses of one field: separated by ";" and a fold, none before the
 * first; the result still claims our authserv-id and every line stays
 * short whatever the number of signatures. */
static void test_clauses(void)
{
	struct buf ri, out;
	const char *error = NULL;
	unsigned removed = 0;

	buf_init(&ri, 1 << 16);
	CHECK(auth_results_append_separator(&ri) == 0);
	CHECK(ri.len == 0);
	buf_append_str(&ri, "spf=pass smtp.mailfrom=a@example.org");
	struct dkim_sig_result r = sig_result(DKIM_RESULT_PASS, "", "example.org", "sel",
					      "rsa-sha256", "AbCd+/9x");
	r.auid = "@example.org";
	CHECK(auth_results_append_separator(&ri) == 0);
	CHECK(dkim_result_format(&r, &ri) == 0);
	r = sig_result(DKIM_RESULT_FAIL, "body hash did not verify", "example.net", "ed",
		       "ed25519-sha256", "zzzzzzzz");
	CHECK(auth_results_append_separator(&ri) == 0);
	CHECK(dkim_result_format(&r, &ri) == 0);
	/* an unparsable signature: no d=, s=, a=, b= to report */
	r = sig_result(DKIM_RESULT_PERMERROR, "bad signature", "", "", "", "");
	CHECK(auth_results_append_separator(&ri) == 0);
	CHECK(dkim_result_format(&r, &ri) == 0);
	CHECK_STR(buf_cstr(&ri),
		  "spf=pass smtp.mailfrom=a@example.org;\r\n\t"
		  "dkim=pass header.d=example.org header.i=@example.org header.s=sel "
		  "header.a=rsa-sha256 header.b=\"AbCd+/9x\";\r\n\t"
		  "dkim=fail (body hash did not verify) header.d=example.net header.s=ed "
		  "header.a=ed25519-sha256 header.b=\"zzzzzzzz\";\r\n\t"
		  "dkim=permerror (bad signature)");
	buf_init(&out, 1 << 20);
	static const char msg[] = "Received: x\r\nSubject: s\r\n\r\nb\r\n";
	CHECK(auth_results_rewrite(msg, strlen(msg), 1,
				   "mx.example.test", buf_cstr(&ri), &out, &removed, &error) == 0);
	CHECK(strncmp(buf_cstr(&out), "Received: x\r\nAuthentication-Results: mx.example.test;\r\n"
		      "\tspf=pass smtp.mailfrom=a@example.org;\r\n\tdkim=pass ", 97) == 0);
	CHECK(strstr(buf_cstr(&out), "dkim=permerror (bad signature)\r\nSubject: s\r\n\r\nb\r\n")
	      != NULL);
	/* a second pass sees our own field as claiming our id: replaced */
	struct buf again;
	buf_init(&again, 1 << 20);
	CHECK(auth_results_rewrite(buf_cstr(&out), out.len, 1, "mx.example.test", "dkim=none",
				   &again, &removed, &error) == 0);
	CHECK(removed == 1);
	CHECK_STR(buf_cstr(&again), "Received: x\r\nAuthentication-Results: mx.example.test;\r\n"
		  "\tdkim=none\r\nSubject: s\r\n\r\nb\r\n");
	buf_free(&again);
	buf_free(&out);
	/* the most clauses port 25 writes: the spf one and DKIM_MAX_SIGNATURES
	 * long dkim ones, each line well under RFC 5322's 998 */
	ri.len = 0;
	buf_append_str(&ri, "spf=pass smtp.mailfrom=a@example.org");
	char dom[200];
	memset(dom, 'd', sizeof(dom) - 1);
	dom[sizeof(dom) - 1] = '\0';
	r = sig_result(DKIM_RESULT_PERMERROR, "key record is malformed", dom, dom,
		       "rsa-sha256", "AAAAAAAA");
	for (int i = 0; i < DKIM_MAX_SIGNATURES; i++) {
		CHECK(auth_results_append_separator(&ri) == 0);
		CHECK(dkim_result_format(&r, &ri) == 0);
	}
	size_t longest = 0, cur = 0;
	for (size_t i = 0; i < ri.len; i++) {
		cur = ri.data[i] == '\n' ? 0 : cur + 1;
		if (cur > longest)
			longest = cur;
	}
	CHECK(longest > 400 && longest < 998);
	buf_free(&ri);
}

int main(void)
{
	RUN(test_claims);
	RUN(test_pvalue);
	RUN(test_rewrite);
	RUN(test_clauses);
	return unit_summary("auth-results");
}
