/* Unit tests for the SMTP client's reply parser (smtp/client-reply.c):
 * single and multi-line replies, enhanced status codes, EHLO keywords,
 * bare LF, code checks, line and line-count limits, sanitizing of CR,
 * NUL, control and 8-bit bytes, the text cap, and replies back to back.
 * Every case is parsed whole and fed one byte at a time; both must give
 * the same result. */
#include "unit.h"
#include "smtp/client-reply.h"

#include <stdlib.h>

struct outcome {
	enum smtp_reply_status st;
	size_t consumed;
	int code;
	char enh[SMTP_ENHANCED_MAX];
	char *text;
	size_t text_len;
	unsigned n_lines;
};

static void outcome_free(struct outcome *o)
{
	free(o->text);
}

/* Parse data as one piece (bytewise = false) or one byte per call. */
static struct outcome parse(const char *data, size_t len, bool bytewise)
{
	struct smtp_reply_parser p;
	struct smtp_client_reply r;
	struct outcome o = { SMTP_REPLY_NEED_MORE, 0, 0, "", NULL, 0, 0 };
	const char *err = NULL;

	smtp_reply_parser_init(&p);
	smtp_client_reply_init(&r);
	while (o.consumed < len) {
		size_t n = bytewise ? 1 : len - o.consumed, used = 0;
		o.st = smtp_reply_parse(&p, data + o.consumed, n, &used, &r, &err);
		CHECK(used <= n);
		o.consumed += used;
		if (o.st != SMTP_REPLY_NEED_MORE)
			break;
		CHECK(used == n);
	}
	if (o.st == SMTP_REPLY_OK) {
		o.code = r.code;
		snprintf(o.enh, sizeof(o.enh), "%s", r.enhanced);
		o.text = xstrndup(buf_cstr(&r.text), r.text.len);
		o.text_len = r.text.len;
		o.n_lines = r.n_lines;
	}
	if (o.st == SMTP_REPLY_ERROR)
		CHECK(err != NULL);
	smtp_client_reply_free(&r);
	smtp_reply_parser_free(&p);
	return o;
}

/* Both ways; returns the whole-input outcome (the caller frees it). */
static struct outcome parse_both(const char *data, size_t len)
{
	struct outcome a = parse(data, len, false), b = parse(data, len, true);

	CHECK(a.st == b.st);
	if (a.st != SMTP_REPLY_ERROR)   /* after an error consumed means nothing */
		CHECK(a.consumed == b.consumed);
	CHECK(a.code == b.code);
	CHECK_STR(a.enh, b.enh);
	CHECK(a.n_lines == b.n_lines);
	CHECK((a.text == NULL) == (b.text == NULL));
	if (a.text != NULL && b.text != NULL)
		CHECK(a.text_len == b.text_len && memcmp(a.text, b.text, a.text_len) == 0);
	outcome_free(&b);
	return a;
}

#define PARSE(lit) parse_both(lit, sizeof(lit) - 1)

static void test_single_line(void)
{
	struct outcome o = PARSE("250 2.1.0 Sender ok\r\n");

	CHECK(o.st == SMTP_REPLY_OK);
	CHECK(o.code == 250);
	CHECK_STR(o.enh, "2.1.0");
	CHECK_STR(o.text, "Sender ok");
	CHECK(o.consumed == 21);
	outcome_free(&o);

	o = PARSE("354\r\n");
	CHECK(o.st == SMTP_REPLY_OK && o.code == 354);
	CHECK_STR(o.text, "");
	outcome_free(&o);

	o = PARSE("220 bare lf\n");
	CHECK(o.st == SMTP_REPLY_OK && o.code == 220);
	CHECK_STR(o.text, "bare lf");
	outcome_free(&o);

	o = PARSE("250 2.1.0 partial");
	CHECK(o.st == SMTP_REPLY_NEED_MORE && o.consumed == 17);
	outcome_free(&o);
}

static void test_enhanced(void)
{
	struct outcome o = PARSE("550 5.1.1 no\r\n");
	CHECK_STR(o.enh, "5.1.1");
	outcome_free(&o);
	/* class must match the code */
	o = PARSE("250 5.1.1 odd\r\n");
	CHECK_STR(o.enh, "");
	CHECK_STR(o.text, "5.1.1 odd");
	outcome_free(&o);
	/* digits limits */
	o = PARSE("452 4.123.456 full\r\n");
	CHECK_STR(o.enh, "4.123.456");
	outcome_free(&o);
	o = PARSE("452 4.1234.5 x\r\n");
	CHECK_STR(o.enh, "");
	outcome_free(&o);
	o = PARSE("452 4.1.2x\r\n");
	CHECK_STR(o.enh, "");
	outcome_free(&o);
	o = PARSE("452 4.1.2\r\n");
	CHECK_STR(o.enh, "4.1.2");
	CHECK_STR(o.text, "");
	outcome_free(&o);
}

