/* The DNS records a mail domain served by this Tern should have: one list,
 * computed from the configuration (and, for DKIM, the store), that both
 * `tern dns records` prints and `tern dns check` compares with what DNS
 * says, so the two commands never disagree.  docs/dns.md explains every
 * record to the administrator. */
#ifndef TERN_CLI_DNS_RECORDS_H
#define TERN_CLI_DNS_RECORDS_H

#include <stdbool.h>
#include <stddef.h>

#include "dns/dns.h"

struct buf;
struct config;
struct store;

/* `tern dns records DOMAIN [--json]` and `tern dns check DOMAIN [--json]`
 * (cli-dns-records.c), dispatched by cli_dns; argv[1] is the action. */
int cli_dns_records(struct config *cfg, int argc, char **argv);
int cli_dns_check(struct config *cfg, int argc, char **argv);

/* TTL written on every zone line */
#define DNSREC_TTL 3600
/* One <character-string> of a TXT record holds at most 255 bytes
 * (RFC 1035 3.3); longer texts are split into several strings. */
#define DNSREC_TXT_STRING_MAX 255

enum dnsrec_kind {
	DNSREC_MX,           /* DOMAIN MX 10 HOSTNAME */
	DNSREC_HOST_ADDR,    /* HOSTNAME A/AAAA ADDR, one per specific bind address */
	DNSREC_SPF,          /* DOMAIN TXT "v=spf1 mx -all" */
	DNSREC_DKIM,         /* SELECTOR._domainkey.DOMAIN TXT "v=DKIM1; ..." */
	DNSREC_DMARC,        /* _dmarc.DOMAIN TXT "v=DMARC1; ..." */
	DNSREC_MTA_STS,      /* _mta-sts.DOMAIN TXT "v=STSv1; id=..." */
	DNSREC_MTA_STS_HOST, /* mta-sts.DOMAIN CNAME HOSTNAME */
	DNSREC_TLSRPT,       /* _smtp._tls.DOMAIN TXT "v=TLSRPTv1; rua=..." */
	DNSREC_SRV,          /* _imaps._tcp.DOMAIN SRV 0 1 993 HOSTNAME, ... */
	DNSREC_TLSA,         /* _25._tcp.HOSTNAME TLSA 3 1 1 HEX */
	DNSREC_PTR,          /* ADDR reverse name PTR HOSTNAME (with the provider) */
};

/* One expected record.  Strings are malloc'd and owned by the set. */
struct dnsrec {
	enum dnsrec_kind kind;
	const char *label;    /* static: "MX", "SPF", "SRV imaps", ... */
	char *name;           /* owner name, no trailing dot */
	const char *type;     /* static: "MX", "TXT", "SRV", "TLSA", "PTR", "A", "AAAA",
				 "CNAME" */
	char *value;          /* rdata in master-file form; TXT: the text unquoted */
	char *comment;        /* NULL or lines (LF-separated) explaining it */
	bool provider;        /* set with the address's provider, not in the zone */
	/* structured parts for the checks */
	char *target;         /* MX/SRV/CNAME/PTR: the host name (SRV: "." when the
				 service is not offered) */
	unsigned port;        /* SRV, TLSA */
	struct dns_address addr;   /* HOST_ADDR, PTR */
};

struct dnsrec_set {
	char *domain;         /* lowercase, no trailing dot */
	char *hostname;       /* cfg->hostname, lowercase */
	struct dnsrec *items;
	size_t count;
	char **notes;         /* lines printed as comments at the end (things that
				 need the administrator, not a record) */
	size_t note_count;
	bool smarthost;       /* mail leaves through queue.smarthost */
	bool https;           /* the https listener serves the MTA-STS policy */
};

/* Fill set with the records of domain (a validated, lowercased local
 * domain) from cfg: everything but DKIM (see dnsrec_add_dkim).  Reads the
 * certificate (cfg->tls_cert) for TLSA; when that fails, a note says why
 * instead of a TLSA record.  Returns 0, or -1 with *error_r (static). */
int dnsrec_expected(const struct config *cfg, const char *domain, struct dnsrec_set *set,
		    const char **error_r);

/* THE PLACE WHERE DKIM RECORDS ARE ADDED (one per published key of the
 * domain in the store: states 0 pending, 1 active and 2 retiring).  store
 * may be NULL (then nothing is added).  Returns 0, or -1 with *error_r. */
int dnsrec_add_dkim(struct dnsrec_set *set, struct store *store, const char **error_r);

/* Free everything in set and zero it. */
void dnsrec_set_clear(struct dnsrec_set *set);

/* Append text (len bytes) to out as a TXT rdata in master-file form: one
 * or more quoted strings of at most DNSREC_TXT_STRING_MAX bytes separated
 * by a space, '"' and '\\' escaped with a backslash, bytes outside
 * printable ASCII as \DDD (RFC 1035 5.1).  An empty text is "".  Returns
 * 0, or -1 when out is full. */
int dnsrec_txt_quote(const char *text, size_t len, struct buf *out);

/* Append the master-file line of r to out, without a line end:
 * "NAME. TTL IN TYPE RDATA" with host names in the rdata made absolute.
 * Returns 0, or -1 when out is full. */
int dnsrec_zone_line(const struct dnsrec *r, struct buf *out);

/* The SHA-256 of the SubjectPublicKeyInfo of the first certificate in the
 * PEM file path (TLSA 3 1 1, RFC 6698 2.1, RFC 7671 5.1), as 64 lowercase
 * hex digits and a NUL in hex_r.  Returns 0, or -1 with *error_r. */
int dnsrec_tlsa_hash(const char *path, char hex_r[65], const char **error_r);

/* Fill r (zeroed first; free with dnsrec_clear) with the PTR record that
 * maps addr back to hostname.  Returns 0, or -1 for an unusable address. */
int dnsrec_ptr(struct dnsrec *r, const struct dns_address *addr, const char *hostname);
/* Free the strings of one record and zero it. */
void dnsrec_clear(struct dnsrec *r);

/* Basic DMARC record syntax (RFC 7489 6.3, 6.4): "v=DMARC1" first, then
 * tag=value pairs separated by ';' with p= (none, quarantine or reject)
 * present.  Returns 0, or -1 with *error_r (static).  Not a full parser:
 * that is mailauth's DMARC library. */
int dnsrec_dmarc_syntax(const char *text, size_t len, const char **error_r);

/* The id of an MTA-STS TXT record ("v=STSv1; id=ABC;"; RFC 8461 3.1): 1 with
 * the id (malloc'd) in *id_r, 0 when text is not an STSv1 record, -1 with
 * *error_r for an STSv1 record without a valid id. */
int dnsrec_sts_id(const char *text, size_t len, char **id_r, const char **error_r);

#endif
