/* Unit tests of `tern sendmail`'s message handling (src/cli/sendmail-message.c):
 * the stdin reader (line ends, the "." line, -i, NUL, size limit; every
 * input also fed one byte at a time), recipient lists (qualification,
 * duplicates, bad addresses), header completion (Date, Message-ID, From,
 * Bcc removal, -t extraction, a missing header/body separator), the uid to
 * address mapping and the sendmail config group. */
#include "unit.h"
#include "cli/sendmail.h"
#include "lib/buf.h"
#include "lib/config.h"

#include <stdlib.h>
#include <unistd.h>

/* Read in whole, then again one byte at a time: both must agree. */
static int read_all(const char *in, size_t len, bool dot_ends, size_t max, char **out_r,
		    const char **error_r)
{
	struct buf a, b;
	struct sendmail_input ia, ib;
	int ra, rb;

	buf_init(&a, max);
	buf_init(&b, max);
	sendmail_input_init(&ia, &a, dot_ends);
	sendmail_input_init(&ib, &b, dot_ends);
	ra = sendmail_input_feed(&ia, in, len);
	if (ra == 0)
		ra = sendmail_input_finish(&ia);
	rb = 0;
	for (size_t i = 0; i < len && rb == 0 && !ib.done; i++)
		rb = sendmail_input_feed(&ib, in + i, 1);
	if (rb == 0)
		rb = sendmail_input_finish(&ib);
	CHECK(ra == rb);
	CHECK(a.len == b.len && memcmp(buf_cstr(&a), buf_cstr(&b), a.len) == 0);
	*out_r = ra == 0 ? xstrdup(buf_cstr(&a)) : NULL;
	*error_r = ia.error;
	buf_free(&a);
	buf_free(&b);
	return ra;
}

static void test_input_line_ends(void)
{
	char *out;
	const char *err;
	static const char in[] = "A: 1\n\rB: 2\r\n\r\nbody\rmore\nlast";

	CHECK(read_all(in, sizeof(in) - 1, true, 1 << 20, &out, &err) == 0);
	CHECK_STR(out, "A: 1\r\n\r\nB: 2\r\n\r\nbody\r\nmore\r\nlast\r\n");
	free(out);
}

static void test_input_dot(void)
{
	char *out;
	const char *err;
	static const char in[] = "S: x\n\none\n..two\n.\nafter\n";

	/* without -i the "." line ends the message */
	CHECK(read_all(in, sizeof(in) - 1, true, 1 << 20, &out, &err) == 0);
	CHECK_STR(out, "S: x\r\n\r\none\r\n..two\r\n");
	free(out);
	/* with -i it is text */
	CHECK(read_all(in, sizeof(in) - 1, false, 1 << 20, &out, &err) == 0);
	CHECK_STR(out, "S: x\r\n\r\none\r\n..two\r\n.\r\nafter\r\n");
	free(out);
	/* ".x" or " ." are not the end; a final "." with CRLF is */
	static const char in2[] = ".x\r\n .\r\n.\r\n";
	CHECK(read_all(in2, sizeof(in2) - 1, true, 1 << 20, &out, &err) == 0);
	CHECK_STR(out, ".x\r\n .\r\n");
	free(out);
	/* a "." at the very end without a line break also ends it */
	CHECK(read_all("a\n.", 3, true, 1 << 20, &out, &err) == 0);
	CHECK_STR(out, "a\r\n");
	free(out);
}

static void test_input_errors(void)
{
	char *out;
	const char *err = NULL;
	static const char nul[] = "a\nb\0c\n";

	CHECK(read_all(nul, sizeof(nul) - 1, true, 1 << 20, &out, &err) < 0);
	CHECK(out == NULL && err != NULL && strstr(err, "NUL") != NULL);
	CHECK(read_all("0123456789\n", 11, true, 8, &out, &err) < 0);
	CHECK(err != NULL && strstr(err, "size limit") != NULL);
	/* exactly at the limit is fine */
	CHECK(read_all("012345\n", 7, true, 8, &out, &err) == 0);
	CHECK_STR(out, "012345\r\n");
	free(out);
}

