/* The asynchronous resolver: libunbound's asynchronous API in a libevent
 * loop (ub_fd() readable -> ub_process(), which runs our completion
 * callbacks), with the rdata decoding of rdata.c and the MX policy of
 * RFC 5321 5.1 and RFC 7505.
 *
 * A dns_query is one caller-visible lookup made of up to two libunbound
 * queries ("subs") run in parallel: A and AAAA for addresses, MX then (for
 * implicit MX, unless dns_mx_explicit() asked) AAAA and A; TXT, TLSA and
 * PTR are one query each.  Invariants:
 *  - a query is in its resolver's list from creation until its callback
 *    has returned or it is cancelled; dns_resolver_free() cancels the rest;
 *  - the user callback runs exactly once, from the event loop, never from
 *    inside dns_mx()/dns_addresses()/...: a failure to start a lookup is
 *    delivered through a zero-delay event;
 *  - every lookup ends within cfg->dns.timeout seconds: a timer cancels the
 *    libunbound queries still running (ub_cancel: their callbacks never
 *    run) and reports DNS_TEMPFAIL;
 *  - data that failed DNSSEC validation is reported as DNS_BOGUS and never
 *    parsed; `secure` is set only when every answer used was validated;
 *  - a question asked again within its answer's TTL is answered from the
 *    resolver's own cache (cache.c) with the very same answer, still
 *    through q->later, so the callback never runs inside the call.
 *
 * Status mapping (RFC 2308, RFC 4035 5.5): NXDOMAIN rcode, or a name that
 * is not valid DNS syntax (a label over 63 octets, say) -> NXDOMAIN; no
 * error and no data -> NODATA; SERVFAIL, REFUSED, other rcodes, timeouts
 * and resolver errors -> TEMPFAIL; bogus -> BOGUS. */
#include "dns/dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unbound.h>
#include <unistd.h>

#include "dns/cache.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"

#define DNS_ROOT_KEY "/usr/share/dns/root.key"
#define RR_A 1
#define RR_PTR 12
#define RR_MX 15
#define RR_TXT 16
#define RR_AAAA 28
#define RR_TLSA 52
#define RR_SRV 33
#define RCODE_NXDOMAIN 3
#define CACHE_ENTRIES 4096       /* answers kept per resolver (cache.c) */

enum query_kind { Q_MX, Q_ADDR, Q_TLSA, Q_TXT, Q_PTR, Q_SRV };

struct dns_sub {
	struct dns_query *q;
	int rrtype;
	int async_id;
	bool running;            /* libunbound holds a pointer to us */
	bool timed_out;
	int err;                 /* libunbound error code, 0 = none */
	const char *fail;        /* our own reason the lookup did not start */
	struct dns_answer *answer;  /* our reference to the answer ... */
	struct ub_result *res;      /* ... and its libunbound result (read only) */
};

struct dns_query {
	struct dns_resolver *r;
	struct dns_query *prev, *next;
	enum query_kind kind;
	char *name;              /* as asked, without a trailing dot */
	union {
		dns_mx_cb *mx;
		dns_addr_cb *addr;
		dns_tlsa_cb *tlsa;
		dns_txt_cb *txt;
		dns_ptr_cb *ptr;
		dns_srv_cb *srv;
	} cb;
	void *ctx;
	enum dns_addr_order order;
	struct dns_sub sub[2];
	unsigned nsubs;
	unsigned running;        /* subs in flight */
	int phase;               /* Q_MX: 0 = MX, 1 = implicit MX addresses */
	bool mx_secure;          /* Q_MX phase 1: the MX denial was validated */
	bool mx_explicit;        /* Q_MX: no implicit MX (dns_mx_explicit) */
	struct event *timer;     /* overall deadline */
	struct event *later;     /* completes a query none of whose subs started */
};

struct dns_resolver {
	struct event_base *base;
	struct ub_ctx *ub;
	struct event *ev;
	dns_random_fn *rnd;
	void *rnd_ctx;
	unsigned timeout;
	/* mode "stub" without a "." zone: names outside these fail at once */
	char **stub_zones;
	unsigned stub_zone_count;
	struct dns_query *queries;
	size_t pending;
	struct dns_cache *cache;
};

static void query_step(struct dns_query *q);

const char *dns_status_name(enum dns_status status)
{
	switch (status) {
	case DNS_OK: return "ok";
	case DNS_NXDOMAIN: return "nxdomain";
	case DNS_NODATA: return "nodata";
	case DNS_NULL_MX: return "null-mx";
	case DNS_TEMPFAIL: return "tempfail";
	case DNS_BOGUS: return "bogus";
	}
	return "unknown";
}

