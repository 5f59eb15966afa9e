/* auth/: password schemes with known vectors, SCRAM key derivation (RFC
 * 7677 example) and full exchanges against a client written here with
 * OpenSSL, PLAIN and LOGIN, the thread pool + event_base path, Dovecot
 * passwd-file lines, the penalty table, and (at the end) the same
 * mechanisms against a real temporary store. */
#include "unit.h"
#include "auth/auth-private.h"
#include "lib/clock.h"
#include "lib/threadpool.h"
#include "store/store.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- passwords ---- */

static void test_password_yescrypt(void)
{
	char *hash = NULL;
	const char *error = NULL;
	CHECK(auth_password_hash("correct horse", &hash, &error) == 0);
	CHECK(hash != NULL && strncmp(hash, "$y$", 3) == 0);
	CHECK(auth_password_verify("correct horse", hash) == 1);
	CHECK(auth_password_verify("correct horsE", hash) == 0);
	CHECK(auth_password_verify("", hash) == 0);
	char *hash2 = NULL;
	CHECK(auth_password_hash("correct horse", &hash2, &error) == 0);
	CHECK(hash2 != NULL && strcmp(hash, hash2) != 0);   /* fresh salt */
	free(hash);
	free(hash2);
	CHECK(auth_password_hash("", &hash, &error) < 0);
}

struct vector {
	const char *stored;
	int expect_secret;   /* verify("secret") */
};

static const struct vector vectors[] = {
	/* openssl passwd -6 / -5 -salt abcdefgh secret */
	{ "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.", 1 },
	{ "$5$abcdefgh$gruCpC7VkOTspMQTTSAR8mtlO9Upms.fwqE5y16JVM.", 1 },
	/* libxcrypt crypt_gensalt("$2b$") + crypt("secret") */
	{ "$2b$05$B6v16Po/DztEtwtk8LUVTO6SVJ8GQVueO1gndXdNVeh4qirfR184K", 1 },
	{ "$y$j9T$6MqeCjr8t.KcF.dd3jMBw0$LInF7dWa.APzeZgTYEqQBEuLtt0MUtNi3UTcvEDiFF7", 1 },
	/* argon2 somesalt16bytes! -id / -i -e  (Debian's argon2 CLI) */
	{ "$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQxNmJ5dGVzIQ$ovDRgbyijbYx7wgyaRpbsa7ULGezb0d0Vsrzv7zEXrA", 1 },
	{ "$argon2i$v=19$m=4096,t=3,p=1$c29tZXNhbHQxNmJ5dGVzIQ$pj0LOaFT406faMlra+2Y5vVXPMtVXLLDs5cNsb/QOBU", 1 },
	/* the argon2id hash of "secret\n" */
	{ "$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQxNmJ5dGVzIQ$mdJUlbgX0YKDOwwmftgjilrCtmYAheVm8VfgtC2jhIk", 0 },
	/* Dovecot forms */
	{ "{SHA512-CRYPT}$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.", 1 },
	{ "{sha512-crypt}$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.", 1 },
	{ "{SHA256-CRYPT}$5$abcdefgh$gruCpC7VkOTspMQTTSAR8mtlO9Upms.fwqE5y16JVM.", 1 },
	{ "{CRYPT}$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.", 1 },
	{ "{BLF-CRYPT}$2b$05$B6v16Po/DztEtwtk8LUVTO6SVJ8GQVueO1gndXdNVeh4qirfR184K", 1 },
	{ "{ARGON2ID}$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQxNmJ5dGVzIQ$ovDRgbyijbYx7wgyaRpbsa7ULGezb0d0Vsrzv7zEXrA", 1 },
	{ "{Argon2I}$argon2i$v=19$m=4096,t=3,p=1$c29tZXNhbHQxNmJ5dGVzIQ$pj0LOaFT406faMlra+2Y5vVXPMtVXLLDs5cNsb/QOBU", 1 },
	/* openssl dgst: base64(SHA-512("secret" "SALT1234") "SALT1234") etc. */
	{ "{SSHA512}JbcNrBrlAe1IOqE1Gr3ZDy2f8/EK7zjUUsDtsNKcEVzBtlcYxRww1j6OhC/SiQhyw/UwzdSPLvDXjJkDCEtDj1NBTFQxMjM0", 1 },
	{ "{SSHA256}MiBKWPJ1JQtCfn9IyOCVrjIVaDjvjq7QEJ2338bLy6lOYUNs", 1 },
	{ "{SHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDufKRpayrW/isg==", 1 },
	/* unsupported or malformed: -1 */
	{ "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==", -1 },
	{ "{PLAIN}secret", -1 },
	{ "secret", -1 },
	{ "", -1 },
	{ "{SSHA512", -1 },
	{ "{SSHA512}not base64!", -1 },
	{ "{SHA512}c2hvcnQ=", -1 },
	{ "{ARGON2ID}$6$abcdefgh$x", -1 },
	{ "$argon2id$v=19$m=4096,t=3,p=1$c29t$", -1 },
	{ "$6$", 0 },         /* crypt makes "$6$$..." of it: never a match */
	{ "$1$abc$def", -1 },
};

