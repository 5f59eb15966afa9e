/* DNS answer handling: decode MX, TXT, PTR and TLSA rdata, order MX hosts,
 * and build reverse-mapping names.
 *
 * Input is the rdata of one record as libunbound delivers it in
 * ub_result->data[i] / len[i]: names inside it are already decompressed
 * (unbound stores rdata uncompressed), so a compression pointer here is an
 * error rather than something to follow.
 *
 * Invariants: every read is bounds-checked against the rdata length (no
 * length byte inside the rdata is trusted); a name never exceeds 255 wire
 * octets (RFC 1035 2.3.4) nor 63 octets per label (2.3.4); outputs go to
 * buffers with a hard maximum.
 *
 * RFCs: 1035 3.3.9 (MX), 3.3.12 (PTR), 3.3.14 (TXT), 3.5 (in-addr.arpa), 5.1
 * (escapes); 3596 2.5 (ip6.arpa); 6698 2.1 (TLSA);
 * 5321 5.1 (MX preference and random order among equals); 7505 (null MX). */
#include "dns/rdata.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

int dns_name_from_wire(const unsigned char *p, size_t len, size_t *used_r,
		       struct buf *out, const char **error_r)
{
	size_t pos = 0, start = out->len;

	for (;;) {
		if (pos >= len) {
			*error_r = "name runs past the end of the record";
			goto fail;
		}
		unsigned lab = p[pos];
		if (lab == 0) {
			pos++;
			break;
		}
		if ((lab & 0xc0) != 0) {
			*error_r = "compressed or extended label in record data";
			goto fail;
		}
		if (lab > len - pos - 1) {
			*error_r = "label runs past the end of the record";
			goto fail;
		}
		if (pos + 1 + lab + 1 > DNS_NAME_WIRE_MAX) {
			*error_r = "name longer than 255 octets";
			goto fail;
		}
		if (pos > 0 && buf_append(out, ".", 1) < 0)
			goto full;
		for (unsigned i = 0; i < lab; i++) {
			unsigned char c = p[pos + 1 + i];
			int r;
			if (c == '.' || c == '\\')
				r = buf_printf(out, "\\%c", c);
			else if (c <= 0x20 || c >= 0x7f)
				r = buf_printf(out, "\\%03u", c);
			else {
				char lc = (char)tolower(c);
				r = buf_append(out, &lc, 1);
			}
			if (r < 0)
				goto full;
		}
		pos += 1 + lab;
	}
	if (pos == 1 && buf_append(out, ".", 1) < 0)
		goto full;
	*used_r = pos;
	return 0;
full:
	*error_r = "name too long for the output";
fail:
	/* leave out as it was */
	out->len = start;
	if (out->data != NULL)
		out->data[start] = '\0';
	return -1;
}

int dns_rdata_mx(const unsigned char *p, size_t len, struct dns_mx_host *mx,
		 const char **error_r)
{
	struct buf name;
	size_t used;

	if (len < 3) {
		*error_r = "MX record too short";
		return -1;
	}
	buf_init(&name, DNS_NAME_TEXT_MAX);
	if (dns_name_from_wire(p + 2, len - 2, &used, &name, error_r) < 0) {
		buf_free(&name);
		return -1;
	}
	if (used != len - 2) {
		buf_free(&name);
		*error_r = "trailing bytes after the MX host name";
		return -1;
	}
	mx->pref = (uint16_t)((p[0] << 8) | p[1]);
	mx->name = buf_steal(&name);
	return 0;
}

int dns_rdata_txt(const unsigned char *p, size_t len, struct buf *out, const char **error_r)
{
	size_t pos = 0, start = out->len;

	if (len == 0) {
		*error_r = "empty TXT record";
		return -1;
	}
	while (pos < len) {
		size_t n = p[pos];
		if (n > len - pos - 1) {
			*error_r = "TXT string runs past the end of the record";
			goto fail;
		}
		if (buf_append(out, p + pos + 1, n) < 0) {
			*error_r = "TXT record too long";
			goto fail;
		}
		pos += 1 + n;
	}
	return 0;
fail:
	out->len = start;
	if (out->data != NULL)
		out->data[start] = '\0';
	return -1;
}

int dns_rdata_ptr(const unsigned char *p, size_t len, struct buf *out, const char **error_r)
{
	size_t start = out->len, used;

	if (dns_name_from_wire(p, len, &used, out, error_r) < 0)
		return -1;
	if (used != len) {
		out->len = start;
		out->data[start] = '\0';
		*error_r = "trailing bytes after the PTR name";
		return -1;
	}
	return 0;
}