/* ------------------------------------------------------------------ */
/* Setup */

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;
	int err;

	(void)fd;
	(void)what;
	err = ub_process(r->ub);
	if (err != 0)
		log_error("dns", "event=process-failed error=%s", log_quote(ub_strerror(err)));
}

static int ub_fail(struct ub_ctx *ub, int err, const char *what, const char *arg,
		   const char **error_r)
{
	log_error("dns", "event=config-failed what=%s arg=%s error=%s", log_quote(what),
		  log_quote(arg), log_quote(ub_strerror(err)));
	ub_ctx_delete(ub);
	*error_r = what;
	return -1;
}

static bool zone_covers(const char *zone, const char *name)
{
	size_t zl = strlen(zone), nl = strlen(name);

	if (zl > 0 && zone[zl - 1] == '.')
		zl--;
	if (zl == 0)
		return true;
	if (nl > 0 && name[nl - 1] == '.')
		nl--;
	if (nl < zl || strncasecmp(name + nl - zl, zone, zl) != 0)
		return false;
	return nl == zl || name[nl - zl - 1] == '.';
}

static int configure(struct dns_resolver *r, struct ub_ctx *ub, const struct config *cfg,
		     const char **error_r)
{
	const char *mode = cfg->dns.mode != NULL ? cfg->dns.mode : "system";
	const char *anchor = cfg->dns.trust_anchor_file;
	int err;

	/* resolvers and test servers on loopback are normal for us */
	if ((err = ub_ctx_set_option(ub, "do-not-query-localhost:", "no")) != 0)
		return ub_fail(ub, err, "cannot set do-not-query-localhost", "no", error_r);
	if (strcmp(mode, "upstream") == 0) {
		for (unsigned i = 0; i < cfg->dns.upstream_count; i++) {
			if ((err = ub_ctx_set_fwd(ub, cfg->dns.upstream[i])) != 0)
				return ub_fail(ub, err, "bad dns.upstream server",
					       cfg->dns.upstream[i], error_r);
		}
	} else if (strcmp(mode, "stub") == 0) {
		bool root = false;
		/* The stub servers are the authorities themselves: ask them the
		 * full name at once.  Minimised queries for the names above it
		 * would only add round trips, and a server that stays silent for
		 * one such name would make every name below it time out. */
		if ((err = ub_ctx_set_option(ub, "qname-minimisation:", "no")) != 0)
			return ub_fail(ub, err, "cannot set qname-minimisation", "no", error_r);
		for (unsigned i = 0; i < cfg->dns.stub_count; i++) {
			const struct config_dns_stub *st = &cfg->dns.stub[i];
			for (unsigned j = 0; j < st->server_count; j++) {
				if ((err = ub_ctx_set_stub(ub, st->zone, st->servers[j], 0)) != 0)
					return ub_fail(ub, err, "bad dns.stub entry", st->zone, error_r);
			}
			if (zone_covers(st->zone, "."))
				root = true;
		}
		if (!root) {
			r->stub_zones = xcalloc(cfg->dns.stub_count, sizeof(char *));
			for (unsigned i = 0; i < cfg->dns.stub_count; i++)
				r->stub_zones[i] = xstrdup(cfg->dns.stub[i].zone);
			r->stub_zone_count = cfg->dns.stub_count;
		}
	} else {
		if ((err = ub_ctx_resolvconf(ub, NULL)) != 0)
			return ub_fail(ub, err, "cannot read /etc/resolv.conf", "/etc/resolv.conf",
				       error_r);
		if (anchor == NULL && cfg->dns.dnssec) {
			if (access(DNS_ROOT_KEY, R_OK) == 0)
				anchor = DNS_ROOT_KEY;
			else
				log_warn("dns", "event=no-trust-anchor file=%s "
					 "detail=\"DNSSEC is not validated: install dns-root-data "
					 "or set dns.trust_anchor_file\"", DNS_ROOT_KEY);
		}
	}
	if (strcmp(mode, "upstream") == 0 && anchor == NULL && cfg->dns.dnssec &&
	    access(DNS_ROOT_KEY, R_OK) == 0)
		anchor = DNS_ROOT_KEY;
	if (cfg->dns.dnssec && anchor != NULL) {
		if (access(anchor, R_OK) != 0) {
			log_error("dns", "event=config-failed file=%s error=%s", log_quote(anchor),
				  log_quote(strerror(errno)));
			ub_ctx_delete(ub);
			*error_r = "cannot read the DNSSEC trust anchor file";
			return -1;
		}
		if ((err = ub_ctx_add_ta_file(ub, anchor)) != 0)
			return ub_fail(ub, err, "cannot load the DNSSEC trust anchor file", anchor,
				       error_r);
	}
	/* a thread, not a forked process: the worker's privileges stay as they are */
	if ((err = ub_ctx_async(ub, 1)) != 0)
		return ub_fail(ub, err, "cannot make the resolver asynchronous", mode, error_r);
	/* Adding a local zone finalizes the context, so a trust anchor file
	 * libunbound cannot parse fails here and not at the first lookup.
	 * "invalid." is answered NXDOMAIN by default already (RFC 6761 6.4).
	 * Keep this last: nothing can be configured after it. */
	if ((err = ub_ctx_zone_add(ub, "invalid.", "static")) != 0)
		return ub_fail(ub, err, "cannot start the resolver (is the DNSSEC trust anchor "
			       "file valid?)", anchor != NULL ? anchor : mode, error_r);
	if (strcmp(mode, "stub") == 0) {
		/* unbound answers special-use names (RFC 6761: test., invalid., ...)
		 * itself with NXDOMAIN; a stub zone under one must reach its server */
		for (unsigned i = 0; i < cfg->dns.stub_count; i++) {
			/* and a stub zone replaces unbound's own data for a zone it
			 * serves by default (127.in-addr.arpa. answers "localhost"
			 * otherwise); removing a zone that is not there is no error */
			(void)ub_ctx_zone_remove(ub, cfg->dns.stub[i].zone);
			if ((err = ub_ctx_zone_add(ub, cfg->dns.stub[i].zone, "transparent")) != 0)
				return ub_fail(ub, err, "bad dns.stub zone", cfg->dns.stub[i].zone,
					       error_r);
		}
	}
	return 0;
}

