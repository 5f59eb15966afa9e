/* DMARC aggregate reports others send us (RFC 7489 7.2): importing them
 * into the store (store/dmarc.h) from a file, from a message, or by
 * themselves from the report mailboxes while the server runs.
 *
 * The report mailboxes (docs/dmarc.md "The reports others send you"):
 * for every local domain, dmarc-reports@DOMAIN (the rua `tern dns records`
 * suggests) when it is a user or an alias reaching local users, plus
 * every address of dmarc_reports.import_addresses.  Their INBOX is looked
 * at every dmarc_reports.import_interval seconds; messages are read, never
 * changed or removed. */
#ifndef TERN_QUEUE_DMARCREP_IMPORT_H
#define TERN_QUEUE_DMARCREP_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct event_base;
struct store;

/* The largest mail or report file imported, in bytes. */
#define DMARCREP_IMPORT_MAX (64u << 20)
/* What one pass of the service reads at most; the rest waits for the
 * next pass, which then comes after a second. */
#define DMARCREP_IMPORT_PASS_MESSAGES 200
#define DMARCREP_IMPORT_PASS_BYTES (64u << 20)
/* Report mailboxes looked at, at most. */
#define DMARCREP_IMPORT_MAX_MAILBOXES 4096

/* dmarcrep_import_bytes() results besides 1 (stored) and 0 (known) */
#define DMARCREP_IMPORT_FAILED (-1)      /* a report that could not be kept */
#define DMARCREP_IMPORT_NOT_REPORT (-2)  /* a message with no report attached */
#define DMARCREP_IMPORT_TOO_OLD (-3)     /* a report that ended before not_before */

struct dmarcrep_import_info {
	char *org_name, *report_id, *domain;   /* malloc'd; control bytes already
						  replaced by the parser */
	size_t records;
};

/* Parse data[0..len) (the report itself, XML, gzip or zip, or a mail with
 * it attached) and keep it, unless its range ended before not_before (Unix
 * time; see dmarcrep_import_not_before).  1 stored, 0 already there (same
 * org_name and report_id), DMARCREP_IMPORT_NOT_REPORT,
 * DMARCREP_IMPORT_TOO_OLD or DMARCREP_IMPORT_FAILED with *error_r (static
 * text).  On 1 and 0, *info_r is filled (free it with
 * dmarcrep_import_info_clear).  Waits for the store: never on a loop. */
int dmarcrep_import_bytes(struct store *store, const void *data, size_t len,
			  int64_t not_before, struct dmarcrep_import_info *info_r,
			  const char **error_r);
/* The oldest end of a report worth keeping at time now: the start of the
 * UTC day dmarc_reports.keep_days days before today, where the daily
 * pruning (store_dmarc_prune) would delete it anyway.  Without this a
 * rescan of a report mailbox would bring pruned reports back. */
int64_t dmarcrep_import_not_before(const struct config *cfg, int64_t now);
/* Free what info holds and zero it. */
void dmarcrep_import_info_clear(struct dmarcrep_import_info *info);

/* Read fd to its end into a malloc'd buffer (*data_r, *len_r; NUL
 * terminated), at most DMARCREP_IMPORT_MAX bytes.  0, or -1 with *error_r
 * (a read error or a larger input). */
int dmarcrep_import_read(int fd, char **data_r, size_t *len_r, const char **error_r);

/* The default report mailbox of a local domain: "dmarc-reports@DOMAIN"
 * (malloc'd), the address `tern dns records` puts in the rua. */
char *dmarcrep_import_default_address(const char *domain);

/* The users whose INBOX is a report mailbox, each once: cb(ctx, user_id,
 * address) in order (default addresses by domain, then the configured
 * ones).  An address that reaches no local user is skipped (a configured
 * one is passed to skipped(), which may be NULL).  cb non-zero stops.
 * 0, or -1 with *error_r. */
int dmarcrep_import_mailboxes(struct store *store, const struct config *cfg,
			      int (*cb)(void *ctx, int64_t user_id, const char *address),
			      void (*skipped)(void *ctx, const char *address), void *ctx,
			      const char **error_r);

struct dmarcrep_importer;
struct dmarcrep_import_stats {
	unsigned mailboxes;          /* report mailboxes looked at */
	unsigned imported;           /* reports kept */
	unsigned known;              /* reports already there */
	unsigned other;              /* messages without a report */
	unsigned failed;             /* reports that could not be kept */
	bool more;                   /* a limit stopped the pass: messages wait */
};

/* The memory of the scanner: per mailbox, its UIDVALIDITY and the next
 * UID to look at, read from the store by the first pass and written back
 * after each pass that moved them (store/dmarc-import.h), so a new
 * importer on the same store, as after a restart, goes on where the last
 * one stopped.  Nothing is read from the store here. */
struct dmarcrep_importer *dmarcrep_importer_new(struct store *store, const struct config *cfg);
/* Free the importer; *imp = NULL. */
void dmarcrep_importer_free(struct dmarcrep_importer **imp);
/* One pass over the report mailboxes: the messages that arrived since the
 * last pass, at most DMARCREP_IMPORT_PASS_MESSAGES messages and
 * DMARCREP_IMPORT_PASS_BYTES bytes.  Logs mod=dmarc event=report_imported
 * per report kept and event=report_import_failed per failure; then
 * records the positions that moved in the store (a failure there is
 * logged, event=report_import_position_failed, not returned).  Blocks:
 * a worker thread, a test or the CLI.  0, or -1 with *error_r (the
 * store). */
int dmarcrep_importer_pass(struct dmarcrep_importer *imp, struct dmarcrep_import_stats *st,
			   const char **error_r);

struct dmarcrep_import_service;
/* The import in the server: a pass on a thread of its own, the first
 * soon after start, then every dmarc_reports.import_interval seconds (one
 * second after a pass a limit cut short).  NULL when dmarc_reports.import
 * is off. */
struct dmarcrep_import_service *dmarcrep_import_start(struct event_base *base,
						      struct store *store,
						      const struct config *cfg);
/* Stop it, waiting for a pass in progress (which stops at its next
 * message); *s = NULL. */
void dmarcrep_import_stop(struct dmarcrep_import_service **s);

#endif
