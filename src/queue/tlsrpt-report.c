/* The TLS report of one policy domain (RFC 8460 4, built with jansson),
 * its gzip form (zlib, RFC 1952) and the report mail (RFC 8460 5.3).
 *
 * Grouping (4.3, 4.4): rows of the same policy type and policy string
 * (and, for "tlsa", MX host) form one policy object; its summary adds up
 * successful rows (result_type "") and failed rows; its failure-details
 * hold one entry per MX host, receiving IP, result type and reason code.
 * Days are summed: one report covers the whole date range.
 *
 * Invariants: every string put in the JSON is ASCII (other bytes become
 * '?'), so jansson never refuses one; every header field of the mail is
 * checked for CR, LF and non-ASCII bytes before it is written.  We keep no
 * sending-mta-ip (the schema has no column for it), so failure-details
 * leave it out. */
#include "queue/tlsrpt.h"

#include "lib/base64.h"
#include "lib/clock.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static json_t *jstr(const char *s)
{
	size_t n = strlen(s);
	char *c = xmalloc(n + 1);
	json_t *j;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		c[i] = ch < 0x80 ? (char)ch : '?';
	}
	c[n] = '\0';
	j = json_stringn(c, n);
	free(c);
	return j != NULL ? j : json_string("");
}

static void fmt_time(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The policy strings of a row: one per line. */
static json_t *policy_strings(const char *policy)
{
	json_t *a = json_array();
	const char *p = policy;

	while (*p != '\0') {
		size_t n = strcspn(p, "\n");
		char *line = xstrndup(p, n);
		json_array_append_new(a, jstr(line));
		free(line);
		p += n;
		if (*p == '\n')
			p++;
	}
	return a;
}

/* mx-host: the mx patterns of an STS policy ("mx: " lines), or the MX
 * host of a DANE policy. */
static json_t *policy_mx(const struct store_tls_result *r)
{
	json_t *a = json_array();

	if (strcmp(r->policy_type, "tlsa") == 0) {
		if (r->mx_host[0] != '\0')
			json_array_append_new(a, jstr(r->mx_host));
		return a;
	}
	for (const char *p = r->policy; *p != '\0';) {
		size_t n = strcspn(p, "\n");
		if (n > 4 && strncmp(p, "mx: ", 4) == 0) {
			char *mx = xstrndup(p + 4, n - 4);
			json_array_append_new(a, jstr(mx));
			free(mx);
		}
		p += n;
		if (*p == '\n')
			p++;
	}
	return a;
}

static bool same_policy(const struct store_tls_result *a, const struct store_tls_result *b)
{
	return strcmp(a->policy_type, b->policy_type) == 0 && strcmp(a->policy, b->policy) == 0 &&
	       (strcmp(a->policy_type, "tlsa") != 0 || strcmp(a->mx_host, b->mx_host) == 0);
}

static bool same_failure(const struct store_tls_result *a, const struct store_tls_result *b)
{
	return strcmp(a->mx_host, b->mx_host) == 0 && strcmp(a->receiving_ip, b->receiving_ip) == 0 &&
	       strcmp(a->result_type, b->result_type) == 0 && strcmp(a->detail, b->detail) == 0;
}

/* The policy object of the rows like rows[first] (done[] marks them). */
static json_t *policy_object(const struct tlsrpt_report *p, size_t first, bool *done)
{
	const struct store_tls_result *f = &p->rows[first];
	json_t *obj = json_object(), *pol = json_object(), *sum = json_object();
	json_t *details = json_array();
	json_int_t ok = 0, bad = 0;
	bool *seen = xcalloc(p->count, sizeof(*seen));

	json_object_set_new(pol, "policy-type", jstr(f->policy_type));
	if (f->policy[0] != '\0')
		json_object_set_new(pol, "policy-string", policy_strings(f->policy));
	json_object_set_new(pol, "policy-domain", jstr(p->policy_domain));
	if (strcmp(f->policy_type, "no-policy-found") != 0) {
		json_t *mx = policy_mx(f);
		if (json_array_size(mx) > 0)
			json_object_set_new(pol, "mx-host", mx);
		else
			json_decref(mx);
	}
	for (size_t i = first; i < p->count; i++) {
		const struct store_tls_result *r = &p->rows[i];
		if (done[i] || !same_policy(f, r))
			continue;
		done[i] = true;
		if (r->result_type[0] == '\0') {
			ok += r->count;
			continue;
		}
		bad += r->count;
		if (seen[i])
			continue;
		/* one failure-details entry for every row alike */
		json_int_t n = 0;
		for (size_t k = i; k < p->count; k++) {
			if (!seen[k] && same_policy(f, &p->rows[k]) && same_failure(r, &p->rows[k])) {
				seen[k] = true;
				n += p->rows[k].count;
			}
		}
		json_t *d = json_object();
		json_object_set_new(d, "result-type", jstr(r->result_type));
		if (r->receiving_ip[0] != '\0')
			json_object_set_new(d, "receiving-ip", jstr(r->receiving_ip));
		if (r->mx_host[0] != '\0')
			json_object_set_new(d, "receiving-mx-hostname", jstr(r->mx_host));
		json_object_set_new(d, "failed-session-count", json_integer(n));
		if (r->detail[0] != '\0')
			json_object_set_new(d, "failure-reason-code", jstr(r->detail));
		json_array_append_new(details, d);
	}
	free(seen);
	json_object_set_new(sum, "total-successful-session-count", json_integer(ok));
	json_object_set_new(sum, "total-failure-session-count", json_integer(bad));
	json_object_set_new(obj, "policy", pol);
	json_object_set_new(obj, "summary", sum);
	if (json_array_size(details) > 0)
		json_object_set_new(obj, "failure-details", details);
	else
		json_decref(details);
	return obj;
}

char *tlsrpt_report_json(const struct tlsrpt_report *p, const char **error_r)
{
	json_t *root = json_object(), *range = json_object(), *policies = json_array();
	bool *done = xcalloc(p->count ? p->count : 1, sizeof(*done));
	char start[32], end[32], *out;

	fmt_time(p->start, start);
	fmt_time(p->end, end);
	json_object_set_new(root, "organization-name", jstr(p->organization));
	json_object_set_new(range, "start-datetime", jstr(start));
	json_object_set_new(range, "end-datetime", jstr(end));
	json_object_set_new(root, "date-range", range);
	json_object_set_new(root, "contact-info", jstr(p->contact));
	json_object_set_new(root, "report-id", jstr(p->report_id));
	for (size_t i = 0; i < p->count; i++)
		if (!done[i])
			json_array_append_new(policies, policy_object(p, i, done));
	json_object_set_new(root, "policies", policies);
	free(done);
	out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (out == NULL) {
		*error_r = "cannot serialise the report";
		return NULL;
	}
	/* jansson's allocator is malloc: the caller frees with free() */
	return out;
}

int tlsrpt_gzip(const void *data, size_t len, struct buf *out, const char **error_r)
{
	z_stream z;
	unsigned char chunk[16384];
	int rc;

	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip header and trailer (RFC 1952) */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		*error_r = "zlib: cannot start compression";
		return -1;
	}
	z.next_in = (unsigned char *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		rc = deflate(&z, Z_FINISH);
		if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
			deflateEnd(&z);
			*error_r = "zlib: compression failed";
			return -1;
		}
		if (buf_append(out, chunk, sizeof(chunk) - z.avail_out) < 0) {
			deflateEnd(&z);
			*error_r = "the compressed report is too large";
			return -1;
		}
	} while (rc != Z_STREAM_END);
	deflateEnd(&z);
	return 0;
}

