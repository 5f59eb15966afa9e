/* mail/base-subject: RFC 5256 2.1 base subject extraction (every step of
 * the algorithm, the reply/forward mark, non-ASCII text) and the
 * i;unicode-casemap key. */
#include "unit.h"
#include "mail/base-subject.h"

#include <stdbool.h>
#include <string.h>

static char result[4096];

static const char *base(const char *s, bool *refwd)
{
	struct buf b;
	bool r = false;

	buf_init(&b, BUF_UNLIMITED);
	CHECK(base_subject(s, strlen(s), &b, &r) == 0);
	snprintf(result, sizeof(result), "%s", buf_cstr(&b));
	buf_free(&b);
	if (refwd != NULL)
		*refwd = r;
	return result;
}

struct bcase {
	const char *in, *out;
	bool refwd;
};

static void test_rfc_steps(void)
{
	static const struct bcase cases[] = {
		/* plain */
		{ "hello", "hello", false },
		{ "", "", false },
		/* (1) white space */
		{ "  hello \t  world  ", "hello world", false },
		{ "hello\r\n world", "hello world", false },
		/* (2) trailers */
		{ "hello (fwd)", "hello", true },
		{ "hello (FWD)(fwd)  (Fwd) ", "hello", true },
		{ "hello(fwd)", "hello", true },
		{ "(fwd) hello", "(fwd) hello", false },
		/* (3) leaders: re, fw, fwd, with blobs and spaces */
		{ "Re: hello", "hello", true },
		{ "RE: re: Re:hello", "hello", true },
		{ "Fwd: hello", "hello", true },
		{ "FW: hello", "hello", true },
		{ "fw : hello", "hello", true },
		{ "Re[2]: hello", "hello", true },
		{ "Re [2]: hello", "hello", true },
		{ "Re[2] : hello", "hello", true },      /* a blob takes the spaces after it */
		{ "[PATCH] Re: hello", "hello", true },
		{ "[a] [b] Re: [c] Fwd: hello", "hello", true },
		{ "Re: Re:", "", true },
		{ "Re:", "", true },
		{ "Reply: hello", "Reply: hello", false },
		{ "Re hello", "Re hello", false },
		{ "Fwdd: hello", "Fwdd: hello", false },
		/* (4) leading blobs when text remains */
		{ "[PATCH] hello", "hello", false },
		{ "[a][b] hello", "hello", false },
		{ "[PATCH]", "[PATCH]", false },
		{ "[a] [b]", "[b]", false },
		{ "[a] Re: [b]", "[b]", true },
		{ "[a [b] hello", "[a [b] hello", false },  /* no '[' inside a blob */
		{ "[unclosed hello", "[unclosed hello", false },
		/* (6) [fwd: ...] wrapping, repeated from (2) */
		{ "[fwd: hello]", "hello", true },
		{ "[FWD: Re: hello (fwd)]", "hello", true },
		{ "[Fwd: [fwd: hello]]", "hello", true },
		{ "Fwd: [fwd: a] (fwd)", "a", true },
		{ "[fwd:]", "", true },
		{ "[fwd: ]", "", true },
		{ "[fwd: hello", "[fwd: hello", false },
		{ "[fwd: a] b", "b", false },     /* a blob, then "b" */
		{ "[list] [fwd: Re: x]", "x", true },
		/* text after the syntax is kept as written */
		{ "Re: Hello  World (fwd) again", "Hello World (fwd) again", true },
		/* non-ASCII text is plain text */
		{ "Re: Ünïcödé", "Ünïcödé", true },
		{ "AW: Grüße", "AW: Grüße", false },   /* only re/fw/fwd are known */
		{ "[café] 日本語", "日本語", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool r;
		const char *got = base(cases[i].in, &r);
		if (strcmp(got, cases[i].out) != 0 || r != cases[i].refwd)
			fprintf(stderr, "  case %zu: \"%s\" -> \"%s\" refwd=%d\n", i, cases[i].in, got,
				r);
		CHECK_STR(got, cases[i].out);
		CHECK(r == cases[i].refwd);
	}
}

static void test_nul_and_long(void)
{
	struct buf b, in;
	bool r;

	/* an embedded NUL is a space, never the end */
	buf_init(&b, BUF_UNLIMITED);
	CHECK(base_subject("Re: a\0b", 7, &b, &r) == 0);
	CHECK_STR(buf_cstr(&b), "a b");
	CHECK(r);
	buf_free(&b);

	/* 20 000 nested leaders: linear, no recursion */
	buf_init(&in, BUF_UNLIMITED);
	for (int i = 0; i < 20000; i++)
		buf_append_str(&in, "Re: [x] ");
	buf_append_str(&in, "end");
	buf_init(&b, BUF_UNLIMITED);
	CHECK(base_subject(in.data, in.len, &b, &r) == 0);
	CHECK_STR(buf_cstr(&b), "end");
	buf_free(&b);
	buf_free(&in);

	/* the output limit is honoured */
	buf_init(&b, 3);
	CHECK(base_subject("Re: hello", 9, &b, NULL) < 0);
	buf_free(&b);
}

static const char *key(const char *s, size_t len)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	CHECK(unicode_casemap_key(s, len, &b) == 0);
	snprintf(result, sizeof(result), "%s", buf_cstr(&b));
	buf_free(&b);
	return result;
}

static void test_casemap(void)
{
	char a[64];

	CHECK_STR(key("HeLLo World", 11), "hello world");
	snprintf(a, sizeof(a), "%s", key("STRASSE", 7));
	CHECK_STR(key("straße", strlen("straße")), a);
	snprintf(a, sizeof(a), "%s", key("Ä", strlen("Ä")));
	CHECK_STR(key("ä", strlen("ä")), a);
	CHECK_STR(key("a\xcc\x88", 3), a);    /* decomposed form is the same key */
	CHECK(strcmp(key("b", 1), a) != 0);
	CHECK_STR(key("\xff", 1), "\xef\xbf\xbd");   /* invalid UTF-8: U+FFFD */
	CHECK_STR(key("a\0B", 3), "a b");
	CHECK_STR(key("", 0), "");
}

int main(void)
{
	RUN(test_rfc_steps);
	RUN(test_nul_and_long);
	RUN(test_casemap);
	return unit_summary("base-subject");
}
