/* libFuzzer target for the SPF record parser and macro expander
 * (src/mailauth/spf.c, RFC 7208 sections 4.6 and 7).
 *
 * The input is used three ways: as a record for spf_record_check(), as a
 * macro string expanded in domain and in explanation mode, and as the TXT
 * answer for every name of a synchronous fake DNS that also answers every
 * A/AAAA, MX and PTR question, so a whole check_host() evaluation runs over
 * it (bounded by the 10-lookup limit).  Nothing may crash, leak or hang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mailauth/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fuzz_txt;
static size_t fuzz_len;

static void f_txt(void *ctx, const char *name, spf_dns_cb *cb, void *q)
{
	(void)ctx;
	struct spf_dns_answer a = { .status = SPF_DNS_OK, .count = 1 };
	const char *strs[1] = { fuzz_txt };
	size_t lens[1] = { fuzz_len };
	a.strings = strs;
	a.lengths = lens;
	/* vary the answer by name so several code paths are reached */
	if (name[0] == 'n')
		a.status = SPF_DNS_NXDOMAIN;
	else if (name[0] == 't')
		a.status = SPF_DNS_TEMPFAIL;
	cb(q, &a);
}

static void f_addr(void *ctx, const char *name, int family, spf_dns_cb *cb, void *q)
{
	(void)ctx;
	struct spf_ip ip;
	spf_ip_parse(family == 4 ? "192.0.2.1" : "2001:db8::1", &ip);
	struct spf_dns_answer a = { .status = SPF_DNS_OK, .count = name[0] == 'v' ? 0 : 1,
				    .addrs = &ip };
	cb(q, &a);
}

static void f_mx(void *ctx, const char *name, spf_dns_cb *cb, void *q)
{
	(void)ctx;
	(void)name;
	const char *strs[2] = { "mx1.example.com", "mx2.example.com" };
	struct spf_dns_answer a = { .status = SPF_DNS_OK, .count = 2, .strings = strs };
	cb(q, &a);
}

static void f_ptr(void *ctx, const struct spf_ip *ip, spf_dns_cb *cb, void *q)
{
	(void)ctx;
	(void)ip;
	const char *strs[1] = { "host.example.com" };
	struct spf_dns_answer a = { .status = SPF_DNS_OK, .count = 1, .strings = strs };
	cb(q, &a);
}

static void f_done(void *ctx, const struct spf_outcome *o)
{
	*(int *)ctx = (int)o->result + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	char *s = xstrndup((const char *)data, size);
	const char *error = NULL;
	(void)spf_record_check(s, &error);

	struct spf_request req = { .sender = "user+tag@example.com", .helo = "mail.example.com",
				   .now = 1 };
	spf_ip_parse("192.0.2.1", &req.ip);
	free(spf_macro_expand(s, &req, "example.com", false, &error));
	free(spf_macro_expand(s, &req, "example.com", true, &error));

	fuzz_txt = (const char *)data;
	fuzz_len = size;
	struct spf_dns dns = { NULL, f_txt, f_addr, f_mx, f_ptr, NULL };
	for (int v6 = 0; v6 < 2; v6++) {
		spf_ip_parse(v6 ? "2001:db8::1" : "192.0.2.1", &req.ip);
		int done = 0;
		if (spf_check(&req, &dns, f_done, &done) != NULL || !done)
			abort();
	}
	free(s);
	return 0;
}
