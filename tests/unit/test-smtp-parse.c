/* smtp/parse: command lines, MAIL/RCPT parameters, BDAT arguments, xtext,
 * and the DATA/BDAT body state machine.  Every body case runs whole, one
 * byte at a time and in random chunk sizes, and must give the same result;
 * a random differential test checks the body machine against a simple
 * line-based reference model. */
#include "unit.h"
#include "smtp/parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S(lit) ((struct slice){ (lit), sizeof(lit) - 1 })
#define BYTES(lit) (lit), sizeof(lit) - 1

static const struct smtp_param_ext ext_all = { true, true, true, true, true, true, true };
static const struct smtp_param_ext ext_none = { false, false, false, false, false, false,
						    false };

/* ---- smtp_line_find ---- */

static void test_line_find(void)
{
	struct slice line;
	size_t used;
	bool bare;

	CHECK(smtp_line_find("NOOP\r\n", 6, 2048, &line, &used, &bare) == SMTP_LINE_OK);
	CHECK(line.len == 4 && memcmp(line.p, "NOOP", 4) == 0 && used == 6 && !bare);
	CHECK(smtp_line_find("NOOP\n", 5, 2048, &line, &used, &bare) == SMTP_LINE_OK);
	CHECK(line.len == 4 && used == 5 && bare);
	CHECK(smtp_line_find("\n", 1, 2048, &line, &used, &bare) == SMTP_LINE_OK);
	CHECK(line.len == 0 && used == 1 && bare);
	CHECK(smtp_line_find("\r\n", 2, 2048, &line, &used, &bare) == SMTP_LINE_OK);
	CHECK(line.len == 0 && used == 2 && !bare);
	CHECK(smtp_line_find("NOOP", 4, 2048, &line, &used, &bare) == SMTP_LINE_NEED_MORE);
	CHECK(smtp_line_find("NOOP\r", 5, 2048, &line, &used, &bare) == SMTP_LINE_NEED_MORE);
	CHECK(smtp_line_find("", 0, 2048, &line, &used, &bare) == SMTP_LINE_NEED_MORE);
	/* a CR inside the line stays in it (command_parse refuses it) */
	CHECK(smtp_line_find("A\rB\r\n", 5, 2048, &line, &used, &bare) == SMTP_LINE_OK);
	CHECK(line.len == 3 && used == 5);
	/* only the first of two pipelined lines */
	CHECK(smtp_line_find("RSET\r\nNOOP\r\n", 12, 2048, &line, &used, &bare) == SMTP_LINE_OK);
	CHECK(line.len == 4 && used == 6);
}

static void test_line_limit(void)
{
	struct slice line;
	size_t used;
	bool bare;

	/* max counts the CRLF: 8 bytes "ABCDEF\r\n" fit in 8 */
	CHECK(smtp_line_find("ABCDEF\r\n", 8, 8, &line, &used, &bare) == SMTP_LINE_OK);
	CHECK(line.len == 6 && used == 8);
	CHECK(smtp_line_find("ABCDEFG\n", 8, 8, &line, &used, &bare) == SMTP_LINE_OK);
	CHECK(smtp_line_find("ABCDEFG\r\n", 9, 8, &line, &used, &bare) == SMTP_LINE_TOO_LONG);
	CHECK(used == 9);
	CHECK(smtp_line_find("ABCDEFGHIJ\r\nNOOP\r\n", 18, 8, &line, &used, &bare) ==
	      SMTP_LINE_TOO_LONG);
	CHECK(used == 12);
	CHECK(smtp_line_find("ABCDEFGHIJ", 10, 8, &line, &used, &bare) == SMTP_LINE_TOO_LONG);
	CHECK(used == 10);
	CHECK(smtp_line_find("ABCDEFG", 7, 8, &line, &used, &bare) == SMTP_LINE_NEED_MORE);

	/* A session discarding a 3000-byte line fed in 7-byte pieces, then
	 * finding the next command. */
	struct buf in;
	size_t fed = 0, total;
	bool discarding = false;
	int too_long = 0, ok = 0;
	char *raw = malloc(3100);

	memset(raw, 'x', 3000);
	memcpy(raw + 3000, "\r\nNOOP\r\n", 8);
	total = 3008;
	buf_init(&in, 1 << 20);
	while (fed < total || in.len > 0) {
		if (fed < total) {
			size_t n = total - fed < 7 ? total - fed : 7;
			buf_append(&in, raw + fed, n);
			fed += n;
		}
		enum smtp_line_status st = smtp_line_find(in.data, in.len, 2048, &line, &used, &bare);
		if (st == SMTP_LINE_NEED_MORE) {
			if (fed == total)
				break;
			continue;
		}
		if (st == SMTP_LINE_TOO_LONG) {
			too_long++;
			discarding = true;
			buf_consume(&in, used);
			continue;
		}
		if (discarding) {
			/* the tail of the long line */
			discarding = false;
			CHECK(line.len > 0 && line.p[0] == 'x');
		} else {
			ok++;
			CHECK(line.len == 4 && memcmp(line.p, "NOOP", 4) == 0);
		}
		buf_consume(&in, used);
	}
	CHECK(too_long == 1);
	CHECK(ok == 1);
	buf_free(&in);
	free(raw);
}

/* Byte at a time: NEED_MORE until the LF arrives. */
static void test_line_bytewise(void)
{
	const char *s = "MAIL FROM:<a@b.example>\r\nRCPT";
	size_t lf = strchr(s, '\n') - s;
	struct slice line;
	size_t used;
	bool bare;

	for (size_t n = 0; n <= strlen(s); n++) {
		enum smtp_line_status st = smtp_line_find(s, n, 2048, &line, &used, &bare);
		if (n <= lf) {
			CHECK(st == SMTP_LINE_NEED_MORE);
		} else {
			CHECK(st == SMTP_LINE_OK);
			CHECK(used == lf + 1 && line.len == lf - 1 && !bare);
		}
	}
}

/* ---- smtp_command_parse ---- */

static enum smtp_verb verb_of(const char *s)
{
	struct smtp_command c;

	if (smtp_command_parse(slice_from(s), &c) < 0)
		return (enum smtp_verb)-1;
	return c.verb;
}

