/* DMARC aggregate reports we send (RFC 7489 7.2).
 *
 * The port-25 server records every DMARC evaluation whose record had a
 * rua (store/dmarc.h).  Once a day (dmarc_reports.send_hour, UTC) the
 * unreported results of each policy domain become one XML report
 * (mailauth/dmarc-report.h), gzip'd and mailed to every mailto: rua
 * through the queue with the null sender, honouring the URI's "!size"
 * limit; a rua outside the policy domain's organisational domain first
 * needs the TXT record POLICYDOMAIN._report._dmarc.RUADOMAIN (RFC 7489
 * 7.1).  `tern dmarc send` runs the same code at once.
 *
 * docs/dmarc.md ("Aggregate reports") describes it for administrators. */
#ifndef TERN_QUEUE_DMARCREP_H
#define TERN_QUEUE_DMARCREP_H

#include "lib/buf.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct config;
struct event_base;
struct store;

struct dmarcrep_mail {
	const char *from;            /* the From address */
	const char *to;              /* the rua address */
	const char *submitter;       /* our host name */
	const char *policy_domain;
	const char *report_id;
	time_t begin, end, date;
	const void *gz;              /* the gzip'd XML report */
	size_t gz_len;
};
/* The report mail (RFC 7489 7.2.1.1): Subject "Report Domain: ...
 * Submitter: ... Report-ID: <...>", a short text part and the report as
 * application/gzip named "submitter!domain!begin!end.xml.gz", CRLF line
 * ends, appended to out.  0, or -1 when a field holds a control or
 * non-ASCII byte. */
int dmarcrep_mail_build(const struct dmarcrep_mail *m, struct buf *out, const char **error_r);

/* One rua URI as we store it ("mailto:addr" with an optional "!size"):
 * 0 with the percent-decoded address (malloc'd) and the limit in bytes
 * (0: none); -1 when it is not a usable mailto: URI. */
int dmarcrep_rua_parse(const char *uri, size_t len, char **addr_r, uint64_t *max_size_r);

struct dmarcrep_send_stats {
	unsigned domains;            /* policy domains with results */
	unsigned reports;            /* reports delivered to at least one rua */
	unsigned skipped;            /* domains whose rua took nothing (not verified,
					too small a size limit, no mailto:) */
	unsigned failed;             /* reports no rua took for a passing reason
					(kept for the next run) */
};

/* Send the reports due: every unreported result of days before today
 * (and of today so far with include_today).  Blocks (DNS through its own
 * resolver, store writes waited for): the CLI or a worker thread only.
 * Report mails enter the queue; the caller kicks it.  Results older than
 * dmarc_reports.keep_days are pruned, with received reports.  0, or -1
 * with *error_r. */
int dmarcrep_send_run(struct store *store, const struct config *cfg, bool include_today,
		      struct dmarcrep_send_stats *stats, const char **error_r);

struct dmarcrep_service;
/* The daily run in the server (queue/report.h); NULL when
 * dmarc_reports.enabled is off. */
struct dmarcrep_service *dmarcrep_service_start(struct event_base *base, struct store *store,
						const struct config *cfg,
						void (*kick)(void *ctx), void *kick_ctx);
/* Stop it and wait for a run in progress; *s = NULL. */
void dmarcrep_service_stop(struct dmarcrep_service **s);

#endif
