/* DKIM (RFC 6376) verification and signing, with Ed25519-SHA256 (RFC 8463)
 * and the cryptographic rules of RFC 8301.
 *
 * Verification (port 25): create a verifier, feed it the message as it
 * arrives (header section and body, in chunks of any size, CRLF or bare LF
 * line ends), then dkim_verify_finish() looks up the keys through the
 * injectable DNS interface struct dkim_dns (answers immediate or later, as
 * with spf.h) and calls the done callback once with one result per
 * DKIM-Signature checked (at most DKIM_MAX_SIGNATURES, topmost first).
 *
 * Signing (queue hook, submission): dkim_sign_message() (or the streaming
 * create/feed/finish calls) computes relaxed/relaxed hashes and asks a
 * struct dkim_signer for the private-key operation, the narrow
 * sign(key_id, digest) interface of DESIGN.md's security architecture; the
 * signer may live in another process later without changing callers.
 *
 * The parsers (signature tag list, key record) and the canonicalisation
 * functions are public for `tern dns check`, the tests and the fuzzers. */
#ifndef TERN_MAILAUTH_DKIM_H
#define TERN_MAILAUTH_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct buf;

/* Limits on what a peer controls (signatures, key records, headers). */
#define DKIM_MAX_SIGNATURES 10       /* DKIM-Signature fields checked per message */
#define DKIM_MAX_TAGS 64             /* tags in one tag list */
#define DKIM_MAX_SIG_VALUE 16384     /* bytes of one DKIM-Signature value */
#define DKIM_MAX_KEY_RECORD 8192     /* bytes of one key TXT record */
#define DKIM_MAX_SIGNED_HEADERS 128  /* names in h= */
#define DKIM_MAX_HEADER_SECTION (1024 * 1024)  /* bytes of the header section kept */
#define DKIM_MAX_HEADER_FIELDS 2000  /* header fields considered */
#define DKIM_RSA_MIN_BITS 1024       /* RFC 8301 section 3.2 */
#define DKIM_RSA_MAX_BITS 8192       /* larger keys cost too much to check */
#define DKIM_FUTURE_ALLOWANCE 300    /* seconds a t= may lie in the future */

/* RFC 8601 section 2.7.1 result words, in the order of the enum. */
enum dkim_result {
	DKIM_RESULT_NONE,       /* no signature */
	DKIM_RESULT_PASS,
	DKIM_RESULT_FAIL,       /* bad signature or body hash, expired, weak */
	DKIM_RESULT_NEUTRAL,    /* an algorithm or key type we do not know */
	DKIM_RESULT_POLICY,     /* valid, but l= leaves unsigned content */
	DKIM_RESULT_TEMPERROR,  /* key lookup timed out / SERVFAIL */
	DKIM_RESULT_PERMERROR,  /* broken signature or key record, no key */
};

/* "none", "pass", "fail", ... */
const char *dkim_result_name(enum dkim_result r);

enum dkim_alg {
	DKIM_ALG_RSA_SHA256,
	DKIM_ALG_ED25519_SHA256,
	DKIM_ALG_RSA_SHA1,      /* parsed so it can be named; never valid (RFC 8301) */
	DKIM_ALG_UNKNOWN,
};

/* "rsa-sha256", "ed25519-sha256", "rsa-sha1", "unknown". */
const char *dkim_alg_name(enum dkim_alg alg);

enum dkim_canon {
	DKIM_CANON_SIMPLE,
	DKIM_CANON_RELAXED,
};

/* ---- parsers ---- */

/* A parsed DKIM-Signature (RFC 6376 section 3.5).  Strings are malloc'd,
 * NUL-terminated and hold only printable ASCII (VALCHAR); domain and
 * selector are checked to be DNS names (letters, digits, '-', '_', '.'). */
