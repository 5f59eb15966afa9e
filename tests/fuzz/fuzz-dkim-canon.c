/* libFuzzer target for DKIM canonicalisation (src/mailauth/dkim-canon.c,
 * RFC 6376 section 3.4).
 *
 * The first byte picks a chunk size and an l= limit; the rest is a body
 * canonicalised simple and relaxed, at once and in chunks: both ways must
 * give the same bytes, the limit must hold, relaxed output must have no
 * blank before a CRLF and no two blanks in a row, and non-empty output
 * must end in CRLF.  The input is also one header field (split at its
 * first colon) for header canonicalisation, and a whole message for the
 * header/body split and a verification with no DNS answers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mailauth/dkim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void emit(void *ctx, const char *p, size_t n)
{
	buf_append(ctx, p, n);
}

static void canon(enum dkim_canon c, const char *in, size_t len, size_t chunk,
		  uint64_t limit, struct buf *out, uint64_t *total)
{
	struct dkim_body_canon *bc = dkim_body_canon_create(c, limit, emit, out);
	for (size_t i = 0; i < len; i += chunk)
		dkim_body_canon_feed(bc, in + i, len - i < chunk ? len - i : chunk);
	dkim_body_canon_finish(bc, total);
	dkim_body_canon_destroy(&bc);
}

static void f_txt(void *ctx, const char *name, dkim_dns_cb *cb, void *q)
{
	(void)ctx;
	(void)name;
	struct dkim_dns_answer a = { .status = DKIM_DNS_NXDOMAIN };
	cb(q, &a);
}

static void done(void *ctx, const struct dkim_outcome *out)
{
	(void)out;
	*(int *)ctx = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t chunk = (size_t)(data[0] & 7) + 1;
	uint64_t limit = (data[0] & 0x80) ? (uint64_t)(data[0] & 0x78) : UINT64_MAX;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;

	for (int c = 0; c < 2; c++) {
		struct buf whole, parts;
		uint64_t t1, t2;
		buf_init(&whole, BUF_UNLIMITED);
		buf_init(&parts, BUF_UNLIMITED);
		canon(c, in, len, len ? len : 1, UINT64_MAX, &whole, &t1);
		canon(c, in, len, chunk, limit, &parts, &t2);
		if (t1 != t2 || t1 != whole.len)
			abort();
		size_t want = limit < whole.len ? (size_t)limit : whole.len;
		if (parts.len != want || (want > 0 && memcmp(parts.data, whole.data, want) != 0))
			abort();
		if (whole.len > 0 && (whole.len < 2 || memcmp(whole.data + whole.len - 2, "\r\n", 2)))
			abort();
		if (c == DKIM_CANON_RELAXED) {
			for (size_t i = 0; i + 1 < whole.len; i++) {
				char a = whole.data[i], b = whole.data[i + 1];
				if ((a == ' ' || a == '\t') && (b == ' ' || b == '\t'))
					abort();
				if (a == ' ' && b == '\r' && i + 2 < whole.len && whole.data[i + 2] == '\n')
					abort();
			}
		}
		buf_free(&whole);
		buf_free(&parts);
	}

	const char *colon = memchr(in, ':', len);
	if (colon) {
		struct buf h;
		buf_init(&h, BUF_UNLIMITED);
		size_t nl = (size_t)(colon - in);
		dkim_canon_header(DKIM_CANON_RELAXED, in, nl, colon + 1, len - nl - 1, true, &h);
		buf_reset(&h);
		dkim_canon_header(DKIM_CANON_SIMPLE, in, nl, colon + 1, len - nl - 1, false, &h);
		buf_free(&h);
	}

	struct dkim_verify *v = dkim_verify_create(NULL);
	struct dkim_dns dns = { NULL, f_txt, NULL };
	int called = 0;
	for (size_t i = 0; i < len; i += chunk)
		dkim_verify_feed(v, in + i, len - i < chunk ? len - i : chunk);
	dkim_verify_finish(v, &dns, done, &called);
	if (!called)
		abort();
	dkim_verify_destroy(&v);
	return 0;
}