int dns_rdata_srv(const unsigned char *p, size_t len, struct dns_srv_rr *rr,
		  const char **error_r)
{
	struct buf name;
	size_t used;

	if (len < 7) {
		*error_r = "SRV record too short";
		return -1;
	}
	buf_init(&name, DNS_NAME_TEXT_MAX);
	if (dns_name_from_wire(p + 6, len - 6, &used, &name, error_r) < 0) {
		buf_free(&name);
		return -1;
	}
	if (used != len - 6) {
		buf_free(&name);
		*error_r = "trailing bytes after the SRV target";
		return -1;
	}
	rr->priority = (uint16_t)(p[0] << 8 | p[1]);
	rr->weight = (uint16_t)(p[2] << 8 | p[3]);
	rr->port = (uint16_t)(p[4] << 8 | p[5]);
	rr->target = buf_steal(&name);
	return 0;
}

int dns_reverse_name(int family, const void *addr, struct buf *out)
{
	const unsigned char *a = addr;
	static const char hex[] = "0123456789abcdef";

	if (family == AF_INET)
		return buf_printf(out, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]) < 0
			? -1 : 0;
	if (family != AF_INET6)
		return -1;
	for (int i = 15; i >= 0; i--) {
		char nib[4] = { hex[a[i] & 15], '.', hex[a[i] >> 4], '.' };
		if (buf_append(out, nib, 4) < 0)
			return -1;
	}
	return buf_append_str(out, "ip6.arpa") < 0 ? -1 : 0;
}

int dns_rdata_tlsa(const unsigned char *p, size_t len, struct dns_tlsa_rr *rr,
		   const char **error_r)
{
	if (len < 4) {
		*error_r = "TLSA record too short";
		return -1;
	}
	rr->usage = p[0];
	rr->selector = p[1];
	rr->mtype = p[2];
	rr->len = len - 3;
	rr->data = xmalloc(rr->len);
	memcpy(rr->data, p + 3, rr->len);
	return 0;
}

/* ------------------------------------------------------------------ */
/* MX ordering */

/* xorshift32 seeded from getrandom(): MX shuffling needs spread, not
 * secrecy, and must never block or fail. */
static uint32_t builtin_random(void *ctx)
{
	static __thread uint32_t state;
	(void)ctx;
	if (state == 0) {
		if (getrandom(&state, sizeof(state), GRND_NONBLOCK) != sizeof(state))
			state = (uint32_t)(uintptr_t)&state ^ 0x9e3779b9u;
		if (state == 0)
			state = 1;
	}
	state ^= state << 13;
	state ^= state >> 17;
	state ^= state << 5;
	return state;
}

static int mx_cmp_pref(const void *a, const void *b)
{
	const struct dns_mx_host *x = a, *y = b;
	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	/* a fixed tie-break, so the shuffle alone decides the final order */
	return strcmp(x->name, y->name);
}

static int mx_cmp_name(const void *a, const void *b)
{
	const struct dns_mx_host *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c != 0)
		return c;
	return x->pref < y->pref ? -1 : x->pref > y->pref ? 1 : 0;
}

/* uniform in [0, n) without modulo bias */
static size_t random_below(dns_random_fn *rnd, void *ctx, size_t n)
{
	uint32_t limit = UINT32_MAX - (uint32_t)(((uint64_t)UINT32_MAX + 1) % n);
	uint32_t v;
	do {
		v = rnd(ctx);
	} while (v > limit);
	return v % n;
}

enum dns_mx_order_result dns_mx_order(struct dns_mx_host *hosts, size_t *count,
				      dns_random_fn *rnd, void *rnd_ctx)
{
	size_t n = *count, kept = 0, i, j;
	bool had_any = n > 0;

	if (rnd == NULL)
		rnd = builtin_random;
	/* drop null-MX targets: "." cannot be delivered to */
	for (i = 0; i < n; i++) {
		if (strcmp(hosts[i].name, ".") == 0) {
			free(hosts[i].name);
			continue;
		}
		hosts[kept++] = hosts[i];
	}
	n = kept;
	if (n == 0) {
		*count = 0;
		return had_any ? DNS_MX_ORDER_NULL : DNS_MX_ORDER_EMPTY;
	}
	/* keep each name once, at its lowest preference: sorted by name, the
	 * first of a run is that one (n log n; an answer may hold thousands) */
	qsort(hosts, n, sizeof(*hosts), mx_cmp_name);
	kept = 0;
	for (i = 0; i < n; i++) {
		if (kept > 0 && strcmp(hosts[kept - 1].name, hosts[i].name) == 0) {
			free(hosts[i].name);
			continue;
		}
		hosts[kept++] = hosts[i];
	}
	n = kept;
	qsort(hosts, n, sizeof(*hosts), mx_cmp_pref);
	/* Fisher-Yates within each run of equal preference */
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && hosts[j].pref == hosts[i].pref; j++)
			;
		for (size_t k = j - i; k > 1; k--) {
			size_t r = random_below(rnd, rnd_ctx, k);
			struct dns_mx_host t = hosts[i + k - 1];
			hosts[i + k - 1] = hosts[i + r];
			hosts[i + r] = t;
		}
	}
	*count = n;
	return DNS_MX_ORDER_HOSTS;
}

void dns_mx_hosts_free(struct dns_mx_host *hosts, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(hosts[i].name);
	free(hosts);
}
