/* DKIM key management over the store's dkim_keys table (store/dkim-keys.h):
 * key generation, selector names, the DNS records to publish, and the
 * signer the server registers with the signing hook.
 *
 * Keys are made with OpenSSL EVP (RSA-2048, Ed25519) and kept as PKCS#8
 * PEM; the public half is the p= value of the key record (RFC 6376
 * section 3.6.1: SubjectPublicKeyInfo DER for RSA; RFC 8463 section 4:
 * the raw 32 bytes for Ed25519), in base64. */
#ifndef TERN_MAILAUTH_DKIM_MANAGE_H
#define TERN_MAILAUTH_DKIM_MANAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "mailauth/dkim.h"

struct buf;
struct store;

#define DKIM_RSA_KEYGEN_BITS 2048
#define DKIM_TXT_STRING_MAX 255     /* bytes of one character-string (RFC 1035 3.3) */

/* Make a new private key of type: 0 with *pem_r (PKCS#8 PEM) and
 * *public_r (base64 p= value), both malloc'd, or -1 with *error_r. */
int dkim_keygen(enum dkim_key_type type, char **pem_r, char **public_r, const char **error_r);

/* "rsa-sha256" / "ed25519-sha256" for a key type, and back (-1 when the
 * algorithm is not one Tern signs with). */
const char *dkim_key_type_algorithm(enum dkim_key_type type);
int dkim_key_type_from_algorithm(const char *algorithm, enum dkim_key_type *type_r);

/* The next unused selector base for the year of now (UTC): "t2026a", then
 * "t2026b", ... "t2026z", "t2026aa"...; a base is used when one of the n
 * existing selectors equals it or starts with it followed by '-'.
 * malloc'd. */
char *dkim_selector_next(time_t now, const char *const *existing, size_t n);

/* The key record text: "v=DKIM1; k=rsa; p=BASE64" (k=ed25519 for Ed25519). */
int dkim_record_text(enum dkim_key_type type, const char *public_b64, struct buf *out);

/* The record as one zone-file line ready to paste, ending in "\n":
 *   SELECTOR._domainkey.DOMAIN. IN TXT ( "part1" "part2" )
 * with the text split into strings of at most DKIM_TXT_STRING_MAX bytes.
 * 0, or -1 when out is full. */
int dkim_record_zone_line(const char *selector, const char *domain, enum dkim_key_type type,
			  const char *public_b64, struct buf *out);

/* Does the published record (its strings joined) carry this key: a valid
 * key record of the same type whose p= decodes to the same bytes? */
bool dkim_record_matches(const char *record, size_t len, enum dkim_key_type type,
			 const char *public_b64);

/* ---- the signer over the store's active keys ---- */

struct dkim_store_signer;

/* A signer reading the active keys of store (which must outlive it). */
struct dkim_store_signer *dkim_store_signer_create(struct store *store);
/* Free it; *s becomes NULL (NULL is ignored). */
void dkim_store_signer_destroy(struct dkim_store_signer **s);

/* Append one DKIM-Signature field per active key of domain (d=domain;
 * RSA first, then Ed25519) to out; nothing when the domain has no active
 * key.  The keys are reloaded from the store whenever the set of active
 * keys changed (one small read per call compares it), so `tern dkim`
 * commands take effect without a restart.  Thread-safe: signing runs
 * outside any lock.  A key that fails is logged and left out.  Returns
 * the number of signatures added (>= 0), or -1 with *error_r when the
 * domain has keys but none could sign (a message without From, say). */
int dkim_store_signer_sign(struct dkim_store_signer *s, const char *domain, const char *data,
			   size_t len, struct buf *out, const char **error_r);

/* ARC-seal a forwarded message for domain (mailauth/arc.h) with its
 * active RSA key (what every ARC verifier knows; Ed25519 only when the
 * domain has no RSA key): append the set's three fields to out.  0 when
 * the domain has no active key (nothing appended), 1 when sealed, -1 with
 * *error_r. */
int dkim_store_signer_seal(struct dkim_store_signer *s, const char *domain, const char *data,
			   size_t len, const char *auth_results, struct buf *out,
			   const char **error_r);

#endif
