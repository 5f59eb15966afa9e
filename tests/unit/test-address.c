/* mail/address: RFC 5321 paths, RFC 5322 address lists, formatting and
 * domain checks.  Every input is parsed from an exact-size heap copy (so
 * ASan catches a read past the end), and every prefix of every input is
 * parsed too, under all flag combinations. */
#include "unit.h"
#include "lib/buf.h"
#include "mail/address.h"

#include <stdlib.h>

#define ALL_FLAGS (ADDRESS_ALLOW_NULL | ADDRESS_ALLOW_UTF8 | ADDRESS_ALLOW_POSTMASTER | \
		   ADDRESS_ALLOW_NO_BRACKETS)

static char *heap_copy(const char *s, size_t len)
{
	char *p = malloc(len ? len : 1);
	memcpy(p, s, len);
	return p;
}

/* Parse a path from an exact-size copy; returns consumed or -1. */
static int path(const char *s, size_t len, unsigned flags, struct address *a, const char **err)
{
	char *copy = heap_copy(s, len);
	int r = address_parse_path(copy, len, flags, a, err);
	free(copy);
	return r;
}

/* Expect a path to parse into local/domain with consumed bytes. */
static void ok_path(const char *s, unsigned flags, int consumed, const char *local,
		    const char *domain)
{
	struct address a;
	const char *err = NULL;
	int r = path(s, strlen(s), flags, &a, &err);

	if (r != consumed)
		fprintf(stderr, "  input %s: r=%d err=%s\n", s, r, err ? err : "-");
	CHECK(r == consumed);
	if (r < 0)
		return;
	if (local == NULL)
		CHECK(a.local == NULL);
	else
		CHECK_STR(a.local, local);
	if (domain == NULL)
		CHECK(a.domain == NULL);
	else
		CHECK_STR(a.domain, domain);
	address_clear(&a);
	CHECK(a.local == NULL && a.domain == NULL);
}

static void bad_path(const char *s, size_t len, unsigned flags, const char *want_err)
{
	struct address a;
	const char *err = NULL;
	int r = path(s, len, flags, &a, &err);

	if (r != -1)
		fprintf(stderr, "  input %s: accepted (%d)\n", s, r);
	CHECK(r == -1);
	CHECK(err != NULL);
	CHECK(a.local == NULL && a.domain == NULL);
	if (want_err != NULL && err != NULL && r == -1)
		CHECK_STR(err, want_err);
}
#define BAD(s, flags) bad_path(s, strlen(s), flags, NULL)
#define BAD_E(s, flags, e) bad_path(s, strlen(s), flags, e)

static void test_path_basic(void)
{
	struct address a;
	const char *err;

	ok_path("<user@example.test>", 0, 19, "user", "example.test");
	ok_path("<User.Name@EXAMPLE.Test>", 0, 24, "User.Name", "example.test");
	ok_path("<user@example.test.>", 0, 20, "user", "example.test");
	ok_path("<user@example.test> SIZE=100 BODY=8BITMIME", 0, 19, "user", "example.test");
	ok_path("<a+tag@x-y.example.test>", 0, 24, "a+tag", "x-y.example.test");
	ok_path("<postmaster@example.test>", ADDRESS_ALLOW_POSTMASTER, 25, "postmaster",
		"example.test");
	ok_path("<user@localhost>", 0, 16, "user", "localhost");
	ok_path("<1@2.test>", 0, 10, "1", "2.test");
	ok_path("<!#$%&'*+-/=?^_`{|}~@x.test>", 0, 28, "!#$%&'*+-/=?^_`{|}~", "x.test");

	CHECK(path("<user@example.test>", 19, 0, &a, &err) == 19);
	CHECK(!a.quoted && !a.ip_literal && !a.utf8 && !a.had_route);
	address_clear(&a);
}

