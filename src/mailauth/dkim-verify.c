/* DKIM verification (RFC 6376 section 6) of every DKIM-Signature of a
 * message, with rsa-sha256 and ed25519-sha256 (RFC 8463) through OpenSSL
 * EVP, and the rules of RFC 8301 (rsa-sha1 and RSA keys under 1024 bits
 * fail).
 *
 * Invariants:
 * - The message is read once, as it arrives: the header section is kept
 *   (capped, dkim-canon.c), and at its end every DKIM-Signature (at most
 *   DKIM_MAX_SIGNATURES, topmost first) gets its own body canonicaliser
 *   and SHA-256 context, so the body is never stored.
 * - A signature whose result is known without its key (unparsable, unknown
 *   or forbidden algorithm, expired, body hash mismatch) asks no DNS.
 * - Key lookups of all signatures run in parallel; `pending' counts them.
 *   Answers given inside the txt() call only record their result (the
 *   launch loop is marked `starting'), so the done callback runs exactly
 *   once, as the very last thing the verifier does: cb may destroy it.
 * - A destroyed verifier with questions outstanding and no cancel() in the
 *   DNS interface lives on, silent, until the last answer arrives.
 * - Decoded public keys come from dkim-keycache.c, keyed by the exact text
 *   of the record DNS gave for this message, so the cache never changes a
 *   result, only skips the decode.
 * Result words: RFC 8601 section 2.7.1; see docs/dkim.md for which
 * condition gives which word. */
#include "mailauth/dkim.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "mailauth/dkim-private.h"

struct vsig {
	struct dkim_verify *v;
	struct dkim_signature *sig;  /* NULL when unparsable */
	size_t field;                /* index in msg.fields */
	EVP_MD_CTX *body_md;
	struct dkim_body_canon *bc;
	bool decided;                /* res.result is final */
	bool query_pending;
	char *bad_domain, *bad_selector;  /* d= and s= of an unparsable signature */
	struct dkim_sig_result res;
};

struct dkim_verify {
	struct dkim_verify_options opts;
	time_t now;
	struct dkim_msg msg;
	struct vsig sigs[DKIM_MAX_SIGNATURES];
	size_t nsigs, ignored;
	bool too_large;
	struct dkim_sig_result results[DKIM_MAX_SIGNATURES];
	const struct dkim_dns *dns;
	dkim_done_cb *cb;
	void *cb_ctx;
	size_t pending;
	bool starting, finished, destroyed;
};

static void decide(struct vsig *vs, enum dkim_result r, const char *reason)
{
	vs->res.result = r;
	vs->res.reason = reason;
	vs->decided = true;
}

static void body_emit(void *ctx, const char *data, size_t len)
{
	struct vsig *vs = ctx;
	EVP_DigestUpdate(vs->body_md, data, len);
}

/* A signature that does not parse may still name a well-formed d= and s=,
 * which Authentication-Results and DMARC reports want to show. */
static void salvage_names(struct vsig *vs, const char *value, size_t len)
{
	struct dkim_tag tags[DKIM_MAX_TAGS];
	size_t n;
	const char *error;
	if (len > DKIM_MAX_SIG_VALUE ||
	    dkim_tag_list_parse(value, len, tags, DKIM_MAX_TAGS, &n, &error) < 0)
		return;
	const struct dkim_tag *d = dkim_tag_find(tags, n, "d");
	const struct dkim_tag *sel = dkim_tag_find(tags, n, "s");
	if (d && dkim_dns_name_ok(d->value.p, d->value.len)) {
		vs->bad_domain = slice_dup(d->value);
		vs->res.domain = vs->bad_domain;
	}
	if (sel && dkim_dns_name_ok(sel->value.p, sel->value.len)) {
		vs->bad_selector = slice_dup(sel->value);
		vs->res.selector = vs->bad_selector;
	}
}

