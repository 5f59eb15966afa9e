/* lib/proxy: PROXY protocol v1 and v2 headers fed whole and one byte at a
 * time (every prefix must be NEED_MORE until the header is complete, or an
 * ERROR that stays an ERROR), from exact-size heap copies; and the
 * trusted-proxy CIDR matching. */
#include "unit.h"
#include "lib/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>

static enum proxy_status parse(const void *data, size_t len, struct proxy_info *info,
			       size_t *consumed, const char **err)
{
	unsigned char *copy = malloc(len ? len : 1);
	memcpy(copy, data, len);
	enum proxy_status st = proxy_parse(copy, len, info, consumed, err);
	free(copy);
	return st;
}

/* Feed data one byte more at a time.  Returns the status for the whole
 * input; every shorter prefix must have been NEED_MORE (for a good header)
 * and, once an ERROR was seen, every longer one must stay ERROR. */
static enum proxy_status feed(const void *data, size_t len, struct proxy_info *info,
			      size_t *consumed, const char **err, size_t *first_error_r)
{
	enum proxy_status st = PROXY_NEED_MORE;
	bool errored = false;

	*first_error_r = (size_t)-1;
	for (size_t n = 0; n <= len; n++) {
		st = parse(data, n, info, consumed, err);
		if (st == PROXY_ERROR) {
			CHECK(*err != NULL);
			if (!errored)
				*first_error_r = n;
			errored = true;
		} else {
			CHECK(!errored);
		}
		if (st == PROXY_OK) {
			CHECK(*consumed <= n);
			return st;
		}
		CHECK(n <= PROXY_V2_MAX);
	}
	return st;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static const char *addr_str(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	if (ss->ss_family == AF_INET)
		return inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out,
				 (socklen_t)outsz);
	if (ss->ss_family == AF_INET6)
		return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out,
				 (socklen_t)outsz);
	return "?";
}

static void v1_ok(const char *s, const char *src, unsigned sport, const char *dst,
		  unsigned dport, size_t want_consumed)
{
	struct proxy_info info;
	size_t consumed = 0, first_err;
	const char *err = NULL;
	char a[64];

	enum proxy_status st = feed(s, strlen(s), &info, &consumed, &err, &first_err);
	if (st != PROXY_OK)
		fprintf(stderr, "  v1 input %s: st=%d err=%s\n", s, st, err ? err : "-");
	CHECK(st == PROXY_OK);
	CHECK(consumed == want_consumed);
	if (st != PROXY_OK)
		return;
	if (src == NULL) {
		CHECK(info.local);
		return;
	}
	CHECK(!info.local);
	CHECK_STR(addr_str(&info.src, a, sizeof(a)), src);
	CHECK_STR(addr_str(&info.dst, a, sizeof(a)), dst);
	CHECK(port_of(&info.src) == sport);
	CHECK(port_of(&info.dst) == dport);
	CHECK(info.src_len == (info.src.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
							       sizeof(struct sockaddr_in6)));
}

static void v1_bad(const char *s, size_t len)
{
	struct proxy_info info;
	size_t consumed, first_err;
	const char *err = NULL;

	enum proxy_status st = feed(s, len, &info, &consumed, &err, &first_err);
	if (st != PROXY_ERROR)
		fprintf(stderr, "  v1 input %s: st=%d, want error\n", s, st);
	CHECK(st == PROXY_ERROR);
}