static bool header_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

int tlsrpt_mail_build(const struct tlsrpt_mail *m, struct buf *out, const char **error_r)
{
	char date[64], start[32], end[32];
	char *b64, *boundary;
	size_t n;

	if (!header_ok(m->from) || !header_ok(m->to) || !header_ok(m->submitter) ||
	    !header_ok(m->policy_domain) || !header_ok(m->report_id)) {
		*error_r = "a report header field holds a control or non-ASCII character";
		return -1;
	}
	clock_rfc5322(m->date, date, sizeof(date));
	fmt_time(m->start, start);
	fmt_time(m->end, end);
	boundary = xasprintf("=_tlsrpt_%lld_%lld", (long long)m->start, (long long)m->date);
	buf_printf(out, "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\n", m->from, m->to, date);
	/* RFC 8460 5.3: the subject names the domain, the submitter and the id */
	buf_printf(out, "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n",
		   m->policy_domain, m->submitter, m->report_id);
	buf_printf(out, "TLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\n",
		   m->policy_domain, m->submitter);
	buf_printf(out, "Message-ID: <%s>\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n",
		   m->report_id);
	buf_printf(out, "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n"
		   "\tboundary=\"%s\"\r\n\r\n", boundary);
	buf_printf(out, "This is a multi-part message in MIME format.\r\n\r\n--%s\r\n", boundary);
	buf_printf(out, "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
		   "This is an SMTP TLS report (RFC 8460) from %s for the domain %s,\r\n"
		   "covering %s to %s.  The report is attached, gzip'd JSON.\r\n\r\n",
		   m->submitter, m->policy_domain, start, end);
	buf_printf(out, "--%s\r\nContent-Type: application/tlsrpt+gzip\r\n"
		   "Content-Transfer-Encoding: base64\r\n"
		   "Content-Disposition: attachment;\r\n"
		   "\tfilename=\"%s!%s!%lld!%lld.json.gz\"\r\n\r\n", boundary, m->submitter,
		   m->policy_domain, (long long)m->start, (long long)m->end);
	b64 = base64_encode_str(m->gz, m->gz_len);
	n = strlen(b64);
	for (size_t i = 0; i < n; i += 76) {
		buf_append(out, b64 + i, n - i < 76 ? n - i : 76);
		buf_append(out, "\r\n", 2);
	}
	free(b64);
	buf_printf(out, "\r\n--%s--\r\n", boundary);
	free(boundary);
	return 0;
}

const char *tlsrpt_classify_tls_failure(const char *failure, bool dane)
{
	if (failure == NULL)
		return TLSRPT_VALIDATION_FAILURE;
	if (dane && (strstr(failure, "DANE") != NULL || strstr(failure, "TLSA") != NULL ||
		     strstr(failure, "certificate verification") != NULL))
		return TLSRPT_TLSA_INVALID;
	if (strstr(failure, "certificate verification") == NULL)
		return TLSRPT_VALIDATION_FAILURE;   /* a handshake failure */
	if (strstr(failure, "ostname mismatch") != NULL || strstr(failure, "host mismatch") != NULL)
		return TLSRPT_CERT_HOST_MISMATCH;
	if (strstr(failure, "expired") != NULL || strstr(failure, "not yet valid") != NULL)
		return TLSRPT_CERT_EXPIRED;
	return TLSRPT_CERT_NOT_TRUSTED;
}