static void setup_sig(struct dkim_verify *v, size_t field)
{
	const struct dkim_field *f = &v->msg.fields[field];
	struct vsig *vs = &v->sigs[v->nsigs++];
	const char *error;

	vs->v = v;
	vs->field = field;
	vs->res.domain = vs->res.selector = vs->res.auid = vs->res.alg = "";
	vs->res.reason = "";
	if (dkim_signature_parse(v->msg.header.data + f->value_off, f->value_len,
				 &vs->sig, &error) < 0) {
		decide(vs, DKIM_RESULT_PERMERROR, error);
		salvage_names(vs, v->msg.header.data + f->value_off, f->value_len);
		return;
	}
	struct dkim_signature *sig = vs->sig;
	vs->res.domain = sig->domain;
	vs->res.selector = sig->selector;
	vs->res.auid = sig->auid;
	vs->res.alg = sig->alg_text;
	snprintf(vs->res.header_b, sizeof(vs->res.header_b), "%.8s", sig->sig_text);
	if (sig->alg == DKIM_ALG_RSA_SHA1) {
		decide(vs, DKIM_RESULT_FAIL, "rsa-sha1 is not accepted (RFC 8301)");
		return;
	}
	if (sig->alg == DKIM_ALG_UNKNOWN) {
		decide(vs, DKIM_RESULT_NEUTRAL, "unknown algorithm");
		return;
	}
	if (sig->has_expiry && sig->expiry < (int64_t)v->now) {
		decide(vs, DKIM_RESULT_FAIL, "signature expired");
		return;
	}
	if (sig->has_timestamp && sig->timestamp > (int64_t)v->now + DKIM_FUTURE_ALLOWANCE) {
		decide(vs, DKIM_RESULT_FAIL, "signature timestamp in the future");
		return;
	}
	if (sig->body_hash_len != 32) {
		decide(vs, DKIM_RESULT_FAIL, "body hash has the wrong length");
		return;
	}
	vs->body_md = EVP_MD_CTX_new();
	if (vs->body_md == NULL || EVP_DigestInit_ex(vs->body_md, dkim_sha256(), NULL) != 1)
		panic("dkim: EVP_DigestInit_ex failed");
	vs->bc = dkim_body_canon_create(sig->body_canon,
					sig->has_length ? sig->length : UINT64_MAX,
					body_emit, vs);
}

static bool is_sig_field(const struct dkim_msg *m, const struct dkim_field *f)
{
	static const char name[] = "dkim-signature";
	size_t l = f->name_len;
	while (l > 0 && (m->header.data[f->name_off + l - 1] == ' ' ||
			 m->header.data[f->name_off + l - 1] == '\t'))
		l--;
	return l == sizeof(name) - 1 &&
	       strncasecmp(m->header.data + f->name_off, name, l) == 0;
}

static void on_header_end(void *ctx)
{
	struct dkim_verify *v = ctx;
	if (v->msg.overflow || v->msg.too_many_fields) {
		v->too_large = true;
		return;
	}
	for (size_t i = 0; i < v->msg.n_fields; i++) {
		if (!is_sig_field(&v->msg, &v->msg.fields[i]))
			continue;
		if (v->nsigs == DKIM_MAX_SIGNATURES)
			v->ignored++;
		else
			setup_sig(v, i);
	}
}

static void on_body(void *ctx, const char *data, size_t len)
{
	struct dkim_verify *v = ctx;
	for (size_t i = 0; i < v->nsigs; i++) {
		if (v->sigs[i].bc)
			dkim_body_canon_feed(v->sigs[i].bc, data, len);
	}
}

struct dkim_verify *dkim_verify_create(const struct dkim_verify_options *opts)
{
	struct dkim_verify *v = xcalloc(1, sizeof(*v));
	if (opts)
		v->opts = *opts;
	v->now = v->opts.now ? v->opts.now : clock_now();
	dkim_msg_init(&v->msg, on_header_end, on_body, v);
	return v;
}

