/* Sending DMARC aggregate reports (RFC 7489 7.2): the daily run and
 * `tern dmarc send`.
 *
 * For each policy domain with unreported results: the policy and rua of
 * its latest recorded evaluation; the XML report of all its results
 * (mailauth/dmarc-report.h), gzip'd; to every mailto: rua a mail
 * (7.2.1.1) queued like any other mail with the null sender (a local rua
 * goes to its mailbox).  A rua whose domain has another organisational
 * domain than the policy domain is used only when
 * POLICYDOMAIN._report._dmarc.RUADOMAIN has a TXT record starting with
 * "v=DMARC1" (7.1); a report larger than the URI's "!size" is not sent to
 * it (7.2.1.1 allows a smaller one; we send none and log it).  The rows
 * are marked reported when a rua took the report or when no rua can ever
 * take it; a temporary failure (DNS, the store) keeps them for the next
 * run.
 *
 * This code blocks (its own event base and resolver, store writes waited
 * for): it runs in the CLI or on the service's thread, never on a loop. */
#include "queue/dmarcrep.h"

#include "dns/dns.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/base64.h"
#include "lib/log.h"
#include "mailauth/dmarc.h"
#include "mailauth/dmarc-report.h"
#include "queue/report.h"
#include "queue/tlsrpt.h"
#include "store/dmarc.h"

#include <event2/event.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DMARCREP_ROWS_MAX 500000        /* results looked at per run */
#define DMARCREP_REPORT_MAX (16u << 20) /* bytes of one gzip'd report */

/* ---- the mail (RFC 7489 7.2.1.1) ---- */

static bool header_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e)
			return false;
	return true;
}

