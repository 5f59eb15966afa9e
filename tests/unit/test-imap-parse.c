/* imap/parse: the command reader (whole input, one byte at a time and in
 * random chunks must give the same transcript), literals and their limits,
 * recovery after errors, line mode (IDLE DONE), and the typed parsers for
 * FETCH, STORE, STATUS, LIST, SELECT, APPEND, dates and mailbox names. */
#include "unit.h"
#include "imap/parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) ((struct slice){ (lit), sizeof(lit) - 1 })

static const struct imap_reader_limits lim_default = {
	IMAP_MAX_LINE, 1024 * 1024, IMAP_MAX_ARGS, IMAP_MAX_DEPTH, false,
};

/* ---- transcript of a reader run ---- */

static void dump_args(struct buf *out, const struct imap_arg *args, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct imap_arg *a = &args[i];

		if (i > 0 && a->type != IMAP_ARG_SECTION)
			buf_append_str(out, " ");
		switch (a->type) {
		case IMAP_ARG_ATOM:
			buf_printf(out, "A:%.*s", (int)a->str.len, a->str.p);
			break;
		case IMAP_ARG_NUMBER:
			buf_printf(out, "N:%llu", (unsigned long long)a->num);
			break;
		case IMAP_ARG_QUOTED:
			buf_printf(out, "Q:\"%.*s\"", (int)a->str.len, a->str.p);
			break;
		case IMAP_ARG_LITERAL:
			buf_printf(out, "L%s{%.*s}", a->literal8 ? "8" : "", (int)a->str.len, a->str.p);
			break;
		case IMAP_ARG_NIL:
			buf_append_str(out, "NIL");
			break;
		case IMAP_ARG_LIST:
			buf_append_str(out, "(");
			dump_args(out, a->children, a->count);
			buf_append_str(out, ")");
			break;
		case IMAP_ARG_SECTION:
			buf_append_str(out, "[");
			dump_args(out, a->children, a->count);
			buf_append_str(out, "]");
			if (a->has_partial)
				buf_printf(out, "<%.*s>", (int)a->partial.len, a->partial.p);
			break;
		}
	}
}

static void dump_result(struct buf *out, const struct imap_read_result *res)
{
	const struct imap_command *c = &res->cmd;

	switch (res->status) {
	case IMAP_READ_NEED_MORE:
		return;
	case IMAP_READ_NEED_CONTINUATION:
		buf_printf(out, "CONT %.*s %llu%s\n", (int)c->tag.len, c->tag.p,
			   (unsigned long long)res->literal_size, res->literal8 ? " lit8" : "");
		return;
	case IMAP_READ_ERROR:
		buf_printf(out, "ERR %.*s %d %s\n", (int)c->tag.len, c->tag.p, (int)res->error.kind,
			   res->error.text);
		return;
	case IMAP_READ_OK:
		if (c->cmd == IMAP_CMD_LINE || c->cmd == IMAP_CMD_DONE) {
			buf_printf(out, "%s \"%.*s\"\n", c->cmd == IMAP_CMD_DONE ? "DONE" : "LINE",
				   (int)c->line.len, c->line.p);
			return;
		}
		buf_printf(out, "OK %.*s %s%.*s", (int)c->tag.len, c->tag.p, c->uid ? "UID " : "",
			   (int)c->name.len, c->name.p);
		if (c->cmd == IMAP_CMD_UNKNOWN)
			buf_append_str(out, "?");
		if (c->nargs > 0) {
			buf_append_str(out, " ");
			dump_args(out, c->args, c->nargs);
		}
		buf_append_str(out, "\n");
		return;
	}
}

/* Run the reader over input with chunks of `chunk` bytes (0 = random sizes
 * from a fixed seed).  A CONTINUATION is answered by carrying on, unless
 * refuse is set.  After an IDLE command the reader is put in line mode. */
static char *run(const struct imap_reader_limits *lim, const char *input, size_t len,
		 size_t chunk, bool refuse)
{
	struct imap_reader *r = imap_reader_create(lim);
	struct buf out;
	size_t pos = 0;
	unsigned seed = 12345;

	buf_init(&out, BUF_UNLIMITED);
	while (pos < len) {
		size_t n = chunk;
		struct imap_read_result res;

		if (n == 0) {
			seed = seed * 1103515245 + 12345;
			n = 1 + (seed >> 16) % 7;
		}
		if (n > len - pos)
			n = len - pos;
		imap_reader_feed(r, input + pos, n, &res);
		CHECK(res.consumed <= n);
		if (res.status == IMAP_READ_NEED_MORE)
			CHECK(res.consumed == n);
		pos += res.consumed;
		dump_result(&out, &res);
		if (res.status == IMAP_READ_NEED_CONTINUATION && refuse)
			imap_reader_refuse_literal(r);
		if (res.status == IMAP_READ_OK && res.cmd.cmd == IMAP_CMD_IDLE)
			imap_reader_expect_line(r);
	}
	imap_reader_destroy(&r);
	CHECK(r == NULL);
	return buf_steal(&out);
}

/* Same transcript whole, byte by byte and in random chunks. */
static void check_run(const struct imap_reader_limits *lim, const char *input, size_t len,
		      bool refuse, const char *expected)
{
	char *whole = run(lim, input, len, len ? len : 1, refuse);
	char *bytes = run(lim, input, len, 1, refuse);
	char *chunks = run(lim, input, len, 0, refuse);

	CHECK_STR(whole, expected);
	CHECK_STR(bytes, expected);
	CHECK_STR(chunks, expected);
	free(whole);
	free(bytes);
	free(chunks);
}

#define RUN_CASE(input, expected) \
	check_run(&lim_default, (input), sizeof(input) - 1, false, (expected))