static void test_path_relay_tricks(void)
{
	struct address a;
	const char *err;

	/* the domain is always the last one: these name local users */
	ok_path("<user%remote@local.test>", 0, 24, "user%remote", "local.test");
	ok_path("<remote!user@local.test>", 0, 24, "remote!user", "local.test");
	ok_path("<user%remote.test%other@local.test>", 0, 35, "user%remote.test%other",
		"local.test");
	CHECK(path("<\"user@remote\"@local.test>", 26, 0, &a, &err) == 26);
	CHECK_STR(a.local, "user@remote");
	CHECK_STR(a.domain, "local.test");
	CHECK(a.quoted);
	address_clear(&a);

	CHECK(path("<@a.test,@b.test:user@local.test>", 33, 0, &a, &err) == 33);
	CHECK_STR(a.local, "user");
	CHECK_STR(a.domain, "local.test");
	CHECK(a.had_route);
	address_clear(&a);
	ok_path("<@relay.test:user@local.test>", 0, 29, "user", "local.test");
	ok_path("<@relay.test:\"user@remote\"@local.test>", 0, 38, "user@remote", "local.test");

	/* a second unquoted @ is not an address */
	BAD("<user@remote.test@local.test>", 0);
	{
		int r = path("<user@remote.test>@local.test", 29, 0, &a, &err);
		CHECK(r == 18);  /* consumed stops at '>': the caller sees "@local.test" as garbage */
		if (r > 0)
			address_clear(&a);
	}
	BAD("<@a.test:@b.test:user@local.test>", 0);
	BAD("<@a.test,b.test:user@local.test>", 0);
	BAD("<@a.test>", 0);
	BAD("<@:user@local.test>", 0);
	BAD("<@[192.0.2.1]:user@local.test>", 0);
	BAD("<@a.test:>", 0);
}

static void test_path_quoted(void)
{
	struct address a;
	const char *err;

	ok_path("<\"john doe\"@x.test>", 0, 19, "john doe", "x.test");
	ok_path("<\"a\\\"b\"@x.test>", 0, 15, "a\"b", "x.test");
	ok_path("<\"a\\\\b\"@x.test>", 0, 15, "a\\b", "x.test");
	ok_path("<\"plain\"@x.test>", 0, 16, "plain", "x.test");
	CHECK(path("<\"plain\"@x.test>", 16, 0, &a, &err) == 16);
	CHECK(a.quoted);
	char *f = address_format(&a);
	CHECK_STR(f, "plain@x.test");  /* quotes only when needed */
	free(f);
	address_clear(&a);

	BAD("<\"unterminated@x.test>", 0);
	BAD("<\"\"@x.test>", 0);
	BAD("<\"a\x01\"@x.test>", 0);
	BAD("<\"a\\\x01\"@x.test>", 0);
	BAD("<\"a\tb\"@x.test>", 0);
	BAD("<\"a\"b@x.test>", 0);
	BAD("<a\"b\"@x.test>", 0);
	BAD("<\"a\".b@x.test>", 0);
}

static void test_path_null_postmaster(void)
{
	struct address a;
	const char *err;

	ok_path("<>", ADDRESS_ALLOW_NULL, 2, NULL, NULL);
	ok_path("<> SIZE=10", ADDRESS_ALLOW_NULL, 2, NULL, NULL);
	BAD_E("<>", 0, "Null path not allowed here");
	BAD("<>", ADDRESS_ALLOW_POSTMASTER | ADDRESS_ALLOW_NO_BRACKETS);

	ok_path("<Postmaster>", ADDRESS_ALLOW_POSTMASTER, 12, "Postmaster", NULL);
	ok_path("<postmaster>", ADDRESS_ALLOW_POSTMASTER, 12, "postmaster", NULL);
	ok_path("<POSTMASTER> NOTIFY=NEVER", ADDRESS_ALLOW_POSTMASTER, 12, "POSTMASTER", NULL);
	ok_path("postmaster", ADDRESS_ALLOW_POSTMASTER | ADDRESS_ALLOW_NO_BRACKETS, 10, "postmaster",
		NULL);
	BAD("<Postmaster>", 0);
	BAD("<Postmaster>", ADDRESS_ALLOW_NULL);
	BAD("<postmasters>", ADDRESS_ALLOW_POSTMASTER);
	BAD("<@a.test:postmaster>", ADDRESS_ALLOW_POSTMASTER);

	CHECK(path("<Postmaster>", 12, ADDRESS_ALLOW_POSTMASTER, &a, &err) == 12);
	char *f = address_format(&a);
	CHECK_STR(f, "Postmaster");
	free(f);
	address_clear(&a);
	CHECK(path("<>", 2, ADDRESS_ALLOW_NULL, &a, &err) == 2);
	f = address_format(&a);
	CHECK_STR(f, "");
	free(f);
	address_clear(&a);
}