static void test_command_verbs(void)
{
	CHECK(verb_of("HELO x") == SMTP_VERB_HELO);
	CHECK(verb_of("ehlo x") == SMTP_VERB_EHLO);
	CHECK(verb_of("Mail FROM:<>") == SMTP_VERB_MAIL);
	CHECK(verb_of("rCpT TO:<a@b>") == SMTP_VERB_RCPT);
	CHECK(verb_of("DATA") == SMTP_VERB_DATA);
	CHECK(verb_of("BDAT 10 LAST") == SMTP_VERB_BDAT);
	CHECK(verb_of("RSET") == SMTP_VERB_RSET);
	CHECK(verb_of("NOOP") == SMTP_VERB_NOOP);
	CHECK(verb_of("quit") == SMTP_VERB_QUIT);
	CHECK(verb_of("VRFY x") == SMTP_VERB_VRFY);
	CHECK(verb_of("EXPN x") == SMTP_VERB_EXPN);
	CHECK(verb_of("HELP") == SMTP_VERB_HELP);
	CHECK(verb_of("StartTLS") == SMTP_VERB_STARTTLS);
	CHECK(verb_of("AUTH PLAIN") == SMTP_VERB_AUTH);
	CHECK(verb_of("GET / HTTP/1.1") == SMTP_VERB_HTTP);
	CHECK(verb_of("POST /x HTTP/1.0") == SMTP_VERB_HTTP);
	CHECK(verb_of("CONNECT mx.example:25 HTTP/1.1") == SMTP_VERB_HTTP);
	CHECK(verb_of("HEAD / HTTP/1.1") == SMTP_VERB_HTTP);
	CHECK(verb_of("GET") == SMTP_VERB_UNKNOWN);
	CHECK(verb_of("XYZZY") == SMTP_VERB_UNKNOWN);
	CHECK(verb_of("MAILX FROM:<>") == SMTP_VERB_UNKNOWN);
	CHECK(verb_of("MAI") == SMTP_VERB_UNKNOWN);
	CHECK(verb_of("") == SMTP_VERB_UNKNOWN);
	CHECK(verb_of(" NOOP") == SMTP_VERB_UNKNOWN);
	CHECK(verb_of("HELO\thost") == SMTP_VERB_HELO);
}

static void test_command_args(void)
{
	struct smtp_command c;

	CHECK(smtp_command_parse(slice_from("MAIL FROM:<a@b.example> SIZE=10"), &c) == 0);
	CHECK(c.verb == SMTP_VERB_MAIL);
	CHECK(c.verb_text.len == 4 && memcmp(c.verb_text.p, "MAIL", 4) == 0);
	CHECK(slice_eq(c.arg, slice_from("FROM:<a@b.example> SIZE=10")));
	CHECK(smtp_command_parse(slice_from("MAIL FROM: <a@b.example>"), &c) == 0);
	CHECK(slice_eq(c.arg, slice_from("FROM: <a@b.example>")));
	CHECK(smtp_command_parse(slice_from("NOOP   x y  \t "), &c) == 0);
	CHECK(slice_eq(c.arg, slice_from("x y")));
	CHECK(smtp_command_parse(slice_from("QUIT"), &c) == 0);
	CHECK(c.arg.len == 0);
	CHECK(smtp_command_parse(slice_from("QUIT   "), &c) == 0);
	CHECK(c.arg.len == 0 && c.verb == SMTP_VERB_QUIT);
	CHECK(smtp_command_parse(slice_from("helo h\xc3\xa9.example"), &c) == 0);
	CHECK(slice_eq(c.arg, slice_from("h\xc3\xa9.example")));
	CHECK(smtp_command_parse(slice_from("VRFY a\tb"), &c) == 0);
	CHECK(slice_eq(c.arg, slice_from("a\tb")));
	CHECK(smtp_command_parse(slice_from("frob x"), &c) == 0);
	CHECK(c.verb == SMTP_VERB_UNKNOWN && slice_eq(c.verb_text, slice_from("frob")));
}

static void test_command_controls(void)
{
	struct smtp_command c;

	CHECK(smtp_command_parse(S("NOOP\0x"), &c) == -1);
	CHECK(smtp_command_parse(S("MAIL FROM:<a@b>\r"), &c) == -1);
	CHECK(smtp_command_parse(S("MAIL FROM:<a@b>\rRCPT TO:<c@d>"), &c) == -1);
	CHECK(smtp_command_parse(S("RCPT TO:<a\n@b>"), &c) == -1);
	CHECK(smtp_command_parse(S("HELO \x01"), &c) == -1);
	CHECK(smtp_command_parse(S("HELO \x1b[31m"), &c) == -1);
	CHECK(smtp_command_parse(S("HELO x\x7f"), &c) == -1);
	CHECK(smtp_command_parse(S("\0"), &c) == -1);
}

/* ---- BDAT ---- */

static void test_bdat(void)
{
	struct smtp_parse_error err;
	uint64_t size;
	bool last;

	CHECK(smtp_bdat_parse(slice_from("0"), &size, &last, &err) == 0 && size == 0 && !last);
	CHECK(smtp_bdat_parse(slice_from("100 LAST"), &size, &last, &err) == 0);
	CHECK(size == 100 && last);
	CHECK(smtp_bdat_parse(slice_from("7 last"), &size, &last, &err) == 0 && size == 7 && last);
	CHECK(smtp_bdat_parse(slice_from("18446744073709551615"), &size, &last, &err) == 0);
	CHECK(size == UINT64_MAX);
	CHECK(smtp_bdat_parse(slice_from("00000000000000000001"), &size, &last, &err) == 0);
	CHECK(size == 1);
	static const char *bad[] = {
		"", "LAST", "10 LAST x", "10  LAST", "10 LASTX", "-1", "1x", "1 2",
		"18446744073709551616", "000000000000000000001", " 10", "10 ", "0x10",
		"10\tLAST",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.code = 0;
		CHECK(smtp_bdat_parse(slice_from(bad[i]), &size, &last, &err) == -1);
		CHECK(err.code == 501 && strcmp(err.enhanced, "5.5.4") == 0 && err.text != NULL);
	}
}

/* ---- xtext ---- */

