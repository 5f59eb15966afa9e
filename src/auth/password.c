/* Password hashes: making yescrypt hashes, verifying every form Tern
 * accepts (crypt(3) families through libxcrypt, Argon2 through libargon2,
 * Dovecot's {SCHEME} prefixed forms), and SCRAM-SHA-256 keys.
 *
 * Invariants: a stored hash we cannot interpret gives -1, never a match;
 * digests are compared with CRYPTO_memcmp so timing does not reveal how
 * many leading bytes matched; crypt state lives on the heap (struct
 * crypt_data is ~32 KiB, too much for a pool thread's stack budget) and
 * is wiped after use since it held the password.
 * Dovecot schemes follow its password-scheme documentation: SSHA512 is
 * base64(SHA-512(password || salt) || salt), SHA512 is base64(SHA-512).
 * SCRAM keys follow RFC 5802 section 3 with SHA-256 (RFC 7677); the
 * password is used as given (no SASLprep, as Dovecot does). */
#include "auth/auth-private.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <argon2.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct auth_hooks auth_hooks;

/* crypt_rn(password, setting) compared with stored: 1, 0 or -1. */
static int password_crypt_verify(const char *password, const char *stored)
{
	if (stored[0] == '\0' || stored[0] == '*' || stored[0] == '!')
		return -1;   /* locked or disabled account markers */
	struct crypt_data *data = xcalloc(1, sizeof(*data));
	const char *out = crypt_rn(password, stored, data, sizeof(*data));
	int ret;
	if (out == NULL || out[0] == '*') {
		/* Unsupported setting, or a password crypt cannot take
		 * (longer than CRYPT_MAX_PASSPHRASE_SIZE): such a password
		 * can never have produced a valid hash. */
		ret = strlen(password) >= CRYPT_MAX_PASSPHRASE_SIZE ? 0 : -1;
	} else {
		size_t n = strlen(out);
		ret = n == strlen(stored) && CRYPTO_memcmp(out, stored, n) == 0;
	}
	OPENSSL_cleanse(data, sizeof(*data));
	free(data);
	return ret;
}

static int password_argon2_verify(const char *password, const char *stored, bool id)
{
	size_t len = strlen(password);
	int r = id ? argon2id_verify(stored, password, len) :
		     argon2i_verify(stored, password, len);
	if (r == ARGON2_OK)
		return 1;
	if (r == ARGON2_VERIFY_MISMATCH)
		return 0;
	return -1;
}

/* {SSHA512}, {SHA512} and friends: base64 of digest, then salt when
 * salted.  1, 0 or -1. */
static int password_digest_verify(const char *password, const char *stored,
				  const EVP_MD *md, bool salted)
{
	size_t dlen = (size_t)EVP_MD_get_size(md);
	struct buf raw;
	buf_init(&raw, BUF_UNLIMITED);
	int ret = -1;
	if (base64_decode(&raw, stored, strlen(stored)) < 0)
		goto out;
	if (salted ? raw.len < dlen : raw.len != dlen)
		goto out;
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int outlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL ||
	    EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, password, strlen(password)) != 1 ||
	    EVP_DigestUpdate(ctx, raw.data + dlen, raw.len - dlen) != 1 ||
	    EVP_DigestFinal_ex(ctx, digest, &outlen) != 1 || outlen != dlen) {
		EVP_MD_CTX_free(ctx);
		goto out;
	}
	EVP_MD_CTX_free(ctx);
	ret = CRYPTO_memcmp(digest, raw.data, dlen) == 0;
out:
	buf_free(&raw);
	return ret;
}

/* A bare hash, as made by crypt(3) or libargon2. */
static int password_verify_bare(const char *password, const char *stored)
{
	if (strncmp(stored, "$argon2id$", 10) == 0)
		return password_argon2_verify(password, stored, true);
	if (strncmp(stored, "$argon2i$", 9) == 0)
		return password_argon2_verify(password, stored, false);
	static const char *const crypt_prefixes[] = {
		"$y$", "$6$", "$5$", "$2b$", "$2y$", "$2a$",
	};
	for (size_t i = 0; i < sizeof(crypt_prefixes) / sizeof(crypt_prefixes[0]); i++) {
		if (strncmp(stored, crypt_prefixes[i], strlen(crypt_prefixes[i])) == 0)
			return password_crypt_verify(password, stored);
	}
	return -1;
}

