/* Unit tests for src/dns/rdata.c: wire names to text, MX, TXT, PTR and
 * TLSA rdata (every truncation of a valid record must be refused, never
 * over-read), and MX delivery order with an injected random source. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "dns/rdata.h"
#include "lib/buf.h"
#include "unit.h"

/* wire form of a dotted name ("." = root) into out; returns its length */
static size_t wire_name(const char *name, unsigned char *out)
{
	size_t n = 0;
	if (strcmp(name, ".") != 0) {
		const char *p = name;
		while (*p != '\0') {
			const char *dot = strchr(p, '.');
			size_t l = dot != NULL ? (size_t)(dot - p) : strlen(p);
			out[n++] = (unsigned char)l;
			memcpy(out + n, p, l);
			n += l;
			p += l;
			if (*p == '.')
				p++;
		}
	}
	out[n++] = 0;
	return n;
}

static size_t wire_mx(unsigned pref, const char *name, unsigned char *out)
{
	out[0] = (unsigned char)(pref >> 8);
	out[1] = (unsigned char)pref;
	return 2 + wire_name(name, out + 2);
}

static void test_name(void)
{
	unsigned char w[300];
	struct buf b;
	size_t used = 0, n;
	const char *err = NULL;

	buf_init(&b, DNS_NAME_TEXT_MAX);
	n = wire_name("Mail.Example.COM", w);
	CHECK(dns_name_from_wire(w, n, &used, &b, &err) == 0);
	CHECK_STR(buf_cstr(&b), "mail.example.com");
	CHECK(used == n);
	/* root */
	buf_reset(&b);
	CHECK(dns_name_from_wire((const unsigned char *)"\0", 1, &used, &b, &err) == 0);
	CHECK_STR(buf_cstr(&b), ".");
	CHECK(used == 1);
	/* escapes: a dot inside a label, a space, a backslash, a control byte */
	static const unsigned char esc[] = { 4, 'a', '.', 'b', ' ', 2, '\\', 1, 0 };
	buf_reset(&b);
	CHECK(dns_name_from_wire(esc, sizeof(esc), &used, &b, &err) == 0);
	CHECK_STR(buf_cstr(&b), "a\\.b\\032.\\\\\\001");
	/* compression pointers are not followed */
	static const unsigned char ptr[] = { 1, 'a', 0xc0, 0x0c };
	buf_reset(&b);
	CHECK(dns_name_from_wire(ptr, sizeof(ptr), &used, &b, &err) < 0);
	CHECK(b.len == 0);
	/* every truncation of a valid name is refused */
	n = wire_name("mx1.example.com", w);
	for (size_t cut = 0; cut < n; cut++) {
		buf_reset(&b);
		err = NULL;
		CHECK(dns_name_from_wire(w, cut, &used, &b, &err) < 0);
		CHECK(err != NULL);
		CHECK(b.len == 0);
	}
	/* 255 octets is the limit: 4 labels of 63 = 4*64+1 = 257 is too long */
	char longname[300];
	memset(longname, 'a', sizeof(longname));
	for (int i = 63; i < 4 * 64; i += 64)
		longname[i] = '.';
	longname[4 * 64 - 1] = '\0';
	n = wire_name(longname, w);
	CHECK(n == 257);
	buf_reset(&b);
	CHECK(dns_name_from_wire(w, n, &used, &b, &err) < 0);
	/* 3 labels of 63 and one of 61: 255 octets, allowed */
	longname[3 * 64 + 61] = '\0';
	n = wire_name(longname, w);
	CHECK(n == 255);
	buf_reset(&b);
	CHECK(dns_name_from_wire(w, n, &used, &b, &err) == 0);
	CHECK(b.len == 3 * 64 + 61);
	/* a label length past the end */
	static const unsigned char over[] = { 10, 'a', 'b', 0 };
	buf_reset(&b);
	CHECK(dns_name_from_wire(over, sizeof(over), &used, &b, &err) < 0);
	buf_free(&b);
}

static void test_mx(void)
{
	unsigned char w[300];
	struct dns_mx_host mx;
	const char *err = NULL;
	size_t n = wire_mx(10, "MX1.example.com", w);

	CHECK(dns_rdata_mx(w, n, &mx, &err) == 0);
	CHECK(mx.pref == 10);
	CHECK_STR(mx.name, "mx1.example.com");
	free(mx.name);
	n = wire_mx(0, ".", w);
	CHECK(dns_rdata_mx(w, n, &mx, &err) == 0);
	CHECK(mx.pref == 0);
	CHECK_STR(mx.name, ".");
	free(mx.name);
	/* every prefix of a valid record is refused */
	n = wire_mx(65535, "a.example", w);
	for (size_t cut = 0; cut < n; cut++) {
		err = NULL;
		CHECK(dns_rdata_mx(w, cut, &mx, &err) < 0);
		CHECK(err != NULL);
	}
	/* trailing garbage after the name */
	w[n] = 'x';
	CHECK(dns_rdata_mx(w, n + 1, &mx, &err) < 0);
}