static void test_password_vectors(void)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		int r = auth_password_verify("secret", vectors[i].stored);
		if (r != vectors[i].expect_secret)
			fprintf(stderr, "  vector %zu: got %d for %s\n", i, r, vectors[i].stored);
		CHECK(r == vectors[i].expect_secret);
		if (vectors[i].expect_secret == 1)
			CHECK(auth_password_verify("Secret", vectors[i].stored) == 0);
	}
}

/* {SSHA512} made here with OpenSSL, salt of an odd length */
static void test_password_ssha_computed(void)
{
	unsigned char raw[64 + 5];
	const char *salt = "\x01\x02zq\xff";
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha512(), NULL);
	EVP_DigestUpdate(ctx, "hunter2", 7);
	EVP_DigestUpdate(ctx, salt, 5);
	EVP_DigestFinal_ex(ctx, raw, NULL);
	EVP_MD_CTX_free(ctx);
	memcpy(raw + 64, salt, 5);
	unsigned char b64[128];
	EVP_EncodeBlock(b64, raw, sizeof(raw));
	char stored[160];
	snprintf(stored, sizeof(stored), "{ssha512}%s", b64);
	CHECK(auth_password_verify("hunter2", stored) == 1);
	CHECK(auth_password_verify("hunter3", stored) == 0);
	CHECK(auth_password_verify("hunter", stored) == 0);
}

/* ---- SCRAM key derivation ---- */

