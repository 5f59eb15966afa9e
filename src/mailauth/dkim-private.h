/* Internals shared by the DKIM files (dkim-parse.c, dkim-canon.c,
 * dkim-verify.c, dkim-sign.c, dkim-keycache.c); not for other modules
 * (the unit tests use them too). */
#ifndef TERN_MAILAUTH_DKIM_PRIVATE_H
#define TERN_MAILAUTH_DKIM_PRIVATE_H

#include <openssl/types.h>

#include "lib/buf.h"
#include "mailauth/dkim.h"

/* One tag of a tag list (RFC 6376 section 3.2).  value is trimmed of the
 * surrounding FWS; [val_start, val_end) is everything between '=' and the
 * ';' (or the end), whitespace included, as the b= deletion of section
 * 3.7 needs. */
struct dkim_tag {
	struct slice name;
	struct slice value;
	size_t val_start, val_end;
};

/* Parse a tag list into tags[0..max).  Duplicate names, bad names,
 * characters outside VALCHAR and whitespace, empty tag-specs and more than
 * max tags are errors.  Returns 0 with *n_r, or -1 with *error_r. */
int dkim_tag_list_parse(const char *s, size_t len, struct dkim_tag *tags, size_t max,
			size_t *n_r, const char **error_r);

/* The tag called name, or NULL. */
const struct dkim_tag *dkim_tag_find(const struct dkim_tag *tags, size_t n, const char *name);

/* A domain name or selector we accept: labels of letters, digits, '-' and
 * '_', 1-63 bytes each, 1-253 bytes in all. */
bool dkim_dns_name_ok(const char *s, size_t len);

/* The header section split into fields.  A field is name ':' value; value
 * runs to the end of the field without its final CRLF. */
struct dkim_field {
	size_t name_off, name_len;
	size_t value_off, value_len;
};

/* Splits a message into its header section (kept, line ends made CRLF,
 * capped at DKIM_MAX_HEADER_SECTION) and its body (handed to body_cb). */
struct dkim_msg {
	struct buf header;           /* header section, CRLF line ends */
	bool in_body;
	bool pending_cr;
	bool line_start;             /* at the start of a header line */
	bool overflow;               /* header section too large */
	struct dkim_field *fields;
	size_t n_fields;
	bool too_many_fields;
	void (*body_cb)(void *ctx, const char *data, size_t len);
	void (*header_end_cb)(void *ctx);
	void *ctx;
};

/* Start splitting a message: header_end_cb (may be NULL) runs once when
 * the header section is complete and split into fields; body_cb (may be
 * NULL) gets every body byte as it comes. */
void dkim_msg_init(struct dkim_msg *m, void (*header_end_cb)(void *ctx),
		   void (*body_cb)(void *ctx, const char *data, size_t len), void *ctx);
/* The next bytes of the message. */
void dkim_msg_feed(struct dkim_msg *m, const char *data, size_t len);
/* End of message: a message without an empty line is all header. */
void dkim_msg_end(struct dkim_msg *m);
/* Release the kept header section and fields. */
void dkim_msg_free(struct dkim_msg *m);

/* Append the canonical headers selected by names (RFC 6376 section 5.4.2:
 * for each name, the last not yet used field of that name, from the
 * bottom; a name without one more field contributes nothing).  0, or -1
 * when out is full. */
int dkim_msg_canon_headers(const struct dkim_msg *m, enum dkim_canon canon,
			   char *const *names, size_t n_names, struct buf *out);

/* ---- key checks shared with ARC (dkim-verify.c) ---- */

/* The public key for a signature with algorithm alg in a key TXT answer:
 * the first record that parses, checked as for DKIM (revoked, h=, k=
 * against alg, RSA size per RFC 8301) but without the t=s AUID rule.
 * DKIM_RESULT_PASS with *pkey_r (caller frees with EVP_PKEY_free()), or
 * the result word and *reason_r (static text). */
enum dkim_result dkim_answer_key(const struct dkim_dns_answer *a, enum dkim_alg alg,
				 EVP_PKEY **pkey_r, const char **reason_r);
/* SHA-256 fetched once from OpenSSL's default provider and kept for the
 * life of the process (EVP_sha256() would be looked up again by every
 * digest initialisation and every signature check: a hash table search
 * under a lock, a measurable part of checking a message).  Never NULL;
 * the caller does not free it. */
const EVP_MD *dkim_sha256(void);
/* Check sig over the 32-byte SHA-256 digest of the signed data with pkey
 * (PKCS#1 v1.5 for rsa-sha256, PureEdDSA over the digest for
 * ed25519-sha256, RFC 8463 section 3). */
bool dkim_crypto_verify(EVP_PKEY *pkey, enum dkim_alg alg, const uint8_t *digest,
			const uint8_t *sig, size_t siglen);

/* ---- RSA verification contexts (dkim-ctxcache.c) ---- */

#define DKIM_CTXCACHE_SLOTS 8        /* keys per thread */

/* A context set up to verify RSA PKCS#1 v1.5 SHA-256 signatures with
 * pkey, from the calling thread's cache (made and cached on a miss, taking
 * a reference to pkey).  Borrowed: valid on this thread until its next
 * call; use it only for EVP_PKEY_verify().  NULL when pkey cannot be set
 * up for that. */
EVP_PKEY_CTX *dkim_rsa_verify_ctx(EVP_PKEY *pkey);

struct dkim_ctxcache_stats {
	uint64_t hits, misses;
	size_t used;                 /* slots holding a context */
};
/* The calling thread's counters. */
void dkim_ctxcache_get_stats(struct dkim_ctxcache_stats *stats_r);

/* ---- decoded public keys (dkim-keycache.c) ---- */

#define DKIM_KEYCACHE_SIZE 256       /* key records remembered, process-wide */

/* If the exact key record text record[0..len) is cached: its parsed flags
 * in *key_r (public_key NULL, never revoked) and its decoded key, with a
 * reference the caller drops with EVP_PKEY_free().  NULL on a miss.
 * Thread-safe. */
EVP_PKEY *dkim_keycache_get(const char *record, size_t len, struct dkim_key *key_r);
/* Remember that record[0..len) parses to key and decodes to pkey (the
 * cache takes its own reference; the caller keeps its own).  Revoked keys,
 * a NULL pkey and records longer than DKIM_MAX_KEY_RECORD are ignored, as
 * is a record already cached.  May evict the least recently used entry
 * (clock); a key still in use by a verifier stays alive through its
 * reference.  Thread-safe. */
void dkim_keycache_put(const char *record, size_t len, const struct dkim_key *key,
		       EVP_PKEY *pkey);

struct dkim_keycache_stats {
	uint64_t hits, misses, evictions;
	size_t entries;
};
/* Counters since start (or the last clear). */
void dkim_keycache_get_stats(struct dkim_keycache_stats *stats_r);
/* Drop every entry and zero the counters (tests; keys in use stay alive). */
void dkim_keycache_clear(void);

#endif