static void test_path_literals(void)
{
	struct address a;
	const char *err;

	CHECK(path("<user@[192.0.2.1]>", 18, 0, &a, &err) == 18);
	CHECK_STR(a.domain, "[192.0.2.1]");
	CHECK(a.ip_literal);
	address_clear(&a);
	ok_path("<user@[IPv6:2001:db8::1]>", 0, 25, "user", "[IPv6:2001:db8::1]");
	ok_path("<user@[ipv6:2001:DB8::1]>", 0, 25, "user", "[IPv6:2001:db8::1]");
	ok_path("<user@[IPv6:::ffff:192.0.2.1]>", 0, 30, "user", "[IPv6:::ffff:192.0.2.1]");
	BAD("<user@[300.1.1.1]>", 0);
	BAD("<user@[1.2.3]>", 0);
	BAD("<user@[1.2.3.4.5]>", 0);
	BAD("<user@[2001:db8::1]>", 0);       /* IPv6 needs its tag */
	BAD("<user@[IPv6:1.2.3.4]>", 0);
	BAD("<user@[IPv6:zz::1]>", 0);
	BAD("<user@[IPv6:1:2:3:4:5:6:7:8:9]>", 0);
	BAD("<user@[tag:anything]>", 0);      /* General-address-literal */
	BAD("<user@[]>", 0);
	BAD("<user@[1.2.3.4>", 0);
	BAD("<user@[1.2.3.4 ]>", 0);
	BAD("<user@[1.2.3.4]x>", 0);
	BAD("<user@[IPv6:2001:db8::1%eth0]>", 0);
}

static void test_path_syntax_errors(void)
{
	BAD_E("user@x.test", 0, "Address must be in angle brackets");
	BAD("", 0);
	BAD("<", 0);
	BAD("<user>", 0);
	BAD_E("<user>", ADDRESS_ALLOW_POSTMASTER, "Missing domain");
	BAD("<user@>", 0);
	BAD("<@x.test>", 0);
	BAD("<user@x.test", 0);
	BAD("<user @x.test>", 0);
	BAD("<user@ x.test>", 0);
	BAD("<user@x .test>", 0);
	BAD("< user@x.test>", 0);
	BAD("<user@x.test >", 0);
	BAD("<.user@x.test>", 0);
	BAD("<user.@x.test>", 0);
	BAD("<us..er@x.test>", 0);
	BAD("<us(er@x.test>", 0);
	BAD("<us,er@x.test>", 0);
	BAD("<user@-x.test>", 0);
	BAD("<user@x-.test>", 0);
	BAD("<user@x..test>", 0);
	BAD("<user@.x.test>", 0);
	BAD("<user@x.test..>", 0);
	BAD("<user@.>", 0);
	BAD("<user@x_y.test>", 0);
	BAD("<<user@x.test>>", 0);
	BAD_E("<us\x01er@x.test>", 0, "Control character in address");
	BAD_E("<user@x.test\r\n>", 0, "Control character in address");
	BAD_E("<user\x7f@x.test>", 0, "Control character in address");
	BAD("<user@x.t\x1bst>", 0);
	bad_path("<us\0er@x.test>", 14, 0, "Control character in address");
	bad_path("<user@x.test\0>", 14, 0, "Control character in address");
	bad_path("<user@x.test>", 12, 0, NULL);   /* cut before '>' */
}

