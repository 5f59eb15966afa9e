/* imap/parse: SEARCH programs (every key of RFC 3501 and RFC 9051, MODSEQ,
 * CHARSET, RETURN options, nesting and its limit) and sequence sets
 * (parsing, normalisation, '*' resolution, membership, iteration, 32-bit
 * edge cases).  Search commands go through the reader, whole and one byte
 * at a time, and must give the same AST. */
#include "unit.h"
#include "imap/parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) ((struct slice){ (lit), sizeof(lit) - 1 })

static const struct imap_reader_limits lim = {
	IMAP_MAX_LINE, 1024 * 1024, IMAP_MAX_ARGS, IMAP_MAX_DEPTH, false,
};

static const char *const type_names[] = {
	"AND", "OR", "NOT", "SEQ", "UID", "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED",
	"NEW", "OLD", "RECENT", "SEEN", "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED",
	"UNSEEN", "KEYWORD", "UNKEYWORD", "BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO",
	"HEADER", "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE", "LARGER",
	"SMALLER", "MODSEQ",
};

static void dump_set(struct buf *out, const struct imap_seqset *set)
{
	if (set->saved) {
		buf_append_str(out, "$");
		return;
	}
	for (size_t i = 0; i < set->count; i++) {
		const struct imap_seq_range *r = &set->ranges[i];

		if (i > 0)
			buf_append_str(out, ",");
		if (r->lo == IMAP_SEQ_STAR)
			buf_append_str(out, "*");
		else if (r->lo == r->hi)
			buf_printf(out, "%u", r->lo);
		else if (r->hi == IMAP_SEQ_STAR)
			buf_printf(out, "%u:*", r->lo);
		else
			buf_printf(out, "%u:%u", r->lo, r->hi);
	}
}

static void dump_key(struct buf *out, const struct imap_search_key *k)
{
	buf_append_str(out, type_names[k->type]);
	switch (k->type) {
	case IMAP_SK_AND: case IMAP_SK_OR: case IMAP_SK_NOT:
		buf_append_str(out, "(");
		for (size_t i = 0; i < k->count; i++) {
			if (i > 0)
				buf_append_str(out, " ");
			dump_key(out, &k->children[i]);
		}
		buf_append_str(out, ")");
		break;
	case IMAP_SK_SEQSET: case IMAP_SK_UID:
		buf_append_str(out, ":");
		dump_set(out, &k->set);
		break;
	case IMAP_SK_KEYWORD: case IMAP_SK_UNKEYWORD: case IMAP_SK_BCC: case IMAP_SK_BODY:
	case IMAP_SK_CC: case IMAP_SK_FROM: case IMAP_SK_SUBJECT: case IMAP_SK_TEXT:
	case IMAP_SK_TO:
		buf_printf(out, ":%.*s", (int)k->str.len, k->str.p);
		break;
	case IMAP_SK_HEADER:
		buf_printf(out, ":%.*s=%.*s", (int)k->str.len, k->str.p, (int)k->str2.len,
			   k->str2.p);
		break;
	case IMAP_SK_BEFORE: case IMAP_SK_ON: case IMAP_SK_SINCE: case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON: case IMAP_SK_SENTSINCE:
		buf_printf(out, ":%04d-%02d-%02d", k->date.year, k->date.month, k->date.day);
		break;
	case IMAP_SK_LARGER: case IMAP_SK_SMALLER:
		buf_printf(out, ":%llu", (unsigned long long)k->number);
		break;
	case IMAP_SK_MODSEQ:
		if (k->entry_name.len > 0)
			buf_printf(out, ":%.*s/%d", (int)k->entry_name.len, k->entry_name.p,
				   (int)k->entry_type);
		buf_printf(out, ":%llu", (unsigned long long)k->number);
		break;
	default:
		break;
	}
}

/* Parse "t SEARCH <args>" fed `chunk` bytes at a time; returns a malloc'd
 * description of the program or of the error. */
