/* The DKIM verifier's DNS (struct dkim_dns, mailauth/dkim.h) answered by
 * Tern's asynchronous resolver, through the SPF adapter (spf-dns.h), which
 * already turns the resolver's TXT answers and statuses into the shape both
 * engines use.
 *
 * One adapter per SPF adapter, so one per event loop; any number of
 * verifications of that loop share it.  Answers always come later from the
 * loop, never inside the dkim_dns call. */
#ifndef TERN_MAILAUTH_DKIM_DNS_H
#define TERN_MAILAUTH_DKIM_DNS_H

#include <stddef.h>

#include "mailauth/dkim.h"

struct spf_dns_adapter;
struct dkim_dns_adapter;

/* An adapter asking through spf, which must outlive it. */
struct dkim_dns_adapter *dkim_dns_adapter_new(struct spf_dns_adapter *spf);

/* Cancel every lookup still in flight (their callbacks never run) and
 * free a; *a becomes NULL (NULL is ignored).  Destroy the verifiers using
 * it first; never call it from inside a DNS or DKIM callback. */
void dkim_dns_adapter_free(struct dkim_dns_adapter **a);

/* The interface to give dkim_verify_finish(): txt and cancel.  Valid while
 * a lives.  Status mapping (RFC 6376 6.1.2): records -> DKIM_DNS_OK;
 * NODATA -> DKIM_DNS_OK with no records and NXDOMAIN -> DKIM_DNS_NXDOMAIN
 * (both: no key, permerror); timeouts, SERVFAIL and DNSSEC-bogus answers
 * -> DKIM_DNS_TEMPFAIL (temperror). */
const struct dkim_dns *dkim_dns_adapter_dns(struct dkim_dns_adapter *a);

/* Lookups in flight (tests). */
size_t dkim_dns_adapter_pending(const struct dkim_dns_adapter *a);

#endif