void dkim_verify_feed(struct dkim_verify *v, const char *data, size_t len)
{
	if (!v->finished)
		dkim_msg_feed(&v->msg, data, len);
}

static void check_body(struct vsig *vs)
{
	uint64_t total;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	dkim_body_canon_finish(vs->bc, &total);
	if (EVP_DigestFinal_ex(vs->body_md, md, &mdlen) != 1)
		panic("dkim: EVP_DigestFinal_ex failed");
	if (vs->sig->has_length && vs->sig->length > total) {
		decide(vs, DKIM_RESULT_FAIL, "l= is longer than the body");
		return;
	}
	if (vs->sig->has_length && vs->sig->length < total)
		vs->res.body_truncated = true;
	if (mdlen != vs->sig->body_hash_len || memcmp(md, vs->sig->body_hash, mdlen) != 0)
		decide(vs, DKIM_RESULT_FAIL, "body hash did not verify");
}

static EVP_PKEY *load_key(const struct dkim_key *key, const char **error_r)
{
	const unsigned char *p = key->public_key;
	EVP_PKEY *pkey = NULL;

	if (key->type == DKIM_KEY_ED25519) {
		pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, p,
						   key->public_key_len);
	} else {
		pkey = d2i_PUBKEY(NULL, &p, (long)key->public_key_len);
		if (pkey == NULL) {
			/* some publish the bare RSAPublicKey (PKCS#1) */
			p = key->public_key;
			pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)key->public_key_len);
		}
		if (pkey && EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
	}
	if (pkey == NULL)
		*error_r = "public key unusable";
	return pkey;
}

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *dkim_sha256(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	/* a provider-less OpenSSL still has the built-in method */
	return sha256_md != NULL ? sha256_md : EVP_sha256();
}

bool dkim_crypto_verify(EVP_PKEY *pkey, enum dkim_alg alg, const uint8_t *digest,
			const uint8_t *sig, size_t siglen)
{
	bool ok = false;
	if (alg == DKIM_ALG_RSA_SHA256) {
		/* a context kept per thread and key (dkim-ctxcache.c) */
		EVP_PKEY_CTX *pctx = dkim_rsa_verify_ctx(pkey);
		ok = pctx != NULL && EVP_PKEY_verify(pctx, sig, siglen, digest, 32) == 1;
	} else {
		/* RFC 8463 section 3: PureEdDSA over the SHA-256 hash */
		EVP_MD_CTX *mctx = EVP_MD_CTX_new();
		if (mctx && EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pkey) == 1)
			ok = EVP_DigestVerify(mctx, sig, siglen, digest, 32) == 1;
		EVP_MD_CTX_free(mctx);
	}
	return ok;
}

/* The canonical signed header data of vs (section 3.7), hashed. */
static int header_digest(struct vsig *vs, uint8_t digest[32])
{
	const struct dkim_msg *m = &vs->v->msg;
	const struct dkim_field *f = &m->fields[vs->field];
	const char *value = m->header.data + f->value_off;
	struct buf data, stripped;
	int r = -1;

	/* where b= lies in this very text was found when the signature was
	 * parsed (setup_sig), so the tag list is not parsed again */
	size_t b_start = vs->sig->b_start, b_end = vs->sig->b_end;
	if (b_start > b_end || b_end > f->value_len)
		return -1;
	buf_init(&data, DKIM_MAX_HEADER_SECTION + DKIM_MAX_SIG_VALUE + 1024);
	buf_init(&stripped, DKIM_MAX_SIG_VALUE + 1);
	if (buf_append(&stripped, value, b_start) == 0 &&
	    buf_append(&stripped, value + b_end, f->value_len - b_end) == 0 &&
	    dkim_msg_canon_headers(m, vs->sig->header_canon, vs->sig->headers,
				   vs->sig->n_headers, &data) == 0 &&
	    dkim_canon_header(vs->sig->header_canon, m->header.data + f->name_off,
			      f->name_len, stripped.data ? stripped.data : "",
			      stripped.len, false, &data) == 0) {
		unsigned len = 0;
		if (EVP_Digest(data.data, data.len, digest, &len, dkim_sha256(), NULL) == 1 &&
		    len == 32)
			r = 0;
	}
	buf_free(&data);
	buf_free(&stripped);
	return r;
}

