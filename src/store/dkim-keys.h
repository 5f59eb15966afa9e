/* The DKIM signing keys of our domains in the store (schema 6, table
 * dkim_keys; see the comment in schema.c).  One row per (domain,
 * selector): the algorithm's a= value ("rsa-sha256", "ed25519-sha256"),
 * the private key as PKCS#8 PEM, the public key as the base64 p= value of
 * its DNS record, and its state in the rotation:
 *
 *   pending (0)  created by `tern dkim rotate`, its DNS record not yet seen
 *   active (1)   signing
 *   retiring (2) replaced, no longer signing, still published until retire_at
 *   retired (3)  may be removed from DNS
 *
 * Functions follow store.h's conventions: synchronous reads on the calling
 * thread's reader; the CLI's synchronous writes and the server's
 * asynchronous ones (store_write_cb on base) go through the commit
 * thread. */
#ifndef TERN_STORE_DKIM_KEYS_H
#define TERN_STORE_DKIM_KEYS_H

#include <stdint.h>
#include <time.h>

#include "store/store.h"

enum store_dkim_state {
	STORE_DKIM_PENDING = 0,
	STORE_DKIM_ACTIVE = 1,
	STORE_DKIM_RETIRING = 2,
	STORE_DKIM_RETIRED = 3,
};

#define STORE_DKIM_PEM_MAX 16384       /* bytes of one private key PEM */
#define STORE_DKIM_PUBLIC_MAX 4096     /* bytes of one base64 public key */
#define STORE_DKIM_SELECTOR_MAX 63     /* one DNS label */

struct store_dkim_key {
	int64_t id;
	char *domain, *selector, *algorithm, *private_key, *public_key;
	int state;                   /* enum store_dkim_state */
	time_t created, activated, retire_at;   /* 0: not set */
};

/* "pending", "active", "retiring", "retired" ("unknown" otherwise). */
const char *store_dkim_state_name(int state);

/* Release the strings of k (filled by the store or by the caller with
 * malloc'd strings) and zero it. */
void store_dkim_key_clear(struct store_dkim_key *k);

/* Every key of domain (any case; NULL: all domains), ordered by domain then
 * id (oldest first).  Everything passed to cb is valid during cb only; cb
 * returning non-zero stops (not an error).  0, or <0 with *error_r. */
int store_dkim_keys_list(struct store *s, const char *domain,
			 int (*cb)(void *ctx, const struct store_dkim_key *k), void *ctx,
			 const char **error_r);

/* One key by domain and selector (any case): 1 with *k_r filled (release
 * with store_dkim_key_clear), 0 when there is none, <0 with *error_r. */
int store_dkim_key_get(struct store *s, const char *domain, const char *selector,
		       struct store_dkim_key *k_r, const char **error_r);

/* A short text that changes whenever the set of active keys changes (the
 * ids of the active keys, in order; "" when none): the running signer
 * compares it to reload its keys.  malloc'd into *stamp_r; 0 or <0. */
int store_dkim_keys_active_stamp(struct store *s, char **stamp_r, const char **error_r);

/* Add a key (synchronous, for the CLI): k's domain, selector, algorithm,
 * private_key, public_key, state and created are used (activated is set to
 * created for an active key; retire_at is not set).  Refused when a field
 * is missing, malformed (a selector is one DNS label of letters, digits and
 * '-'; the algorithm "rsa-sha256" or "ed25519-sha256"; the PEM has no NUL
 * or CR; the public key is base64) or too long, when the domain is not
 * one of the store's domains, or when the selector exists.  0 with *id_r
 * (may be NULL), or <0 with *error_r. */
int store_dkim_key_add(struct store *s, const struct store_dkim_key *k, int64_t *id_r,
		       const char **error_r);

/* Make key id active at now (synchronous, for the CLI), in one
 * transaction: every other active key of the same domain and algorithm
 * becomes retiring until retire_at.  Keys already active are left as they
 * are; a retired key cannot come back.  Returns the number of keys made
 * retiring (>= 0), or <0 with *error_r (no such key, retired). */
int store_dkim_key_activate(struct store *s, int64_t id, time_t now, time_t retire_at,
			    const char **error_r);

/* The same from the server, for a key still pending (a key that is no
 * longer pending is left alone: r->count 0); r->count is 1 when it was
 * activated.  0 when queued, <0 (cb not called) on bad arguments. */
int store_dkim_key_activate_async(struct store *s, struct event_base *base, int64_t id,
				  time_t now, time_t retire_at, store_write_cb *cb, void *ctx);

/* Set key id's state (synchronous, for the CLI and tests); retire_at 0
 * leaves it unchanged.  0, or <0 with *error_r (no such key, bad state). */
int store_dkim_key_set_state(struct store *s, int64_t id, int state, time_t retire_at,
			     const char **error_r);

/* Every retiring key whose retire_at is at or before now becomes retired.
 * Synchronous (returns how many, or <0 with *error_r) and asynchronous
 * (r->count is how many) forms. */
int store_dkim_keys_retire_due(struct store *s, time_t now, const char **error_r);
int store_dkim_keys_retire_due_async(struct store *s, struct event_base *base, time_t now,
				     store_write_cb *cb, void *ctx);

#endif