static void b64(const unsigned char *p, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

static void test_scram_rfc7677(void)
{
	/* RFC 7677 section 3 example exchange */
	unsigned char salt[16];
	CHECK(EVP_DecodeBlock(salt, (const unsigned char *)"W22ZaJ0SNY7soEsUEjb6gQ==", 24) == 18);
	unsigned char stored[32], server[32];
	CHECK(auth_scram_keys("pencil", 6, salt, 16, 4096, stored, server) == 0);
	const char *am = "n=user,r=rOprNGfwEbeRWgbNEkqO,"
		"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
	unsigned char sig[32];
	char out[64];
	auth_hmac_sha256(server, 32, am, strlen(am), sig);
	b64(sig, 32, out);
	CHECK_STR(out, "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
	/* the client's proof from the RFC, rebuilt from StoredKey: the
	 * proof XOR ClientSignature must hash to StoredKey */
	unsigned char proof[33], csig[32], ck[32], h[32];
	CHECK(EVP_DecodeBlock(proof, (const unsigned char *)
			      "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", 44) == 33);
	auth_hmac_sha256(stored, 32, am, strlen(am), csig);
	for (int i = 0; i < 32; i++)
		ck[i] = proof[i] ^ csig[i];
	EVP_Digest(ck, 32, h, NULL, EVP_sha256(), NULL);
	CHECK(memcmp(h, stored, 32) == 0);
}

static void test_scram_make_parse(void)
{
	char *s = NULL;
	const char *error = NULL;
	CHECK(auth_scram_make("pencil", AUTH_SCRAM_ITERATIONS, &s, &error) == 0);
	CHECK(s != NULL && strncmp(s, "SCRAM-SHA-256$4096:", 19) == 0);
	struct auth_scram_cred cred;
	CHECK(auth_scram_parse(s, &cred) == 0);
	CHECK(cred.iterations == 4096 && cred.salt_len == 16);
	unsigned char stored[32], server[32];
	CHECK(auth_scram_keys("pencil", 6, cred.salt, cred.salt_len, 4096, stored, server) == 0);
	CHECK(memcmp(stored, cred.stored_key, 32) == 0);
	CHECK(memcmp(server, cred.server_key, 32) == 0);
	char *s2 = NULL;
	CHECK(auth_scram_make("pencil", AUTH_SCRAM_ITERATIONS, &s2, &error) == 0);
	CHECK(s2 != NULL && strcmp(s, s2) != 0);
	free(s);
	free(s2);
	CHECK(auth_scram_make("pencil", 10, &s, &error) < 0);
	CHECK(auth_scram_parse("SCRAM-SHA-256$0:AAAA$AAAA:AAAA", &cred) < 0);
	CHECK(auth_scram_parse("SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==$x:y", &cred) < 0);
	CHECK(auth_scram_parse("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA", &cred) < 0);
}

/* ---- SASL exchanges with a stub credential lookup ---- */

#define TEST_USER "alice@example.org"
#define TEST_PASS "correct horse"

static char *stub_hash, *stub_scram;
static char last_lookup[300];

/* Fills u with strdup'd fields, which the sasl module releases with
 * store_user_clear(). */
static int stub_user_get(struct store *store, const char *address, struct store_user *u,
			 const char **error_r)
{
	(void)store;
	snprintf(last_lookup, sizeof(last_lookup), "%s", address);
	if (strcmp(address, "broken@example.org") == 0) {
		*error_r = "database on fire";
		return -1;
	}
	bool noscram = strcmp(address, "imported@example.org") == 0;
	if (strcmp(address, TEST_USER) != 0 && !noscram)
		return 0;
	memset(u, 0, sizeof(*u));
	u->id = noscram ? 8 : 7;
	u->address = strdup(address);
	u->password_hash = strdup(stub_hash);
	u->scram_sha256 = noscram ? NULL : strdup(stub_scram);
	return 1;
}

struct capture {
	int calls;
	enum auth_sasl_status status;
	char out[600];
	size_t out_len;
	int64_t user_id;
	char address[300];
	char reason[200];
	pthread_t thread;
};

static void capture_cb(void *ctx, const struct auth_result *r)
{
	struct capture *c = ctx;
	c->calls++;
	c->status = r->status;
	c->out_len = r->out_len < sizeof(c->out) - 1 ? r->out_len : sizeof(c->out) - 1;
	memcpy(c->out, r->out, c->out_len);
	c->out[c->out_len] = '\0';
	c->thread = pthread_self();
	if (r->status == AUTH_SASL_OK) {
		c->user_id = r->user_id;
		snprintf(c->address, sizeof(c->address), "%s", r->address);
	}
	snprintf(c->reason, sizeof(c->reason), "%s", r->reason != NULL ? r->reason : "");
}

/* One synchronous step (pool NULL): returns the status. */
static enum auth_sasl_status step(struct auth_sasl *s, const void *in, size_t len,
				  bool have, struct capture *c)
{
	int before = c->calls;
	auth_sasl_step(s, in, len, have, capture_cb, c);
	CHECK(c->calls == before + 1);
	return c->status;
}

static enum auth_sasl_status plain_once(const void *msg, size_t len, struct capture *c)
{
	struct auth_sasl *s = auth_sasl_begin("plain", NULL, NULL, NULL);
	memset(c, 0, sizeof(*c));
	enum auth_sasl_status st = step(s, msg, len, true, c);
	auth_sasl_free(&s);
	CHECK(s == NULL);
	return st;
}

#define PLAIN(lit) plain_once(lit, sizeof(lit) - 1, &c)

static void test_plain(void)
{
	struct capture c;
	CHECK_STR(auth_sasl_mechanisms(), "PLAIN LOGIN SCRAM-SHA-256");
	CHECK(auth_sasl_begin("CRAM-MD5", NULL, NULL, NULL) == NULL);

	CHECK(PLAIN("\0alice@example.org\0correct horse") == AUTH_SASL_OK);
	CHECK(c.user_id == 7);
	CHECK_STR(c.address, TEST_USER);
	CHECK(PLAIN("\0Alice@Example.ORG\0correct horse") == AUTH_SASL_OK);
	CHECK_STR(last_lookup, TEST_USER);
	CHECK(PLAIN("alice@example.org\0alice@example.org\0correct horse") == AUTH_SASL_OK);
	CHECK(PLAIN("\0alice@example.org\0correct horsE") == AUTH_SASL_FAIL);
	CHECK_STR(c.reason, "wrong password");
	CHECK(PLAIN("\0bob@example.org\0correct horse") == AUTH_SASL_FAIL);
	CHECK_STR(c.reason, "unknown user");
	CHECK(PLAIN("\0alice\0correct horse") == AUTH_SASL_FAIL);
	CHECK(PLAIN("\0broken@example.org\0x") == AUTH_SASL_FAIL);
	CHECK(strstr(c.reason, "database on fire") != NULL);
	CHECK(PLAIN("bob@example.org\0alice@example.org\0correct horse") == AUTH_SASL_FAIL);
	CHECK(PLAIN("alice@example.org correct horse") == AUTH_SASL_ERROR);
	CHECK(PLAIN("\0alice@example.org") == AUTH_SASL_ERROR);
	CHECK(PLAIN("\0alice@example.org\0correct\0horse") == AUTH_SASL_ERROR);
	CHECK(PLAIN("\0alice@example.org\0") == AUTH_SASL_ERROR);
	CHECK(PLAIN("\0\0correct horse") == AUTH_SASL_ERROR);
	CHECK(plain_once("", 0, &c) == AUTH_SASL_ERROR);

	/* length caps: 255 / 255 / 1024 */
	char big[1400];
	memset(big, 'a', sizeof(big));
	big[0] = '\0';
	memcpy(big + 1, "alice@example.org", 17);
	big[18] = '\0';
	CHECK(plain_once(big, 19 + 1024, &c) == AUTH_SASL_FAIL);   /* 1024: allowed */
	CHECK(plain_once(big, 19 + 1025, &c) == AUTH_SASL_ERROR);
	memset(big, 'a', sizeof(big));
	big[256] = '\0';
	big[300] = '\0';
	CHECK(plain_once(big, 310, &c) == AUTH_SASL_ERROR);        /* authzid 256 */

	/* no initial response: empty challenge, then the message */
	struct auth_sasl *s = auth_sasl_begin("PLAIN", NULL, NULL, NULL);
	memset(&c, 0, sizeof(c));
	CHECK(step(s, NULL, 0, false, &c) == AUTH_SASL_CONTINUE);
	CHECK(c.out_len == 0);
	CHECK(step(s, "\0alice@example.org\0correct horse", 32, true, &c) == AUTH_SASL_OK);
	CHECK(step(s, "x", 1, true, &c) == AUTH_SASL_ERROR);   /* finished */
	auth_sasl_free(&s);
}

static void test_login(void)
{
	struct capture c;
	memset(&c, 0, sizeof(c));
	struct auth_sasl *s = auth_sasl_begin("LOGIN", NULL, NULL, NULL);
	CHECK(step(s, NULL, 0, false, &c) == AUTH_SASL_CONTINUE);
	CHECK_STR(c.out, "Username:");
	CHECK(step(s, TEST_USER, strlen(TEST_USER), true, &c) == AUTH_SASL_CONTINUE);
	CHECK_STR(c.out, "Password:");
	CHECK(step(s, TEST_PASS, strlen(TEST_PASS), true, &c) == AUTH_SASL_OK);
	CHECK_STR(c.address, TEST_USER);
	auth_sasl_free(&s);

	/* user name as initial response; a bad name is still asked for a password */
	s = auth_sasl_begin("login", NULL, NULL, NULL);
	CHECK(step(s, "nobody", 6, true, &c) == AUTH_SASL_CONTINUE);
	CHECK_STR(c.out, "Password:");
	CHECK(step(s, TEST_PASS, strlen(TEST_PASS), true, &c) == AUTH_SASL_FAIL);
	auth_sasl_free(&s);

	s = auth_sasl_begin("LOGIN", NULL, NULL, NULL);
	CHECK(step(s, TEST_USER, strlen(TEST_USER), true, &c) == AUTH_SASL_CONTINUE);
	CHECK(step(s, "pass\0word", 9, true, &c) == AUTH_SASL_ERROR);
	auth_sasl_free(&s);

	s = auth_sasl_begin("LOGIN", NULL, NULL, NULL);
	CHECK(step(s, "", 0, true, &c) == AUTH_SASL_ERROR);
	auth_sasl_free(&s);
}

/* A SCRAM-SHA-256 client written with OpenSSL (RFC 5802 section 3). */
struct scram_client {
	char first_bare[300];
	char final_wo_proof[600];
	char final_msg[700];
	unsigned char server_sig[32];
};

static int scram_client_final(struct scram_client *cl, const char *gs2, const char *password,
			      const char *server_first)
{
	const char *r = strstr(server_first, "r=");
	const char *s = strstr(server_first, ",s=");
	const char *i = strstr(server_first, ",i=");
	if (r != server_first || s == NULL || i == NULL)
		return -1;
	char nonce[300], salt64[100];
	snprintf(nonce, sizeof(nonce), "%.*s", (int)(s - r - 2), r + 2);
	snprintf(salt64, sizeof(salt64), "%.*s", (int)(i - s - 3), s + 3);
	int iter = atoi(i + 3);
	unsigned char salt[80];
	int slen = EVP_DecodeBlock(salt, (unsigned char *)salt64, (int)strlen(salt64));
	slen -= (salt64[strlen(salt64) - 1] == '=') + (salt64[strlen(salt64) - 2] == '=');
	unsigned char salted[32], ck[32], sk[32], stored[32], csig[32], proof[32];
	PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, slen, iter, EVP_sha256(),
			  32, salted);
	unsigned int l = 32;
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key", 10, ck, &l);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Server Key", 10, sk, &l);
	EVP_Digest(ck, 32, stored, NULL, EVP_sha256(), NULL);
	char gs2b64[64];
	b64((const unsigned char *)gs2, strlen(gs2), gs2b64);
	snprintf(cl->final_wo_proof, sizeof(cl->final_wo_proof), "c=%s,r=%s", gs2b64, nonce);
	char am[1400];
	snprintf(am, sizeof(am), "%s,%s,%s", cl->first_bare, server_first, cl->final_wo_proof);
	HMAC(EVP_sha256(), stored, 32, (unsigned char *)am, strlen(am), csig, &l);
	for (int k = 0; k < 32; k++)
		proof[k] = ck[k] ^ csig[k];
	HMAC(EVP_sha256(), sk, 32, (unsigned char *)am, strlen(am), cl->server_sig, &l);
	char p64[64];
	b64(proof, 32, p64);
	snprintf(cl->final_msg, sizeof(cl->final_msg), "%s,p=%s", cl->final_wo_proof, p64);
	return 0;
}