static void test_path_no_brackets(void)
{
	ok_path("user@x.test", ADDRESS_ALLOW_NO_BRACKETS, 11, "user", "x.test");
	ok_path("user@x.test SIZE=1", ADDRESS_ALLOW_NO_BRACKETS, 11, "user", "x.test");
	ok_path("<user@x.test>", ADDRESS_ALLOW_NO_BRACKETS, 13, "user", "x.test");
	ok_path("\"a b\"@x.test SIZE=1", ADDRESS_ALLOW_NO_BRACKETS, 12, "a b", "x.test");
	BAD("user@x.test>", ADDRESS_ALLOW_NO_BRACKETS);
	BAD("user@x.test\tSIZE=1", ADDRESS_ALLOW_NO_BRACKETS);
	BAD("@a.test:user@x.test", ADDRESS_ALLOW_NO_BRACKETS);
	BAD(" user@x.test", ADDRESS_ALLOW_NO_BRACKETS);
}

static void test_path_utf8(void)
{
	struct address a;
	const char *err;
	const char *s = "<j\xc3\xb6rg@b\xc3\xbc\x63her.test>";

	CHECK(path(s, strlen(s), ADDRESS_ALLOW_UTF8, &a, &err) == (int)strlen(s));
	CHECK_STR(a.local, "j\xc3\xb6rg");
	CHECK_STR(a.domain, "b\xc3\xbc\x63her.test");
	CHECK(a.utf8);
	address_clear(&a);
	BAD_E(s, 0, "Non-ASCII address without SMTPUTF8");
	BAD_E("<user@b\xc3\xbc\x63her.test>", 0, "Non-ASCII address without SMTPUTF8");

	CHECK(path("<user@x.test>", 13, ADDRESS_ALLOW_UTF8, &a, &err) == 13);
	CHECK(!a.utf8);
	address_clear(&a);
	ok_path("<\"\xe6\x97\xa5 \xe6\x9c\xac\"@x.test>", ADDRESS_ALLOW_UTF8, 18,
		"\xe6\x97\xa5 \xe6\x9c\xac", "x.test");
	ok_path("<\xf0\x9f\x98\x80@x.test>", ADDRESS_ALLOW_UTF8, 13, "\xf0\x9f\x98\x80", "x.test");
	ok_path("<U@\xc3\x9c.TEST>", ADDRESS_ALLOW_UTF8, 11, "U", "\xc3\x9c.test");

	/* ill-formed UTF-8 is refused even with SMTPUTF8 */
	BAD_E("<\xc0\xaf@x.test>", ADDRESS_ALLOW_UTF8, "Invalid UTF-8 in address");
	BAD("<\xc1\xbf@x.test>", ADDRESS_ALLOW_UTF8);
	BAD("<\xe0\x80\xaf@x.test>", ADDRESS_ALLOW_UTF8);
	BAD("<\xf0\x80\x80\xaf@x.test>", ADDRESS_ALLOW_UTF8);
	BAD("<\xed\xa0\x80@x.test>", ADDRESS_ALLOW_UTF8);      /* surrogate */
	BAD("<\xf4\x90\x80\x80@x.test>", ADDRESS_ALLOW_UTF8);  /* > U+10FFFF */
	BAD("<\xf5\x80\x80\x80@x.test>", ADDRESS_ALLOW_UTF8);
	BAD("<\xc3@x.test>", ADDRESS_ALLOW_UTF8);              /* truncated */
	BAD("<\x80@x.test>", ADDRESS_ALLOW_UTF8);              /* lone continuation */
	BAD("<\xff@x.test>", ADDRESS_ALLOW_UTF8);
	BAD("<a@\xc3.test>", ADDRESS_ALLOW_UTF8);
	BAD("<\"\xc3\"@x.test>", ADDRESS_ALLOW_UTF8);
	bad_path("<\xc3", 2, ADDRESS_ALLOW_UTF8, NULL);        /* sequence cut by the end */
	bad_path("<a\xe2\x82", 4, ADDRESS_ALLOW_UTF8, NULL);
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void test_path_limits(void)
{
	char *l64 = repeat('a', 64), *l65 = repeat('a', 65), *lab63 = repeat('b', 63),
	     *lab64 = repeat('b', 64);
	char *s;

	s = xasprintf("<%s@x.test>", l64);
	ok_path(s, 0, (int)strlen(s), l64, "x.test");
	free(s);
	s = xasprintf("<%s@x.test>", l65);
	BAD_E(s, 0, "Local part too long");
	free(s);
	/* quotes count toward the 64 octets */
	s = xasprintf("<\"%.62s\"@x.test>", l64);
	ok_path(s, 0, (int)strlen(s), l64 + 2, "x.test");
	free(s);
	s = xasprintf("<\"%.63s\"@x.test>", l64);
	BAD_E(s, 0, "Local part too long");
	free(s);

	s = xasprintf("<a@%s.test>", lab63);
	char *d = xasprintf("%s.test", lab63);
	ok_path(s, 0, (int)strlen(s), "a", d);
	free(d);
	free(s);
	s = xasprintf("<a@%s.test>", lab64);
	BAD(s, 0);
	free(s);

	/* domain of 252 octets: "<a@" + 252 + ">" = 256, the path limit */
	char *dom = xasprintf("%s.%s.%s.%.60s", lab63, lab63, lab63, lab63);
	CHECK(strlen(dom) == 252);
	s = xasprintf("<a@%s>", dom);
	ok_path(s, 0, 256, "a", dom);
	free(s);
	s = xasprintf("<ab@%s>", dom);
	BAD_E(s, 0, "Path too long");
	free(s);
	s = xasprintf("ab@%s", dom);
	BAD_E(s, ADDRESS_ALLOW_NO_BRACKETS, "Path too long");
	free(s);
	s = xasprintf("<@r.test:a@%s>", dom);
	BAD_E(s, 0, "Path too long");
	free(s);
	/* a domain over 255 octets */
	char *dom256 = xasprintf("%s.%s.%s.%.63s", lab63, lab63, lab63, lab63);
	CHECK(strlen(dom256) == 255);
	CHECK(address_domain_valid(dom256, 255, false));
	s = xasprintf("<a@%sx>", dom256);
	BAD_E(s, 0, "Domain too long");
	free(s);
	free(dom256);
	free(dom);
	free(l64);
	free(l65);
	free(lab63);
	free(lab64);
}

static void test_format(void)
{
	struct address a = { 0 };
	char *f;

	a.local = "john doe";
	a.domain = "x.test";
	f = address_format(&a);
	CHECK_STR(f, "\"john doe\"@x.test");
	free(f);
	a.local = "a\"b\\c";
	f = address_format(&a);
	CHECK_STR(f, "\"a\\\"b\\\\c\"@x.test");
	free(f);
	a.local = ".a";
	f = address_format(&a);
	CHECK_STR(f, "\".a\"@x.test");
	free(f);
	a.local = "a..b";
	f = address_format(&a);
	CHECK_STR(f, "\"a..b\"@x.test");
	free(f);
	a.local = "first.last+tag";
	f = address_format(&a);
	CHECK_STR(f, "first.last+tag@x.test");
	free(f);
	a.local = "user@remote";
	a.domain = "local.test";
	f = address_format(&a);
	CHECK_STR(f, "\"user@remote\"@local.test");
	free(f);

	/* round trip: format, parse again, same address */
	const char *inputs[] = { "<\"a b\\\"c\"@X.Test>", "<user%r@l.test>", "<\"x@y\"@z.test>",
				 "<a@[IPv6:2001:DB8::1]>" };
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct address p, q;
		const char *err;
		CHECK(path(inputs[i], strlen(inputs[i]), 0, &p, &err) > 0);
		char *s1 = address_format(&p);
		char *br = xasprintf("<%s>", s1);
		CHECK(path(br, strlen(br), 0, &q, &err) == (int)strlen(br));
		char *s2 = address_format(&q);
		CHECK_STR(s1, s2);
		free(s1);
		free(s2);
		free(br);
		address_clear(&p);
		address_clear(&q);
	}
}