static void xtext_is(const char *in, const char *want)
{
	char *got = smtp_xtext_decode(slice_from(in));

	if (want == NULL) {
		CHECK(got == NULL);
		if (got != NULL)
			fprintf(stderr, "  xtext %s decoded to %s\n", in, got);
	} else {
		CHECK_STR(got, want);
	}
	free(got);
}

static void test_xtext(void)
{
	xtext_is("", "");
	xtext_is("abc", "abc");
	xtext_is("a+2Bb", "a+b");
	xtext_is("+3D", "=");
	xtext_is("+20x", " x");
	xtext_is("<>", "<>");
	xtext_is("user@example.com", "user@example.com");
	xtext_is("+7E", "~");
	xtext_is("+2b", NULL);      /* lowercase hex */
	xtext_is("+2", NULL);
	xtext_is("+", NULL);
	xtext_is("ab+", NULL);
	xtext_is("a=b", NULL);
	xtext_is("a b", NULL);
	xtext_is("+0D+0A", NULL);   /* CR LF */
	xtext_is("+00", NULL);      /* NUL */
	xtext_is("+7F", NULL);
	xtext_is("+C3+A9", NULL);   /* 8-bit after decoding */
	xtext_is("\xc3\xa9", NULL); /* raw 8-bit */
	xtext_is("+GG", NULL);
	CHECK(smtp_xtext_decode(S("a\0b")) == NULL);
}

/* ---- MAIL ---- */

static int mail(const char *arg, const struct smtp_param_ext *ext, struct smtp_mail_params *p,
		struct smtp_parse_error *err)
{
	memset(err, 0, sizeof(*err));
	return smtp_mail_parse(slice_from(arg), ext, p, err);
}

/* Expect a refusal with code/enhanced; the params must come back cleared. */
static void mail_err(const char *arg, const struct smtp_param_ext *ext, int code, const char *enh)
{
	struct smtp_mail_params p;
	struct smtp_parse_error err;

	int r = mail(arg, ext, &p, &err);
	CHECK(r == -1);
	if (r == 0 || err.code != code || err.enhanced == NULL || strcmp(err.enhanced, enh) != 0)
		fprintf(stderr, "  MAIL %s: r=%d %d %s %s\n", arg, r, err.code,
			err.enhanced ? err.enhanced : "-", err.text ? err.text : "-");
	CHECK(err.code == code);
	CHECK(err.text != NULL && err.text[0] != '\0');
	CHECK(p.from.local == NULL && p.from.domain == NULL && p.envid == NULL && p.auth == NULL);
	smtp_mail_params_clear(&p);
}

static void test_mail_path(void)
{
	struct smtp_mail_params p;
	struct smtp_parse_error err;

	CHECK(mail("FROM:<a@example.com>", &ext_none, &p, &err) == 0);
	CHECK_STR(p.from.local, "a");
	CHECK_STR(p.from.domain, "example.com");
	CHECK(p.size == -1 && p.body == SMTP_BODY_7BIT && !p.smtputf8 && p.ret == SMTP_RET_UNSET);
	CHECK(p.envid == NULL && p.auth == NULL);
	smtp_mail_params_clear(&p);
	CHECK(p.from.local == NULL && p.size == -1);

	CHECK(mail("from:<Joe@Example.COM>", &ext_none, &p, &err) == 0);
	CHECK_STR(p.from.local, "Joe");
	CHECK_STR(p.from.domain, "example.com");
	smtp_mail_params_clear(&p);

	/* one space after the colon, as Postfix tolerates (RFC 5321 has none) */
	CHECK(mail("FROM: <a@example.com>", &ext_none, &p, &err) == 0);
	CHECK_STR(p.from.domain, "example.com");
	smtp_mail_params_clear(&p);

	CHECK(mail("FROM:<>", &ext_none, &p, &err) == 0);
	CHECK(p.from.local == NULL && p.from.domain == NULL);
	smtp_mail_params_clear(&p);

	CHECK(mail("FROM:<\"a b\"@example.com>", &ext_none, &p, &err) == 0);
	CHECK_STR(p.from.local, "a b");
	CHECK(p.from.quoted);
	smtp_mail_params_clear(&p);

	CHECK(mail("FROM:<@relay.example:a@example.com>", &ext_none, &p, &err) == 0);
	CHECK_STR(p.from.local, "a");
	CHECK(p.from.had_route);
	smtp_mail_params_clear(&p);

	mail_err("FROM <a@example.com>", &ext_none, 501, "5.5.4");
	mail_err("TO:<a@example.com>", &ext_none, 501, "5.5.4");
	mail_err("", &ext_none, 501, "5.5.4");
	mail_err("FROM:", &ext_none, 501, "5.1.7");
	mail_err("FROM:<a@>", &ext_none, 501, "5.1.7");
	mail_err("FROM:a@example.com", &ext_none, 501, "5.1.7");
	mail_err("FROM:<a@example.com", &ext_none, 501, "5.1.7");
	mail_err("FROM:<a@example.com>x", &ext_none, 501, "5.1.7");
	mail_err("FROM:<Postmaster>", &ext_none, 501, "5.1.7");
	mail_err("FROM:<a\tb@example.com>", &ext_none, 501, "5.1.7");
}