struct dkim_signature {
	enum dkim_alg alg;
	char *alg_text;              /* a= as written (lower case) */
	enum dkim_canon header_canon, body_canon;
	char *domain;                /* d= */
	char *selector;              /* s= */
	char *auid;                  /* i=, or "@" d= when absent */
	char **headers;              /* h= names, lower case, in order */
	size_t n_headers;
	uint8_t *body_hash;          /* bh= decoded */
	size_t body_hash_len;
	uint8_t *sig;                /* b= decoded */
	size_t sig_len;
	char *sig_text;              /* b= without whitespace (for header.b) */
	size_t b_start, b_end;       /* b='s value in the parsed text, from after
					'=' to ';' or the end: what section 3.7
					empties for the header hash */
	bool has_length;             /* l= present */
	uint64_t length;             /* l= (UINT64_MAX when it overflows) */
	bool has_timestamp, has_expiry;
	int64_t timestamp, expiry;   /* t=, x= */
};

/* Parse the value of a DKIM-Signature field (everything after the colon,
 * folding included).  Strict: duplicate tags, missing required tags
 * (v a b bh d h s), v other than 1, h= without "from", an i= outside d=,
 * x= before t=, q= without dns/txt, malformed base64 or numbers are
 * errors.  Unknown tags are ignored; an unknown a= is parsed as
 * DKIM_ALG_UNKNOWN.  Returns 0 and *sig_r (free with
 * dkim_signature_free()), or -1 with *error_r a static message. */
int dkim_signature_parse(const char *value, size_t len,
			 struct dkim_signature **sig_r, const char **error_r);
/* Free a parsed signature; *sig becomes NULL (NULL is ignored). */
void dkim_signature_free(struct dkim_signature **sig);

enum dkim_key_type {
	DKIM_KEY_RSA,
	DKIM_KEY_ED25519,
};

/* A parsed key record (RFC 6376 section 3.6.1, RFC 8463 section 4). */
struct dkim_key {
	enum dkim_key_type type;     /* k=, default rsa */
	bool revoked;                /* p= empty */
	uint8_t *public_key;         /* p= decoded: SubjectPublicKeyInfo or
					RSAPublicKey DER (rsa), 32 bytes (ed25519) */
	size_t public_key_len;
	bool testing;                /* t=y */
	bool strict;                 /* t=s: i= domain must equal d= */
	bool sha256_allowed;         /* h= absent or lists sha256 */
};

/* Parse one key TXT record (its strings joined).  Strict: v= must come
 * first and be DKIM1, k= must be rsa or ed25519, s= must include * or
 * email (a TLSRPT-only key is an error), p= is required and must be valid
 * base64 (whitespace allowed inside), an Ed25519 key must be 32 bytes.
 * Returns 0 and *key_r (free with dkim_key_free()), or -1 with *error_r. */
int dkim_key_parse(const char *record, size_t len, struct dkim_key **key_r,
		   const char **error_r);
/* Free a parsed key record; *key becomes NULL (NULL is ignored). */
void dkim_key_free(struct dkim_key **key);

/* ---- canonicalisation (RFC 6376 section 3.4) ---- */

/* Append the canonical form of one header field to out: name and value as
 * they appear in the message (value = after the colon, folding included,
 * without the final CRLF).  crlf adds the terminating CRLF (every field
 * but the DKIM-Signature being checked).  0, or -1 when out is full. */
int dkim_canon_header(enum dkim_canon canon, const char *name, size_t name_len,
		      const char *value, size_t value_len, bool crlf, struct buf *out);

struct dkim_body_canon;

/* Incremental body canonicaliser: feed the body in chunks of any size
 * (CRLF or bare LF; a bare LF counts as CRLF), then finish.  Each
 * canonical byte goes to emit (in runs).  limit caps the bytes emitted
 * (l=); UINT64_MAX for none.  Never fails. */
typedef void dkim_emit_fn(void *ctx, const char *data, size_t len);
struct dkim_body_canon *dkim_body_canon_create(enum dkim_canon canon, uint64_t limit,
					       dkim_emit_fn *emit, void *ctx);