int dmarcrep_mail_build(const struct dmarcrep_mail *m, struct buf *out, const char **error_r)
{
	char date[64];
	char *b64, *boundary;
	size_t n;

	if (!header_ok(m->from) || !header_ok(m->to) || !header_ok(m->submitter) ||
	    !header_ok(m->policy_domain) || !header_ok(m->report_id)) {
		*error_r = "a report header field holds a control, space or non-ASCII character";
		return -1;
	}
	clock_rfc5322(m->date, date, sizeof(date));
	boundary = xasprintf("=_dmarc_%lld_%lld", (long long)m->begin, (long long)m->date);
	buf_printf(out, "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\n", m->from, m->to, date);
	buf_printf(out, "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n",
		   m->policy_domain, m->submitter, m->report_id);
	buf_printf(out, "Message-ID: <%s>\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n",
		   m->report_id);
	buf_printf(out, "Content-Type: multipart/mixed;\r\n\tboundary=\"%s\"\r\n\r\n", boundary);
	buf_printf(out, "This is a multi-part message in MIME format.\r\n\r\n--%s\r\n", boundary);
	buf_printf(out, "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
		   "This is a DMARC aggregate report (RFC 7489) from %s for the domain\r\n"
		   "%s.  The report is attached, gzip'd XML.\r\n\r\n", m->submitter,
		   m->policy_domain);
	buf_printf(out, "--%s\r\nContent-Type: application/gzip\r\n"
		   "Content-Transfer-Encoding: base64\r\n"
		   "Content-Disposition: attachment;\r\n"
		   "\tfilename=\"%s!%s!%lld!%lld.xml.gz\"\r\n\r\n", boundary, m->submitter,
		   m->policy_domain, (long long)m->begin, (long long)m->end);
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

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int dmarcrep_rua_parse(const char *uri, size_t len, char **addr_r, uint64_t *max_size_r)
{
	const char *bang;
	struct buf a;
	size_t end;
	uint64_t size = 0;

	if (len < 8 || strncasecmp(uri, "mailto:", 7) != 0)
		return -1;
	bang = memchr(uri, '!', len);
	end = bang != NULL ? (size_t)(bang - uri) : len;
	if (bang != NULL) {
		for (const char *p = bang + 1; p < uri + len; p++) {
			if (*p < '0' || *p > '9' || size > UINT64_MAX / 10 - 10)
				return -1;
			size = size * 10 + (uint64_t)(*p - '0');
		}
	}
	buf_init(&a, 320);
	for (size_t i = 7; i < end; i++) {
		char c = uri[i];
		if (c == '%' && i + 2 < end && hexval(uri[i + 1]) >= 0 &&
		    hexval(uri[i + 2]) >= 0) {
			c = (char)(hexval(uri[i + 1]) * 16 + hexval(uri[i + 2]));
			i += 2;
		}
		if (c == '?')
			break;   /* no header fields in a report address */
		if ((unsigned char)c <= 0x20 || (unsigned char)c >= 0x7f || c == '<' || c == '>' ||
		    buf_append(&a, &c, 1) < 0) {
			buf_free(&a);
			return -1;
		}
	}
	if (a.len < 3 || strchr(buf_cstr(&a), '@') == NULL || buf_cstr(&a)[0] == '@' ||
	    buf_cstr(&a)[a.len - 1] == '@') {
		buf_free(&a);
		return -1;
	}
	*addr_r = buf_steal(&a);
	*max_size_r = size;
	return 0;
}

/* ---- the rows of a run ---- */

struct rowset {
	struct store_dmarc_result *v;
	size_t n, alloc;
	bool truncated;
};

#define ROW_TEXTS(X) X(policy_domain) X(from_domain) X(source_ip) X(envelope_from) \
	X(spf_domain) X(spf_result) X(dkim) X(disposition) X(policy) X(rua)

static int rowset_add(void *ctx, const struct store_dmarc_result *r)
{
	struct rowset *s = ctx;
	struct store_dmarc_result *c;

	if (s->n == DMARCREP_ROWS_MAX) {
		s->truncated = true;
		return 1;
	}
	if (s->n == s->alloc) {
		s->alloc = s->alloc ? s->alloc * 2 : 64;
		s->v = xrealloc(s->v, s->alloc * sizeof(*s->v));
	}
	c = &s->v[s->n++];
	*c = *r;
#define CP(f) c->f = xstrdup(r->f);
	ROW_TEXTS(CP)
#undef CP
	return 0;
}

static void rowset_free(struct rowset *s)
{
	for (size_t i = 0; i < s->n; i++) {
#define FR(f) free((char *)s->v[i].f);
		ROW_TEXTS(FR)
#undef FR
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* ---- DNS: the external destination check (RFC 7489 7.1) ---- */

struct wait_txt {
	bool done;
	bool found;
	enum dns_status status;
};

static void txt_done(const struct dns_txt_result *res, void *ctx)
{
	struct wait_txt *w = ctx;

	w->done = true;
	w->status = res->status;
	for (size_t i = 0; res->status == DNS_OK && i < res->count; i++)
		if (res->records[i].len >= 8 && strncasecmp(res->records[i].text, "v=DMARC1", 8) == 0)
			w->found = true;
}

static bool wait_loop(struct event_base *base, const bool *done)
{
	/* the resolver times out every query (dns.timeout), so this ends */
	while (!*done)
		if (event_base_loop(base, EVLOOP_ONCE) < 0)
			return false;
	return true;
}

struct run {
	struct store *store;
	const struct config *cfg;
	struct event_base *base;
	struct dns_resolver *dns;
	struct dmarc_psl *psl;
	bool include_today;
	time_t now;
};

/* 1 the rua may take reports of domain, 0 not, -1 DNS failed. */
static int destination_ok(struct run *r, const char *domain, const char *addr)
{
	const char *rua_domain = strrchr(addr, '@') + 1;
	char *o1 = dmarc_org_domain(r->psl, domain), *o2 = dmarc_org_domain(r->psl, rua_domain);
	bool same = strcasecmp(o1, o2) == 0;
	struct wait_txt w = { 0 };
	char *name;

	free(o1);
	free(o2);
	if (same)
		return 1;
	name = xasprintf("%s._report._dmarc.%s", domain, rua_domain);
	if (dns_txt(r->dns, name, txt_done, &w) == NULL || !wait_loop(r->base, &w.done)) {
		free(name);
		return -1;
	}
	log_info("dmarc", "event=report_destination_check name=%s found=%s dns=%s",
		 log_quote(name), w.found ? "yes" : "no", dns_status_name(w.status));
	free(name);
	if (w.found)
		return 1;
	return w.status == DNS_TEMPFAIL ? -1 : 0;
}

static void report_id(const struct config *cfg, time_t start, char *out, size_t outsz)
{
	unsigned char rnd[6];
	struct tm tm;
	char day[32];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	gmtime_r(&start, &tm);
	strftime(day, sizeof(day), "%Y%m%d", &tm);
	snprintf(out, outsz, "%s.%02x%02x%02x%02x%02x%02x@%s", day, rnd[0], rnd[1], rnd[2],
		 rnd[3], rnd[4], rnd[5], cfg->hostname);
}

/* Split "adkim aspf p sp pct" into w (5 words, in buf). */
static void policy_words(const char *policy, char *buf, size_t bufsz, const char *w[5])
{
	static const char *const def[5] = { "r", "r", "none", "none", "100" };
	char *save = NULL, *t;
	int i = 0;

	snprintf(buf, bufsz, "%s", policy);
	for (int k = 0; k < 5; k++)
		w[k] = def[k];
	for (t = strtok_r(buf, " ", &save); t != NULL && i < 5; t = strtok_r(NULL, " ", &save))
		w[i++] = t;
}

/* Report rows[0..n) of one policy domain: 1 a rua took it, 0 none can,
 * -1 a temporary failure. */
static int report_domain(struct run *r, const char *domain, const struct store_dmarc_result *rows,
			 size_t n, struct dmarcrep_send_stats *stats)
{
	const struct config *cfg = r->cfg;
	const struct store_dmarc_result *last = &rows[n - 1];
	struct dmarc_report_eval *ev = xcalloc(n, sizeof(*ev));
	int64_t first_day = rows[0].day, last_day = rows[0].day;
	char pbuf[256], id[320];
	const char *pw[5], *error = NULL;
	char *from, *contact, *ruas, *save = NULL;
	struct buf xml, gz;
	unsigned ok = 0, temp = 0;

	for (size_t i = 0; i < n; i++) {
		ev[i] = (struct dmarc_report_eval){
			.source_ip = rows[i].source_ip, .header_from = rows[i].from_domain,
			.envelope_from = rows[i].envelope_from, .spf_domain = rows[i].spf_domain,
			.spf_result = rows[i].spf_result, .dkim = rows[i].dkim,
			.spf_aligned = rows[i].spf_aligned, .dkim_aligned = rows[i].dkim_aligned,
			.disposition = rows[i].disposition, .count = 1,
		};
		if (rows[i].day < first_day)
			first_day = rows[i].day;
		if (rows[i].day > last_day)
			last_day = rows[i].day;
	}
	policy_words(last->policy, pbuf, sizeof(pbuf), pw);
	contact = cfg->dmarc_reports.contact ? xstrdup(cfg->dmarc_reports.contact)
					     : xasprintf("postmaster@%s", cfg->hostname);
	from = cfg->dmarc_reports.sender ? xstrdup(cfg->dmarc_reports.sender)
					 : xasprintf("noreply-dmarc@%s", cfg->hostname);
	struct dmarc_report_out out = {
		.org_name = cfg->dmarc_reports.organization ? cfg->dmarc_reports.organization
							    : cfg->hostname,
		.email = contact, .report_id = id, .policy_domain = domain,
		.begin = (time_t)(first_day * 86400),
		.end = r->include_today && last_day == (int64_t)(r->now / 86400)
			? r->now : (time_t)((last_day + 1) * 86400 - 1),
		.adkim = pw[0], .aspf = pw[1], .p = pw[2], .sp = pw[3],
		.pct = (unsigned)strtoul(pw[4], NULL, 10), .evals = ev, .count = n,
	};
	report_id(cfg, out.begin, id, sizeof(id));
	buf_init(&xml, DMARC_REPORT_XML_MAX);
	buf_init(&gz, DMARCREP_REPORT_MAX);
	if (dmarc_report_xml(&out, &xml, &error) < 0 ||
	    tlsrpt_gzip(xml.data, xml.len, &gz, &error) < 0) {
		log_error("dmarc", "event=report_failed domain=%s error=%s", log_quote(domain),
			  log_quote(error));
		temp++;
		goto out;
	}
	ruas = xstrdup(last->rua);
	for (char *u = strtok_r(ruas, " ", &save); u != NULL; u = strtok_r(NULL, " ", &save)) {
		char *addr = NULL;
		uint64_t max = 0;
		struct buf msg;
		int dest;

		if (dmarcrep_rua_parse(u, strlen(u), &addr, &max) < 0) {
			log_info("dmarc", "event=report_skipped domain=%s rua=%s reason=%s",
				 log_quote(domain), log_quote(u), "not a mailto: URI");
			continue;
		}
		if ((dest = destination_ok(r, domain, addr)) <= 0) {
			log_info("dmarc", "event=report_skipped domain=%s rua=%s reason=%s",
				 log_quote(domain), log_quote(addr), dest < 0
				 ? "DNS failure on the _report._dmarc check"
				 : "the rua domain did not authorise reports (no _report._dmarc record)");
			if (dest < 0)
				temp++;
			free(addr);
			continue;
		}
		struct dmarcrep_mail m = {
			.from = from, .to = addr, .submitter = cfg->hostname, .policy_domain = domain,
			.report_id = id, .begin = out.begin, .end = out.end, .date = r->now,
			.gz = gz.data, .gz_len = gz.len,
		};
		buf_init(&msg, BUF_UNLIMITED);
		if (dmarcrep_mail_build(&m, &msg, &error) < 0) {
			log_error("dmarc", "event=report_failed domain=%s rua=%s error=%s",
				  log_quote(domain), log_quote(addr), log_quote(error));
		} else if (max > 0 && msg.len > max) {
			log_info("dmarc", "event=report_skipped domain=%s rua=%s reason=%s bytes=%zu "
				 "limit=%llu", log_quote(domain), log_quote(addr),
				 "larger than the rua's size limit", msg.len, (unsigned long long)max);
		} else if (report_mail_deliver(r->store, addr, &msg, &error) < 0) {
			log_error("dmarc", "event=report_failed domain=%s rua=%s error=%s",
				  log_quote(domain), log_quote(addr), log_quote(error));
			temp++;
		} else {
			log_info("dmarc", "event=report_sent domain=%s rua=%s report_id=%s records=%zu "
				 "bytes=%zu", log_quote(domain), log_quote(addr), id, n, gz.len);
			ok++;
		}
		buf_free(&msg);
		free(addr);
	}
	free(ruas);
out:
	buf_free(&xml);
	buf_free(&gz);
	free(ev);
	free(from);
	free(contact);
	if (ok > 0)
		return 1;
	if (temp > 0) {
		stats->failed++;
		return -1;
	}
	stats->skipped++;
	return 0;
}

int dmarcrep_send_run(struct store *store, const struct config *cfg, bool include_today,
		      struct dmarcrep_send_stats *stats, const char **error_r)
{
	struct run r = { .store = store, .cfg = cfg, .include_today = include_today,
			 .now = clock_now() };
	int64_t today = (int64_t)(r.now / 86400);
	int64_t max_day = include_today ? today : today - 1;
	struct rowset rows = { 0 };
	int ret = 0;

	memset(stats, 0, sizeof(*stats));
	if (store_dmarc_list(store, max_day, rowset_add, &rows, error_r) < 0) {
		rowset_free(&rows);
		return -1;
	}
	if (rows.n > 0) {
		if ((r.psl = dmarc_psl_open(NULL, error_r)) == NULL) {
			rowset_free(&rows);
			return -1;
		}
		if ((r.base = event_base_new()) == NULL ||
		    (r.dns = dns_resolver_new(r.base, cfg, error_r)) == NULL) {
			if (r.base == NULL)
				*error_r = "cannot create an event base";
			else
				event_base_free(r.base);
			dmarc_psl_free(&r.psl);
			rowset_free(&rows);
			return -1;
		}
	}
	/* rows come ordered by policy domain, then id */
	for (size_t i = 0; i < rows.n;) {
		size_t k = i;
		while (k < rows.n && strcmp(rows.v[k].policy_domain, rows.v[i].policy_domain) == 0)
			k++;
		if (rows.truncated && k == rows.n && i > 0)
			break;   /* maybe incomplete: the next run takes it */
		stats->domains++;
		int rc = report_domain(&r, rows.v[i].policy_domain, rows.v + i, k - i, stats);
		if (rc >= 0) {
			const char *err = NULL;
			if (store_dmarc_mark(store, rows.v[i].policy_domain, rows.v[k - 1].id, max_day,
					     &err) < 0) {
				log_error("dmarc", "event=mark_failed domain=%s error=%s",
					  log_quote(rows.v[i].policy_domain), log_quote(err));
				*error_r = err;
				ret = -1;
			}
			if (rc > 0)
				stats->reports++;
		}
		i = k;
	}
	if (r.dns != NULL)
		dns_resolver_free(&r.dns);
	if (r.base != NULL)
		event_base_free(r.base);
	dmarc_psl_free(&r.psl);
	rowset_free(&rows);
	if (store_dmarc_prune(store, today - (int64_t)cfg->dmarc_reports.keep_days, error_r) < 0)
		ret = -1;
	log_info("dmarc", "event=report_run domains=%u reports=%u skipped=%u failed=%u",
		 stats->domains, stats->reports, stats->skipped, stats->failed);
	return ret;
}

/* ---- the daily service (queue/report.h) ---- */

struct dmarcrep_service {
	struct store *store;
	const struct config *cfg;
	struct report_daily *daily;
};

static int service_run(void *arg)
{
	struct dmarcrep_service *s = arg;
	struct dmarcrep_send_stats st;
	const char *error = NULL;

	if (dmarcrep_send_run(s->store, s->cfg, false, &st, &error) < 0)
		log_error("dmarc", "event=report_run_failed error=%s", log_quote(error ? error : ""));
	return st.reports > 0;
}

struct dmarcrep_service *dmarcrep_service_start(struct event_base *base, struct store *store,
						const struct config *cfg,
						void (*kick)(void *ctx), void *kick_ctx)
{
	struct dmarcrep_service *s;

	if (!cfg->dmarc_reports.enabled)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->store = store;
	s->cfg = cfg;
	s->daily = report_daily_start(base, cfg->dmarc_reports.send_hour, service_run, s, kick,
				      kick_ctx);
	return s;
}

void dmarcrep_service_stop(struct dmarcrep_service **sp)
{
	struct dmarcrep_service *s = *sp;

	if (s == NULL)
		return;
	report_daily_stop(&s->daily);
	free(s);
	*sp = NULL;
}