static void test_txt(void)
{
	static const unsigned char two[] = "\x07v=spf1 \x04-all";
	static const unsigned char nul[] = { 3, 'a', 0, 'b' };
	struct buf b;
	const char *err = NULL;

	buf_init(&b, DNS_TXT_MAX);
	CHECK(dns_rdata_txt(two, sizeof(two) - 1, &b, &err) == 0);
	CHECK_STR(buf_cstr(&b), "v=spf1 -all");
	buf_reset(&b);
	CHECK(dns_rdata_txt(nul, sizeof(nul), &b, &err) == 0);
	CHECK(b.len == 3 && memcmp(b.data, "a\0b", 3) == 0);
	/* an empty string is a valid TXT record */
	buf_reset(&b);
	CHECK(dns_rdata_txt((const unsigned char *)"\0", 1, &b, &err) == 0);
	CHECK(b.len == 0);
	/* no rdata at all is not */
	CHECK(dns_rdata_txt(two, 0, &b, &err) < 0);
	/* a string length running past the rdata: every truncation */
	for (size_t cut = 1; cut < sizeof(two) - 1; cut++) {
		if (cut == 8)
			continue;   /* "\x07v=spf1 " alone is a complete record */
		buf_reset(&b);
		err = NULL;
		CHECK(dns_rdata_txt(two, cut, &b, &err) < 0);
		CHECK(err != NULL);
		CHECK(b.len == 0);
	}
	/* a full output buffer is an error, never a cut record */
	struct buf small;
	buf_init(&small, 4);
	CHECK(dns_rdata_txt(two, sizeof(two) - 1, &small, &err) < 0);
	CHECK(small.len == 0);
	buf_free(&small);
	buf_free(&b);
}

static void test_tlsa(void)
{
	unsigned char w[35] = { 3, 1, 1 };
	struct dns_tlsa_rr rr;
	const char *err = NULL;

	for (int i = 0; i < 32; i++)
		w[3 + i] = (unsigned char)i;
	CHECK(dns_rdata_tlsa(w, sizeof(w), &rr, &err) == 0);
	CHECK(rr.usage == 3 && rr.selector == 1 && rr.mtype == 1);
	CHECK(rr.len == 32 && rr.data[31] == 31);
	free(rr.data);
	for (size_t cut = 0; cut < 4; cut++)
		CHECK(dns_rdata_tlsa(w, cut, &rr, &err) < 0);
}

/* a scripted random source: returns its values in turn */
struct script {
	const uint32_t *v;
	size_t n, i;
};

static uint32_t scripted(void *ctx)
{
	struct script *s = ctx;
	return s->v[s->i++ % s->n];
}

static struct dns_mx_host *hosts_of(const char *const *names, const unsigned *prefs, size_t n)
{
	struct dns_mx_host *h = calloc(n, sizeof(*h));
	for (size_t i = 0; i < n; i++) {
		h[i].name = strdup(names[i]);
		h[i].pref = (uint16_t)prefs[i];
	}
	return h;
}

