/* DKIM key management (dkim-manage.h): key generation, selector names,
 * key records, and the signer over the store's active keys.
 *
 * Invariants:
 *  - Private keys never leave this module but as the PEM stored by the
 *    caller; signing goes through struct dkim_signer (sign(key_id,
 *    digest), DESIGN.md), here a dkim_keyring in this process.
 *  - The signer's key set is immutable once built and reference-counted:
 *    a reload builds a new set and swaps the pointer under a mutex, so
 *    threads signing with the old set finish with it undisturbed.
 *  - The zone line never holds a string longer than 255 bytes (RFC 1035
 *    section 3.3: <character-string>).
 * RFC 6376 sections 3.6.1 (key records), 3.6.2.1 (selectors in DNS);
 * RFC 8463 section 4 (Ed25519 keys); RFC 8301 (RSA 2048). */
#include "mailauth/dkim-manage.h"

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "mailauth/arc.h"
#include "store/dkim-keys.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- keys ---- */

const char *dkim_key_type_algorithm(enum dkim_key_type type)
{
	return type == DKIM_KEY_ED25519 ? "ed25519-sha256" : "rsa-sha256";
}

int dkim_key_type_from_algorithm(const char *algorithm, enum dkim_key_type *type_r)
{
	if (algorithm != NULL && strcmp(algorithm, "rsa-sha256") == 0)
		*type_r = DKIM_KEY_RSA;
	else if (algorithm != NULL && strcmp(algorithm, "ed25519-sha256") == 0)
		*type_r = DKIM_KEY_ED25519;
	else
		return -1;
	return 0;
}

/* The p= bytes of pkey: SubjectPublicKeyInfo DER (RSA), raw 32 bytes
 * (Ed25519), base64 encoded; NULL on failure. */
static char *public_b64(EVP_PKEY *pkey, enum dkim_key_type type)
{
	unsigned char *der = NULL;
	char *b64 = NULL;

	if (type == DKIM_KEY_ED25519) {
		unsigned char raw[32];
		size_t rawlen = sizeof(raw);
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) == 1 && rawlen == 32)
			b64 = base64_encode_str(raw, rawlen);
		return b64;
	}
	int n = i2d_PUBKEY(pkey, &der);
	if (n > 0)
		b64 = base64_encode_str(der, (size_t)n);
	OPENSSL_free(der);
	return b64;
}

int dkim_keygen(enum dkim_key_type type, char **pem_r, char **public_r, const char **error_r)
{
	EVP_PKEY *pkey;
	BIO *bio;
	BUF_MEM *mem = NULL;

	*pem_r = *public_r = NULL;
	if (type == DKIM_KEY_RSA)
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)DKIM_RSA_KEYGEN_BITS);
	else
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (pkey == NULL) {
		*error_r = "OpenSSL could not generate the key";
		return -1;
	}
	bio = BIO_new(BIO_s_mem());
	/* PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY") */
	if (bio == NULL || PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    BIO_get_mem_ptr(bio, &mem) != 1 || mem == NULL) {
		BIO_free(bio);
		EVP_PKEY_free(pkey);
		*error_r = "OpenSSL could not write the key";
		return -1;
	}
	*pem_r = xmalloc(mem->length + 1);
	memcpy(*pem_r, mem->data, mem->length);
	(*pem_r)[mem->length] = '\0';
	OPENSSL_cleanse(mem->data, mem->length);
	BIO_free(bio);
	*public_r = public_b64(pkey, type);
	EVP_PKEY_free(pkey);
	if (*public_r == NULL) {
		explicit_bzero(*pem_r, strlen(*pem_r));
		free(*pem_r);
		*pem_r = NULL;
		*error_r = "OpenSSL could not export the public key";
		return -1;
	}
	return 0;
}

/* ---- selectors ---- */

/* "a".."z", "aa".."zz", ... for i = 0, 1, ... (bijective base 26) */
static void seq_letters(unsigned i, char *out, size_t outsz)
{
	char tmp[16];
	size_t n = 0;

	i++;
	while (i > 0 && n < sizeof(tmp)) {
		i--;
		tmp[n++] = (char)('a' + i % 26);
		i /= 26;
	}
	for (size_t k = 0; k < n && k + 1 < outsz; k++)
		out[k] = tmp[n - 1 - k];
	out[n < outsz ? n : outsz - 1] = '\0';
}

static bool base_used(const char *base, const char *const *existing, size_t n)
{
	size_t bl = strlen(base);

	for (size_t i = 0; i < n; i++) {
		const char *e = existing[i];
		if (strncasecmp(e, base, bl) == 0 && (e[bl] == '\0' || e[bl] == '-'))
			return true;
	}
	return false;
}

