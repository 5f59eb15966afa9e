/* Unit tests for DKIM (src/mailauth/dkim*.c), and the driver that
 * tests/integration/test_dkim_vectors.py uses.
 *
 * With no arguments: the unit tests (tag lists, signature and key records,
 * canonicalisation whole and byte by byte, sign/verify round trips with
 * keys generated here, every result word, DNS answers immediate and later,
 * limits).
 * Driver modes:
 *   --verify MSG --dns DNS [--now T] [--async] [--chunk N] [--allow-partial]
 *       verify MSG; print one line per signature:
 *       RESULT TAB d TAB s TAB a TAB reason  (or "none" without signature)
 *       then "ignored N" when signatures were not checked.
 *   --sign MSG --domain D --selector S --key PEM|--seed B64 [--now T]
 *       print the DKIM-Signature field then MSG (line ends made CRLF);
 *       exit 2 with the reason on stderr when signing is refused.
 * The DNS file has one record a line, "OWNER VALUE" (the TXT strings
 * joined); VALUE TEMPFAIL makes the name time out; '#' starts a comment.
 * Names not listed are NXDOMAIN. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "mailauth/dkim-private.h"
#include "mailauth/dkim.h"
#include "unit.h"
#include "dkim-test-zone.h"

struct res {
	bool done;
	struct dkim_outcome out;
};

static void res_cb(void *ctx, const struct dkim_outcome *out)
{
	struct res *r = ctx;
	r->done = true;
	r->out = *out;
}

/* Verify msg over zone z; the verifier stays alive for the caller to read
 * the results and destroy. */
static struct dkim_verify *verify(struct zone *z, const char *msg, size_t len, time_t now,
				  size_t chunk, struct res *r)
{
	struct dkim_verify_options o = { .now = now };
	struct dkim_verify *v = dkim_verify_create(&o);
	struct dkim_dns dns = { z, z_txt, z_cancel };
	static struct dkim_dns dns_keep;
	dns_keep = dns;
	if (chunk == 0)
		chunk = len ? len : 1;
	for (size_t i = 0; i < len; i += chunk)
		dkim_verify_feed(v, msg + i, len - i < chunk ? len - i : chunk);
	memset(r, 0, sizeof(*r));
	dkim_verify_finish(v, &dns_keep, res_cb, r);
	if (z->async)
		zone_flush(z);
	return v;
}

/* ---- keys generated for the tests ---- */

static EVP_PKEY *rsa2048, *rsa1024, *rsa512, *ed;

static char *pubkey_record(EVP_PKEY *pkey)
{
	unsigned char *der = NULL;
	int len;
	if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
		unsigned char raw[32];
		size_t rl = sizeof(raw);
		EVP_PKEY_get_raw_public_key(pkey, raw, &rl);
		char *b = base64_encode_str(raw, rl);
		char *r = xasprintf("v=DKIM1; k=ed25519; p=%s", b);
		free(b);
		return r;
	}
	len = i2d_PUBKEY(pkey, &der);
	char *b = base64_encode_str(der, (size_t)len);
	char *r = xasprintf("v=DKIM1; k=rsa; p=%s", b);
	free(b);
	OPENSSL_free(der);
	return r;
}

static void keyring_add(struct dkim_keyring *kr, const char *id, EVP_PKEY *pkey)
{
	BIO *bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	const char *error = NULL;
	CHECK(dkim_keyring_add_pem(kr, id, p, (size_t)n, &error) == 0);
	BIO_free(bio);
}

static const char sample[] =
	"Received: from x by y; Fri, 11 Jul 2003 21:01:54 -0700\r\n"
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

/* sign sample-like text with key id "k" and return header + message */
static char *sign_text(struct dkim_keyring *kr, const char *msg, enum dkim_alg alg,
		       const char *selector, time_t t, uint32_t x)
{
	struct dkim_sign_request req = {
		.domain = "example.com", .selector = selector, .alg = alg,
		.key_id = selector, .timestamp = t, .expire_after = x,
	};
	struct dkim_signer signer = dkim_keyring_signer(kr);
	struct buf out;
	const char *error = NULL;
	buf_init(&out, BUF_UNLIMITED);
	if (dkim_sign_message(&req, &signer, msg, strlen(msg), &out, &error) < 0) {
		buf_free(&out);
		return NULL;
	}
	buf_append_str(&out, msg);
	return buf_steal(&out);
}

/* ---- tests ---- */

static void test_tag_list(void)
{
	struct dkim_tag t[8];
	size_t n;
	const char *e;
	const char *s = " a = 1 ;b=x y\r\n\tz; c=;";
	CHECK(dkim_tag_list_parse(s, strlen(s), t, 8, &n, &e) == 0);
	CHECK(n == 3);
	CHECK(slice_eq(t[0].name, SLICE_C("a")) && slice_eq(t[0].value, SLICE_C("1")));
	CHECK(slice_eq(t[1].value, SLICE_C("x y\r\n\tz")));
	CHECK(t[2].value.len == 0);
	CHECK(t[0].val_start == 4 && t[0].val_end == 7);
	CHECK(dkim_tag_list_parse("a=1;a=2", 7, t, 8, &n, &e) < 0);
	CHECK_STR(e, "duplicate tag");
	CHECK(dkim_tag_list_parse("a=1;;b=2", 8, t, 8, &n, &e) < 0);
	CHECK(dkim_tag_list_parse("1a=1", 4, t, 8, &n, &e) < 0);
	CHECK(dkim_tag_list_parse("a 1", 3, t, 8, &n, &e) < 0);
	CHECK(dkim_tag_list_parse("", 0, t, 8, &n, &e) < 0);
	CHECK(dkim_tag_list_parse("a=\x01", 3, t, 8, &n, &e) < 0);
	CHECK(dkim_tag_list_parse("a=\0", 3, t, 8, &n, &e) < 0);
	CHECK(dkim_tag_list_parse("a=\xc3\xa9", 4, t, 8, &n, &e) < 0);
	CHECK(dkim_tag_list_parse("a=1;b=2;c=3", 11, t, 2, &n, &e) < 0);
	CHECK_STR(e, "too many tags");
	CHECK(dkim_tag_list_parse("a_b9=x:y=z", 10, t, 8, &n, &e) == 0 && n == 1);
	CHECK(slice_eq(t[0].value, SLICE_C("x:y=z")));
}

#define SIG_OK "v=1; a=rsa-sha256; d=example.net; s=brisbane; c=relaxed/simple;" \
	" q=dns/txt; i=foo@eng.example.net; t=1117574938; x=1118006938; l=200;" \
	" h=from:to:subject:date:keywords:keywords; z=From:foo@eng.example.net;" \
	" bh=MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=;" \
	" b=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZ\r\n" \
	"\tVoG4ZHRNiYzR"

static int sig_try(const char *s, const char **e)
{
	struct dkim_signature *sig = NULL;
	int r = dkim_signature_parse(s, strlen(s), &sig, e);
	dkim_signature_free(&sig);
	return r;
}

