/* Fuzz target for the SMTP client's reply parser (smtp/client-reply.c).
 * The input is a stream of server replies, parsed reply after reply until
 * an error or the end, once whole and once in chunk sizes chosen by the
 * first byte; both must agree.
 *
 * Invariants checked: consumed never passes the input; every reply has a
 * code in 200..599, at least one and at most SMTP_REPLY_LINES_MAX lines,
 * a text of at most SMTP_REPLY_TEXT_MAX bytes with only printable ASCII
 * (no CR, LF, NUL: CVE-2020-8794 class), an enhanced code that is empty
 * or starts with the code's class digit; the per-line texts hold only
 * printable ASCII and '\n'; keyword lookups stay inside the reply. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/client-reply.h"

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz-smtp-reply: assertion failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

struct digest {
	unsigned replies;
	unsigned long sum;       /* codes and text lengths, to compare two runs */
	size_t consumed;
	int last;
};

static void check_reply(const struct smtp_client_reply *r)
{
	const char *t = buf_cstr(&r->text);
	struct slice arg;

	FUZZ_ASSERT(r->code >= 200 && r->code <= 599);
	FUZZ_ASSERT(r->n_lines >= 1 && r->n_lines <= SMTP_REPLY_LINES_MAX);
	FUZZ_ASSERT(r->text.len <= SMTP_REPLY_TEXT_MAX);
	for (size_t i = 0; i < r->text.len; i++)
		FUZZ_ASSERT(t[i] >= 0x20 && t[i] < 0x7f);
	for (size_t i = 0; i < r->lines.len; i++) {
		char ch = r->lines.data[i];
		FUZZ_ASSERT(ch == '\n' || (ch >= 0x20 && ch < 0x7f));
	}
	FUZZ_ASSERT(r->enhanced[0] == '\0' || r->enhanced[0] == '0' + r->code / 100);
	if (smtp_client_reply_has_keyword(r, "SIZE", &arg))
		FUZZ_ASSERT(arg.p >= r->lines.data && arg.p + arg.len <= r->lines.data + r->lines.len);
	smtp_client_reply_has_keyword(r, "AUTH", &arg);
}

static struct digest run(const uint8_t *data, size_t size, unsigned chunk)
{
	struct smtp_reply_parser p;
	struct smtp_client_reply r;
	struct digest d = { 0, 0, 0, 0 };
	size_t pos = 0;
	const char *err = NULL;

	smtp_reply_parser_init(&p);
	smtp_client_reply_init(&r);
	while (pos < size) {
		size_t n = size - pos, used = 0;
		if (chunk > 0 && n > chunk)
			n = chunk;
		enum smtp_reply_status st = smtp_reply_parse(&p, (const char *)data + pos, n, &used,
							     &r, &err);
		FUZZ_ASSERT(used <= n);
		d.last = (int)st;
		if (st == SMTP_REPLY_ERROR) {
			FUZZ_ASSERT(err != NULL);
			break;
		}
		pos += used;
		if (st == SMTP_REPLY_OK) {
			check_reply(&r);
			d.replies++;
			d.sum = d.sum * 31 + (unsigned long)r.code * 7 + r.text.len + r.n_lines;
		} else {
			FUZZ_ASSERT(used == n);
		}
	}
	d.consumed = pos;
	smtp_client_reply_free(&r);
	smtp_reply_parser_free(&p);
	return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned chunk = 1 + data[0] % 17;
	struct digest a = run(data + 1, size - 1, 0), b = run(data + 1, size - 1, chunk);

	FUZZ_ASSERT(a.replies == b.replies && a.sum == b.sum && a.last == b.last);
	if (a.last != SMTP_REPLY_ERROR)
		FUZZ_ASSERT(a.consumed == b.consumed);
	return 0;
}
