/* Unit tests for making our ARC set again after the 8BITMIME downgrade
 * (src/queue/sign-hook-arc.c through sign_hook_downgrade, docs/arc.md).
 *
 * A test sealer is registered as the signing hook's sealer: the real
 * arc_seal_message with an RSA key for fwd.example (selector arc); a
 * second key plays a mailing list (lists.example) that sealed first.
 * Every result is checked with Tern's ARC verifier (arc-verify.c), fed
 * whole and one byte at a time, against an in-memory DNS:
 * - an 8-bit message sealed (i=1, cv=none) then downgraded: the plain
 *   conversion fails verification (the test can fail), the resealed one
 *   passes with i=1, cv=none and the same ARC-Authentication-Results;
 * - the same above a list's set: i=2, cv=pass kept, the list's set
 *   untouched, pass with oldest-pass 2 (the list's AMS body hash broke);
 * - with a DKIM signature under our set: signed again first, sealed last,
 *   one of each, and the chain passes (its AMS covers the new signature);
 * - no set of ours on top: the message is only converted;
 * - the sealer lost its key: our broken set is removed, the rest sent;
 * - sign_hook_arc_top refuses sets that are not ours by shape. */
#include "unit.h"

#include "lib/base64.h"
#include "mail/downgrade.h"
#include "mailauth/arc.h"
#include "mailauth/dkim.h"
#include "queue/sign-hook.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <strings.h>

#define NOW 1700000000

static struct dkim_keyring *kr;
static char *rec_fwd, *rec_list;
static bool sealer_has_key = true;
static bool dkim_on;
static int seal_calls;

/* ---- keys and DNS ---- */

static char *add_key(const char *id)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	BIO *bio = BIO_new(BIO_s_mem());
	unsigned char *der = NULL;
	char *pem, *b64, *rec;
	const char *e = NULL;
	long pl;
	int n;

	PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);
	pl = BIO_get_mem_data(bio, &pem);
	CHECK(dkim_keyring_add_pem(kr, id, pem, (size_t)pl, &e) == 0);
	BIO_free(bio);
	n = i2d_PUBKEY(k, &der);
	b64 = base64_encode_str(der, (size_t)n);
	rec = xasprintf("v=DKIM1; k=rsa; p=%s", b64);
	OPENSSL_free(der);
	free(b64);
	EVP_PKEY_free(k);
	return rec;
}

static void z_txt(void *ctx, const char *name, dkim_dns_cb *cb, void *qctx)
{
	const char *strs[1];
	struct dkim_dns_answer a = { .status = DKIM_DNS_NXDOMAIN, .strings = strs };
	(void)ctx;
	if (strcasecmp(name, "arc._domainkey.fwd.example") == 0)
		strs[0] = rec_fwd;
	else if (strcasecmp(name, "l._domainkey.lists.example") == 0)
		strs[0] = rec_list;
	else
		strs[0] = NULL;
	if (strs[0] != NULL) {
		a.status = DKIM_DNS_OK;
		a.count = 1;
	}
	cb(qctx, &a);
}

struct res {
	bool done;
	enum arc_result result;
	unsigned oldest, instances;
	char reason[256];
};

static void res_cb(void *ctx, const struct arc_outcome *o)
{
	struct res *r = ctx;
	r->done = true;
	r->result = o->result;
	r->oldest = o->oldest_pass;
	r->instances = o->instances;
	snprintf(r->reason, sizeof(r->reason), "%s", o->reason);
}

/* Verify msg whole (chunk 0) or in pieces of chunk bytes. */
static void verify(const char *msg, size_t chunk, struct res *r)
{
	struct arc_verify_options o = { .now = NOW + 10 };
	struct arc_verify *v = arc_verify_create(&o);
	struct dkim_dns dns = { NULL, z_txt, NULL };
	size_t len = strlen(msg);

	if (chunk == 0)
		chunk = len;
	for (size_t i = 0; i < len; i += chunk)
		arc_verify_feed(v, msg + i, len - i < chunk ? len - i : chunk);
	memset(r, 0, sizeof(*r));
	arc_verify_finish(v, &dns, res_cb, r);
	CHECK(r->done);
	arc_verify_destroy(&v);
}

