/* mail/header: header section length, field iteration (folding, bare LF,
 * malformed lines, obsolete "Name : value"), unfolding, lookup.  Inputs
 * are exact-size heap copies and every prefix of each is walked, so ASan
 * catches any read past the end. */
#include "unit.h"
#include "lib/buf.h"
#include "mail/header.h"

#include <stdlib.h>

static char *heap_copy(const char *s, size_t len)
{
	char *p = malloc(len ? len : 1);
	memcpy(p, s, len);
	return p;
}

static bool slice_is(struct slice s, const char *want)
{
	return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

static void test_section_length(void)
{
	const char *m1 = "A: b\r\nC: d\r\n\r\nbody\r\n";
	const char *m2 = "A: b\nC: d\n\nbody\n";
	const char *m3 = "A: b\r\nC: d\r\n";
	const char *m4 = "\r\nbody";
	const char *m5 = "A: b\r\n \r\n\r\nbody";   /* a WSP-only line is a fold, not the end */
	const char *m6 = "A: b\r\n\nbody";

	CHECK(header_section_length(m1, strlen(m1)) == 14);
	CHECK(header_section_length(m2, strlen(m2)) == 11);
	CHECK(header_section_length(m3, strlen(m3)) == strlen(m3));
	CHECK(header_section_length(m4, strlen(m4)) == 2);
	CHECK(header_section_length(m5, strlen(m5)) == 11);
	CHECK(header_section_length(m6, strlen(m6)) == 7);
	CHECK(header_section_length("", 0) == 0);
	CHECK(header_section_length("A: b\r", 5) == 5);
	CHECK(header_section_length("\n", 1) == 1);
	/* length is the truth: the separator past len is not seen */
	CHECK(header_section_length(m1, 13) == 13);
}

static void test_iter_basic(void)
{
	const char *m = "From: a@b.test\r\n"
			"Subject: hello\r\n"
			" world\r\n"
			"\tagain\r\n"
			"X-Empty:\r\n"
			"To : c@d.test\r\n"
			"\r\n"
			"Body: not a header\r\n";
	char *copy = heap_copy(m, strlen(m));
	struct header_iter it;
	struct header_field f;

	header_iter_init(&it, copy, strlen(m));
	CHECK(header_iter_next(&it, &f) == 1);
	CHECK(slice_is(f.name, "From"));
	CHECK(slice_is(f.value, " a@b.test"));
	CHECK(slice_is(f.raw, "From: a@b.test\r\n"));
	CHECK(header_iter_next(&it, &f) == 1);
	CHECK(slice_is(f.name, "Subject"));
	CHECK(slice_is(f.value, " hello\r\n world\r\n\tagain"));
	CHECK(slice_is(f.raw, "Subject: hello\r\n world\r\n\tagain\r\n"));
	char *u = header_value_unfold(f.value);
	CHECK_STR(u, "hello world\tagain");
	free(u);
	CHECK(header_iter_next(&it, &f) == 1);
	CHECK(slice_is(f.name, "X-Empty"));
	CHECK(f.value.len == 0);
	CHECK(header_iter_next(&it, &f) == 1);
	CHECK(slice_is(f.name, "To"));               /* obsolete WSP before colon */
	CHECK(slice_is(f.value, " c@d.test"));
	CHECK(header_iter_next(&it, &f) == 0);
	CHECK(header_iter_next(&it, &f) == 0);       /* stays at the end */
	CHECK(it.done);
	free(copy);
}

static void test_iter_bare_lf_and_end(void)
{
	const char *m = "A: 1\nB: 2\n x\nC: 3";   /* no line end on the last field */
	char *copy = heap_copy(m, strlen(m));
	struct header_iter it;
	struct header_field f;

	header_iter_init(&it, copy, strlen(m));
	CHECK(header_iter_next(&it, &f) == 1);
	CHECK(slice_is(f.name, "A") && slice_is(f.value, " 1") && slice_is(f.raw, "A: 1\n"));
	CHECK(header_iter_next(&it, &f) == 1);
	CHECK(slice_is(f.name, "B") && slice_is(f.value, " 2\n x"));
	char *u = header_value_unfold(f.value);
	CHECK_STR(u, "2 x");
	free(u);
	CHECK(header_iter_next(&it, &f) == 1);
	CHECK(slice_is(f.name, "C") && slice_is(f.value, " 3") && slice_is(f.raw, "C: 3"));
	CHECK(header_iter_next(&it, &f) == 0);
	free(copy);
}

static void test_iter_malformed(void)
{
	const char *m = " leading continuation\r\n"
			"no colon here\r\n"
			"  and its continuation\r\n"
			"Bad Name: x\r\n"
			": empty name\r\n"
			"From foo@bar Mon Jan  1 00:00:00 2024\r\n"
			"Bad\x01" "Ctl: x\r\n"
			"Good: yes\r\n"
			"\r\n";
	char *copy = heap_copy(m, strlen(m));
	struct header_iter it;
	struct header_field f;
	int bad = 0, good = 0, r;

	header_iter_init(&it, copy, strlen(m));
	CHECK(header_iter_next(&it, &f) == -1);
	CHECK(slice_is(f.raw, " leading continuation\r\n"));
	CHECK(header_iter_next(&it, &f) == -1);
	CHECK(slice_is(f.raw, "no colon here\r\n  and its continuation\r\n"));
	while ((r = header_iter_next(&it, &f)) != 0) {
		if (r < 0)
			bad++;
		else {
			good++;
			CHECK(slice_is(f.name, "Good"));
		}
	}
	CHECK(bad == 4);
	CHECK(good == 1);
	free(copy);
}

static void test_unfold(void)
{
	char *u;

	u = header_value_unfold(SLICE_C("  a\r\n b \r\n\tc  "));
	CHECK_STR(u, "a b \tc");
	free(u);
	u = header_value_unfold(SLICE_C(""));
	CHECK_STR(u, "");
	free(u);
	u = header_value_unfold(SLICE_C(" \r\n "));
	CHECK_STR(u, "");
	free(u);
	/* no CR or LF ever survives */
	u = header_value_unfold(SLICE_C("a\rb\nc\r\nd"));
	CHECK_STR(u, "abcd");
	free(u);
	u = header_value_unfold(SLICE_C("=?utf-8?q?x?=\r\n =?utf-8?q?y?="));
	CHECK_STR(u, "=?utf-8?q?x?= =?utf-8?q?y?=");
	free(u);
}

static void test_find(void)
{
	const char *m = "Received: one\r\n"
			"From: a@b.test\r\n"
			"received: two\r\n"
			"  folded\r\n"
			"RECEIVED : three\r\n"
			"\r\n"
			"Received: in the body\r\n";
	char *copy = heap_copy(m, strlen(m));
	struct header_field f;
	unsigned count = 99;

	CHECK(header_find(copy, strlen(m), "received", &f, &count) == 1);
	CHECK(count == 3);
	CHECK(slice_is(f.value, " one"));
	CHECK(header_find(copy, strlen(m), "FROM", &f, NULL) == 1);
	CHECK(slice_is(f.value, " a@b.test"));
	CHECK(header_find(copy, strlen(m), "To", &f, &count) == 0);
	CHECK(count == 0);
	CHECK(header_find(copy, strlen(m), "Fro", &f, NULL) == 0);
	CHECK(header_find(copy, strlen(m), "From:", &f, NULL) == 0);
	free(copy);
}

/* Every prefix: iterate to the end, counting, with no read past len. */
static void test_prefixes(void)
{
	const char *msgs[] = {
		"From: a@b.test\r\nSubject: x\r\n y\r\n\r\nbody",
		"A: 1\nB\n: 2\n \n\nC: 3",
		" x\r\nno colon\r\nK : v\r\n\tw\r\n",
		"X:\r\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		size_t len = strlen(msgs[i]);
		for (size_t n = 0; n <= len; n++) {
			char *copy = heap_copy(msgs[i], n);
			struct header_iter it;
			struct header_field f;
			size_t hl = header_section_length(copy, n), covered = 0;
			int r, steps = 0;

			CHECK(hl <= n);
			header_iter_init(&it, copy, n);
			while ((r = header_iter_next(&it, &f)) != 0 && steps < 100) {
				steps++;
				CHECK(f.raw.p >= copy && f.raw.p + f.raw.len <= copy + n);
				covered += f.raw.len;
				if (r == 1) {
					char *u = header_value_unfold(f.value);
					CHECK(strchr(u, '\r') == NULL && strchr(u, '\n') == NULL);
					free(u);
				}
			}
			CHECK(steps < 100);
			CHECK(covered <= hl);
			free(copy);
		}
	}
}

int main(void)
{
	RUN(test_section_length);
	RUN(test_iter_basic);
	RUN(test_iter_bare_lf_and_end);
	RUN(test_iter_malformed);
	RUN(test_unfold);
	RUN(test_find);
	RUN(test_prefixes);
	return unit_summary("header");
}