static void test_multi_line(void)
{
	static const char ehlo[] = "250-mx.example.org Hello\r\n250-PIPELINING\r\n"
		"250-SIZE 10240000\r\n250-AUTH=LOGIN PLAIN\r\n250 8BITMIME\r\n";
	struct outcome o = PARSE(ehlo);
	struct smtp_reply_parser p;
	struct smtp_client_reply r;
	struct slice arg;
	size_t used;
	const char *err;

	CHECK(o.st == SMTP_REPLY_OK && o.code == 250 && o.n_lines == 5);
	CHECK_STR(o.text, "mx.example.org Hello PIPELINING SIZE 10240000 AUTH=LOGIN PLAIN 8BITMIME");
	CHECK(o.consumed == sizeof(ehlo) - 1);
	outcome_free(&o);

	smtp_reply_parser_init(&p);
	smtp_client_reply_init(&r);
	CHECK(smtp_reply_parse(&p, ehlo, sizeof(ehlo) - 1, &used, &r, &err) == SMTP_REPLY_OK);
	CHECK(smtp_client_reply_has_keyword(&r, "pipelining", NULL));
	CHECK(smtp_client_reply_has_keyword(&r, "SIZE", &arg));
	CHECK(arg.len == 8 && memcmp(arg.p, "10240000", 8) == 0);
	CHECK(smtp_client_reply_has_keyword(&r, "AUTH", &arg));
	CHECK(arg.len == 11 && memcmp(arg.p, "LOGIN PLAIN", 11) == 0);
	CHECK(!smtp_client_reply_has_keyword(&r, "PIPE", NULL));
	CHECK(!smtp_client_reply_has_keyword(&r, "STARTTLS", NULL));
	CHECK(!smtp_reply_parser_busy(&p));
	smtp_client_reply_free(&r);
	smtp_reply_parser_free(&p);

	o = PARSE("550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n");
	CHECK_STR(o.enh, "5.7.1");
	CHECK_STR(o.text, "first second third");
	outcome_free(&o);
}

static void test_back_to_back(void)
{
	static const char two[] = "250 ok\r\n550 no\r\n";
	struct smtp_reply_parser p;
	struct smtp_client_reply r;
	size_t used;
	const char *err;

	smtp_reply_parser_init(&p);
	smtp_client_reply_init(&r);
	CHECK(smtp_reply_parse(&p, two, sizeof(two) - 1, &used, &r, &err) == SMTP_REPLY_OK);
	CHECK(used == 8 && r.code == 250);
	CHECK(smtp_reply_parse(&p, two + used, sizeof(two) - 1 - used, &used, &r, &err) ==
	      SMTP_REPLY_OK);
	CHECK(used == 8 && r.code == 550);
	CHECK_STR(buf_cstr(&r.text), "no");
	smtp_client_reply_free(&r);
	smtp_reply_parser_free(&p);
}

static void test_errors(void)
{
	static const char *const bad[] = {
		"25 short\r\n", "abc hi\r\n", "199 low\r\n", "600 high\r\n", "250x\r\n",
		"250-a\r\n251 b\r\n", "\r\n", "2500 x\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct outcome o = parse_both(bad[i], strlen(bad[i]));
		CHECK(o.st == SMTP_REPLY_ERROR);
		outcome_free(&o);
	}
}

static void test_limits(void)
{
	char *l = xmalloc(SMTP_REPLY_LINE_MAX + 10);
	struct outcome o;
	struct buf b;

	/* exactly the limit, CRLF included: fine */
	memset(l, 'x', SMTP_REPLY_LINE_MAX);
	memcpy(l, "250 ", 4);
	memcpy(l + SMTP_REPLY_LINE_MAX - 2, "\r\n", 2);
	o = parse_both(l, SMTP_REPLY_LINE_MAX);
	CHECK(o.st == SMTP_REPLY_OK);
	CHECK(o.text_len == SMTP_REPLY_TEXT_MAX);
	CHECK(memcmp(o.text + SMTP_REPLY_TEXT_MAX - 3, "...", 3) == 0);
	outcome_free(&o);
	/* one more byte: too long, even before the line end arrives */
	memset(l, 'x', SMTP_REPLY_LINE_MAX + 1);
	memcpy(l, "250 ", 4);
	memcpy(l + SMTP_REPLY_LINE_MAX - 1, "\r\n", 2);
	o = parse_both(l, SMTP_REPLY_LINE_MAX + 1);
	CHECK(o.st == SMTP_REPLY_ERROR);
	outcome_free(&o);
	o = parse_both(l, SMTP_REPLY_LINE_MAX);  /* no LF seen yet */
	CHECK(o.st == SMTP_REPLY_ERROR);
	outcome_free(&o);
	free(l);

	/* line count */
	buf_init(&b, BUF_UNLIMITED);
	for (int i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
		buf_append_str(&b, "250-x\r\n");
	buf_append_str(&b, "250 end\r\n");
	o = parse_both(b.data, b.len);
	CHECK(o.st == SMTP_REPLY_OK && o.n_lines == SMTP_REPLY_LINES_MAX);
	outcome_free(&o);
	buf_reset(&b);
	for (int i = 0; i < SMTP_REPLY_LINES_MAX; i++)
		buf_append_str(&b, "250-x\r\n");
	buf_append_str(&b, "250 end\r\n");
	o = parse_both(b.data, b.len);
	CHECK(o.st == SMTP_REPLY_ERROR);
	outcome_free(&o);
	buf_free(&b);
}

static void test_sanitize(void)
{
	static const char evil[] = "550 5.1.1 a\rb\0c\x1b[31m\x80\xff\x7f d\r\n";
	struct outcome o = PARSE(evil);

	CHECK(o.st == SMTP_REPLY_OK);
	CHECK(o.text_len == strlen(o.text));   /* no NUL inside */
	CHECK_STR(o.text, "a?b?c?[31m??? d");
	outcome_free(&o);

	struct buf b;
	buf_init(&b, 100);
	CHECK(smtp_reply_sanitize(&b, "abcdefgh", 8, 5) == 5);
	CHECK_STR(buf_cstr(&b), "ab...");
	buf_free(&b);
}

int main(void)
{
	RUN(test_single_line);
	RUN(test_enhanced);
	RUN(test_multi_line);
	RUN(test_back_to_back);
	RUN(test_errors);
	RUN(test_limits);
	RUN(test_sanitize);
	return unit_summary("smtp-client-reply");
}