static void test_rcpts(void)
{
	struct sendmail_rcpts r = { 0 };
	const char *err = NULL;

	CHECK(sendmail_rcpts_add(&r, "root", "example.org", &err) == 1);
	CHECK(sendmail_rcpts_add(&r, "Ann <Ann@Example.ORG>, bob@example.org", "x.test", &err) == 2);
	CHECK(sendmail_rcpts_add(&r, "ROOT@example.org", "x.test", &err) == 1);  /* duplicate */
	CHECK(sendmail_rcpts_add(&r, "www-data, carol@b.test", "example.org", &err) == 2);
	CHECK(sendmail_rcpts_add(&r, "undisclosed-recipients:;", "x.test", &err) == 0);
	CHECK(r.count == 5);
	if (r.count == 5) {
		CHECK_STR(r.v[0], "root@example.org");
		CHECK_STR(r.v[1], "Ann@example.org");
		CHECK_STR(r.v[2], "bob@example.org");
		CHECK_STR(r.v[3], "www-data@example.org");
		CHECK_STR(r.v[4], "carol@b.test");
	}
	CHECK(sendmail_rcpts_add(&r, "not an address@@x", "x.test", &err) < 0);
	CHECK(err != NULL && strstr(err, "not a valid address") != NULL);
	CHECK(sendmail_rcpts_add(&r, "  ", "x.test", &err) < 0);
	CHECK(sendmail_rcpts_add(&r, "a@b.test, bad address", "x.test", &err) < 0);
	CHECK(sendmail_rcpts_add(&r, "a@b.test\r\nRCPT TO:<x@y>", "x.test", &err) < 0);
	CHECK(r.count == 5);   /* nothing of a failed list was added */
	sendmail_rcpts_free(&r);
	CHECK(r.count == 0 && r.v == NULL);
}

static char *prepare(const struct sendmail_prep *p, const char *msg, struct sendmail_rcpts *r,
		     int *ret_r)
{
	struct buf out;
	const char *err = NULL;

	buf_init(&out, 1 << 20);
	*ret_r = sendmail_prepare(p, msg, strlen(msg), &out, r, &err);
	char *s = xstrdup(buf_cstr(&out));
	buf_free(&out);
	return s;
}

static void test_prepare_adds_fields(void)
{
	struct sendmail_prep p = { .from = "web@example.org", .full_name = "Web \"Server\"",
				   .hostname = "mail.example.org", .default_domain = "example.org",
				   .now = 1700000000 };
	struct sendmail_rcpts r = { 0 };
	int ret;
	char *s = prepare(&p, "Subject: hi\r\n\r\nbody\r\n", &r, &ret);

	CHECK(ret == 0);
	CHECK(strncmp(s, "Subject: hi\r\nDate: ", 19) == 0);
	CHECK(strstr(s, "\r\nMessage-ID: <") != NULL && strstr(s, "@mail.example.org>\r\n") != NULL);
	CHECK(strstr(s, "\r\nFrom: \"Web \\\"Server\\\"\" <web@example.org>\r\n\r\nbody\r\n") != NULL);
	CHECK(r.count == 0);   /* no -t */
	free(s);

	/* present fields are kept, not doubled */
	s = prepare(&p, "From: a@b.test\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
		    "Message-Id: <x@y>\r\n\r\nbody\r\n", &r, &ret);
	CHECK(ret == 0);
	CHECK_STR(s, "From: a@b.test\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
		  "Message-Id: <x@y>\r\n\r\nbody\r\n");
	free(s);

	/* non-ASCII -F: an RFC 2047 word */
	p.full_name = "Ren\xc3\xa9";
	s = prepare(&p, "\r\nbody\r\n", &r, &ret);
	CHECK(ret == 0 && strstr(s, "From: =?UTF-8?B?UmVuw6k=?= <web@example.org>\r\n") != NULL);
	CHECK(strstr(s, "\r\n\r\nbody\r\n") != NULL);
	free(s);
}

static void test_prepare_extract_and_bcc(void)
{
	struct sendmail_prep p = { .from = "web@example.org", .hostname = "h.test",
				   .default_domain = "example.org", .extract = true, .now = 1 };
	struct sendmail_rcpts r = { 0 };
	int ret;
	char *s = prepare(&p, "From 1@2 Sat Jan  3 01:05:34 1996\r\n"
			  "To: A <a@x.test>,\r\n b@x.test\r\nCc: root\r\nBCC: secret@x.test,\r\n"
			  "\tother@x.test\r\nSubject: s\r\n\r\nBcc: stays in the body\r\n", &r, &ret);

	CHECK(ret == 0);
	CHECK(r.count == 5);
	if (r.count == 5) {
		CHECK_STR(r.v[0], "a@x.test");
		CHECK_STR(r.v[1], "b@x.test");
		CHECK_STR(r.v[2], "root@example.org");
		CHECK_STR(r.v[3], "secret@x.test");
		CHECK_STR(r.v[4], "other@x.test");
	}
	CHECK(strncmp(s, "To: A <a@x.test>,\r\n b@x.test\r\nCc: root\r\nSubject: s\r\n", 52) == 0);
	CHECK(strstr(s, "secret") == NULL && strstr(s, "other@") == NULL);
	CHECK(strstr(s, "From 1@2") == NULL);
	CHECK(strstr(s, "\r\n\r\nBcc: stays in the body\r\n") != NULL);
	free(s);
	sendmail_rcpts_free(&r);

	/* a bad To: fails with the field named */
	struct buf out;
	const char *err = NULL;
	buf_init(&out, 1 << 20);
	static const char bad[] = "To: x@@y\r\n\r\nb\r\n";
	CHECK(sendmail_prepare(&p, bad, sizeof(bad) - 1, &out, &r, &err) < 0);
	CHECK(err != NULL && strncmp(err, "To header", 9) == 0);
	buf_free(&out);
	sendmail_rcpts_free(&r);
}