/* Run an exchange; returns the final status. */
static enum auth_sasl_status scram_run(const char *gs2, const char *user_attr,
				       const char *password, char *server_first_r,
				       struct capture *c)
{
	struct scram_client cl;
	char first[400];
	snprintf(cl.first_bare, sizeof(cl.first_bare), "n=%s,r=fyko+d2lbbFgONRv9qkxdawL", user_attr);
	snprintf(first, sizeof(first), "%s%s", gs2, cl.first_bare);
	struct auth_sasl *s = auth_sasl_begin("scram-sha-256", NULL, NULL, NULL);
	memset(c, 0, sizeof(*c));
	enum auth_sasl_status st = step(s, first, strlen(first), true, c);
	if (st == AUTH_SASL_CONTINUE) {
		if (server_first_r != NULL)
			strcpy(server_first_r, c->out);
		CHECK(scram_client_final(&cl, gs2, password, c->out) == 0);
		st = step(s, cl.final_msg, strlen(cl.final_msg), true, c);
		if (st == AUTH_SASL_OK) {
			char v[64];
			b64(cl.server_sig, 32, v);
			CHECK(strncmp(c->out, "v=", 2) == 0);
			CHECK_STR(c->out + 2, v);
		}
	}
	auth_sasl_free(&s);
	return st;
}

