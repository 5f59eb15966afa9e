/* DKIM signing (RFC 6376 sections 3.5, 3.7 and 5; RFC 8463 for Ed25519):
 * relaxed/relaxed canonicalisation, the fixed header set of
 * dkim_sign_headers with From oversigned, and the private-key operation
 * behind struct dkim_signer (DESIGN.md, security architecture: only
 * sign(key_id, digest) crosses to the key holder).
 *
 * Invariants:
 * - The message is read once, as it arrives; the body is hashed on the fly
 *   (dkim-canon.c), only the header section is kept (capped).
 * - A message without From is never signed (RFC 6376 section 5.4).
 * - The DKIM-Signature we produce is hashed exactly as it is written
 *   (folding included) with b= empty and last, so any verifier that
 *   deletes the b= value sees the same bytes.
 * - The keyring holds EVP_PKEYs in this process; it refuses RSA keys under
 *   DKIM_RSA_MIN_BITS (RFC 8301 section 3.2). */
#include "mailauth/dkim.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "mailauth/dkim-private.h"

const char *const dkim_sign_headers[] = {
	"from", "to", "cc", "subject", "date", "message-id", "in-reply-to",
	"references", "mime-version", "content-type", "content-transfer-encoding",
	NULL,
};

#define FOLD_WIDTH 76

struct dkim_sign {
	char *domain, *selector, *key_id;
	enum dkim_alg alg;
	time_t timestamp;
	uint32_t expire_after;
	struct dkim_msg msg;
	struct dkim_body_canon *bc;
	EVP_MD_CTX *md;
};

static void sign_emit(void *ctx, const char *data, size_t len)
{
	struct dkim_sign *s = ctx;
	EVP_DigestUpdate(s->md, data, len);
}

static void sign_body(void *ctx, const char *data, size_t len)
{
	struct dkim_sign *s = ctx;
	dkim_body_canon_feed(s->bc, data, len);
}

struct dkim_sign *dkim_sign_create(const struct dkim_sign_request *req,
				   const char **error_r)
{
	if (req->domain == NULL || !dkim_dns_name_ok(req->domain, strlen(req->domain))) {
		*error_r = "bad signing domain";
		return NULL;
	}
	if (req->selector == NULL || !dkim_dns_name_ok(req->selector, strlen(req->selector))) {
		*error_r = "bad selector";
		return NULL;
	}
	if (req->alg != DKIM_ALG_RSA_SHA256 && req->alg != DKIM_ALG_ED25519_SHA256) {
		*error_r = "unsupported signing algorithm";
		return NULL;
	}
	struct dkim_sign *s = xcalloc(1, sizeof(*s));
	s->domain = xstrdup(req->domain);
	s->selector = xstrdup(req->selector);
	s->key_id = xstrdup(req->key_id ? req->key_id : "");
	s->alg = req->alg;
	s->timestamp = req->timestamp ? req->timestamp : clock_now();
	s->expire_after = req->expire_after;
	s->md = EVP_MD_CTX_new();
	if (s->md == NULL || EVP_DigestInit_ex(s->md, dkim_sha256(), NULL) != 1)
		panic("dkim: EVP_DigestInit_ex failed");
	s->bc = dkim_body_canon_create(DKIM_CANON_RELAXED, UINT64_MAX, sign_emit, s);
	dkim_msg_init(&s->msg, NULL, sign_body, s);
	return s;
}

void dkim_sign_feed(struct dkim_sign *s, const char *data, size_t len)
{
	dkim_msg_feed(&s->msg, data, len);
}

void dkim_sign_destroy(struct dkim_sign **sp)
{
	struct dkim_sign *s = *sp;
	if (s == NULL)
		return;
	free(s->domain);
	free(s->selector);
	free(s->key_id);
	dkim_msg_free(&s->msg);
	dkim_body_canon_destroy(&s->bc);
	EVP_MD_CTX_free(s->md);
	free(s);
	*sp = NULL;
}