int auth_password_verify(const char *password, const char *stored)
{
	if (password == NULL || stored == NULL)
		return -1;
	if (stored[0] != '{')
		return password_verify_bare(password, stored);

	const char *end = strchr(stored, '}');
	if (end == NULL)
		return -1;
	size_t n = (size_t)(end - stored - 1);
	const char *scheme = stored + 1;
	const char *rest = end + 1;
#define SCHEME_IS(name) (n == sizeof(name) - 1 && strncasecmp(scheme, name, n) == 0)
	if (SCHEME_IS("CRYPT") || SCHEME_IS("SHA512-CRYPT") || SCHEME_IS("SHA256-CRYPT") ||
	    SCHEME_IS("BLF-CRYPT"))
		return password_crypt_verify(password, rest);
	if (SCHEME_IS("ARGON2ID"))
		return strncmp(rest, "$argon2id$", 10) == 0 ?
			password_argon2_verify(password, rest, true) : -1;
	if (SCHEME_IS("ARGON2I"))
		return strncmp(rest, "$argon2i$", 9) == 0 ?
			password_argon2_verify(password, rest, false) : -1;
	if (SCHEME_IS("SSHA512"))
		return password_digest_verify(password, rest, EVP_sha512(), true);
	if (SCHEME_IS("SSHA256"))
		return password_digest_verify(password, rest, EVP_sha256(), true);
	if (SCHEME_IS("SHA512"))
		return password_digest_verify(password, rest, EVP_sha512(), false);
	if (SCHEME_IS("SHA256"))
		return password_digest_verify(password, rest, EVP_sha256(), false);
#undef SCHEME_IS
	return -1;
}

int auth_password_hash(const char *password, char **hash_r, const char **error_r)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	size_t len = strlen(password);
	if (len == 0 || len > AUTH_MAX_PASSWORD || len >= CRYPT_MAX_PASSPHRASE_SIZE) {
		*error_r = "password empty or too long";
		return -1;
	}
	/* count 0 = libxcrypt's default cost; NULL rbytes = its own RNG */
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof(setting)) == NULL) {
		*error_r = "crypt_gensalt failed for yescrypt";
		return -1;
	}
	struct crypt_data *data = xcalloc(1, sizeof(*data));
	const char *out = crypt_rn(password, setting, data, sizeof(*data));
	int ret = 0;
	if (out == NULL || out[0] == '*') {
		*error_r = "crypt failed for yescrypt";
		ret = -1;
	} else {
		*hash_r = xstrdup(out);
	}
	OPENSSL_cleanse(data, sizeof(*data));
	free(data);
	return ret;
}

/* ---- SCRAM-SHA-256 keys ---- */

void auth_hmac_sha256(const unsigned char *key, size_t key_len,
		      const void *data, size_t data_len,
		      unsigned char out[AUTH_SCRAM_KEY_LEN])
{
	unsigned int len = AUTH_SCRAM_KEY_LEN;
	if (HMAC(EVP_sha256(), key, (int)key_len, data, data_len, out, &len) == NULL)
		panic("HMAC-SHA-256 failed");
}