static void test_signature_parse(void)
{
	struct dkim_signature *sig = NULL;
	const char *e = NULL;
	CHECK(dkim_signature_parse(SIG_OK, strlen(SIG_OK), &sig, &e) == 0);
	if (sig == NULL)
		return;
	CHECK(sig->alg == DKIM_ALG_RSA_SHA256);
	CHECK_STR(sig->domain, "example.net");
	CHECK_STR(sig->selector, "brisbane");
	CHECK_STR(sig->auid, "foo@eng.example.net");
	CHECK(sig->header_canon == DKIM_CANON_RELAXED && sig->body_canon == DKIM_CANON_SIMPLE);
	CHECK(sig->n_headers == 6);
	CHECK_STR(sig->headers[5], "keywords");
	CHECK(sig->has_length && sig->length == 200);
	CHECK(sig->timestamp == 1117574938 && sig->expiry == 1118006938);
	CHECK(sig->body_hash_len == 32);
	CHECK_STR(sig->sig_text, "dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZVoG4ZHRNiYzR");
	dkim_signature_free(&sig);
	CHECK(sig == NULL);

	/* defaults: c=simple/simple, i=@d */
	const char *min = "v=1; a=ed25519-sha256; d=Example.COM; s=s1; h=From; bh=AAAA; b=AAAA";
	CHECK(dkim_signature_parse(min, strlen(min), &sig, &e) == 0);
	if (sig) {
		CHECK(sig->alg == DKIM_ALG_ED25519_SHA256);
		CHECK(sig->header_canon == DKIM_CANON_SIMPLE && sig->body_canon == DKIM_CANON_SIMPLE);
		CHECK_STR(sig->auid, "@Example.COM");
		CHECK_STR(sig->headers[0], "from");
		CHECK(!sig->has_length && !sig->has_timestamp && !sig->has_expiry);
	}
	dkim_signature_free(&sig);
	CHECK(sig_try("v=1; a=rsa-sha1; d=e.com; s=s; h=from; bh=AAAA; b=AAAA", &e) == 0);
	CHECK(sig_try("v=1; a=foo-bar; d=e.com; s=s; h=from; bh=AAAA; b=AAAA", &e) == 0);
	CHECK(sig_try("v=1; a=rsa-sha256; d=e.com; s=s; c=relaxed; h=from; bh=AAAA; b=AAAA", &e) == 0);

	static const struct { const char *s, *err; } bad[] = {
		{ "v=2; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA", "unsupported version" },
		{ "a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA", "missing required tag" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA", "missing required tag" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s; h=to:subject; bh=AAAA; b=AAAA", "h= does not include From" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s; h=from::to; bh=AAAA; b=AAAA", "bad h= tag" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAA", "bad b= tag" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=; b=AAAA", "bad bh= tag" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; i=x@other.com", "i= domain not within d=" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; i=x@xe.com", "i= domain not within d=" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; i=nobody", "bad i= tag" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; t=20; x=10", "x= before t=" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; t=-1", "bad t= tag" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; l=1x", "bad l= tag" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; q=http", "q= without dns/txt" },
		{ "v=1; a=rsa-sha256; d=e..com; s=s; h=from; bh=AAAA; b=AAAA", "bad d= tag" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s\"x; h=from; bh=AAAA; b=AAAA", "bad s= tag" },
		{ "v=1; a=rsa sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA", "bad a= tag" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; c=fancy", "bad c= tag" },
		{ "v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; v=1", "duplicate tag" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e = NULL;
		CHECK(sig_try(bad[i].s, &e) < 0);
		if (e == NULL || strcmp(e, bad[i].err) != 0)
			fprintf(stderr, "  case %zu: %s\n", i, e ? e : "(parsed)");
		CHECK(e && strcmp(e, bad[i].err) == 0);
	}
	/* l= past 2^64 saturates (it can only be longer than any body) */
	const char *huge = "v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA;"
			   " l=99999999999999999999999";
	CHECK(dkim_signature_parse(huge, strlen(huge), &sig, &e) == 0);
	if (sig)
		CHECK(sig->length == UINT64_MAX);
	dkim_signature_free(&sig);

	/* limits: too many h= names, an over-long value */
	struct buf b;
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "v=1; a=rsa-sha256; d=e.com; s=s; bh=AAAA; b=AAAA; h=from");
	for (int i = 0; i < DKIM_MAX_SIGNED_HEADERS; i++)
		buf_append_str(&b, ":to");
	CHECK(sig_try(buf_cstr(&b), &e) < 0);
	CHECK_STR(e, "too many names in h= tag");
	buf_reset(&b);
	buf_append_str(&b, "v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=");
	for (int i = 0; i < DKIM_MAX_SIG_VALUE / 4; i++)
		buf_append_str(&b, "AAAA");
	CHECK(sig_try(buf_cstr(&b), &e) < 0);
	CHECK_STR(e, "signature too long");
	buf_free(&b);
}

static int key_try(const char *s, struct dkim_key **key, const char **e)
{
	dkim_key_free(key);
	return dkim_key_parse(s, strlen(s), key, e);
}

static void test_key_parse(void)
{
	struct dkim_key *k = NULL;
	const char *e = NULL;
	CHECK(key_try("v=DKIM1; k=rsa; p=AAAA", &k, &e) == 0);
	CHECK(k && k->type == DKIM_KEY_RSA && k->public_key_len == 3 && !k->revoked);
	CHECK(k && k->sha256_allowed && !k->testing && !k->strict);
	CHECK(key_try("p=AA AA; t=y:s; h=sha1:sha256", &k, &e) == 0);
	CHECK(k && k->testing && k->strict && k->sha256_allowed);
	CHECK(key_try("p=AAAA; h=sha1", &k, &e) == 0);
	CHECK(k && !k->sha256_allowed);
	CHECK(key_try("v=DKIM1; p=", &k, &e) == 0);
	CHECK(k && k->revoked);
	CHECK(key_try("k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", &k, &e) == 0);
	CHECK(k && k->type == DKIM_KEY_ED25519 && k->public_key_len == 32);
	CHECK(key_try("p=AAAA; s=email:tlsrpt; n=some notes", &k, &e) == 0);
	/* the dkimpy negative records */
	CHECK(key_try("v=DKIM1: g=*; k=rsa; p=AAAA", &k, &e) < 0);
	CHECK_STR(e, "bad v= in key record");
	CHECK(key_try("v=DKIM1; g=*; k=ed25519-sha256; p=AAAA", &k, &e) < 0);
	CHECK_STR(e, "unknown key type");
	CHECK(key_try("v=DKIM1; k=rsa; s=tlsrpt; p=AAAA", &k, &e) < 0);
	CHECK_STR(e, "key not for email (s= tag)");
	CHECK(key_try("k=rsa; v=DKIM1; p=AAAA", &k, &e) < 0);
	CHECK(key_try("v=DKIM1; k=rsa", &k, &e) < 0);
	CHECK_STR(e, "key record without p=");
	CHECK(key_try("p=AAA", &k, &e) < 0);
	CHECK(key_try("k=ed25519; p=AAAA", &k, &e) < 0);
	CHECK_STR(e, "Ed25519 key not 32 bytes");
	CHECK(k == NULL);
	dkim_key_free(&k);
}

static char *canon_header_str(enum dkim_canon c, const char *name, const char *value, bool crlf)
{
	struct buf b;
	buf_init(&b, BUF_UNLIMITED);
	CHECK(dkim_canon_header(c, name, strlen(name), value, strlen(value), crlf, &b) == 0);
	return buf_steal(&b);
}

static void test_canon_header(void)
{
	/* RFC 6376 section 3.4.6 */
	char *s;
	s = canon_header_str(DKIM_CANON_RELAXED, "A", " X", true);
	CHECK_STR(s, "a:X\r\n");
	free(s);
	s = canon_header_str(DKIM_CANON_RELAXED, "B ", " Y\t\r\n\tZ  ", true);
	CHECK_STR(s, "b:Y Z\r\n");
	free(s);
	s = canon_header_str(DKIM_CANON_SIMPLE, "B ", " Y\t\r\n\tZ  ", true);
	CHECK_STR(s, "B : Y\t\r\n\tZ  \r\n");
	free(s);
	s = canon_header_str(DKIM_CANON_RELAXED, "Subject", "", false);
	CHECK_STR(s, "subject:");
	free(s);
	s = canon_header_str(DKIM_CANON_RELAXED, "X", "\t a \r\n  \t b\t", false);
	CHECK_STR(s, "x:a b");
	free(s);
}

struct sink {
	struct buf b;
};

static void sink_emit(void *ctx, const char *data, size_t len)
{
	struct sink *s = ctx;
	buf_append(&s->b, data, len);
}

/* canonical body of in, fed in chunks of `chunk' bytes (0: at once) */
static char *canon_body(enum dkim_canon c, const char *in, size_t len, size_t chunk,
			uint64_t limit, uint64_t *total)
{
	struct sink s;
	buf_init(&s.b, BUF_UNLIMITED);
	struct dkim_body_canon *bc = dkim_body_canon_create(c, limit, sink_emit, &s);
	if (chunk == 0)
		chunk = len ? len : 1;
	for (size_t i = 0; i < len; i += chunk)
		dkim_body_canon_feed(bc, in + i, len - i < chunk ? len - i : chunk);
	dkim_body_canon_finish(bc, total);
	dkim_body_canon_destroy(&bc);
	CHECK(bc == NULL);
	return buf_steal(&s.b);
}

static void test_canon_body(void)
{
	static const struct { const char *in, *simple, *relaxed; } cases[] = {
		/* RFC 6376 section 3.4.6 */
		{ " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n", " C\r\nD E\r\n" },
		{ "", "\r\n", "" },
		{ "\r\n\r\n", "\r\n", "" },
		{ "abc", "abc\r\n", "abc\r\n" },
		{ "a\nb\n\n", "a\r\nb\r\n", "a\r\nb\r\n" },
		{ "a \t\r\n \r\n\r\nb", "a \t\r\n \r\n\r\nb\r\n", "a\r\n\r\n\r\nb\r\n" },
		{ "x\ry\r", "x\ry\r\r\n", "x\ry\r\r\n" },
		{ "  lead\r\n", "  lead\r\n", " lead\r\n" },
		{ "\r\n\r\nx\r\n\r\n", "\r\n\r\nx\r\n", "\r\n\r\nx\r\n" },
		{ "tail  ", "tail  \r\n", "tail\r\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);
		for (size_t chunk = 0; chunk <= 3; chunk++) {
			uint64_t total;
			char *s = canon_body(DKIM_CANON_SIMPLE, cases[i].in, len, chunk, UINT64_MAX, &total);
			CHECK_STR(s, cases[i].simple);
			CHECK(total == strlen(cases[i].simple));
			free(s);
			s = canon_body(DKIM_CANON_RELAXED, cases[i].in, len, chunk, UINT64_MAX, &total);
			CHECK_STR(s, cases[i].relaxed);
			free(s);
		}
	}
	/* a longer body, every chunk size the same as at once */
	struct buf big;
	buf_init(&big, BUF_UNLIMITED);
	for (int i = 0; i < 300; i++)
		buf_printf(&big, "line %d \t with  blanks%s\r\n%s", i, i % 7 ? "" : "  ",
			   i % 11 ? "" : "\r\n\r\n");
	for (int c = 0; c < 2; c++) {
		char *whole = canon_body(c, big.data, big.len, 0, UINT64_MAX, NULL);
		for (size_t chunk = 1; chunk < 9; chunk++) {
			char *s = canon_body(c, big.data, big.len, chunk, UINT64_MAX, NULL);
			CHECK_STR(s, whole);
			free(s);
		}
		free(whole);
	}
	buf_free(&big);
	/* l=: output capped, total reported */
	uint64_t total;
	char *s = canon_body(DKIM_CANON_RELAXED, "abc\r\ndef\r\n", 10, 1, 4, &total);
	CHECK_STR(s, "abc\r");
	CHECK(total == 10);
	free(s);
	s = canon_body(DKIM_CANON_SIMPLE, "", 0, 0, 0, &total);
	CHECK_STR(s, "");
	CHECK(total == 2);
	free(s);
}

/* The canonical body straight from RFC 6376 sections 3.4.3 and 3.4.4,
 * on the whole body at once: split into lines (CRLF or bare LF; a bare CR
 * is data), relaxed squeezes blank runs and drops trailing blanks, trailing
 * empty lines go, every line ends in CRLF; simple makes an empty body one
 * CRLF. */
static char *canon_reference(enum dkim_canon c, const char *in, size_t len)
{
	struct buf out, line;
	size_t kept = 0;  /* out.len up to the last non-empty line */
	buf_init(&out, BUF_UNLIMITED);
	buf_init(&line, BUF_UNLIMITED);
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && in[j] != '\n' && !(in[j] == '\r' && j + 1 < len && in[j + 1] == '\n'))
			j++;
		buf_reset(&line);
		for (size_t k = i; k < j; k++) {
			bool wsp = in[k] == ' ' || in[k] == '\t';
			if (c == DKIM_CANON_RELAXED && wsp) {
				if (k == i || !(in[k - 1] == ' ' || in[k - 1] == '\t'))
					buf_append(&line, " ", 1);
			} else {
				buf_append(&line, in + k, 1);
			}
		}
		if (c == DKIM_CANON_RELAXED && line.len > 0 && line.data[line.len - 1] == ' ')
			line.len--;
		buf_append(&out, line.data ? line.data : "", line.len);
		buf_append(&out, "\r\n", 2);
		if (line.len > 0)
			kept = out.len;
		i = j < len ? j + (in[j] == '\r' ? 2 : 1) : j;
	}
	out.len = kept;
	if (c == DKIM_CANON_SIMPLE && kept == 0)
		buf_append(&out, "\r\n", 2);
	buf_append(&out, "", 0);
	buf_free(&line);
	return buf_steal(&out);
}