static void test_reader_simple(void)
{
	RUN_CASE("a1 NOOP\r\n", "OK a1 NOOP\n");
	RUN_CASE("a1 noop\r\n", "OK a1 NOOP\n");
	RUN_CASE("a1 NOOP\n", "OK a1 NOOP\n");
	RUN_CASE("\r\n\r\na1 CAPABILITY\r\n", "OK a1 CAPABILITY\n");
	RUN_CASE("a1 LOGIN user \"pa ss\\\"w\\\\\"\r\n",
		 "OK a1 LOGIN A:user Q:\"pa ss\"w\\\"\n");
	RUN_CASE("x SELECT INBOX\r\ny FETCH 1:* (FLAGS UID)\r\n",
		 "OK x SELECT A:INBOX\nOK y FETCH A:1:* (A:FLAGS A:UID)\n");
	RUN_CASE("t uid fetch 1,2 flags\r\n", "OK t UID FETCH A:1,2 A:flags\n");
	RUN_CASE("t UID EXPUNGE 5\r\n", "OK t UID EXPUNGE N:5\n");
	RUN_CASE("t STATUS \"\" (MESSAGES)\r\n", "OK t STATUS Q:\"\" (A:MESSAGES)\n");
	RUN_CASE("t ID NIL\r\n", "OK t ID NIL\n");
	RUN_CASE("t ID (\"name\" \"x\" \"version\" NIL)\r\n",
		 "OK t ID (Q:\"name\" Q:\"x\" Q:\"version\" NIL)\n");
	RUN_CASE("t LIST \"\" %\r\n", "OK t LIST Q:\"\" A:%\n");
	RUN_CASE("t SELECT [Gmail]/Sent\r\n", "OK t SELECT A:[Gmail]/Sent\n");
	RUN_CASE("t STORE 1 +FLAGS.SILENT (\\Seen $Junk)\r\n",
		 "OK t STORE N:1 A:+FLAGS.SILENT (A:\\Seen A:$Junk)\n");
	RUN_CASE("t SEARCH 18446744073709551615 18446744073709551616\r\n",
		 "OK t SEARCH N:18446744073709551615 A:18446744073709551616\n");
	RUN_CASE("t NOOP   \r\n", "OK t NOOP\n");
	RUN_CASE("t ENABLE IMAP4rev2 CONDSTORE\r\n", "OK t ENABLE A:IMAP4rev2 A:CONDSTORE\n");
	RUN_CASE("t SELECT \"caf\xc3\xa9\"\r\n", "OK t SELECT Q:\"caf\xc3\xa9\"\n");
	RUN_CASE("t LIST () \"\" ()\r\n", "OK t LIST () Q:\"\" ()\n");
}

static void test_reader_sections(void)
{
	RUN_CASE("f FETCH 1 BODY[]\r\n", "OK f FETCH N:1 A:BODY[]\n");
	RUN_CASE("f FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100> UID)\r\n",
		 "OK f FETCH N:1 (A:BODY.PEEK[A:HEADER.FIELDS (A:From A:To)]<0.100> A:UID)\n");
	RUN_CASE("f FETCH 1 binary.peek[1.2]<5.10>\r\n",
		 "OK f FETCH N:1 A:binary.peek[A:1.2]<5.10>\n");
	RUN_CASE("f FETCH 1 BINARY.SIZE[1]\r\n", "OK f FETCH N:1 A:BINARY.SIZE[N:1]\n");
	RUN_CASE("f FETCH 1 (BODY[HEADER.FIELDS (\"X]\" {1}\r\n])])\r\n",
		 "CONT f 1\nOK f FETCH N:1 (A:BODY[A:HEADER.FIELDS (Q:\"X]\" L{]})])\n");
	RUN_CASE("f FETCH 1 BODY[1\r\n", "ERR f 1 Missing ']'\n");
	RUN_CASE("f FETCH 1 BODY[1]<1.2\r\n", "ERR f 1 Invalid partial\n");
}

static void test_reader_literals(void)
{
	/* synchronising: the reader stops for the continuation request */
	RUN_CASE("a LOGIN {4}\r\nuser {5}\r\npa\"ss\r\n",
		 "CONT a 4\nCONT a 5\nOK a LOGIN L{user} L{pa\"ss}\n");
	/* LITERAL+: no continuation */
	RUN_CASE("a LOGIN {4+}\r\nuser {5+}\r\npass)\r\nb NOOP\r\n",
		 "OK a LOGIN L{user} L{pass)}\nOK b NOOP\n");
	/* literal data that looks like commands and line ends */
	RUN_CASE("a APPEND INBOX (\\Seen) {13+}\r\nb NOOP\r\n{3}\r\n\r\nc NOOP\r\n",
		 "OK a APPEND A:INBOX (A:\\Seen) L{b NOOP\r\n{3}\r\n}\nOK c NOOP\n");
	/* literal8 */
	RUN_CASE("a APPEND INBOX ~{3}\r\na\0b\r\n", "CONT a 3 lit8\nOK a APPEND A:INBOX L8{a}\n");
	/* empty literal */
	RUN_CASE("a LOGIN {0}\r\n {0+}\r\n\r\n", "CONT a 0\nOK a LOGIN L{} L{}\n");
	/* NUL in a plain literal is refused */
	RUN_CASE("a LOGIN {3+}\r\na\0b x\r\nb NOOP\r\n", "ERR a 1 NUL in literal\nOK b NOOP\n");
	/* a "{5}" inside a quoted string is not an announcement */
	RUN_CASE("a LOGIN u \"{5}\"\r\n", "OK a LOGIN A:u Q:\"{5}\"\n");
	/* nothing may follow a literal directly */
	RUN_CASE("a LOGIN {1+}\r\nxy\r\n", "ERR a 1 Missing space between arguments\n");
}

static void test_reader_literal_limits(void)
{
	struct imap_reader_limits lim = lim_default;
	const char in1[] = "a APPEND INBOX {100}\r\nb NOOP\r\n";
	const char in2[] = "a APPEND INBOX {20+}\r\n0123456789\r\nb NOOP\r\nx y\r\nc NOOP\r\n";
	const char in3[] = "a APPEND INBOX {5000+}\r\n";
	const char in4[] = "a LOGIN {6}\r\n";
	const char in5[] = "a LOGIN {99999999999999999999999}\r\nb NOOP\r\n";

	lim.max_literal = 10;
	/* synchronising and too large: refused at once, nothing to skip */
	check_run(&lim, in1, sizeof(in1) - 1, false, "ERR a 4 Literal too large\nOK b NOOP\n");
	/* non-synchronising and too large: its bytes are skipped, then the
	 * rest of the line; "b NOOP\r\n" inside it is never a command */
	check_run(&lim, in2, sizeof(in2) - 1, false, "ERR a 4 Literal too large\nOK c NOOP\n");
	check_run(&lim, in5, sizeof(in5) - 1, false, "ERR a 4 Literal too large\nOK b NOOP\n");
	/* the limit is on the sum of a command's literals */
	{
		const char in[] = "a LOGIN {6+}\r\nabcdef {6+}\r\nghijkl\r\nb NOOP\r\n";
		check_run(&lim, in, sizeof(in) - 1, false, "ERR a 4 Literal too large\nOK b NOOP\n");
	}
	/* LITERAL-: non-synchronising literals only up to 4096 */
	lim = lim_default;
	lim.literal_minus = true;
	check_run(&lim, in3, sizeof(in3) - 1, false,
		  "ERR a 4 Non-synchronizing literal too large (LITERAL-)\n");
	{
		const char in[] = "a LOGIN {4096+}\r\n";
		char *big = malloc(sizeof(in) - 1 + 4096 + 2);
		memcpy(big, in, sizeof(in) - 1);
		memset(big + sizeof(in) - 1, 'x', 4096);
		memcpy(big + sizeof(in) - 1 + 4096, "\r\n", 2);
		char *t = run(&lim, big, sizeof(in) - 1 + 4098, 1, false);
		CHECK(strncmp(t, "OK a LOGIN L{xxxx", 17) == 0);
		if (strncmp(t, "OK a LOGIN L{xxxx", 17)) fprintf(stderr, "%.60s\n", t);
		free(t);
		free(big);
	}
	/* the server refuses a synchronising literal itself */
	check_run(&lim_default, in4, sizeof(in4) - 1, true, "CONT a 6\n");
	{
		const char in[] = "a LOGIN {6}\r\nb NOOP\r\n";
		check_run(&lim_default, in, sizeof(in) - 1, true, "CONT a 6\nOK b NOOP\n");
	}
}

