/* Fuzz target for the DATA / BDAT body state machine.  The body is fed in
 * chunk sizes chosen by the input, and once in one piece; both must agree.
 *
 * Input layout: byte 0 = flags (bit 0: DATA (dot-stuffed) rather than BDAT;
 * bit 1: small size limit; bit 2: small header limit; bit 3: call
 * smtp_body_finish at the end), byte 1 = seed of the chunk sizes, bytes
 * 2.. = the body stream.
 *
 * Invariants checked: the output is never longer than the normalised input
 * (every CR, LF or CRLF counted as two bytes); it has only CRLF line ends
 * (no bare CR, no bare LF); size equals the output length unless too_big,
 * which empties the output; DATA stops exactly after a "\r\n.\r\n" (or a
 * ".\r\n" at the very start) and otherwise consumes everything; BDAT
 * consumes everything and, without bare line ends, reproduces its input;
 * any split of the input gives the same result as feeding it whole. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/parse.h"

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz-smtp-body: assertion failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

struct run {
	struct buf out;
	struct smtp_body b;
	size_t consumed;
};

static void run_body(struct run *r, const char *p, size_t len, uint8_t flags, uint32_t seed,
		     bool whole)
{
	size_t max_size = flags & 2 ? 64 : 1 << 20;
	size_t max_header = flags & 4 ? 16 : 1 << 20;
	size_t pos = 0;

	buf_init(&r->out, BUF_UNLIMITED);
	smtp_body_init(&r->b, &r->out, max_size, max_header, flags & 1);
	while (pos < len && !r->b.done) {
		size_t n = len - pos;
		if (!whole) {
			seed = seed * 1103515245u + 12345u;
			size_t want = 1 + (seed >> 16) % 13;
			if (want < n)
				n = want;
		}
		size_t used = smtp_body_feed(&r->b, p + pos, n);
		FUZZ_ASSERT(used <= n);
		FUZZ_ASSERT(used == n || r->b.done);
		if (!(flags & 1))
			FUZZ_ASSERT(used == n && !r->b.done);
		pos += used;
	}
	if (flags & 8)
		smtp_body_finish(&r->b);
	r->consumed = pos;
}

static size_t normalised_len(const char *p, size_t n)
{
	size_t out = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			i++;
		out += (p[i] == '\r' || p[i] == '\n') ? 2 : 1;
	}
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t flags = data[0];
	uint32_t seed = data[1];
	const char *p = (const char *)data + 2;
	size_t len = size - 2;
	struct run a, w;

	run_body(&a, p, len, flags, seed, false);
	run_body(&w, p, len, flags, seed, true);

	const char *o = buf_cstr(&a.out);
	size_t olen = a.out.len;

	/* the same result however the input was split */
	FUZZ_ASSERT(a.consumed == w.consumed);
	FUZZ_ASSERT(olen == w.out.len && memcmp(o, buf_cstr(&w.out), olen) == 0);
	FUZZ_ASSERT(a.b.done == w.b.done && a.b.size == w.b.size);
	FUZZ_ASSERT(a.b.too_big == w.b.too_big && a.b.header_too_big == w.b.header_too_big);
	FUZZ_ASSERT(a.b.bare_lf == w.b.bare_lf && a.b.bare_cr == w.b.bare_cr);
	FUZZ_ASSERT(a.b.eight_bit == w.b.eight_bit && a.b.nul == w.b.nul);

	FUZZ_ASSERT(olen <= normalised_len(p, a.consumed));
	for (size_t i = 0; i < olen; i++) {
		if (o[i] == '\r')
			FUZZ_ASSERT(i + 1 < olen && o[i + 1] == '\n');
		if (o[i] == '\n')
			FUZZ_ASSERT(i > 0 && o[i - 1] == '\r');
	}
	if (a.b.too_big)
		FUZZ_ASSERT(olen == 0 && a.b.size > a.b.max_size);
	else
		FUZZ_ASSERT(a.b.size == olen && olen <= a.b.max_size);
	if (a.b.done) {
		size_t c = a.consumed;
		FUZZ_ASSERT(c >= 3 && memcmp(p + c - 3, ".\r\n", 3) == 0);
		FUZZ_ASSERT(c == 3 || (c >= 5 && p[c - 4] == '\n' && p[c - 5] == '\r'));
	} else {
		FUZZ_ASSERT(a.consumed == len);
	}
	if (!(flags & 1) && (flags & 8) && !a.b.too_big && !a.b.bare_lf && !a.b.bare_cr)
		FUZZ_ASSERT(olen == len && memcmp(o, p, len) == 0);
	if (memchr(p, 0, a.consumed) != NULL)
		FUZZ_ASSERT(a.b.nul);

	buf_free(&a.out);
	buf_free(&w.out);
	return 0;
}
