/* Fuzz target: DNS answer handling (src/dns/rdata.c).  The input is a
 * list of records as libunbound hands them over, each a 2-byte big-endian
 * length and that many rdata bytes (the last one takes whatever is left).
 * Every record goes through the MX, TXT, TLSA, PTR and name decoders, each on
 * an exact-size copy so ASan sees any over-read; the MX hosts decoded are
 * then put into delivery order with a random source fed from the input,
 * and the order is checked: preferences ascending, no name twice, no ".". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/rdata.h"
#include "lib/buf.h"
#include "lib/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct rng {
	const uint8_t *p;
	size_t len, pos;
};

static uint32_t input_random(void *ctx)
{
	struct rng *r = ctx;
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		v = (v << 8) | (r->len > 0 ? r->p[r->pos++ % r->len] : 0x5a);
	}
	return v;
}

static void check_name(const unsigned char *p, size_t n)
{
	struct buf out;
	size_t used = 0;
	const char *err = NULL;

	buf_init(&out, DNS_NAME_TEXT_MAX);
	if (dns_name_from_wire(p, n, &used, &out, &err) == 0) {
		if (used == 0 || used > n || used > DNS_NAME_WIRE_MAX || out.len == 0)
			panic("bad name decode: used=%zu n=%zu len=%zu", used, n, out.len);
		if (strlen(buf_cstr(&out)) != out.len)
			panic("NUL inside a decoded name");
	} else {
		if (err == NULL || out.len != 0)
			panic("name error without a message, or output left behind");
	}
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_mx_host *hosts = NULL;
	size_t count = 0, cap = 0, pos = 0;
	struct rng rng = { data, size, 0 };

	while (pos < size) {
		size_t n;
		if (size - pos >= 2) {
			n = (size_t)data[pos] << 8 | data[pos + 1];
			pos += 2;
			if (n > size - pos)
				n = size - pos;
		} else {
			n = size - pos;
		}
		unsigned char *rd = xmalloc(n > 0 ? n : 1);
		memcpy(rd, data + pos, n);
		pos += n;

		const char *err = NULL;
		struct dns_mx_host mx;
		if (dns_rdata_mx(rd, n, &mx, &err) == 0) {
			if (count == cap) {
				cap = cap ? cap * 2 : 8;
				hosts = xrealloc(hosts, cap * sizeof(*hosts));
			}
			hosts[count++] = mx;
		} else if (err == NULL) {
			panic("MX error without a message");
		}

		struct buf txt;
		buf_init(&txt, DNS_TXT_MAX);
		err = NULL;
		if (dns_rdata_txt(rd, n, &txt, &err) == 0) {
			if (txt.len >= n && n > 0)
				panic("TXT text longer than its rdata");
		} else if (err == NULL || txt.len != 0) {
			panic("TXT error without a message, or output left behind");
		}
		buf_free(&txt);

		struct dns_tlsa_rr rr;
		if (dns_rdata_tlsa(rd, n, &rr, &err) == 0) {
			if (rr.len + 3 != n)
				panic("TLSA data length wrong");
			free(rr.data);
		}
		check_name(rd, n);

		struct buf ptr;
		buf_init(&ptr, DNS_NAME_TEXT_MAX);
		err = NULL;
		if (dns_rdata_ptr(rd, n, &ptr, &err) == 0) {
			if (ptr.len == 0 || strlen(buf_cstr(&ptr)) != ptr.len)
				panic("bad PTR decode");
		} else if (err == NULL || ptr.len != 0) {
			panic("PTR error without a message, or output left behind");
		}
		buf_free(&ptr);
		free(rd);
	}

	size_t before = count;
	enum dns_mx_order_result res = dns_mx_order(hosts, &count, input_random, &rng);
	if (count > before)
		panic("MX ordering grew the list");
	if (res != DNS_MX_ORDER_HOSTS && count != 0)
		panic("no hosts expected");
	if (res == DNS_MX_ORDER_HOSTS && count == 0)
		panic("hosts expected");
	for (size_t i = 0; i < count; i++) {
		if (strcmp(hosts[i].name, ".") == 0)
			panic("null MX host kept");
		if (i > 0 && hosts[i - 1].pref > hosts[i].pref)
			panic("MX preferences out of order");
		for (size_t j = 0; j < i; j++) {
			if (strcmp(hosts[i].name, hosts[j].name) == 0)
				panic("MX host listed twice");
		}
	}
	dns_mx_hosts_free(hosts, count);
	return 0;
}
