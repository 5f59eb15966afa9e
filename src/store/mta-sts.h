/* The MTA-STS policy cache in the store (schema 6, table
 * mta_sts_policies): one row per recipient domain with the policy id from
 * its _mta-sts TXT record, the policy text as the queue keeps it, when it
 * was fetched and when it expires (fetched + max_age).  RFC 8461 5.1: a
 * cached policy stays in force until it expires, across restarts.
 *
 * The store does not parse policies; the queue (src/queue) formats what
 * it parsed and reads it back.  Functions follow store.h's conventions:
 * synchronous reads on the calling thread's reader, writes on the commit
 * thread with a store_write_cb (or waited for, the *_sync forms). */
#ifndef TERN_STORE_MTA_STS_H
#define TERN_STORE_MTA_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "store/store.h"

#define STORE_MTA_STS_POLICY_MAX 65536  /* bytes of policy text kept */
#define STORE_MTA_STS_ID_MAX 32         /* RFC 8461 3.1 */

struct store_mta_sts {
	const char *domain;     /* lowercased recipient domain */
	const char *policy_id;  /* the TXT record's id= (letters and digits) */
	const char *policy;     /* the policy text (no CR, no NUL) */
	time_t fetched, expires;
};

/* The cached policy of domain (any case) unless it expired at now: 1 with
 * *p_r filled (strings malloc'd, release with store_mta_sts_clear), 0 when
 * there is none or it expired, <0 with *error_r. */
int store_mta_sts_get(struct store *store, const char *domain, time_t now,
		      struct store_mta_sts *p_r, const char **error_r);

/* Release the strings of a policy filled by store_mta_sts_get. */
void store_mta_sts_clear(struct store_mta_sts *p);

/* Record p (replacing the domain's previous row), and in the same
 * transaction remove every policy expired at p->fetched.  Refused (-1, cb
 * not called) when a string is missing, too long, or holds CR, LF (except
 * LF in the policy) or NUL, or expires <= fetched.  r->count in the
 * callback is the number of expired rows removed. */
int store_mta_sts_put(struct store *store, struct event_base *base,
		      const struct store_mta_sts *p, store_write_cb *cb, void *ctx);

/* Remove every policy expired at now; r->count is how many. */
int store_mta_sts_prune(struct store *store, struct event_base *base, time_t now,
			store_write_cb *cb, void *ctx);

/* Every cached policy (expired ones too) in domain order, for the CLI;
 * everything passed to cb is valid during cb only; cb non-zero stops. */
int store_mta_sts_list(struct store *store,
		       int (*cb)(void *ctx, const struct store_mta_sts *p), void *ctx,
		       const char **error_r);

/* Forget domain's cached policy (the CLI; synchronous, through the commit
 * thread).  1 removed, 0 there was none, <0 with *error_r. */
int store_mta_sts_delete(struct store *store, const char *domain, const char **error_r);

#endif