static void test_reader_line_limit(void)
{
	struct imap_reader_limits lim = lim_default;
	char *in, *t;
	size_t n;

	lim.max_line = 64;
	{
		const char ok[] = "a LOGIN 0123456789012345678901234567890123456789012345678\r\n";
		check_run(&lim, ok, sizeof(ok) - 1, false,
			  "OK a LOGIN A:0123456789012345678901234567890123456789012345678\n");
		const char bad[] = "a LOGIN 012345678901234567890123456789012345678901234567890123456789\r\n"
				   "b NOOP\r\n";
		check_run(&lim, bad, sizeof(bad) - 1, false,
			  "ERR a 3 Command line too long\nOK b NOOP\n");
	}
	/* literal bytes do not count against the line limit */
	{
		const char in2[] = "a LOGIN {100+}\r\n";
		n = sizeof(in2) - 1 + 100 + 2;
		in = malloc(n);
		memcpy(in, in2, sizeof(in2) - 1);
		memset(in + sizeof(in2) - 1, 'y', 100);
		memcpy(in + n - 2, "\r\n", 2);
		t = run(&lim, in, n, 0, false);
		CHECK(strncmp(t, "OK a LOGIN L{yyy", 16) == 0);
		free(t);
		free(in);
	}
	/* a long line whose end announces a non-sync literal: the literal is
	 * skipped during recovery */
	{
		const char bad[] = "a LOGIN 0123456789012345678901234567890123456789012345678901 {8+}\r\n"
				   "c NOOP\r\n\r\nb NOOP\r\n";
		check_run(&lim, bad, sizeof(bad) - 1, false,
			  "ERR a 3 Command line too long\nOK b NOOP\n");
	}
	/* the tag is unknown when the line is too long before its first space */
	{
		const char bad[] = "0123456789012345678901234567890123456789012345678901234567890123456789"
				   "\r\nb NOOP\r\n";
		check_run(&lim, bad, sizeof(bad) - 1, false,
			  "ERR  3 Command line too long\nOK b NOOP\n");
	}
	/* a huge line: memory stays bounded, one error */
	n = 200000;
	in = malloc(n + 10);
	memset(in, 'z', n);
	memcpy(in, "a NOOP ", 7);
	memcpy(in + n, "\r\nb NOOP\r\n", 10);
	t = run(&lim_default, in, n + 10, 4096, false);
	CHECK_STR(t, "ERR a 3 Command line too long\nOK b NOOP\n");
	free(t);
	free(in);
}

static void test_reader_errors(void)
{
	RUN_CASE("a1 FOO bar\r\nb NOOP\r\n", "ERR a1 2 Unknown command\nOK b NOOP\n");
	RUN_CASE("a1 UID NOOP\r\n", "ERR a1 2 Unknown UID command\n");
	RUN_CASE("a1 UID\r\n", "ERR a1 1 UID needs a command\n");
	RUN_CASE("+ NOOP\r\n", "ERR  1 Invalid tag\n");
	RUN_CASE("NOOP\r\n", "ERR  1 Invalid tag\n");
	RUN_CASE("a1 NO\"OP\r\n", "ERR a1 1 Invalid command name\n");
	RUN_CASE("a LOGIN \"abc\r\nb NOOP\r\n", "ERR a 1 Unterminated quoted string\nOK b NOOP\n");
	RUN_CASE("a LOGIN \"a\\b\"\r\n", "ERR a 1 Invalid escape in quoted string\n");
	RUN_CASE("a FETCH 1 (FLAGS\r\n", "ERR a 1 Missing ')'\n");
	RUN_CASE("a FETCH 1 FLAGS)\r\n", "ERR a 1 Unexpected closing bracket\n");
	RUN_CASE("a FETCH 1 (FLAGS)(UID)\r\n", "ERR a 1 Missing space between arguments\n");
	RUN_CASE("a LOGIN a\rb c\r\n", "ERR a 1 Invalid character\n");
	RUN_CASE("a LOGIN a\"b\r\n", "ERR a 1 Missing space between arguments\n");
	/* unknown command with a literal: refused before the continuation */
	RUN_CASE("a XYZZY {5}\r\nb NOOP\r\n", "ERR a 2 Unknown command\nOK b NOOP\n");
	RUN_CASE("a XYZZY {5+}\r\nb NO\r\nc NOOP\r\n", "ERR a 2 Unknown command\nOK c NOOP\n");
	/* bad command followed by pipelined good ones */
	RUN_CASE("a LOGIN (\r\nb NOOP\r\nc LOGOUT\r\n",
		 "ERR a 1 Missing ')'\nOK b NOOP\nOK c LOGOUT\n");
}

static void test_reader_nesting(void)
{
	struct imap_reader_limits lim = lim_default;
	char in[400];
	size_t n = 0;

	lim.max_depth = 5;
	n += (size_t)sprintf(in, "a ID ");
	for (int i = 0; i < 5; i++)
		in[n++] = '(';
	for (int i = 0; i < 5; i++)
		in[n++] = ')';
	memcpy(in + n, "\r\n", 2);
	n += 2;
	check_run(&lim, in, n, false, "OK a ID ((((()))))\n");
	n = (size_t)sprintf(in, "a ID ((((((x))))))\r\nb NOOP\r\n");
	check_run(&lim, in, n, false, "ERR a 1 Too deeply nested\nOK b NOOP\n");
	lim = lim_default;
	lim.max_args = 4;
	n = (size_t)sprintf(in, "a ID (a b c)\r\n");
	check_run(&lim, in, n, false, "OK a ID (A:a A:b A:c)\n");
	n = (size_t)sprintf(in, "a ID (a b c d)\r\n");
	check_run(&lim, in, n, false, "ERR a 1 Too many arguments\n");
	/* deep nesting at the default limit does not blow the stack */
	{
		size_t depth = 5000;
		char *big = malloc(2 * depth + 16);
		size_t k = (size_t)sprintf(big, "a ID ");
		memset(big + k, '(', depth);
		memset(big + k + depth, ')', depth);
		memcpy(big + k + 2 * depth, "\r\n", 2);
		char *t = run(&lim_default, big, k + 2 * depth + 2, 0, false);
		CHECK_STR(t, "ERR a 1 Too deeply nested\n");
		free(t);
		free(big);
	}
}

