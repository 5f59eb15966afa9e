/* The SPF engine's DNS (struct spf_dns, mailauth/spf.h) answered by Tern's
 * asynchronous resolver (dns/dns.h).
 *
 * One adapter per resolver, so one per event loop; any number of SPF
 * evaluations of that loop share it.  Answers always come later from the
 * loop, never inside the spf_dns call (the resolver guarantees it). */
#ifndef TERN_MAILAUTH_SPF_DNS_H
#define TERN_MAILAUTH_SPF_DNS_H

#include "mailauth/spf.h"

struct dns_resolver;
struct spf_dns_adapter;

/* An adapter asking r, which must outlive it. */
struct spf_dns_adapter *spf_dns_adapter_new(struct dns_resolver *r);

/* Cancel every lookup still in flight (their callbacks never run) and
 * free a; *a becomes NULL.  Cancel or finish the evaluations using it
 * first; never call it from inside a DNS or SPF callback. */
void spf_dns_adapter_free(struct spf_dns_adapter **a);

/* The interface to give spf_check(): txt, addr, mx (without implicit MX,
 * RFC 7208 5.4; a null MX gives no names), ptr and cancel.  Valid while a
 * lives.  Status mapping: records -> SPF_DNS_OK; NODATA -> SPF_DNS_OK with
 * no records and NXDOMAIN -> SPF_DNS_NXDOMAIN (both void lookups, RFC 7208
 * 4.6.4); timeouts, SERVFAIL and DNSSEC-bogus answers -> SPF_DNS_TEMPFAIL. */
const struct spf_dns *spf_dns_adapter_dns(struct spf_dns_adapter *a);

/* Lookups in flight (tests). */
size_t spf_dns_adapter_pending(const struct spf_dns_adapter *a);

#endif