/* pass with n instances and oldest-pass oldest, whole and byte by byte */
static void expect_pass(const char *msg, unsigned n, unsigned oldest)
{
	struct res r;

	for (size_t chunk = 0; chunk < 2; chunk++) {
		verify(msg, chunk, &r);
		CHECK(r.result == ARC_RESULT_PASS);
		CHECK(r.instances == n);
		CHECK(r.oldest == oldest);
		if (r.result != ARC_RESULT_PASS || r.oldest != oldest)
			fprintf(stderr, "  arc: %s oldest-pass %u\n", r.reason, r.oldest);
	}
}

/* ---- the hook ---- */

static int t_sign(void *ctx, const struct sign_hook_request *req, struct buf *out,
		  const char **error_r)
{
	(void)ctx;
	if (!dkim_on)
		return 0;
	struct dkim_signer signer = dkim_keyring_signer(kr);
	struct dkim_sign_request sr = { .domain = "fwd.example", .selector = "arc",
					.alg = DKIM_ALG_RSA_SHA256, .key_id = "fwd" };
	return dkim_sign_message(&sr, &signer, req->data, req->len, out, error_r);
}

static int t_seal(void *ctx, const char *domain, const char *data, size_t len,
		  const char *auth_results, struct buf *out, const char **error_r)
{
	(void)ctx;
	seal_calls++;
	if (!sealer_has_key || strcasecmp(domain, "fwd.example") != 0)
		return 0;
	struct dkim_signer signer = dkim_keyring_signer(kr);
	struct arc_seal_request req = { .domain = "fwd.example", .selector = "arc",
					.alg = DKIM_ALG_RSA_SHA256, .key_id = "fwd",
					.auth_results = auth_results, .timestamp = NOW };
	return arc_seal_message(&req, &signer, data, len, out, error_r);
}

static const char *const fields[] = { "DKIM-Signature", NULL };

/* ---- messages ---- */

static const char AR[] = " mx.fwd.example;\r\n\tspf=pass smtp.mailfrom=alice@author.example;\r\n"
			 "\tdkim=none";

/* What the queue holds for forwarded mail before sealing: our Received,
 * our Authentication-Results, the message (8-bit body). */
static char *arrived(const char *under)
{
	return xasprintf("Received: from mail.author.example ([192.0.2.1])\r\n\tby mx.fwd.example"
			 "; Sun, 29 Nov 2026 01:00:00 +0000\r\n"
			 "Authentication-Results:%s\r\n%s"
			 "From: Alice <alice@author.example>\r\nTo: fwd@fwd.example\r\n"
			 "Subject: cafe\r\nMIME-Version: 1.0\r\n"
			 "Content-Type: text/plain; charset=utf-8\r\n"
			 "Content-Transfer-Encoding: 8bit\r\n\r\n"
			 "Un caf\xc3\xa9 cr\xc3\xa8me, s'il vous pla\xc3\xaet.\r\n", AR, under);
}

/* Seal as the sign hook does at queue entry; the sealed message. */
static char *tern_seal(const char *msg)
{
	struct buf out;
	const char *e = NULL;
	char *res = NULL;

	buf_init(&out, BUF_UNLIMITED);
	if (sign_hook_seal("fwd.example", msg, strlen(msg), AR, &out, &e) == 1)
		res = buf_steal(&out);
	else
		fprintf(stderr, "  seal: %s\n", e ? e : "nothing");
	buf_free(&out);
	return res;
}

/* The downgrade the scheduler does (sender domain: SRS's). */
static char *downgrade(const char *msg)
{
	struct buf out;
	const char *e = NULL;
	char *res = NULL;

	buf_init(&out, BUF_UNLIMITED);
	if (sign_hook_downgrade("srs.example", msg, strlen(msg), "Q1", &out, &e) == 0)
		res = buf_steal(&out);
	else
		fprintf(stderr, "  downgrade: %s\n", e);
	buf_free(&out);
	return res;
}

static char *plain_conversion(const char *msg)
{
	struct buf out;
	const char *e = NULL;

	buf_init(&out, BUF_UNLIMITED);
	CHECK(mail_downgrade_7bit(msg, strlen(msg), &out, &e) == 0);
	return buf_steal(&out);
}

