/* SPF's DNS over the resolver (see spf-dns.h).
 *
 * Each question of the engine becomes one dns/ query, recorded in the
 * adapter's list with the engine's callback and query context until the
 * answer arrives or the engine cancels it.  Invariants:
 *  - an entry is in the list exactly while its dns_query is in flight;
 *  - it leaves the list before the engine's callback runs, so the callback
 *    may ask again or cancel other questions;
 *  - a cancelled question's callback never runs (dns_cancel()).
 * Answers are translated without copying beyond the pointer arrays the
 * engine's answer type needs; they are borrowed only during the callback.
 * RFC 7208 4.4 (TXT only, never type SPF), 4.6.4 (void lookups: NXDOMAIN
 * or no records), 5.4 (mx: no implicit MX), 5.5 (ptr), 2.6.7 (DNS errors
 * give temperror). */
#include "mailauth/spf-dns.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/log.h"

struct spf_lookup {
	struct spf_dns_adapter *a;
	struct spf_lookup *prev, *next;
	struct dns_query *q;
	spf_dns_cb *cb;
	void *qctx;
};

struct spf_dns_adapter {
	struct dns_resolver *r;
	struct spf_dns dns;
	struct spf_lookup *lookups;
	size_t pending;
};

static struct spf_lookup *lookup_new(struct spf_dns_adapter *a, spf_dns_cb *cb, void *qctx)
{
	struct spf_lookup *l = xcalloc(1, sizeof(*l));

	l->a = a;
	l->cb = cb;
	l->qctx = qctx;
	l->next = a->lookups;
	if (a->lookups != NULL)
		a->lookups->prev = l;
	a->lookups = l;
	a->pending++;
	return l;
}

static void lookup_unlink(struct spf_lookup *l)
{
	struct spf_dns_adapter *a = l->a;

	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		a->lookups = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	l->prev = l->next = NULL;
	a->pending--;
}

/* NODATA is an empty answer; only a name error is NXDOMAIN. */
static enum spf_dns_status map_status(enum dns_status st)
{
	switch (st) {
	case DNS_OK:
	case DNS_NODATA:
	case DNS_NULL_MX:
		return SPF_DNS_OK;
	case DNS_NXDOMAIN:
		return SPF_DNS_NXDOMAIN;
	case DNS_TEMPFAIL:
	case DNS_BOGUS:
		break;
	}
	return SPF_DNS_TEMPFAIL;
}

/* Take l out of the list, give ans to the engine, free l. */
static void lookup_finish(struct spf_lookup *l, const struct spf_dns_answer *ans)
{
	spf_dns_cb *cb = l->cb;
	void *qctx = l->qctx;

	lookup_unlink(l);
	free(l);
	cb(qctx, ans);
}

static void on_txt(const struct dns_txt_result *res, void *ctx)
{
	struct spf_lookup *l = ctx;
	struct spf_dns_answer ans = { .status = map_status(res->status) };
	const char **strings = NULL;
	size_t *lengths = NULL;

	if (res->status == DNS_OK && res->count > 0) {
		strings = xcalloc(res->count, sizeof(*strings));
		lengths = xcalloc(res->count, sizeof(*lengths));
		for (size_t i = 0; i < res->count; i++) {
			strings[i] = res->records[i].text;
			lengths[i] = res->records[i].len;
		}
		ans.count = res->count;
		ans.strings = strings;
		ans.lengths = lengths;
	}
	lookup_finish(l, &ans);
	free(strings);
	free(lengths);
}

static void on_addr(const struct dns_addr_result *res, void *ctx)
{
	struct spf_lookup *l = ctx;
	struct spf_dns_answer ans = { .status = map_status(res->status) };
	struct spf_ip *ips = NULL;
	size_t n = 0;

	if (res->status == DNS_OK && res->count > 0) {
		ips = xcalloc(res->count, sizeof(*ips));
		for (size_t i = 0; i < res->count; i++) {
			const struct dns_address *d = &res->addrs[i];
			if (d->family == AF_INET) {
				ips[n].family = 4;
				memcpy(ips[n].addr, &d->addr.v4, 4);
				n++;
			} else if (d->family == AF_INET6) {
				ips[n].family = 6;
				memcpy(ips[n].addr, &d->addr.v6, 16);
				n++;
			}
		}
		ans.count = n;
		ans.addrs = ips;
	}
	lookup_finish(l, &ans);
	free(ips);
}

