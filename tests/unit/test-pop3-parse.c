/* pop3/parse: line finding, command splitting, numbers, and the RETR/TOP
 * byte-stuffer.  Every line and stuffer case runs whole and fed one byte
 * at a time (every resume point) and must give the same result; a random
 * differential test checks the stuffer against a simple reference that
 * splits the message into lines first. */
#include "unit.h"
#include "pop3/parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) ((struct slice){ (lit), sizeof(lit) - 1 })

/* ---- pop3_line_find ---- */

static void test_line_find(void)
{
	struct slice line;
	size_t used;

	CHECK(pop3_line_find("STAT\r\n", 6, 2048, &line, &used) == POP3_LINE_OK);
	CHECK(line.len == 4 && memcmp(line.p, "STAT", 4) == 0 && used == 6);
	CHECK(pop3_line_find("STAT\n", 5, 2048, &line, &used) == POP3_LINE_OK);
	CHECK(line.len == 4 && used == 5);
	CHECK(pop3_line_find("\r\n", 2, 2048, &line, &used) == POP3_LINE_OK);
	CHECK(line.len == 0 && used == 2);
	CHECK(pop3_line_find("STAT", 4, 2048, &line, &used) == POP3_LINE_NEED_MORE);
	CHECK(pop3_line_find("STAT\r", 5, 2048, &line, &used) == POP3_LINE_NEED_MORE);
	CHECK(pop3_line_find("", 0, 2048, &line, &used) == POP3_LINE_NEED_MORE);
	/* two lines: the first only */
	CHECK(pop3_line_find("NOOP\r\nQUIT\r\n", 12, 2048, &line, &used) == POP3_LINE_OK);
	CHECK(line.len == 4 && used == 6);
	/* too long: discard through the LF when present, else all */
	CHECK(pop3_line_find("AAAAAAAAAA\r\nX", 13, 8, &line, &used) == POP3_LINE_TOO_LONG);
	CHECK(used == 12);
	CHECK(pop3_line_find("AAAAAAAAAA", 10, 8, &line, &used) == POP3_LINE_TOO_LONG);
	CHECK(used == 10);
	/* exactly max with its CRLF fits */
	CHECK(pop3_line_find("AAAAAA\r\n", 8, 8, &line, &used) == POP3_LINE_OK);
	CHECK(line.len == 6);

	/* byte by byte: NEED_MORE until the LF arrives */
	const char *in = "RETR 1\r\n";
	for (size_t n = 1; n <= strlen(in); n++) {
		enum pop3_line_status st = pop3_line_find(in, n, 2048, &line, &used);
		CHECK(st == (n == strlen(in) ? POP3_LINE_OK : POP3_LINE_NEED_MORE));
	}
}

/* ---- pop3_command_parse ---- */

