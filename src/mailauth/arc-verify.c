/* ARC chain verification (RFC 8617 section 5.2) over the DKIM library.
 *
 * Steps, as the RFC orders them: collect the ARC sets (no ARC field at all
 * gives none); the newest ARC-Seal saying cv=fail fails the chain; the
 * structure must be whole (instances 1..N, N <= 50, exactly one
 * ARC-Authentication-Results, ARC-Message-Signature and ARC-Seal per
 * instance, cv=none on instance 1 and cv=pass on every later one); the
 * newest AMS must verify; older AMSs are checked, newest first, to find
 * the oldest-pass instance (step 5); every AS must verify (step 6).
 *
 * Invariants:
 * - The message is read once: the header section is kept by dkim_msg and
 *   the body is hashed as it arrives, once per AMS checked (the newest
 *   ARC_MAX_AMS_CHECKED of them, so a peer cannot make us hash the body
 *   fifty times); it is never stored.
 * - An AMS is parsed by the DKIM signature parser, given its tags without
 *   i= (the instance, not an AUID) and with v=1 (an AMS has no v=): the
 *   two differences of section 4.1.2 that matter to the parser.
 * - The ARC-Seal hash (section 5.1.1): for every instance 1..i in order,
 *   its AAR, AMS and AS, relaxed header canonicalisation, the AS of i
 *   last, with b= emptied and no CRLF.
 * - Keys are looked up once per distinct name (at most ARC_MAX_KEYS), all
 *   in parallel; each answer is checked against every signature using it
 *   inside the callback (answers are borrowed).  As in dkim-verify.c,
 *   answers given inside txt() only record, so the done callback runs
 *   exactly once and last: cb may destroy the verifier.
 * - Every string in the outcome holds only DNS-name characters or fixed
 *   text: nothing of the message reaches Authentication-Results except
 *   checked domain names. */
#include "mailauth/arc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "mailauth/auth-results.h"
#include "mailauth/arc-private.h"
#include "mailauth/dkim-private.h"

#define NO_FIELD ((size_t)-1)

#define KIND_AAR ARC_KIND_AAR
#define KIND_AMS ARC_KIND_AMS
#define KIND_AS ARC_KIND_AS
#define KIND_NONE ARC_KIND_NONE

struct aset {
	size_t field[3];             /* by enum arc_kind, NO_FIELD when absent */
};

struct asig {
	struct arc_verify *v;
	enum arc_kind kind;          /* KIND_AMS or KIND_AS */
	unsigned instance;
	bool used;                   /* this signature is checked */
	enum dkim_alg alg;
	uint8_t *sig;                /* AS: b= decoded (AMS: in ams) */
	size_t sig_len;
	struct dkim_signature *ams;
	EVP_MD_CTX *body_md;
	struct dkim_body_canon *bc;
	uint8_t digest[32];
	size_t key;                  /* index in keys */
	bool decided, pass;
	const char *reason;
};

struct akey {
	struct arc_verify *v;
	char *name;
	bool pending;
};

struct arc_verify {
	struct arc_verify_options opts;
	time_t now;
	struct dkim_msg msg;
	bool any;                    /* an ARC field was seen */
	const char *broken;          /* structural failure, or NULL */
	unsigned n;
	struct aset sets[ARC_MAX_SETS + 1];
	struct asig ams[ARC_MAX_SETS + 1], seals[ARC_MAX_SETS + 1];
	struct akey keys[ARC_MAX_KEYS];
	size_t nkeys;
	char *sealer, *ams_domain, *reason;
	const struct dkim_dns *dns;
	arc_done_cb *cb;
	void *cb_ctx;
	size_t pending;
	bool starting, finished, destroyed;
};

