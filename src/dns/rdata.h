/* DNS answer handling without I/O: decode the rdata of MX, TXT, PTR and TLSA
 * records as libunbound hands it over (one record's rdata, names
 * uncompressed), turn wire-format names into text, and put MX hosts into
 * delivery order; build the reverse-mapping name of an address.
 *
 * Everything here is pure (no resolver, no allocation a peer can grow past
 * a fixed cap) so that it can be unit tested and fuzzed: a DNS answer comes
 * from the network, so no length inside an rdata is trusted. */
#ifndef TERN_DNS_RDATA_H
#define TERN_DNS_RDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* RFC 1035 2.3.4: a name is at most 255 octets on the wire; its text form
 * (with \DDD escapes) is at most 4 times that. */
#define DNS_NAME_WIRE_MAX 255
#define DNS_NAME_TEXT_MAX (4 * DNS_NAME_WIRE_MAX + 1)
/* TXT rdata is at most 65535 octets, so the joined text is too */
#define DNS_TXT_MAX 65535

/* One MX record: the host name in text form (lowercase, no trailing dot;
 * "." for the root, i.e. a null MX) and its preference. */
struct dns_mx_host {
	char *name;        /* malloc'd */
	uint16_t pref;
};

/* One TLSA record (RFC 6698 2.1). */
struct dns_tlsa_rr {
	uint8_t usage;      /* 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE */
	uint8_t selector;   /* 0 full certificate, 1 SubjectPublicKeyInfo */
	uint8_t mtype;      /* 0 exact, 1 SHA-256, 2 SHA-512 */
	unsigned char *data;   /* malloc'd association data */
	size_t len;
};

/* One SRV record (RFC 2782): the target in text form as
 * dns_name_from_wire() gives it ("." means the service is not offered,
 * RFC 2782 and RFC 6186 3.4). */
struct dns_srv_rr {
	uint16_t priority;
	uint16_t weight;
	uint16_t port;
	char *target;       /* malloc'd */
};

/* A random source: returns a uniformly distributed 32-bit value. */
typedef uint32_t dns_random_fn(void *ctx);

/* Decode an uncompressed wire-format name at p (at most len bytes) into its
 * text form, appended to out: labels joined with '.', letters lowercased,
 * '.', '\\' and bytes outside printable ASCII escaped as in master files
 * (RFC 1035 5.1: \. and \DDD), no trailing dot; the root is ".".
 * *used_r is the number of wire bytes the name took.  Returns 0, or -1 with
 * *error_r (truncated, compression pointer, longer than 255 octets, or out
 * full). */
int dns_name_from_wire(const unsigned char *p, size_t len, size_t *used_r,
		       struct buf *out, const char **error_r);

/* MX rdata (RFC 1035 3.3.9): preference, exchange.  Fills *mx (name
 * malloc'd; free it) or returns -1 with *error_r.  Trailing bytes after the
 * name are an error. */
int dns_rdata_mx(const unsigned char *p, size_t len, struct dns_mx_host *mx,
		 const char **error_r);

/* TXT rdata (RFC 1035 3.3.14): one or more <character-string>s, joined
 * without separator (as SPF, DKIM and DMARC read them; RFC 7208 3.3).
 * Appends to out (which may hold NUL bytes).  Returns 0, or -1 with
 * *error_r when a length runs past the rdata or the rdata is empty. */
int dns_rdata_txt(const unsigned char *p, size_t len, struct buf *out, const char **error_r);

/* PTR rdata (RFC 1035 3.3.12): one domain name, decoded as
 * dns_name_from_wire() does and appended to out.  Returns 0, or -1 with
 * *error_r (out unchanged); trailing bytes after the name are an error. */
int dns_rdata_ptr(const unsigned char *p, size_t len, struct buf *out, const char **error_r);

/* The reverse-mapping name of an address, appended to out: for AF_INET
 * (addr: 4 bytes, network order) "D.C.B.A.in-addr.arpa" (RFC 1035 3.5),
 * for AF_INET6 (16 bytes) the 32 nibbles in reverse order, lowercase,
 * then "ip6.arpa" (RFC 3596 2.5).  Returns 0, or -1 for another family. */
int dns_reverse_name(int family, const void *addr, struct buf *out);

/* TLSA rdata (RFC 6698 2.1): usage, selector, matching type, data (at
 * least one byte).  Fills *rr (data malloc'd) or -1 with *error_r. */
int dns_rdata_tlsa(const unsigned char *p, size_t len, struct dns_tlsa_rr *rr,
		   const char **error_r);

/* SRV rdata (RFC 2782): priority, weight, port, target (uncompressed).
 * Fills *rr (target malloc'd; free it) or returns -1 with *error_r;
 * trailing bytes after the target are an error. */
int dns_rdata_srv(const unsigned char *p, size_t len, struct dns_srv_rr *rr,
		  const char **error_r);

/* Result of dns_mx_order(). */
enum dns_mx_order_result {
	DNS_MX_ORDER_HOSTS,     /* hosts[0..*count) to try in that order */
	DNS_MX_ORDER_NULL,      /* RFC 7505 null MX: the domain accepts no mail */
	DNS_MX_ORDER_EMPTY,     /* no records at all */
};

/* Put MX records into delivery order (RFC 5321 5.1): preference
 * ascending, hosts of equal preference in random order (rnd; NULL uses a
 * built-in generator), a host listed twice kept once at its lowest
 * preference, and "." entries (null MX, RFC 7505) removed.  When every
 * record is "." the domain has a null MX.  Freed entries' names are
 * released; *count is updated.  The array is reordered in place. */
enum dns_mx_order_result dns_mx_order(struct dns_mx_host *hosts, size_t *count,
				      dns_random_fn *rnd, void *rnd_ctx);

/* Free the names of count hosts and the array itself. */
void dns_mx_hosts_free(struct dns_mx_host *hosts, size_t count);

#endif