static void test_command(void)
{
	struct pop3_command c;
	const char *err = NULL;

	CHECK(pop3_command_parse(S("STAT"), &c, &err) == 0);
	CHECK(c.verb == POP3_VERB_STAT && c.argc == 0);
	CHECK(pop3_command_parse(S("retr 12"), &c, &err) == 0);
	CHECK(c.verb == POP3_VERB_RETR && c.argc == 1 && slice_eq(c.args[0], S("12")));
	CHECK(pop3_command_parse(S("TOP 1 10"), &c, &err) == 0);
	CHECK(c.verb == POP3_VERB_TOP && c.argc == 2 && slice_eq(c.args[1], S("10")));
	CHECK(pop3_command_parse(S("Top  1   10  "), &c, &err) == 0);
	CHECK(c.verb == POP3_VERB_TOP && c.argc == 2 && slice_eq(c.args[0], S("1")));
	CHECK(pop3_command_parse(S("TOP 1 2 3"), &c, &err) < 0 && err != NULL);
	/* PASS keeps spaces in the password */
	CHECK(pop3_command_parse(S("PASS my secret  pw "), &c, &err) == 0);
	CHECK(c.verb == POP3_VERB_PASS && slice_eq(c.rest, S("my secret  pw ")));
	CHECK(pop3_command_parse(S("AUTH PLAIN AGEAYg=="), &c, &err) == 0);
	CHECK(c.verb == POP3_VERB_AUTH && c.argc == 2 && slice_eq(c.args[0], S("PLAIN")));
	CHECK(pop3_command_parse(S("AUTH"), &c, &err) == 0 && c.argc == 0);
	CHECK(pop3_command_parse(S("CAPA"), &c, &err) == 0 && c.verb == POP3_VERB_CAPA);
	CHECK(pop3_command_parse(S("stls"), &c, &err) == 0 && c.verb == POP3_VERB_STLS);
	CHECK(pop3_command_parse(S("UIDL"), &c, &err) == 0 && c.verb == POP3_VERB_UIDL);
	/* unknown 4-letter keyword parses (the session answers -ERR); odd lengths do not */
	CHECK(pop3_command_parse(S("XYZW 1"), &c, &err) == 0 && c.verb == POP3_VERB_UNKNOWN);
	CHECK(pop3_command_parse(S("XYZWV"), &c, &err) < 0);
	CHECK(pop3_command_parse(S("X"), &c, &err) < 0);
	CHECK(pop3_command_parse(S(""), &c, &err) < 0);
	CHECK(pop3_command_parse(S(" STAT"), &c, &err) < 0);
	/* control characters */
	CHECK(pop3_command_parse((struct slice){ "RETR\0 1", 7 }, &c, &err) < 0);
	CHECK(pop3_command_parse(S("RETR 1\r"), &c, &err) < 0);
	CHECK(pop3_command_parse(S("RETR \x7f"), &c, &err) < 0);
	/* HTTP */
	CHECK(pop3_command_parse(S("GET / HTTP/1.0"), &c, &err) == 0 && c.verb == POP3_VERB_HTTP);
	CHECK(pop3_command_parse(S("GET"), &c, &err) == 0 && c.verb == POP3_VERB_UNKNOWN);
	/* arguments point into the line */
	struct slice l = S("DELE 7");
	CHECK(pop3_command_parse(l, &c, &err) == 0 && c.args[0].p == l.p + 5);
}

static void test_number(void)
{
	uint32_t n = 99;

	CHECK(pop3_number_parse(S("1"), UINT32_MAX, &n) == 0 && n == 1);
	CHECK(pop3_number_parse(S("0"), UINT32_MAX, &n) == 0 && n == 0);
	CHECK(pop3_number_parse(S("4294967295"), UINT32_MAX, &n) == 0 && n == 4294967295u);
	CHECK(pop3_number_parse(S("4294967296"), UINT32_MAX, &n) < 0);
	CHECK(pop3_number_parse(S("99999999999"), UINT32_MAX, &n) < 0);
	CHECK(pop3_number_parse(S("11"), 10, &n) < 0);
	CHECK(pop3_number_parse(S("-1"), UINT32_MAX, &n) < 0);
	CHECK(pop3_number_parse(S("+1"), UINT32_MAX, &n) < 0);
	CHECK(pop3_number_parse(S("1a"), UINT32_MAX, &n) < 0);
	CHECK(pop3_number_parse(S(""), UINT32_MAX, &n) < 0);
}

/* ---- the stuffer ---- */

static void emit_buf(void *ctx, const char *p, size_t len)
{
	buf_append(ctx, p, len);
}

/* Stuff msg whole, or in pieces of step bytes; returns malloc'd output. */
static char *stuff(const char *msg, size_t len, bool top, uint32_t lines, size_t step,
		   size_t *out_len)
{
	struct pop3_stuff st;
	struct buf out;

	buf_init(&out, BUF_UNLIMITED);
	pop3_stuff_init(&st, top, lines);
	for (size_t i = 0; i < len && !st.done;) {
		size_t n = step == 0 || len - i < step ? len - i : step;
		size_t used = pop3_stuff_feed(&st, msg + i, n, emit_buf, &out);
		CHECK(used == n || st.done);
		i += used;
	}
	pop3_stuff_finish(&st, emit_buf, &out);
	*out_len = out.len;
	if (out.data == NULL)
		return xstrdup("");
	return out.data;
}

/* Whole and byte by byte give want. */
static void check_stuff(const char *msg, bool top, uint32_t lines, const char *want)
{
	for (size_t step = 0; step <= 3; step++) {
		size_t n;
		char *got = stuff(msg, strlen(msg), top, lines, step, &n);
		if (n != strlen(want) || memcmp(got, want, n) != 0) {
			fprintf(stderr, "  stuff(%s, step %zu): got [%s]\n  want [%s]\n", msg, step,
				got, want);
			CHECK(!"stuffed output");
		}
		free(got);
	}
}