static void test_mail_params(void)
{
	struct smtp_mail_params p;
	struct smtp_parse_error err;

	CHECK(mail("FROM:<a@example.com> SIZE=1000 BODY=8BITMIME", &ext_all, &p, &err) == 0);
	CHECK(p.size == 1000 && p.body == SMTP_BODY_8BITMIME);
	smtp_mail_params_clear(&p);

	CHECK(mail("FROM:<> size=0 body=7bit ret=hdrs envid=QQ+2B1 auth=<> smtputf8",
		   &ext_all, &p, &err) == 0);
	CHECK(p.size == 0 && p.body == SMTP_BODY_7BIT && p.ret == SMTP_RET_HDRS && p.smtputf8);
	CHECK_STR(p.envid, "QQ+1");
	CHECK_STR(p.auth, "<>");
	smtp_mail_params_clear(&p);

	CHECK(mail("FROM:<a@example.com>   BODY=BINARYMIME   RET=FULL AUTH=a+2Bb@example.com",
		   &ext_all, &p, &err) == 0);
	CHECK(p.body == SMTP_BODY_BINARYMIME && p.ret == SMTP_RET_FULL);
	CHECK_STR(p.auth, "a+b@example.com");
	smtp_mail_params_clear(&p);

	/* SIZE: 20 digits saturate (the caller replies 552), 21 are refused */
	CHECK(mail("FROM:<> SIZE=99999999999999999999", &ext_all, &p, &err) == 0);
	CHECK(p.size == INT64_MAX);
	smtp_mail_params_clear(&p);
	CHECK(mail("FROM:<> SIZE=9223372036854775807", &ext_all, &p, &err) == 0);
	CHECK(p.size == INT64_MAX);
	smtp_mail_params_clear(&p);
	CHECK(mail("FROM:<> SIZE=9223372036854775806", &ext_all, &p, &err) == 0);
	CHECK(p.size == INT64_MAX - 1);
	smtp_mail_params_clear(&p);

	/* ENVID: 100 decoded characters are fine, 101 are not */
	char buf[400];
	strcpy(buf, "FROM:<> ENVID=");
	memset(buf + strlen(buf), 'e', 100);
	buf[14 + 100] = '\0';
	CHECK(mail(buf, &ext_all, &p, &err) == 0);
	CHECK(p.envid != NULL && strlen(p.envid) == 100);
	smtp_mail_params_clear(&p);
	strcat(buf, "+41");
	mail_err(buf, &ext_all, 555, "5.5.4");

	/* UTF-8 in the path */
	CHECK(mail("FROM:<j\xc3\xb6ran@ex\xc3\xa4mple.com> SMTPUTF8", &ext_all, &p, &err) == 0);
	CHECK(p.smtputf8 && p.from.utf8);
	smtp_mail_params_clear(&p);
	mail_err("FROM:<j\xc3\xb6ran@example.com>", &ext_all, 553, "5.6.7");
	mail_err("FROM:<j\xc3\xb6ran@example.com> SIZE=10", &ext_all, 553, "5.6.7");
	mail_err("FROM:<j\xc3\xb6ran@example.com> SMTPUTF8", &ext_none, 555, "5.5.4");
	mail_err("FROM:<j\xff@example.com> SMTPUTF8", &ext_all, 501, "5.1.7");
}