static size_t count_fields(const struct dkim_msg *m, const char *name)
{
	size_t n = 0, nl = strlen(name);
	for (size_t i = 0; i < m->n_fields; i++) {
		const struct dkim_field *f = &m->fields[i];
		size_t fl = f->name_len;
		while (fl > 0 && (m->header.data[f->name_off + fl - 1] == ' ' ||
				  m->header.data[f->name_off + fl - 1] == '\t'))
			fl--;
		if (fl == nl && strncasecmp(m->header.data + f->name_off, name, nl) == 0)
			n++;
	}
	return n;
}

/* Append text to the header value, folding before it when the line would
 * pass FOLD_WIDTH.  *col is the current column. */
static void fold_add(struct buf *b, size_t *col, const char *text, size_t len, bool may_fold)
{
	if (may_fold && *col + len > FOLD_WIDTH) {
		buf_append_str(b, "\r\n\t");
		*col = 1;
	} else if (may_fold) {
		buf_append_str(b, " ");
		(*col)++;
	}
	buf_append(b, text, len);
	*col += len;
}

int dkim_sign_finish(struct dkim_sign *s, const struct dkim_signer *signer,
		     struct buf *header_out, const char **error_r)
{
	struct buf value, data, sig, tmp;
	uint8_t bh[32], digest[32];
	unsigned len = 0;
	uint64_t total;
	size_t col;
	char **names = NULL;
	size_t n_names = 0;
	int ret = -1;

	dkim_msg_end(&s->msg);
	if (s->msg.overflow || s->msg.too_many_fields) {
		*error_r = "header section too large to sign";
		return -1;
	}
	if (count_fields(&s->msg, "from") == 0) {
		*error_r = "message has no From header field";
		return -1;
	}
	dkim_body_canon_finish(s->bc, &total);
	if (EVP_DigestFinal_ex(s->md, bh, &len) != 1 || len != 32)
		panic("dkim: EVP_DigestFinal_ex failed");

	for (size_t k = 0; dkim_sign_headers[k]; k++) {
		size_t c = count_fields(&s->msg, dkim_sign_headers[k]);
		for (size_t j = 0; j < c; j++) {
			names = xrealloc(names, (n_names + 1) * sizeof(*names));
			names[n_names++] = (char *)dkim_sign_headers[k];
		}
	}
	/* oversigned: a From added later breaks the signature */
	names = xrealloc(names, (n_names + 1) * sizeof(*names));
	names[n_names++] = (char *)"from";

	buf_init(&value, BUF_UNLIMITED);
	buf_init(&tmp, BUF_UNLIMITED);
	buf_init(&data, BUF_UNLIMITED);
	buf_init(&sig, 4096);

	/* "DKIM-Signature:" is 15 columns */
	col = 15;
	buf_printf(&tmp, "v=1; a=%s; c=relaxed/relaxed;", dkim_alg_name(s->alg));
	fold_add(&value, &col, tmp.data, tmp.len, true);
	buf_reset(&tmp);
	buf_printf(&tmp, "d=%s;", s->domain);
	fold_add(&value, &col, tmp.data, tmp.len, true);
	buf_reset(&tmp);
	buf_printf(&tmp, "s=%s;", s->selector);
	fold_add(&value, &col, tmp.data, tmp.len, true);
	buf_reset(&tmp);
	buf_printf(&tmp, "t=%lld;", (long long)s->timestamp);
	fold_add(&value, &col, tmp.data, tmp.len, true);
	if (s->expire_after) {
		buf_reset(&tmp);
		buf_printf(&tmp, "x=%lld;", (long long)s->timestamp + s->expire_after);
		fold_add(&value, &col, tmp.data, tmp.len, true);
	}
	for (size_t i = 0; i < n_names; i++) {
		buf_reset(&tmp);
		buf_printf(&tmp, "%s%s%s", i == 0 ? "h=" : "", names[i],
			   i + 1 == n_names ? ";" : ":");
		/* fold only before a name, never inside one */
		if (i == 0)
			fold_add(&value, &col, tmp.data, tmp.len, true);
		else if (col + tmp.len > FOLD_WIDTH) {
			buf_append_str(&value, "\r\n\t");
			col = 1;
			buf_append(&value, tmp.data, tmp.len);
			col += tmp.len;
		} else {
			buf_append(&value, tmp.data, tmp.len);
			col += tmp.len;
		}
	}
	buf_reset(&tmp);
	buf_append_str(&tmp, "bh=");
	base64_encode(&tmp, bh, sizeof(bh));
	buf_append_str(&tmp, ";");
	fold_add(&value, &col, tmp.data, tmp.len, true);
	fold_add(&value, &col, "b=", 2, true);

