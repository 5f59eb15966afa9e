/* DMARC aggregate reports (RFC 7489 7.2 and appendix C): the XML report
 * we send, and the parser of the reports others send us.
 *
 *  - dmarc_report_xml builds the <feedback> document from our evaluations,
 *    one <record> per distinct (source IP, disposition, DKIM and SPF
 *    results, identifiers) with its count.
 *  - dmarc_report_parse reads a report given as XML, gzip'd XML or a zip
 *    archive holding one XML file, with libxml2 told never to touch the
 *    network (XML_PARSE_NONET) nor expand entities or load a DTD, and
 *    every size and count capped (DMARC_REPORT_*_MAX).
 *  - dmarc_report_from_message finds such a report among a mail's
 *    attachments (application/gzip, application/zip, text/xml...). */
#ifndef TERN_MAILAUTH_DMARC_REPORT_H
#define TERN_MAILAUTH_DMARC_REPORT_H

#include "lib/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define DMARC_REPORT_XML_MAX (32u << 20)   /* bytes of XML after decompression */
#define DMARC_REPORT_RECORDS_MAX 100000    /* <record> elements read */
#define DMARC_REPORT_TEXT_MAX 1024         /* bytes of one text field kept */

/* ---- building ---- */

/* One evaluation, as recorded (count 1 each, or more). */
struct dmarc_report_eval {
	const char *source_ip;
	const char *header_from;
	const char *envelope_from;   /* "" unknown */
	const char *spf_domain;
	const char *spf_result;      /* "pass", "fail", ... */
	const char *dkim;            /* "d1:pass d2:fail", "" none */
	bool spf_aligned, dkim_aligned;
	const char *disposition;     /* "none", "quarantine", "reject" */
	int64_t count;
};

struct dmarc_report_out {
	const char *org_name, *email, *report_id;
	time_t begin, end;
	const char *policy_domain;
	const char *adkim, *aspf;    /* "r" or "s" */
	const char *p, *sp;          /* "none", "quarantine", "reject" */
	unsigned pct;
	const struct dmarc_report_eval *evals;
	size_t count;
};

/* The XML document of r (UTF-8, with an XML declaration), appended to
 * out; equal evaluations are merged into one record with their summed
 * count.  Text is escaped; a field holding a control character (other
 * than tab) is refused.  0, or -1 with *error_r. */
int dmarc_report_xml(const struct dmarc_report_out *r, struct buf *out, const char **error_r);

/* ---- parsing ---- */

struct dmarc_report_row {
	char *source_ip;
	int64_t count;
	char *disposition, *eval_dkim, *eval_spf;   /* policy_evaluated */
	char *header_from;
	char *dkim_result;   /* "pass" if any auth_results/dkim passed, else
				the first result, "none" when there is none */
	char *spf_result;    /* the first auth_results/spf result, or "none" */
};

struct dmarc_report_in {
	char *org_name, *email, *report_id;
	int64_t begin, end;
	char *domain;        /* policy_published/domain */
	struct dmarc_report_row *rows;
	size_t count;
};

/* Parse data[0..len): XML, gzip'd XML (RFC 1952) or a zip archive (the
 * first member whose name ends in ".xml", else the first member).  0 with
 * *r filled (free with dmarc_report_clear), -1 with *error_r (static
 * text).  Text fields are cut at DMARC_REPORT_TEXT_MAX and control
 * characters become spaces, so nothing from the report can break a line
 * of ours. */
int dmarc_report_parse(const void *data, size_t len, struct dmarc_report_in *r,
		       const char **error_r);
/* Free what r holds and zero it. */
void dmarc_report_clear(struct dmarc_report_in *r);

/* The report attached to the RFC 5322 message msg[0..len): the first leaf
 * part whose type is application/gzip, application/x-gzip,
 * application/zip, application/x-zip-compressed, text/xml or
 * application/xml (or whose file name ends in .xml, .gz or .zip),
 * transfer-decoded into out.  0, or -1 when there is none. */
int dmarc_report_from_message(const char *msg, size_t len, struct buf *out,
			      const char **error_r);

#endif