/* canonical body of in, fed in chunks whose sizes cycle through sizes[] */
static char *canon_body_sizes(enum dkim_canon c, const char *in, size_t len,
			      const size_t *sizes, size_t n_sizes, uint64_t limit,
			      uint64_t *total)
{
	struct sink s;
	buf_init(&s.b, BUF_UNLIMITED);
	struct dkim_body_canon *bc = dkim_body_canon_create(c, limit, sink_emit, &s);
	for (size_t i = 0, k = 0; i < len; k++) {
		size_t n = sizes[k % n_sizes];
		if (n > len - i)
			n = len - i;
		dkim_body_canon_feed(bc, in + i, n);
		i += n;
	}
	dkim_body_canon_finish(bc, total);
	dkim_body_canon_destroy(&bc);
	buf_append(&s.b, "", 0);
	return buf_steal(&s.b);
}

/* The run-at-a-time canonicaliser against the reference: long lines,
 * long blank runs, long stretches of empty lines, lines longer than the
 * output buffer, cut into chunks of every small size and of sizes around
 * the buffer's, and random bodies over the bytes that matter. */
static void test_canon_runs(void)
{
	struct buf b;
	buf_init(&b, BUF_UNLIMITED);
	/* long lines of words with single spaces, a line over EMIT_BUF */
	for (int i = 0; i < 40; i++) {
		for (int w = 0; w < 30 + i * 7; w++)
			buf_printf(&b, "word%d ", w);
		buf_append_str(&b, i % 3 ? "end\r\n" : "end  \t \r\n");
	}
	for (int w = 0; w < 1500; w++)
		buf_printf(&b, "x%d ", w);
	buf_append_str(&b, "z\r\n");
	/* long blank runs inside, at the start and at the end of lines */
	for (int i = 0; i < 5; i++) {
		for (int k = 0; k < 700 * (i + 1); k++)
			buf_append_str(&b, k % 3 ? " " : "\t");
		buf_append_str(&b, "mid");
		for (int k = 0; k < 3000; k++)
			buf_append_str(&b, " ");
		buf_append_str(&b, "after\n");  /* bare LF too */
		for (int k = 0; k < 2000; k++)
			buf_append_str(&b, " ");
		buf_append_str(&b, "\r\n");
	}
	/* a long run of empty lines inside, bare CRs, and again at the end */
	for (int k = 0; k < 500; k++)
		buf_append_str(&b, "\r\n");
	buf_append_str(&b, "cr\rin\r\rthe line \r\nlast words here");
	for (int k = 0; k < 300; k++)
		buf_append_str(&b, k % 2 ? "\r\n" : "\n");

	static const size_t small[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const size_t odd[] = { 4095, 4096, 4097, 255, 256, 257, 1, 13 };
	for (int c = 0; c < 2; c++) {
		char *want = canon_reference(c, b.data, b.len);
		uint64_t total;
		char *s = canon_body(c, b.data, b.len, 0, UINT64_MAX, &total);
		CHECK_STR(s, want);
		CHECK(total == strlen(want));
		free(s);
		for (size_t k = 0; k < 8; k++) {
			s = canon_body_sizes(c, b.data, b.len, &small[k], 1, UINT64_MAX, NULL);
			CHECK_STR(s, want);
			free(s);
		}
		s = canon_body_sizes(c, b.data, b.len, small, 8, UINT64_MAX, NULL);
		CHECK_STR(s, want);
		free(s);
		s = canon_body_sizes(c, b.data, b.len, odd, 8, UINT64_MAX, NULL);
		CHECK_STR(s, want);
		free(s);
		/* l= cuts in the middle of a long run and of the output buffer */
		static const uint64_t limits[] = { 0, 1, 255, 256, 4097, 20000 };
		for (size_t k = 0; k < 6; k++) {
			s = canon_body_sizes(c, b.data, b.len, odd, 8, limits[k], &total);
			CHECK(total == strlen(want));
			CHECK(strlen(s) == limits[k] && memcmp(s, want, limits[k]) == 0);
			free(s);
		}
		free(want);
	}
	buf_free(&b);

	/* random bodies in random chunks: one alphabet dense in the bytes
	 * that matter, one mostly text (long runs for the word-at-a-time
	 * scan), both with the bytes next to its thresholds (0x20/0x21,
	 * controls, the high bit) */
	static const char dense[] = "aaaabbbb  \t\r\n\r\n!\x01\x80";
	static const char text[] = "abcdefghijklmnopqrstuvwxyz!~\x7f\x80\xa0\xff\x1f\x01"
				   "           \t\r\n";
	uint32_t seed = 12345;
	for (int round = 0; round < 400; round++) {
		const char *alphabet = round % 2 ? dense : text;
		size_t n_alpha = round % 2 ? sizeof(dense) - 1 : sizeof(text) - 1;
		char in[600];
		seed = seed * 1103515245 + 12345;
		size_t len = (seed >> 8) % sizeof(in);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245 + 12345;
			in[i] = alphabet[(seed >> 16) % n_alpha];
		}
		size_t sizes[4];
		for (size_t k = 0; k < 4; k++) {
			seed = seed * 1103515245 + 12345;
			sizes[k] = 1 + (seed >> 16) % 40;
		}
		for (int c = 0; c < 2; c++) {
			char *want = canon_reference(c, in, len);
			char *whole = canon_body(c, in, len, 0, UINT64_MAX, NULL);
			char *parts = canon_body_sizes(c, in, len, sizes, 4, UINT64_MAX, NULL);
			CHECK_STR(whole, want);
			CHECK_STR(parts, want);
			free(want);
			free(whole);
			free(parts);
		}
	}
}

