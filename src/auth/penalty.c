/* The per-IP authentication penalty table shared by SMTP, IMAP and POP3.
 *
 * One process-wide table behind a mutex: a chained hash table keyed by
 * the IP string, plus a list in order of last failure (oldest at head)
 * so the oldest entry can be evicted when the table is full.  Bounded:
 * never more than PENALTY_MAX_ENTRIES entries, so a botnet spraying
 * addresses costs us a fixed amount of memory.  An entry expires
 * PENALTY_EXPIRE_SECS after its last failure (time from lib/clock.h, so
 * tests move it).  Delay after n failures: 0 for n = 0, else
 * 250 ms * 2^(n-1), capped at 15 s.  A success forgets the IP.
 * The hash is FNV-1a seeded with random bytes at first use, so a peer
 * cannot choose addresses that all land in one chain. */
#include "auth/auth.h"
#include "lib/buf.h"
#include "lib/clock.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PENALTY_MAX_ENTRIES 65536
#define PENALTY_BUCKETS 16384         /* power of two */
#define PENALTY_EXPIRE_SECS (15 * 60)
#define PENALTY_BASE_MS 250u
#define PENALTY_MAX_MS 15000u

struct penalty_entry {
	struct penalty_entry *hash_next;
	struct penalty_entry *prev, *next;   /* age list, oldest first */
	time_t last_fail;
	unsigned failures;
	char ip[];
};

static pthread_mutex_t penalty_lock = PTHREAD_MUTEX_INITIALIZER;
static struct penalty_entry **penalty_buckets;
static struct penalty_entry *penalty_oldest, *penalty_newest;
static size_t penalty_count;
static uint64_t penalty_seed;

static size_t penalty_hash(const char *ip)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ penalty_seed;
	for (const unsigned char *p = (const unsigned char *)ip; *p != '\0'; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 29;
	return (size_t)h & (PENALTY_BUCKETS - 1);
}

/* Called with the lock held. */
static void penalty_init_locked(void)
{
	if (penalty_buckets != NULL)
		return;
	penalty_buckets = xcalloc(PENALTY_BUCKETS, sizeof(*penalty_buckets));
	if (RAND_bytes((unsigned char *)&penalty_seed, sizeof(penalty_seed)) != 1)
		penalty_seed = (uint64_t)clock_now_ms();
}

static void penalty_list_unlink(struct penalty_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		penalty_oldest = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		penalty_newest = e->prev;
	e->prev = e->next = NULL;
}

static void penalty_list_append(struct penalty_entry *e)
{
	e->prev = penalty_newest;
	e->next = NULL;
	if (penalty_newest != NULL)
		penalty_newest->next = e;
	else
		penalty_oldest = e;
	penalty_newest = e;
}

static void penalty_remove(struct penalty_entry *e)
{
	struct penalty_entry **pp = &penalty_buckets[penalty_hash(e->ip)];
	while (*pp != e)
		pp = &(*pp)->hash_next;
	*pp = e->hash_next;
	penalty_list_unlink(e);
	penalty_count--;
	free(e);
}

/* Drop expired entries from the old end of the age list. */
static void penalty_expire(time_t now)
{
	while (penalty_oldest != NULL &&
	       now - penalty_oldest->last_fail >= PENALTY_EXPIRE_SECS)
		penalty_remove(penalty_oldest);
}

static struct penalty_entry *penalty_find(const char *ip)
{
	struct penalty_entry *e = penalty_buckets[penalty_hash(ip)];
	while (e != NULL && strcmp(e->ip, ip) != 0)
		e = e->hash_next;
	return e;
}

unsigned auth_penalty_delay_ms(const char *ip)
{
	unsigned failures = 0;
	pthread_mutex_lock(&penalty_lock);
	penalty_init_locked();
	penalty_expire(clock_now());
	struct penalty_entry *e = penalty_find(ip);
	if (e != NULL)
		failures = e->failures;
	pthread_mutex_unlock(&penalty_lock);
	if (failures == 0)
		return 0;
	/* 250 << 6 = 16000 already passes the cap; avoid shifting further */
	if (failures - 1 >= 6)
		return PENALTY_MAX_MS;
	unsigned ms = PENALTY_BASE_MS << (failures - 1);
	return ms < PENALTY_MAX_MS ? ms : PENALTY_MAX_MS;
}

void auth_penalty_fail(const char *ip)
{
	time_t now = clock_now();
	pthread_mutex_lock(&penalty_lock);
	penalty_init_locked();
	penalty_expire(now);
	struct penalty_entry *e = penalty_find(ip);
	if (e == NULL) {
		if (penalty_count >= PENALTY_MAX_ENTRIES)
			penalty_remove(penalty_oldest);
		size_t n = strlen(ip);
		e = xcalloc(1, sizeof(*e) + n + 1);
		memcpy(e->ip, ip, n + 1);
		size_t h = penalty_hash(ip);
		e->hash_next = penalty_buckets[h];
		penalty_buckets[h] = e;
		penalty_count++;
	} else {
		penalty_list_unlink(e);
	}
	if (e->failures < 1000)
		e->failures++;
	e->last_fail = now;
	penalty_list_append(e);
	pthread_mutex_unlock(&penalty_lock);
}

void auth_penalty_success(const char *ip)
{
	pthread_mutex_lock(&penalty_lock);
	penalty_init_locked();
	struct penalty_entry *e = penalty_find(ip);
	if (e != NULL)
		penalty_remove(e);
	pthread_mutex_unlock(&penalty_lock);
}