static void test_reader_idle(void)
{
	RUN_CASE("a IDLE\r\nDONE\r\nb NOOP\r\n", "OK a IDLE\nDONE \"DONE\"\nOK b NOOP\n");
	RUN_CASE("a IDLE\r\ndone\nb NOOP\r\n", "OK a IDLE\nDONE \"done\"\nOK b NOOP\n");
	RUN_CASE("a IDLE\r\nb NOOP\r\n", "OK a IDLE\nLINE \"b NOOP\"\n");
}

static void test_reader_limits_change(void)
{
	struct imap_reader_limits pre = lim_default, post = lim_default;
	struct imap_reader *r;
	struct imap_read_result res;
	char line[200];
	size_t n;

	pre.max_line = 32;
	r = imap_reader_create(&pre);
	n = (size_t)sprintf(line, "a LOGIN %060d\r\n", 0);
	imap_reader_feed(r, line, n, &res);
	CHECK(res.status == IMAP_READ_ERROR && res.error.kind == IMAP_ERR_LINE_TOO_LONG);
	CHECK(res.cmd.tag.len == 1 && res.cmd.tag.p[0] == 'a');
	imap_reader_feed(r, line + res.consumed, n - res.consumed, &res);
	CHECK(res.status == IMAP_READ_NEED_MORE);
	CHECK(imap_reader_idle(r));
	imap_reader_set_limits(r, &post);
	imap_reader_feed(r, line, n, &res);
	CHECK(res.status == IMAP_READ_OK && res.cmd.cmd == IMAP_CMD_LOGIN && res.cmd.nargs == 1);
	CHECK(res.consumed == n);
	imap_reader_destroy(&r);
}

/* every command name is recognised */
static void test_reader_names(void)
{
	static const char *const names[] = {
		"CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "AUTHENTICATE", "LOGIN", "ENABLE",
		"SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE",
		"LIST", "LSUB", "NAMESPACE", "STATUS", "APPEND", "IDLE", "CHECK", "CLOSE",
		"UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE", "ID",
	};
	struct imap_reader *r = imap_reader_create(&lim_default);

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char line[64];
		struct imap_read_result res;
		size_t n = (size_t)snprintf(line, sizeof(line), "t%zu %s\r\n", i, names[i]);

		imap_reader_feed(r, line, n, &res);
		CHECK(res.status == IMAP_READ_OK);
		CHECK(res.cmd.cmd != IMAP_CMD_UNKNOWN);
		CHECK_STR(imap_cmd_name(res.cmd.cmd), names[i]);
		if (res.cmd.cmd == IMAP_CMD_IDLE)
			imap_reader_feed(r, "DONE\r\n", 6, &res);
	}
	static const char *const uidcmds[] = { "COPY", "MOVE", "FETCH", "SEARCH", "STORE",
					       "EXPUNGE" };
	for (size_t i = 0; i < 6; i++) {
		char line[64];
		struct imap_read_result res;
		size_t n = (size_t)snprintf(line, sizeof(line), "u UID %s 1\r\n", uidcmds[i]);

		imap_reader_feed(r, line, n, &res);
		CHECK(res.status == IMAP_READ_OK && res.cmd.uid);
		CHECK_STR(imap_cmd_name(res.cmd.cmd), uidcmds[i]);
	}
	imap_reader_destroy(&r);
}