static void test_msg_split(void)
{
	struct dkim_msg m;
	struct sink body;
	buf_init(&body.b, BUF_UNLIMITED);
	const char *in = "A: 1\nB:\n 2\r\nnot a field\r\nC :3\n\nbody\n";
	for (size_t chunk = 1; chunk < 4; chunk++) {
		dkim_msg_init(&m, NULL, sink_emit, &body);
		buf_reset(&body.b);
		for (size_t i = 0; i < strlen(in); i += chunk)
			dkim_msg_feed(&m, in + i, strlen(in) - i < chunk ? strlen(in) - i : chunk);
		dkim_msg_end(&m);
		CHECK_STR(buf_cstr(&m.header), "A: 1\r\nB:\r\n 2\r\nnot a field\r\nC :3\r\n");
		CHECK_STR(buf_cstr(&body.b), "body\n");
		CHECK(m.n_fields == 3);
		struct buf out;
		buf_init(&out, BUF_UNLIMITED);
		char *names[] = { "c", "b", "b", "a" };
		CHECK(dkim_msg_canon_headers(&m, DKIM_CANON_RELAXED, names, 4, &out) == 0);
		CHECK_STR(buf_cstr(&out), "c:3\r\nb:2\r\na:1\r\n");
		buf_free(&out);
		dkim_msg_free(&m);
	}
	/* header only, no final newline */
	dkim_msg_init(&m, NULL, NULL, NULL);
	dkim_msg_feed(&m, "X: y", 4);
	dkim_msg_end(&m);
	CHECK_STR(buf_cstr(&m.header), "X: y\r\n");
	CHECK(m.n_fields == 1);
	dkim_msg_free(&m);
	buf_free(&body.b);
}

static void check_one(struct dkim_verify *v, struct res *r, enum dkim_result want,
		      const char *reason)
{
	CHECK(r->done);
	if (!r->done)
		return;
	CHECK(r->out.count >= 1);
	if (r->out.count < 1)
		return;
	if (r->out.results[0].result != want || (reason && strcmp(reason, r->out.results[0].reason)))
		fprintf(stderr, "  got %s (%s), want %s\n",
			dkim_result_name(r->out.results[0].result), r->out.results[0].reason,
			dkim_result_name(want));
	CHECK(r->out.results[0].result == want);
	if (reason)
		CHECK_STR(r->out.results[0].reason, reason);
	(void)v;
}

/* replace the first occurrence of from in s by to (a new string) */
static char *replace(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);
	if (p == NULL)
		return xstrdup(s);
	return xasprintf("%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
}

static void test_round_trip(void)
{
	struct dkim_keyring *kr = dkim_keyring_create();
	keyring_add(kr, "rsa", rsa2048);
	keyring_add(kr, "ed", ed);
	keyring_add(kr, "rsa1024", rsa1024);
	struct zone z = { 0 };
	char *rec;
	zone_add(&z, "rsa._domainkey.example.com", (rec = pubkey_record(rsa2048)));
	free(rec);
	zone_add(&z, "ed._domainkey.example.com", (rec = pubkey_record(ed)));
	free(rec);
	zone_add(&z, "rsa1024._domainkey.example.com", (rec = pubkey_record(rsa1024)));
	free(rec);
	time_t now = 1700000000;

	for (int async = 0; async < 2; async++) {
		z.async = async;
		const char *sels[] = { "rsa", "ed", "rsa1024" };
		for (int k = 0; k < 3; k++) {
			char *m = sign_text(kr, sample, k == 1 ? DKIM_ALG_ED25519_SHA256 :
					    DKIM_ALG_RSA_SHA256, sels[k], now, 0);
			CHECK(m != NULL);
			if (m == NULL)
				continue;
			CHECK(strncmp(m, "DKIM-Signature: v=1; a=", 23) == 0);
			CHECK(strstr(m, "h=from:to:subject:date:message-id:from;") != NULL);
			for (size_t chunk = 0; chunk < 3; chunk += 1) {
				struct res r;
				struct dkim_verify *v = verify(&z, m, strlen(m), now + 10, chunk, &r);
				check_one(v, &r, DKIM_RESULT_PASS, "");
				if (r.done && r.out.count == 1) {
					CHECK_STR(r.out.results[0].domain, "example.com");
					CHECK_STR(r.out.results[0].selector, sels[k]);
					CHECK_STR(r.out.results[0].auid, "@example.com");
					CHECK(strlen(r.out.results[0].header_b) == 8);
					CHECK(strncmp(r.out.results[0].header_b,
						      strstr(m, "b=") ? strstr(m, " b=") + 3 : "", 8) == 0);
				}
				dkim_verify_destroy(&v);
				CHECK(v == NULL);
			}
			/* a changed body, a changed From, an added From */
			char *m2 = replace(m, "hungry", "angry");
			struct res r;
			struct dkim_verify *v = verify(&z, m2, strlen(m2), now, 0, &r);
			check_one(v, &r, DKIM_RESULT_FAIL, "body hash did not verify");
			dkim_verify_destroy(&v);
			free(m2);
			m2 = replace(m, "From: Joe", "From: Jim");
			v = verify(&z, m2, strlen(m2), now, 0, &r);
			check_one(v, &r, DKIM_RESULT_FAIL, "signature did not verify");
			dkim_verify_destroy(&v);
			free(m2);
			m2 = replace(m, "\r\n\r\nHi.", "\r\nFrom: evil@example.org\r\n\r\nHi.");
			v = verify(&z, m2, strlen(m2), now, 0, &r);
			check_one(v, &r, DKIM_RESULT_FAIL, "signature did not verify");
			dkim_verify_destroy(&v);
			free(m2);
			/* relaxed: refolding and blank changes in headers and body pass */
			m2 = replace(m, "Subject: Is dinner ready?", "SUBJECT:Is  dinner\r\n\tready?  ");
			char *m3 = replace(m2, "We lost the game.", "We  lost the game.   ");
			v = verify(&z, m3, strlen(m3), now, 1, &r);
			check_one(v, &r, DKIM_RESULT_PASS, "");
			dkim_verify_destroy(&v);
			free(m2);
			free(m3);
			free(m);
		}
	}
	zone_free(&z);
	dkim_keyring_destroy(&kr);
	CHECK(kr == NULL);
}