const char *arc_result_name(enum arc_result r)
{
	switch (r) {
	case ARC_RESULT_NONE: return "none";
	case ARC_RESULT_PASS: return "pass";
	case ARC_RESULT_FAIL: return "fail";
	}
	return "fail";
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

enum arc_kind arc_field_kind(const struct dkim_msg *m, const struct dkim_field *f)
{
	const char *p = m->header.data + f->name_off;
	size_t l = f->name_len;
	while (l > 0 && (p[l - 1] == ' ' || p[l - 1] == '\t'))
		l--;
	if (l == 26 && strncasecmp(p, "arc-authentication-results", l) == 0)
		return KIND_AAR;
	if (l == 21 && strncasecmp(p, "arc-message-signature", l) == 0)
		return KIND_AMS;
	if (l == 8 && strncasecmp(p, "arc-seal", l) == 0)
		return KIND_AS;
	return KIND_NONE;
}

/* 1*2DIGIT in 1..ARC_MAX_SETS, or 0. */
static unsigned parse_instance(const char *p, size_t len)
{
	if (len == 0 || len > 2)
		return 0;
	unsigned n = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)p[i]))
			return 0;
		n = n * 10 + (unsigned)(p[i] - '0');
	}
	return n >= 1 && n <= ARC_MAX_SETS ? n : 0;
}

/* The instance of an ARC-Authentication-Results value: "i=N;" first
 * (RFC 8617 section 4.1.1), whitespace allowed around the parts. */
static unsigned aar_instance(const char *p, size_t len)
{
	size_t i = 0;
	while (i < len && is_wsp(p[i]))
		i++;
	if (i >= len || (p[i] != 'i' && p[i] != 'I'))
		return 0;
	i++;
	while (i < len && is_wsp(p[i]))
		i++;
	if (i >= len || p[i] != '=')
		return 0;
	i++;
	while (i < len && is_wsp(p[i]))
		i++;
	size_t start = i;
	while (i < len && isdigit((unsigned char)p[i]))
		i++;
	size_t end = i;
	while (i < len && is_wsp(p[i]))
		i++;
	if (i >= len || p[i] != ';')
		return 0;
	return parse_instance(p + start, end - start);
}

static unsigned tag_instance(const char *p, size_t len)
{
	struct dkim_tag tags[DKIM_MAX_TAGS];
	size_t n;
	const char *e;
	if (len > DKIM_MAX_SIG_VALUE || dkim_tag_list_parse(p, len, tags, DKIM_MAX_TAGS, &n, &e) < 0)
		return 0;
	const struct dkim_tag *t = dkim_tag_find(tags, n, "i");
	return t ? parse_instance(t->value.p, t->value.len) : 0;
}

unsigned arc_field_instance(enum arc_kind kind, const char *value, size_t len)
{
	return kind == KIND_AAR ? aar_instance(value, len) : tag_instance(value, len);
}

static const char *field_value(const struct arc_verify *v, size_t field, size_t *len_r)
{
	const struct dkim_field *f = &v->msg.fields[field];
	*len_r = f->value_len;
	return v->msg.header.data + f->value_off;
}

static int parse_alg(struct slice a, enum dkim_alg *alg_r)
{
	if (slice_eq_ci(a, "rsa-sha256"))
		*alg_r = DKIM_ALG_RSA_SHA256;
	else if (slice_eq_ci(a, "ed25519-sha256"))
		*alg_r = DKIM_ALG_ED25519_SHA256;
	else
		return -1;
	return 0;
}