static void test_mail_param_errors(void)
{
	static const char *bad[] = {
		"FROM:<> SIZE=", "FROM:<> SIZE", "FROM:<> SIZE=12a", "FROM:<> SIZE=-1",
		"FROM:<> SIZE=+1", "FROM:<> SIZE=123456789012345678901", "FROM:<> SIZE=1 SIZE=1",
		"FROM:<> size=1 SIZE=2", "FROM:<> BODY=FOO", "FROM:<> BODY", "FROM:<> BODY=",
		"FROM:<> BODY=7BIT BODY=7BIT", "FROM:<> SMTPUTF8=yes", "FROM:<> SMTPUTF8 smtputf8",
		"FROM:<> RET=ALL", "FROM:<> RET", "FROM:<> RET=FULL RET=HDRS", "FROM:<> ENVID=",
		"FROM:<> ENVID", "FROM:<> ENVID=a+0Db", "FROM:<> ENVID=a+0ab", "FROM:<> ENVID=a+00",
		"FROM:<> ENVID=a ENVID=b", "FROM:<> AUTH=", "FROM:<> AUTH=a+0A", "FROM:<> AUTH=<> AUTH=<>",
		"FROM:<> FOO=bar", "FROM:<> X-FOO", "FROM:<> -X", "FROM:<> SIZE=1=2", "FROM:<> =1",
		"FROM:<> SIZE==1", "FROM:<> SIZE=1\tBODY=7BIT", "FROM:<> ENVID=a\rb",
		"FROM:<> ENVID=a\x80", "FROM:<> SIZ_E=1", "FROM:<> BODY=8BITMIME\xc3\xa9",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		mail_err(bad[i], &ext_all, 555, "5.5.4");

	/* parameters of extensions not offered */
	struct smtp_param_ext e = ext_all;
	e.binarymime = false;
	mail_err("FROM:<> BODY=BINARYMIME", &e, 555, "5.5.4");
	e = ext_all;
	e.eightbitmime = false;
	e.binarymime = false;
	mail_err("FROM:<> BODY=7BIT", &e, 555, "5.5.4");
	mail_err("FROM:<> SIZE=10", &ext_none, 555, "5.5.4");
	mail_err("FROM:<> BODY=8BITMIME", &ext_none, 555, "5.5.4");
	mail_err("FROM:<> SMTPUTF8", &ext_none, 555, "5.5.4");
	mail_err("FROM:<> RET=FULL", &ext_none, 555, "5.5.4");
	mail_err("FROM:<> ENVID=x", &ext_none, 555, "5.5.4");
	mail_err("FROM:<> AUTH=<>", &ext_none, 555, "5.5.4");

	/* a NUL in an argument never survives */
	struct smtp_mail_params p;
	struct smtp_parse_error err;
	CHECK(smtp_mail_parse(S("FROM:<> ENVID=a\0b"), &ext_all, &p, &err) == -1);
	CHECK(err.code == 555 && p.envid == NULL);
	CHECK(smtp_mail_parse(S("FROM:<a\0@example.com>"), &ext_all, &p, &err) == -1);
	CHECK(err.code == 501);
}

/* RFC 8689: REQUIRETLS only where offered (a TLS session), no value,
 * once; without TLS the RFC's 530 5.7.10, not the generic 555. */
static void test_mail_requiretls(void)
{
	struct smtp_mail_params p;
	struct smtp_parse_error err;
	struct smtp_param_ext notls = ext_all;

	CHECK(mail("FROM:<a@example.com> REQUIRETLS", &ext_all, &p, &err) == 0);
	CHECK(p.requiretls);
	smtp_mail_params_clear(&p);
	CHECK(mail("FROM:<a@example.com> requiretls SIZE=10", &ext_all, &p, &err) == 0);
	CHECK(p.requiretls && p.size == 10);
	smtp_mail_params_clear(&p);
	CHECK(mail("FROM:<a@example.com>", &ext_all, &p, &err) == 0);
	CHECK(!p.requiretls);
	smtp_mail_params_clear(&p);
	notls.requiretls = false;
	mail_err("FROM:<a@example.com> REQUIRETLS", &notls, 530, "5.7.10");
	mail_err("FROM:<> REQUIRETLS", &ext_none, 530, "5.7.10");
	mail_err("FROM:<> REQUIRETLS REQUIRETLS", &ext_all, 555, "5.5.4");
	mail_err("FROM:<> REQUIRETLS=yes", &ext_all, 555, "5.5.4");
	mail_err("FROM:<> REQUIRETLS=", &ext_all, 555, "5.5.4");
	mail_err("FROM:<> REQUIRETLSX", &ext_all, 555, "5.5.4");
	/* CR, LF or NUL glued to the keyword is never taken as it */
	CHECK(smtp_mail_parse(S("FROM:<> REQUIRETLS\r"), &ext_all, &p, &err) == -1);
	CHECK(!p.requiretls);
	CHECK(smtp_mail_parse(S("FROM:<> REQUIRETLS\0"), &ext_all, &p, &err) == -1);
	CHECK(!p.requiretls);
	CHECK(smtp_mail_parse(S("FROM:<> REQUIRETLS\nRCPT TO:<a@b>"), &ext_all, &p, &err) == -1);
	CHECK(!p.requiretls);
}

/* ---- RCPT ---- */

static void rcpt_err(const char *arg, const struct smtp_param_ext *ext, bool utf8, int code,
		     const char *enh)
{
	struct smtp_rcpt_params p;
	struct smtp_parse_error err = { 0, NULL, NULL };

	int r = smtp_rcpt_parse(slice_from(arg), ext, utf8, &p, &err);
	CHECK(r == -1);
	if (r == 0 || err.code != code || err.enhanced == NULL || strcmp(err.enhanced, enh) != 0)
		fprintf(stderr, "  RCPT %s: r=%d %d %s %s\n", arg, r, err.code,
			err.enhanced ? err.enhanced : "-", err.text ? err.text : "-");
	CHECK(err.code == code);
	CHECK(err.text != NULL && err.text[0] != '\0');
	CHECK(p.to.local == NULL && p.orcpt == NULL && p.notify == 0);
	smtp_rcpt_params_clear(&p);
}

static void test_rcpt(void)
{
	struct smtp_rcpt_params p;
	struct smtp_parse_error err;

	CHECK(smtp_rcpt_parse(slice_from("TO:<b@Example.org>"), &ext_none, false, &p, &err) == 0);
	CHECK_STR(p.to.local, "b");
	CHECK_STR(p.to.domain, "example.org");
	CHECK(p.notify == 0 && p.orcpt == NULL);
	smtp_rcpt_params_clear(&p);

	CHECK(smtp_rcpt_parse(slice_from("to:<Postmaster>"), &ext_none, false, &p, &err) == 0);
	CHECK(p.to.local != NULL && strcasecmp(p.to.local, "postmaster") == 0);
	CHECK(p.to.domain == NULL);
	smtp_rcpt_params_clear(&p);

	CHECK(smtp_rcpt_parse(slice_from("TO: <b@example.org>"), &ext_none, false, &p, &err) == 0);
	smtp_rcpt_params_clear(&p);

	CHECK(smtp_rcpt_parse(slice_from("TO:<b@example.org> NOTIFY=NEVER"), &ext_all, false, &p,
			      &err) == 0);
	CHECK(p.notify == SMTP_NOTIFY_NEVER);
	smtp_rcpt_params_clear(&p);

	CHECK(smtp_rcpt_parse(slice_from("TO:<b@example.org> notify=success,Delay,FAILURE "
					 "ORCPT=rfc822;b+40example.org"),
			      &ext_all, false, &p, &err) == 0);
	CHECK(p.notify == (SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY | SMTP_NOTIFY_FAILURE));
	CHECK_STR(p.orcpt, "rfc822;b@example.org");
	smtp_rcpt_params_clear(&p);

	CHECK(smtp_rcpt_parse(slice_from("TO:<b@example.org> ORCPT=utf-8;b+2Bx@example.org"),
			      &ext_all, false, &p, &err) == 0);
	CHECK_STR(p.orcpt, "utf-8;b+x@example.org");
	smtp_rcpt_params_clear(&p);

	/* UTF-8 paths need SMTPUTF8 on MAIL */
	CHECK(smtp_rcpt_parse(slice_from("TO:<\xc3\xa9@example.org>"), &ext_all, true, &p,
			      &err) == 0);
	CHECK(p.to.utf8);
	smtp_rcpt_params_clear(&p);
	rcpt_err("TO:<\xc3\xa9@example.org>", &ext_all, false, 553, "5.6.7");
	rcpt_err("TO:<b@\xc3\xa9xample.org>", &ext_all, false, 553, "5.6.7");

	/* ORCPT: 500 decoded characters are fine, 501 are not */
	char buf[700];
	strcpy(buf, "TO:<b@example.org> ORCPT=rfc822;");
	size_t n = strlen(buf);
	memset(buf + n, 'o', 500);
	buf[n + 500] = '\0';
	CHECK(smtp_rcpt_parse(slice_from(buf), &ext_all, false, &p, &err) == 0);
	CHECK(p.orcpt != NULL && strlen(p.orcpt) == 7 + 500);
	smtp_rcpt_params_clear(&p);
	strcat(buf, "o");
	rcpt_err(buf, &ext_all, false, 555, "5.5.4");

	rcpt_err("TO <b@example.org>", &ext_all, false, 501, "5.5.4");
	rcpt_err("FROM:<b@example.org>", &ext_all, false, 501, "5.5.4");
	rcpt_err("TO:<>", &ext_all, false, 501, "5.1.3");
	rcpt_err("TO:b@example.org", &ext_all, false, 501, "5.1.3");
	rcpt_err("TO:<b@example.org>junk", &ext_all, false, 501, "5.1.3");
	rcpt_err("TO:<b@@example.org>", &ext_all, false, 501, "5.1.3");

	static const char *bad[] = {
		"NOTIFY=NEVER,SUCCESS", "NOTIFY=SUCCESS,NEVER", "NOTIFY=SUCCESS,,DELAY",
		"NOTIFY=SUCCESS,", "NOTIFY=,SUCCESS", "NOTIFY=FOO", "NOTIFY=", "NOTIFY",
		"NOTIFY=NEVER NOTIFY=NEVER", "ORCPT=rfc822", "ORCPT=;a@b", "ORCPT=rfc822;",
		"ORCPT=rfc822;a+0D+0Ab", "ORCPT=rfc822;a+2b", "ORCPT=rf(c;a", "ORCPT",
		"ORCPT=rfc822;a ORCPT=rfc822;b", "SIZE=10", "FOO", "BODY=8BITMIME", "-X",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char line[200];
		snprintf(line, sizeof(line), "TO:<b@example.org> %s", bad[i]);
		rcpt_err(line, &ext_all, false, 555, "5.5.4");
	}
	rcpt_err("TO:<b@example.org> NOTIFY=NEVER", &ext_none, false, 555, "5.5.4");
	rcpt_err("TO:<b@example.org> ORCPT=rfc822;b@example.org", &ext_none, false, 555, "5.5.4");
}

/* ---- body ---- */

struct body_result {
	struct buf out;
	size_t consumed;
	bool done, too_big, header_too_big, bare_lf, bare_cr, eight_bit, nul;
	size_t size;
};

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return rng_state >> 8;
}