/* Verify msg against a zone holding only record under name; the result
 * of the first signature (and whether there was one). */
static enum dkim_result verify_with(const char *name, const char *record, const char *msg,
				    time_t now, const char **reason_r, bool *testing_r)
{
	struct zone z = { 0 };
	struct res r;
	zone_add(&z, name, record);
	struct dkim_verify *v = verify(&z, msg, strlen(msg), now, 0, &r);
	enum dkim_result res = DKIM_RESULT_NONE;
	CHECK(r.done && r.out.count == 1);
	CHECK(z.queries == 1);  /* the cache never saves the DNS question */
	if (r.done && r.out.count == 1) {
		res = r.out.results[0].result;
		if (reason_r)
			*reason_r = r.out.results[0].reason;
		if (testing_r)
			*testing_r = r.out.results[0].testing;
	}
	dkim_verify_destroy(&v);
	zone_free(&z);
	return res;
}

struct cache_thread {
	const char *msg;
	char **records;
	size_t n_records;
	size_t start;
	int passed;
};

static void *cache_thread_run(void *arg)
{
	struct cache_thread *t = arg;
	for (size_t i = 0; i < 60; i++) {
		struct zone z = { 0 };
		zone_add(&z, "ed._domainkey.example.com",
			 t->records[(t->start + i * 13) % t->n_records]);
		struct dkim_dns dns = { &z, z_txt, z_cancel };
		struct dkim_verify_options o = { .now = 1700000000 };
		struct dkim_verify *v = dkim_verify_create(&o);
		struct res r = { 0 };
		dkim_verify_feed(v, t->msg, strlen(t->msg));
		dkim_verify_finish(v, &dns, res_cb, &r);
		if (r.done && r.out.count == 1 && r.out.results[0].result == DKIM_RESULT_PASS)
			t->passed++;
		dkim_verify_destroy(&v);
		zone_free(&z);
	}
	return NULL;
}

/* The cache of decoded keys: hits give the same verdicts, any change of
 * the record text misses, the clock keeps what is used, a key evicted
 * while in use stays valid, and threads share it. */
static void test_key_cache(void)
{
	struct dkim_keycache_stats st;
	struct dkim_keyring *kr = dkim_keyring_create();
	keyring_add(kr, "rsa", rsa2048);
	keyring_add(kr, "ed", ed);
	time_t now = 1700000000;
	char *m = sign_text(kr, sample, DKIM_ALG_RSA_SHA256, "rsa", now, 0);
	char *med = sign_text(kr, sample, DKIM_ALG_ED25519_SHA256, "ed", now, 0);
	char *rec = pubkey_record(rsa2048), *edrec = pubkey_record(ed);
	const char *name = "rsa._domainkey.example.com";
	const char *reason = NULL;
	bool testing = true;
	CHECK(m != NULL && med != NULL);
	if (m == NULL || med == NULL)
		return;

	dkim_keycache_clear();
	for (int i = 0; i < 3; i++) {
		CHECK(verify_with(name, rec, m, now, &reason, &testing) == DKIM_RESULT_PASS);
		CHECK(!testing);
	}
	dkim_keycache_get_stats(&st);
	CHECK(st.misses == 1 && st.hits == 2 && st.entries == 1 && st.evictions == 0);

	/* the same key under a changed record: a miss, and the new flags */
	char *rec_t = replace(rec, "k=rsa;", "t=y; k=rsa;");
	CHECK(verify_with(name, rec_t, m, now, &reason, &testing) == DKIM_RESULT_PASS);
	CHECK(testing);
	char *rec_s = replace(rec, "k=rsa;", "t=s; k=rsa;");
	char *ms = replace(m, "d=example.com;", "d=example.com; i=joe@sub.example.com;");
	CHECK(verify_with(name, rec_s, m, now, &reason, NULL) == DKIM_RESULT_PASS);
	/* (ms breaks the signature too, but t=s is checked before it) */
	CHECK(verify_with(name, rec_s, ms, now, &reason, NULL) == DKIM_RESULT_PERMERROR);
	CHECK_STR(reason, "key t=s: i= domain must equal d=");
	dkim_keycache_get_stats(&st);
	CHECK(st.entries == 3);
	/* revoked, rotated, restricted and broken records under the same name
	 * while the old record is cached */
	CHECK(verify_with(name, "v=DKIM1; k=rsa; p=", m, now, &reason, NULL) ==
	      DKIM_RESULT_PERMERROR);
	CHECK_STR(reason, "key revoked");
	char *other = pubkey_record(rsa1024);
	CHECK(verify_with(name, other, m, now, &reason, NULL) == DKIM_RESULT_FAIL);
	CHECK_STR(reason, "signature did not verify");
	char *rec_h = replace(rec, "k=rsa;", "h=sha1; k=rsa;");
	CHECK(verify_with(name, rec_h, m, now, &reason, NULL) == DKIM_RESULT_PERMERROR);
	CHECK_STR(reason, "key h= does not allow sha256");
	CHECK(verify_with(name, "v=DKIM1; k=rsa; p=AAAA", m, now, &reason, NULL) ==
	      DKIM_RESULT_PERMERROR);
	CHECK_STR(reason, "public key unusable");
	/* an RSA record (cached) where an Ed25519 key is wanted */
	CHECK(verify_with("ed._domainkey.example.com", rec, med, now, &reason, NULL) ==
	      DKIM_RESULT_PERMERROR);
	CHECK_STR(reason, "key type does not match a=");
	/* a short RSA key from the cache still fails (RFC 8301) */
	char *short_rec = pubkey_record(rsa512);
	for (int i = 0; i < 2; i++) {
		CHECK(verify_with(name, short_rec, m, now, &reason, NULL) == DKIM_RESULT_FAIL);
		CHECK_STR(reason, "RSA key shorter than 1024 bits (RFC 8301)");
	}
	/* and the original record again: a hit */
	dkim_keycache_get_stats(&st);
	uint64_t hits = st.hits;
	CHECK(verify_with(name, rec, m, now, &reason, &testing) == DKIM_RESULT_PASS);
	CHECK(!testing);
	dkim_keycache_get_stats(&st);
	CHECK(st.hits == hits + 1);

	/* eviction: DKIM_KEYCACHE_SIZE + 44 records of the same key, each
	 * different text; the first one is used again (second chance) */
	dkim_keycache_clear();
	size_t n_recs = DKIM_KEYCACHE_SIZE + 44;
	char **recs = xcalloc(n_recs, sizeof(char *));
	for (size_t i = 0; i < n_recs; i++) {
		char *tag = xasprintf("v=DKIM1; n=%zu;", i);
		recs[i] = replace(edrec, "v=DKIM1;", tag);
		free(tag);
	}
	struct dkim_key k;
	EVP_PKEY *held = NULL;
	for (size_t i = 0; i < n_recs; i++) {
		CHECK(verify_with("ed._domainkey.example.com", recs[i], med, now, &reason, NULL) ==
		      DKIM_RESULT_PASS);
		if (i == 0) {
			held = dkim_keycache_get(recs[0], strlen(recs[0]), &k);
			CHECK(held != NULL && k.type == DKIM_KEY_ED25519 && !k.revoked &&
			      k.public_key == NULL);
		}
	}
	dkim_keycache_get_stats(&st);
	CHECK(st.entries == DKIM_KEYCACHE_SIZE && st.evictions == 44);
	EVP_PKEY *p;
	CHECK((p = dkim_keycache_get(recs[0], strlen(recs[0]), &k)) != NULL);
	EVP_PKEY_free(p);
	CHECK((p = dkim_keycache_get(recs[1], strlen(recs[1]), &k)) == NULL);
	CHECK((p = dkim_keycache_get(recs[44], strlen(recs[44]), &k)) == NULL);
	CHECK((p = dkim_keycache_get(recs[45], strlen(recs[45]), &k)) != NULL);
	EVP_PKEY_free(p);
	CHECK((p = dkim_keycache_get(recs[n_recs - 1], strlen(recs[n_recs - 1]), &k)) != NULL);
	EVP_PKEY_free(p);
	/* the held key outlives its entry */
	dkim_keycache_clear();
	if (held) {
		unsigned char sig[64], msgbytes[32] = { 1, 2, 3 };
		size_t siglen = sizeof(sig);
		EVP_MD_CTX *mctx = EVP_MD_CTX_new();
		CHECK(EVP_DigestSignInit(mctx, NULL, NULL, NULL, ed) == 1 &&
		      EVP_DigestSign(mctx, sig, &siglen, msgbytes, 32) == 1);
		EVP_MD_CTX_free(mctx);
		mctx = EVP_MD_CTX_new();
		CHECK(EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, held) == 1 &&
		      EVP_DigestVerify(mctx, sig, siglen, msgbytes, 32) == 1);
		EVP_MD_CTX_free(mctx);
		EVP_PKEY_free(held);
	}

	/* four threads verifying over more records than the cache holds */
	pthread_t th[4];
	struct cache_thread ct[4];
	for (size_t i = 0; i < 4; i++) {
		ct[i] = (struct cache_thread){ med, recs, n_recs, i * 71, 0 };
		CHECK(pthread_create(&th[i], NULL, cache_thread_run, &ct[i]) == 0);
	}
	for (size_t i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(ct[i].passed == 60);
	}
	dkim_keycache_get_stats(&st);
	CHECK(st.hits + st.misses == 240 && st.entries <= DKIM_KEYCACHE_SIZE);

	for (size_t i = 0; i < n_recs; i++)
		free(recs[i]);
	free(recs);
	dkim_keycache_clear();
	free(short_rec);
	free(rec_h);
	free(other);
	free(ms);
	free(rec_s);
	free(rec_t);
	free(rec);
	free(edrec);
	free(m);
	free(med);
	dkim_keyring_destroy(&kr);
}

