/* libFuzzer target for the DKIM-Signature tag-list parser
 * (src/mailauth/dkim-parse.c, RFC 6376 sections 3.2 and 3.5).
 *
 * The input is parsed as a signature value; a parsed signature must hold
 * only printable strings and a DNS-name d= and s=.  Then the input is the
 * DKIM-Signature of a small message verified against a fake DNS that
 * answers every key question with an RSA or an Ed25519 key record (or a
 * timeout), so the whole verification path runs over it.  Nothing may
 * crash, leak or hang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mailauth/dkim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void f_txt(void *ctx, const char *name, dkim_dns_cb *cb, void *q)
{
	(void)ctx;
	static const char *const rec[] = {
		"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
		"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qh"
		"dR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4h"
		"stT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB",
	};
	struct dkim_dns_answer a = { .status = DKIM_DNS_OK, .count = 1 };
	const char *strs[1] = { rec[name[0] == 't'] };
	a.strings = strs;
	if (name[0] == 'x')
		a.status = DKIM_DNS_TEMPFAIL;
	cb(q, &a);
}

static void done(void *ctx, const struct dkim_outcome *out)
{
	struct buf b;
	buf_init(&b, 4096);
	for (size_t i = 0; i < out->count; i++) {
		dkim_result_format(&out->results[i], &b);
		for (size_t k = 0; k < b.len; k++) {
			if (b.data[k] == '\r' || b.data[k] == '\n' || b.data[k] == 0)
				abort();
		}
		buf_reset(&b);
	}
	buf_free(&b);
	*(int *)ctx = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_signature *sig = NULL;
	const char *error;
	if (dkim_signature_parse((const char *)data, size, &sig, &error) == 0) {
		if (strchr(sig->domain, '\n') || strchr(sig->selector, '\r') ||
		    strchr(sig->auid, '\n') || sig->n_headers == 0)
			abort();
		dkim_signature_free(&sig);
	}

	struct buf m;
	buf_init(&m, BUF_UNLIMITED);
	buf_append_str(&m, "DKIM-Signature:");
	buf_append(&m, data, size);
	buf_append_str(&m, "\r\nFrom: Joe <joe@football.example.com>\r\nSubject: x\r\n\r\nHi.\r\n");
	struct dkim_verify_options o = { .now = 1700000000 };
	struct dkim_verify *v = dkim_verify_create(&o);
	struct dkim_dns dns = { NULL, f_txt, NULL };
	int called = 0;
	dkim_verify_feed(v, m.data, m.len);
	dkim_verify_finish(v, &dns, done, &called);
	if (!called)
		abort();
	dkim_verify_destroy(&v);
	buf_free(&m);
	return 0;
}