int auth_scram_keys(const char *password, size_t password_len,
		    const unsigned char *salt, size_t salt_len, unsigned iterations,
		    unsigned char stored_key[AUTH_SCRAM_KEY_LEN],
		    unsigned char server_key[AUTH_SCRAM_KEY_LEN])
{
	unsigned char salted[AUTH_SCRAM_KEY_LEN], client_key[AUTH_SCRAM_KEY_LEN];
	if (iterations == 0 || iterations > AUTH_SCRAM_MAX_ITERATIONS)
		return -1;
	/* SaltedPassword = Hi(password, salt, i), which is PBKDF2 (RFC 5802 2.2) */
	if (PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len,
			      (int)iterations, EVP_sha256(), sizeof(salted), salted) != 1)
		return -1;
	auth_hmac_sha256(salted, sizeof(salted), "Client Key", 10, client_key);
	auth_hmac_sha256(salted, sizeof(salted), "Server Key", 10, server_key);
	if (EVP_Digest(client_key, sizeof(client_key), stored_key, NULL, EVP_sha256(), NULL) != 1)
		return -1;
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return 0;
}

int auth_scram_make(const char *password, unsigned iterations, char **scram_r,
		    const char **error_r)
{
	unsigned char salt[AUTH_SCRAM_SALT_LEN];
	unsigned char stored_key[AUTH_SCRAM_KEY_LEN], server_key[AUTH_SCRAM_KEY_LEN];
	size_t len = strlen(password);
	if (len == 0 || len > AUTH_MAX_PASSWORD) {
		*error_r = "password empty or too long";
		return -1;
	}
	if (iterations < AUTH_SCRAM_ITERATIONS || iterations > AUTH_SCRAM_MAX_ITERATIONS) {
		*error_r = "SCRAM iteration count out of range";
		return -1;
	}
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		*error_r = "no random bytes for the SCRAM salt";
		return -1;
	}
	if (auth_scram_keys(password, len, salt, sizeof(salt), iterations,
			    stored_key, server_key) < 0) {
		*error_r = "SCRAM key derivation failed";
		return -1;
	}
	char *s = base64_encode_str(salt, sizeof(salt));
	char *st = base64_encode_str(stored_key, sizeof(stored_key));
	char *sv = base64_encode_str(server_key, sizeof(server_key));
	*scram_r = xasprintf("SCRAM-SHA-256$%u:%s$%s:%s", iterations, s, st, sv);
	free(s);
	free(st);
	free(sv);
	return 0;
}

int auth_scram_parse(const char *s, struct auth_scram_cred *cred_r)
{
	static const char prefix[] = "SCRAM-SHA-256$";
	memset(cred_r, 0, sizeof(*cred_r));
	if (s == NULL || strncmp(s, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	s += sizeof(prefix) - 1;
	char *end;
	if (*s < '1' || *s > '9')
		return -1;
	unsigned long it = strtoul(s, &end, 10);
	if (*end != ':' || it == 0 || it > AUTH_SCRAM_MAX_ITERATIONS)
		return -1;
	cred_r->iterations = (unsigned)it;
	const char *salt = end + 1;
	const char *dollar = strchr(salt, '$');
	if (dollar == NULL)
		return -1;
	struct buf raw;
	buf_init(&raw, sizeof(cred_r->salt));
	if (base64_decode(&raw, salt, (size_t)(dollar - salt)) < 0 || raw.len == 0) {
		buf_free(&raw);
		return -1;
	}
	memcpy(cred_r->salt, raw.data, raw.len);
	cred_r->salt_len = raw.len;
	buf_free(&raw);
	const char *keys = dollar + 1;
	const char *colon = strchr(keys, ':');
	if (colon == NULL ||
	    base64_decode_exact(keys, (size_t)(colon - keys), cred_r->stored_key,
				AUTH_SCRAM_KEY_LEN) < 0 ||
	    base64_decode_exact(colon + 1, strlen(colon + 1), cred_r->server_key,
				AUTH_SCRAM_KEY_LEN) < 0)
		return -1;
	return 0;
}

char *auth_username_normalize(const char *user, size_t len)
{
	if (len == 0 || len > 255)
		return NULL;
	const char *at = memrchr(user, '@', len);
	if (at == NULL || at == user || at == user + len - 1)
		return NULL;   /* "local@domain" with both parts present */
	char *out = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)user[i];
		if (c <= ' ' || c == 0x7f) {
			free(out);
			return NULL;
		}
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	out[len] = '\0';
	return out;
}