static void test_v1(void)
{
	v1_ok("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n", "192.0.2.1", 56324,
	      "198.51.100.2", 25, 44);
	v1_ok("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\nEHLO x\r\n", "192.0.2.1", 56324,
	      "198.51.100.2", 25, 44);
	v1_ok("PROXY TCP6 2001:db8::1 2001:db8::2 0 65535\r\n", "2001:db8::1", 0, "2001:db8::2",
	      65535, 44);
	v1_ok("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n", "::ffff:192.0.2.1", 1, "::1", 2, 37);
	v1_ok("PROXY UNKNOWN\r\n", NULL, 0, NULL, 0, 15);
	v1_ok("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", NULL, 0, NULL, 0,
	      59);
	/* the longest valid header is 107 bytes */
	v1_ok("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
	      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
	      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 104);

	v1_bad("PROXY TCP4 192.0.2.1 198.51.100.2 56324 65536\r\n", 47);
	v1_bad("PROXY TCP4 192.0.2.1 198.51.100.2 056324 25\r\n", 45);
	v1_bad("PROXY TCP4 192.0.2.1 198.51.100.2 -1 25\r\n", 41);
	v1_bad("PROXY TCP4 192.0.2.1 198.51.100.2 1 25 \r\n", 41);
	v1_bad("PROXY TCP4 192.0.2.1  198.51.100.2 1 25\r\n", 41);
	v1_bad("PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n", 37);
	v1_bad("PROXY TCP4 2001:db8::1 198.51.100.2 1 25\r\n", 42);
	v1_bad("PROXY TCP6 192.0.2.1 2001:db8::2 1 25\r\n", 39);
	v1_bad("PROXY TCP4 192.0.2.256 198.51.100.2 1 25\r\n", 42);
	v1_bad("PROXY TCP4 192.0.2 198.51.100.2 1 25\r\n", 38);
	v1_bad("PROXY tcp4 192.0.2.1 198.51.100.2 1 25\r\n", 40);
	v1_bad("PROXY UDP4 192.0.2.1 198.51.100.2 1 25\r\n", 40);
	v1_bad("PROXY TCP4 192.0.2.1 198.51.100.2 1 25\n", 39);      /* bare LF */
	v1_bad("PROXY TCP4 192.0.2.1 198.51.100.2 1 25\rX", 40);     /* bare CR */
	v1_bad("PROXY TCP4 192.0.2.1\t198.51.100.2 1 25\r\n", 40);
	v1_bad("PROXY\r\n", 7);
	v1_bad("PROXY \r\n", 8);
	v1_bad("proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", 32);
	v1_bad("PROXYTCP4\r\n", 11);
	v1_bad("EHLO example.test\r\n", 19);
	v1_bad("GET / HTTP/1.0\r\n", 16);
	v1_bad("PROXY TCP4 1.2.3.4\0 1.2.3.4 1 2\r\n", 33);

	/* no CRLF within 107 bytes is an error, never an endless wait */
	char longer[300];
	memset(longer, 'A', sizeof(longer));
	memcpy(longer, "PROXY UNKNOWN ", 14);
	struct proxy_info info;
	size_t consumed, first_err;
	const char *err;
	CHECK(feed(longer, sizeof(longer), &info, &consumed, &err, &first_err) == PROXY_ERROR);
	CHECK(first_err == PROXY_V1_MAX);
	/* CRLF straddling the limit: 106 bytes + CR + LF = 108 */
	longer[105] = '\r';
	longer[106] = '\n';
	CHECK(parse(longer, 107, &info, &consumed, &err) == PROXY_OK);
	CHECK(consumed == 107);
	longer[105] = 'A';
	longer[106] = '\r';
	longer[107] = '\n';
	CHECK(parse(longer, 108, &info, &consumed, &err) == PROXY_ERROR);
	CHECK(parse(longer, 107, &info, &consumed, &err) == PROXY_ERROR);

	/* early rejection: a wrong first byte fails at once */
	CHECK(feed("HELO", 4, &info, &consumed, &err, &first_err) == PROXY_ERROR);
	CHECK(first_err == 1);
	CHECK(parse("", 0, &info, &consumed, &err) == PROXY_NEED_MORE);
	CHECK(parse("PRO", 3, &info, &consumed, &err) == PROXY_NEED_MORE);
}

static const unsigned char sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				       0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/* Build a v2 header: ver_cmd, fam, then the body bytes. */
static size_t v2(unsigned char *out, unsigned char ver_cmd, unsigned char fam,
		 const unsigned char *body, size_t body_len)
{
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (unsigned char)(body_len >> 8);
	out[15] = (unsigned char)body_len;
	if (body_len > 0)
		memcpy(out + 16, body, body_len);
	return 16 + body_len;
}

