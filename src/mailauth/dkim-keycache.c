/* A process-wide cache of decoded DKIM public keys, keyed by the exact
 * text of the key record they came from (RFC 6376 section 3.6.1).
 *
 * Why: decoding p= into an EVP_PKEY goes through OpenSSL 3's decoder
 * framework and cost about a third of verifying a 20 KiB message; the
 * same few hundred keys sign most of the mail a server receives.
 *
 * Invariants:
 * - The key is the whole record text, byte for byte, so an entry can never
 *   say more than DNS says now: the DNS answer (from the resolver's cache,
 *   which honours TTLs) is looked up for every message, and a changed
 *   record is a different key.  The same record published under several
 *   names shares one entry, which is right: the verdict depends only on
 *   the record text.
 * - Only records that parse and whose key decodes are stored; their parsed
 *   flags (type, t=y, t=s, h=, never revoked) come with the key, so a hit
 *   skips dkim_key_parse() as well.
 * - At most DKIM_KEYCACHE_SIZE entries, each record at most
 *   DKIM_MAX_KEY_RECORD bytes (so at most about 2 MiB of text); when full,
 *   the clock (second chance) algorithm picks the entry to replace.  A
 *   sender publishing many records can only push other entries out: the
 *   worst case is the cost of having no cache.
 * - One mutex guards the table; verification runs on several worker event
 *   loops (threads), and a global table lets them share what each decoded.
 *   The lock covers a scan of the hash array, a memcmp and a reference
 *   count increment, never a decode (that runs unlocked, before the put).
 * - Entries hold a reference to their EVP_PKEY and a hit hands the caller
 *   one of its own (EVP_PKEY_up_ref), so an entry may be evicted while a
 *   verification still uses its key.  A decoded key is only read after it
 *   is stored (EVP_PKEY_CTX_new, verify), which OpenSSL allows from several
 *   threads at once (openssl-threads(7)). */
#include "mailauth/dkim.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lib/buf.h"
#include "mailauth/dkim-private.h"

struct entry {
	char *record;            /* NULL: free slot */
	size_t len;
	struct dkim_key key;     /* parsed flags; public_key NULL */
	EVP_PKEY *pkey;          /* one reference held by the cache */
	bool referenced;         /* clock bit: used since the hand last passed */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t hashes[DKIM_KEYCACHE_SIZE];  /* dense, so the scan stays in cache */
static struct entry entries[DKIM_KEYCACHE_SIZE];
static size_t hand;
static struct dkim_keycache_stats stats;

/* 64-bit hash of the record, eight bytes at a time (records are a few
 * hundred bytes; this only has to spread them over the scan). */
static uint64_t record_hash(const char *p, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ len;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
		p += 8;
		len -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, p, len);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	return h;
}

/* Index of the entry holding exactly this record, or -1.  Lock held. */
static long find(uint64_t h, const char *record, size_t len)
{
	for (size_t i = 0; i < DKIM_KEYCACHE_SIZE; i++) {
		if (hashes[i] != h)
			continue;
		const struct entry *e = &entries[i];
		if (e->record != NULL && e->len == len && memcmp(e->record, record, len) == 0)
			return (long)i;
	}
	return -1;
}

EVP_PKEY *dkim_keycache_get(const char *record, size_t len, struct dkim_key *key_r)
{
	uint64_t h = record_hash(record, len);
	EVP_PKEY *pkey = NULL;

	pthread_mutex_lock(&lock);
	long i = find(h, record, len);
	if (i >= 0) {
		struct entry *e = &entries[i];
		if (EVP_PKEY_up_ref(e->pkey) == 1) {
			pkey = e->pkey;
			*key_r = e->key;
			e->referenced = true;
		}
	}
	if (pkey)
		stats.hits++;
	else
		stats.misses++;
	pthread_mutex_unlock(&lock);
	return pkey;
}

static void entry_clear(struct entry *e, uint64_t *hash)
{
	free(e->record);
	EVP_PKEY_free(e->pkey);
	memset(e, 0, sizeof(*e));
	*hash = 0;
}

void dkim_keycache_put(const char *record, size_t len, const struct dkim_key *key,
		       EVP_PKEY *pkey)
{
	if (len > DKIM_MAX_KEY_RECORD || key->revoked || pkey == NULL)
		return;
	uint64_t h = record_hash(record, len);
	/* copy outside the lock; dropped again if another thread was first */
	char *copy = xmalloc(len + 1);
	memcpy(copy, record, len);
	copy[len] = '\0';

	pthread_mutex_lock(&lock);
	if (find(h, record, len) >= 0 || EVP_PKEY_up_ref(pkey) != 1) {
		pthread_mutex_unlock(&lock);
		free(copy);
		return;
	}
	/* clock: skip (and clear) referenced entries; a free slot is taken
	 * at once.  Ends within two turns of the hand. */
	while (entries[hand].record != NULL && entries[hand].referenced) {
		entries[hand].referenced = false;
		hand = (hand + 1) % DKIM_KEYCACHE_SIZE;
	}
	struct entry *e = &entries[hand];
	if (e->record != NULL) {
		entry_clear(e, &hashes[hand]);
		stats.evictions++;
	} else {
		stats.entries++;
	}
	e->record = copy;
	e->len = len;
	e->key = *key;
	e->key.public_key = NULL;
	e->key.public_key_len = 0;
	e->pkey = pkey;
	e->referenced = false;
	hashes[hand] = h;
	hand = (hand + 1) % DKIM_KEYCACHE_SIZE;
	pthread_mutex_unlock(&lock);
}

void dkim_keycache_get_stats(struct dkim_keycache_stats *stats_r)
{
	pthread_mutex_lock(&lock);
	*stats_r = stats;
	pthread_mutex_unlock(&lock);
}

void dkim_keycache_clear(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < DKIM_KEYCACHE_SIZE; i++) {
		if (entries[i].record != NULL)
			entry_clear(&entries[i], &hashes[i]);
	}
	hand = 0;
	memset(&stats, 0, sizeof(stats));
	pthread_mutex_unlock(&lock);
}
