/* imap/sort: the SORT and THREAD argument parsers (RFC 5256 grammar,
 * RFC 5267 RETURN, RFC 5957 keys, charset rules, limits), fed through the
 * command reader whole and one byte at a time, and the sort itself: every
 * key, REVERSE, ties by sequence number, i;unicode-casemap comparison,
 * base subjects, and a 10 000 message run. */
#include "unit.h"
#include "imap/sort.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const struct imap_reader_limits lim = {
	IMAP_MAX_LINE, 1024 * 1024, IMAP_MAX_ARGS, IMAP_MAX_DEPTH, false,
};

static const char *const key_names[] = {
	"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO",
};

/* The parse result of one command line as text: "ERR:kind" or
 * "[RET:bits] crit,crit cs=N keys=N". */
static void dump_sort(struct buf *out, const struct imap_command *cmd)
{
	struct imap_parse_error err;

	if (cmd->cmd == IMAP_CMD_SORT) {
		struct imap_sort_request req;
		if (imap_sort_parse(cmd->args, cmd->nargs, &req, &err) < 0) {
			CHECK(err.text != NULL);
			buf_printf(out, "ERR:%d", (int)err.kind);
			return;
		}
		if (req.esearch)
			buf_printf(out, "RET:%u ", req.ret);
		for (size_t i = 0; i < req.ncrit; i++)
			buf_printf(out, "%s%s%s", i ? "," : "", req.crit[i].reverse ? "-" : "",
				   key_names[req.crit[i].key]);
		buf_printf(out, " cs=%d keys=%zu", (int)req.charset, req.nkeys);
	} else {
		struct imap_thread_request req;
		if (imap_thread_parse(cmd->args, cmd->nargs, &req, &err) < 0) {
			CHECK(err.text != NULL);
			buf_printf(out, "ERR:%d", (int)err.kind);
			return;
		}
		buf_printf(out, "%s cs=%d keys=%zu",
			   req.algorithm == IMAP_THREAD_REFERENCES ? "REFERENCES" : "ORDEREDSUBJECT",
			   (int)req.charset, req.nkeys);
	}
}

/* Feed line in chunks of `chunk` bytes; dump the parse of the command. */
static char *parse_line(const char *line, size_t chunk)
{
	struct imap_reader *r = imap_reader_create(&lim);
	struct buf out;
	size_t len = strlen(line), pos = 0;
	bool done = false;

	buf_init(&out, BUF_UNLIMITED);
	while (pos < len && !done) {
		struct imap_read_result res;
		size_t n = chunk < len - pos ? chunk : len - pos;

		imap_reader_feed(r, line + pos, n, &res);
		pos += res.consumed;
		if (res.status == IMAP_READ_OK) {
			CHECK(res.cmd.cmd == IMAP_CMD_SORT || res.cmd.cmd == IMAP_CMD_THREAD);
			dump_sort(&out, &res.cmd);
			done = true;
		} else if (res.status == IMAP_READ_ERROR) {
			buf_append_str(&out, "READER-ERROR");
			done = true;
		}
	}
	imap_reader_destroy(&r);
	return buf_steal(&out);
}

static void check_parse(const char *line, const char *expected)
{
	char *whole = parse_line(line, strlen(line));
	char *bytes = parse_line(line, 1);

	CHECK_STR(whole, expected);
	CHECK_STR(bytes, expected);
	free(whole);
	free(bytes);
}