/* Section 4.1.3: the tags of an ARC-Seal; *cv_r 0 none, 1 pass, 2 fail. */
static const char *parse_seal(struct arc_verify *v, unsigned inst, int *cv_r)
{
	struct asig *as = &v->seals[inst];
	size_t len;
	const char *value = field_value(v, v->sets[inst].field[KIND_AS], &len);
	struct dkim_tag tags[DKIM_MAX_TAGS];
	size_t n;
	const char *e;

	if (len > DKIM_MAX_SIG_VALUE || dkim_tag_list_parse(value, len, tags, DKIM_MAX_TAGS, &n, &e) < 0)
		return "ARC-Seal does not parse";
	const struct dkim_tag *a = dkim_tag_find(tags, n, "a"), *b = dkim_tag_find(tags, n, "b"),
		*cv = dkim_tag_find(tags, n, "cv"), *d = dkim_tag_find(tags, n, "d"),
		*s = dkim_tag_find(tags, n, "s");
	if (!a || !b || !cv || !d || !s)
		return "ARC-Seal lacks a required tag";
	if (dkim_tag_find(tags, n, "h") != NULL)
		return "ARC-Seal has h=";
	if (parse_alg(a->value, &as->alg) < 0)
		return "ARC-Seal algorithm not supported";
	if (!dkim_dns_name_ok(d->value.p, d->value.len) || !dkim_dns_name_ok(s->value.p, s->value.len))
		return "ARC-Seal d= or s= is not a domain name";
	if (slice_eq_ci(cv->value, "none"))
		*cv_r = 0;
	else if (slice_eq_ci(cv->value, "pass"))
		*cv_r = 1;
	else if (slice_eq_ci(cv->value, "fail"))
		*cv_r = 2;
	else
		return "ARC-Seal cv= unknown";
	struct buf clean, dec;
	buf_init(&clean, b->value.len + 1);
	for (size_t i = 0; i < b->value.len; i++)
		if (!is_wsp(b->value.p[i]))
			buf_append(&clean, &b->value.p[i], 1);
	buf_init(&dec, base64_decoded_max(clean.len) + 1);
	int r = base64_decode(&dec, buf_cstr(&clean), clean.len);
	buf_free(&clean);
	if (r < 0 || dec.len == 0) {
		buf_free(&dec);
		return "ARC-Seal b= is not base64";
	}
	as->sig_len = dec.len;
	as->sig = (uint8_t *)buf_steal(&dec);
	as->kind = KIND_AS;
	as->instance = inst;
	as->used = true;
	as->v = v;
	char *name = xasprintf("%.*s._domainkey.%.*s", (int)s->value.len, s->value.p,
			       (int)d->value.len, d->value.p);
	/* remembered in keys at finish; keep the d= of the newest seal */
	if (inst == v->n)
		v->sealer = slice_dup(d->value);
	as->reason = name;  /* temporary: the key name until finish */
	return NULL;
}

static void body_emit(void *ctx, const char *data, size_t len)
{
	struct asig *a = ctx;
	EVP_DigestUpdate(a->body_md, data, len);
}

/* Section 4.1.2: an AMS is a DKIM-Signature without v= and with i= the
 * instance; give the DKIM parser what it expects. */
static const char *parse_ams(struct arc_verify *v, unsigned inst)
{
	struct asig *am = &v->ams[inst];
	size_t len;
	const char *value = field_value(v, v->sets[inst].field[KIND_AMS], &len);
	struct dkim_tag tags[DKIM_MAX_TAGS];
	size_t n;
	const char *e;
	struct buf b;

	am->v = v;
	am->kind = KIND_AMS;
	am->instance = inst;
	am->used = true;
	if (len > DKIM_MAX_SIG_VALUE || dkim_tag_list_parse(value, len, tags, DKIM_MAX_TAGS, &n, &e) < 0)
		return "ARC-Message-Signature does not parse";
	if (dkim_tag_find(tags, n, "v") != NULL)
		return "ARC-Message-Signature has v=";
	buf_init(&b, DKIM_MAX_SIG_VALUE + 16);
	buf_append_str(&b, "v=1");
	for (size_t i = 0; i < n; i++) {
		if (slice_eq_ci(tags[i].name, "i"))
			continue;
		buf_append_str(&b, "; ");
		buf_append_slice(&b, tags[i].name);
		buf_append_str(&b, "=");
		buf_append_slice(&b, tags[i].value);
	}
	int r = dkim_signature_parse(buf_cstr(&b), b.len, &am->ams, &e);
	buf_free(&b);
	if (r < 0)
		return "ARC-Message-Signature does not parse";
	if (am->ams->alg != DKIM_ALG_RSA_SHA256 && am->ams->alg != DKIM_ALG_ED25519_SHA256)
		return "ARC-Message-Signature algorithm not supported";
	for (size_t i = 0; i < am->ams->n_headers; i++)
		if (strcmp(am->ams->headers[i], "arc-seal") == 0)
			return "ARC-Message-Signature signs ARC-Seal";
	if (am->ams->body_hash_len != 32)
		return "ARC-Message-Signature body hash has the wrong length";
	am->alg = am->ams->alg;
	am->body_md = EVP_MD_CTX_new();
	if (am->body_md == NULL || EVP_DigestInit_ex(am->body_md, dkim_sha256(), NULL) != 1)
		panic("arc: EVP_DigestInit_ex failed");
	am->bc = dkim_body_canon_create(am->ams->body_canon,
					am->ams->has_length ? am->ams->length : UINT64_MAX,
					body_emit, am);
	if (inst == v->n)
		v->ams_domain = xstrdup(am->ams->domain);
	return NULL;
}