/* Feed in, `chunk` bytes at a time (0 = random 1..17), like a session:
 * stop at done; for BDAT call finish at the end when `finish`. */
static void body_run(struct body_result *r, const char *in, size_t len, bool dot, size_t max,
		     size_t maxh, size_t chunk, bool finish)
{
	struct smtp_body b;
	size_t pos = 0;

	buf_init(&r->out, BUF_UNLIMITED);
	smtp_body_init(&b, &r->out, max, maxh, dot);
	while (pos < len && !b.done) {
		size_t n = chunk ? chunk : 1 + rng() % 17;
		if (n > len - pos)
			n = len - pos;
		size_t used = smtp_body_feed(&b, in + pos, n);
		CHECK(used <= n);
		if (used < n)
			CHECK(b.done);
		pos += used;
	}
	if (b.done)
		CHECK(smtp_body_feed(&b, "x", 1) == 0);
	if (finish)
		smtp_body_finish(&b);
	r->consumed = pos;
	r->done = b.done;
	r->too_big = b.too_big;
	r->header_too_big = b.header_too_big;
	r->bare_lf = b.bare_lf;
	r->bare_cr = b.bare_cr;
	r->eight_bit = b.eight_bit;
	r->nul = b.nul;
	r->size = b.size;
}

static bool results_equal(const struct body_result *a, const struct body_result *b)
{
	return a->out.len == b->out.len && memcmp(buf_cstr(&a->out), buf_cstr(&b->out), a->out.len) == 0 &&
	       a->consumed == b->consumed && a->done == b->done && a->too_big == b->too_big &&
	       a->header_too_big == b->header_too_big && a->bare_lf == b->bare_lf &&
	       a->bare_cr == b->bare_cr && a->eight_bit == b->eight_bit && a->nul == b->nul &&
	       a->size == b->size;
}

/* Only CRLF line ends in the output. */
static bool crlf_only(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n'))
			return false;
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			return false;
	}
	return true;
}

/* Run whole, bytewise and in random chunks; all must agree.  *r gets the
 * whole-feed result (caller frees r->out). */
static void body_all(struct body_result *r, const char *in, size_t len, bool dot, size_t max,
		     size_t maxh, bool finish)
{
	struct body_result o;

	body_run(r, in, len, dot, max, maxh, len ? len : 1, finish);
	CHECK(crlf_only(buf_cstr(&r->out), r->out.len));
	body_run(&o, in, len, dot, max, maxh, 1, finish);
	CHECK(results_equal(r, &o));
	buf_free(&o.out);
	for (int k = 0; k < 5; k++) {
		body_run(&o, in, len, dot, max, maxh, 0, finish);
		CHECK(results_equal(r, &o));
		buf_free(&o.out);
	}
}

#define BODY_OK(in, want, want_consumed, want_done) do { \
	struct body_result r_; \
	body_all(&r_, (in), sizeof(in) - 1, true, 1 << 20, 1 << 20, false); \
	CHECK(r_.out.len == sizeof(want) - 1 && memcmp(buf_cstr(&r_.out), (want), sizeof(want) - 1) == 0); \
	if (r_.out.len != sizeof(want) - 1 || memcmp(buf_cstr(&r_.out), (want), sizeof(want) - 1) != 0) \
		fprintf(stderr, "  got [%s]\n", buf_cstr(&r_.out)); \
	CHECK(r_.consumed == (size_t)(want_consumed)); \
	CHECK(r_.done == (want_done)); \
	CHECK(r_.size == sizeof(want) - 1); \
	buf_free(&r_.out); \
} while (0)

static void test_body_basic(void)
{
	BODY_OK(".\r\n", "", 3, true);
	BODY_OK("\r\n.\r\n", "\r\n", 5, true);
	BODY_OK("Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\r\n\r\nbody\r\n", 23, true);
	/* pipelined commands after the end stay unconsumed */
	BODY_OK("a\r\n.\r\nQUIT\r\n", "a\r\n", 6, true);
	BODY_OK("a\r\n.\r\nMAIL FROM:<x@y>\r\nRCPT TO:<z@y>\r\nDATA\r\n", "a\r\n", 6, true);
	/* no end yet */
	BODY_OK("a\r\nb", "a\r\nb", 4, false);
	BODY_OK("a\r\n.", "a\r\n", 4, false);
	BODY_OK("a\r\n.\r", "a\r\n", 5, false);
	BODY_OK("a\r", "a", 2, false);
	BODY_OK("", "", 0, false);
}

static void test_body_dots(void)
{
	BODY_OK("a\r\n..b\r\n..\r\n.\r\n", "a\r\n.b\r\n.\r\n", 15, true);
	BODY_OK("..\r\n.\r\n", ".\r\n", 7, true);
	BODY_OK("...\r\n.\r\n", "..\r\n", 8, true);
	/* RFC 5321 4.5.2: a leading "." with more characters is removed */
	BODY_OK(".x\r\n.\r\n", "x\r\n", 7, true);
	BODY_OK("a.\r\nb..\r\n.\r\n", "a.\r\nb..\r\n", 12, true);
	BODY_OK(". \r\n.\r\n", " \r\n", 7, true);
}