static void test_scram_exchange(void)
{
	struct capture c;
	char sf[600], sf2[600];
	CHECK(scram_run("n,,", TEST_USER, TEST_PASS, sf, &c) == AUTH_SASL_OK);
	CHECK(c.user_id == 7);
	CHECK_STR(c.address, TEST_USER);
	/* r=client nonce + 32 base64 chars of 24 random bytes, s=, i=4096 */
	CHECK(strncmp(sf, "r=fyko+d2lbbFgONRv9qkxdawL", 26) == 0);
	CHECK(strstr(sf, ",s=") - sf == 26 + 32);
	CHECK(strstr(sf, ",i=4096") != NULL);
	CHECK(scram_run("y,,", TEST_USER, TEST_PASS, NULL, &c) == AUTH_SASL_OK);
	CHECK(scram_run("n,a=alice@example.org,", TEST_USER, TEST_PASS, NULL, &c) == AUTH_SASL_OK);
	CHECK(scram_run("n,a=bob@example.org,", TEST_USER, TEST_PASS, NULL, &c) == AUTH_SASL_FAIL);
	CHECK(scram_run("n,,", TEST_USER, "wrong", NULL, &c) == AUTH_SASL_FAIL);
	CHECK_STR(c.reason, "wrong password");

	/* unknown user: same-looking exchange, stable fake salt, fails at the end */
	CHECK(scram_run("n,,", "nobody@example.org", TEST_PASS, sf, &c) == AUTH_SASL_FAIL);
	CHECK_STR(c.reason, "unknown user");
	CHECK(scram_run("n,,", "nobody@example.org", "x", sf2, &c) == AUTH_SASL_FAIL);
	CHECK(strcmp(strstr(sf, ",s="), strstr(sf2, ",s=")) == 0);
	CHECK(scram_run("n,,", "other@example.org", "x", sf2, &c) == AUTH_SASL_FAIL);
	CHECK(strcmp(strstr(sf, ",s="), strstr(sf2, ",s=")) != 0);
	/* imported from Dovecot, no SCRAM keys: fails the same way */
	CHECK(scram_run("n,,", "imported@example.org", TEST_PASS, NULL, &c) == AUTH_SASL_FAIL);
	CHECK_STR(c.reason, "user has no SCRAM keys");

	/* saslname escapes reach the lookup decoded */
	CHECK(scram_run("n,,", "a=2Cb=3Dc@example.org", "x", NULL, &c) == AUTH_SASL_FAIL);
	CHECK_STR(last_lookup, "a,b=c@example.org");
	CHECK(scram_run("n,,", "a=2Xb@example.org", "x", NULL, &c) == AUTH_SASL_ERROR);
	CHECK(scram_run("n,,", "alice", "x", NULL, &c) == AUTH_SASL_FAIL);
	CHECK(scram_run("p=tls-unique,,", TEST_USER, TEST_PASS, NULL, &c) == AUTH_SASL_ERROR);
	CHECK(strstr(c.reason, "channel binding") != NULL);
	CHECK(scram_run("x,,", TEST_USER, TEST_PASS, NULL, &c) == AUTH_SASL_ERROR);
	CHECK(scram_run("n,", TEST_USER, TEST_PASS, NULL, &c) == AUTH_SASL_ERROR);
}

/* Hand-made malformed messages. */
static enum auth_sasl_status scram_msgs(const char *first, const char *final, struct capture *c)
{
	struct auth_sasl *s = auth_sasl_begin("SCRAM-SHA-256", NULL, NULL, NULL);
	memset(c, 0, sizeof(*c));
	enum auth_sasl_status st = step(s, NULL, 0, false, c);
	CHECK(st == AUTH_SASL_CONTINUE && c->out_len == 0);
	st = step(s, first, strlen(first), true, c);
	if (st == AUTH_SASL_CONTINUE && final != NULL)
		st = step(s, final, strlen(final), true, c);
	auth_sasl_free(&s);
	return st;
}