static void test_v2(void)
{
	unsigned char h[PROXY_V2_MAX + 64], body[PROXY_V2_MAX];
	struct proxy_info info;
	size_t n, consumed, first_err;
	const char *err;
	char a[64];

	/* TCP over IPv4, with a TLV after the addresses and data after it */
	unsigned char b4[] = { 192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x00, 0x19,
			       0x04, 0x00, 0x02, 'h', 'i' };  /* PP2_TYPE_NOOP TLV */
	n = v2(h, 0x21, 0x11, b4, sizeof(b4));
	memcpy(h + n, "EHLO", 4);
	CHECK(feed(h, n, &info, &consumed, &err, &first_err) == PROXY_OK);
	CHECK(consumed == n);
	CHECK(!info.local);
	CHECK_STR(addr_str(&info.src, a, sizeof(a)), "192.0.2.1");
	CHECK_STR(addr_str(&info.dst, a, sizeof(a)), "198.51.100.2");
	CHECK(port_of(&info.src) == 56324 && port_of(&info.dst) == 25);
	CHECK(info.src_len == sizeof(struct sockaddr_in));
	CHECK(parse(h, n + 4, &info, &consumed, &err) == PROXY_OK && consumed == n);

	/* TCP over IPv6 */
	unsigned char b6[36] = { 0x20, 0x01, 0x0d, 0xb8 };
	b6[15] = 1;
	b6[16] = 0x20;
	b6[17] = 0x01;
	b6[18] = 0x0d;
	b6[19] = 0xb8;
	b6[31] = 2;
	b6[32] = 0x01;
	b6[33] = 0xbb;
	b6[34] = 0x00;
	b6[35] = 0x19;
	n = v2(h, 0x21, 0x21, b6, sizeof(b6));
	CHECK(feed(h, n, &info, &consumed, &err, &first_err) == PROXY_OK);
	CHECK(consumed == 52);
	CHECK_STR(addr_str(&info.src, a, sizeof(a)), "2001:db8::1");
	CHECK_STR(addr_str(&info.dst, a, sizeof(a)), "2001:db8::2");
	CHECK(port_of(&info.src) == 443 && port_of(&info.dst) == 25);

	/* LOCAL (health check), with and without an address block */
	n = v2(h, 0x20, 0x00, NULL, 0);
	CHECK(feed(h, n, &info, &consumed, &err, &first_err) == PROXY_OK);
	CHECK(info.local && consumed == 16);
	n = v2(h, 0x20, 0x11, b4, 12);
	CHECK(feed(h, n, &info, &consumed, &err, &first_err) == PROXY_OK);
	CHECK(info.local && consumed == 28);
	/* PROXY with UNSPEC or UNIX: treated as local */
	n = v2(h, 0x21, 0x00, NULL, 0);
	CHECK(feed(h, n, &info, &consumed, &err, &first_err) == PROXY_OK && info.local);
	memset(body, 0, 216);
	n = v2(h, 0x21, 0x31, body, 216);
	CHECK(feed(h, n, &info, &consumed, &err, &first_err) == PROXY_OK && info.local);
	CHECK(consumed == 232);

	/* the largest header we take, and one byte more */
	memset(body, 0, sizeof(body));
	n = v2(h, 0x21, 0x11, body, PROXY_V2_MAX - 16);
	CHECK(parse(h, n, &info, &consumed, &err) == PROXY_OK && consumed == PROXY_V2_MAX);
	CHECK(parse(h, n - 1, &info, &consumed, &err) == PROXY_NEED_MORE);
	n = v2(h, 0x21, 0x11, body, PROXY_V2_MAX - 15);
	CHECK(feed(h, 16, &info, &consumed, &err, &first_err) == PROXY_ERROR);
	CHECK(first_err == 16);

	/* errors, found as early as possible */
	n = v2(h, 0x11, 0x11, b4, 12);                  /* version 1 in the binary form */
	CHECK(feed(h, n, &info, &consumed, &err, &first_err) == PROXY_ERROR && first_err == 13);
	n = v2(h, 0x22, 0x11, b4, 12);                  /* command 2 */
	CHECK(feed(h, n, &info, &consumed, &err, &first_err) == PROXY_ERROR && first_err == 13);
	n = v2(h, 0x21, 0x41, b4, 12);                  /* family 4 */
	CHECK(feed(h, n, &info, &consumed, &err, &first_err) == PROXY_ERROR && first_err == 14);
	n = v2(h, 0x21, 0x13, b4, 12);                  /* transport 3 */
	CHECK(feed(h, n, &info, &consumed, &err, &first_err) == PROXY_ERROR && first_err == 14);
	n = v2(h, 0x21, 0x12, b4, 12);                  /* UDP */
	CHECK(feed(h, n, &info, &consumed, &err, &first_err) == PROXY_ERROR && first_err == 16);
	n = v2(h, 0x21, 0x11, b4, 11);                  /* address block too short */
	CHECK(feed(h, n, &info, &consumed, &err, &first_err) == PROXY_ERROR && first_err == 16);
	n = v2(h, 0x21, 0x21, b6, 35);
	CHECK(feed(h, n, &info, &consumed, &err, &first_err) == PROXY_ERROR && first_err == 16);
	n = v2(h, 0x21, 0x11, b4, 12);
	h[7] = 'q';                                     /* damaged signature */
	CHECK(feed(h, n, &info, &consumed, &err, &first_err) == PROXY_ERROR && first_err == 8);
	CHECK(feed("\r\n\r\n\r\n", 6, &info, &consumed, &err, &first_err) == PROXY_ERROR);
	CHECK(first_err == 5);
}

