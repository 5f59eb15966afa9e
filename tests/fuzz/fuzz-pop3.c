/* Fuzz target for POP3 parsing: the input (after one flag byte) is a
 * stream of command lines; each line found by pop3_line_find() goes through
 * pop3_command_parse() and, for RETR/TOP/LIST/DELE/UIDL, the number parser.
 * The same bytes are also run through the RETR/TOP byte-stuffer, whole and
 * in chunks of 1-7 bytes, which must produce identical output.
 *
 * Input layout: byte 0 = flags (bit 0: TOP mode, bits 1-3: TOP line
 * count, bit 7: small line limit), bytes 1.. = the stream.
 *
 * Invariants checked: consumed byte counts stay within the input and make
 * progress; accepted lines and arguments hold no control character other
 * than TAB and lie inside the line; the stuffed output never holds a line
 * consisting of a lone "." before the end, and always ends with ".\r\n". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/parse.h"

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz-pop3: assertion failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

static void emit_buf(void *ctx, const char *p, size_t len)
{
	buf_append(ctx, p, len);
}

static void stuff_run(const char *p, size_t len, bool top, uint32_t lines, size_t step,
		      struct buf *out)
{
	struct pop3_stuff st;

	pop3_stuff_init(&st, top, lines);
	for (size_t i = 0; i < len && !st.done;) {
		size_t n = step == 0 || len - i < step ? len - i : step;
		size_t used = pop3_stuff_feed(&st, p + i, n, emit_buf, out);
		FUZZ_ASSERT(used <= n && (used == n || st.done));
		i += used;
	}
	pop3_stuff_finish(&st, emit_buf, out);
}

static void check_stuffed(const struct buf *out)
{
	const char *d = out->data;
	size_t n = out->len;

	FUZZ_ASSERT(n >= 3 && memcmp(d + n - 3, ".\r\n", 3) == 0);
	/* no terminator line before the real one: every line start with '.' is
	 * followed by another '.', except the last line */
	for (size_t i = 0; i + 3 < n; i++) {
		bool bol = i == 0 || d[i - 1] == '\n';
		if (bol && d[i] == '.') {
			FUZZ_ASSERT(i + 1 < n && d[i + 1] == '.');
		}
	}
	FUZZ_ASSERT(n == 3 || d[n - 4] == '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	size_t max = flags & 128 ? 16 : POP3_LINE_MAX;
	const char *p = (const char *)data + 1;
	size_t len = size - 1;

	/* the stuffer, whole vs in chunks */
	{
		struct buf a, b;
		bool top = flags & 1;
		uint32_t lines = (flags >> 1) & 7;
		buf_init(&a, BUF_UNLIMITED);
		buf_init(&b, BUF_UNLIMITED);
		stuff_run(p, len, top, lines, 0, &a);
		stuff_run(p, len, top, lines, 1 + (flags >> 4) % 7, &b);
		FUZZ_ASSERT(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
		check_stuffed(&a);
		buf_free(&a);
		buf_free(&b);
	}

	while (len > 0) {
		struct slice line;
		size_t used;
		enum pop3_line_status st = pop3_line_find(p, len, max, &line, &used);

		if (st == POP3_LINE_NEED_MORE) {
			FUZZ_ASSERT(len < max && memchr(p, '\n', len) == NULL);
			line = (struct slice){ p, len };
			used = len;
		} else if (st == POP3_LINE_TOO_LONG) {
			FUZZ_ASSERT(used > 0 && used <= len && used >= max);
			p += used;
			len -= used;
			continue;
		} else {
			FUZZ_ASSERT(used > 0 && used <= len && used <= max);
			FUZZ_ASSERT(line.p == p && line.len < used && p[used - 1] == '\n');
		}
		p += used;
		len -= used;

		struct pop3_command cmd;
		const char *err = NULL;
		if (pop3_command_parse(line, &cmd, &err) < 0) {
			FUZZ_ASSERT(err != NULL && err[0] != '\0');
			continue;
		}
		for (size_t i = 0; i < line.len; i++) {
			unsigned char c = (unsigned char)line.p[i];
			FUZZ_ASSERT(c == '\t' || (c >= 0x20 && c != 0x7f));
		}
		FUZZ_ASSERT(cmd.argc <= 2);
		FUZZ_ASSERT(cmd.rest.p >= line.p && cmd.rest.p + cmd.rest.len <= line.p + line.len);
		for (unsigned i = 0; i < cmd.argc; i++) {
			FUZZ_ASSERT(cmd.args[i].len > 0);
			FUZZ_ASSERT(cmd.args[i].p >= line.p &&
				    cmd.args[i].p + cmd.args[i].len <= line.p + line.len);
			FUZZ_ASSERT(memchr(cmd.args[i].p, ' ', cmd.args[i].len) == NULL);
			uint32_t n;
			if (pop3_number_parse(cmd.args[i], UINT32_MAX, &n) == 0)
				FUZZ_ASSERT(cmd.args[i].len <= 10);
		}
	}
	return 0;
}
