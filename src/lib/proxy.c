/* HAProxy PROXY protocol header parser, versions 1 and 2 (server side),
 * and the trusted-proxy address check.
 * Spec: https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
 * (2.1 human-readable v1, 2.2 binary v2).
 *
 * proxy_parse() is a pure function over the bytes received so far: it is
 * called again with the longer buffer after every read, so it keeps no
 * state, and it decides as early as it can: a byte that cannot start or
 * continue a valid header is an error at once rather than after a wait.
 *
 * v1: "PROXY" SP ( "TCP4" / "TCP6" ) SP src SP dst SP sport SP dport CRLF,
 * or "PROXY UNKNOWN" followed by anything up to CRLF; 107 bytes at most.
 * Addresses must be what inet_pton() accepts for the family named; ports
 * are 0..65535 in decimal without leading zeros; single spaces only.
 *
 * v2: 12-byte signature, version 2, command LOCAL (keep the real peer) or
 * PROXY; with PROXY, AF_INET / AF_INET6 over STREAM give the addresses,
 * AF_UNSPEC and AF_UNIX are taken as LOCAL, other combinations are refused.
 * TLVs after the addresses are skipped.  The whole header must fit in
 * PROXY_V2_MAX bytes.
 *
 * Invariant: never reads at or past data + len, never asks for more than
 * PROXY_V2_MAX bytes in all. */
#include "lib/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static enum proxy_status fail(const char **error_r, const char *error)
{
	*error_r = error;
	return PROXY_ERROR;
}