static bool domain_eq_ci(const char *auid, const char *domain)
{
	const char *at = strrchr(auid, '@');
	return at && strcasecmp(at + 1, domain) == 0;
}

static void check_with_key(struct vsig *vs, const struct dkim_dns_answer *a)
{
	struct dkim_key *parsed = NULL, cached;
	const struct dkim_key *key = NULL;
	EVP_PKEY *pkey = NULL;
	const char *record = NULL;
	size_t record_len = 0;
	const char *error = "no key record";

	if (a->status == DKIM_DNS_TEMPFAIL) {
		decide(vs, DKIM_RESULT_TEMPERROR, "key lookup failed temporarily");
		return;
	}
	if (a->status == DKIM_DNS_NXDOMAIN || a->count == 0) {
		decide(vs, DKIM_RESULT_PERMERROR, "no key for signature");
		return;
	}
	/* the first record that parses; only records that parsed (and whose
	 * key decoded) are in the cache, so a hit keeps that order */
	for (size_t i = 0; i < a->count && key == NULL; i++) {
		const char *s = a->strings[i];
		size_t len = a->lengths ? a->lengths[i] : strlen(s);
		const char *e;
		if ((pkey = dkim_keycache_get(s, len, &cached)) != NULL) {
			key = &cached;
		} else if (dkim_key_parse(s, len, &parsed, &e) == 0) {
			key = parsed;
			record = s;
			record_len = len;
		} else if (i == 0) {
			error = e;
		}
	}
	if (key == NULL) {
		decide(vs, DKIM_RESULT_PERMERROR, error);
		return;
	}
	vs->res.testing = key->testing;
	enum dkim_key_type want = vs->sig->alg == DKIM_ALG_ED25519_SHA256 ?
				  DKIM_KEY_ED25519 : DKIM_KEY_RSA;
	uint8_t digest[32];

	if (key->revoked)
		decide(vs, DKIM_RESULT_PERMERROR, "key revoked");
	else if (!key->sha256_allowed)
		decide(vs, DKIM_RESULT_PERMERROR, "key h= does not allow sha256");
	else if (key->type != want)
		decide(vs, DKIM_RESULT_PERMERROR, "key type does not match a=");
	else if (key->strict && !domain_eq_ci(vs->sig->auid, vs->sig->domain))
		decide(vs, DKIM_RESULT_PERMERROR, "key t=s: i= domain must equal d=");
	else if (pkey == NULL && (pkey = load_key(key, &error)) == NULL)
		decide(vs, DKIM_RESULT_PERMERROR, error);
	else if (key->type == DKIM_KEY_RSA && EVP_PKEY_get_bits(pkey) < DKIM_RSA_MIN_BITS)
		decide(vs, DKIM_RESULT_FAIL, "RSA key shorter than 1024 bits (RFC 8301)");
	else if (key->type == DKIM_KEY_RSA && EVP_PKEY_get_bits(pkey) > DKIM_RSA_MAX_BITS)
		decide(vs, DKIM_RESULT_PERMERROR, "RSA key longer than 8192 bits");
	else if (header_digest(vs, digest) < 0)
		decide(vs, DKIM_RESULT_PERMERROR, "signed header data too large");
	else if (!dkim_crypto_verify(pkey, vs->sig->alg, digest, vs->sig->sig, vs->sig->sig_len))
		decide(vs, DKIM_RESULT_FAIL, "signature did not verify");
	else if (vs->res.body_truncated && !vs->v->opts.allow_partial_body)
		decide(vs, DKIM_RESULT_POLICY, "l= leaves part of the body unsigned");
	else
		decide(vs, DKIM_RESULT_PASS, "");
	/* a key decoded just now is kept for the next message with this record */
	if (record != NULL && pkey != NULL)
		dkim_keycache_put(record, record_len, key, pkey);
	EVP_PKEY_free(pkey);
	dkim_key_free(&parsed);
}

