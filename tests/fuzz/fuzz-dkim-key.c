/* libFuzzer target for the DKIM key record parser (src/mailauth/dkim-parse.c,
 * RFC 6376 section 3.6.1, RFC 8463 section 4).
 *
 * The input is parsed as a key record, then served as the TXT answer for
 * the keys of a message carrying the two signatures of the RFC 8463
 * example (ed25519-sha256 and rsa-sha256), so key decoding (DER, raw
 * Ed25519) and the signature checks run over it.  Nothing may crash, leak
 * or hang, and the verifier must answer exactly once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dkim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char message[] =
	"DKIM-Signature: v=1; a=ed25519-sha256; c=simple/simple;\r\n"
	" d=football.example.com; i=@football.example.com;\r\n"
	" q=dns/txt; s=brisbane; t=1518460054; h=from : to :\r\n"
	" subject : date : message-id : from : subject : date;\r\n"
	" bh=4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=;\r\n"
	" b=9/dsDChY0YMTtD5Eyw3wx7x22BlSJP7M5ECbJ7GWrR45nXlTCGb8l0YB\r\n"
	" o0wBLR++X5LqmsxXaOYLLJe46l10AQ==\r\n"
	"DKIM-Signature: v=1; a=rsa-sha256; c=simple/simple;\r\n"
	" d=football.example.com; i=@football.example.com;\r\n"
	" q=dns/txt; s=test; t=1527915362; h=from : to : subject :\r\n"
	" date : message-id : from : subject : date;\r\n"
	" bh=4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=;\r\n"
	" b=icKcLSEZYXJ95flvWE8FT6hl5iqd8MC/LEKYH0QjsqYy6MO/4pgVNCZH\r\n"
	" l/RAXAuADxE/40Fg7uTlxwwD1hjN2Ple6J//cJfslBdDOq6zTVbne1dqtl\r\n"
	" NOat7iamJ1AfRqyG+ja7a2AZsrpUuJ7VA6O+0zRYPqpwMEkEFIzI9i/Xk=\r\n"
	"From: Joe SixPack <joe@football.example.com>\r\n"
	"To: Suzie Q <suzie@shopping.example.net>\r\n"
	"Subject: Is dinner ready?\r\n"
	"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
	"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
	"\r\n"
	"Hi.\r\n"
	"\r\n"
	"We lost the game.  Are you hungry yet?\r\n"
	"\r\n"
	"Joe.\r\n";

static const char *fuzz_rec;
static size_t fuzz_len;

static void f_txt(void *ctx, const char *name, dkim_dns_cb *cb, void *q)
{
	(void)ctx;
	(void)name;
	struct dkim_dns_answer a = { .status = DKIM_DNS_OK, .count = 1 };
	const char *strs[1] = { fuzz_rec };
	size_t lens[1] = { fuzz_len };
	a.strings = strs;
	a.lengths = lens;
	cb(q, &a);
}

static void done(void *ctx, const struct dkim_outcome *out)
{
	if (out->count != 2)
		abort();
	*(int *)ctx = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_key *key = NULL;
	const char *error;
	if (dkim_key_parse((const char *)data, size, &key, &error) == 0) {
		if (!key->revoked && key->public_key_len == 0)
			abort();
		dkim_key_free(&key);
	}
	fuzz_rec = (const char *)data;
	fuzz_len = size;
	struct dkim_verify_options o = { .now = 1700000000 };
	struct dkim_verify *v = dkim_verify_create(&o);
	struct dkim_dns dns = { NULL, f_txt, NULL };
	int called = 0;
	dkim_verify_feed(v, message, sizeof(message) - 1);
	dkim_verify_finish(v, &dns, done, &called);
	if (!called)
		abort();
	dkim_verify_destroy(&v);
	return 0;
}