struct dns_resolver *dns_resolver_new(struct event_base *base, const struct config *cfg,
				      const char **error_r)
{
	struct dns_resolver *r;
	struct ub_ctx *ub;

	ub = ub_ctx_create();
	if (ub == NULL) {
		*error_r = "cannot create a libunbound context";
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->timeout = cfg->dns.timeout > 0 ? cfg->dns.timeout : 10;
	if (configure(r, ub, cfg, error_r) < 0) {
		/* configure() deleted ub */
		for (unsigned i = 0; i < r->stub_zone_count; i++)
			free(r->stub_zones[i]);
		free(r->stub_zones);
		free(r);
		return NULL;
	}
	r->ub = ub;
	r->ev = event_new(base, ub_fd(ub), EV_READ | EV_PERSIST, on_readable, r);
	if (r->ev == NULL || event_add(r->ev, NULL) < 0) {
		*error_r = "cannot watch the resolver's descriptor";
		if (r->ev != NULL)
			event_free(r->ev);
		ub_ctx_delete(ub);
		for (unsigned i = 0; i < r->stub_zone_count; i++)
			free(r->stub_zones[i]);
		free(r->stub_zones);
		free(r);
		return NULL;
	}
	r->cache = dns_cache_new(CACHE_ENTRIES);
	log_debug("dns", "event=resolver-ready mode=%s dnssec=%s timeout=%u",
		  cfg->dns.mode != NULL ? cfg->dns.mode : "system",
		  cfg->dns.dnssec ? "yes" : "no", r->timeout);
	return r;
}

void dns_resolver_set_random(struct dns_resolver *r, dns_random_fn *rnd, void *ctx)
{
	r->rnd = rnd;
	r->rnd_ctx = ctx;
}

size_t dns_resolver_pending(const struct dns_resolver *r)
{
	return r->pending;
}

/* ------------------------------------------------------------------ */
/* Query lifetime */

static void subs_stop(struct dns_query *q)
{
	for (unsigned i = 0; i < q->nsubs; i++) {
		struct dns_sub *s = &q->sub[i];
		if (s->running) {
			/* after ub_cancel libunbound never calls back with s */
			ub_cancel(q->r->ub, s->async_id);
			s->running = false;
		}
	}
	q->running = 0;
}

static void subs_clear(struct dns_query *q)
{
	for (unsigned i = 0; i < q->nsubs; i++) {
		dns_answer_unref(&q->sub[i].answer);
		memset(&q->sub[i], 0, sizeof(q->sub[i]));
	}
	q->nsubs = 0;
}

/* Take q out of its resolver: nothing of it runs any more, but its
 * results stay readable (the callback reads them after this). */
static void query_detach(struct dns_query *q)
{
	struct dns_resolver *r = q->r;

	subs_stop(q);
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		r->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	r->pending--;
	event_del(q->timer);
	event_del(q->later);
}

static void query_destroy(struct dns_query *q)
{
	subs_clear(q);
	event_free(q->timer);
	event_free(q->later);
	free(q->name);
	free(q);
}

static void query_free(struct dns_query *q)
{
	query_detach(q);
	query_destroy(q);
}

void dns_cancel(struct dns_query **qp)
{
	if (*qp == NULL)
		return;
	query_free(*qp);
	*qp = NULL;
}

void dns_resolver_free(struct dns_resolver **rp)
{
	struct dns_resolver *r = *rp;

	if (r == NULL)
		return;
	while (r->queries != NULL)
		query_free(r->queries);
	event_free(r->ev);
	ub_ctx_delete(r->ub);
	dns_cache_free(&r->cache);
	for (unsigned i = 0; i < r->stub_zone_count; i++)
		free(r->stub_zones[i]);
	free(r->stub_zones);
	free(r);
	*rp = NULL;
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;

	(void)fd;
	(void)what;
	for (unsigned i = 0; i < q->nsubs; i++) {
		if (q->sub[i].running)
			q->sub[i].timed_out = true;
	}
	subs_stop(q);
	log_info("dns", "event=timeout name=%s seconds=%u", log_quote(q->name), q->r->timeout);
	query_step(q);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	query_step(arg);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void ub_done(void *arg, int err, struct ub_result *res)
{
	struct dns_sub *s = arg;
	struct dns_query *q = s->q;

	s->running = false;
	s->err = err;
	s->res = res;
	if (res != NULL) {
		s->answer = dns_answer_wrap(res);
		if (err == 0)
			dns_cache_put(q->r->cache, q->name, s->rrtype, s->answer, now_ms());
	}
	if (--q->running == 0)
		query_step(q);
}

static bool name_allowed(const struct dns_resolver *r, const char *name)
{
	if (r->stub_zones == NULL)
		return true;
	for (unsigned i = 0; i < r->stub_zone_count; i++) {
		if (zone_covers(r->stub_zones[i], name))
			return true;
	}
	return false;
}

/* Start the lookups of rrtypes[0..n) for name.  Completion goes through
 * query_step(), from ub_done() or (when nothing started) q->later. */
static void subs_start(struct dns_query *q, const char *name, const int *rrtypes, unsigned n)
{
	struct dns_resolver *r = q->r;

	subs_clear(q);
	q->nsubs = n;
	q->running = 0;
	for (unsigned i = 0; i < n; i++) {
		struct dns_sub *s = &q->sub[i];
		int err;

		s->q = q;
		s->rrtype = rrtypes[i];
		if (!name_allowed(r, name)) {
			s->fail = "the name is outside the configured dns.stub zones";
			continue;
		}
		/* a repeated question: no trip through libunbound's thread;
		 * q->later completes the query from the loop as for a failure */
		if ((s->answer = dns_cache_get(r->cache, name, rrtypes[i], now_ms())) != NULL) {
			s->res = s->answer->res;
			continue;
		}
		/* count it first: ub_resolve_async never calls back before
		 * ub_process(), but keep the count right regardless */
		s->running = true;
		q->running++;
		err = ub_resolve_async(r->ub, name, rrtypes[i], 1 /* IN */, s, ub_done, &s->async_id);
		if (err != 0) {
			s->running = false;
			q->running--;
			s->err = err;
		}
	}
	if (q->running == 0)
		event_active(q->later, EV_TIMEOUT, 1);
}

static struct dns_query *query_new(struct dns_resolver *r, enum query_kind kind,
				   const char *name, void *ctx)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	size_t len = strlen(name);
	struct timeval tv = { .tv_sec = r->timeout };

	q->r = r;
	q->kind = kind;
	if (len > 1 && name[len - 1] == '.')
		len--;
	q->name = xstrndup(name, len);
	q->ctx = ctx;
	q->timer = evtimer_new(r->base, on_timeout, q);
	q->later = evtimer_new(r->base, on_later, q);
	if (q->timer == NULL || q->later == NULL)
		panic("dns: cannot create events");
	evtimer_add(q->timer, &tv);
	q->next = r->queries;
	if (r->queries != NULL)
		r->queries->prev = q;
	r->queries = q;
	r->pending++;
	return q;
}

/* ------------------------------------------------------------------ */
/* Results */

static enum dns_status sub_status(const struct dns_sub *s, const char **error_r)
{
	*error_r = NULL;
	if (s->fail != NULL) {
		*error_r = s->fail;
		return DNS_TEMPFAIL;
	}
	if (s->timed_out) {
		*error_r = "timeout: no answer from the name servers";
		return DNS_TEMPFAIL;
	}
	if (s->err == UB_SYNTAX) {
		/* a name that cannot be written in DNS cannot exist there */
		*error_r = "not a valid domain name";
		return DNS_NXDOMAIN;
	}
	if (s->err != 0) {
		*error_r = ub_strerror(s->err);
		return DNS_TEMPFAIL;
	}
	if (s->res == NULL) {
		*error_r = "no answer";
		return DNS_TEMPFAIL;
	}
	if (s->res->bogus) {
		*error_r = s->res->why_bogus != NULL ? s->res->why_bogus
			: "DNSSEC validation failed";
		return DNS_BOGUS;
	}
	if (s->res->was_ratelimited) {
		*error_r = "query rate limited";
		return DNS_TEMPFAIL;
	}
	if (s->res->nxdomain || s->res->rcode == RCODE_NXDOMAIN)
		return DNS_NXDOMAIN;
	if (s->res->rcode != 0) {
		switch (s->res->rcode) {
		case 2: *error_r = "SERVFAIL from the name server"; break;
		case 5: *error_r = "REFUSED by the name server"; break;
		default: *error_r = "error response from the name server"; break;
		}
		return DNS_TEMPFAIL;
	}
	return s->res->havedata ? DNS_OK : DNS_NODATA;
}

static bool sub_secure(const struct dns_sub *s)
{
	return s->res != NULL && s->res->secure && !s->res->bogus;
}

/* Iterate the rdata of a result, skipping negative lengths */
#define FOREACH_RDATA(res, i, p, n) \
	for (size_t i = 0; (res)->data != NULL && (res)->data[i] != NULL; i++) \
		if ((res)->len[i] >= 0 && ((p) = (const unsigned char *)(res)->data[i], \
					    (n) = (size_t)(res)->len[i], 1))

static size_t rdata_count(const struct ub_result *res)
{
	size_t n = 0;
	while (res->data != NULL && res->data[n] != NULL)
		n++;
	return n;
}

static void finish_mx(struct dns_query *q, struct dns_mx_result *out, struct dns_mx_host *hosts)
{
	log_debug("dns", "event=mx name=%s status=%s secure=%s hosts=%zu", log_quote(q->name),
		  dns_status_name(out->status), out->secure ? "yes" : "no", out->count);
	/* detached first: the callback may start new queries, or cancel others */
	query_detach(q);
	q->cb.mx(out, q->ctx);
	query_destroy(q);
	if (hosts != NULL)
		dns_mx_hosts_free(hosts, out->count);
}

/* dns_mx_explicit(): every record counts (RFC 7208 4.6.4 limits MX
 * records, not distinct hosts), so none is merged; preference order
 * (stable, no shuffle) for repeatable evaluations; "." entries dropped,
 * only "." a null MX. */
static enum dns_mx_order_result mx_as_published(struct dns_mx_host *hosts, size_t *count)
{
	size_t n = 0, total = *count;

	for (size_t i = 0; i < total; i++) {
		if (strcmp(hosts[i].name, ".") == 0) {
			free(hosts[i].name);
			continue;
		}
		struct dns_mx_host h = hosts[i];
		size_t j = n;
		while (j > 0 && hosts[j - 1].pref > h.pref) {
			hosts[j] = hosts[j - 1];
			j--;
		}
		hosts[j] = h;
		n++;
	}
	*count = n;
	if (n > 0)
		return DNS_MX_ORDER_HOSTS;
	return total > 0 ? DNS_MX_ORDER_NULL : DNS_MX_ORDER_EMPTY;
}

static void step_mx(struct dns_query *q)
{
	struct dns_mx_result out = { 0 };
	struct dns_mx_host *hosts = NULL;
	const char *err;

	if (q->phase == 0) {
		struct dns_sub *s = &q->sub[0];
		out.status = sub_status(s, &err);
		out.secure = sub_secure(s);
		out.error = err;
		if (out.status == DNS_NODATA && !q->mx_explicit) {
			/* RFC 5321 5.1: no MX, so the domain itself if it has an address */
			static const int types[] = { RR_AAAA, RR_A };
			q->phase = 1;
			q->mx_secure = out.secure;
			subs_start(q, q->name, types, 2);
			return;
		}
		if (out.status == DNS_OK) {
			const unsigned char *p;
			size_t n, count = 0, bad = 0;
			hosts = xcalloc(rdata_count(s->res) + 1, sizeof(*hosts));
			FOREACH_RDATA(s->res, i, p, n) {
				if (dns_rdata_mx(p, n, &hosts[count], &err) == 0)
					count++;
				else
					bad++;
			}
			if (bad > 0)
				log_warn("dns", "event=malformed-mx name=%s records=%zu",
					 log_quote(q->name), bad);
			enum dns_mx_order_result order = q->mx_explicit
				? mx_as_published(hosts, &count)
				: dns_mx_order(hosts, &count, q->r->rnd, q->r->rnd_ctx);
			switch (order) {
			case DNS_MX_ORDER_HOSTS:
				break;
			case DNS_MX_ORDER_NULL:
				out.status = DNS_NULL_MX;
				break;
			case DNS_MX_ORDER_EMPTY:
				out.status = DNS_TEMPFAIL;
				out.error = "every MX record is malformed";
				break;
			}
			out.hosts = hosts;
			out.count = count;
		}
		finish_mx(q, &out, hosts);
		return;
	}
	/* phase 1: addresses of the domain itself */
	enum dns_status st[2];
	const char *errs[2];
	bool any_ok = false, any_bogus = false, any_temp = false, secure = q->mx_secure;
	for (unsigned i = 0; i < 2; i++) {
		st[i] = sub_status(&q->sub[i], &errs[i]);
		any_ok |= st[i] == DNS_OK;
		any_bogus |= st[i] == DNS_BOGUS;
		any_temp |= st[i] == DNS_TEMPFAIL;
		if (st[i] == DNS_OK || st[i] == DNS_NODATA || st[i] == DNS_NXDOMAIN)
			secure = secure && sub_secure(&q->sub[i]);
	}
	if (any_bogus) {
		out.status = DNS_BOGUS;
		out.error = errs[st[0] == DNS_BOGUS ? 0 : 1];
	} else if (any_ok) {
		hosts = xcalloc(1, sizeof(*hosts));
		hosts[0].name = xstrdup(q->name);
		for (char *c = hosts[0].name; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
		out.status = DNS_OK;
		out.implicit = true;
		out.hosts = hosts;
		out.count = 1;
		out.secure = secure;
	} else if (any_temp) {
		out.status = DNS_TEMPFAIL;
		out.error = errs[st[0] == DNS_TEMPFAIL ? 0 : 1];
	} else {
		/* the name exists (MX said NODATA) but has neither MX nor address */
		out.status = DNS_NODATA;
		out.secure = secure;
	}
	finish_mx(q, &out, hosts);
}

static void step_addr(struct dns_query *q)
{
	struct dns_addr_result out = { 0 };
	struct dns_address *addrs;
	size_t cap = 0, count = 0;
	bool any_ok = false, any_bogus = false, any_temp = false, all_nx = true, secure = true;
	const char *bogus_err = NULL, *temp_err = NULL;

	for (unsigned i = 0; i < q->nsubs; i++) {
		if (q->sub[i].res != NULL)
			cap += rdata_count(q->sub[i].res);
	}
	addrs = xcalloc(cap + 1, sizeof(*addrs));
	/* subs were started in the caller's order */
	for (unsigned i = 0; i < q->nsubs; i++) {
		struct dns_sub *s = &q->sub[i];
		const char *err;
		enum dns_status st = sub_status(s, &err);
		const unsigned char *p;
		size_t n;

		if (st != DNS_NXDOMAIN)
			all_nx = false;
		if (st == DNS_BOGUS) {
			any_bogus = true;
			bogus_err = err;
			continue;
		}
		if (st == DNS_TEMPFAIL) {
			any_temp = true;
			temp_err = err;
			continue;
		}
		secure = secure && sub_secure(s);
		if (st != DNS_OK)
			continue;
		if (out.canonical == NULL && s->res->canonname != NULL)
			out.canonical = s->res->canonname;
		FOREACH_RDATA(s->res, j, p, n) {
			struct dns_address *a = &addrs[count];
			if (s->rrtype == RR_A && n == 4) {
				a->family = AF_INET;
				memcpy(&a->addr.v4, p, 4);
				count++;
			} else if (s->rrtype == RR_AAAA && n == 16) {
				a->family = AF_INET6;
				memcpy(&a->addr.v6, p, 16);
				count++;
			}
		}
		any_ok |= count > 0;
	}
	if (any_bogus) {
		/* never hand out addresses next to data that failed validation */
		out.status = DNS_BOGUS;
		out.error = bogus_err;
		count = 0;
	} else if (any_ok) {
		out.status = DNS_OK;
		out.secure = secure && !any_temp;
	} else if (any_temp) {
		out.status = DNS_TEMPFAIL;
		out.error = temp_err;
	} else {
		out.status = all_nx ? DNS_NXDOMAIN : DNS_NODATA;
		out.secure = secure;
	}
	out.addrs = addrs;
	out.count = count;
	char *canon = NULL;
	if (out.canonical != NULL) {
		/* libunbound's canonname ends with a dot */
		size_t len = strlen(out.canonical);
		if (len > 1 && out.canonical[len - 1] == '.')
			len--;
		canon = xstrndup(out.canonical, len);
	}
	out.canonical = canon != NULL ? canon : q->name;
	log_debug("dns", "event=addresses name=%s status=%s secure=%s count=%zu",
		  log_quote(q->name), dns_status_name(out.status), out.secure ? "yes" : "no", count);
	query_detach(q);
	q->cb.addr(&out, q->ctx);
	query_destroy(q);
	free(canon);
	free(addrs);
}

/* The status of a lookup made of one sub (TLSA, TXT, PTR, SRV), with its
 * error text and whether the answer was validated. */
static enum dns_status single_status(const struct dns_sub *s, const char **error_r,
				     bool *secure_r)
{
	enum dns_status status = sub_status(s, error_r);

	*secure_r = status != DNS_TEMPFAIL && status != DNS_BOGUS && sub_secure(s);
	return status;
}

static void single_log(const struct dns_query *q, const char *event, enum dns_status status,
		       bool secure, size_t count)
{
	log_debug("dns", "event=%s name=%s status=%s secure=%s count=%zu", event,
		  log_quote(q->name), dns_status_name(status), secure ? "yes" : "no", count);
}

static void step_tlsa(struct dns_query *q)
{
	struct dns_tlsa_result out = { 0 };
	struct dns_tlsa_rr *rrs = NULL;
	struct dns_sub *s = &q->sub[0];
	const char *err;
	size_t count = 0;

	out.status = single_status(s, &out.error, &out.secure);
	if (out.status == DNS_OK) {
		const unsigned char *p;
		size_t n;
		rrs = xcalloc(rdata_count(s->res) + 1, sizeof(*rrs));
		FOREACH_RDATA(s->res, i, p, n) {
			if (dns_rdata_tlsa(p, n, &rrs[count], &err) == 0)
				count++;
			else
				out.malformed++;
		}
	}
	out.records = rrs;
	out.count = count;
	single_log(q, "tlsa", out.status, out.secure, count);
	query_detach(q);
	q->cb.tlsa(&out, q->ctx);
	query_destroy(q);
	for (size_t i = 0; i < count; i++)
		free(rrs[i].data);
	free(rrs);
}

static void step_txt(struct dns_query *q)
{
	struct dns_txt_result out = { 0 };
	struct dns_txt_record *recs = NULL;
	struct dns_sub *s = &q->sub[0];
	const char *err;
	size_t count = 0;

	out.status = single_status(s, &out.error, &out.secure);
	if (out.status == DNS_OK) {
		const unsigned char *p;
		size_t n;
		recs = xcalloc(rdata_count(s->res) + 1, sizeof(*recs));
		FOREACH_RDATA(s->res, i, p, n) {
			struct buf b;
			buf_init(&b, DNS_TXT_MAX);
			if (dns_rdata_txt(p, n, &b, &err) < 0) {
				buf_free(&b);
				continue;
			}
			recs[count].len = b.len;
			recs[count].text = buf_steal(&b);
			count++;
		}
	}
	out.records = recs;
	out.count = count;
	single_log(q, "txt", out.status, out.secure, count);
	query_detach(q);
	q->cb.txt(&out, q->ctx);
	query_destroy(q);
	for (size_t i = 0; i < count; i++)
		free(recs[i].text);
	free(recs);
}

static void step_ptr(struct dns_query *q)
{
	struct dns_ptr_result out = { 0 };
	struct dns_sub *s = &q->sub[0];
	char **names = NULL;
	const char *err;
	size_t count = 0;

	out.status = single_status(s, &out.error, &out.secure);
	if (out.status == DNS_OK) {
		const unsigned char *p;
		size_t n;
		names = xcalloc(rdata_count(s->res) + 1, sizeof(*names));
		FOREACH_RDATA(s->res, i, p, n) {
			struct buf b;
			buf_init(&b, DNS_NAME_TEXT_MAX);
			if (dns_rdata_ptr(p, n, &b, &err) < 0) {
				buf_free(&b);
				out.malformed++;
				continue;
			}
			names[count++] = buf_steal(&b);
		}
	}
	out.names = (const char *const *)names;
	out.count = count;
	single_log(q, "ptr", out.status, out.secure, count);
	query_detach(q);
	q->cb.ptr(&out, q->ctx);
	query_destroy(q);
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

static void step_srv(struct dns_query *q)
{
	struct dns_srv_result out = { 0 };
	struct dns_srv_rr *rrs = NULL;
	struct dns_sub *s = &q->sub[0];
	const char *err;
	size_t count = 0;

	out.status = single_status(s, &out.error, &out.secure);
	if (out.status == DNS_OK) {
		const unsigned char *p;
		size_t n;
		rrs = xcalloc(rdata_count(s->res) + 1, sizeof(*rrs));
		FOREACH_RDATA(s->res, i, p, n) {
			if (dns_rdata_srv(p, n, &rrs[count], &err) == 0)
				count++;
			else
				out.malformed++;
		}
	}
	out.records = rrs;
	out.count = count;
	single_log(q, "srv", out.status, out.secure, count);
	query_detach(q);
	q->cb.srv(&out, q->ctx);
	query_destroy(q);
	for (size_t i = 0; i < count; i++)
		free(rrs[i].target);
	free(rrs);
}

/* Every sub of q has finished (or the deadline passed): report, or start
 * the next phase. */
static void query_step(struct dns_query *q)
{
	switch (q->kind) {
	case Q_MX: step_mx(q); break;
	case Q_ADDR: step_addr(q); break;
	case Q_TLSA: step_tlsa(q); break;
	case Q_TXT: step_txt(q); break;
	case Q_PTR: step_ptr(q); break;
	case Q_SRV: step_srv(q); break;
	}
}

/* ------------------------------------------------------------------ */
/* Lookups */

struct dns_query *dns_mx(struct dns_resolver *r, const char *domain, dns_mx_cb *cb, void *ctx)
{
	static const int types[] = { RR_MX };
	struct dns_query *q = query_new(r, Q_MX, domain, ctx);

	q->cb.mx = cb;
	subs_start(q, q->name, types, 1);
	return q;
}

struct dns_query *dns_mx_explicit(struct dns_resolver *r, const char *domain, dns_mx_cb *cb,
				  void *ctx)
{
	static const int types[] = { RR_MX };
	struct dns_query *q = query_new(r, Q_MX, domain, ctx);

	q->cb.mx = cb;
	q->mx_explicit = true;
	subs_start(q, q->name, types, 1);
	return q;
}

struct dns_query *dns_ptr(struct dns_resolver *r, const struct dns_address *addr,
			  dns_ptr_cb *cb, void *ctx)
{
	static const int types[] = { RR_PTR };
	struct dns_query *q;
	struct buf name;

	buf_init(&name, DNS_NAME_TEXT_MAX);
	if (dns_reverse_name(addr->family, &addr->addr, &name) < 0)
		buf_append_str(&name, "invalid");   /* RFC 6761 6.4: answered NXDOMAIN */
	q = query_new(r, Q_PTR, buf_cstr(&name), ctx);
	buf_free(&name);
	q->cb.ptr = cb;
	subs_start(q, q->name, types, 1);
	return q;
}

struct dns_query *dns_addresses(struct dns_resolver *r, const char *host,
				enum dns_addr_order order, dns_addr_cb *cb, void *ctx)
{
	static const int v6_first[] = { RR_AAAA, RR_A }, v4_first[] = { RR_A, RR_AAAA };
	struct dns_query *q = query_new(r, Q_ADDR, host, ctx);

	q->cb.addr = cb;
	q->order = order;
	switch (order) {
	case DNS_ADDR_V4_FIRST: subs_start(q, q->name, v4_first, 2); break;
	case DNS_ADDR_V6_ONLY: subs_start(q, q->name, v6_first, 1); break;
	case DNS_ADDR_V4_ONLY: subs_start(q, q->name, v4_first, 1); break;
	case DNS_ADDR_V6_FIRST:
	default: subs_start(q, q->name, v6_first, 2); break;
	}
	return q;
}

struct dns_query *dns_tlsa(struct dns_resolver *r, unsigned port, const char *host,
			   dns_tlsa_cb *cb, void *ctx)
{
	static const int types[] = { RR_TLSA };
	char *name = xasprintf("_%u._tcp.%s", port, host);
	struct dns_query *q = query_new(r, Q_TLSA, name, ctx);

	free(name);
	q->cb.tlsa = cb;
	subs_start(q, q->name, types, 1);
	return q;
}

struct dns_query *dns_txt(struct dns_resolver *r, const char *name, dns_txt_cb *cb, void *ctx)
{
	static const int types[] = { RR_TXT };
	struct dns_query *q = query_new(r, Q_TXT, name, ctx);

	q->cb.txt = cb;
	subs_start(q, q->name, types, 1);
	return q;
}

struct dns_query *dns_srv(struct dns_resolver *r, const char *name, dns_srv_cb *cb, void *ctx)
{
	static const int types[] = { RR_SRV };
	struct dns_query *q = query_new(r, Q_SRV, name, ctx);

	q->cb.srv = cb;
	subs_start(q, q->name, types, 1);
	return q;
}