static void test_domain_valid(void)
{
	CHECK(address_domain_valid("example.test", 12, false));
	CHECK(address_domain_valid("example.test.", 13, false));
	CHECK(address_domain_valid("a", 1, false));
	CHECK(address_domain_valid("xn--bcher-kva.test", 18, false));
	CHECK(address_domain_valid("[192.0.2.1]", 11, false));
	CHECK(address_domain_valid("[IPv6:::1]", 10, false));
	CHECK(!address_domain_valid("", 0, false));
	CHECK(!address_domain_valid(".", 1, false));
	CHECK(!address_domain_valid("a..b", 4, false));
	CHECK(!address_domain_valid("-a.b", 4, false));
	CHECK(!address_domain_valid("a-.b", 4, false));
	CHECK(!address_domain_valid("a_b.c", 5, false));
	CHECK(!address_domain_valid("a b", 3, false));
	CHECK(!address_domain_valid("[1.2.3]", 7, false));
	CHECK(!address_domain_valid("[192.0.2.1", 10, false));
	CHECK(!address_domain_valid("b\xc3\xbc\x63her.test", 11, false));
	CHECK(address_domain_valid("b\xc3\xbc\x63her.test", 11, true));
	CHECK(!address_domain_valid("b\xc3" "cher.test", 10, true));
	/* the length given is the truth: no reading past it */
	CHECK(address_domain_valid("abc.def", 3, false));
	CHECK(!address_domain_valid("abc.-ef", 5, false));
}