/* random garbage never crashes and every byte is consumed */
static void test_reader_random(void)
{
	unsigned seed = 7;
	static const char alphabet[] = "a (){}[]<>\"\\+~*%0123456789\r\nNOOPFETCHBODY.";

	for (int round = 0; round < 300; round++) {
		char in[300];
		size_t n = 1 + round % 299;

		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245 + 12345;
			in[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		char *a = run(&lim_default, in, n, n, false);
		char *b = run(&lim_default, in, n, 1, false);
		CHECK_STR(a, b);
		free(a);
		free(b);
	}
}

/* ---- typed parsers, through the reader ---- */

struct parsed {
	struct imap_reader *r;
	struct imap_read_result res;
	struct imap_arena arena;
};

static bool parse_cmd(struct parsed *p, const char *line)
{
	p->r = imap_reader_create(&lim_default);
	imap_arena_init(&p->arena);
	imap_reader_feed(p->r, line, strlen(line), &p->res);
	return p->res.status == IMAP_READ_OK;
}

static void parsed_free(struct parsed *p)
{
	imap_arena_clear(&p->arena);
	imap_reader_destroy(&p->r);
}

static int fetch(const char *line, struct imap_fetch_request *req, struct imap_parse_error *err,
		 struct parsed *p)
{
	if (!parse_cmd(p, line))
		return -2;
	return imap_fetch_parse(p->res.cmd.args, p->res.cmd.nargs, p->res.cmd.uid, &p->arena,
				req, err);
}

static void test_fetch(void)
{
	struct parsed p;
	struct imap_fetch_request req;
	struct imap_parse_error err;

	CHECK(fetch("a FETCH 1:3 ALL\r\n", &req, &err, &p) == 0);
	CHECK(req.macro && req.nitems == 4 && req.items[3].att == IMAP_FETCH_ENVELOPE);
	CHECK(req.set.count == 1 && req.set.ranges[0].lo == 1 && req.set.ranges[0].hi == 3);
	parsed_free(&p);
	CHECK(fetch("a FETCH 1 FAST\r\n", &req, &err, &p) == 0);
	CHECK(req.nitems == 3);
	parsed_free(&p);
	CHECK(fetch("a FETCH 1 full\r\n", &req, &err, &p) == 0);
	CHECK(req.nitems == 5 && req.items[4].att == IMAP_FETCH_BODY);
	parsed_free(&p);

	CHECK(fetch("a FETCH * (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE UID "
		    "MODSEQ RFC822 RFC822.HEADER RFC822.TEXT)\r\n", &req, &err, &p) == 0);
	CHECK(req.nitems == 11 && req.set.has_star);
	CHECK(req.items[0].att == IMAP_FETCH_FLAGS && req.items[1].att == IMAP_FETCH_INTERNALDATE &&
	      req.items[2].att == IMAP_FETCH_RFC822_SIZE && req.items[3].att == IMAP_FETCH_ENVELOPE &&
	      req.items[4].att == IMAP_FETCH_BODY && req.items[5].att == IMAP_FETCH_BODYSTRUCTURE &&
	      req.items[6].att == IMAP_FETCH_UID && req.items[7].att == IMAP_FETCH_MODSEQ &&
	      req.items[8].att == IMAP_FETCH_RFC822 && req.items[9].att == IMAP_FETCH_RFC822_HEADER &&
	      req.items[10].att == IMAP_FETCH_RFC822_TEXT);
	parsed_free(&p);

	CHECK(fetch("a FETCH 1 (BODY[] BODY.PEEK[1.2.3] BODY[HEADER] BODY[2.TEXT] BODY[1.MIME] "
		    "BODY[HEADER.FIELDS (From \"Subject\")]<10.20> "
		    "BODY.PEEK[1.HEADER.FIELDS.NOT (X-Y)] BINARY[1] BINARY.PEEK[]<0.1> "
		    "BINARY.SIZE[2.1])\r\n", &req, &err, &p) == 0);
	CHECK(req.nitems == 10);
	CHECK(req.items[0].att == IMAP_FETCH_BODY_SECTION && !req.items[0].peek &&
	      req.items[0].nparts == 0 && req.items[0].spec == IMAP_SECTION_ALL);
	CHECK(req.items[1].peek && req.items[1].nparts == 3 && req.items[1].parts[2] == 3);
	CHECK(req.items[2].spec == IMAP_SECTION_HEADER && req.items[2].nparts == 0);
	CHECK(req.items[3].spec == IMAP_SECTION_TEXT && req.items[3].nparts == 1 &&
	      req.items[3].parts[0] == 2);
	CHECK(req.items[4].spec == IMAP_SECTION_MIME && req.items[4].nparts == 1);
	CHECK(req.items[5].spec == IMAP_SECTION_HEADER_FIELDS && req.items[5].nfields == 2 &&
	      slice_eq_ci(req.items[5].fields[1], "subject") && req.items[5].partial &&
	      req.items[5].offset == 10 && req.items[5].length == 20);
	CHECK(req.items[6].spec == IMAP_SECTION_HEADER_FIELDS_NOT && req.items[6].peek &&
	      req.items[6].nparts == 1);
	CHECK(req.items[7].att == IMAP_FETCH_BINARY && req.items[7].nparts == 1 &&
	      !req.items[7].peek);
	CHECK(req.items[8].att == IMAP_FETCH_BINARY && req.items[8].peek && req.items[8].partial &&
	      req.items[8].length == 1);
	CHECK(req.items[9].att == IMAP_FETCH_BINARY_SIZE && req.items[9].nparts == 2);
	parsed_free(&p);

	CHECK(fetch("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n", &req, &err, &p) == 0);
	CHECK(req.changedsince_given && req.changedsince == 12345 && req.vanished);
	parsed_free(&p);
	CHECK(fetch("a FETCH 1 BODY.PEEK[TEXT]<0.4294967296>\r\n", &req, &err, &p) == 0);
	CHECK(req.items[0].length == 4294967296ull);
	parsed_free(&p);

	static const struct {
		const char *line, *text;
	} bad[] = {
		{ "a FETCH 1\r\n", "FETCH needs a sequence set and attributes" },
		{ "a FETCH 0 FLAGS\r\n", "Invalid sequence set" },
		{ "a FETCH 1 FOO\r\n", "Unknown fetch attribute" },
		{ "a FETCH 1 ()\r\n", "Empty fetch attribute list" },
		{ "a FETCH 1 BODY.PEEK\r\n", "Missing section" },
		{ "a FETCH 1 BODY[MIME]\r\n", "MIME needs a part number" },
		{ "a FETCH 1 BODY[0]\r\n", "Invalid section part number" },
		{ "a FETCH 1 BODY[1.]\r\n", "Invalid section" },
		{ "a FETCH 1 BODY[FOO]\r\n", "Invalid section" },
		{ "a FETCH 1 BODY[HEADER.FIELDS]\r\n", "HEADER.FIELDS needs a list of field names" },
		{ "a FETCH 1 BODY[HEADER.FIELDS ()]\r\n", "HEADER.FIELDS needs a list of field names" },
		{ "a FETCH 1 BODY[HEADER.FIELDS (a:b)]\r\n", "Invalid header field name" },
		{ "a FETCH 1 BODY[HEADER (a)]\r\n", "Invalid section" },
		{ "a FETCH 1 BINARY[HEADER]\r\n", "Invalid BINARY section" },
		{ "a FETCH 1 BINARY.SIZE[1]<0.1>\r\n", "BINARY.SIZE takes no partial" },
		{ "a FETCH 1 BODY[]<1.0>\r\n", "Invalid partial" },
		{ "a FETCH 1 BODY[]<1>\r\n", "Invalid partial" },
		{ "a FETCH 1 BODY[]<99999999999999999999.1>\r\n", "Invalid partial" },
		{ "a FETCH 1 FLAGS (VANISHED)\r\n", "VANISHED is allowed only with UID FETCH" },
		{ "a UID FETCH 1 FLAGS (VANISHED)\r\n", "VANISHED requires CHANGEDSINCE" },
		{ "a FETCH 1 FLAGS (CHANGEDSINCE 0)\r\n", "Invalid CHANGEDSINCE" },
		{ "a FETCH 1 FLAGS (CHANGEDSINCE)\r\n", "Invalid CHANGEDSINCE" },
		{ "a FETCH 1 FLAGS (FOO)\r\n", "Unknown fetch modifier" },
		{ "a FETCH 1 FLAGS () x\r\n", "Invalid fetch modifiers" },
		{ "a FETCH 1 FLAGS (CHANGEDSINCE 1) x\r\n", "Too many FETCH arguments" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.text = NULL;
		CHECK(fetch(bad[i].line, &req, &err, &p) == -1);
		CHECK_STR(err.text, bad[i].text);
		parsed_free(&p);
	}
	/* more than IMAP_MAX_SECTION_PARTS part numbers */
	{
		char line[1024];
		size_t n = (size_t)sprintf(line, "a FETCH 1 BODY[");
		for (int i = 0; i < IMAP_MAX_SECTION_PARTS + 1; i++)
			n += (size_t)sprintf(line + n, "%s1", i ? "." : "");
		sprintf(line + n, "]\r\n");
		CHECK(fetch(line, &req, &err, &p) == -1);
		CHECK_STR(err.text, "Section nested too deeply");
		parsed_free(&p);
	}
}

static int store(const char *line, struct imap_store_request *req, struct imap_parse_error *err,
		 struct parsed *p)
{
	if (!parse_cmd(p, line))
		return -2;
	return imap_store_parse(p->res.cmd.args, p->res.cmd.nargs, &p->arena, req, err);
}

static void test_store(void)
{
	struct parsed p;
	struct imap_store_request req;
	struct imap_parse_error err;

	CHECK(store("a STORE 1:2 FLAGS (\\Seen \\answered \\Flagged \\Deleted \\Draft foo Foo bar)\r\n",
		    &req, &err, &p) == 0);
	CHECK(req.op == IMAP_STORE_REPLACE && !req.silent);
	CHECK(req.flags.system == (IMAP_FLAG_SEEN | IMAP_FLAG_ANSWERED | IMAP_FLAG_FLAGGED |
				   IMAP_FLAG_DELETED | IMAP_FLAG_DRAFT));
	CHECK(req.flags.nkeywords == 2);
	parsed_free(&p);
	CHECK(store("a STORE 1 +FLAGS.SILENT \\Seen $Label1\r\n", &req, &err, &p) == 0);
	CHECK(req.op == IMAP_STORE_ADD && req.silent && req.flags.system == IMAP_FLAG_SEEN &&
	      req.flags.nkeywords == 1);
	parsed_free(&p);
	CHECK(store("a STORE 5 (UNCHANGEDSINCE 320162338) -flags ()\r\n", &req, &err, &p) == 0);
	CHECK(req.op == IMAP_STORE_REMOVE && req.unchangedsince_given &&
	      req.unchangedsince == 320162338 && req.flags.system == 0 && req.flags.nkeywords == 0);
	parsed_free(&p);
	CHECK(store("a STORE 5 (UNCHANGEDSINCE 0) FLAGS ()\r\n", &req, &err, &p) == 0);
	CHECK(req.unchangedsince == 0);
	parsed_free(&p);

	static const struct {
		const char *line, *text;
	} bad[] = {
		{ "a STORE 1 FLAGS\r\n", "STORE needs a sequence set, an operation and flags" },
		{ "a STORE 1 XFLAGS (\\Seen)\r\n", "Invalid STORE operation" },
		{ "a STORE 1 +FLAGS (\\Recent)\r\n", "\\Recent cannot be set" },
		{ "a STORE 1 +FLAGS (\\Foo)\r\n", "Invalid system flag" },
		{ "a STORE 1 +FLAGS (a]b)\r\n", "Invalid keyword" },
		{ "a STORE 1 +FLAGS (\"x\")\r\n", "Invalid flag" },
		{ "a STORE 1 +FLAGS (a) (b)\r\n", "Too many STORE arguments" },
		{ "a STORE 1 (FOO 1) FLAGS (a)\r\n", "Invalid STORE modifier" },
		{ "a STORE 1 () FLAGS (a)\r\n", "Invalid STORE modifier" },
		{ "a STORE x FLAGS (a)\r\n", "Invalid sequence set" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.text = NULL;
		CHECK(store(bad[i].line, &req, &err, &p) == -1);
		CHECK_STR(err.text, bad[i].text);
		parsed_free(&p);
	}
}

static void test_status(void)
{
	struct parsed p;
	struct imap_status_request req;
	struct imap_parse_error err;

	CHECK(parse_cmd(&p, "a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE "
			"RECENT HIGHESTMODSEQ APPENDLIMIT)\r\n"));
	CHECK(imap_status_parse(p.res.cmd.args, p.res.cmd.nargs, &req, &err) == 0);
	CHECK(req.items == 0x1ff && slice_eq_ci(req.mailbox, "inbox"));
	parsed_free(&p);
	CHECK(parse_cmd(&p, "a STATUS INBOX (MESSAGES FOO)\r\n"));
	CHECK(imap_status_parse(p.res.cmd.args, p.res.cmd.nargs, &req, &err) == -1);
	CHECK_STR(err.text, "Unknown STATUS item");
	parsed_free(&p);
	CHECK(parse_cmd(&p, "a STATUS INBOX ()\r\n"));
	CHECK(imap_status_parse(p.res.cmd.args, p.res.cmd.nargs, &req, &err) == -1);
	CHECK_STR(err.text, "STATUS needs a list of items");
	parsed_free(&p);
	CHECK(parse_cmd(&p, "a STATUS INBOX\r\n"));
	CHECK(imap_status_parse(p.res.cmd.args, p.res.cmd.nargs, &req, &err) == -1);
	parsed_free(&p);
}

static int list(const char *line, bool lsub, struct imap_list_request *req,
		struct imap_parse_error *err, struct parsed *p)
{
	if (!parse_cmd(p, line))
		return -2;
	return imap_list_parse(p->res.cmd.args, p->res.cmd.nargs, lsub, &p->arena, req, err);
}

static void test_list(void)
{
	struct parsed p;
	struct imap_list_request req;
	struct imap_parse_error err;

	CHECK(list("a LIST \"\" *\r\n", false, &req, &err, &p) == 0);
	CHECK(req.reference.len == 0 && req.npatterns == 1 && req.patterns[0].len == 1 &&
	      !req.extended);
	parsed_free(&p);
	CHECK(list("a LIST (SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE) \"\" (INBOX \"Foo/%\") "
		   "RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n",
		   false, &req, &err, &p) == 0);
	CHECK(req.select == 0xf && req.ret == 0xf && req.npatterns == 2 && req.extended);
	CHECK(req.status_items == (IMAP_STATUS_MESSAGES | IMAP_STATUS_UNSEEN));
	parsed_free(&p);
	CHECK(list("a LSUB \"#news.\" comp.%\r\n", true, &req, &err, &p) == 0);
	CHECK(req.npatterns == 1 && slice_eq_ci(req.patterns[0], "comp.%"));
	parsed_free(&p);
	CHECK(list("a LIST \"\" {3+}\r\nx*y\r\n", false, &req, &err, &p) == 0);
	CHECK(slice_eq_ci(req.patterns[0], "x*y"));
	parsed_free(&p);

	static const struct {
		const char *line;
		bool lsub;
		const char *text;
	} bad[] = {
		{ "a LIST (RECURSIVEMATCH) \"\" *\r\n", false,
		  "RECURSIVEMATCH needs another selection option" },
		{ "a LIST (REMOTE RECURSIVEMATCH) \"\" *\r\n", false,
		  "RECURSIVEMATCH needs another selection option" },
		{ "a LIST (FOO) \"\" *\r\n", false, "Unknown LIST selection option" },
		{ "a LIST \"\"\r\n", false, "LIST needs a reference and a pattern" },
		{ "a LIST \"\" ()\r\n", false, "Empty LIST pattern list" },
		{ "a LIST \"\" * RETURN (FOO)\r\n", false, "Unknown LIST return option" },
		{ "a LIST \"\" * RETURN (STATUS)\r\n", false, "Invalid LIST return options" },
		{ "a LIST \"\" * RETURN (STATUS (FOO))\r\n", false, "Unknown STATUS item" },
		{ "a LIST \"\" * FOO (x)\r\n", false, "Invalid LIST return options" },
		{ "a LSUB \"\" * x\r\n", true, "LSUB needs a reference and a pattern" },
		{ "a LSUB \"\" (x)\r\n", true, "Invalid LIST pattern" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.text = NULL;
		CHECK(list(bad[i].line, bad[i].lsub, &req, &err, &p) == -1);
		CHECK_STR(err.text, bad[i].text);
		parsed_free(&p);
	}
}

static int sel(const char *line, struct imap_select_request *req, struct imap_parse_error *err,
	       struct parsed *p)
{
	if (!parse_cmd(p, line))
		return -2;
	return imap_select_parse(p->res.cmd.args, p->res.cmd.nargs, &p->arena, req, err);
}

static void test_select(void)
{
	struct parsed p;
	struct imap_select_request req;
	struct imap_parse_error err;

	CHECK(sel("a SELECT INBOX\r\n", &req, &err, &p) == 0);
	CHECK(!req.condstore && !req.qresync);
	parsed_free(&p);
	CHECK(sel("a EXAMINE \"a b\" (CONDSTORE)\r\n", &req, &err, &p) == 0);
	CHECK(req.condstore && req.mailbox.len == 3);
	parsed_free(&p);
	CHECK(sel("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
		  &req, &err, &p) == 0);
	CHECK(req.qresync && req.uidvalidity == 67890007 && req.modseq == 20050715194045000ull);
	CHECK(req.has_known_uids && req.known_uids.count == 3 && !req.has_seq_match);
	parsed_free(&p);
	CHECK(sel("a SELECT INBOX (QRESYNC (1 2 1:100 (1,5 10,50)) CONDSTORE)\r\n", &req, &err, &p) == 0);
	CHECK(req.has_seq_match && req.known_seqs.count == 2 && req.known_seq_uids.count == 2);
	parsed_free(&p);
	CHECK(sel("a SELECT INBOX (QRESYNC (1 2 (1 10)))\r\n", &req, &err, &p) == 0);
	CHECK(!req.has_known_uids && req.has_seq_match);
	parsed_free(&p);

	static const struct {
		const char *line, *text;
	} bad[] = {
		{ "a SELECT\r\n", "SELECT needs a mailbox name" },
		{ "a SELECT INBOX CONDSTORE\r\n", "Invalid SELECT parameters" },
		{ "a SELECT INBOX (FOO)\r\n", "Unknown SELECT parameter" },
		{ "a SELECT INBOX (QRESYNC)\r\n", "Invalid QRESYNC parameters" },
		{ "a SELECT INBOX (QRESYNC (0 1))\r\n", "Invalid QRESYNC UIDVALIDITY" },
		{ "a SELECT INBOX (QRESYNC (4294967296 1))\r\n", "Invalid QRESYNC UIDVALIDITY" },
		{ "a SELECT INBOX (QRESYNC (1 0))\r\n", "Invalid QRESYNC modseq" },
		{ "a SELECT INBOX (QRESYNC (1 2 1:*))\r\n", "Invalid QRESYNC known set" },
		{ "a SELECT INBOX (QRESYNC (1 2 1 (1)))\r\n", "Invalid QRESYNC sequence match data" },
		{ "a SELECT INBOX (QRESYNC (1 2 1 (1 2) x))\r\n", "Invalid QRESYNC parameters" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.text = NULL;
		CHECK(sel(bad[i].line, &req, &err, &p) == -1);
		CHECK_STR(err.text, bad[i].text);
		parsed_free(&p);
	}
}

static void test_append(void)
{
	struct parsed p;
	struct imap_append_request req;
	struct imap_parse_error err;
	const char l1[] = "a APPEND saved-messages (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {5+}\r\n"
			  "Hi!\r\n\r\n";

	CHECK(parse_cmd(&p, l1));
	CHECK(imap_append_parse(p.res.cmd.args, p.res.cmd.nargs, &p.arena, &req, &err) == 0);
	CHECK(req.has_flags && req.flags.system == IMAP_FLAG_SEEN && req.has_date);
	CHECK(req.date == 837596665 && req.zone == -420);
	CHECK(req.message.len == 5 && memcmp(req.message.p, "Hi!\r\n", 5) == 0 && !req.binary);
	parsed_free(&p);
	CHECK(parse_cmd(&p, "a APPEND INBOX ~{2+}\r\nxy\r\n"));
	CHECK(imap_append_parse(p.res.cmd.args, p.res.cmd.nargs, &p.arena, &req, &err) == 0);
	CHECK(req.binary && !req.has_flags && !req.has_date);
	parsed_free(&p);
	CHECK(parse_cmd(&p, "a APPEND INBOX \" 1-Jan-2000 00:00:00 +0000\" {1+}\r\nx\r\n"));
	CHECK(imap_append_parse(p.res.cmd.args, p.res.cmd.nargs, &p.arena, &req, &err) == 0);
	CHECK(req.date == 946684800 && !req.has_flags);
	parsed_free(&p);
	/* MULTIAPPEND (RFC 3502): several messages, each with its own options */
	CHECK(parse_cmd(&p, "a APPEND INBOX (\\Seen) {1+}\r\nx {2+}\r\nyz"
			    " \" 1-Jan-2000 00:00:00 +0000\" UTF8 ({1+}\r\nu)\r\n"));
	CHECK(imap_append_parse(p.res.cmd.args, p.res.cmd.nargs, &p.arena, &req, &err) == 0);
	CHECK(req.count == 3);
	CHECK(req.msgs[0].has_flags && req.msgs[0].message.len == 1 && !req.msgs[0].has_date);
	CHECK(!req.msgs[1].has_flags && req.msgs[1].message.len == 2);
	CHECK(req.msgs[2].has_date && req.msgs[2].utf8 && req.msgs[2].message.len == 1);
	CHECK(req.has_flags && req.message.len == 1);
	parsed_free(&p);
	/* CATENATE (RFC 4469) */
	CHECK(parse_cmd(&p, "a APPEND Drafts (\\Draft) CATENATE (URL \"/INBOX;UIDVALIDITY=3/;UID=2\""
			    " TEXT {4+}\r\nabcd URL /Sent/;UID=9) {1+}\r\nz\r\n"));
	CHECK(imap_append_parse(p.res.cmd.args, p.res.cmd.nargs, &p.arena, &req, &err) == 0);
	CHECK(req.count == 2 && req.msgs[0].nparts == 3 && req.msgs[1].nparts == 0);
	CHECK(req.msgs[0].parts[0].url && req.msgs[0].parts[0].data.len == 27);
	CHECK(!req.msgs[0].parts[1].url && req.msgs[0].parts[1].data.len == 4);
	CHECK(req.msgs[0].parts[2].url && req.msgs[0].parts[2].data.len == 12);
	CHECK(req.msgs[1].message.len == 1);
	parsed_free(&p);

	static const struct {
		const char *line, *text;
	} bad[] = {
		{ "a APPEND INBOX\r\n", "APPEND needs a mailbox and a message literal" },
		{ "a APPEND INBOX \"msg\"\r\n", "Invalid APPEND date-time" },
		{ "a APPEND INBOX (\\Recent) {1+}\r\nx\r\n", "\\Recent cannot be set" },
		{ "a APPEND INBOX \"31-Feb-2000 00:00:00 +0000\" {1+}\r\nx\r\n",
		  "Invalid APPEND date-time" },
		{ "a APPEND INBOX \"1-Jan-2000 00:00:00 +0000\" {1+}\r\nx\r\n",
		  "Invalid APPEND date-time" },
		{ "a APPEND INBOX foo {1+}\r\nx\r\n", "APPEND needs the message as a literal" },
		{ "a APPEND INBOX {1+}\r\nx (\\Seen)\r\n", "APPEND needs the message as a literal" },
		{ "a APPEND INBOX CATENATE ()\r\n", "CATENATE needs a list of TEXT and URL parts" },
		{ "a APPEND INBOX CATENATE (TEXT \"x\")\r\n", "CATENATE TEXT needs a literal" },
		{ "a APPEND INBOX CATENATE (URL)\r\n", "CATENATE needs a list of TEXT and URL parts" },
		{ "a APPEND INBOX CATENATE (FILE x)\r\n", "CATENATE parts are TEXT or URL" },
		{ "a APPEND INBOX UTF8 {1+}\r\nx\r\n",
		  "Syntax: APPEND mailbox [flags] [date] UTF8 (literal)" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.text = NULL;
		CHECK(parse_cmd(&p, bad[i].line));
		CHECK(imap_append_parse(p.res.cmd.args, p.res.cmd.nargs, &p.arena, &req, &err) == -1);
		CHECK_STR(err.text, bad[i].text);
		parsed_free(&p);
	}
}

static void test_dates(void)
{
	struct imap_date d;
	time_t t;
	int z;

	CHECK(imap_date_parse(S("1-Feb-1994"), &d) == 0 && d.day == 1 && d.month == 2 &&
	      d.year == 1994);
	CHECK(imap_date_parse(S("29-feb-2000"), &d) == 0);
	CHECK(imap_date_days(&d) == 11016);
	CHECK(imap_date_parse(S("01-Jan-1970"), &d) == 0 && imap_date_days(&d) == 0);
	CHECK(imap_date_parse(S("31-Dec-1969"), &d) == 0 && imap_date_days(&d) == -1);
	CHECK(imap_date_parse(S("29-Feb-1900"), &d) == -1);
	CHECK(imap_date_parse(S("0-Jan-2000"), &d) == -1);
	CHECK(imap_date_parse(S("32-Jan-2000"), &d) == -1);
	CHECK(imap_date_parse(S("1-Foo-2000"), &d) == -1);
	CHECK(imap_date_parse(S("1-Jan-200"), &d) == -1);
	CHECK(imap_date_parse(S("001-Jan-2000"), &d) == -1);
	CHECK(imap_date_parse(S("1/Jan/2000"), &d) == -1);
	CHECK(imap_date_parse(S(""), &d) == -1);
	CHECK(imap_datetime_parse(S("01-Jan-1970 00:00:00 +0100"), &t, &z) == 0 && t == -3600 &&
	      z == 60);
	CHECK(imap_datetime_parse(S("01-Jan-1970 00:00:00 +0160"), &t, &z) == -1);
	CHECK(imap_datetime_parse(S("01-Jan-1970 24:00:00 +0000"), &t, &z) == -1);
	CHECK(imap_datetime_parse(S("01-Jan-1970 00:00:00 0000"), &t, &z) == -1);
}

static void test_mailbox_names(void)
{
	static const struct {
		const char *mutf7, *utf8;
	} ok[] = {
		{ "INBOX", "INBOX" },
		{ "&-", "&" },
		{ "a&-b", "a&b" },
		{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
						     "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
		{ "Entw&APw-rfe", "Entw\xc3\xbc" "rfe" },
		{ "&2D3eAA-", "\xf0\x9f\x98\x80" },
		{ "&AOkA6QDp-", "\xc3\xa9\xc3\xa9\xc3\xa9" },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct buf out;

		buf_init(&out, 1024);
		CHECK(imap_mutf7_decode(slice_from(ok[i].mutf7), &out) == 0);
		CHECK_STR(buf_cstr(&out), ok[i].utf8);
		buf_reset(&out);
		CHECK(imap_mutf7_encode(slice_from(ok[i].utf8), &out) == 0);
		CHECK_STR(buf_cstr(&out), ok[i].mutf7);
		CHECK(imap_utf8_valid(slice_from(ok[i].utf8)));
		buf_free(&out);
	}
	static const char *const bad[] = {
		"&", "&U,BTFw", "&-&", "&AGE-", "&U,BTFw-&ZeVnLIqe-", "a\x80", "&2D0-", "&3gA-",
		"&U,BTFx-", "&Jjo!-", "\t", "&-&AOk",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf out;

		buf_init(&out, 1024);
		CHECK(imap_mutf7_decode(slice_from(bad[i]), &out) == -1);
		buf_free(&out);
	}
	CHECK(!imap_utf8_valid(S("\xc0\xaf")));
	CHECK(!imap_utf8_valid(S("\xed\xa0\x80")));
	CHECK(!imap_utf8_valid(S("\xf4\x90\x80\x80")));
	CHECK(!imap_utf8_valid(S("\xe2\x82")));
	CHECK(imap_utf8_valid(S("\xf4\x8f\xbf\xbf")));
	{
		struct buf out;
		buf_init(&out, 1024);
		CHECK(imap_mutf7_encode(S("\xc3"), &out) == -1);
		buf_free(&out);
	}
	CHECK(imap_is_atom(S("$Junk")) && !imap_is_atom(S("a]")) && !imap_is_atom(S("")) &&
	      !imap_is_atom(S("\\Seen")) && !imap_is_atom(S("a b")));
}

int main(void)
{
	RUN(test_reader_simple);
	RUN(test_reader_sections);
	RUN(test_reader_literals);
	RUN(test_reader_literal_limits);
	RUN(test_reader_line_limit);
	RUN(test_reader_errors);
	RUN(test_reader_nesting);
	RUN(test_reader_idle);
	RUN(test_reader_limits_change);
	RUN(test_reader_names);
	RUN(test_reader_random);
	RUN(test_fetch);
	RUN(test_store);
	RUN(test_status);
	RUN(test_list);
	RUN(test_select);
	RUN(test_append);
	RUN(test_dates);
	RUN(test_mailbox_names);
	return unit_summary("imap-parse");
}
