/* TLS results for SMTP TLS Reporting (RFC 8460), kept in the store table
 * tls_results (schema 6): per UTC day, policy domain, policy type, MX host,
 * receiving IP and result type, a count of sessions.  result_type "" counts
 * successful sessions; the others are RFC 8460 4.3 result types.  The
 * scheduler adds counts through the commit thread (store_tlsrpt_add); the
 * report sender lists unreported rows, then marks what it reported. */
#ifndef TERN_STORE_TLSRPT_H
#define TERN_STORE_TLSRPT_H

#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* The longest text kept in one column (longer values are cut by the
 * caller; the store refuses them). */
#define STORE_TLSRPT_TEXT_MAX 4096

struct store_tls_result {
	int64_t day;                /* Unix time / 86400 (UTC day) */
	const char *policy_domain;  /* the recipient domain (lowercase) */
	const char *policy_type;    /* "sts", "tlsa" or "no-policy-found" */
	const char *policy;         /* the policy strings joined with "\n" ("" none) */
	const char *mx_host;        /* the MX host name, "" when none was reached */
	const char *receiving_ip;   /* its address, "" when none */
	const char *result_type;    /* "" success, else an RFC 8460 result type */
	const char *detail;         /* failure-reason-code text, "" none */
	int64_t count;              /* sessions */
	bool reported;              /* listing only */
};

/* Add rows' counts (one upsert each) on the commit thread; rows are
 * copied before return.  A row already reported starts again from its new
 * count, unreported.  cb runs on base after the commit.  0 queued, <0 (cb
 * not called) when the store refuses it (read-only, a field with CR, LF
 * or too long). */
int store_tlsrpt_add(struct store *store, struct event_base *base,
		     const struct store_tls_result *rows, size_t count, store_done_cb *cb,
		     void *ctx);
/* The same, waiting (CLI, tests, the last flush at shutdown). */
int store_tlsrpt_add_sync(struct store *store, const struct store_tls_result *rows,
			  size_t count, const char **error_r);

struct store_tlsrpt_filter {
	const char *domain;         /* one policy domain, or NULL */
	bool unreported_only;
	int64_t max_day;            /* only day <= max_day; -1: any */
};

/* Rows matching f ordered by policy domain, day, policy type, policy, MX
 * host, receiving IP, result type; the strings are valid during cb only;
 * cb non-zero stops. */
int store_tlsrpt_list(struct store *store, const struct store_tlsrpt_filter *f,
		      int (*cb)(void *ctx, const struct store_tls_result *r), void *ctx,
		      const char **error_r);

/* Mark rows (as listed, with their counts) reported: a row whose count
 * grew since it was listed keeps the difference, unreported, so nothing
 * is reported twice or lost. */
int store_tlsrpt_mark(struct store *store, const struct store_tls_result *rows, size_t count,
		      const char **error_r);

/* Delete rows of days before before_day; *deleted_r (may be NULL) gets
 * their number. */
int store_tlsrpt_prune(struct store *store, int64_t before_day, int64_t *deleted_r,
		       const char **error_r);

#endif