/* ---- lists ---- */

struct collect {
	struct buf out;
	unsigned n;
	bool quoted, literal, utf8, route;
};

static void collect_cb(void *ctx, const struct address *a)
{
	struct collect *c = ctx;
	char *f = address_format(a);

	if (c->n++ > 0)
		buf_append_str(&c->out, " | ");
	buf_append_str(&c->out, f);
	c->quoted |= a->quoted;
	c->literal |= a->ip_literal;
	c->utf8 |= a->utf8;
	c->route |= a->had_route;
	free(f);
}

/* Parse a list from an exact-size copy and return "a | b | c" (or "ERR"). */
static char *list(const char *s, size_t len, unsigned flags, struct collect *c)
{
	char *copy = heap_copy(s, len);
	const char *err = NULL;
	int r;

	memset(c, 0, sizeof(*c));
	buf_init(&c->out, BUF_UNLIMITED);
	r = address_parse_list(copy, len, flags, collect_cb, c, &err);
	free(copy);
	if (r < 0) {
		CHECK(err != NULL);
		CHECK(c->n == 0);  /* nothing reported from a list that failed */
		buf_free(&c->out);
		return xstrdup("ERR");
	}
	CHECK((unsigned)r == c->n);
	return buf_steal(&c->out);
}

static void list_is(const char *s, unsigned flags, const char *want)
{
	struct collect c;
	char *got = list(s, strlen(s), flags, &c);

	if (strcmp(got, want) != 0)
		fprintf(stderr, "  list input: %s\n", s);
	CHECK_STR(got, want);
	free(got);
}

static void test_list_basic(void)
{
	struct collect c;
	char *r;

	list_is("a@b.test", 0, "a@b.test");
	list_is("John Doe <john@x.test>", 0, "john@x.test");
	list_is("\"Doe, John\" <john@x.test>, jane@y.test", 0, "john@x.test | jane@y.test");
	list_is("=?utf-8?q?J=C3=B6rg?= <jorg@x.test>", 0, "jorg@x.test");
	list_is("john@x.test (John Doe)", 0, "john@x.test");
	list_is("(comment (nested) \\) ) john@x.test", 0, "john@x.test");
	list_is("John (the man) Smith <john@X.Test> (work)", 0, "john@x.test");
	list_is("<john@x.test>", 0, "john@x.test");
	list_is("a@b.test,,c@d.test", 0, "a@b.test | c@d.test");
	list_is(", a@b.test ,", 0, "a@b.test");
	list_is("", 0, "");
	list_is("   ", 0, "");
	list_is("(only a comment)", 0, "");
	list_is("a@B.Test.", 0, "a@b.test");
	list_is("Mr. Smith <smith@x.test>", 0, "smith@x.test");   /* obs-phrase */
	list_is("john . doe @ x . test", 0, "john.doe@x.test");   /* obs forms */
	list_is("a@(c)b.test", 0, "a@b.test");
	list_is("\"a b\"@x.test", 0, "\"a b\"@x.test");
	list_is("a@[192.0.2.1]", 0, "a@[192.0.2.1]");
	list_is("a,b@x.test", 0, "ERR");
	list_is("a@b.test,\r\n c@d.test", 0, "a@b.test | c@d.test");
	list_is("a@b.test,\n\tc@d.test", 0, "a@b.test | c@d.test");
	list_is("\"John\r\n Doe\" <j@x.test>", 0, "j@x.test");

	r = list("\"x y\"@z.test, a@[192.0.2.1]", 27, 0, &c);
	CHECK(c.quoted && c.literal && !c.utf8);
	free(r);
	r = list("<@r1.test,@r2.test:user@x.test>", 31, 0, &c);
	CHECK_STR(r, "user@x.test");
	CHECK(c.route);
	free(r);
}