static void test_body_smuggling(void)
{
	struct body_result r;

	/* none of these end the message; the dot line becomes content */
	BODY_OK("a\n.\nMAIL FROM:<x@y>\r\n.\r\n", "a\r\n.\r\nMAIL FROM:<x@y>\r\n", 24, true);
	BODY_OK("a\r\n.\nX\r\n.\r\n", "a\r\n.\r\nX\r\n", 11, true);
	BODY_OK("a\n.\r\nX\r\n.\r\n", "a\r\n.\r\nX\r\n", 11, true);
	BODY_OK("a\r.\rX\r\n.\r\n", "a\r\n.\r\nX\r\n", 10, true);
	BODY_OK("a\r\n.\rX\r\n.\r\n", "a\r\n.\r\nX\r\n", 11, true);
	BODY_OK("a\r.\r\nX\r\n.\r\n", "a\r\n.\r\nX\r\n", 11, true);
	BODY_OK("a\n.\n", "a\r\n.\r\n", 4, false);
	BODY_OK(".\n", ".\r\n", 2, false);
	BODY_OK(".\r", "", 2, false);
	BODY_OK(".\rX", ".\r\nX", 3, false);
	BODY_OK("\n.\r\n", "\r\n.\r\n", 4, false);
	BODY_OK("a\r\r\n.\r\n", "a\r\n\r\n", 7, true);
	BODY_OK("a\r\n.\r\r\n.\r\n", "a\r\n.\r\n\r\n", 10, true);

	body_all(&r, BYTES("a\n.\nb\r\n.\r\n"), true, 1 << 20, 1 << 20, false);
	CHECK(r.bare_lf && !r.bare_cr && r.done);
	buf_free(&r.out);
	body_all(&r, BYTES("a\r.\rb\r\n.\r\n"), true, 1 << 20, 1 << 20, false);
	CHECK(!r.bare_lf && r.bare_cr && r.done);
	buf_free(&r.out);
	body_all(&r, BYTES("a\r\nb\r\n.\r\n"), true, 1 << 20, 1 << 20, false);
	CHECK(!r.bare_lf && !r.bare_cr && r.done && !r.eight_bit && !r.nul);
	buf_free(&r.out);
}

static void test_body_normalise(void)
{
	struct body_result r;

	BODY_OK("a\nb\rc\r\r\nd\r\n.\r\n", "a\r\nb\r\nc\r\n\r\nd\r\n", 14, true);
	BODY_OK("\n\n\r\r.\r\n", "\r\n\r\n\r\n\r\n.\r\n", 7, false);

	/* CR at the end of one feed, LF at the start of the next: one CRLF */
	struct buf out;
	struct smtp_body b;
	buf_init(&out, BUF_UNLIMITED);
	smtp_body_init(&b, &out, 1000, 1000, false);
	CHECK(smtp_body_feed(&b, "a\r", 2) == 2);
	CHECK(out.len == 1);
	CHECK(smtp_body_feed(&b, "\nb", 2) == 2);
	CHECK(out.len == 4 && memcmp(out.data, "a\r\nb", 4) == 0);
	CHECK(!b.bare_cr && !b.bare_lf);
	smtp_body_finish(&b);
	CHECK(out.len == 4 && !b.bare_cr);
	buf_free(&out);

	/* 8-bit and NUL are flagged, and kept */
	body_all(&r, BYTES("a\x80\r\n.\r\n"), true, 1 << 20, 1 << 20, false);
	CHECK(r.eight_bit && !r.nul && r.out.len == 4);
	buf_free(&r.out);
	body_all(&r, BYTES("a\0b\r\n.\r\n"), true, 1 << 20, 1 << 20, false);
	CHECK(!r.eight_bit && r.nul && r.out.len == 5 && memcmp(r.out.data, "a\0b\r\n", 5) == 0);
	buf_free(&r.out);
	body_all(&r, BYTES(".\0\r\n.\r\n"), true, 1 << 20, 1 << 20, false);
	CHECK(r.nul && r.out.len == 3);
	buf_free(&r.out);
}

static void test_body_bdat(void)
{
	struct body_result r;

	/* no unstuffing, no end detection */
	body_all(&r, BYTES("..x\r\n.\r\nmore"), false, 1 << 20, 1 << 20, true);
	CHECK(r.out.len == 12 && memcmp(r.out.data, "..x\r\n.\r\nmore", 12) == 0);
	CHECK(r.consumed == 12 && !r.done);
	buf_free(&r.out);

	body_all(&r, BYTES("a\nb\rc\r\n"), false, 1 << 20, 1 << 20, true);
	CHECK_STR(buf_cstr(&r.out), "a\r\nb\r\nc\r\n");
	CHECK(r.bare_lf && r.bare_cr && r.consumed == 7);
	buf_free(&r.out);

	/* a trailing CR is held until LAST flushes it */
	body_run(&r, "abc\r", 4, false, 1 << 20, 1 << 20, 4, false);
	CHECK_STR(buf_cstr(&r.out), "abc");
	CHECK(!r.bare_cr && r.consumed == 4);
	buf_free(&r.out);
	body_all(&r, BYTES("abc\r"), false, 1 << 20, 1 << 20, true);
	CHECK_STR(buf_cstr(&r.out), "abc\r\n");
	CHECK(r.bare_cr && r.size == 5);
	buf_free(&r.out);
	body_all(&r, BYTES("\r"), false, 1 << 20, 1 << 20, true);
	CHECK_STR(buf_cstr(&r.out), "\r\n");
	buf_free(&r.out);

	/* finish on a clean state changes nothing */
	body_all(&r, BYTES("x\r\n"), false, 1 << 20, 1 << 20, true);
	CHECK_STR(buf_cstr(&r.out), "x\r\n");
	CHECK(!r.bare_cr);
	buf_free(&r.out);
}