static void test_stuff(void)
{
	check_stuff("A: b\r\n\r\nbody\r\n", false, 0, "A: b\r\n\r\nbody\r\n.\r\n");
	check_stuff(".\r\n", false, 0, "..\r\n.\r\n");
	check_stuff("A: b\r\n\r\n.hidden\r\nx.y\r\n..\r\n", false, 0,
		    "A: b\r\n\r\n..hidden\r\nx.y\r\n...\r\n.\r\n");
	/* no final CRLF: one is added before the terminator */
	check_stuff("A: b\r\n\r\nend", false, 0, "A: b\r\n\r\nend\r\n.\r\n");
	check_stuff("A: b\r\n\r\nend\r", false, 0, "A: b\r\n\r\nend\r\n.\r\n");
	check_stuff("", false, 0, ".\r\n");
	/* TOP */
	check_stuff("A: b\r\nC: d\r\n\r\n1\r\n2\r\n3\r\n", true, 0, "A: b\r\nC: d\r\n\r\n.\r\n");
	check_stuff("A: b\r\n\r\n1\r\n.2\r\n3\r\n", true, 2, "A: b\r\n\r\n1\r\n..2\r\n.\r\n");
	check_stuff("A: b\r\n\r\n1\r\n", true, 5, "A: b\r\n\r\n1\r\n.\r\n");
	/* header only, no blank line: everything */
	check_stuff("A: b\r\n", true, 0, "A: b\r\n.\r\n");
	/* an LF-only blank line also ends the header */
	check_stuff("A: b\n\n1\n2\n", true, 1, "A: b\n\n1\n.\r\n");
	/* a line of just CR plus more text is not the blank line */
	check_stuff("A: b\r\n\rx\r\n\r\n1\r\n2\r\n", true, 1, "A: b\r\n\rx\r\n\r\n1\r\n.\r\n");
}

/* Reference: split into lines, stuff each, count TOP lines. */
static char *stuff_ref(const char *msg, size_t len, bool top, uint32_t lines, size_t *out_len)
{
	struct buf out;
	size_t i = 0;
	bool in_body = false, done = false;

	buf_init(&out, BUF_UNLIMITED);
	while (i < len && !done) {
		const char *lf = memchr(msg + i, '\n', len - i);
		size_t end = lf ? (size_t)(lf - msg) + 1 : len;
		size_t ll = end - i;
		if (msg[i] == '.')
			buf_append(&out, ".", 1);
		buf_append(&out, msg + i, ll);
		if (lf != NULL) {
			bool empty = ll == 1 || (ll == 2 && msg[i] == '\r');
			if (!in_body) {
				if (empty) {
					in_body = true;
					if (top && lines == 0)
						done = true;
				}
			} else if (top && --lines == 0) {
				done = true;
			}
		}
		i = end;
	}
	if (out.len > 0 && !done && out.data[out.len - 1] != '\n')
		buf_append_str(&out, out.data[out.len - 1] == '\r' ? "\n" : "\r\n");
	buf_append_str(&out, ".\r\n");
	*out_len = out.len;
	return buf_steal(&out);
}

static void test_stuff_random(void)
{
	static const char alphabet[] = { '.', '\r', '\n', 'a', ' ' };
	unsigned seed = 12345;
	int bad = 0;

	for (int iter = 0; iter < 3000 && bad < 3; iter++) {
		char msg[64];
		size_t len;
		seed = seed * 1103515245 + 12345;
		len = (seed >> 16) % sizeof(msg);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245 + 12345;
			msg[i] = alphabet[(seed >> 16) % sizeof(alphabet)];
		}
		seed = seed * 1103515245 + 12345;
		bool top = (seed >> 16) & 1;
		uint32_t lines = (seed >> 17) % 4;
		size_t rn, n1, n2;
		char *ref = stuff_ref(msg, len, top, lines, &rn);
		char *whole = stuff(msg, len, top, lines, 0, &n1);
		char *bytes = stuff(msg, len, top, lines, 1, &n2);
		if (rn != n1 || memcmp(ref, whole, rn) != 0 || rn != n2 ||
		    memcmp(ref, bytes, rn) != 0) {
			bad++;
			fprintf(stderr, "  differential mismatch at iteration %d\n", iter);
		}
		free(ref);
		free(whole);
		free(bytes);
	}
	CHECK(bad == 0);
}

int main(void)
{
	RUN(test_line_find);
	RUN(test_command);
	RUN(test_number);
	RUN(test_stuff);
	RUN(test_stuff_random);
	return unit_summary("pop3-parse");
}
