/* Sender Rewriting Scheme, in the form libsrs2 and postsrsd use, so a
 * forwarded message's envelope sender belongs to us (SPF passes at the
 * destination) while a bounce can still find its way back:
 *
 *   user@example.com          -> SRS0=HHHH=TT=example.com=user@our.domain
 *   SRS0=HHHH=TT=d=u@hop.net  -> SRS1=GGGG=hop.net==HHHH=TT=d=u@our.domain
 *
 * HHHH is the first 4 characters of the base64 HMAC-SHA1 (key: the secret)
 * of the lowercased timestamp, domain and local part; TT is the day number
 * modulo 1024 in base32 (A-Z2-7).  Hashes are compared case-insensitively
 * (some MTAs lowercase local parts).  Several secrets may be given: the
 * first signs, any of them verifies, so a secret can be rotated out.
 *
 * Whether to rewrite is the caller's choice: never the null sender, and
 * usually not senders in our own domains. */
#ifndef TERN_MAIL_SRS_H
#define TERN_MAIL_SRS_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

#define SRS_HASH_LEN 4
#define SRS_MAX_AGE_DEFAULT 21          /* days */

enum srs_error {
	SRS_ERR_SYNTAX = -1,    /* not an address we can rewrite, or a malformed SRS address */
	SRS_ERR_NOT_SRS = -2,   /* srs_reverse: the local part is not SRS0/SRS1 */
	SRS_ERR_HASH = -3,      /* srs_reverse: no secret gives this hash (forged or mangled) */
	SRS_ERR_EXPIRED = -4,   /* srs_reverse: timestamp older than max_age_days */
	SRS_ERR_CONFIG = -5,    /* no secret, or an invalid our_domain */
};

/* Rewrite envelope sender "local@domain" for forwarding by our_domain,
 * signing with secrets[0] (secret_count >= 1, non-empty strings) and
 * today's timestamp from lib/clock.  An SRS0 address becomes SRS1 (the
 * original's hash and timestamp are kept); an SRS1 address keeps its first
 * hop and gets our hash.  Appends the new address to out.  Returns 0, or a
 * negative enum srs_error with *error_r: the null sender, a local part
 * that would need quoting, or a bad domain (out unchanged). */
int srs_forward(const char *const *secrets, size_t secret_count, const char *our_domain,
		const char *sender, struct buf *out, const char **error_r);

/* Reverse an SRS address (the recipient of a bounce coming back): SRS0
 * gives the original "local@domain" after checking the hash against each
 * secret and the timestamp against max_age_days (0 = SRS_MAX_AGE_DEFAULT);
 * SRS1 gives the SRS0 address at the first hop (hash checked; the
 * timestamp is checked there).  The domain after '@' of address is not
 * checked (the caller routed it here).  Appends to out; returns 0 or a
 * negative enum srs_error with *error_r (out unchanged). */
int srs_reverse(const char *const *secrets, size_t secret_count, const char *address,
		unsigned max_age_days, struct buf *out, const char **error_r);

/* Does the local part of addr start with SRS0 or SRS1 and a separator
 * ('=', '+' or '-'), case-insensitively?  Syntax only; no hash check. */
bool srs_is_srs(const char *addr);

#endif