static void decide(struct asig *a, bool pass, const char *reason)
{
	a->decided = true;
	a->pass = pass;
	a->reason = reason;
}

static void on_header_end(void *ctx)
{
	struct arc_verify *v = ctx;
	size_t count = 0;

	for (unsigned i = 0; i <= ARC_MAX_SETS; i++)
		for (int k = 0; k < 3; k++)
			v->sets[i].field[k] = NO_FIELD;
	if (v->msg.overflow || v->msg.too_many_fields) {
		/* we cannot tell what the chain is: never a pass */
		v->any = true;
		v->broken = "header section too large";
		return;
	}
	for (size_t i = 0; i < v->msg.n_fields; i++) {
		enum arc_kind k = arc_field_kind(&v->msg, &v->msg.fields[i]);
		if (k == KIND_NONE)
			continue;
		v->any = true;
		if (v->broken)
			continue;
		if (++count > 3 * ARC_MAX_SETS) {
			v->broken = "too many ARC header fields";
			continue;
		}
		size_t len;
		const char *value = field_value(v, i, &len);
		unsigned inst = arc_field_instance(k, value, len);
		if (inst == 0) {
			v->broken = "ARC instance missing or out of range";
			continue;
		}
		if (v->sets[inst].field[k] != NO_FIELD) {
			v->broken = "ARC instance repeated";
			continue;
		}
		v->sets[inst].field[k] = i;
		if (inst > v->n)
			v->n = inst;
	}
	if (!v->any || v->broken)
		return;
	for (unsigned i = 1; i <= v->n; i++) {
		for (int k = 0; k < 3; k++) {
			if (v->sets[i].field[k] == NO_FIELD) {
				v->broken = "ARC set incomplete";
				return;
			}
		}
	}
	/* step 2 first: a chain its last sealer failed stays failed */
	int cv[ARC_MAX_SETS + 1];
	for (unsigned i = v->n; i >= 1; i--) {
		const char *e = parse_seal(v, i, &cv[i]);
		if (e) {
			v->broken = e;
			return;
		}
		if (i == v->n && cv[i] == 2) {
			v->broken = "newest ARC-Seal says cv=fail";
			return;
		}
	}
	for (unsigned i = 1; i <= v->n; i++) {
		if (cv[i] != (i == 1 ? 0 : 1)) {
			v->broken = i == 1 ? "ARC-Seal i=1 must say cv=none" : "ARC-Seal cv= must be pass";
			return;
		}
	}
	unsigned lowest = v->n > ARC_MAX_AMS_CHECKED ? v->n - ARC_MAX_AMS_CHECKED + 1 : 1;
	for (unsigned i = v->n; i >= lowest; i--) {
		const char *e = parse_ams(v, i);
		if (e && i == v->n) {
			v->broken = e;
			return;
		}
		if (e)
			decide(&v->ams[i], false, e);
	}
}

static void on_body(void *ctx, const char *data, size_t len)
{
	struct arc_verify *v = ctx;
	for (unsigned i = 1; i <= v->n; i++)
		if (v->ams[i].bc && !v->ams[i].decided)
			dkim_body_canon_feed(v->ams[i].bc, data, len);
}

struct arc_verify *arc_verify_create(const struct arc_verify_options *opts)
{
	struct arc_verify *v = xcalloc(1, sizeof(*v));
	if (opts)
		v->opts = *opts;
	v->now = v->opts.now ? v->opts.now : clock_now();
	dkim_msg_init(&v->msg, on_header_end, on_body, v);
	return v;
}

