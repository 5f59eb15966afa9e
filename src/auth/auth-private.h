/* Internals of auth/ shared between its files, the unit tests and the
 * fuzz target.  Not for protocol code: use auth.h. */
#ifndef TERN_AUTH_PRIVATE_H
#define TERN_AUTH_PRIVATE_H

#include "auth/auth.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_user;

#define AUTH_SCRAM_KEY_LEN 32          /* SHA-256 output */
#define AUTH_SCRAM_SALT_LEN 16
#define AUTH_SCRAM_MAX_ITERATIONS 10000000u

/* Hooks for tests and the fuzzer; all NULL in the server.
 *  user_get:     replaces store_user_get() for credential lookups.
 *  server_nonce: fixed SCRAM server nonce instead of 24 random bytes.
 *  dummy_hash:   the hash verified when the user is unknown (to spend the
 *                same time as a real check); default is a yescrypt hash. */
struct auth_hooks {
	int (*user_get)(struct store *store, const char *address,
			struct store_user *user_r, const char **error_r);
	const char *server_nonce;
	const char *dummy_hash;
};
extern struct auth_hooks auth_hooks;

/* SCRAM-SHA-256 keys (RFC 5802 section 3) of password with salt and
 * iterations: StoredKey = H(HMAC(SaltedPassword, "Client Key")),
 * ServerKey = HMAC(SaltedPassword, "Server Key").  0 or -1. */
int auth_scram_keys(const char *password, size_t password_len,
		    const unsigned char *salt, size_t salt_len, unsigned iterations,
		    unsigned char stored_key[AUTH_SCRAM_KEY_LEN],
		    unsigned char server_key[AUTH_SCRAM_KEY_LEN]);

/* Parsed SCRAM string form (see auth.h). */
struct auth_scram_cred {
	unsigned iterations;
	unsigned char salt[64];
	size_t salt_len;
	unsigned char stored_key[AUTH_SCRAM_KEY_LEN];
	unsigned char server_key[AUTH_SCRAM_KEY_LEN];
};
/* Parse the stored string form: 0, or -1 when malformed. */
int auth_scram_parse(const char *s, struct auth_scram_cred *cred_r);

/* HMAC-SHA-256 of data with key into out (32 bytes). */
void auth_hmac_sha256(const unsigned char *key, size_t key_len,
		      const void *data, size_t data_len,
		      unsigned char out[AUTH_SCRAM_KEY_LEN]);

/* Normalise an authentication identity: ASCII-lowercased copy (malloc'd),
 * or NULL when it is longer than 255 bytes, is not "local@domain" with
 * both parts non-empty, or holds a
 * control character, space or NUL. */
char *auth_username_normalize(const char *user, size_t len);

#endif