static void test_parse_sort(void)
{
	check_parse("a SORT (SUBJECT) UTF-8 ALL\r\n", "SUBJECT cs=1 keys=1");
	check_parse("a UID SORT (REVERSE DATE SUBJECT) us-ascii FROM x SINCE 1-Jan-2020\r\n",
		    "-DATE,SUBJECT cs=2 keys=4");
	check_parse("a SORT (arrival cc date from size subject to displayfrom displayto) UTF-8 ALL\r\n",
		    "ARRIVAL,CC,DATE,FROM,SIZE,SUBJECT,TO,DISPLAYFROM,DISPLAYTO cs=1 keys=1");
	check_parse("a SORT (REVERSE ARRIVAL REVERSE SIZE) \"UTF-8\" ALL\r\n",
		    "-ARRIVAL,-SIZE cs=1 keys=1");
	check_parse("a SORT (SUBJECT) {5+}\r\nUTF-8 ALL\r\n", "SUBJECT cs=1 keys=1");
	/* ESORT (RFC 5267) */
	check_parse("a SORT RETURN (MIN MAX) (DATE) UTF-8 ALL\r\n", "RET:3 DATE cs=1 keys=1");
	check_parse("a SORT RETURN (COUNT ALL) (DATE) UTF-8 ALL\r\n", "RET:12 DATE cs=1 keys=1");
	check_parse("a SORT RETURN () (DATE) UTF-8 ALL\r\n", "RET:8 DATE cs=1 keys=1");
	/* errors: 1 = syntax (BAD), 5 = charset (NO [BADCHARSET]) */
	check_parse("a SORT (SUBJECT) ISO-8859-1 ALL\r\n", "ERR:5");
	check_parse("a SORT (SUBJECT) NIL ALL\r\n", "ERR:1");
	check_parse("a SORT (SUBJECT) UTF-8\r\n", "ERR:1");
	check_parse("a SORT (SUBJECT)\r\n", "ERR:1");
	check_parse("a SORT SUBJECT UTF-8 ALL\r\n", "ERR:1");
	check_parse("a SORT () UTF-8 ALL\r\n", "ERR:1");
	check_parse("a SORT (BOGUS) UTF-8 ALL\r\n", "ERR:1");
	check_parse("a SORT (REVERSE) UTF-8 ALL\r\n", "ERR:1");
	check_parse("a SORT (REVERSE REVERSE DATE) UTF-8 ALL\r\n", "ERR:1");
	check_parse("a SORT (DATE REVERSE) UTF-8 ALL\r\n", "ERR:1");
	check_parse("a SORT ((DATE)) UTF-8 ALL\r\n", "ERR:1");
	check_parse("a SORT RETURN (SAVE) (DATE) UTF-8 ALL\r\n", "RET:16 DATE cs=1 keys=1");
	check_parse("a SORT RETURN (SAVE MAX) (DATE) UTF-8 $\r\n", "RET:18 DATE cs=1 keys=1");
	check_parse("a SORT RETURN (PARTIAL 1:5) (DATE) UTF-8 ALL\r\n", "ERR:1");
	check_parse("a SORT RETURN (MIN) UTF-8 ALL\r\n", "ERR:1");
	check_parse("a SORT RETURN DATE UTF-8 ALL\r\n", "ERR:1");
	check_parse("a SORT RETURN\r\n", "ERR:1");
	check_parse("a SORT\r\n", "ERR:1");
	check_parse("a SORT (DATE) UTF-8 CHARSET UTF-8 ALL\r\n", "ERR:1");
	check_parse("a SORT (DATE) UTF-8 RETURN () ALL\r\n", "ERR:1");
}

static void test_parse_limits(void)
{
	struct buf line;
	char *got;

	/* exactly the maximum is accepted, one more is refused */
	buf_init(&line, BUF_UNLIMITED);
	buf_append_str(&line, "a SORT (");
	for (int i = 0; i < IMAP_SORT_MAX_CRITERIA; i++)
		buf_append_str(&line, i ? " REVERSE SIZE" : "REVERSE SIZE");
	buf_append_str(&line, ") UTF-8 ALL\r\n");
	got = parse_line(buf_cstr(&line), line.len);
	CHECK(strncmp(got, "-SIZE,", 6) == 0);
	free(got);
	buf_reset(&line);
	buf_append_str(&line, "a SORT (");
	for (int i = 0; i <= IMAP_SORT_MAX_CRITERIA; i++)
		buf_append_str(&line, " SIZE");
	buf_append_str(&line, ") UTF-8 ALL\r\n");
	got = parse_line(buf_cstr(&line), line.len);
	CHECK_STR(got, "ERR:1");
	free(got);
	buf_free(&line);
}

static void test_parse_thread(void)
{
	check_parse("a THREAD REFERENCES UTF-8 ALL\r\n", "REFERENCES cs=1 keys=1");
	check_parse("a UID THREAD orderedsubject US-ASCII SUBJECT x\r\n",
		    "ORDEREDSUBJECT cs=2 keys=2");
	check_parse("a THREAD REFERENCES KOI8-R ALL\r\n", "ERR:5");
	check_parse("a THREAD REFS UTF-8 ALL\r\n", "ERR:1");
	check_parse("a THREAD REFERENCES UTF-8\r\n", "ERR:1");
	check_parse("a THREAD REFERENCES\r\n", "ERR:1");
	check_parse("a THREAD\r\n", "ERR:1");
	check_parse("a THREAD (REFERENCES) UTF-8 ALL\r\n", "ERR:1");
}

/* ---- sorting ---- */