static void test_results(void)
{
	struct dkim_keyring *kr = dkim_keyring_create();
	keyring_add(kr, "rsa", rsa2048);
	keyring_add(kr, "ed", ed);
	struct zone z = { 0 };
	char *rec = pubkey_record(rsa2048);
	time_t now = 1700000000;
	struct res r;
	struct dkim_verify *v;
	char *m = sign_text(kr, sample, DKIM_ALG_RSA_SHA256, "rsa", now, 3600);
	CHECK(m && strstr(m, "x=1700003600;"));
	if (m == NULL)
		return;

	/* no key, tempfail, revoked, wrong type, testing flag, strict, short key */
	v = verify(&z, m, strlen(m), now, 0, &r);
	check_one(v, &r, DKIM_RESULT_PERMERROR, "no key for signature");
	dkim_verify_destroy(&v);
	zone_add(&z, "rsa._domainkey.example.com", "TEMPFAIL");
	v = verify(&z, m, strlen(m), now, 0, &r);
	check_one(v, &r, DKIM_RESULT_TEMPERROR, NULL);
	dkim_verify_destroy(&v);
	zone_free(&z);

	static const struct { const char *fmt; enum dkim_result want; const char *reason; } keys[] = {
		{ "v=DKIM1; p=", DKIM_RESULT_PERMERROR, "key revoked" },
		{ "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
		  DKIM_RESULT_PERMERROR, "key type does not match a=" },
		{ "v=DKIM1; h=sha1; p=%s", DKIM_RESULT_PERMERROR, "key h= does not allow sha256" },
		{ "v=DKIM1; s=tlsrpt; p=%s", DKIM_RESULT_PERMERROR, "key not for email (s= tag)" },
		{ "v=DKIM1; t=y; p=%s", DKIM_RESULT_PASS, "" },
		{ "v=DKIM1; t=s; p=%s", DKIM_RESULT_PASS, "" },
		{ "v=DKIM1; p=%s", DKIM_RESULT_PASS, "" },
		{ "v=DKIM1; p=AAAA", DKIM_RESULT_PERMERROR, "public key unusable" },
	};
	const char *p = strstr(rec, "p=") + 2;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *val = replace(keys[i].fmt, "%s", p);
		zone_add(&z, "rsa._domainkey.example.com", val);
		free(val);
		v = verify(&z, m, strlen(m), now, 0, &r);
		check_one(v, &r, keys[i].want, keys[i].reason);
		if (i == 4 && r.done)
			CHECK(r.out.results[0].testing);
		dkim_verify_destroy(&v);
		zone_free(&z);
	}
	char *rec512 = pubkey_record(rsa512);
	zone_add(&z, "rsa._domainkey.example.com", rec512);
	v = verify(&z, m, strlen(m), now, 0, &r);
	check_one(v, &r, DKIM_RESULT_FAIL, "RSA key shorter than 1024 bits (RFC 8301)");
	dkim_verify_destroy(&v);
	zone_free(&z);
	free(rec512);

	/* several TXT records: the first usable one is taken */
	zone_add(&z, "rsa._domainkey.example.com", "v=spf1 -all");
	zone_add(&z, "rsa._domainkey.example.com", rec);
	v = verify(&z, m, strlen(m), now, 0, &r);
	check_one(v, &r, DKIM_RESULT_PASS, "");
	dkim_verify_destroy(&v);

	/* x= and t= against the clock */
	v = verify(&z, m, strlen(m), now + 3601, 0, &r);
	check_one(v, &r, DKIM_RESULT_FAIL, "signature expired");
	dkim_verify_destroy(&v);
	v = verify(&z, m, strlen(m), now - DKIM_FUTURE_ALLOWANCE + 5, 0, &r);
	check_one(v, &r, DKIM_RESULT_PASS, "");
	dkim_verify_destroy(&v);
	v = verify(&z, m, strlen(m), now - DKIM_FUTURE_ALLOWANCE - 5, 0, &r);
	check_one(v, &r, DKIM_RESULT_FAIL, "signature timestamp in the future");
	dkim_verify_destroy(&v);
	int q = z.queries;
	CHECK(q == 2); /* expired and future asked no DNS */

	/* rsa-sha1 and unknown algorithms ask no DNS either */
	char *m2 = replace(m, "a=rsa-sha256", "a=rsa-sha1");
	v = verify(&z, m2, strlen(m2), now, 0, &r);
	check_one(v, &r, DKIM_RESULT_FAIL, "rsa-sha1 is not accepted (RFC 8301)");
	dkim_verify_destroy(&v);
	free(m2);
	m2 = replace(m, "a=rsa-sha256", "a=rsa-sha512");
	v = verify(&z, m2, strlen(m2), now, 0, &r);
	check_one(v, &r, DKIM_RESULT_NEUTRAL, "unknown algorithm");
	dkim_verify_destroy(&v);
	free(m2);
	char *longsel = xasprintf("s=%s.%s.%s.%s;", "a123456789012345678901234567890123456789012345678901234567",
				  "b123456789012345678901234567890123456789012345678901234567",
				  "c123456789012345678901234567890123456789012345678901234567",
				  "d123456789012345678901234567890123456789012345678901234567");
	m2 = replace(m, "s=rsa;", longsel);
	free(longsel);
	v = verify(&z, m2, strlen(m2), now, 0, &r);
	check_one(v, &r, DKIM_RESULT_PERMERROR, "key name too long");
	dkim_verify_destroy(&v);
	free(m2);
	m2 = replace(m, "v=1;", "v=1; v=1;");
	v = verify(&z, m2, strlen(m2), now, 0, &r);
	check_one(v, &r, DKIM_RESULT_PERMERROR, "duplicate tag");
	if (r.done) {
		CHECK_STR(r.out.results[0].domain, "");
		struct buf b;
		buf_init(&b, 1000);
		CHECK(dkim_result_format(&r.out.results[0], &b) == 0);
		CHECK_STR(buf_cstr(&b), "dkim=permerror (duplicate tag)");
		buf_free(&b);
	}
	dkim_verify_destroy(&v);
	free(m2);
	/* a semantic error still shows the well-formed d= and s= */
	m2 = replace(m, "v=1;", "v=2;");
	v = verify(&z, m2, strlen(m2), now, 0, &r);
	check_one(v, &r, DKIM_RESULT_PERMERROR, "unsupported version");
	if (r.done) {
		struct buf b;
		buf_init(&b, 1000);
		CHECK(dkim_result_format(&r.out.results[0], &b) == 0);
		CHECK_STR(buf_cstr(&b), "dkim=permerror (unsupported version) header.d=example.com"
			  " header.s=rsa");
		buf_free(&b);
	}
	dkim_verify_destroy(&v);
	free(m2);
	CHECK(z.queries == q);

	/* the Authentication-Results resinfo */
	v = verify(&z, m, strlen(m), now, 0, &r);
	if (r.done && r.out.count == 1) {
		struct buf b;
		buf_init(&b, 1000);
		CHECK(dkim_result_format(&r.out.results[0], &b) == 0);
		char *want = xasprintf("dkim=pass header.d=example.com header.i=@example.com"
				       " header.s=rsa header.a=rsa-sha256 header.b=\"%s\"",
				       r.out.results[0].header_b);
		CHECK_STR(buf_cstr(&b), want);
		free(want);
		buf_free(&b);
	}
	dkim_verify_destroy(&v);

	/* no signature at all */
	v = verify(&z, sample, strlen(sample), now, 0, &r);
	CHECK(r.done && r.out.count == 0);
	dkim_verify_destroy(&v);
	zone_free(&z);
	free(rec);
	free(m);
	dkim_keyring_destroy(&kr);
}