static void test_mx_order(void)
{
	static const char *const names[] = { "c.example", "a.example", "b.example", "d.example",
					     "a.example" };
	static const unsigned prefs[] = { 20, 10, 20, 30, 40 };
	static const uint32_t zero[] = { 0 }, one[] = { 1 };
	struct script s0 = { zero, 1, 0 }, s1 = { one, 1, 0 };
	struct dns_mx_host *h;
	size_t n = 5;

	/* preference order, the duplicate a.example kept at 10; with r = 0
	 * Fisher-Yates swaps the last of a run with the first: b, c -> c, b */
	h = hosts_of(names, prefs, 5);
	CHECK(dns_mx_order(h, &n, scripted, &s0) == DNS_MX_ORDER_HOSTS);
	CHECK(n == 4);
	CHECK_STR(h[0].name, "a.example");
	CHECK(h[0].pref == 10);
	CHECK_STR(h[1].name, "c.example");
	CHECK_STR(h[2].name, "b.example");
	CHECK_STR(h[3].name, "d.example");
	CHECK(h[3].pref == 30);
	dns_mx_hosts_free(h, n);

	/* another random value gives the other order among the equals only */
	n = 5;
	h = hosts_of(names, prefs, 5);
	CHECK(dns_mx_order(h, &n, scripted, &s1) == DNS_MX_ORDER_HOSTS);
	CHECK(n == 4);
	CHECK_STR(h[0].name, "a.example");
	CHECK_STR(h[1].name, "b.example");
	CHECK_STR(h[2].name, "c.example");
	CHECK_STR(h[3].name, "d.example");
	dns_mx_hosts_free(h, n);

	/* the built-in source: both orders of the equals appear, never others */
	bool seen_bc = false, seen_cb = false, bad = false;
	for (int round = 0; round < 200; round++) {
		n = 5;
		h = hosts_of(names, prefs, 5);
		dns_mx_order(h, &n, NULL, NULL);
		bad |= n != 4 || strcmp(h[0].name, "a.example") != 0 ||
			strcmp(h[3].name, "d.example") != 0;
		if (strcmp(h[1].name, "b.example") == 0)
			seen_bc = true;
		else
			seen_cb = true;
		dns_mx_hosts_free(h, n);
	}
	CHECK(!bad);
	CHECK(seen_bc && seen_cb);

	/* null MX (RFC 7505) */
	static const char *const null_names[] = { "." };
	static const unsigned null_prefs[] = { 0 };
	n = 1;
	h = hosts_of(null_names, null_prefs, 1);
	CHECK(dns_mx_order(h, &n, NULL, NULL) == DNS_MX_ORDER_NULL);
	CHECK(n == 0);
	dns_mx_hosts_free(h, n);
	/* "." next to real hosts is dropped */
	static const char *const mixed_names[] = { ".", "mx.example" };
	static const unsigned mixed_prefs[] = { 0, 10 };
	n = 2;
	h = hosts_of(mixed_names, mixed_prefs, 2);
	CHECK(dns_mx_order(h, &n, NULL, NULL) == DNS_MX_ORDER_HOSTS);
	CHECK(n == 1);
	CHECK_STR(h[0].name, "mx.example");
	dns_mx_hosts_free(h, n);
	/* nothing */
	n = 0;
	CHECK(dns_mx_order(NULL, &n, NULL, NULL) == DNS_MX_ORDER_EMPTY);
}

static void test_ptr(void)
{
	unsigned char w[300];
	struct buf b;
	const char *err = NULL;
	size_t n;

	buf_init(&b, DNS_NAME_TEXT_MAX);
	n = wire_name("Mail.Example.COM", w);
	CHECK(dns_rdata_ptr(w, n, &b, &err) == 0);
	CHECK_STR(buf_cstr(&b), "mail.example.com");
	/* appended after what out held */
	CHECK(dns_rdata_ptr(w, n, &b, &err) == 0);
	CHECK_STR(buf_cstr(&b), "mail.example.commail.example.com");
	/* every truncation is refused and leaves out as it was */
	for (size_t k = 0; k < n; k++) {
		buf_reset(&b);
		buf_append_str(&b, "x");
		unsigned char *cut = xmalloc(k > 0 ? k : 1);
		memcpy(cut, w, k);
		err = NULL;
		CHECK(dns_rdata_ptr(cut, k, &b, &err) < 0);
		CHECK(err != NULL);
		CHECK_STR(buf_cstr(&b), "x");
		free(cut);
	}
	/* trailing bytes after the name */
	w[n] = 7;
	buf_reset(&b);
	CHECK(dns_rdata_ptr(w, n + 1, &b, &err) < 0);
	CHECK(strstr(err, "trailing") != NULL);
	CHECK(b.len == 0);
	/* a compression pointer is not followed */
	static const unsigned char ptr[] = { 3, 'f', 'o', 'o', 0xc0, 0x0c };
	CHECK(dns_rdata_ptr(ptr, sizeof(ptr), &b, &err) < 0);
	buf_free(&b);
}

static void test_reverse_name(void)
{
	struct buf b;
	unsigned char a4[4], a6[16];

	buf_init(&b, DNS_NAME_TEXT_MAX);
	inet_pton(AF_INET, "192.0.2.10", a4);
	CHECK(dns_reverse_name(AF_INET, a4, &b) == 0);
	CHECK_STR(buf_cstr(&b), "10.2.0.192.in-addr.arpa");
	buf_reset(&b);
	/* RFC 3596 2.5's example address */
	inet_pton(AF_INET6, "4321:0:1:2:3:4:567:89ab", a6);
	CHECK(dns_reverse_name(AF_INET6, a6, &b) == 0);
	CHECK_STR(buf_cstr(&b), "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa");
	buf_reset(&b);
	inet_pton(AF_INET6, "CAFE:BABE::1", a6);
	CHECK(dns_reverse_name(AF_INET6, a6, &b) == 0);
	CHECK_STR(buf_cstr(&b), "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.b.a.b.e.f.a.c.ip6.arpa");
	buf_reset(&b);
	CHECK(dns_reverse_name(AF_UNIX, a6, &b) < 0);
	CHECK(b.len == 0);
	buf_free(&b);
}

int main(void)
{
	RUN(test_name);
	RUN(test_mx);
	RUN(test_txt);
	RUN(test_tlsa);
	RUN(test_ptr);
	RUN(test_reverse_name);
	RUN(test_mx_order);
	return unit_summary("dns-rdata");
}