char *dkim_selector_next(time_t now, const char *const *existing, size_t n)
{
	struct tm tm;
	char letters[16];

	gmtime_r(&now, &tm);
	for (unsigned i = 0;; i++) {
		seq_letters(i, letters, sizeof(letters));
		char *base = xasprintf("t%04d%s", tm.tm_year + 1900, letters);
		if (!base_used(base, existing, n))
			return base;
		free(base);
	}
}

/* ---- records ---- */

int dkim_record_text(enum dkim_key_type type, const char *public_b64, struct buf *out)
{
	return buf_printf(out, "v=DKIM1; k=%s; p=%s", type == DKIM_KEY_ED25519 ? "ed25519" : "rsa",
			  public_b64);
}

int dkim_record_zone_line(const char *selector, const char *domain, enum dkim_key_type type,
			  const char *public_b64, struct buf *out)
{
	struct buf text;
	int ret;

	buf_init(&text, 65536);
	if (dkim_record_text(type, public_b64, &text) < 0) {
		buf_free(&text);
		return -1;
	}
	ret = buf_printf(out, "%s._domainkey.%s. IN TXT (", selector, domain);
	/* the text holds no '"' or '\\' (tags, base64), so no escaping */
	for (size_t off = 0; ret == 0 && off < text.len; off += DKIM_TXT_STRING_MAX) {
		size_t n = text.len - off < DKIM_TXT_STRING_MAX ? text.len - off : DKIM_TXT_STRING_MAX;
		ret = buf_printf(out, " \"%.*s\"", (int)n, text.data + off);
	}
	if (ret == 0)
		ret = buf_append_str(out, " )\n");
	buf_free(&text);
	return ret < 0 ? -1 : 0;
}

bool dkim_record_matches(const char *record, size_t len, enum dkim_key_type type,
			 const char *public_b64)
{
	struct dkim_key *key = NULL;
	const char *error;
	struct buf want;
	bool same;

	if (dkim_key_parse(record, len, &key, &error) < 0)
		return false;
	buf_init(&want, 16384);
	same = key->type == type && !key->revoked &&
	       base64_decode(&want, public_b64, strlen(public_b64)) == 0 &&
	       want.len == key->public_key_len &&
	       memcmp(want.data, key->public_key, want.len) == 0;
	buf_free(&want);
	dkim_key_free(&key);
	return same;
}

/* ---- the signer ---- */

struct keyset_entry {
	char *domain, *selector;
	char key_id[24];                /* the store id, as text */
	enum dkim_alg alg;
};

/* An immutable snapshot of the active keys. */
struct keyset {
	atomic_int refs;
	char *stamp;                    /* store_dkim_keys_active_stamp() it was built at */
	struct dkim_keyring *kr;
	struct keyset_entry *e;
	size_t n;
};

struct dkim_store_signer {
	struct store *store;
	pthread_mutex_t lock;
	struct keyset *cur;             /* NULL until first loaded */
};

static void keyset_unref(struct keyset *ks)
{
	if (ks == NULL || atomic_fetch_sub(&ks->refs, 1) != 1)
		return;
	for (size_t i = 0; i < ks->n; i++) {
		free(ks->e[i].domain);
		free(ks->e[i].selector);
	}
	free(ks->e);
	free(ks->stamp);
	dkim_keyring_destroy(&ks->kr);
	free(ks);
}

static int load_key(void *ctx, const struct store_dkim_key *k)
{
	struct keyset *ks = ctx;
	enum dkim_key_type type;
	struct keyset_entry *e;
	const char *error = NULL;
	char id[24];

	if (k->state != STORE_DKIM_ACTIVE)
		return 0;
	snprintf(id, sizeof(id), "%lld", (long long)k->id);
	if (dkim_key_type_from_algorithm(k->algorithm, &type) < 0 ||
	    dkim_keyring_add_pem(ks->kr, id, k->private_key, strlen(k->private_key), &error) < 0) {
		log_error("dkim", "event=key_unusable domain=%s selector=%s error=%s",
			  log_quote(k->domain), log_quote(k->selector),
			  log_quote(error != NULL ? error : "unknown algorithm"));
		return 0;
	}
	ks->e = xrealloc(ks->e, (ks->n + 1) * sizeof(*ks->e));
	e = &ks->e[ks->n++];
	e->domain = xstrdup(k->domain);
	e->selector = xstrdup(k->selector);
	memcpy(e->key_id, id, sizeof(id));
	e->alg = type == DKIM_KEY_ED25519 ? DKIM_ALG_ED25519_SHA256 : DKIM_ALG_RSA_SHA256;
	return 0;
}

static struct keyset *keyset_load(struct store *store, char *stamp, const char **error_r)
{
	struct keyset *ks = xcalloc(1, sizeof(*ks));

