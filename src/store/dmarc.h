/* DMARC aggregate report data (RFC 7489 7.2) in the store, schema 7:
 *  - dmarc_results: our inbound DMARC evaluations, one row each, kept for
 *    the daily reports we send (only evaluations whose record had a rua);
 *    the port-25 server adds them through the commit thread, the report
 *    sender lists the unreported ones, marks them and prunes old days.
 *  - dmarc_reports / dmarc_report_rows: aggregate reports others sent to
 *    us, imported by `tern dmarc import`, summarised per source IP. */
#ifndef TERN_STORE_DMARC_H
#define TERN_STORE_DMARC_H

#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* The longest text kept in one column (the store refuses longer). */
#define STORE_DMARC_TEXT_MAX 4096

struct store_dmarc_result {
	int64_t id;                 /* listing only */
	int64_t day;                /* Unix time / 86400 (UTC day) */
	const char *policy_domain;  /* where the record was found */
	const char *from_domain;    /* RFC5322.From domain */
	const char *source_ip;
	const char *envelope_from;  /* MAIL FROM domain ("" null sender) */
	const char *spf_domain;     /* the domain SPF checked */
	const char *spf_result;     /* spf_result_name() */
	const char *dkim;           /* "d1:pass d2:fail", "" unsigned */
	bool spf_aligned, dkim_aligned;
	const char *disposition;    /* "none", "quarantine", "reject" */
	const char *policy;         /* "adkim aspf p sp pct", e.g. "r r none none 100" */
	const char *rua;            /* the rua URIs separated by spaces */
};

/* Add one evaluation on the commit thread (fields copied before return);
 * cb runs on base (the commit thread when NULL) after the commit.  0 queued, <0 when a
 * field is too long or holds CR/LF, or the store refuses writes. */
int store_dmarc_add(struct store *store, struct event_base *base,
		    const struct store_dmarc_result *r, store_done_cb *cb, void *ctx);
/* The same, waiting (tests, the CLI). */
int store_dmarc_add_sync(struct store *store, const struct store_dmarc_result *r,
			 const char **error_r);

/* Unreported rows of days <= max_day ordered by policy domain, then id;
 * strings valid during cb only; cb non-zero stops. */
int store_dmarc_list(struct store *store, int64_t max_day,
		     int (*cb)(void *ctx, const struct store_dmarc_result *r), void *ctx,
		     const char **error_r);
/* Mark the unreported rows of domain with id <= max_id and day <=
 * max_day reported. */
int store_dmarc_mark(struct store *store, const char *domain, int64_t max_id, int64_t max_day,
		     const char **error_r);
/* Delete results of days before before_day, and received reports whose
 * range ended before that day. */
int store_dmarc_prune(struct store *store, int64_t before_day, const char **error_r);

/* ---- reports received ---- */

struct store_dmarc_row {
	const char *source_ip;
	int64_t count;
	const char *disposition;    /* policy_evaluated */
	const char *eval_dkim, *eval_spf;   /* policy_evaluated: "pass"/"fail" */
	const char *header_from;
	const char *dkim_result;    /* auth_results: "pass" if any DKIM passed,
				       else the first result, "none" without */
	const char *spf_result;     /* auth_results: the first SPF result */
};

struct store_dmarc_report {
	const char *org_name, *email, *report_id, *domain;
	int64_t date_begin, date_end;
	const struct store_dmarc_row *rows;
	size_t count;
};

/* Keep a received report with its rows (waits).  1 stored, 0 already
 * there (same org_name and report_id), -1 with *error_r. */
int store_dmarc_import(struct store *store, const struct store_dmarc_report *rep,
		       const char **error_r);

struct store_dmarc_summary {
	const char *source_ip;
	const char *org_name;       /* the reporters, comma-separated */
	int64_t total;
	int64_t spf_pass, dkim_pass;   /* raw results (auth_results) */
	int64_t aligned_pass;          /* DMARC pass: aligned DKIM or SPF */
};

/* Per source IP, the received reports for domain whose range ends at or
 * after since (Unix time), largest total first. */
int store_dmarc_summary(struct store *store, const char *domain, int64_t since,
			int (*cb)(void *ctx, const struct store_dmarc_summary *s), void *ctx,
			const char **error_r);

#endif