void arc_verify_feed(struct arc_verify *v, const char *data, size_t len)
{
	if (!v->finished)
		dkim_msg_feed(&v->msg, data, len);
}

/* The value of field with its b= emptied, canonicalised (no CRLF). */
static int canon_stripped(const struct dkim_msg *m, size_t field, enum dkim_canon canon,
			  struct buf *out)
{
	const struct dkim_field *f = &m->fields[field];
	const char *value = m->header.data + f->value_off;
	struct dkim_tag tags[DKIM_MAX_TAGS];
	size_t n;
	const char *e;
	struct buf stripped;
	int r = -1;

	if (dkim_tag_list_parse(value, f->value_len, tags, DKIM_MAX_TAGS, &n, &e) < 0)
		return -1;
	const struct dkim_tag *b = dkim_tag_find(tags, n, "b");
	if (b == NULL)
		return -1;
	buf_init(&stripped, DKIM_MAX_SIG_VALUE + 1);
	if (buf_append(&stripped, value, b->val_start) == 0 &&
	    buf_append(&stripped, value + b->val_end, f->value_len - b->val_end) == 0)
		r = dkim_canon_header(canon, m->header.data + f->name_off, f->name_len,
				      stripped.data ? stripped.data : "", stripped.len, false, out);
	buf_free(&stripped);
	return r;
}

static int hash(struct buf *data, uint8_t digest[32])
{
	unsigned len = 0;
	if (EVP_Digest(data->data ? data->data : "", data->len, digest, &len, dkim_sha256(), NULL) != 1 ||
	    len != 32)
		return -1;
	return 0;
}

/* RFC 6376 section 3.7 for an AMS: the selected fields, then the AMS. */
static int ams_digest(struct arc_verify *v, struct asig *am)
{
	struct buf data;
	int r = -1;
	buf_init(&data, DKIM_MAX_HEADER_SECTION + DKIM_MAX_SIG_VALUE + 1024);
	if (dkim_msg_canon_headers(&v->msg, am->ams->header_canon, am->ams->headers,
				   am->ams->n_headers, &data) == 0 &&
	    canon_stripped(&v->msg, v->sets[am->instance].field[KIND_AMS],
			   am->ams->header_canon, &data) == 0)
		r = hash(&data, am->digest);
	buf_free(&data);
	return r;
}

/* RFC 8617 section 5.1.1: every set up to the seal's own, in order. */
static int seal_digest(struct arc_verify *v, struct asig *as)
{
	struct buf data;
	int r = 0;
	const struct dkim_msg *m = &v->msg;
	buf_init(&data, DKIM_MAX_HEADER_SECTION + DKIM_MAX_SIG_VALUE + 1024);
	for (unsigned i = 1; i <= as->instance && r == 0; i++) {
		for (int k = KIND_AAR; k <= KIND_AS && r == 0; k++) {
			size_t fi = v->sets[i].field[k];
			const struct dkim_field *f = &m->fields[fi];
			if (i == as->instance && k == KIND_AS)
				r = canon_stripped(m, fi, DKIM_CANON_RELAXED, &data);
			else
				r = dkim_canon_header(DKIM_CANON_RELAXED, m->header.data + f->name_off,
						      f->name_len, m->header.data + f->value_off,
						      f->value_len, true, &data);
		}
	}
	if (r == 0)
		r = hash(&data, as->digest);
	buf_free(&data);
	return r;
}

static void asig_free(struct asig *a)
{
	if (a->kind == KIND_AS && !a->decided && a->used)
		free((char *)a->reason);  /* still the key name */
	free(a->sig);
	dkim_signature_free(&a->ams);
	EVP_MD_CTX_free(a->body_md);
	a->body_md = NULL;
	dkim_body_canon_destroy(&a->bc);
}