static char *search_chunked(const char *args, size_t chunk)
{
	struct imap_reader *r = imap_reader_create(&lim);
	struct imap_read_result res;
	struct imap_arena arena = { 0 };
	struct imap_search_program prog;
	struct imap_parse_error err = { 0, NULL };
	struct buf out;
	char *line = xasprintf("t SEARCH %s\r\n", args);
	size_t len = strlen(line), pos = 0;

	buf_init(&out, BUF_UNLIMITED);
	res.status = IMAP_READ_NEED_MORE;
	while (pos < len) {
		size_t n = chunk < len - pos ? chunk : len - pos;

		imap_reader_feed(r, line + pos, n, &res);
		pos += res.consumed;
		if (res.status == IMAP_READ_OK || res.status == IMAP_READ_ERROR)
			break;
	}
	if (res.status != IMAP_READ_OK) {
		buf_printf(&out, "READER %s", res.error.text ? res.error.text : "?");
	} else if (imap_search_parse(res.cmd.args, res.cmd.nargs, &arena, &prog, &err) < 0) {
		buf_printf(&out, "ERR %d %s", (int)err.kind, err.text);
	} else {
		if (prog.charset != IMAP_CHARSET_DEFAULT)
			buf_printf(&out, "charset=%d ", (int)prog.charset);
		if (prog.esearch)
			buf_printf(&out, "ret=%u ", prog.ret);
		if (prog.uses_modseq)
			buf_append_str(&out, "modseq ");
		dump_key(&out, &prog.root);
	}
	imap_arena_clear(&arena);
	imap_reader_destroy(&r);
	free(line);
	return buf_steal(&out);
}

static void check_search(const char *args, const char *expected)
{
	char *whole = search_chunked(args, 1 << 20);
	char *bytes = search_chunked(args, 1);

	CHECK_STR(whole, expected);
	CHECK_STR(bytes, expected);
	free(whole);
	free(bytes);
}

static void test_search_flags(void)
{
	check_search("ALL", "AND(ALL)");
	check_search("answered deleted draft flagged new old recent seen",
		     "AND(ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN)");
	check_search("UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN",
		     "AND(UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN)");
	check_search("KEYWORD $Junk UNKEYWORD foo", "AND(KEYWORD:$Junk UNKEYWORD:foo)");
}

static void test_search_strings(void)
{
	check_search("BCC a CC \"b c\" FROM {3}\r\nd e TO f SUBJECT g BODY h TEXT i",
		     "AND(BCC:a CC:b c FROM:d e TO:f SUBJECT:g BODY:h TEXT:i)");
	check_search("HEADER Message-ID \"<x@y>\"", "AND(HEADER:Message-ID=<x@y>)");
	check_search("HEADER X-Spam \"\"", "AND(HEADER:X-Spam=)");
	check_search("SUBJECT 123", "AND(SUBJECT:123)");
	check_search("SUBJECT NIL", "AND(SUBJECT:NIL)");
	check_search("CHARSET UTF-8 TEXT \"caf\xc3\xa9\"", "charset=1 AND(TEXT:caf\xc3\xa9)");
	check_search("charset us-ascii TEXT x", "charset=2 AND(TEXT:x)");
}

static void test_search_dates_numbers(void)
{
	check_search("BEFORE 1-Feb-1994 ON 01-feb-1994 SINCE \"15-Mar-2020\"",
		     "AND(BEFORE:1994-02-01 ON:1994-02-01 SINCE:2020-03-15)");
	check_search("SENTBEFORE 1-Jan-2000 SENTON 29-Feb-2000 SENTSINCE 31-Dec-1999",
		     "AND(SENTBEFORE:2000-01-01 SENTON:2000-02-29 SENTSINCE:1999-12-31)");
	check_search("LARGER 1000 SMALLER 9223372036854775807",
		     "AND(LARGER:1000 SMALLER:9223372036854775807)");
	check_search("MODSEQ 620162338", "modseq AND(MODSEQ:620162338)");
	check_search("MODSEQ \"/flags/\\\\draft\" all 620162338",
		     "modseq AND(MODSEQ:/flags/\\draft/3:620162338)");
	check_search("MODSEQ \"/flags/$Junk\" priv 1 MODSEQ \"/flags/x\" SHARED 2",
		     "modseq AND(MODSEQ:/flags/$Junk/1:1 MODSEQ:/flags/x/2:2)");
}