/* Canonicalise the next len bytes of the body (emit may run). */
void dkim_body_canon_feed(struct dkim_body_canon *bc, const char *data, size_t len);
/* Flush the end of the body.  *total_r: the canonical body length without
 * the limit (so a caller sees whether l= covers everything). */
void dkim_body_canon_finish(struct dkim_body_canon *bc, uint64_t *total_r);
/* Free the canonicaliser; *bc becomes NULL. */
void dkim_body_canon_destroy(struct dkim_body_canon **bc);

/* ---- verification ---- */

enum dkim_dns_status {
	DKIM_DNS_OK,        /* count >= 0 records (0 = NODATA) */
	DKIM_DNS_NXDOMAIN,
	DKIM_DNS_TEMPFAIL,  /* timeout, SERVFAIL, ... */
};

/* One TXT answer, borrowed by the verifier only during the callback. */
struct dkim_dns_answer {
	enum dkim_dns_status status;
	size_t count;
	const char *const *strings;  /* each record's strings joined */
	const size_t *lengths;       /* byte lengths; NULL means strlen() */
};

typedef void dkim_dns_cb(void *query_ctx, const struct dkim_dns_answer *answer);

/* The DNS the verifier asks (same shape as struct spf_dns).  txt must call
 * cb exactly once with query_ctx, before it returns or later.  name has no
 * trailing dot. */
struct dkim_dns {
	void *ctx;
	void (*txt)(void *ctx, const char *name, dkim_dns_cb *cb, void *query_ctx);
	/* Optional: forget the outstanding question of query_ctx, whose cb must
	 * then never run.  Without it, dkim_verify_destroy() leaves the state
	 * alive until the answers arrive. */
	void (*cancel)(void *ctx, void *query_ctx);
};

struct dkim_verify_options {
	time_t now;                  /* 0: clock_now() */
	bool allow_partial_body;     /* l= short of the body: pass, not policy */
};

/* The result of one signature.  Strings are owned by the verifier and stay
 * valid until dkim_verify_destroy(); they hold no CR, LF or NUL and
 * domain/selector/alg/header_b only DNS or base64 characters, so they can
 * be written into Authentication-Results as they are.  When the signature
 * could not be parsed, domain and selector are its d= and s= if those are
 * well-formed names, else "", and auid, alg and header_b are "". */
struct dkim_sig_result {
	enum dkim_result result;
	const char *reason;          /* short static text, "" on pass */
	const char *domain;          /* d= */
	const char *selector;        /* s= */
	const char *auid;            /* i= ("" when unparsable) */
	const char *alg;             /* a= ("" when unparsable) */
	char header_b[9];            /* first 8 characters of b= */
	bool testing;                /* the key says t=y */
	bool body_truncated;         /* l= left part of the body unsigned */
};

struct dkim_outcome {
	size_t count;                /* 0: the message has no DKIM-Signature */
	const struct dkim_sig_result *results;  /* topmost signature first */
	size_t ignored;              /* signatures beyond DKIM_MAX_SIGNATURES */
};

typedef void dkim_done_cb(void *ctx, const struct dkim_outcome *outcome);

struct dkim_verify;

/* A verifier for one message; opts may be NULL. */
struct dkim_verify *dkim_verify_create(const struct dkim_verify_options *opts);
/* Feed the next bytes of the message (header section, empty line, body),
 * as received after SMTP dot-unstuffing. */
void dkim_verify_feed(struct dkim_verify *v, const char *data, size_t len);
/* The message is complete: look up the keys (in parallel) and call cb
 * exactly once, inside this call when every answer comes at once, or
 * later.  *outcome itself is valid during cb only; the results array it
 * points to stays valid until dkim_verify_destroy(), which cb may call.  dns must stay valid until cb has run or the verifier is
 * destroyed.  Call at most once. */
void dkim_verify_finish(struct dkim_verify *v, const struct dkim_dns *dns,
			dkim_done_cb *cb, void *ctx);
/* Free the verifier; a pending cb will not run (see dkim_dns.cancel).
 * *v becomes NULL; NULL is ignored. */