	atomic_init(&ks->refs, 1);
	ks->stamp = stamp;
	ks->kr = dkim_keyring_create();
	if (store_dkim_keys_list(store, NULL, load_key, ks, error_r) < 0) {
		keyset_unref(ks);
		return NULL;
	}
	log_info("dkim", "event=keys_loaded active=%zu", ks->n);
	return ks;
}

struct dkim_store_signer *dkim_store_signer_create(struct store *store)
{
	struct dkim_store_signer *s = xcalloc(1, sizeof(*s));

	s->store = store;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void dkim_store_signer_destroy(struct dkim_store_signer **sp)
{
	struct dkim_store_signer *s = *sp;

	if (s == NULL)
		return;
	keyset_unref(s->cur);
	pthread_mutex_destroy(&s->lock);
	free(s);
	*sp = NULL;
}

/* The current key set, reloaded when the store's active set changed; a
 * reference the caller drops with keyset_unref.  NULL with *error_r when
 * nothing could be loaded. */
static struct keyset *keyset_get(struct dkim_store_signer *s, const char **error_r)
{
	struct keyset *ks, *fresh;
	char *stamp = NULL;

	if (store_dkim_keys_active_stamp(s->store, &stamp, error_r) < 0)
		stamp = NULL;   /* keep signing with what we have */
	pthread_mutex_lock(&s->lock);
	ks = s->cur;
	if (ks != NULL && (stamp == NULL || strcmp(ks->stamp, stamp) == 0)) {
		atomic_fetch_add(&ks->refs, 1);
		pthread_mutex_unlock(&s->lock);
		free(stamp);
		return ks;
	}
	pthread_mutex_unlock(&s->lock);
	if (stamp == NULL)
		return NULL;
	/* load outside the lock: reading PEMs costs more than a lookup */
	fresh = keyset_load(s->store, stamp, error_r);
	if (fresh == NULL)
		return NULL;
	pthread_mutex_lock(&s->lock);
	ks = s->cur;
	s->cur = fresh;
	atomic_fetch_add(&fresh->refs, 1);
	pthread_mutex_unlock(&s->lock);
	keyset_unref(ks);
	return fresh;
}

int dkim_store_signer_seal(struct dkim_store_signer *s, const char *domain, const char *data,
			   size_t len, const char *auth_results, struct buf *out,
			   const char **error_r)
{
	struct keyset *ks = keyset_get(s, error_r);
	const struct keyset_entry *use = NULL;
	int ret = 0;

	if (ks == NULL)
		return -1;
	for (int pass = 0; pass < 2 && use == NULL; pass++) {
		enum dkim_alg want = pass == 0 ? DKIM_ALG_RSA_SHA256 : DKIM_ALG_ED25519_SHA256;
		for (size_t i = 0; i < ks->n && use == NULL; i++)
			if (ks->e[i].alg == want && strcasecmp(ks->e[i].domain, domain) == 0)
				use = &ks->e[i];
	}
	if (use != NULL) {
		struct dkim_signer signer = dkim_keyring_signer(ks->kr);
		struct arc_seal_request req = {
			.domain = use->domain, .selector = use->selector, .alg = use->alg,
			.key_id = use->key_id, .auth_results = auth_results,
		};
		ret = arc_seal_message(&req, &signer, data, len, out, error_r) < 0 ? -1 : 1;
	}
	keyset_unref(ks);
	return ret;
}

int dkim_store_signer_sign(struct dkim_store_signer *s, const char *domain, const char *data,
			   size_t len, struct buf *out, const char **error_r)
{
	struct keyset *ks = keyset_get(s, error_r);
	struct dkim_signer signer;
	int added = 0, tried = 0;

	if (ks == NULL)
		return -1;
	signer = dkim_keyring_signer(ks->kr);
	/* RSA first, then Ed25519: the order of the "side by side" */
	for (int pass = 0; pass < 2; pass++) {
		enum dkim_alg want = pass == 0 ? DKIM_ALG_RSA_SHA256 : DKIM_ALG_ED25519_SHA256;
		for (size_t i = 0; i < ks->n; i++) {
			const struct keyset_entry *e = &ks->e[i];
			struct dkim_sign_request req = {
				.domain = e->domain, .selector = e->selector, .alg = e->alg,
				.key_id = e->key_id,
			};
			const char *error = NULL;
			if (e->alg != want || strcasecmp(e->domain, domain) != 0)
				continue;
			tried++;
			if (dkim_sign_message(&req, &signer, data, len, out, &error) < 0) {
				log_warn("dkim", "event=sign_failed domain=%s selector=%s error=%s",
					  log_quote(e->domain), log_quote(e->selector),
					  log_quote(error));
				*error_r = error;
				continue;
			}
			added++;
		}
	}
	keyset_unref(ks);
	if (tried > 0 && added == 0)
		return -1;
	return added;
}