static void test_scram_malformed(void)
{
	struct capture c;
	auth_hooks.server_nonce = "SERVERNONCE";
	const char *first = "n,,n=alice@example.org,r=abc";
	CHECK(scram_msgs(first, NULL, &c) == AUTH_SASL_CONTINUE);
	CHECK(strncmp(c.out, "r=abcSERVERNONCE,s=", 19) == 0);
	CHECK(scram_msgs("n,,m=x,n=alice@example.org,r=abc", NULL, &c) == AUTH_SASL_ERROR);
	CHECK(scram_msgs("n,,n=alice@example.org", NULL, &c) == AUTH_SASL_ERROR);
	CHECK(scram_msgs("n,,n=alice@example.org,r=", NULL, &c) == AUTH_SASL_ERROR);
	CHECK(scram_msgs("n,,n=alice@example.org,r=a\x01" "b", NULL, &c) == AUTH_SASL_ERROR);
	CHECK(scram_msgs("n,,n=,r=abc", NULL, &c) == AUTH_SASL_ERROR);
	CHECK(scram_msgs("n,,r=abc,n=alice@example.org", NULL, &c) == AUTH_SASL_ERROR);
	CHECK(scram_msgs("n,,n=alice@example.org,r=abc,x=ext", NULL, &c) == AUTH_SASL_CONTINUE);
	const char *proof = ",p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
	char fin[300];
	snprintf(fin, sizeof(fin), "c=biws,r=abcSERVERNONCE%s", proof);
	CHECK(scram_msgs(first, fin, &c) == AUTH_SASL_FAIL);         /* well-formed, wrong */
	snprintf(fin, sizeof(fin), "c=eSws,r=abcSERVERNONCE%s", proof);
	CHECK(scram_msgs(first, fin, &c) == AUTH_SASL_ERROR);        /* c= is "y,," */
	snprintf(fin, sizeof(fin), "c=biws,r=abcSERVERNONCX%s", proof);
	CHECK(scram_msgs(first, fin, &c) == AUTH_SASL_ERROR);
	snprintf(fin, sizeof(fin), "c=biws,r=abcSERVERNONCE");
	CHECK(scram_msgs(first, fin, &c) == AUTH_SASL_ERROR);
	snprintf(fin, sizeof(fin), "c=biws,r=abcSERVERNONCE,p=AAAA");
	CHECK(scram_msgs(first, fin, &c) == AUTH_SASL_ERROR);
	snprintf(fin, sizeof(fin), "c=biws,r=abcSERVERNONCE%s,x=1", proof);
	CHECK(scram_msgs(first, fin, &c) == AUTH_SASL_ERROR);
	snprintf(fin, sizeof(fin), "c=biws,r=abcSERVERNONCE,x=1%s", proof);
	CHECK(scram_msgs(first, fin, &c) == AUTH_SASL_FAIL);
	CHECK(scram_msgs(first, "", &c) == AUTH_SASL_ERROR);
	CHECK(scram_msgs(first, "c=biws", &c) == AUTH_SASL_ERROR);
	auth_hooks.server_nonce = NULL;
}

/* ---- thread pool + event_base ---- */

static struct event_base *loop_base;
static pthread_t loop_thread;

static void pool_cb(void *ctx, const struct auth_result *r)
{
	capture_cb(ctx, r);
	event_base_loopbreak(loop_base);
}

static void keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
}

static void test_sasl_pool(void)
{
	CHECK(evthread_use_pthreads() == 0);
	loop_base = event_base_new();
	loop_thread = pthread_self();
	struct timeval tick = { 1, 0 };
	struct event *keep = event_new(loop_base, -1, EV_PERSIST, keepalive_cb, NULL);
	event_add(keep, &tick);
	struct threadpool *pool = threadpool_create(2);

	struct capture c;
	memset(&c, 0, sizeof(c));
	struct auth_sasl *s = auth_sasl_begin("PLAIN", NULL, pool, loop_base);
	const char msg[] = "\0alice@example.org\0correct horse";
	auth_sasl_step(s, (const unsigned char *)msg, sizeof(msg) - 1, true, pool_cb, &c);
	CHECK(c.calls == 0);   /* verification is on the pool */
	event_base_dispatch(loop_base);
	CHECK(c.calls == 1 && c.status == AUTH_SASL_OK);
	CHECK(pthread_equal(c.thread, loop_thread));
	auth_sasl_free(&s);

	/* SCRAM lookup on the pool, the proof check inline */
	struct scram_client cl;
	snprintf(cl.first_bare, sizeof(cl.first_bare), "n=%s,r=xyz", TEST_USER);
	char first[320];
	snprintf(first, sizeof(first), "n,,%s", cl.first_bare);
	s = auth_sasl_begin("SCRAM-SHA-256", NULL, pool, loop_base);
	memset(&c, 0, sizeof(c));
	auth_sasl_step(s, (const unsigned char *)first, strlen(first), true, pool_cb, &c);
	event_base_dispatch(loop_base);
	CHECK(c.calls == 1 && c.status == AUTH_SASL_CONTINUE);
	CHECK(scram_client_final(&cl, "n,,", TEST_PASS, c.out) == 0);
	auth_sasl_step(s, (const unsigned char *)cl.final_msg, strlen(cl.final_msg), true,
		       capture_cb, &c);
	CHECK(c.calls == 2 && c.status == AUTH_SASL_OK);
	auth_sasl_free(&s);

	/* base NULL: the callback runs on the pool thread */
	memset(&c, 0, sizeof(c));
	s = auth_sasl_begin("PLAIN", NULL, pool, NULL);
	auth_sasl_step(s, (const unsigned char *)msg, sizeof(msg) - 1, true, capture_cb, &c);
	threadpool_destroy(&pool);   /* waits for the job */
	CHECK(c.calls == 1 && c.status == AUTH_SASL_OK);
	CHECK(!pthread_equal(c.thread, loop_thread));
	auth_sasl_free(&s);

	event_free(keep);
	event_base_free(loop_base);
}

/* ---- Dovecot passwd-file ---- */