static void test_search_sets_and_logic(void)
{
	check_search("1:3,5 UID 10:*", "AND(SEQ:1:3,5 UID:10:*)");
	check_search("2,1,3", "AND(SEQ:1:3)");
	check_search("* $", "AND(SEQ:* SEQ:$)");
	check_search("UID $", "AND(UID:$)");
	check_search("NOT SEEN", "AND(NOT(SEEN))");
	check_search("OR SEEN FLAGGED", "AND(OR(SEEN FLAGGED))");
	check_search("OR (SEEN FROM x) NOT (DELETED 1:2)",
		     "AND(OR(AND(SEEN FROM:x) NOT(AND(DELETED SEQ:1:2))))");
	check_search("NOT NOT NOT ALL", "AND(NOT(NOT(NOT(ALL))))");
	check_search("RETURN (MIN MAX) UNSEEN", "ret=3 AND(UNSEEN)");
	check_search("RETURN () ALL", "ret=8 AND(ALL)");
	check_search("RETURN (COUNT ALL SAVE) CHARSET UTF-8 ALL", "charset=1 ret=28 AND(ALL)");
}

static void test_search_errors(void)
{
	check_search("", "ERR 1 Missing search key");
	check_search("FOO", "ERR 1 Unknown search key");
	check_search("\"ALL\"", "ERR 1 Invalid search key");
	check_search("()", "ERR 1 Missing search key");
	check_search("FROM", "ERR 1 Missing search string");
	check_search("FROM (a)", "ERR 1 Missing search string");
	check_search("HEADER", "ERR 1 Missing header field name");
	check_search("HEADER \"\" x", "ERR 1 Missing header field name");
	check_search("HEADER \"a:b\" x", "ERR 1 Invalid header field name");
	check_search("HEADER Subject", "ERR 1 Missing search string");
	check_search("BEFORE 1-Foo-2000", "ERR 1 Invalid search date");
	check_search("BEFORE 30-Feb-2000", "ERR 1 Invalid search date");
	check_search("SINCE", "ERR 1 Invalid search date");
	check_search("LARGER x", "ERR 1 Invalid search size");
	check_search("LARGER 9223372036854775808", "ERR 1 Invalid search size");
	check_search("SMALLER", "ERR 1 Invalid search size");
	check_search("KEYWORD \\Seen", "ERR 1 Invalid keyword");
	check_search("KEYWORD \"a b\"", "ERR 1 Invalid keyword");
	check_search("UID", "ERR 1 Missing UID set");
	check_search("UID 0", "ERR 1 Invalid sequence set");
	check_search("UID 1:", "ERR 1 Invalid sequence set");
	check_search("1,,2", "ERR 1 Invalid sequence set");
	check_search("4294967296", "ERR 1 Invalid sequence set");
	check_search("NOT", "ERR 1 Missing search key");
	check_search("OR SEEN", "ERR 1 Missing search key");
	check_search("MODSEQ", "ERR 1 Invalid MODSEQ value");
	check_search("MODSEQ 0x1", "ERR 1 Invalid MODSEQ value");
	check_search("MODSEQ \"/flags/x\" 5", "ERR 1 Missing MODSEQ entry type");
	check_search("MODSEQ \"/flags/x\" mine 5", "ERR 1 Invalid MODSEQ entry type");
	check_search("MODSEQ \"/other/x\" all 5", "ERR 1 Invalid MODSEQ entry name");
	check_search("MODSEQ \"/flags/x\" all", "ERR 1 Invalid MODSEQ value");
	check_search("CHARSET", "ERR 1 Missing charset");
	check_search("CHARSET ISO-8859-1 ALL", "ERR 5 Unsupported charset");
	check_search("CHARSET UTF-8", "ERR 1 Missing search key");
	check_search("RETURN ALL", "ERR 1 RETURN needs a list of options");
	check_search("RETURN (FOO) ALL", "ERR 1 Unknown RETURN option");
	check_search("CHARSET UTF-8 RETURN (ALL) ALL", "ERR 1 Unknown search key");
}

