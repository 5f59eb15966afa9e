/* SMTP TLS Reporting (RFC 8460) for outbound mail.
 *
 *  - The `_smtp._tls.DOMAIN` TXT record (RFC 8460 3): tlsrpt_record_parse.
 *  - Collecting: the scheduler notes every delivery attempt's TLS outcome
 *    per policy domain (tlsrpt_note); the collector adds them up in
 *    memory and flushes them to the store (store/tlsrpt.h) through the
 *    commit thread every few seconds, so the event loop never waits.
 *  - Reporting: once a day (tlsrpt.send_hour, UTC, time from lib/clock)
 *    the results of each policy domain not yet reported become one JSON
 *    report (RFC 8460 4), gzip'd, sent to every mailto: rua as a
 *    multipart/report mail through the queue (5.3) and POSTed to every
 *    https: rua (5.4).  `tern tlsrpt send` runs the same code at once.
 *
 * docs/delivery.md ("TLS reporting") describes it for administrators. */
#ifndef TERN_QUEUE_TLSRPT_H
#define TERN_QUEUE_TLSRPT_H

#include "lib/buf.h"
#include "store/tlsrpt.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct config;
struct event_base;
struct store;

/* ---- the TXT record (RFC 8460 3) ---- */

#define TLSRPT_RECORD_MAX 4096   /* bytes of one record we look at */
#define TLSRPT_RUA_MAX 8         /* report URIs kept (more are ignored) */
#define TLSRPT_URI_MAX 1024      /* bytes of one URI */
#define TLSRPT_FIELDS_MAX 32     /* fields of one record */

enum tlsrpt_uri_kind { TLSRPT_URI_MAILTO, TLSRPT_URI_HTTPS };

struct tlsrpt_uri {
	enum tlsrpt_uri_kind kind;
	char *value;                 /* mailto: the address (percent-decoded);
					https: the whole URI */
};

struct tlsrpt_record {
	struct tlsrpt_uri rua[TLSRPT_RUA_MAX];
	size_t rua_count;            /* supported URIs; others are skipped */
};

/* Parse one TXT record's text (len bytes, may hold NUL).  1: a valid
 * TLSRPTv1 record into *r (free with tlsrpt_record_clear); 0: not a
 * TLS-RPT record (it does not start with "v=TLSRPTv1"); -1: a TLS-RPT
 * record that is malformed (*error_r says why).  A record with a rua
 * field but no mailto: or https: URI is valid with rua_count 0. */
int tlsrpt_record_parse(const char *text, size_t len, struct tlsrpt_record *r,
			const char **error_r);
/* Free r's URIs and zero it (a zeroed record is fine). */
void tlsrpt_record_clear(struct tlsrpt_record *r);

/* ---- the report (RFC 8460 4) ---- */

struct tlsrpt_report {
	const char *organization;    /* organization-name */
	const char *contact;         /* contact-info */
	const char *report_id;
	const char *policy_domain;
	time_t start, end;           /* date-range */
	const struct store_tls_result *rows;   /* the domain's rows, as listed */
	size_t count;
};

/* The JSON report of p, compact, malloc'd; NULL with *error_r.  One
 * policy object per (policy type, policy string, and for tlsa the MX
 * host), with its summary and failure-details (one per MX host, receiving
 * IP and result type). */
char *tlsrpt_report_json(const struct tlsrpt_report *p, const char **error_r);
/* gzip (RFC 1952) data into out; 0 or -1 with *error_r. */
int tlsrpt_gzip(const void *data, size_t len, struct buf *out, const char **error_r);

struct tlsrpt_mail {
	const char *from;            /* the From address */
	const char *to;              /* the rua address */
	const char *submitter;       /* TLS-Report-Submitter: our domain */
	const char *policy_domain;
	const char *report_id;
	time_t start, end, date;
	const void *gz;              /* the gzip'd report */
	size_t gz_len;
};
/* The report mail (RFC 8460 5.3): multipart/report; report-type=tlsrpt
 * with a short text part and the report as application/tlsrpt+gzip,
 * CRLF line ends, appended to out.  0, or -1 when a field holds CR, LF
 * or a non-ASCII byte. */