static void test_prepare_no_separator(void)
{
	struct sendmail_prep p = { .from = "u@h.test", .hostname = "h.test",
				   .default_domain = "h.test", .now = 1 };
	struct sendmail_rcpts r = { 0 };
	int ret;
	/* plain text with no header: all of it is body */
	char *s = prepare(&p, "just text\r\nmore\r\n", &r, &ret);
	CHECK(ret == 0);
	CHECK(strstr(s, "From: <u@h.test>\r\n\r\njust text\r\nmore\r\n") != NULL);
	free(s);
	/* a header, then body text without the empty line */
	s = prepare(&p, "Subject: x\r\nthis is body\r\n", &r, &ret);
	CHECK(ret == 0);
	CHECK(strncmp(s, "Subject: x\r\n", 12) == 0);
	CHECK(strstr(s, ">\r\n\r\nthis is body\r\n") != NULL);
	free(s);
	/* empty message */
	s = prepare(&p, "", &r, &ret);
	CHECK(ret == 0 && strstr(s, "From: <u@h.test>\r\n\r\n") != NULL);
	free(s);
}

static void test_config_and_mapping(void)
{
	char *error = NULL;
	struct config *cfg = config_parse_string(
		"hostname = \"mail.h.test\";\n"
		"sendmail = { default_domain = \"h.test\";\n"
		"  users = ( { uid = \"nosuchuser-xyz\"; address = \"web@h.test\"; },\n"
		"            { uid = 4242; address = \"num@h.test\"; } ); };\n", "t.conf", &error);
	char *login = NULL, *addr;
	bool configured;

	CHECK(cfg != NULL);
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", error);
		free(error);
		return;
	}
	CHECK(cfg->sendmail.user_count == 2);
	CHECK_STR(cfg->sendmail.users[1].uid, "4242");
	CHECK(cfg->sendmail.socket != NULL && strstr(cfg->sendmail.socket, "/run/submit.sock"));
	CHECK_STR(sendmail_default_domain(cfg), "h.test");
	addr = sendmail_address_for_uid(cfg, 4242, &login, &configured);
	CHECK_STR(addr, "num@h.test");
	CHECK(configured);
	free(addr);
	free(login);
	/* root is in every passwd: not configured, so LOGIN@default_domain */
	addr = sendmail_address_for_uid(cfg, 0, &login, &configured);
	CHECK_STR(addr, "root@h.test");
	CHECK_STR(login, "root");
	CHECK(!configured);
	free(addr);
	free(login);
	config_free(&cfg);

	/* bad entries name the problem */
	static const char *const bad[] = {
		"hostname = \"h\"; sendmail = { users = ( { uid = \"a b\"; address = \"x@y.z\"; } ); };",
		"hostname = \"h\"; sendmail = { users = ( { uid = \"a\"; address = \"nodomain\"; } ); };",
		"hostname = \"h\"; sendmail = { users = ( { uid = \"a\"; } ); };",
		"hostname = \"h\"; sendmail = { users = ( { uid = \"a\"; address = \"x@y.z\"; z = 1; } ); };",
		"hostname = \"h\"; sendmail = { default_domain = \"bad domain\"; };",
		"hostname = \"h\"; sendmail = { socket = 5; };",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg = config_parse_string(bad[i], "t.conf", &error);
		CHECK(cfg == NULL && error != NULL && strstr(error, "sendmail") != NULL);
		if (cfg != NULL)
			config_free(&cfg);
		free(error);
		error = NULL;
	}
	/* "" turns the socket off */
	cfg = config_parse_string("hostname = \"h\"; sendmail = { socket = \"\"; };", "t.conf", &error);
	CHECK(cfg != NULL && cfg->sendmail.socket != NULL && cfg->sendmail.socket[0] == '\0');
	if (cfg != NULL)
		config_free(&cfg);
	free(error);
}

int main(void)
{
	RUN(test_input_line_ends);
	RUN(test_input_dot);
	RUN(test_input_errors);
	RUN(test_rcpts);
	RUN(test_prepare_adds_fields);
	RUN(test_prepare_extract_and_bcc);
	RUN(test_prepare_no_separator);
	RUN(test_config_and_mapping);
	return unit_summary("sendmail");
}