	/* section 3.7: the selected headers, then this field with b= empty */
	if (dkim_msg_canon_headers(&s->msg, DKIM_CANON_RELAXED, names, n_names, &data) < 0 ||
	    dkim_canon_header(DKIM_CANON_RELAXED, "DKIM-Signature", 14, value.data,
			      value.len, false, &data) < 0) {
		*error_r = "header data too large";
		goto out;
	}
	if (EVP_Digest(data.data, data.len, digest, &len, dkim_sha256(), NULL) != 1 || len != 32)
		panic("dkim: EVP_Digest failed");
	if (signer->sign(signer->ctx, s->key_id, s->alg, digest, sizeof(digest), &sig,
			 error_r) < 0)
		goto out;
	buf_reset(&tmp);
	base64_encode(&tmp, sig.data, sig.len);
	for (size_t i = 0; i < tmp.len;) {
		size_t room = col < FOLD_WIDTH ? FOLD_WIDTH - col : 0;
		if (room == 0) {
			buf_append_str(&value, "\r\n\t");
			col = 1;
			continue;
		}
		size_t k = tmp.len - i < room ? tmp.len - i : room;
		buf_append(&value, tmp.data + i, k);
		col += k;
		i += k;
	}
	if (buf_append_str(header_out, "DKIM-Signature:") < 0 ||
	    buf_append(header_out, value.data, value.len) < 0 ||
	    buf_append_str(header_out, "\r\n") < 0) {
		*error_r = "output buffer full";
		goto out;
	}
	log_debug("dkim", "event=sign d=%s s=%s a=%s", s->domain, s->selector,
		  dkim_alg_name(s->alg));
	ret = 0;
out:
	free(names);
	buf_free(&value);
	buf_free(&tmp);
	buf_free(&data);
	buf_free(&sig);
	return ret;
}

int dkim_sign_message(const struct dkim_sign_request *req, const struct dkim_signer *signer,
		      const char *msg, size_t len, struct buf *header_out,
		      const char **error_r)
{
	struct dkim_sign *s = dkim_sign_create(req, error_r);
	if (s == NULL)
		return -1;
	dkim_sign_feed(s, msg, len);
	int r = dkim_sign_finish(s, signer, header_out, error_r);
	dkim_sign_destroy(&s);
	return r;
}

/* ---- keyring ---- */

struct keyring_entry {
	char *key_id;
	EVP_PKEY *pkey;
};

struct dkim_keyring {
	struct keyring_entry *keys;
	size_t n;
};

struct dkim_keyring *dkim_keyring_create(void)
{
	return xcalloc(1, sizeof(struct dkim_keyring));
}

void dkim_keyring_destroy(struct dkim_keyring **krp)
{
	struct dkim_keyring *kr = *krp;
	if (kr == NULL)
		return;
	for (size_t i = 0; i < kr->n; i++) {
		free(kr->keys[i].key_id);
		EVP_PKEY_free(kr->keys[i].pkey);
	}
	free(kr->keys);
	free(kr);
	*krp = NULL;
}