/* Port: 1-5 decimal digits, no leading zero, at most 65535. */
static bool v1_port(const char *s, size_t len, uint16_t *port_r)
{
	unsigned v = 0;

	if (len == 0 || len > 5 || (s[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*port_r = (uint16_t)v;
	return true;
}

/* An address of family af into ss. */
static bool v1_addr(int af, const char *s, size_t len, struct sockaddr_storage *ss,
		    socklen_t *len_r)
{
	char tmp[INET6_ADDRSTRLEN];

	if (len == 0 || len >= sizeof(tmp))
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (af == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		*len_r = sizeof(*sin);
		return inet_pton(AF_INET, tmp, &sin->sin_addr) == 1;
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	*len_r = sizeof(*sin6);
	return inet_pton(AF_INET6, tmp, &sin6->sin6_addr) == 1;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static enum proxy_status parse_v1(const unsigned char *data, size_t len, struct proxy_info *info,
				  size_t *consumed_r, const char **error_r)
{
	static const char prefix[] = "PROXY ";
	const char *s = (const char *)data, *f[6];
	size_t flen[6], nf = 0, line_len = 0, i;
	uint16_t sport, dport;
	int af;

	for (i = 0; i < len && i < sizeof(prefix) - 1; i++) {
		if (s[i] != prefix[i])
			return fail(error_r, "Not a PROXY header");
	}
	/* find CRLF; only printable ASCII before it */
	for (i = 0; i < len && i < PROXY_V1_MAX; i++) {
		unsigned char c = data[i];
		if (c == '\r') {
			if (i + 1 >= PROXY_V1_MAX)
				return fail(error_r, "PROXY v1 header too long");
			if (i + 1 == len)
				return PROXY_NEED_MORE;
			if (data[i + 1] != '\n')
				return fail(error_r, "Bad PROXY v1 line end");
			line_len = i;
			break;
		}
		if (c < 32 || c > 126)
			return fail(error_r, "Bad character in PROXY v1 header");
	}
	if (line_len == 0)
		return i >= PROXY_V1_MAX ? fail(error_r, "PROXY v1 header too long") : PROXY_NEED_MORE;

	/* split on single spaces */
	for (size_t start = 0, j = 0; j <= line_len; j++) {
		if (j == line_len || s[j] == ' ') {
			if (nf == 6) {
				nf++;
				break;
			}
			f[nf] = s + start;
			flen[nf] = j - start;
			nf++;
			start = j + 1;
		}
	}
	memset(info, 0, sizeof(*info));
	if (nf >= 2 && flen[1] == 7 && memcmp(f[1], "UNKNOWN", 7) == 0) {
		/* the rest of the line is to be ignored (spec 2.1) */
		info->local = true;
		*consumed_r = line_len + 2;
		return PROXY_OK;
	}
	if (nf != 6)
		return fail(error_r, "Bad PROXY v1 header");
	for (i = 0; i < 6; i++) {
		if (flen[i] == 0)
			return fail(error_r, "Bad PROXY v1 header");
	}
	if (flen[1] == 4 && memcmp(f[1], "TCP4", 4) == 0)
		af = AF_INET;
	else if (flen[1] == 4 && memcmp(f[1], "TCP6", 4) == 0)
		af = AF_INET6;
	else
		return fail(error_r, "Bad PROXY v1 protocol");
	if (!v1_addr(af, f[2], flen[2], &info->src, &info->src_len) ||
	    !v1_addr(af, f[3], flen[3], &info->dst, &info->dst_len))
		return fail(error_r, "Bad PROXY v1 address");
	if (!v1_port(f[4], flen[4], &sport) || !v1_port(f[5], flen[5], &dport))
		return fail(error_r, "Bad PROXY v1 port");
	set_port(&info->src, sport);
	set_port(&info->dst, dport);
	*consumed_r = line_len + 2;
	return PROXY_OK;
}

static enum proxy_status parse_v2(const unsigned char *data, size_t len, struct proxy_info *info,
				  size_t *consumed_r, const char **error_r)
{
	size_t body, total;
	unsigned cmd, fam, proto;

	for (size_t i = 0; i < len && i < sizeof(v2_sig); i++) {
		if (data[i] != v2_sig[i])
			return fail(error_r, "Not a PROXY header");
	}
	if (len >= 13 && (data[12] >> 4) != 2)
		return fail(error_r, "Unsupported PROXY version");
	if (len >= 13 && (data[12] & 0x0f) > 1)
		return fail(error_r, "Bad PROXY v2 command");
	if (len >= 14 && ((data[13] >> 4) > 3 || (data[13] & 0x0f) > 2))
		return fail(error_r, "Bad PROXY v2 address family");
	if (len < 16)
		return PROXY_NEED_MORE;
	body = ((size_t)data[14] << 8) | data[15];
	total = 16 + body;
	if (total > PROXY_V2_MAX)
		return fail(error_r, "PROXY v2 header too long");
	cmd = data[12] & 0x0f;
	fam = data[13] >> 4;
	proto = data[13] & 0x0f;
	/* check what the fixed part alone decides before waiting for the rest */
	if (cmd == 1 && (fam == 1 || fam == 2)) {
		if (proto != 1)
			return fail(error_r, "Unsupported PROXY v2 transport");
		if (body < (fam == 1 ? 12u : 36u))
			return fail(error_r, "PROXY v2 address block too short");
	}
	if (len < total)
		return PROXY_NEED_MORE;

	memset(info, 0, sizeof(*info));
	*consumed_r = total;
	if (cmd == 0 || fam == 0 || fam == 3) {
		/* LOCAL (health checks), or a family we do not route by */
		info->local = true;
		return PROXY_OK;
	}
	const unsigned char *a = data + 16;
	if (fam == 1) {
		struct sockaddr_in *src = (struct sockaddr_in *)&info->src;
		struct sockaddr_in *dst = (struct sockaddr_in *)&info->dst;
		src->sin_family = dst->sin_family = AF_INET;
		memcpy(&src->sin_addr, a, 4);
		memcpy(&dst->sin_addr, a + 4, 4);
		memcpy(&src->sin_port, a + 8, 2);   /* both in network order */
		memcpy(&dst->sin_port, a + 10, 2);
		info->src_len = info->dst_len = sizeof(struct sockaddr_in);
	} else {
		struct sockaddr_in6 *src = (struct sockaddr_in6 *)&info->src;
		struct sockaddr_in6 *dst = (struct sockaddr_in6 *)&info->dst;
		src->sin6_family = dst->sin6_family = AF_INET6;
		memcpy(&src->sin6_addr, a, 16);
		memcpy(&dst->sin6_addr, a + 16, 16);
		memcpy(&src->sin6_port, a + 32, 2);
		memcpy(&dst->sin6_port, a + 34, 2);
		info->src_len = info->dst_len = sizeof(struct sockaddr_in6);
	}
	return PROXY_OK;
}

enum proxy_status proxy_parse(const unsigned char *data, size_t len, struct proxy_info *info_r,
			      size_t *consumed_r, const char **error_r)
{
	*consumed_r = 0;
	*error_r = NULL;
	if (len == 0)
		return PROXY_NEED_MORE;
	if (data[0] == 'P')
		return parse_v1(data, len, info_r, consumed_r, error_r);
	if (data[0] == v2_sig[0])
		return parse_v2(data, len, info_r, consumed_r, error_r);
	return fail(error_r, "Not a PROXY header");
}

/* ---- trusted proxies ---- */

/* Does the first bits of a and b (n bytes each) agree? */
static bool prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* Parse "addr" or "addr/bits" into net (4 or 16 bytes).  Returns the
 * family, or 0 for an entry that is not valid (it then matches nothing). */
static int cidr_parse(const char *cidr, unsigned char net[16], unsigned *bits_r)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(cidr, '/');
	size_t alen = slash != NULL ? (size_t)(slash - cidr) : strlen(cidr);
	int af = memchr(cidr, ':', alen) != NULL ? AF_INET6 : AF_INET;
	unsigned max = af == AF_INET ? 32 : 128, bits = max;

	if (alen == 0 || alen >= sizeof(tmp))
		return 0;
	memcpy(tmp, cidr, alen);
	tmp[alen] = '\0';
	if (inet_pton(af, tmp, net) != 1)
		return 0;
	if (slash != NULL) {
		const char *p = slash + 1;
		if (*p == '\0' || strlen(p) > 3)
			return 0;
		bits = 0;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return 0;
			bits = bits * 10 + (unsigned)(*p - '0');
		}
		if (bits > max)
			return 0;
	}
	*bits_r = bits;
	return af;
}

bool proxy_addr_trusted(const struct sockaddr *addr, const char *const *cidrs, unsigned count)
{
	unsigned char v4[4], v6[16], net[16];
	bool have_v4 = false, have_v6 = false;

	if (addr == NULL)
		return false;
	if (addr->sa_family == AF_INET) {
		memcpy(v4, &((const struct sockaddr_in *)addr)->sin_addr, 4);
		have_v4 = true;
	} else if (addr->sa_family == AF_INET6) {
		memcpy(v6, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
		have_v6 = true;
		/* a dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d */
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (memcmp(v6, mapped, 12) == 0) {
			memcpy(v4, v6 + 12, 4);
			have_v4 = true;
		}
	} else
		return false;

	for (unsigned i = 0; i < count; i++) {
		unsigned bits;
		int af;
		if (cidrs[i] == NULL)
			continue;
		af = cidr_parse(cidrs[i], net, &bits);
		if (af == AF_INET && have_v4 && prefix_match(v4, net, bits))
			return true;
		if (af == AF_INET6 && have_v6 && prefix_match(v6, net, bits))
			return true;
	}
	return false;
}