static void test_list_groups(void)
{
	list_is("Friends: a@x.test, b@y.test;, c@z.test", 0, "a@x.test | b@y.test | c@z.test");
	list_is("undisclosed-recipients:;", 0, "");
	list_is("undisclosed-recipients: ;", 0, "");
	list_is("Group: a@x.test", 0, "a@x.test");   /* open group at the end */
	list_is("G: John <j@x.test>, (c) k@y.test ;", 0, "j@x.test | k@y.test");
	list_is("G: ,, a@x.test,,;", 0, "a@x.test");
	list_is("G1: a@x.test, G2: b@y.test;;", 0, "ERR");  /* groups do not nest */
	list_is(": a@x.test;", 0, "ERR");
	list_is("G: a@x.test; b@y.test", 0, "ERR");
	list_is("G: a@x.test b@y.test;", 0, "ERR");
}

static void test_list_exact(void)
{
	/* which address a From: check sees must be beyond doubt */
	list_is("\"attacker@evil.test\" <victim@good.test>", 0, "victim@good.test");
	list_is("victim@good.test <attacker@evil.test>", 0, "ERR");
	list_is("<victim@good.test> attacker@evil.test", 0, "ERR");
	list_is("<victim@good.test> <attacker@evil.test>", 0, "ERR");
	list_is("victim@good.test attacker@evil.test", 0, "ERR");
	list_is("victim@good.test (x) attacker@evil.test", 0, "ERR");
	list_is("victim@good.test\r\nBcc: x@evil.test", 0, "ERR");
	list_is("victim@good.test\rx@evil.test", 0, "ERR");
	list_is("victim@good.test\nx@evil.test", 0, "ERR");
	list_is("victim@good.test\r\n", 0, "ERR");
	list_is("a@b.test\0@evil.test", 0, "a@b.test");  /* strlen stops; see next */
	{
		struct collect c;
		char *r = list("a@b.test\0c@evil.test", 20, 0, &c);
		CHECK_STR(r, "ERR");
		free(r);
	}
	list_is("user%remote@local.test", 0, "user%remote@local.test");
	list_is("remote!user@local.test", 0, "remote!user@local.test");
	list_is("\"user@remote\"@local.test", 0, "\"user@remote\"@local.test");
	list_is("user@remote.test@local.test", 0, "ERR");
	list_is("John <john>", 0, "ERR");
	list_is("John <john@x.test", 0, "ERR");
	list_is("John john@x.test>", 0, "ERR");
	list_is("<john@x.test>>", 0, "ERR");
	list_is("a@b_c.test", 0, "ERR");
	list_is("a@-b.test", 0, "ERR");
	list_is("a@", 0, "ERR");
	list_is("@b.test", 0, "ERR");
	list_is("a@b.test (unterminated", 0, "ERR");
	list_is("a@b.test (x))", 0, "ERR");
	list_is("\"unterminated@b.test", 0, "ERR");
	list_is("a@[300.1.2.3]", 0, "ERR");
	list_is("a@[1.2.3.4", 0, "ERR");
	list_is("<>", 0, "ERR");
	list_is("<>", ADDRESS_ALLOW_NULL, "");
	list_is("\"\"@x.test", 0, "ERR");
	list_is("\"a\x01\"@x.test", 0, "ERR");
	list_is("a\\b@x.test", 0, "ERR");
	list_is("<@:a@x.test>", 0, "ERR");
	list_is("<@r.test a@x.test>", 0, "ERR");
}