enum dkim_result dkim_answer_key(const struct dkim_dns_answer *a, enum dkim_alg alg,
				 EVP_PKEY **pkey_r, const char **reason_r)
{
	struct dkim_key *parsed = NULL, cached;
	const struct dkim_key *key = NULL;
	EVP_PKEY *pkey = NULL;
	const char *record = NULL;
	size_t record_len = 0;
	const char *error = "no key record";
	enum dkim_result r = DKIM_RESULT_PERMERROR;

	*pkey_r = NULL;
	if (a->status == DKIM_DNS_TEMPFAIL) {
		*reason_r = "key lookup failed temporarily";
		return DKIM_RESULT_TEMPERROR;
	}
	if (a->status == DKIM_DNS_NXDOMAIN || a->count == 0) {
		*reason_r = "no key for signature";
		return DKIM_RESULT_PERMERROR;
	}
	/* as check_with_key(): the first record that parses */
	for (size_t i = 0; i < a->count && key == NULL; i++) {
		const char *s = a->strings[i];
		size_t len = a->lengths ? a->lengths[i] : strlen(s);
		const char *e;
		if ((pkey = dkim_keycache_get(s, len, &cached)) != NULL) {
			key = &cached;
		} else if (dkim_key_parse(s, len, &parsed, &e) == 0) {
			key = parsed;
			record = s;
			record_len = len;
		} else if (i == 0) {
			error = e;
		}
	}
	enum dkim_key_type want = alg == DKIM_ALG_ED25519_SHA256 ? DKIM_KEY_ED25519 : DKIM_KEY_RSA;
	if (key == NULL)
		*reason_r = error;
	else if (key->revoked)
		*reason_r = "key revoked";
	else if (!key->sha256_allowed)
		*reason_r = "key h= does not allow sha256";
	else if (key->type != want)
		*reason_r = "key type does not match a=";
	else if (pkey == NULL && (pkey = load_key(key, reason_r)) == NULL)
		;
	else if (key->type == DKIM_KEY_RSA && EVP_PKEY_get_bits(pkey) < DKIM_RSA_MIN_BITS) {
		*reason_r = "RSA key shorter than 1024 bits (RFC 8301)";
		r = DKIM_RESULT_FAIL;
	} else if (key->type == DKIM_KEY_RSA && EVP_PKEY_get_bits(pkey) > DKIM_RSA_MAX_BITS)
		*reason_r = "RSA key longer than 8192 bits";
	else {
		*reason_r = "";
		r = DKIM_RESULT_PASS;
	}
	if (record != NULL && pkey != NULL)
		dkim_keycache_put(record, record_len, key, pkey);
	if (r == DKIM_RESULT_PASS)
		*pkey_r = pkey;
	else
		EVP_PKEY_free(pkey);
	dkim_key_free(&parsed);
	return r;
}

static void vsig_free(struct vsig *vs)
{
	dkim_signature_free(&vs->sig);
	free(vs->bad_domain);
	free(vs->bad_selector);
	EVP_MD_CTX_free(vs->body_md);
	vs->body_md = NULL;
	dkim_body_canon_destroy(&vs->bc);
}

static void verify_free(struct dkim_verify *v)
{
	for (size_t i = 0; i < v->nsigs; i++)
		vsig_free(&v->sigs[i]);
	dkim_msg_free(&v->msg);
	free(v);
}