static void test_body_limits(void)
{
	struct body_result r;

	/* exactly at the limit */
	body_all(&r, BYTES("01234567\r\n.\r\n"), true, 10, 1 << 20, false);
	CHECK(!r.too_big && r.size == 10 && r.out.len == 10 && r.done);
	buf_free(&r.out);
	/* one over: flagged, appending stops, the end is still found */
	body_all(&r, BYTES("012345678\r\n.\r\nQUIT\r\n"), true, 10, 1 << 20, false);
	CHECK(r.too_big && r.size == 11 && r.out.len == 0 && r.done && r.consumed == 14);
	buf_free(&r.out);
	body_all(&r, BYTES("0123456789012345678901234567890\r\n.\r\n"), true, 10, 1 << 20, false);
	CHECK(r.too_big && r.size == 33 && r.out.len == 0 && r.done);
	buf_free(&r.out);
	/* a buffer's own maximum also counts as too big */
	struct buf small;
	struct smtp_body b;
	buf_init(&small, 4);
	smtp_body_init(&b, &small, 100, 100, true);
	CHECK(smtp_body_feed(&b, "abcdef\r\n.\r\n", 11) == 11);
	CHECK(b.too_big && b.done && small.len == 0 && b.size == 8);
	buf_free(&small);

	/* header section */
	body_all(&r, BYTES("Subject: hello\r\n\r\nbody\r\n.\r\n"), true, 1 << 20, 10, false);
	CHECK(r.header_too_big && !r.too_big);
	buf_free(&r.out);
	body_all(&r, BYTES("A: b\r\n\r\n0123456789012345678901234567890\r\n.\r\n"), true, 1 << 20, 10,
		 false);
	CHECK(!r.header_too_big);
	buf_free(&r.out);
	/* the header counted includes its line ends (6 + 6 bytes) */
	body_all(&r, BYTES("A: b\r\nC: d\r\n\r\nx\r\n.\r\n"), true, 1 << 20, 12, false);
	CHECK(!r.header_too_big);
	buf_free(&r.out);
	body_all(&r, BYTES("A: b\r\nC: d\r\n\r\nx\r\n.\r\n"), true, 1 << 20, 11, false);
	CHECK(r.header_too_big);
	buf_free(&r.out);
	/* a bare LF empty line also ends the header */
	body_all(&r, BYTES("A: b\n\nxxxxxxxxxxxxxxxxxxxx\r\n.\r\n"), true, 1 << 20, 10, false);
	CHECK(!r.header_too_big && r.bare_lf);
	buf_free(&r.out);
	/* no empty line at all: everything is header */
	body_all(&r, BYTES("A: b\r\nxxxxxxxxxxxxxxxxxxxx\r\n.\r\n"), true, 1 << 20, 10, false);
	CHECK(r.header_too_big);
	buf_free(&r.out);
}

/* A line-based reference model of the body rules, independent of the
 * state machine: split into lines by CRLF / LF / CR, then apply them. */
static void body_reference(const char *in, size_t len, bool dot, struct buf *out,
			   size_t *consumed_r, bool *done_r)
{
	size_t i = 0;
	bool prev_crlf = true;

	*done_r = false;
	while (i < len) {
		size_t start = i, end;
		int term = 0;   /* 0 none, 1 CRLF, 2 LF, 3 CR */

		while (i < len && in[i] != '\r' && in[i] != '\n')
			i++;
		end = i;
		if (i < len && in[i] == '\n') {
			term = 2;
			i++;
		} else if (i < len && in[i] == '\r') {
			if (i + 1 < len && in[i + 1] == '\n') {
				term = 1;
				i += 2;
			} else {
				term = 3;
				i++;
			}
		}
		size_t ll = end - start;
		const char *l = in + start;
		if (dot && ll == 1 && l[0] == '.' && prev_crlf && term == 1) {
			*done_r = true;
			*consumed_r = i;
			return;
		}
		if (dot && ll > 1 && l[0] == '.') {
			l++;
			ll--;
		}
		buf_append(out, l, ll);
		if (term != 0)
			buf_append(out, "\r\n", 2);
		prev_crlf = term == 1;
	}
	*consumed_r = len;
}

static void test_body_reference(void)
{
	static const char alphabet[] = { 'a', '.', '.', '\r', '\r', '\n', '\n', 'b', '\0', '\x80' };
	char in[300];

	for (int iter = 0; iter < 3000; iter++) {
		size_t len = rng() % sizeof(in);
		bool dot = iter % 4 != 0;

		for (size_t i = 0; i < len; i++)
			in[i] = alphabet[rng() % sizeof(alphabet)];
		/* make real ends likely */
		if (dot && len > 5 && rng() % 2)
			memcpy(in + rng() % (len - 5), "\r\n.\r\n", 5);

		struct body_result r;
		struct buf ref;
		size_t ref_consumed;
		bool ref_done;

		buf_init(&ref, BUF_UNLIMITED);
		body_reference(in, len, dot, &ref, &ref_consumed, &ref_done);
		/* finish flushes what is held when the input stops early */
		body_all(&r, in, len, dot, SIZE_MAX, SIZE_MAX, true);
		bool same = r.out.len == ref.len && memcmp(buf_cstr(&r.out), buf_cstr(&ref), ref.len) == 0 &&
			    r.consumed == ref_consumed && r.done == ref_done && r.size == ref.len;
		CHECK(same);
		if (!same) {
			fprintf(stderr, "  reference mismatch (iter %d, len %zu, dot %d)\n", iter, len, dot);
			buf_free(&r.out);
			buf_free(&ref);
			break;
		}
		buf_free(&r.out);
		buf_free(&ref);
	}
}

int main(void)
{
	RUN(test_line_find);
	RUN(test_line_limit);
	RUN(test_line_bytewise);
	RUN(test_command_verbs);
	RUN(test_command_args);
	RUN(test_command_controls);
	RUN(test_bdat);
	RUN(test_xtext);
	RUN(test_mail_path);
	RUN(test_mail_params);
	RUN(test_mail_param_errors);
	RUN(test_mail_requiretls);
	RUN(test_rcpt);
	RUN(test_body_basic);
	RUN(test_body_dots);
	RUN(test_body_smuggling);
	RUN(test_body_normalise);
	RUN(test_body_bdat);
	RUN(test_body_limits);
	RUN(test_body_reference);
	return unit_summary("smtp-parse");
}
