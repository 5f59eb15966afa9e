/* Asynchronous DNS resolver over libunbound, driven by a libevent loop.
 *
 * One resolver per event loop (thread); it owns a libunbound context whose
 * cache serves every lookup made through it.  Lookups never block: each
 * returns a query handle at once and calls its callback later from the
 * loop, exactly once, unless the query is cancelled first.  The callback
 * is never called from inside the lookup function itself, even for an
 * immediate failure, so a caller can store the handle before its callback
 * can run.  A result passed to a callback is valid only during the call.
 *
 * The resolver is configured by the `dns` group of tern.conf (see
 * docs/dns-resolver.md): the system resolver (/etc/resolv.conf), given
 * upstream servers, or stub zones sent to given authoritative servers (what
 * the tests use).  DNSSEC is validated by libunbound; `secure` is true only
 * for a validated answer (or a validated denial), `DNS_BOGUS` when
 * validation failed: bogus data is never returned as usable. */
#ifndef TERN_DNS_DNS_H
#define TERN_DNS_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "dns/rdata.h"

struct event_base;
struct config;
struct dns_resolver;
struct dns_query;

enum dns_status {
	DNS_OK,          /* records found */
	DNS_NXDOMAIN,    /* the name does not exist (permanent) */
	DNS_NODATA,      /* the name exists without records of that type (permanent) */
	DNS_NULL_MX,     /* dns_mx only: RFC 7505 null MX, the domain takes no mail */
	DNS_TEMPFAIL,    /* SERVFAIL, timeout, network or resolver error: try later */
	DNS_BOGUS,       /* DNSSEC validation failed: treat as a temporary failure,
			    never use the data */
};

/* "ok", "nxdomain", "nodata", "null-mx", "tempfail", "bogus" */
const char *dns_status_name(enum dns_status status);

/* dns_mx() result.  hosts are in delivery order (see dns_mx_order()).
 * With no MX records but an address for the domain (RFC 5321 5.1), the
 * domain itself is the single host and implicit is true. */
struct dns_mx_result {
	enum dns_status status;
	bool secure;            /* every answer used was DNSSEC-validated */
	bool implicit;          /* implicit MX: hosts[0] is the domain */
	const struct dns_mx_host *hosts;
	size_t count;
	const char *error;      /* reason for TEMPFAIL/BOGUS, else NULL */
};

struct dns_address {
	int family;             /* AF_INET6 or AF_INET */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
};

/* Which address families dns_addresses() queries, and their order */
enum dns_addr_order {
	DNS_ADDR_V6_FIRST,      /* AAAA then A (the default for delivery) */
	DNS_ADDR_V4_FIRST,
	DNS_ADDR_V6_ONLY,
	DNS_ADDR_V4_ONLY,
};

struct dns_addr_result {
	enum dns_status status;   /* OK when any address was found */
	bool secure;              /* every answer (both families) validated */
	const struct dns_address *addrs;
	size_t count;
	const char *canonical;    /* the name after CNAMEs, or the name asked */
	const char *error;
};

struct dns_tlsa_result {
	enum dns_status status;
	bool secure;              /* TLSA records are usable only when true (RFC 7672 2.2) */
	const struct dns_tlsa_rr *records;
	size_t count;
	size_t malformed;         /* records too short to parse, left out */
	const char *error;
};

/* One TXT record: its strings joined (RFC 7208 3.3); may hold NUL bytes,
 * len is the truth, text[len] == 0. */
struct dns_txt_record {
	char *text;
	size_t len;
};

struct dns_txt_result {
	enum dns_status status;
	bool secure;
	const struct dns_txt_record *records;
	size_t count;
	const char *error;
};

/* dns_ptr() result: the names an address maps back to (RFC 1035 3.5,
 * RFC 3596 2.5), in text form as dns_name_from_wire() gives them. */
struct dns_ptr_result {
	enum dns_status status;
	bool secure;
	const char *const *names;
	size_t count;
	size_t malformed;         /* records that did not decode, left out */
	const char *error;
};