static void complete(struct dkim_verify *v)
{
	struct dkim_outcome out = { .ignored = v->ignored };

	if (v->too_large) {
		memset(&v->results[0], 0, sizeof(v->results[0]));
		v->results[0] = (struct dkim_sig_result){
			.result = DKIM_RESULT_PERMERROR,
			.reason = "header section too large",
			.domain = "", .selector = "", .auid = "", .alg = "",
		};
		out.count = 1;
	} else {
		for (size_t i = 0; i < v->nsigs; i++)
			v->results[i] = v->sigs[i].res;
		out.count = v->nsigs;
	}
	out.results = v->results;
	for (size_t i = 0; i < out.count; i++) {
		const struct dkim_sig_result *r = &v->results[i];
		log_debug("dkim", "event=verify result=%s d=%s s=%s a=%s reason=%s",
			  dkim_result_name(r->result), r->domain, r->selector, r->alg,
			  log_quote(r->reason));
	}
	/* the last thing we do: cb may destroy v */
	v->cb(v->cb_ctx, &out);
}

static void on_answer(void *query_ctx, const struct dkim_dns_answer *answer)
{
	struct vsig *vs = query_ctx;
	struct dkim_verify *v = vs->v;

	vs->query_pending = false;
	v->pending--;
	if (v->destroyed) {
		if (v->pending == 0)
			verify_free(v);
		return;
	}
	check_with_key(vs, answer);
	if (!v->starting && v->pending == 0)
		complete(v);
}

void dkim_verify_finish(struct dkim_verify *v, const struct dkim_dns *dns,
			dkim_done_cb *cb, void *ctx)
{
	if (v->finished)
		return;
	v->finished = true;
	dkim_msg_end(&v->msg);
	v->dns = dns;
	v->cb = cb;
	v->cb_ctx = ctx;
	for (size_t i = 0; i < v->nsigs; i++) {
		struct vsig *vs = &v->sigs[i];
		if (vs->bc && !vs->decided)
			check_body(vs);
	}
	v->starting = true;
	for (size_t i = 0; i < v->nsigs && !v->too_large; i++) {
		struct vsig *vs = &v->sigs[i];
		if (vs->decided)
			continue;
		char *name = xasprintf("%s._domainkey.%s", vs->sig->selector, vs->sig->domain);
		if (strlen(name) > 253) {
			decide(vs, DKIM_RESULT_PERMERROR, "key name too long");
			free(name);
			continue;
		}
		vs->query_pending = true;
		v->pending++;
		dns->txt(dns->ctx, name, on_answer, vs);
		free(name);
	}
	v->starting = false;
	if (v->pending == 0)
		complete(v);
}

void dkim_verify_destroy(struct dkim_verify **vp)
{
	struct dkim_verify *v = *vp;
	if (v == NULL)
		return;
	*vp = NULL;
	if (v->pending > 0 && v->dns && v->dns->cancel) {
		for (size_t i = 0; i < v->nsigs; i++) {
			if (v->sigs[i].query_pending) {
				v->dns->cancel(v->dns->ctx, &v->sigs[i]);
				v->sigs[i].query_pending = false;
			}
		}
		v->pending = 0;
	}
	if (v->pending > 0) {
		v->destroyed = true;
		return;
	}
	verify_free(v);
}

/* RFC 8601 pvalue characters we write without quoting (dot-atom and '@') */
static bool pvalue_ok(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-/=?^_`{|}~.@", *s))
			return false;
	}
	return true;
}

int dkim_result_format(const struct dkim_sig_result *r, struct buf *out)
{
	int e = buf_printf(out, "dkim=%s", dkim_result_name(r->result));
	if (r->reason && *r->reason)
		e |= buf_printf(out, " (%s)", r->reason);
	if (*r->domain)
		e |= buf_printf(out, " header.d=%s", r->domain);
	if (pvalue_ok(r->auid))
		e |= buf_printf(out, " header.i=%s", r->auid);
	if (*r->selector)
		e |= buf_printf(out, " header.s=%s", r->selector);
	if (*r->alg)
		e |= buf_printf(out, " header.a=%s", r->alg);
	if (r->header_b[0])
		e |= buf_printf(out, " header.b=\"%s\"", r->header_b);
	return e ? -1 : 0;
}