static void test_many_signatures(void)
{
	struct dkim_keyring *kr = dkim_keyring_create();
	keyring_add(kr, "ed", ed);
	struct zone z = { 0 };
	char *rec = pubkey_record(ed);
	zone_add(&z, "ed._domainkey.example.com", rec);
	free(rec);
	char *m = xstrdup(sample);
	for (int i = 0; i < DKIM_MAX_SIGNATURES + 2; i++) {
		char *m2 = sign_text(kr, m, DKIM_ALG_ED25519_SHA256, "ed", 1700000000, 0);
		CHECK(m2 != NULL);
		if (m2 == NULL)
			break;
		free(m);
		m = m2;
	}
	for (int async = 0; async < 2; async++) {
		z.async = async;
		struct res r;
		struct dkim_verify *v = verify(&z, m, strlen(m), 1700000000, 7, &r);
		CHECK(r.done && r.out.count == DKIM_MAX_SIGNATURES && r.out.ignored == 2);
		for (size_t i = 0; r.done && i < r.out.count; i++)
			CHECK(r.out.results[i].result == DKIM_RESULT_PASS);
		dkim_verify_destroy(&v);
	}
	/* destroyed with answers outstanding: with cancel, and without */
	z.async = true;
	for (size_t i = 0; i < z.nq; i++)
		free(z.q[i].name);
	z.nq = 0;
	struct dkim_verify *v = dkim_verify_create(NULL);
	struct dkim_dns dns = { &z, z_txt, z_cancel };
	struct res r = { 0 };
	dkim_verify_feed(v, m, strlen(m));
	dkim_verify_finish(v, &dns, res_cb, &r);
	CHECK(!r.done);
	int c0 = z.cancels;
	dkim_verify_destroy(&v);
	CHECK(z.cancels - c0 == DKIM_MAX_SIGNATURES);
	zone_flush(&z);
	CHECK(!r.done);
	struct dkim_dns nocancel = { &z, z_txt, NULL };
	v = dkim_verify_create(NULL);
	dkim_verify_feed(v, m, strlen(m));
	dkim_verify_finish(v, &nocancel, res_cb, &r);
	dkim_verify_destroy(&v);
	zone_flush(&z); /* frees the verifier (ASan checks) */
	CHECK(!r.done);
	free(m);
	zone_free(&z);
	dkim_keyring_destroy(&kr);
}

static void test_sign_refusals(void)
{
	struct dkim_keyring *kr = dkim_keyring_create();
	keyring_add(kr, "rsa", rsa2048);
	struct dkim_signer signer = dkim_keyring_signer(kr);
	struct buf out;
	const char *e = NULL;
	buf_init(&out, BUF_UNLIMITED);
	struct dkim_sign_request req = { .domain = "example.com", .selector = "rsa",
					 .alg = DKIM_ALG_RSA_SHA256, .key_id = "rsa" };
	const char *nofrom = "To: a@b.example\r\nSubject: x\r\n\r\nbody\r\n";
	CHECK(dkim_sign_message(&req, &signer, nofrom, strlen(nofrom), &out, &e) < 0);
	CHECK_STR(e, "message has no From header field");
	CHECK(out.len == 0);
	req.alg = DKIM_ALG_ED25519_SHA256;
	CHECK(dkim_sign_message(&req, &signer, sample, strlen(sample), &out, &e) < 0);
	CHECK_STR(e, "key does not match the algorithm");
	req.alg = DKIM_ALG_RSA_SHA1;
	CHECK(dkim_sign_message(&req, &signer, sample, strlen(sample), &out, &e) < 0);
	req.alg = DKIM_ALG_RSA_SHA256;
	req.key_id = "nope";
	CHECK(dkim_sign_message(&req, &signer, sample, strlen(sample), &out, &e) < 0);
	CHECK_STR(e, "no such signing key");
	req.key_id = "rsa";
	req.domain = "bad domain";
	CHECK(dkim_sign_message(&req, &signer, sample, strlen(sample), &out, &e) < 0);
	req.domain = "example.com";
	req.selector = "a\r\nb";
	CHECK(dkim_sign_message(&req, &signer, sample, strlen(sample), &out, &e) < 0);
	CHECK(dkim_keyring_add_pem(kr, "x", "junk", 4, &e) < 0);
	/* the keyring refuses RSA keys under 1024 bits */
	BIO *bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(bio, rsa512, NULL, NULL, 0, NULL, NULL);
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	CHECK(dkim_keyring_add_pem(kr, "short", p, (size_t)n, &e) < 0);
	BIO_free(bio);
	/* every header of the set is signed as often as it occurs */
	const char *msg = "From: a@example.com\r\nTo: b@x.example\r\nTo: c@x.example\r\n"
			  "Cc: d@x.example\r\nX-Other: 1\r\nMIME-Version: 1.0\r\n\r\n";
	req.selector = "rsa";
	CHECK(dkim_sign_message(&req, &signer, msg, strlen(msg), &out, &e) == 0);
	CHECK(strstr(buf_cstr(&out), "h=from:to:to:cc:mime-version:from;") != NULL);
	/* lines are folded; no line over 78 characters */
	size_t col = 0;
	for (size_t i = 0; i < out.len; i++) {
		col = out.data[i] == '\n' ? 0 : col + 1;
		CHECK(col <= 78);
	}
	buf_free(&out);
	dkim_keyring_destroy(&kr);
}