static void test_list_utf8(void)
{
	struct collect c;
	char *r;

	list_is("J\xc3\xb6rg <jorg@x.test>", 0, "jorg@x.test");     /* display name only */
	list_is("\"J\xc3\xb6rg\" <jorg@x.test>", 0, "jorg@x.test");
	list_is("j\xc3\xb6rg@x.test", 0, "ERR");
	list_is("jorg@b\xc3\xbc\x63her.test", 0, "ERR");
	r = list("j\xc3\xb6rg@B\xc3\xbc\x63her.test", 18, ADDRESS_ALLOW_UTF8, &c);
	CHECK_STR(r, "j\xc3\xb6rg@b\xc3\xbc\x63her.test");
	CHECK(c.utf8);
	free(r);
	list_is("\xc0\xaf@x.test", ADDRESS_ALLOW_UTF8, "ERR");
	list_is("a@\xed\xa0\x80.test", ADDRESS_ALLOW_UTF8, "ERR");
}

static void test_list_limits(void)
{
	char *l64 = repeat('a', 64), *l65 = repeat('a', 65), *s;

	s = xasprintf("Name <%s@x.test>", l64);
	struct collect c;
	char *r = list(s, strlen(s), 0, &c);
	CHECK(strcmp(r, "ERR") != 0);
	free(r);
	free(s);
	s = xasprintf("Name <%s@x.test>", l65);
	list_is(s, 0, "ERR");
	free(s);
	free(l64);
	free(l65);
}

/* Every prefix of every input, every flag combination: no crash, no read
 * past the end (ASan), and a path never claims more bytes than it got. */
static const char *fuzzish[] = {
	"<user@example.test> SIZE=100",
	"<@a.test,@b.test:\"q\\\"x\"@[IPv6:2001:db8::1]>",
	"<j\xc3\xb6rg@b\xc3\xbc\x63her.test>",
	"<Postmaster>",
	"<>",
	"user@x.test SIZE=1",
	"<\xf0\x9f\x98\x80@[192.0.2.1]>",
	"\"Doe, John\" <john@x.test>, G: a@b.test, (c (d)) e@f.test;",
	"<@r1.test,,@r2.test:user@x.test>, a@b.test,\r\n c@d.test",
	"=?utf-8?q?x?= <a.b@c.test> (x\\) y)",
};

static void test_prefixes(void)
{
	for (size_t i = 0; i < sizeof(fuzzish) / sizeof(fuzzish[0]); i++) {
		size_t len = strlen(fuzzish[i]);
		for (size_t n = 0; n <= len; n++) {
			for (unsigned flags = 0; flags <= ALL_FLAGS; flags++) {
				struct address a;
				const char *err = NULL;
				struct collect c;
				int r = path(fuzzish[i], n, flags, &a, &err);
				CHECK(r <= (int)n);
				CHECK(r >= 0 || err != NULL);
				if (r >= 0)
					address_clear(&a);
				char *l = list(fuzzish[i], n, flags, &c);
				free(l);
			}
		}
	}
}

int main(void)
{
	RUN(test_path_basic);
	RUN(test_path_relay_tricks);
	RUN(test_path_quoted);
	RUN(test_path_null_postmaster);
	RUN(test_path_literals);
	RUN(test_path_syntax_errors);
	RUN(test_path_no_brackets);
	RUN(test_path_utf8);
	RUN(test_path_limits);
	RUN(test_format);
	RUN(test_domain_valid);
	RUN(test_list_basic);
	RUN(test_list_groups);
	RUN(test_list_exact);
	RUN(test_list_utf8);
	RUN(test_list_limits);
	RUN(test_prefixes);
	return unit_summary("address");
}