static void verify_free(struct arc_verify *v)
{
	for (unsigned i = 1; i <= ARC_MAX_SETS; i++) {
		asig_free(&v->ams[i]);
		asig_free(&v->seals[i]);
	}
	for (size_t i = 0; i < v->nkeys; i++)
		free(v->keys[i].name);
	free(v->sealer);
	free(v->ams_domain);
	free(v->reason);
	dkim_msg_free(&v->msg);
	free(v);
}

static void complete(struct arc_verify *v)
{
	struct arc_outcome o = {
		.result = ARC_RESULT_FAIL, .reason = "",
		.sealer = v->sealer ? v->sealer : "",
		.ams_domain = v->ams_domain ? v->ams_domain : "",
	};
	if (!v->any) {
		o.result = ARC_RESULT_NONE;
		o.sealer = o.ams_domain = "";
	} else if (v->broken) {
		o.reason = v->broken;
	} else {
		o.instances = v->n;
		struct asig *newest = &v->ams[v->n];
		if (!newest->pass) {
			v->reason = xasprintf("ARC-Message-Signature i=%u: %s", v->n, newest->reason);
		} else {
			for (unsigned i = v->n; i >= 1 && v->reason == NULL; i--)
				if (!v->seals[i].pass)
					v->reason = xasprintf("ARC-Seal i=%u: %s", i, v->seals[i].reason);
		}
		if (v->reason) {
			o.reason = v->reason;
		} else {
			o.result = ARC_RESULT_PASS;
			unsigned i = v->n;
			while (i >= 1 && v->ams[i].used && v->ams[i].pass)
				i--;
			/* every AMS verified: 0; else the lowest of the unbroken run */
			o.oldest_pass = i == 0 ? 0 : i + 1;
		}
	}
	log_debug("arc", "event=verify result=%s instances=%u sealer=%s reason=%s",
		  arc_result_name(o.result), o.instances, o.sealer, log_quote(o.reason));
	v->cb(v->cb_ctx, &o);
}

static void check_sig(struct asig *a, const struct dkim_dns_answer *answer)
{
	EVP_PKEY *pkey;
	const char *reason;
	const uint8_t *sig = a->kind == KIND_AS ? a->sig : a->ams->sig;
	size_t sig_len = a->kind == KIND_AS ? a->sig_len : a->ams->sig_len;
	if (dkim_answer_key(answer, a->alg, &pkey, &reason) != DKIM_RESULT_PASS) {
		decide(a, false, reason);
		return;
	}
	if (dkim_crypto_verify(pkey, a->alg, a->digest, sig, sig_len))
		decide(a, true, "");
	else
		decide(a, false, "signature did not verify");
	EVP_PKEY_free(pkey);
}

static void on_answer(void *query_ctx, const struct dkim_dns_answer *answer)
{
	struct akey *k = query_ctx;
	struct arc_verify *v = k->v;
	size_t ki = (size_t)(k - v->keys);

	k->pending = false;
	v->pending--;
	if (v->destroyed) {
		if (v->pending == 0)
			verify_free(v);
		return;
	}
	for (unsigned i = 1; i <= v->n; i++) {
		struct asig *sigs[2] = { &v->ams[i], &v->seals[i] };
		for (int j = 0; j < 2; j++)
			if (sigs[j]->used && !sigs[j]->decided && sigs[j]->key == ki)
				check_sig(sigs[j], answer);
	}
	if (!v->starting && v->pending == 0)
		complete(v);
}

/* The index of the key called name (made when new); -1 when too many. */
static int key_index(struct arc_verify *v, char *name, size_t *index_r)
{
	for (size_t i = 0; i < v->nkeys; i++) {
		if (strcasecmp(v->keys[i].name, name) == 0) {
			free(name);
			*index_r = i;
			return 0;
		}
	}
	if (v->nkeys == ARC_MAX_KEYS) {
		free(name);
		return -1;
	}
	v->keys[v->nkeys] = (struct akey){ .v = v, .name = name };
	*index_r = v->nkeys++;
	return 0;
}

/* Body hashes, header hashes and key names; false when the chain already
 * failed (v->broken or v->reason says why). */