static void test_header_limits(void)
{
	struct zone z = { 0 };
	struct buf m;
	buf_init(&m, BUF_UNLIMITED);
	buf_append_str(&m, "DKIM-Signature: v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA\r\n");
	while (m.len <= DKIM_MAX_HEADER_SECTION)
		buf_append_str(&m, "X-Filler: 0123456789012345678901234567890123456789\r\n");
	buf_append_str(&m, "\r\nbody\r\n");
	struct res r;
	struct dkim_verify *v = verify(&z, m.data, m.len, 1700000000, 0, &r);
	check_one(v, &r, DKIM_RESULT_PERMERROR, "header section too large");
	dkim_verify_destroy(&v);
	buf_reset(&m);
	buf_append_str(&m, "DKIM-Signature: v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA\r\n");
	for (int i = 0; i <= DKIM_MAX_HEADER_FIELDS; i++)
		buf_append_str(&m, "X: y\r\n");
	buf_append_str(&m, "\r\n");
	v = verify(&z, m.data, m.len, 1700000000, 0, &r);
	check_one(v, &r, DKIM_RESULT_PERMERROR, "header section too large");
	dkim_verify_destroy(&v);
	CHECK(z.queries == 0);
	buf_free(&m);
	zone_free(&z);
}

/* ---- driver ---- */

static char *read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		exit(1);
	}
	struct buf b;
	buf_init(&b, BUF_UNLIMITED);
	char tmp[65536];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(&b, tmp, n);
	fclose(f);
	*len_r = b.len;
	return buf_steal(&b);
}

static void load_zone(struct zone *z, const char *path)
{
	size_t len;
	char *text = read_file(path, &len);
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t l = strlen(line);
		if (l && line[l - 1] == '\r')
			line[--l] = 0;
		if (line[0] == '#' || line[0] == 0)
			continue;
		char *sp = strchr(line, ' ');
		if (sp == NULL)
			continue;
		*sp = 0;
		zone_add(z, line, sp + 1);
	}
	free(text);
}

static int driver_verify(const char *msgfile, const char *dnsfile, time_t now, bool async,
			 size_t chunk, bool allow_partial)
{
	struct zone z = { 0 };
	if (dnsfile)
		load_zone(&z, dnsfile);
	z.async = async;
	size_t len;
	char *msg = read_file(msgfile, &len);
	struct dkim_verify_options o = { .now = now, .allow_partial_body = allow_partial };
	struct dkim_verify *v = dkim_verify_create(&o);
	struct dkim_dns dns = { &z, z_txt, z_cancel };
	if (chunk == 0)
		chunk = len ? len : 1;
	for (size_t i = 0; i < len; i += chunk)
		dkim_verify_feed(v, msg + i, len - i < chunk ? len - i : chunk);
	struct res r = { 0 };
	dkim_verify_finish(v, &dns, res_cb, &r);
	if (async)
		zone_flush(&z);
	if (!r.done) {
		fprintf(stderr, "no result\n");
		return 1;
	}
	if (r.out.count == 0)
		printf("none\n");
	for (size_t i = 0; i < r.out.count; i++) {
		const struct dkim_sig_result *s = &r.out.results[i];
		printf("%s\t%s\t%s\t%s\t%s\n", dkim_result_name(s->result), s->domain,
		       s->selector, s->alg, s->reason);
	}
	if (r.out.ignored)
		printf("ignored %zu\n", r.out.ignored);
	dkim_verify_destroy(&v);
	zone_free(&z);
	free(msg);
	return 0;
}

static int driver_sign(const char *msgfile, const char *domain, const char *selector,
		       const char *keyfile, const char *seed, time_t now)
{
	struct dkim_keyring *kr = dkim_keyring_create();
	const char *e = NULL;
	enum dkim_alg alg = DKIM_ALG_RSA_SHA256;
	if (seed) {
		uint8_t raw[32];
		if (base64_decode_exact(seed, strlen(seed), raw, 32) < 0 ||
		    dkim_keyring_add_ed25519_seed(kr, "k", raw, &e) < 0) {
			fprintf(stderr, "bad seed\n");
			return 1;
		}
		alg = DKIM_ALG_ED25519_SHA256;
	} else {
		size_t klen;
		char *pem = read_file(keyfile, &klen);
		if (dkim_keyring_add_pem(kr, "k", pem, klen, &e) < 0) {
			fprintf(stderr, "%s\n", e);
			return 1;
		}
		free(pem);
		if (strstr(keyfile, "ed25519") || strstr(keyfile, "ed-"))
			alg = DKIM_ALG_ED25519_SHA256;
	}
	size_t len;
	char *msg = read_file(msgfile, &len);
	struct dkim_sign_request req = { .domain = domain, .selector = selector, .alg = alg,
					 .key_id = "k", .timestamp = now };
	struct dkim_signer signer = dkim_keyring_signer(kr);
	struct buf out;
	buf_init(&out, BUF_UNLIMITED);
	int rc = 0;
	if (dkim_sign_message(&req, &signer, msg, len, &out, &e) < 0) {
		/* the key type decides when the file name does not */
		req.alg = alg == DKIM_ALG_RSA_SHA256 ? DKIM_ALG_ED25519_SHA256 : DKIM_ALG_RSA_SHA256;
		const char *e2;
		if (strcmp(e, "key does not match the algorithm") != 0 ||
		    dkim_sign_message(&req, &signer, msg, len, &out, &e2) < 0) {
			fprintf(stderr, "refused: %s\n", e);
			rc = 2;
		}
	}
	if (rc == 0) {
		fwrite(out.data, 1, out.len, stdout);
		for (size_t i = 0; i < len; i++) {
			if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
				fputc('\r', stdout);
			fputc(msg[i], stdout);
		}
	}
	buf_free(&out);
	free(msg);
	dkim_keyring_destroy(&kr);
	return rc;
}

static int driver(int argc, char **argv)
{
	const char *verify_file = NULL, *sign_file = NULL, *dns = NULL, *domain = NULL,
		   *selector = NULL, *key = NULL, *seed = NULL;
	time_t now = 0;
	bool async = false, allow_partial = false;
	size_t chunk = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--async") == 0) {
			async = true;
			continue;
		}
		if (strcmp(a, "--allow-partial") == 0) {
			allow_partial = true;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "missing value for %s\n", a);
			return 1;
		}
		const char *val = argv[++i];
		if (strcmp(a, "--verify") == 0)
			verify_file = val;
		else if (strcmp(a, "--sign") == 0)
			sign_file = val;
		else if (strcmp(a, "--dns") == 0)
			dns = val;
		else if (strcmp(a, "--now") == 0)
			now = (time_t)strtoll(val, NULL, 10);
		else if (strcmp(a, "--chunk") == 0)
			chunk = (size_t)strtoul(val, NULL, 10);
		else if (strcmp(a, "--domain") == 0)
			domain = val;
		else if (strcmp(a, "--selector") == 0)
			selector = val;
		else if (strcmp(a, "--key") == 0)
			key = val;
		else if (strcmp(a, "--seed") == 0)
			seed = val;
		else {
			fprintf(stderr, "unknown option %s\n", a);
			return 1;
		}
	}
	if (verify_file)
		return driver_verify(verify_file, dns, now, async, chunk, allow_partial);
	if (sign_file && domain && selector && (key || seed))
		return driver_sign(sign_file, domain, selector, key, seed, now);
	fprintf(stderr, "usage: see the comment at the top of tests/unit/test-dkim.c\n");
	return 1;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		return driver(argc, argv);
	rsa2048 = EVP_RSA_gen(2048);
	rsa1024 = EVP_RSA_gen(1024);
	rsa512 = EVP_RSA_gen(512);
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!rsa2048 || !rsa1024 || !rsa512 || !ed) {
		fprintf(stderr, "key generation failed\n");
		return 1;
	}
	RUN(test_tag_list);
	RUN(test_signature_parse);
	RUN(test_key_parse);
	RUN(test_canon_header);
	RUN(test_canon_body);
	RUN(test_canon_runs);
	RUN(test_msg_split);
	RUN(test_round_trip);
	RUN(test_key_cache);
	RUN(test_results);
	RUN(test_many_signatures);
	RUN(test_sign_refusals);
	RUN(test_header_limits);
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(rsa512);
	EVP_PKEY_free(ed);
	return unit_summary("dkim");
}