static void on_mx(const struct dns_mx_result *res, void *ctx)
{
	struct spf_lookup *l = ctx;
	struct spf_dns_answer ans = { .status = map_status(res->status) };
	const char **names = NULL;

	if (res->status == DNS_OK && res->count > 0) {
		names = xcalloc(res->count, sizeof(*names));
		for (size_t i = 0; i < res->count; i++)
			names[i] = res->hosts[i].name;
		ans.count = res->count;
		ans.strings = names;
	}
	lookup_finish(l, &ans);
	free(names);
}

static void on_ptr(const struct dns_ptr_result *res, void *ctx)
{
	struct spf_lookup *l = ctx;
	struct spf_dns_answer ans = { .status = map_status(res->status) };

	if (res->status == DNS_OK) {
		ans.count = res->count;
		ans.strings = res->names;
	}
	lookup_finish(l, &ans);
}

static void ask_txt(void *ctx, const char *name, spf_dns_cb *cb, void *qctx)
{
	struct spf_dns_adapter *a = ctx;
	struct spf_lookup *l = lookup_new(a, cb, qctx);

	l->q = dns_txt(a->r, name, on_txt, l);
}

static void ask_addr(void *ctx, const char *name, int family, spf_dns_cb *cb, void *qctx)
{
	struct spf_dns_adapter *a = ctx;
	struct spf_lookup *l = lookup_new(a, cb, qctx);

	l->q = dns_addresses(a->r, name, family == 6 ? DNS_ADDR_V6_ONLY : DNS_ADDR_V4_ONLY,
			     on_addr, l);
}

static void ask_mx(void *ctx, const char *name, spf_dns_cb *cb, void *qctx)
{
	struct spf_dns_adapter *a = ctx;
	struct spf_lookup *l = lookup_new(a, cb, qctx);

	l->q = dns_mx_explicit(a->r, name, on_mx, l);
}

static void ask_ptr(void *ctx, const struct spf_ip *ip, spf_dns_cb *cb, void *qctx)
{
	struct spf_dns_adapter *a = ctx;
	struct spf_lookup *l = lookup_new(a, cb, qctx);
	struct dns_address addr = { 0 };

	if (ip->family == 4) {
		addr.family = AF_INET;
		memcpy(&addr.addr.v4, ip->addr, 4);
	} else {
		addr.family = AF_INET6;
		memcpy(&addr.addr.v6, ip->addr, 16);
	}
	l->q = dns_ptr(a->r, &addr, on_ptr, l);
}

static void cancel(void *ctx, void *qctx)
{
	struct spf_dns_adapter *a = ctx;
	struct spf_lookup *l = a->lookups, *next;

	for (; l != NULL; l = next) {
		next = l->next;
		if (l->qctx != qctx)
			continue;
		dns_cancel(&l->q);
		lookup_unlink(l);
		free(l);
	}
}

struct spf_dns_adapter *spf_dns_adapter_new(struct dns_resolver *r)
{
	struct spf_dns_adapter *a = xcalloc(1, sizeof(*a));

	a->r = r;
	a->dns = (struct spf_dns){
		.ctx = a, .txt = ask_txt, .addr = ask_addr, .mx = ask_mx, .ptr = ask_ptr,
		.cancel = cancel,
	};
	return a;
}

void spf_dns_adapter_free(struct spf_dns_adapter **ap)
{
	struct spf_dns_adapter *a = *ap;

	if (a == NULL)
		return;
	while (a->lookups != NULL) {
		struct spf_lookup *l = a->lookups;
		dns_cancel(&l->q);
		lookup_unlink(l);
		free(l);
	}
	free(a);
	*ap = NULL;
}

const struct spf_dns *spf_dns_adapter_dns(struct spf_dns_adapter *a)
{
	return &a->dns;
}

size_t spf_dns_adapter_pending(const struct spf_dns_adapter *a)
{
	return a->pending;
}