static bool seven_bit(const char *m)
{
	return !mail_has_8bit(m, strlen(m));
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* The field starting with name (up to the next non-continuation line). */
static char *field(const char *msg, const char *name)
{
	const char *p = strstr(msg, name), *e;
	if (p == NULL)
		return NULL;
	for (e = p; (e = strstr(e, "\r\n")) != NULL && (e[2] == ' ' || e[2] == '\t'); e += 2)
		;
	return e != NULL ? xstrndup(p, (size_t)(e - p)) : NULL;
}

/* ---- tests ---- */

static void test_first_set(void)
{
	char *msg = arrived("");
	char *sealed = tern_seal(msg);
	CHECK(sealed != NULL);
	if (sealed == NULL) {
		free(msg);
		return;
	}
	CHECK(strncmp(sealed, "ARC-Seal: i=1;", 14) == 0);
	expect_pass(sealed, 1, 0);

	/* converted without the reseal: the next hop would see arc=fail */
	char *conv = plain_conversion(sealed);
	struct res r;
	verify(conv, 0, &r);
	CHECK(r.result == ARC_RESULT_FAIL);
	CHECK(strstr(r.reason, "body hash") != NULL);

	char *out = downgrade(sealed);
	CHECK(out != NULL);
	if (out != NULL) {
		CHECK(seven_bit(out));
		CHECK(strstr(out, "Content-Transfer-Encoding: quoted-printable") != NULL);
		CHECK(strncmp(out, "ARC-Seal: i=1; a=rsa-sha256; t=", 31) == 0);
		CHECK(count(out, "ARC-Seal:") == 1);
		CHECK(count(out, "ARC-Message-Signature:") == 1);
		CHECK(count(out, "ARC-Authentication-Results:") == 1);
		char *as = field(out, "ARC-Seal:");
		CHECK(as != NULL && strstr(as, "cv=none;") != NULL);
		free(as);
		/* the same results as when it arrived */
		char *a1 = field(sealed, "ARC-Authentication-Results:");
		char *a2 = field(out, "ARC-Authentication-Results:");
		CHECK(a1 != NULL && a2 != NULL && strcmp(a1, a2) == 0);
		free(a1);
		free(a2);
		/* the message under the set is the conversion, unchanged */
		struct sign_hook_arc_set s;
		size_t set = sign_hook_arc_top(sealed, strlen(sealed), &s);
		CHECK(set > 0);
		sign_hook_arc_set_free(&s);
		char *under = plain_conversion(sealed + set);
		size_t set2 = sign_hook_arc_top(out, strlen(out), &s);
		CHECK(set2 > 0 && strcmp(out + set2, under) == 0);
		CHECK(s.instance == 1 && !s.cv_pass);
		CHECK_STR(s.domain, "fwd.example");
		sign_hook_arc_set_free(&s);
		free(under);
		expect_pass(out, 1, 0);
	}
	free(out);
	free(conv);
	free(sealed);
	free(msg);
}

static void test_above_list(void)
{
	struct dkim_signer signer = dkim_keyring_signer(kr);
	struct arc_seal_request lreq = { .domain = "lists.example", .selector = "l",
					 .alg = DKIM_ALG_RSA_SHA256, .key_id = "list",
					 .auth_results = "lists.example; spf=pass", .timestamp = NOW };
	const char *e = NULL;
	struct buf lset;
	buf_init(&lset, BUF_UNLIMITED);
	/* the list's set sits under our Received, as it arrived */
	char *body = arrived("");
	const char *from = strstr(body, "From:");
	char *listed = xstrndup(from, strlen(from));
	CHECK(arc_seal_message(&lreq, &signer, listed, strlen(listed), &lset, &e) == 0);
	char *under = xasprintf("%s%s", buf_cstr(&lset), listed);
	expect_pass(under, 1, 0);
	char *msg = arrived(buf_cstr(&lset));
	expect_pass(msg, 1, 0);
	char *sealed = tern_seal(msg);
	CHECK(sealed != NULL && strncmp(sealed, "ARC-Seal: i=2;", 14) == 0);
	if (sealed != NULL) {
		expect_pass(sealed, 2, 0);
		char *out = downgrade(sealed);
		CHECK(out != NULL && seven_bit(out));
		if (out != NULL) {
			CHECK(strncmp(out, "ARC-Seal: i=2;", 14) == 0);
			char *as = field(out, "ARC-Seal:");
			CHECK(as != NULL && strstr(as, "cv=pass;") != NULL);
			free(as);
			/* the list's set is as it was */
			CHECK(strstr(out, buf_cstr(&lset)) != NULL);
			/* only the newest AMS must verify (RFC 8617 5.2): pass,
			 * with the list's body hash broken by the conversion */
			expect_pass(out, 2, 2);
			/* once more (another peer without 8BITMIME): same */
			char *again = downgrade(out);
			CHECK(again != NULL && strncmp(again, "ARC-Seal: i=2;", 14) == 0);
			if (again != NULL)
				expect_pass(again, 2, 2);
			free(again);
		}
		free(out);
	}
	free(sealed);
	free(msg);
	free(under);
	free(listed);
	free(body);
	buf_free(&lset);
}

static void test_with_dkim(void)
{
	char *msg = arrived("");
	struct buf signed_msg;
	const char *e = NULL;

	/* a DKIM signature under our set: only the hook's sign makes one */
	dkim_on = true;
	buf_init(&signed_msg, BUF_UNLIMITED);
	CHECK(sign_hook_sign("fwd.example", msg, strlen(msg), "Q2", &signed_msg, &e) == 1);
	char *sealed = tern_seal(buf_cstr(&signed_msg));
	CHECK(sealed != NULL);
	if (sealed != NULL) {
		char *ams = field(sealed, "ARC-Message-Signature:");
		CHECK(ams != NULL && strstr(ams, "dkim-signature") != NULL);
		free(ams);
		char *old_dkim = field(sealed, "DKIM-Signature:");
		char *out = downgrade(sealed);
		CHECK(out != NULL && seven_bit(out));
		if (out != NULL) {
			CHECK(strncmp(out, "ARC-Seal: i=1;", 14) == 0);
			CHECK(count(out, "DKIM-Signature:") == 1);
			CHECK(count(out, "ARC-Seal:") == 1);
			char *new_dkim = field(out, "DKIM-Signature:");
			/* signed again (new bh=), and the AMS covers the new one */
			CHECK(old_dkim != NULL && new_dkim != NULL && strcmp(old_dkim, new_dkim) != 0);
			free(new_dkim);
			/* order: ARC set, then DKIM-Signature, then our Received */
			CHECK(strstr(out, "DKIM-Signature:") < strstr(out, "Received:"));
			CHECK(strstr(out, "ARC-Authentication-Results:") < strstr(out, "DKIM-Signature:"));
			expect_pass(out, 1, 0);
		}
		free(out);
		free(old_dkim);
	}
	dkim_on = false;
	free(sealed);
	buf_free(&signed_msg);
	free(msg);
}

static void test_not_ours(void)
{
	/* a set below our Received (a list's): converted only */
	struct dkim_signer signer = dkim_keyring_signer(kr);
	struct arc_seal_request lreq = { .domain = "lists.example", .selector = "l",
					 .alg = DKIM_ALG_RSA_SHA256, .key_id = "list",
					 .auth_results = "lists.example; spf=pass", .timestamp = NOW };
	struct buf lset;
	const char *e = NULL;
	buf_init(&lset, BUF_UNLIMITED);
	char *body = arrived("");
	CHECK(arc_seal_message(&lreq, &signer, body, strlen(body), &lset, &e) == 0);
	char *msg = xasprintf("Received: from x\r\n%s%s", buf_cstr(&lset), body);
	seal_calls = 0;
	char *out = downgrade(msg);
	char *conv = plain_conversion(msg);
	CHECK(out != NULL && strcmp(out, conv) == 0);
	CHECK(seal_calls == 0);
	free(out);
	free(conv);
	free(msg);
	buf_free(&lset);
	free(body);
}

static void test_key_gone(void)
{
	char *msg = arrived("");
	char *sealed = tern_seal(msg);
	CHECK(sealed != NULL);
	if (sealed != NULL) {
		sealer_has_key = false;
		char *out = downgrade(sealed);
		sealer_has_key = true;
		char *conv = plain_conversion(msg);
		/* our set removed, nothing else changed */
		CHECK(out != NULL && strcmp(out, conv) == 0);
		CHECK(out != NULL && strstr(out, "ARC-") == NULL);
		free(conv);
		free(out);
	}
	free(sealed);
	free(msg);
}

static void test_top_shape(void)
{
	struct sign_hook_arc_set s;
	static const char *const bad[] = {
		/* not at the very top */
		"Received: x\r\nARC-Seal: i=1; cv=none; d=a.example\r\n"
		"ARC-Message-Signature: i=1; d=a.example\r\nARC-Authentication-Results: i=1; h\r\n\r\n",
		/* another order */
		"ARC-Message-Signature: i=1; d=a.example\r\nARC-Seal: i=1; cv=none; d=a.example\r\n"
		"ARC-Authentication-Results: i=1; h\r\n\r\n",
		/* instances differ */
		"ARC-Seal: i=2; cv=pass; d=a.example\r\nARC-Message-Signature: i=1; d=a.example\r\n"
		"ARC-Authentication-Results: i=1; h\r\n\r\n",
		/* a newer instance further down */
		"ARC-Seal: i=1; cv=none; d=a.example\r\nARC-Message-Signature: i=1; d=a.example\r\n"
		"ARC-Authentication-Results: i=1; h\r\nARC-Seal: i=2; cv=pass\r\n\r\n",
		/* cv= not what our sealer writes */
		"ARC-Seal: i=1; cv=pass; d=a.example\r\nARC-Message-Signature: i=1; d=a.example\r\n"
		"ARC-Authentication-Results: i=1; h\r\n\r\n",
		"ARC-Seal: i=2; cv=fail; d=a.example\r\nARC-Message-Signature: i=2; d=a.example\r\n"
		"ARC-Authentication-Results: i=2; h\r\n\r\n",
		/* seal and message signature by different domains */
		"ARC-Seal: i=1; cv=none; d=a.example\r\nARC-Message-Signature: i=1; d=b.example\r\n"
		"ARC-Authentication-Results: i=1; h\r\n\r\n",
		/* bad or missing tags */
		"ARC-Seal: i=01; cv=none; d=a.example\r\nARC-Message-Signature: i=01; d=a.example\r\n"
		"ARC-Authentication-Results: i=01; h\r\n\r\n",
		"ARC-Seal: i=1; cv=none; d=a .example\r\nARC-Message-Signature: i=1; d=a.example\r\n"
		"ARC-Authentication-Results: i=1; h\r\n\r\n",
		"ARC-Seal: i=1; cv=none\r\nARC-Message-Signature: i=1; d=a.example\r\n"
		"ARC-Authentication-Results: i=1; h\r\n\r\n",
		"ARC-Seal: i=1; cv=none; d=a.example\r\nARC-Message-Signature: i=1; d=a.example\r\n"
		"ARC-Authentication-Results: i=1;\r\n\r\n",
		"ARC-Seal: i=51; cv=pass; d=a.example\r\nARC-Message-Signature: i=51; d=a.example\r\n"
		"ARC-Authentication-Results: i=51; h\r\n\r\n",
		"ARC-Seal: i=1; cv=none; d=a.example\r\n\r\n",
		/* the AAR does not start with i= */
		"ARC-Seal: i=1; cv=none; d=a.example\r\nARC-Message-Signature: i=1; d=a.example\r\n"
		"ARC-Authentication-Results: h; i=1\r\n\r\n",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = sign_hook_arc_top(bad[i], strlen(bad[i]), &s);
		if (n != 0)
			fprintf(stderr, "  accepted bad[%zu]\n", i);
		CHECK(n == 0 && s.domain == NULL && s.aar == NULL);
	}
	/* folded, FWS around tags: ours */
	static const char good[] =
		"ARC-Seal: i=3; a=rsa-sha256; t=1;\r\n\tcv = pass ;\r\n\td=A.Example; s=x; b=\r\n"
		"ARC-Message-Signature: i=3;\r\n d=a.example; b=\r\n"
		"ARC-Authentication-Results: i=3; mx.a.example;\r\n\tspf=pass\r\n"
		"ARC-Seal: i=2; cv=pass; d=l.example\r\nFrom: x@y.example\r\n\r\nbody\r\n";
	size_t n = sign_hook_arc_top(good, strlen(good), &s);
	CHECK(n == (size_t)(strstr(good, "ARC-Seal: i=2") - good));
	CHECK(s.instance == 3 && s.cv_pass);
	CHECK_STR(s.domain, "A.Example");
	CHECK_STR(s.aar, "mx.a.example;\r\n\tspf=pass");
	sign_hook_arc_set_free(&s);
	CHECK(s.domain == NULL);
}

int main(void)
{
	const char *e = NULL;
	struct sign_hook h = { .sign = t_sign, .seal = t_seal, .ctx = NULL, .fields = fields };

	kr = dkim_keyring_create();
	rec_fwd = add_key("fwd");
	rec_list = add_key("list");
	if (sign_hook_set(&h, &e) < 0) {
		fprintf(stderr, "sign_hook_set: %s\n", e);
		return 1;
	}
	RUN(test_first_set);
	RUN(test_above_list);
	RUN(test_with_dkim);
	RUN(test_not_ours);
	RUN(test_key_gone);
	RUN(test_top_shape);
	sign_hook_set(NULL, &e);
	dkim_keyring_destroy(&kr);
	free(rec_fwd);
	free(rec_list);
	return unit_summary("arc-reseal");
}