/* dns_srv() result: the records as published (not sorted). */
struct dns_srv_result {
	enum dns_status status;
	bool secure;
	const struct dns_srv_rr *records;
	size_t count;
	size_t malformed;         /* records that did not decode, left out */
	const char *error;
};

typedef void dns_srv_cb(const struct dns_srv_result *res, void *ctx);
typedef void dns_ptr_cb(const struct dns_ptr_result *res, void *ctx);
typedef void dns_mx_cb(const struct dns_mx_result *res, void *ctx);
typedef void dns_addr_cb(const struct dns_addr_result *res, void *ctx);
typedef void dns_tlsa_cb(const struct dns_tlsa_result *res, void *ctx);
typedef void dns_txt_cb(const struct dns_txt_result *res, void *ctx);

/* Make a resolver whose events run on base, configured from cfg->dns.
 * Returns NULL with *error_r (static text) when libunbound refuses the
 * configuration (a bad trust anchor file, say). */
struct dns_resolver *dns_resolver_new(struct event_base *base, const struct config *cfg,
				      const char **error_r);
/* Cancel every query in flight (no callback runs) and free the resolver;
 * *r becomes NULL.  Never call it from inside a dns callback. */
void dns_resolver_free(struct dns_resolver **r);

/* Replace the random source used to shuffle MX hosts of equal preference
 * (tests); NULL restores the built-in one. */
void dns_resolver_set_random(struct dns_resolver *r, dns_random_fn *rnd, void *ctx);

/* MX hosts of domain in delivery order, with implicit MX and null MX
 * handled (RFC 5321 5.1, RFC 7505). */
struct dns_query *dns_mx(struct dns_resolver *r, const char *domain, dns_mx_cb *cb, void *ctx);
/* MX hosts of domain as published, without implicit MX: for SPF's mx
 * mechanism (RFC 7208 5.4), which never falls back to the domain's own
 * address.  Like dns_mx() except that a domain without MX records gives
 * DNS_NODATA (implicit is never set) and that hosts are the records as
 * published, in preference order without shuffling and without merging a
 * host listed twice (RFC 7208 4.6.4 counts records); "." entries are left
 * out, and only "." is a null MX: DNS_NULL_MX with no hosts. */
struct dns_query *dns_mx_explicit(struct dns_resolver *r, const char *domain, dns_mx_cb *cb,
				  void *ctx);
/* PTR records of the reverse-mapping name of addr (in-addr.arpa or
 * ip6.arpa). */
struct dns_query *dns_ptr(struct dns_resolver *r, const struct dns_address *addr,
			  dns_ptr_cb *cb, void *ctx);
/* A and AAAA records of host (queried in parallel; CNAMEs followed). */
struct dns_query *dns_addresses(struct dns_resolver *r, const char *host,
				enum dns_addr_order order, dns_addr_cb *cb, void *ctx);
/* TLSA records of _port._tcp.host (RFC 6698 3, RFC 7672 2.2). */
struct dns_query *dns_tlsa(struct dns_resolver *r, unsigned port, const char *host,
			   dns_tlsa_cb *cb, void *ctx);
/* TXT records of name. */
struct dns_query *dns_txt(struct dns_resolver *r, const char *name, dns_txt_cb *cb, void *ctx);

/* SRV records of name ("_imaps._tcp.example.com"; RFC 2782), for
 * `tern dns check`. */
struct dns_query *dns_srv(struct dns_resolver *r, const char *name, dns_srv_cb *cb, void *ctx);

/* Cancel a query in flight: its callback will not run.  *q becomes NULL;
 * a NULL *q is ignored.  A handle is invalid once its callback has
 * started, so set the stored handle to NULL in the callback. */
void dns_cancel(struct dns_query **q);

/* Number of queries in flight (tests, metrics). */
size_t dns_resolver_pending(const struct dns_resolver *r);

#endif