int tlsrpt_mail_build(const struct tlsrpt_mail *m, struct buf *out, const char **error_r);

/* ---- collecting ---- */

/* RFC 8460 4.3 result types (success is NULL/"") */
#define TLSRPT_STARTTLS_NOT_SUPPORTED "starttls-not-supported"
#define TLSRPT_CERT_HOST_MISMATCH "certificate-host-mismatch"
#define TLSRPT_CERT_EXPIRED "certificate-expired"
#define TLSRPT_CERT_NOT_TRUSTED "certificate-not-trusted"
#define TLSRPT_VALIDATION_FAILURE "validation-failure"
#define TLSRPT_TLSA_INVALID "tlsa-invalid"
#define TLSRPT_DNSSEC_INVALID "dnssec-invalid"
#define TLSRPT_DANE_REQUIRED "dane-required"
#define TLSRPT_STS_FETCH_ERROR "sts-policy-fetch-error"
#define TLSRPT_STS_INVALID "sts-policy-invalid"
#define TLSRPT_STS_WEBPKI_INVALID "sts-webpki-invalid"

/* The result type for a failed TLS handshake, from the SMTP client's
 * failure text (OpenSSL's verification error); dane: the policy was DANE. */
const char *tlsrpt_classify_tls_failure(const char *failure, bool dane);

struct tlsrpt_collector;

/* A collector flushing to store from base every flush_seconds. */
struct tlsrpt_collector *tlsrpt_collector_new(struct event_base *base, struct store *store,
					      unsigned flush_seconds);
/* One session (or one attempt that failed before a session, e.g. a policy
 * fetch error); result_type NULL or "" for a success.  Strings are copied;
 * CR/LF and over-long values are cut, never stored. */
void tlsrpt_note(struct tlsrpt_collector *c, const char *policy_domain,
		 const char *policy_type, const char *policy, const char *mx_host,
		 const char *receiving_ip, const char *result_type, const char *detail);
/* Hand what is collected to the store now (asynchronous). */
void tlsrpt_collector_flush(struct tlsrpt_collector *c);
/* Flush (completion on the commit thread, so no loop is needed) and free;
 * *c = NULL. */
void tlsrpt_collector_free(struct tlsrpt_collector **c);

/* ---- sending ---- */

struct tlsrpt_send_stats {
	unsigned domains;            /* policy domains with results */
	unsigned reports;            /* reports delivered to at least one rua */
	unsigned no_record;          /* domains without a usable _smtp._tls record */
	unsigned failed;             /* reports no rua took (kept for the next run) */
};

/* Send the reports due: every unreported result of days before today
 * (and of today so far with include_today).  Blocks (DNS lookups through
 * its own resolver, HTTPS POSTs, store writes waited for): call it from
 * the CLI or a worker thread, never an event loop.  Report mails enter the
 * queue; the caller kicks it.  Results of a domain without a TLS-RPT
 * record are marked reported (nobody wants them); rows older than
 * tlsrpt.keep_days are pruned.  0, or -1 with *error_r. */
int tlsrpt_send_run(struct store *store, const struct config *cfg, bool include_today,
		    struct tlsrpt_send_stats *stats, const char **error_r);

struct tlsrpt_service;
/* The daily run in the server: a timer on base checks every few minutes
 * whether send_hour has come on a day not yet done, then runs
 * tlsrpt_send_run on a thread of its own and calls kick(kick_ctx) (from
 * that thread) when report mails were queued.  NULL when tlsrpt is
 * disabled. */
struct tlsrpt_service *tlsrpt_service_start(struct event_base *base, struct store *store,
					    const struct config *cfg,
					    void (*kick)(void *ctx), void *kick_ctx);
/* Stop the timer and wait for a run in progress; *s = NULL. */
void tlsrpt_service_stop(struct tlsrpt_service **s);

#endif