static bool prepare(struct arc_verify *v)
{
	for (unsigned i = v->n; i >= 1; i--) {
		struct asig *am = &v->ams[i];
		if (!am->used || am->decided)
			continue;
		uint64_t total;
		uint8_t md[EVP_MAX_MD_SIZE];
		unsigned mdlen = 0;
		dkim_body_canon_finish(am->bc, &total);
		if (EVP_DigestFinal_ex(am->body_md, md, &mdlen) != 1)
			panic("arc: EVP_DigestFinal_ex failed");
		if (am->ams->has_length && am->ams->length > total)
			decide(am, false, "l= is longer than the body");
		else if (mdlen != 32 || memcmp(md, am->ams->body_hash, 32) != 0)
			decide(am, false, "body hash did not verify");
		else if (ams_digest(v, am) < 0)
			decide(am, false, "signed header data too large");
		else {
			char *name = xasprintf("%s._domainkey.%s", am->ams->selector, am->ams->domain);
			if (key_index(v, name, &am->key) < 0)
				decide(am, false, "too many distinct ARC keys");
		}
		if (i == v->n && am->decided) {
			v->reason = xasprintf("ARC-Message-Signature i=%u: %s", i, am->reason);
			return false;
		}
	}
	for (unsigned i = v->n; i >= 1; i--) {
		struct asig *as = &v->seals[i];
		char *name = (char *)as->reason;
		as->reason = NULL;
		if (seal_digest(v, as) < 0) {
			free(name);
			decide(as, false, "sealed header data too large");
		} else if (key_index(v, name, &as->key) < 0) {
			decide(as, false, "too many distinct ARC keys");
		}
		if (as->decided) {
			/* keys named by the seals below still need freeing */
			for (unsigned j = i - 1; j >= 1; j--) {
				free((char *)v->seals[j].reason);
				decide(&v->seals[j], false, "not checked");
			}
			v->reason = xasprintf("ARC-Seal i=%u: %s", i, as->reason);
			return false;
		}
	}
	return true;
}

void arc_verify_finish(struct arc_verify *v, const struct dkim_dns *dns,
		       arc_done_cb *cb, void *ctx)
{
	if (v->finished)
		return;
	v->finished = true;
	dkim_msg_end(&v->msg);
	v->dns = dns;
	v->cb = cb;
	v->cb_ctx = ctx;
	if (!v->any || v->broken || !prepare(v)) {
		if (v->reason)
			v->broken = v->reason;
		complete(v);
		return;
	}
	v->starting = true;
	for (size_t i = 0; i < v->nkeys; i++) {
		struct akey *k = &v->keys[i];
		if (strlen(k->name) > 253) {
			struct dkim_dns_answer none = { .status = DKIM_DNS_NXDOMAIN };
			v->pending++;
			on_answer(k, &none);
			continue;
		}
		k->pending = true;
		v->pending++;
		dns->txt(dns->ctx, k->name, on_answer, k);
	}
	v->starting = false;
	if (v->pending == 0)
		complete(v);
}

void arc_verify_destroy(struct arc_verify **vp)
{
	struct arc_verify *v = *vp;
	if (v == NULL)
		return;
	*vp = NULL;
	if (v->pending > 0 && v->dns && v->dns->cancel) {
		for (size_t i = 0; i < v->nkeys; i++) {
			if (v->keys[i].pending) {
				v->dns->cancel(v->dns->ctx, &v->keys[i]);
				v->keys[i].pending = false;
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

int arc_result_format(const struct arc_outcome *o, const char *remote_ip, struct buf *out)
{
	int e = buf_printf(out, "arc=%s", arc_result_name(o->result));
	if (o->reason && *o->reason)
		e |= buf_printf(out, " (%s)", o->reason);
	if (o->result == ARC_RESULT_PASS)
		e |= buf_printf(out, " header.oldest-pass=%u", o->oldest_pass);
	if (remote_ip && *remote_ip) {
		e |= buf_append_str(out, " smtp.remote-ip=");
		e |= auth_results_append_pvalue(out, remote_ip);
	}
	return e ? -1 : 0;
}