void dkim_verify_destroy(struct dkim_verify **v);

/* Append the RFC 8601 resinfo of one result to out, e.g.
 * "dkim=pass header.d=example.com header.s=sel header.a=rsa-sha256
 * header.b=AbCdEfGh" (with a comment holding the reason when not pass).
 * 0, or -1 when out is full. */
int dkim_result_format(const struct dkim_sig_result *r, struct buf *out);

/* ---- signing ---- */

/* The private-key operation.  data is the SHA-256 hash (32 bytes) of the
 * canonical signed header data: for DKIM_ALG_RSA_SHA256 the signer makes a
 * PKCS#1 v1.5 signature of that digest; for DKIM_ALG_ED25519_SHA256 it signs
 * the 32 bytes themselves with PureEdDSA (RFC 8463 section 3).  Append the
 * raw signature to sig_out; return 0, or -1 with *error_r. */
struct dkim_signer {
	void *ctx;
	int (*sign)(void *ctx, const char *key_id, enum dkim_alg alg,
		    const uint8_t *data, size_t len, struct buf *sig_out,
		    const char **error_r);
};

struct dkim_sign_request {
	const char *domain;          /* d= */
	const char *selector;        /* s= */
	enum dkim_alg alg;           /* RSA_SHA256 or ED25519_SHA256 */
	const char *key_id;          /* handed to signer->sign() */
	time_t timestamp;            /* t=; 0: clock_now() */
	uint32_t expire_after;       /* x= = t= + this; 0: no x= */
};

/* The header fields signed, in this order, each as often as it occurs, and
 * "from" once more (oversigned, so no From can be added). */
extern const char *const dkim_sign_headers[];

struct dkim_sign;

/* Start signing one message.  NULL with *error_r when the request is
 * unusable (bad domain or selector, unsupported algorithm). */
struct dkim_sign *dkim_sign_create(const struct dkim_sign_request *req,
				   const char **error_r);
/* Feed the next bytes of the message to sign (header section, empty
 * line, body; CRLF or bare LF line ends). */
void dkim_sign_feed(struct dkim_sign *s, const char *data, size_t len);
/* Append "DKIM-Signature: ...\r\n" (folded, ready to put on top of the
 * message) to header_out.  -1 with *error_r when the message has no From
 * (or more than one header section line too long), or the signer fails. */
int dkim_sign_finish(struct dkim_sign *s, const struct dkim_signer *signer,
		     struct buf *header_out, const char **error_r);
/* Free the signing state; *s becomes NULL (NULL is ignored). */
void dkim_sign_destroy(struct dkim_sign **s);
/* create + feed(msg) + finish + destroy. */
int dkim_sign_message(const struct dkim_sign_request *req, const struct dkim_signer *signer,
		      const char *msg, size_t len, struct buf *header_out,
		      const char **error_r);

/* A signer over OpenSSL keys held in this process: a small table from
 * key_id to EVP_PKEY. */
struct dkim_keyring;
/* An empty keyring. */
struct dkim_keyring *dkim_keyring_create(void);
/* Add a PEM private key (PKCS#8 or traditional RSA) under key_id.  RSA keys
 * must have at least DKIM_RSA_MIN_BITS.  0, or -1 with *error_r. */
int dkim_keyring_add_pem(struct dkim_keyring *kr, const char *key_id,
			 const char *pem, size_t len, const char **error_r);
/* Add an Ed25519 key from its 32-byte seed (RFC 8032 private key). */
int dkim_keyring_add_ed25519_seed(struct dkim_keyring *kr, const char *key_id,
				  const uint8_t seed[32], const char **error_r);
/* The signer interface over kr (valid while kr lives). */
struct dkim_signer dkim_keyring_signer(struct dkim_keyring *kr);
/* Free the keyring and its keys; *kr becomes NULL (NULL is ignored). */
void dkim_keyring_destroy(struct dkim_keyring **kr);

#endif