static void test_search_depth(void)
{
	struct buf b;
	char *t;

	/* a deep chain of NOT is refused, not recursed into without bound */
	buf_init(&b, BUF_UNLIMITED);
	for (int i = 0; i < 5000; i++)
		buf_append_str(&b, "NOT ");
	buf_append_str(&b, "ALL");
	t = search_chunked(buf_cstr(&b), 1 << 20);
	CHECK_STR(t, "ERR 1 Search program too deeply nested");
	free(t);
	buf_reset(&b);
	for (int i = 0; i < IMAP_MAX_SEARCH_DEPTH - 2; i++)
		buf_append_str(&b, "NOT ");
	buf_append_str(&b, "ALL");
	t = search_chunked(buf_cstr(&b), 1 << 20);
	CHECK(strncmp(t, "AND(NOT(NOT(", 12) == 0);
	free(t);
	/* OR chains nest in their second argument */
	buf_reset(&b);
	for (int i = 0; i < 200; i++)
		buf_append_str(&b, "OR SEEN ");
	buf_append_str(&b, "ALL");
	t = search_chunked(buf_cstr(&b), 1 << 20);
	CHECK_STR(t, "ERR 1 Search program too deeply nested");
	free(t);
	/* parentheses nest through the reader, bounded by its depth limit */
	buf_reset(&b);
	for (int i = 0; i < 150; i++)
		buf_append_str(&b, "(");
	buf_append_str(&b, "ALL");
	for (int i = 0; i < 150; i++)
		buf_append_str(&b, ")");
	t = search_chunked(buf_cstr(&b), 1 << 20);
	CHECK_STR(t, "READER Too deeply nested");
	free(t);
	buf_free(&b);
}

/* ---- sequence sets ---- */

static char *set_str(const char *text, bool resolve, uint32_t max)
{
	struct imap_arena a = { 0 };
	struct imap_seqset set;
	struct imap_parse_error err;
	struct buf out;

	buf_init(&out, BUF_UNLIMITED);
	if (imap_seqset_parse(slice_from(text), &a, &set, &err) < 0) {
		buf_printf(&out, "ERR %s", err.text);
	} else {
		if (resolve)
			imap_seqset_resolve(&set, max, &a, &set);
		dump_set(&out, &set);
	}
	imap_arena_clear(&a);
	return buf_steal(&out);
}

static void check_set(const char *text, bool resolve, uint32_t max, const char *expected)
{
	char *s = set_str(text, resolve, max);

	CHECK_STR(s, expected);
	free(s);
}