static void set4(struct sockaddr_storage *ss, const char *a)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = AF_INET;
	inet_pton(AF_INET, a, &((struct sockaddr_in *)ss)->sin_addr);
}

static void set6(struct sockaddr_storage *ss, const char *a)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = AF_INET6;
	inet_pton(AF_INET6, a, &((struct sockaddr_in6 *)ss)->sin6_addr);
}

static void test_trusted(void)
{
	const char *list[] = { "10.0.0.0/8", "192.0.2.7", "2001:db8:1::/48", "::1",
			       "203.0.113.128/25" };
	const char *bad[] = { "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/8x", "10.0.0/8", "::/129",
			      "nonsense", "", "1.2.3.4/-1", "1.2.3.4/0008" };
	const char *all[] = { "0.0.0.0/0", "::/0" };
	struct sockaddr_storage ss;
	const struct sockaddr *sa = (const struct sockaddr *)&ss;

	set4(&ss, "10.1.2.3");
	CHECK(proxy_addr_trusted(sa, list, 5));
	set4(&ss, "11.1.2.3");
	CHECK(!proxy_addr_trusted(sa, list, 5));
	set4(&ss, "192.0.2.7");
	CHECK(proxy_addr_trusted(sa, list, 5));
	set4(&ss, "192.0.2.8");
	CHECK(!proxy_addr_trusted(sa, list, 5));
	set4(&ss, "203.0.113.128");
	CHECK(proxy_addr_trusted(sa, list, 5));
	set4(&ss, "203.0.113.255");
	CHECK(proxy_addr_trusted(sa, list, 5));
	set4(&ss, "203.0.113.127");
	CHECK(!proxy_addr_trusted(sa, list, 5));
	set6(&ss, "2001:db8:1:ffff::1");
	CHECK(proxy_addr_trusted(sa, list, 5));
	set6(&ss, "2001:db8:2::1");
	CHECK(!proxy_addr_trusted(sa, list, 5));
	set6(&ss, "::1");
	CHECK(proxy_addr_trusted(sa, list, 5));
	set6(&ss, "::2");
	CHECK(!proxy_addr_trusted(sa, list, 5));
	/* IPv4-mapped peers on a dual-stack socket match IPv4 entries */
	set6(&ss, "::ffff:10.9.9.9");
	CHECK(proxy_addr_trusted(sa, list, 5));
	set6(&ss, "::ffff:192.0.2.7");
	CHECK(proxy_addr_trusted(sa, list, 5));
	set6(&ss, "::ffff:192.0.2.8");
	CHECK(!proxy_addr_trusted(sa, list, 5));
	/* count is honoured */
	set4(&ss, "203.0.113.200");
	CHECK(!proxy_addr_trusted(sa, list, 4));
	CHECK(!proxy_addr_trusted(sa, list, 0));
	/* invalid entries match nothing */
	set4(&ss, "10.0.0.1");
	CHECK(!proxy_addr_trusted(sa, bad, 9));
	set6(&ss, "::");
	CHECK(!proxy_addr_trusted(sa, bad, 9));
	/* everything */
	set4(&ss, "198.51.100.1");
	CHECK(proxy_addr_trusted(sa, all, 2));
	set6(&ss, "2001:db8::1");
	CHECK(proxy_addr_trusted(sa, all, 2));
	CHECK(proxy_addr_trusted(sa, all + 1, 1));
	set4(&ss, "198.51.100.1");
	CHECK(!proxy_addr_trusted(sa, all + 1, 1));  /* ::/0 is IPv6 only */
	/* other families never */
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	CHECK(!proxy_addr_trusted(sa, all, 2));
	CHECK(!proxy_addr_trusted(NULL, all, 2));
}

int main(void)
{
	RUN(test_v1);
	RUN(test_v2);
	RUN(test_trusted);
	return unit_summary("proxy");
}