static int keyring_put(struct dkim_keyring *kr, const char *key_id, EVP_PKEY *pkey,
		       const char **error_r)
{
	int id = EVP_PKEY_get_base_id(pkey);
	if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(pkey) < DKIM_RSA_MIN_BITS) {
		*error_r = "RSA key shorter than 1024 bits";
		EVP_PKEY_free(pkey);
		return -1;
	}
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519) {
		*error_r = "key is neither RSA nor Ed25519";
		EVP_PKEY_free(pkey);
		return -1;
	}
	for (size_t i = 0; i < kr->n; i++) {
		if (strcmp(kr->keys[i].key_id, key_id) == 0) {
			EVP_PKEY_free(kr->keys[i].pkey);
			kr->keys[i].pkey = pkey;
			return 0;
		}
	}
	kr->keys = xrealloc(kr->keys, (kr->n + 1) * sizeof(*kr->keys));
	kr->keys[kr->n].key_id = xstrdup(key_id);
	kr->keys[kr->n].pkey = pkey;
	kr->n++;
	return 0;
}

int dkim_keyring_add_pem(struct dkim_keyring *kr, const char *key_id,
			 const char *pem, size_t len, const char **error_r)
{
	if (len > 1024 * 1024) {
		*error_r = "PEM too large";
		return -1;
	}
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		panic("dkim: BIO_new_mem_buf failed");
	EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		*error_r = "cannot read PEM private key";
		return -1;
	}
	return keyring_put(kr, key_id, pkey, error_r);
}

int dkim_keyring_add_ed25519_seed(struct dkim_keyring *kr, const char *key_id,
				  const uint8_t seed[32], const char **error_r)
{
	EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	if (pkey == NULL) {
		*error_r = "bad Ed25519 seed";
		return -1;
	}
	return keyring_put(kr, key_id, pkey, error_r);
}

static int keyring_sign(void *ctx, const char *key_id, enum dkim_alg alg,
			const uint8_t *data, size_t len, struct buf *sig_out,
			const char **error_r)
{
	struct dkim_keyring *kr = ctx;
	EVP_PKEY *pkey = NULL;
	for (size_t i = 0; i < kr->n && pkey == NULL; i++) {
		if (strcmp(kr->keys[i].key_id, key_id) == 0)
			pkey = kr->keys[i].pkey;
	}
	if (pkey == NULL) {
		*error_r = "no such signing key";
		return -1;
	}
	int id = EVP_PKEY_get_base_id(pkey);
	if ((alg == DKIM_ALG_RSA_SHA256) != (id == EVP_PKEY_RSA) ||
	    (alg == DKIM_ALG_ED25519_SHA256) != (id == EVP_PKEY_ED25519)) {
		*error_r = "key does not match the algorithm";
		return -1;
	}
	uint8_t out[1024];  /* 8192-bit RSA at most: 1024 bytes */
	size_t outlen = sizeof(out);
	bool ok = false;
	if (id == EVP_PKEY_RSA) {
		EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new(pkey, NULL);
		ok = pctx && EVP_PKEY_get_size(pkey) <= (int)sizeof(out) &&
		     EVP_PKEY_sign_init(pctx) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(pctx, dkim_sha256()) == 1 &&
		     EVP_PKEY_sign(pctx, out, &outlen, data, len) == 1;
		EVP_PKEY_CTX_free(pctx);
	} else {
		/* RFC 8463 section 3: PureEdDSA over the SHA-256 hash */
		EVP_MD_CTX *mctx = EVP_MD_CTX_new();
		ok = mctx && EVP_DigestSignInit(mctx, NULL, NULL, NULL, pkey) == 1 &&
		     EVP_DigestSign(mctx, out, &outlen, data, len) == 1;
		EVP_MD_CTX_free(mctx);
	}
	if (!ok) {
		*error_r = "signing failed";
		return -1;
	}
	if (buf_append(sig_out, out, outlen) < 0) {
		*error_r = "signature buffer full";
		return -1;
	}
	return 0;
}

struct dkim_signer dkim_keyring_signer(struct dkim_keyring *kr)
{
	return (struct dkim_signer){ .ctx = kr, .sign = keyring_sign };
}
