/* ARC sealing (RFC 8617 section 5.1): add one ARC set to a message that
 * Tern passes on (forwarding aliases), so the next hop sees the results
 * Tern recorded.
 *
 * Invariants:
 * - The new instance is one above the highest ARC instance in the message;
 *   a message already holding ARC_MAX_SETS sets is refused (section
 *   5.1.1.1: the 51st set could never verify).
 * - The ARC-Authentication-Results value is "i=N; " followed by the
 *   caller's Authentication-Results value (authserv-id and resinfo), with
 *   CR, LF, NUL and other control characters dropped except the folds the
 *   caller wrote (CRLF followed by a blank).
 * - The ARC-Message-Signature is made like our DKIM signatures (relaxed/
 *   relaxed, the dkim_sign_headers set as often as each occurs, plus every
 *   DKIM-Signature), over the message as passed in; ARC fields and
 *   Authentication-Results are never in h= (section 4.1.2).
 * - The ARC-Seal hashes, in instance order, every earlier set's AAR, AMS
 *   and AS and then the new AAR, AMS and AS (b= empty, no CRLF), relaxed
 *   (section 5.1.1); cv= is none for instance 1 and pass otherwise: the
 *   caller seals only a chain that verified (a failed chain is not
 *   sealed, see docs/arc.md).
 * - Private-key operations go through struct dkim_signer only. */
#include "mailauth/arc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "mailauth/arc-private.h"
#include "mailauth/dkim-private.h"

#define ARC_FOLD 72

struct seal_ctx {
	struct dkim_msg msg;
	EVP_MD_CTX *body_md;
	struct dkim_body_canon *bc;
};

static void body_emit(void *ctx, const char *data, size_t len)
{
	struct seal_ctx *c = ctx;
	EVP_DigestUpdate(c->body_md, data, len);
}

static void on_body(void *ctx, const char *data, size_t len)
{
	struct seal_ctx *c = ctx;
	dkim_body_canon_feed(c->bc, data, len);
}

/* Append base64 of sig to out, folded every ARC_FOLD characters. */
static int append_b64_folded(struct buf *out, const uint8_t *p, size_t n)
{
	char *b64 = base64_encode_str(p, n);
	size_t len = strlen(b64);
	int e = 0;
	for (size_t i = 0; i < len; i += ARC_FOLD) {
		if (i > 0)
			e |= buf_append_str(out, "\r\n\t");
		e |= buf_append(out, b64 + i, len - i < ARC_FOLD ? len - i : ARC_FOLD);
	}
	free(b64);
	return e ? -1 : 0;
}

static int sign_digest(const struct arc_seal_request *req, const struct dkim_signer *signer,
		       struct buf *data, struct buf *sig, const char **error_r)
{
	uint8_t digest[32];
	unsigned dlen = 0;
	if (EVP_Digest(data->data ? data->data : "", data->len, digest, &dlen, dkim_sha256(),
		       NULL) != 1 || dlen != 32) {
		*error_r = "hash failed";
		return -1;
	}
	buf_reset(sig);
	return signer->sign(signer->ctx, req->key_id, req->alg, digest, 32, sig, error_r);
}

/* Canonicalise "name: value" (value without its final CRLF). */
static int canon_field(const char *name, const char *value, bool crlf, struct buf *out)
{
	return dkim_canon_header(DKIM_CANON_RELAXED, name, strlen(name), value, strlen(value), crlf,
				 out);
}