static void test_dovecot_lines(void)
{
	char *user = NULL, *hash = NULL;
	int64_t quota = -1;
	const char *error = NULL;

	CHECK(auth_dovecot_passwd_line(
		"Alice@Example.org:{SHA512-CRYPT}$6$abcdefgh$ltjg:1000:1000::/home/alice::"
		"userdb_quota_rule=*:storage=1G allow_nets=10.0.0.0/8\n",
		&user, &hash, &quota, &error) == 1);
	CHECK_STR(user, "alice@example.org");
	CHECK_STR(hash, "{SHA512-CRYPT}$6$abcdefgh$ltjg");
	CHECK(quota == 1073741824LL);
	free(user);
	free(hash);

	CHECK(auth_dovecot_passwd_line("bob@example.org:$2y$05$abcdefghijklmnopqrstuu", &user,
				       &hash, &quota, &error) == 1);
	CHECK_STR(user, "bob@example.org");
	CHECK_STR(hash, "{CRYPT}$2y$05$abcdefghijklmnopqrstuu");
	CHECK(quota == 0);
	free(user);
	free(hash);

	static const struct { const char *extra; int64_t bytes; } quotas[] = {
		{ "quota_rule=*:storage=512M", 512LL << 20 },
		{ "userdb_quota_rule=*:storage=100k", 102400 },
		{ "userdb_quota_rule=*:storage=2048", 2048 },
		{ "userdb_quota_rule=*:storage=10B", 10 },
		{ "userdb_quota_rule=*:storage=1T", 1LL << 40 },
		{ "userdb_quota_rule=*:storage=3GB", 3LL << 30 },
		{ "userdb_quota_rule=*:messages=100:storage=5M", 5LL << 20 },
		{ "userdb_quota_rule=Trash:storage=+100M", 0 },
		{ "userdb_quota_rule=*:storage=+10%", 0 },
		{ "userdb_mail=maildir:~/Maildir", 0 },
	};
	for (size_t i = 0; i < sizeof(quotas) / sizeof(quotas[0]); i++) {
		char line[300];
		snprintf(line, sizeof(line), "u@example.org:{SSHA512}abc:::::: %s\r\n", quotas[i].extra);
		quota = -1;
		CHECK(auth_dovecot_passwd_line(line, &user, &hash, &quota, &error) == 1);
		if (quota != quotas[i].bytes)
			fprintf(stderr, "  quota %s -> %lld\n", quotas[i].extra, (long long)quota);
		CHECK(quota == quotas[i].bytes);
		free(user);
		free(hash);
	}

	CHECK(auth_dovecot_passwd_line("", &user, &hash, &quota, &error) == 0);
	CHECK(auth_dovecot_passwd_line("\n", &user, &hash, &quota, &error) == 0);
	CHECK(auth_dovecot_passwd_line("   ", &user, &hash, &quota, &error) == 0);
	CHECK(auth_dovecot_passwd_line("# alice:{PLAIN}x", &user, &hash, &quota, &error) == 0);
	CHECK(auth_dovecot_passwd_line("alice@example.org", &user, &hash, &quota, &error) < 0);
	CHECK(error != NULL);
	CHECK(auth_dovecot_passwd_line("alice@example.org::1000", &user, &hash, &quota, &error) < 0);
	CHECK(auth_dovecot_passwd_line(":{SSHA512}abc", &user, &hash, &quota, &error) < 0);
	CHECK(auth_dovecot_passwd_line("a b@x.org:{SSHA512}abc", &user, &hash, &quota, &error) < 0);
	CHECK(auth_dovecot_passwd_line("a@x.org:{SSHA512}abc:::::: userdb_quota_rule=*:storage=12Q",
				       &user, &hash, &quota, &error) < 0);
	CHECK(auth_dovecot_passwd_line("a@x.org:{SSHA512}abc:::::: quota_rule=*:storage=99999999999T",
				       &user, &hash, &quota, &error) < 0);
	CHECK(auth_dovecot_passwd_line("a@x.org:{SSHA512}a\x01" "bc", &user, &hash, &quota, &error) < 0);
}

/* ---- penalties ---- */

static void test_penalty(void)
{
	const char *ip = "192.0.2.7";
	CHECK(auth_penalty_delay_ms(ip) == 0);
	unsigned expect[] = { 250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000 };
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		auth_penalty_fail(ip);
		CHECK(auth_penalty_delay_ms(ip) == expect[i]);
	}
	for (int i = 0; i < 100; i++)
		auth_penalty_fail(ip);
	CHECK(auth_penalty_delay_ms(ip) == 15000);
	CHECK(auth_penalty_delay_ms("192.0.2.8") == 0);   /* others unaffected */
	auth_penalty_success(ip);
	CHECK(auth_penalty_delay_ms(ip) == 0);

	/* expiry: 15 minutes after the last failure */
	auth_penalty_fail("2001:db8::1");
	auth_penalty_fail("2001:db8::1");
	CHECK(auth_penalty_delay_ms("2001:db8::1") == 500);
	clock_advance(14 * 60);
	CHECK(auth_penalty_delay_ms("2001:db8::1") == 500);
	auth_penalty_fail("2001:db8::1");                   /* refreshes the entry */
	clock_advance(14 * 60);
	CHECK(auth_penalty_delay_ms("2001:db8::1") == 1000);
	clock_advance(60);
	CHECK(auth_penalty_delay_ms("2001:db8::1") == 0);
	auth_penalty_fail("2001:db8::1");
	CHECK(auth_penalty_delay_ms("2001:db8::1") == 250); /* starts over */

	/* bounded: 70000 addresses keep the newest, evict the oldest */
	char buf[64];
	auth_penalty_fail("198.51.100.1");
	for (int i = 0; i < 70000; i++) {
		snprintf(buf, sizeof(buf), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		auth_penalty_fail(buf);
	}
	CHECK(auth_penalty_delay_ms("198.51.100.1") == 0);
	CHECK(auth_penalty_delay_ms(buf) == 250);
	CHECK(auth_penalty_delay_ms("10.1.0.0") == 250);
	CHECK(auth_penalty_delay_ms("10.0.0.0") == 0);
	clock_advance(16 * 60);
	CHECK(auth_penalty_delay_ms(buf) == 0);
}

