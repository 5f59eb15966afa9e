/* A per-thread cache of RSA verification contexts (EVP_PKEY_CTX set up for
 * PKCS#1 v1.5 with SHA-256, RFC 6376 section 3.3.1), one per decoded key.
 *
 * Why: with OpenSSL 3.0, creating a context for a key and initialising it
 * for verification (EVP_PKEY_CTX_new, EVP_PKEY_verify_init and setting the
 * padding and the digest) looks the key type and the algorithms up by name
 * again every time, walking OpenSSL's name tables under locks; in a
 * server's profile that took two thirds as long as the RSA operation
 * itself.  An initialised
 * context can verify any number of signatures: EVP_PKEY_verify keeps no
 * state from one call to the next, a failed check included.
 *
 * Invariants:
 * - Each thread has its own DKIM_CTXCACHE_SLOTS slots, so no lock and no
 *   context is ever used by two threads.  Slots are reused in turn (the
 *   oldest goes first).
 * - A slot holds a reference to its key (EVP_PKEY_up_ref), so the key a
 *   slot is found by (its address) cannot be freed and its address reused
 *   by another key while the slot exists.  The key cache (dkim-keycache.c)
 *   hands out the same EVP_PKEY for the same record, which is what makes
 *   the address a useful key here.
 * - A thread's slots are freed when the thread ends. */
#include <pthread.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "mailauth/dkim-private.h"

struct ctx_slot {
	EVP_PKEY *pkey;		/* one reference; NULL: empty */
	EVP_PKEY_CTX *ctx;
};

struct ctx_cache {
	struct ctx_slot slot[DKIM_CTXCACHE_SLOTS];
	size_t next;		/* the slot replaced on the next miss */
	struct dkim_ctxcache_stats stats;
};

static __thread struct ctx_cache *thread_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;

static void cache_free(void *p)
{
	struct ctx_cache *c = p;

	for (size_t i = 0; i < DKIM_CTXCACHE_SLOTS; i++) {
		EVP_PKEY_CTX_free(c->slot[i].ctx);
		EVP_PKEY_free(c->slot[i].pkey);
	}
	free(c);
}

static void cache_key_create(void)
{
	if (pthread_key_create(&cache_key, cache_free) != 0)
		fatal("dkim: pthread_key_create failed");
}

static struct ctx_cache *cache_get(void)
{
	if (thread_cache == NULL) {
		pthread_once(&cache_key_once, cache_key_create);
		thread_cache = xcalloc(1, sizeof(*thread_cache));
		if (pthread_setspecific(cache_key, thread_cache) != 0)
			fatal("dkim: pthread_setspecific failed");
	}
	return thread_cache;
}

/* A new context for pkey, ready for EVP_PKEY_verify(); NULL on failure. */
static EVP_PKEY_CTX *ctx_new(EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);

	if (ctx == NULL)
		return NULL;
	if (EVP_PKEY_verify_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, dkim_sha256()) != 1) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

EVP_PKEY_CTX *dkim_rsa_verify_ctx(EVP_PKEY *pkey)
{
	struct ctx_cache *c = cache_get();

	for (size_t i = 0; i < DKIM_CTXCACHE_SLOTS; i++) {
		if (c->slot[i].pkey == pkey) {
			c->stats.hits++;
			return c->slot[i].ctx;
		}
	}
	c->stats.misses++;
	EVP_PKEY_CTX *ctx = ctx_new(pkey);
	if (ctx == NULL || EVP_PKEY_up_ref(pkey) != 1) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	struct ctx_slot *s = &c->slot[c->next];
	c->next = (c->next + 1) % DKIM_CTXCACHE_SLOTS;
	if (s->pkey == NULL)
		c->stats.used++;
	EVP_PKEY_CTX_free(s->ctx);
	EVP_PKEY_free(s->pkey);
	s->pkey = pkey;
	s->ctx = ctx;
	return ctx;
}

void dkim_ctxcache_get_stats(struct dkim_ctxcache_stats *stats_r)
{
	static const struct dkim_ctxcache_stats none;

	*stats_r = thread_cache != NULL ? thread_cache->stats : none;
}
