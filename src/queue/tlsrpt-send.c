/* Sending TLS reports (RFC 8460 4, 5): the daily run and `tern tlsrpt
 * send`.
 *
 * For each policy domain with unreported results: the `_smtp._tls.DOMAIN`
 * TXT record through dns/ (RFC 8460 3: exactly one TLSRPTv1 record, else
 * the domain takes no reports); the JSON report of its results, gzip'd;
 * then to every mailto: rua a multipart/report mail (5.3) queued like any
 * other mail (a local rua is delivered to its mailbox), and to every
 * https: rua a POST with Content-Type application/tlsrpt+gzip (5.4) by
 * libcurl, connecting only to the addresses dns/ gave (CURLOPT_RESOLVE),
 * certificate verified, no redirects, no proxy.  The rows are marked
 * reported when at least one rua took the report; otherwise they stay for
 * the next run.  Report mails go out with the null envelope sender, so a
 * report that cannot be delivered never bounces back into a loop.
 *
 * This code blocks (its own event base and resolver, libcurl's easy
 * interface, store writes waited for): it runs in the CLI or on the
 * service's own thread, never on an event loop. */
#include "queue/tlsrpt.h"

#include "dns/dns.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "queue/report.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TLSRPT_ROWS_MAX 200000        /* results looked at per run */
#define TLSRPT_REPORT_MAX (8u << 20)  /* gzip'd bytes of one report */

/* ---- the rows of a run ---- */

struct rowset {
	struct store_tls_result *v;
	size_t n, alloc;
	bool truncated;
};

static int rowset_add(void *ctx, const struct store_tls_result *r)
{
	struct rowset *s = ctx;

	if (s->n == TLSRPT_ROWS_MAX) {
		s->truncated = true;
		return 1;
	}
	if (s->n == s->alloc) {
		s->alloc = s->alloc ? s->alloc * 2 : 64;
		s->v = xrealloc(s->v, s->alloc * sizeof(*s->v));
	}
	struct store_tls_result *c = &s->v[s->n++];
	*c = *r;
	c->policy_domain = xstrdup(r->policy_domain);
	c->policy_type = xstrdup(r->policy_type);
	c->policy = xstrdup(r->policy);
	c->mx_host = xstrdup(r->mx_host);
	c->receiving_ip = xstrdup(r->receiving_ip);
	c->result_type = xstrdup(r->result_type);
	c->detail = xstrdup(r->detail);
	return 0;
}

