/* The per-thread cache of RSA verification contexts (dkim-ctxcache.c),
 * through dkim_crypto_verify(): the second check with a key is a hit and
 * gives the same verdicts, a failed check leaves the context usable, the
 * cache holds at most DKIM_CTXCACHE_SLOTS keys and replaces the oldest, a
 * key freed by its owner stays usable through the cache's reference, and
 * threads checking with the same keys at once each get right answers
 * from their own contexts.  Keys are RSA-1024 to keep the test fast (the
 * size policy is dkim-verify.c's, not tested here). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "lib/log.h"
#include "mailauth/dkim-private.h"
#include "unit.h"

#define N_KEYS (DKIM_CTXCACHE_SLOTS + 2)

static EVP_PKEY *keys[N_KEYS];
static uint8_t sigs[N_KEYS][128];
static size_t sig_lens[N_KEYS];
static uint8_t digest[32], other_digest[32];

/* key's PKCS#1 v1.5 SHA-256 signature over digest */
static size_t sign(EVP_PKEY *key, uint8_t *out, size_t size)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	size_t len = size;

	if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_sign(ctx, out, &len, digest, sizeof(digest)) != 1)
		len = 0;
	EVP_PKEY_CTX_free(ctx);
	return len;
}

static struct dkim_ctxcache_stats stats(void)
{
	struct dkim_ctxcache_stats st;

	dkim_ctxcache_get_stats(&st);
	return st;
}

static bool verify(int k, const uint8_t *d)
{
	return dkim_crypto_verify(keys[k], DKIM_ALG_RSA_SHA256, d, sigs[k], sig_lens[k]);
}

static void test_hit_and_miss(void)
{
	struct dkim_ctxcache_stats a = stats();

	CHECK(verify(0, digest));
	struct dkim_ctxcache_stats b = stats();
	CHECK(b.misses == a.misses + 1 && b.hits == a.hits && b.used == a.used + 1);
	CHECK(verify(0, digest));
	struct dkim_ctxcache_stats c = stats();
	CHECK(c.hits == b.hits + 1 && c.misses == b.misses);
	/* wrong digest, another key's signature, damaged or short signature:
	 * all fail, all through the same context, which still verifies a good
	 * signature afterwards */
	CHECK(!verify(0, other_digest));
	CHECK(!dkim_crypto_verify(keys[0], DKIM_ALG_RSA_SHA256, digest, sigs[1], sig_lens[1]));
	uint8_t bad[128];
	memcpy(bad, sigs[0], sig_lens[0]);
	bad[sig_lens[0] / 2] ^= 1;
	CHECK(!dkim_crypto_verify(keys[0], DKIM_ALG_RSA_SHA256, digest, bad, sig_lens[0]));
	CHECK(!dkim_crypto_verify(keys[0], DKIM_ALG_RSA_SHA256, digest, bad, 3));
	CHECK(verify(0, digest));
	CHECK(stats().misses == c.misses && stats().hits == c.hits + 5);
}

static void test_bound_and_replacement(void)
{
	/* N_KEYS > slots: each new key takes the oldest slot */
	for (int k = 0; k < N_KEYS; k++) {
		CHECK(verify(k, digest));
		CHECK(!verify(k, other_digest));
		CHECK(stats().used <= DKIM_CTXCACHE_SLOTS);
	}
	CHECK(stats().used == DKIM_CTXCACHE_SLOTS);
	/* the most recent key is a hit, the first ones were replaced */
	struct dkim_ctxcache_stats a = stats();
	CHECK(verify(N_KEYS - 1, digest));
	CHECK(stats().hits == a.hits + 1);
	a = stats();
	CHECK(verify(0, digest));
	CHECK(stats().misses == a.misses + 1);
}

static void test_key_outlives_owner(void)
{
	EVP_PKEY *key = EVP_RSA_gen(1024);
	uint8_t sig[128];

	CHECK(key != NULL);
	if (key == NULL)
		return;
	size_t len = sign(key, sig, sizeof(sig));
	CHECK(len > 0);
	CHECK(dkim_crypto_verify(key, DKIM_ALG_RSA_SHA256, digest, sig, len));
	EVP_PKEY *ref = key;
	/* the owner lets go; the cache's slot keeps the key alive, so a check
	 * through the slot's context still works (ASan would catch a use
	 * after free) */
	EVP_PKEY_up_ref(ref);
	EVP_PKEY_free(key);
	CHECK(dkim_crypto_verify(ref, DKIM_ALG_RSA_SHA256, digest, sig, len));
	EVP_PKEY_free(ref);
}

struct thread_run {
	int wrong;
	struct dkim_ctxcache_stats st;
};

static void *thread_main(void *arg)
{
	struct thread_run *run = arg;

	for (int i = 0; i < 400; i++) {
		int k = i % 3;
		if (!verify(k, digest) || verify(k, other_digest))
			run->wrong++;
	}
	dkim_ctxcache_get_stats(&run->st);
	return NULL;
}

static void test_threads(void)
{
	pthread_t th[3];
	struct thread_run run[3];

	memset(run, 0, sizeof(run));
	for (int i = 0; i < 3; i++)
		CHECK(pthread_create(&th[i], NULL, thread_main, &run[i]) == 0);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		CHECK(run[i].wrong == 0);
		/* its own cache: three keys, three misses, the rest hits */
		CHECK(run[i].st.misses == 3);
		CHECK(run[i].st.hits == 800 - 3);
		CHECK(run[i].st.used == 3);
	}
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);
	memset(digest, 0x5a, sizeof(digest));
	memset(other_digest, 0xa5, sizeof(other_digest));
	for (int k = 0; k < N_KEYS; k++) {
		keys[k] = EVP_RSA_gen(1024);
		sig_lens[k] = keys[k] != NULL ? sign(keys[k], sigs[k], sizeof(sigs[k])) : 0;
		if (sig_lens[k] == 0) {
			fprintf(stderr, "cannot make test key %d\n", k);
			unit_failed++;
			return unit_summary("dkim-ctxcache");
		}
	}
	RUN(test_hit_and_miss);
	RUN(test_bound_and_replacement);
	RUN(test_key_outlives_owner);
	RUN(test_threads);
	for (int k = 0; k < N_KEYS; k++)
		EVP_PKEY_free(keys[k]);
	return unit_summary("dkim-ctxcache");
}