static void test_seqset_parse(void)
{
	check_set("1", false, 0, "1");
	check_set("1:4294967295", false, 0, "1:4294967295");
	check_set("4294967295", false, 0, "4294967295");
	check_set("5:1", false, 0, "1:5");
	check_set("3,1,2", false, 0, "1:3");
	check_set("1:3,2:6,8,10:9", false, 0, "1:6,8:10");
	check_set("1,3,5", false, 0, "1,3,5");
	check_set("4294967294,4294967295,1", false, 0, "1,4294967294:4294967295");
	check_set("1:4294967295,5", false, 0, "1:4294967295");
	check_set("*", false, 0, "*");
	check_set("1:*", false, 0, "1:*");
	check_set("*:4", false, 0, "4:*");
	check_set("$", false, 0, "$");
	static const char *const bad[] = {
		"", "0", "0:5", "5:0", "01", "4294967296", "99999999999999999999", "1,", ",1",
		"1::2", "1:2:3", "a", "1 2", "-1", "$,1", "1,$", "**", "1:*:", "+1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_set(bad[i], false, 0, "ERR Invalid sequence set");
}

static void test_seqset_resolve(void)
{
	check_set("*", true, 10, "10");
	check_set("1:*", true, 10, "1:10");
	check_set("15:*", true, 10, "10:15");
	check_set("*:15", true, 10, "10:15");
	check_set("*,1:3,2", true, 10, "1:3,10");
	check_set("1:*", true, 0, "");
	check_set("1:*,4", true, 0, "4");
	check_set("9,*", true, 10, "9:10");
	check_set("4294967295:*", true, 4294967295u, "4294967295");
	check_set("1,5", true, 3, "1,5");
}

static void test_seqset_members(void)
{
	struct imap_arena a = { 0 };
	struct imap_seqset set;
	struct imap_parse_error err;
	struct imap_seqset_iter it;
	uint32_t n, got[10];
	size_t k = 0;

	CHECK(imap_seqset_parse(S("7,2:4,9:*"), &a, &set, &err) == 0);
	CHECK(set.has_star);
	imap_seqset_resolve(&set, 10, &a, &set);
	CHECK(!set.has_star && set.count == 3);
	CHECK(!imap_seqset_contains(&set, 0) && !imap_seqset_contains(&set, 1));
	CHECK(imap_seqset_contains(&set, 2) && imap_seqset_contains(&set, 4));
	CHECK(!imap_seqset_contains(&set, 5) && imap_seqset_contains(&set, 7));
	CHECK(!imap_seqset_contains(&set, 8) && imap_seqset_contains(&set, 10));
	CHECK(!imap_seqset_contains(&set, 11));
	CHECK(imap_seqset_max(&set) == 10 && imap_seqset_size(&set) == 6);
	imap_seqset_iter_init(&it, &set);
	while (k < 10 && imap_seqset_iter_next(&it, &n))
		got[k++] = n;
	CHECK(k == 6 && got[0] == 2 && got[2] == 4 && got[3] == 7 && got[4] == 9 && got[5] == 10);

	/* the top of the 32-bit range: no wrap in iteration or size */
	CHECK(imap_seqset_parse(S("4294967290:4294967295"), &a, &set, &err) == 0);
	CHECK(imap_seqset_size(&set) == 6 && imap_seqset_contains(&set, 4294967295u));
	k = 0;
	imap_seqset_iter_init(&it, &set);
	while (k < 10 && imap_seqset_iter_next(&it, &n))
		got[k++] = n;
	CHECK(k == 6 && got[5] == 4294967295u);
	CHECK(imap_seqset_parse(S("1:4294967295"), &a, &set, &err) == 0);
	CHECK(imap_seqset_size(&set) == 4294967295ull);

	/* empty resolved set */
	CHECK(imap_seqset_parse(S("*"), &a, &set, &err) == 0);
	imap_seqset_resolve(&set, 0, &a, &set);
	CHECK(set.count == 0 && imap_seqset_max(&set) == 0 && !imap_seqset_contains(&set, 1));
	imap_seqset_iter_init(&it, &set);
	CHECK(!imap_seqset_iter_next(&it, &n));

	/* a random differential test against a bitmap */
	unsigned seed = 99;
	for (int round = 0; round < 200; round++) {
		char text[256];
		bool bits[41] = { false };
		size_t len = 0;
		int parts = 1 + round % 6;

		for (int i = 0; i < parts; i++) {
			seed = seed * 1103515245 + 12345;
			unsigned lo = 1 + (seed >> 16) % 40;
			seed = seed * 1103515245 + 12345;
			unsigned hi = 1 + (seed >> 16) % 40;
			bool range = (seed >> 8) & 1;

			len += (size_t)sprintf(text + len, "%s%u", i ? "," : "", lo);
			if (range)
				len += (size_t)sprintf(text + len, ":%u", hi);
			else
				hi = lo;
			for (unsigned v = lo < hi ? lo : hi; v <= (lo < hi ? hi : lo); v++)
				bits[v] = true;
		}
		CHECK(imap_seqset_parse((struct slice){ text, len }, &a, &set, &err) == 0);
		for (uint32_t v = 0; v <= 40; v++)
			CHECK(imap_seqset_contains(&set, v) == bits[v]);
		for (size_t i = 1; i < set.count; i++)
			CHECK((uint64_t)set.ranges[i - 1].hi + 1 < set.ranges[i].lo);
	}
	imap_arena_clear(&a);
}

int main(void)
{
	RUN(test_search_flags);
	RUN(test_search_strings);
	RUN(test_search_dates_numbers);
	RUN(test_search_sets_and_logic);
	RUN(test_search_errors);
	RUN(test_search_depth);
	RUN(test_seqset_parse);
	RUN(test_seqset_resolve);
	RUN(test_seqset_members);
	return unit_summary("imap-search");
}