static void rowset_free(struct rowset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free((char *)s->v[i].policy_domain);
		free((char *)s->v[i].policy_type);
		free((char *)s->v[i].policy);
		free((char *)s->v[i].mx_host);
		free((char *)s->v[i].receiving_ip);
		free((char *)s->v[i].result_type);
		free((char *)s->v[i].detail);
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* ---- DNS, waited for on our own loop ---- */

struct wait_txt {
	bool done;
	int found;                  /* TLS-RPT records seen */
	struct tlsrpt_record rec;
	bool valid;
	const char *why;
	enum dns_status status;
};

static void txt_done(const struct dns_txt_result *res, void *ctx)
{
	struct wait_txt *w = ctx;

	w->done = true;
	w->status = res->status;
	for (size_t i = 0; res->status == DNS_OK && i < res->count; i++) {
		struct tlsrpt_record r;
		const char *err = NULL;
		int rc = tlsrpt_record_parse(res->records[i].text, res->records[i].len, &r, &err);

		if (rc == 0)
			continue;
		if (w->found++ == 0 && rc > 0) {
			w->rec = r;
			w->valid = true;
		} else if (rc > 0) {
			tlsrpt_record_clear(&r);
		} else {
			w->why = err;   /* static text */
		}
	}
	/* RFC 8460 3: not exactly one record: no reports */
	if (w->found != 1 && w->valid) {
		tlsrpt_record_clear(&w->rec);
		w->valid = false;
		w->why = "more than one TLS-RPT record";
	}
}

static bool wait_loop(struct event_base *base, const bool *done)
{
	/* the resolver times out every query (dns.timeout), so this ends */
	while (!*done)
		if (event_base_loop(base, EVLOOP_ONCE) < 0)
			return false;
	return true;
}

struct wait_addr {
	bool done;
	struct dns_address *addrs;
	size_t n;
	enum dns_status status;
};

static void addr_done(const struct dns_addr_result *res, void *ctx)
{
	struct wait_addr *w = ctx;

	w->done = true;
	w->status = res->status;
	if (res->status == DNS_OK && res->count > 0) {
		w->addrs = xmalloc(res->count * sizeof(*w->addrs));
		memcpy(w->addrs, res->addrs, res->count * sizeof(*w->addrs));
		w->n = res->count;
	}
}

/* ---- HTTPS (RFC 8460 5.4) ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
	(void)data; (void)arg;
	return size * n;
}

/* POST gz to uri (checked by tlsrpt_record_parse).  0 or -1 with a
 * reason in why (malloc'd). */
static int https_post(struct event_base *base, struct dns_resolver *dns,
		      const struct config *cfg, const char *uri, const struct buf *gz,
		      char **why)
{
	const char *h = uri + 8;
	size_t hl = strcspn(h, ":/?#");
	char *host = xstrndup(h, hl);
	unsigned port = 443;
	struct wait_addr w = { 0 };
	struct dns_query *q;
	struct buf res;
	struct curl_slist *resolve = NULL, *headers = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	long code = 0;
	CURL *c;
	CURLcode rc;
	int ret = -1;

	if (h[hl] == ':')
		port = (unsigned)strtoul(h + hl + 1, NULL, 10);
	q = dns_addresses(dns, host, DNS_ADDR_V6_FIRST, addr_done, &w);
	if (q == NULL || !wait_loop(base, &w.done) || w.n == 0) {
		*why = xasprintf("address of %s: %s", host, dns_status_name(w.status));
		free(host);
		free(w.addrs);
		return -1;
	}
	buf_init(&res, 4096);
	buf_printf(&res, "%s:%u:", host, port);
	for (size_t i = 0; i < w.n; i++) {
		char ip[INET6_ADDRSTRLEN];
		if (w.addrs[i].family == AF_INET6) {
			inet_ntop(AF_INET6, &w.addrs[i].addr.v6, ip, sizeof(ip));
			buf_printf(&res, "%s[%s]", i ? "," : "", ip);
		} else {
			inet_ntop(AF_INET, &w.addrs[i].addr.v4, ip, sizeof(ip));
			buf_printf(&res, "%s%s", i ? "," : "", ip);
		}
	}
	free(w.addrs);
	pthread_once(&curl_once, curl_init);
	if ((c = curl_easy_init()) == NULL) {
		*why = xstrdup("cannot create a curl handle");
		goto out;
	}
	resolve = curl_slist_append(resolve, buf_cstr(&res));
	headers = curl_slist_append(headers, "Content-Type: application/tlsrpt+gzip");
	curl_easy_setopt(c, CURLOPT_URL, uri);
	curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (cfg->tlsrpt.ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, cfg->tlsrpt.ca_file);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)cfg->tlsrpt.timeout);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "Tern TLS-RPT");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, gz->data);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)gz->len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		*why = xasprintf("%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200 && code < 300)
			ret = 0;
		else
			*why = xasprintf("HTTP status %ld", code);
	}
	curl_easy_cleanup(c);
out:
	curl_slist_free_all(resolve);
	curl_slist_free_all(headers);
	buf_free(&res);
	free(host);
	return ret;
}

/* ---- one domain ---- */