int arc_seal_message(const struct arc_seal_request *req, const struct dkim_signer *signer,
		     const char *msg, size_t len, struct buf *header_out, const char **error_r)
{
	struct seal_ctx c = { 0 };
	struct buf aar, ams, as, data, sig;
	unsigned n = 0;
	size_t set_field[ARC_MAX_SETS + 1][3];
	int ret = -1;
	char **names = NULL;
	size_t n_names = 0;

	if (req->alg != DKIM_ALG_RSA_SHA256 && req->alg != DKIM_ALG_ED25519_SHA256) {
		*error_r = "unsupported algorithm";
		return -1;
	}
	if (!dkim_dns_name_ok(req->domain, strlen(req->domain)) ||
	    !dkim_dns_name_ok(req->selector, strlen(req->selector))) {
		*error_r = "bad domain or selector";
		return -1;
	}
	c.body_md = EVP_MD_CTX_new();
	if (c.body_md == NULL || EVP_DigestInit_ex(c.body_md, dkim_sha256(), NULL) != 1)
		panic("arc: EVP_DigestInit_ex failed");
	c.bc = dkim_body_canon_create(DKIM_CANON_RELAXED, UINT64_MAX, body_emit, &c);
	dkim_msg_init(&c.msg, NULL, on_body, &c);
	dkim_msg_feed(&c.msg, msg, len);
	dkim_msg_end(&c.msg);
	buf_init(&aar, 64 * 1024);
	buf_init(&ams, DKIM_MAX_SIG_VALUE);
	buf_init(&as, DKIM_MAX_SIG_VALUE);
	buf_init(&data, DKIM_MAX_HEADER_SECTION + 3 * 64 * 1024);
	buf_init(&sig, 8192);

	if (c.msg.overflow || c.msg.too_many_fields) {
		*error_r = "header section too large";
		goto out;
	}
	/* the existing sets */
	for (unsigned i = 0; i <= ARC_MAX_SETS; i++)
		set_field[i][0] = set_field[i][1] = set_field[i][2] = (size_t)-1;
	for (size_t i = 0; i < c.msg.n_fields; i++) {
		const struct dkim_field *f = &c.msg.fields[i];
		enum arc_kind k = arc_field_kind(&c.msg, f);
		if (k == ARC_KIND_NONE)
			continue;
		unsigned inst = arc_field_instance(k, c.msg.header.data + f->value_off, f->value_len);
		if (inst == 0 || set_field[inst][k] != (size_t)-1) {
			*error_r = "the ARC chain is broken";
			goto out;
		}
		set_field[inst][k] = i;
		if (inst > n)
			n = inst;
	}
	for (unsigned i = 1; i <= n; i++) {
		if (set_field[i][0] == (size_t)-1 || set_field[i][1] == (size_t)-1 ||
		    set_field[i][2] == (size_t)-1) {
			*error_r = "the ARC chain is broken";
			goto out;
		}
	}
	if (n >= ARC_MAX_SETS) {
		*error_r = "the message already has 50 ARC sets";
		goto out;
	}
	unsigned inst = n + 1;
	time_t t = req->timestamp ? req->timestamp : clock_now();
	const char *alg = req->alg == DKIM_ALG_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256";

	/* ARC-Authentication-Results: i=N; our field's value, folds kept */
	buf_printf(&aar, " i=%u; ", inst);
	const char *r = req->auth_results;
	while (*r == ' ' || *r == '\t')
		r++;
	for (; *r; r++) {
		unsigned char ch = (unsigned char)*r;
		if (ch == '\r' && r[1] == '\n' && (r[2] == ' ' || r[2] == '\t')) {
			buf_append_str(&aar, "\r\n");
			r++;
			continue;
		}
		if (ch < 0x20 && ch != '\t')
			continue;
		if (ch == 0x7f)
			continue;
		buf_append(&aar, r, 1);
	}

	/* the AMS: body hash, then the header fields it signs */
	uint64_t total;
	uint8_t bh[EVP_MAX_MD_SIZE];
	unsigned bhlen = 0;
	dkim_body_canon_finish(c.bc, &total);
	if (EVP_DigestFinal_ex(c.body_md, bh, &bhlen) != 1 || bhlen != 32)
		panic("arc: EVP_DigestFinal_ex failed");
	for (size_t k = 0; dkim_sign_headers[k] != NULL; k++) {
		for (size_t i = 0; i < c.msg.n_fields; i++) {
			const struct dkim_field *f = &c.msg.fields[i];
			size_t nl = f->name_len;
			const char *nm = c.msg.header.data + f->name_off;
			while (nl > 0 && (nm[nl - 1] == ' ' || nm[nl - 1] == '\t'))
				nl--;
			if (nl == strlen(dkim_sign_headers[k]) &&
			    strncasecmp(nm, dkim_sign_headers[k], nl) == 0 &&
			    n_names < DKIM_MAX_SIGNED_HEADERS) {
				names = xrealloc(names, (n_names + 1) * sizeof(*names));
				names[n_names++] = xstrdup(dkim_sign_headers[k]);
			}
		}
	}
	for (size_t i = 0; i < c.msg.n_fields && n_names < DKIM_MAX_SIGNED_HEADERS; i++) {
		const struct dkim_field *f = &c.msg.fields[i];
		if (f->name_len >= 14 &&
		    strncasecmp(c.msg.header.data + f->name_off, "dkim-signature", 14) == 0 &&
		    (f->name_len == 14 || c.msg.header.data[f->name_off + 14] == ' ' ||
		     c.msg.header.data[f->name_off + 14] == '\t')) {
			names = xrealloc(names, (n_names + 1) * sizeof(*names));
			names[n_names++] = xstrdup("dkim-signature");
		}
	}
	bool from = false;
	for (size_t i = 0; i < n_names; i++)
		from |= strcmp(names[i], "from") == 0;
	if (!from) {
		*error_r = "the message has no From field";
		goto out;
	}
	buf_printf(&ams, " i=%u; a=%s; c=relaxed/relaxed; d=%s; s=%s;\r\n\tt=%lld; h=", inst, alg,
		   req->domain, req->selector, (long long)t);
	for (size_t i = 0; i < n_names; i++) {
		if (i > 0)
			buf_append_str(&ams, (i % 6) == 0 ? ":\r\n\t" : ":");
		buf_append_str(&ams, names[i]);
	}
	buf_append_str(&ams, ";\r\n\tbh=");
	char *bh64 = base64_encode_str(bh, 32);
	buf_printf(&ams, "%s; b=", bh64);
	free(bh64);
	if (dkim_msg_canon_headers(&c.msg, DKIM_CANON_RELAXED, names, n_names, &data) < 0 ||
	    canon_field("ARC-Message-Signature", buf_cstr(&ams), false, &data) < 0) {
		*error_r = "header section too large";
		goto out;
	}
	if (sign_digest(req, signer, &data, &sig, error_r) < 0)
		goto out;
	if (append_b64_folded(&ams, (const uint8_t *)sig.data, sig.len) < 0) {
		*error_r = "signature too large";
		goto out;
	}

	/* the AS over every set, the new one last */
	buf_printf(&as, " i=%u; a=%s; t=%lld; cv=%s;\r\n\td=%s; s=%s; b=", inst, alg, (long long)t,
		   n == 0 ? "none" : "pass", req->domain, req->selector);
	buf_reset(&data);
	int e = 0;
	for (unsigned i = 1; i <= n && e == 0; i++) {
		for (int k = 0; k < 3 && e == 0; k++) {
			const struct dkim_field *f = &c.msg.fields[set_field[i][k]];
			e = dkim_canon_header(DKIM_CANON_RELAXED, c.msg.header.data + f->name_off,
					      f->name_len, c.msg.header.data + f->value_off,
					      f->value_len, true, &data);
		}
	}
	if (e < 0 || canon_field("ARC-Authentication-Results", buf_cstr(&aar), true, &data) < 0 ||
	    canon_field("ARC-Message-Signature", buf_cstr(&ams), true, &data) < 0 ||
	    canon_field("ARC-Seal", buf_cstr(&as), false, &data) < 0) {
		*error_r = "header section too large";
		goto out;
	}
	if (sign_digest(req, signer, &data, &sig, error_r) < 0)
		goto out;
	if (append_b64_folded(&as, (const uint8_t *)sig.data, sig.len) < 0) {
		*error_r = "signature too large";
		goto out;
	}
	if (buf_printf(header_out, "ARC-Seal:%s\r\nARC-Message-Signature:%s\r\n"
		       "ARC-Authentication-Results:%s\r\n", buf_cstr(&as), buf_cstr(&ams),
		       buf_cstr(&aar)) < 0) {
		*error_r = "output too large";
		goto out;
	}
	ret = 0;
out:
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	buf_free(&aar);
	buf_free(&ams);
	buf_free(&as);
	buf_free(&data);
	buf_free(&sig);
	dkim_msg_free(&c.msg);
	dkim_body_canon_destroy(&c.bc);
	EVP_MD_CTX_free(c.body_md);
	return ret;
}