/* ---- against a real store ---- */

static void test_with_store(void)
{
	char dir[] = "/tmp/tern-test-auth-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	struct store *store = NULL;
	const char *error = NULL;
	struct store_options opts = { 0 };
	if (store_open(dir, &opts, &store, &error) < 0) {
		fprintf(stderr, "  store_open: %s\n", error);
		CHECK(0);
		return;
	}
	char *hash = NULL, *scram = NULL;
	CHECK(auth_password_hash(TEST_PASS, &hash, &error) == 0);
	CHECK(auth_scram_make(TEST_PASS, AUTH_SCRAM_ITERATIONS, &scram, &error) == 0);
	CHECK(store_domain_add(store, "example.org", &error) == 0);
	CHECK(store_user_add(store, TEST_USER, hash, scram, 0, &error) == 0);
	CHECK(store_user_add(store, "imported@example.org",
			     "{SSHA512}JbcNrBrlAe1IOqE1Gr3ZDy2f8/EK7zjUUsDtsNKcEVzBtlcYxRww1j6OhC/SiQhyw/UwzdSPLvDXjJkDCEtDj1NBTFQxMjM0",
			     NULL, 0, &error) == 0);
	free(hash);
	free(scram);

	auth_hooks.user_get = NULL;
	struct capture c;
	memset(&c, 0, sizeof(c));
	struct auth_sasl *s = auth_sasl_begin("PLAIN", store, NULL, NULL);
	const char m1[] = "\0ALICE@example.org\0correct horse";
	CHECK(step(s, m1, sizeof(m1) - 1, true, &c) == AUTH_SASL_OK);
	CHECK_STR(c.address, TEST_USER);
	CHECK(c.user_id > 0);
	auth_sasl_free(&s);

	s = auth_sasl_begin("PLAIN", store, NULL, NULL);
	const char m2[] = "\0imported@example.org\0secret";
	CHECK(step(s, m2, sizeof(m2) - 1, true, &c) == AUTH_SASL_OK);
	auth_sasl_free(&s);

	s = auth_sasl_begin("PLAIN", store, NULL, NULL);
	const char m3[] = "\0nobody@example.org\0secret";
	CHECK(step(s, m3, sizeof(m3) - 1, true, &c) == AUTH_SASL_FAIL);
	auth_sasl_free(&s);

	/* SCRAM with the stored keys; the imported user has none */
	struct scram_client cl;
	snprintf(cl.first_bare, sizeof(cl.first_bare), "n=%s,r=clientnonce", TEST_USER);
	char first[320];
	snprintf(first, sizeof(first), "n,,%s", cl.first_bare);
	s = auth_sasl_begin("SCRAM-SHA-256", store, NULL, NULL);
	CHECK(step(s, first, strlen(first), true, &c) == AUTH_SASL_CONTINUE);
	CHECK(scram_client_final(&cl, "n,,", TEST_PASS, c.out) == 0);
	CHECK(step(s, cl.final_msg, strlen(cl.final_msg), true, &c) == AUTH_SASL_OK);
	auth_sasl_free(&s);

	snprintf(cl.first_bare, sizeof(cl.first_bare), "n=imported@example.org,r=clientnonce");
	snprintf(first, sizeof(first), "n,,%s", cl.first_bare);
	s = auth_sasl_begin("SCRAM-SHA-256", store, NULL, NULL);
	CHECK(step(s, first, strlen(first), true, &c) == AUTH_SASL_CONTINUE);
	CHECK(scram_client_final(&cl, "n,,", "secret", c.out) == 0);
	CHECK(step(s, cl.final_msg, strlen(cl.final_msg), true, &c) == AUTH_SASL_FAIL);
	auth_sasl_free(&s);

	store_close(&store);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

int main(void)
{
	const char *error = NULL;
	auth_hooks.user_get = stub_user_get;
	auth_hooks.dummy_hash = "{SHA512}c2hvcnQ=";   /* keep the stubbed tests fast */
	if (auth_password_hash(TEST_PASS, &stub_hash, &error) < 0 ||
	    auth_scram_make(TEST_PASS, AUTH_SCRAM_ITERATIONS, &stub_scram, &error) < 0)
		return 1;

	RUN(test_password_yescrypt);
	RUN(test_password_vectors);
	RUN(test_password_ssha_computed);
	RUN(test_scram_rfc7677);
	RUN(test_scram_make_parse);
	RUN(test_plain);
	RUN(test_login);
	RUN(test_scram_exchange);
	RUN(test_scram_malformed);
	RUN(test_sasl_pool);
	RUN(test_dovecot_lines);
	RUN(test_penalty);
	auth_hooks.dummy_hash = NULL;
	RUN(test_with_store);
	free(stub_hash);
	free(stub_scram);
	return unit_summary("auth");
}