static void report_id(const struct config *cfg, time_t start, char *out, size_t outsz)
{
	unsigned char r[6];
	struct tm tm;
	char day[32];

	if (RAND_bytes(r, sizeof(r)) != 1)
		memset(r, 0, sizeof(r));
	gmtime_r(&start, &tm);
	strftime(day, sizeof(day), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(out, outsz, "%s.%02x%02x%02x%02x%02x%02x@%s", day, r[0], r[1], r[2], r[3], r[4],
		 r[5], cfg->hostname);
}

struct run {
	struct store *store;
	const struct config *cfg;
	struct event_base *base;
	struct dns_resolver *dns;
	bool include_today;
	time_t now;
	struct tlsrpt_send_stats *stats;
};

/* Report rows[0..n) of one policy domain; 1 delivered, 0 no record, -1. */
static int report_domain(struct run *r, const char *domain, const struct store_tls_result *rows,
			 size_t n)
{
	const struct config *cfg = r->cfg;
	struct wait_txt w = { 0 };
	char *name = xasprintf("_smtp._tls.%s", domain), *json, *from, *contact, id[160];
	const char *error = NULL;
	struct dns_query *q = dns_txt(r->dns, name, txt_done, &w);
	int64_t first = rows[0].day, last = rows[0].day;
	struct buf gz;
	unsigned ok = 0;

	free(name);
	if (q == NULL || !wait_loop(r->base, &w.done))
		return -1;
	if (!w.valid) {
		log_info("tlsrpt", "event=no_record domain=%s dns=%s reason=%s", log_quote(domain),
			 dns_status_name(w.status), log_quote(w.why ? w.why : "none"));
		return w.status == DNS_TEMPFAIL || w.status == DNS_BOGUS ? -1 : 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (rows[i].day < first)
			first = rows[i].day;
		if (rows[i].day > last)
			last = rows[i].day;
	}
	struct tlsrpt_report p = {
		.organization = cfg->tlsrpt.organization ? cfg->tlsrpt.organization : cfg->hostname,
		.policy_domain = domain, .rows = rows, .count = n,
		.start = (time_t)(first * 86400),
		.end = r->include_today && last == (int64_t)(r->now / 86400)
			? r->now : (time_t)((last + 1) * 86400 - 1),
	};
	contact = cfg->tlsrpt.contact ? xstrdup(cfg->tlsrpt.contact)
				      : xasprintf("postmaster@%s", cfg->hostname);
	from = cfg->tlsrpt.sender ? xstrdup(cfg->tlsrpt.sender)
				  : xasprintf("noreply-tlsrpt@%s", cfg->hostname);
	report_id(cfg, p.start, id, sizeof(id));
	p.contact = contact;
	p.report_id = id;
	buf_init(&gz, TLSRPT_REPORT_MAX);
	json = tlsrpt_report_json(&p, &error);
	if (json == NULL || tlsrpt_gzip(json, strlen(json), &gz, &error) < 0) {
		log_error("tlsrpt", "event=report_failed domain=%s error=%s", log_quote(domain),
			  log_quote(error));
		goto out;
	}
	for (size_t i = 0; i < w.rec.rua_count; i++) {
		const struct tlsrpt_uri *u = &w.rec.rua[i];
		char *why = NULL;

		if (u->kind == TLSRPT_URI_MAILTO) {
			struct buf msg;
			struct tlsrpt_mail m = {
				.from = from, .to = u->value, .submitter = cfg->hostname,
				.policy_domain = domain, .report_id = id, .start = p.start,
				.end = p.end, .date = r->now, .gz = gz.data, .gz_len = gz.len,
			};
			buf_init(&msg, BUF_UNLIMITED);
			if (tlsrpt_mail_build(&m, &msg, &error) == 0 &&
			    report_mail_deliver(r->store, u->value, &msg, &error) == 0)
				ok++;
			else
				why = xstrdup(error);
			buf_free(&msg);
		} else if (https_post(r->base, r->dns, cfg, u->value, &gz, &why) == 0) {
			ok++;
		}
		if (why == NULL)
			log_info("tlsrpt", "event=report_sent domain=%s rua=%s report_id=%s bytes=%zu",
				 log_quote(domain), log_quote(u->value), id, gz.len);
		else
			log_error("tlsrpt", "event=report_failed domain=%s rua=%s error=%s",
				  log_quote(domain), log_quote(u->value), log_quote(why));
		free(why);
	}
out:
	free(json);
	buf_free(&gz);
	free(contact);
	free(from);
	tlsrpt_record_clear(&w.rec);
	return ok > 0 ? 1 : -1;
}

int tlsrpt_send_run(struct store *store, const struct config *cfg, bool include_today,
		    struct tlsrpt_send_stats *stats, const char **error_r)
{
	struct run r = { .store = store, .cfg = cfg, .include_today = include_today,
			 .now = clock_now(), .stats = stats };
	int64_t today = (int64_t)(r.now / 86400);
	struct store_tlsrpt_filter f = {
		.unreported_only = true, .max_day = include_today ? today : today - 1,
	};
	struct rowset rows = { 0 };
	int ret = 0;

	memset(stats, 0, sizeof(*stats));
	if (store_tlsrpt_list(store, &f, rowset_add, &rows, error_r) < 0) {
		rowset_free(&rows);
		return -1;
	}
	if (rows.n > 0) {
		if ((r.base = event_base_new()) == NULL) {
			*error_r = "cannot create an event base";
			rowset_free(&rows);
			return -1;
		}
		if ((r.dns = dns_resolver_new(r.base, cfg, error_r)) == NULL) {
			event_base_free(r.base);
			rowset_free(&rows);
			return -1;
		}
	}
	/* rows come ordered by policy domain */
	for (size_t i = 0; i < rows.n;) {
		size_t k = i;
		while (k < rows.n && strcmp(rows.v[k].policy_domain, rows.v[i].policy_domain) == 0)
			k++;
		if (rows.truncated && k == rows.n && i > 0)
			break;   /* maybe incomplete: the next run takes it */
		stats->domains++;
		int rc = report_domain(&r, rows.v[i].policy_domain, rows.v + i, k - i);
		if (rc >= 0) {
			const char *err = NULL;
			if (store_tlsrpt_mark(store, rows.v + i, k - i, &err) < 0) {
				log_error("tlsrpt", "event=mark_failed domain=%s error=%s",
					  log_quote(rows.v[i].policy_domain), log_quote(err));
				*error_r = err;
				ret = -1;
			}
			if (rc > 0)
				stats->reports++;
			else
				stats->no_record++;
		} else {
			stats->failed++;
		}
		i = k;
	}
	if (r.dns != NULL)
		dns_resolver_free(&r.dns);
	if (r.base != NULL)
		event_base_free(r.base);
	rowset_free(&rows);
	if (store_tlsrpt_prune(store, today - (int64_t)cfg->tlsrpt.keep_days, NULL, error_r) < 0)
		ret = -1;
	log_info("tlsrpt", "event=run domains=%u reports=%u no_record=%u failed=%u",
		 stats->domains, stats->reports, stats->no_record, stats->failed);
	return ret;
}

/* ---- the daily service (queue/report.h) ---- */

struct tlsrpt_service {
	struct store *store;
	const struct config *cfg;
	struct report_daily *daily;
};

static int service_run(void *arg)
{
	struct tlsrpt_service *s = arg;
	struct tlsrpt_send_stats st;
	const char *error = NULL;

	if (tlsrpt_send_run(s->store, s->cfg, false, &st, &error) < 0)
		log_error("tlsrpt", "event=run_failed error=%s", log_quote(error ? error : ""));
	return st.reports > 0;
}

struct tlsrpt_service *tlsrpt_service_start(struct event_base *base, struct store *store,
					    const struct config *cfg,
					    void (*kick)(void *ctx), void *kick_ctx)
{
	struct tlsrpt_service *s;

	if (!cfg->tlsrpt.enabled)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->store = store;
	s->cfg = cfg;
	s->daily = report_daily_start(base, cfg->tlsrpt.send_hour, service_run, s, kick, kick_ctx);
	return s;
}

void tlsrpt_service_stop(struct tlsrpt_service **sp)
{
	struct tlsrpt_service *s = *sp;

	if (s == NULL)
		return;
	report_daily_stop(&s->daily);
	free(s);
	*sp = NULL;
}
