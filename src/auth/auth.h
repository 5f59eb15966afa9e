/* Credentials and authentication: password hashes, SCRAM keys, SASL
 * server mechanisms, and the per-IP penalty table shared by SMTP, IMAP and
 * POP3.  This is the narrow interface behind which credential checks live
 * (DESIGN.md, security architecture): protocol code hands it bytes from the
 * client and gets back bytes to send and a verdict, never a hash.
 *
 * Password hash forms accepted by password_verify():
 *   $y$...  yescrypt (what password_hash() makes), $6$ SHA-512-crypt,
 *   $2b$/$2y$ bcrypt, $argon2id$ and Dovecot's {SCHEME} prefixes:
 *   {SHA512-CRYPT} {BLF-CRYPT} {ARGON2ID} {SSHA512} {CRYPT}.
 * SCRAM string form (stored next to the hash, see auth_scram_make()):
 *   "SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>" */
#ifndef TERN_AUTH_H
#define TERN_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct store;
struct threadpool;

#define AUTH_SCRAM_ITERATIONS 4096   /* RFC 7677 minimum; what Dovecot uses */
#define AUTH_MAX_PASSWORD 1024

/* New yescrypt hash of password (malloc'd). 0 or <0 with *error_r. */
int auth_password_hash(const char *password, char **hash_r, const char **error_r);
/* 1 = matches, 0 = does not, <0 = unsupported or malformed stored hash.
 * Slow on purpose: run it off the event loop (auth_sasl does). */
int auth_password_verify(const char *password, const char *stored);
/* SCRAM-SHA-256 keys for password with a fresh salt (malloc'd string form). */
int auth_scram_make(const char *password, unsigned iterations, char **scram_r,
		    const char **error_r);

/* Parse one line of a Dovecot passwd-file ("user:{SCHEME}hash:uid:gid:...
 * :extra" with optional userdb_quota_rule=*:storage=NM in extra fields).
 * Returns 1 with malloc'd *user_r, *hash_r and *quota_bytes_r (0 = none),
 * 0 for a blank or comment line, <0 with *error_r for a malformed line. */
int auth_dovecot_passwd_line(const char *line, char **user_r, char **hash_r,
			     int64_t *quota_bytes_r, const char **error_r);

/* ---- SASL server (RFC 4422): PLAIN (RFC 4616), LOGIN, SCRAM-SHA-256 (RFC 7677) ---- */

enum auth_sasl_status {
	AUTH_SASL_CONTINUE,   /* send the challenge (out) and feed the next response */
	AUTH_SASL_OK,         /* authenticated as *user (user_id, address) */
	AUTH_SASL_FAIL,       /* wrong credentials: count a failure, reply 535 */
	AUTH_SASL_ERROR,      /* malformed exchange or unknown mechanism: reply 501 */
};

struct auth_sasl;

struct auth_result {
	enum auth_sasl_status status;
	const unsigned char *out;   /* challenge or SCRAM server-final (raw, not base64) */
	size_t out_len;
	int64_t user_id;            /* with AUTH_SASL_OK */
	const char *address;        /* with AUTH_SASL_OK; with AUTH_SASL_FAIL the user name
				       tried (normalised) or NULL, for logs; valid while
				       the auth_sasl lives */
	const char *reason;         /* for logs with FAIL/ERROR */
};

typedef void auth_sasl_cb(void *ctx, const struct auth_result *result);

/* Mechanisms advertised, space-separated ("PLAIN LOGIN SCRAM-SHA-256"). */
const char *auth_sasl_mechanisms(void);
/* Start an exchange.  mech is matched case-insensitively; returns NULL
 * for an unknown mechanism.  The store is used to look up credentials;
 * slow verification runs on pool, and cb is called on base.  With base
 * NULL, cb runs on the pool thread; with pool NULL, everything runs inline
 * and cb is called before auth_sasl_step returns (tests, tools). */
struct auth_sasl *auth_sasl_begin(const char *mech, struct store *store,
				  struct threadpool *pool, struct event_base *base);
/* Feed one client response (decoded from base64; initial response
 * included: pass NULL/0 for "no initial response" and empty for "=").
 * cb is called exactly once for this step, possibly before auth_sasl_step
 * returns.  The auth_sasl must stay alive until cb has run. */
void auth_sasl_step(struct auth_sasl *sasl, const unsigned char *in, size_t in_len,
		    bool have_input, auth_sasl_cb *cb, void *ctx);
void auth_sasl_free(struct auth_sasl **sasl);

/* ---- per-IP penalty table (thread-safe, one per process) ---- */

/* Delay (milliseconds) to impose on the next authentication attempt from ip:
 * 0 after no recent failures, then growing (250 ms doubling, capped at 15 s)
 * with failures in the last 15 minutes. */
unsigned auth_penalty_delay_ms(const char *ip);
void auth_penalty_fail(const char *ip);
void auth_penalty_success(const char *ip);

#endif