static void order(struct imap_sort_msg *m, size_t n, const char *spec, char *out, size_t outsz)
{
	struct imap_sort_criterion crit[8];
	size_t nc = 0;
	char tmp[256], *save = NULL;
	size_t pos = 0;

	snprintf(tmp, sizeof(tmp), "%s", spec);
	for (char *w = strtok_r(tmp, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
		bool rev = *w == '-';
		if (rev)
			w++;
		for (size_t k = 0; k < sizeof(key_names) / sizeof(key_names[0]); k++)
			if (strcmp(w, key_names[k]) == 0)
				crit[nc++] = (struct imap_sort_criterion){ (enum imap_sort_key)k, rev };
	}
	imap_sort_messages(m, n, crit, nc);
	out[0] = 0;
	for (size_t i = 0; i < n; i++)
		pos += (size_t)snprintf(out + pos, outsz - pos, "%s%u", i ? " " : "", m[i].seq);
}

static void test_sort_keys(void)
{
	/* seq, uid, arrival, sent, size, subject, from, to, cc, dfrom, dto */
	static const struct imap_sort_msg base[] = {
		{ 1, 11, 500, 100, 300, "Re: beta", "zed", "amy", NULL, "Zed Z", "amy@x", NULL, NULL, NULL },
		{ 2, 12, 400, 300, 100, "alpha", "Bob", "carl", "x", "bob@y", NULL, NULL, NULL, NULL },
		{ 3, 13, 300, 200, 200, "[list] Beta (fwd)", "alice", NULL, "a", "Alice", "Émile", NULL, NULL, NULL },
		{ 4, 14, 200, 200, 100, "ALPHA", "bob", "Amy", "", NULL, "émile", NULL, NULL, NULL },
		{ 5, 15, 100, 50, 400, NULL, "", "", "b", "", "Zoë", NULL, NULL, NULL },
	};
	struct imap_sort_msg m[5];
	char got[128];
	const struct {
		const char *spec, *want;
	} cases[] = {
		{ "ARRIVAL", "5 4 3 2 1" },
		{ "-ARRIVAL", "1 2 3 4 5" },
		{ "DATE", "5 1 3 4 2" },            /* 3 and 4 tie: sequence order */
		{ "-DATE", "2 3 4 1 5" },           /* the tie stays ascending */
		{ "SIZE", "2 4 3 1 5" },
		{ "SIZE -ARRIVAL", "2 4 3 1 5" },
		{ "SIZE ARRIVAL", "4 2 3 1 5" },
		{ "SUBJECT", "5 2 4 1 3" },         /* "", alpha x2, beta x2 */
		{ "SUBJECT -DATE", "5 2 4 3 1" },
		{ "-SUBJECT", "1 3 2 4 5" },
		{ "FROM", "5 3 2 4 1" },            /* bob == Bob: tie by sequence */
		{ "TO", "3 5 1 4 2" },              /* missing and "" sort first */
		{ "CC", "1 4 3 5 2" },
		{ "DISPLAYFROM", "4 5 3 2 1" },
		{ "DISPLAYTO", "2 1 3 4 5" },       /* Émile == émile (casemap), then Zoë */
		{ "-DISPLAYTO SIZE", "5 4 3 1 2" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(m, base, sizeof(base));
		order(m, 5, cases[i].spec, got, sizeof(got));
		if (strcmp(got, cases[i].want) != 0)
			fprintf(stderr, "  sort %s\n", cases[i].spec);
		CHECK_STR(got, cases[i].want);
	}
	/* the records move whole */
	memcpy(m, base, sizeof(base));
	order(m, 5, "ARRIVAL", got, sizeof(got));
	CHECK(m[0].uid == 15 && m[4].uid == 11);
	CHECK_STR(m[4].subject, "Re: beta");
}

static void test_sort_large(void)
{
	size_t n = 10000;
	struct imap_sort_msg *m = calloc(n, sizeof(*m));
	char (*subj)[32] = calloc(n, sizeof(*subj));
	struct imap_sort_criterion crit[] = { { IMAP_SORT_SUBJECT, false },
					      { IMAP_SORT_DATE, true } };
	bool ok = true;

	for (size_t i = 0; i < n; i++) {
		m[i].seq = (uint32_t)i + 1;
		m[i].uid = (uint32_t)i + 100;
		m[i].sent_date = (time_t)((i * 7919) % 1000);
		snprintf(subj[i], sizeof(subj[i]), "%sTopic %03zu", i % 3 ? "Re: " : "",
			 (i * 31) % 500);
		m[i].subject = subj[i];
	}
	imap_sort_messages(m, n, crit, 2);
	for (size_t i = 1; i < n; i++) {
		int c = strcmp(strchr(m[i - 1].subject, 'T'), strchr(m[i].subject, 'T'));
		if (c > 0 || (c == 0 && m[i - 1].sent_date < m[i].sent_date) ||
		    (c == 0 && m[i - 1].sent_date == m[i].sent_date && m[i - 1].seq > m[i].seq))
			ok = false;
	}
	CHECK(ok);
	free(m);
	free(subj);
}

int main(void)
{
	RUN(test_parse_sort);
	RUN(test_parse_limits);
	RUN(test_parse_thread);
	RUN(test_sort_keys);
	RUN(test_sort_large);
	return unit_summary("imap-sort");
}
