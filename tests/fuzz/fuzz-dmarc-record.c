/* libFuzzer target for the DMARC record parser and policy discovery
 * (src/mailauth/dmarc-record.c, src/mailauth/dmarc.c; RFC 7489 sections
 * 6.3 and 6.6.3).
 *
 * The input is parsed as one TXT value (NULs included), then served as the
 * only TXT record of every _dmarc name of a synchronous fake DNS while a
 * whole discovery and evaluation runs for a subdomain From (so both the
 * From and the organisational names are asked), with its first byte
 * choosing the SPF result and the pct draw.  Nothing may crash, leak, read
 * past the input or leave the done callback uncalled. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mailauth/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fuzz_txt;
static size_t fuzz_len;
static struct dmarc_psl *fuzz_psl;

static void f_txt(void *ctx, const char *name, dmarc_dns_cb *cb, void *q)
{
	(void)ctx;
	const char *strs[2] = { fuzz_txt, "v=spf1 -all" };
	size_t lens[2] = { fuzz_len, 11 };
	struct dmarc_dns_answer a = { .status = DMARC_DNS_OK, .count = 2, .strings = strs,
				      .lengths = lens };
	/* the From name gets no record, so the organisational one is asked */
	if (strncmp(name, "_dmarc.mail.", 12) == 0)
		a.status = DMARC_DNS_NXDOMAIN;
	cb(q, &a);
}

static unsigned f_random(void *ctx)
{
	return *(const unsigned *)ctx;
}

static void f_done(void *ctx, const struct dmarc_outcome *o)
{
	*(int *)ctx += 1 + (int)o->result;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 3 * DMARC_MAX_RECORD)
		return 0;
	if (fuzz_psl == NULL) {
		const char *error = NULL;
		fuzz_psl = dmarc_psl_open(NULL, &error);
		if (fuzz_psl == NULL)
			abort();
	}
	/* an exact-size copy, so a read past the end shows */
	char *copy = xmalloc(size > 0 ? size : 1);
	memcpy(copy, data, size);
	struct dmarc_record rec;
	const char *error = NULL;
	int st = dmarc_record_parse(copy, size, &rec, &error);
	if (st != DMARC_PARSE_OK && error == NULL)
		abort();
	if (st == DMARC_PARSE_OK && (rec.pct > 100 || rec.rua.count > DMARC_MAX_URIS ||
				     rec.ruf.count > DMARC_MAX_URIS))
		abort();
	for (size_t i = 0; i < rec.rua.count; i++)
		if (strpbrk(rec.rua.uri[i].uri, " \r\n\t") != NULL)
			abort();
	dmarc_record_clear(&rec);

	fuzz_txt = copy;
	fuzz_len = size;
	unsigned rnd = size > 0 ? data[0] % 100 : 0;
	struct dmarc_dkim sig = { "example.com", size > 0 && (data[0] & 1) };
	struct dmarc_request req = { .from_domain = "mail.example.com",
				     .spf = size > 0 ? (enum spf_result)(data[0] % 7) : SPF_RESULT_NONE,
				     .mail_from = "mail.example.com", .helo = "mx.example.net",
				     .dkim = &sig, .dkim_count = 1,
				     .random = f_random, .random_ctx = &rnd };
	struct dmarc_dns dns = { NULL, f_txt, NULL };
	int done = 0;
	if (dmarc_check(fuzz_psl, &req, &dns, f_done, &done) != NULL || done == 0)
		abort();
	free(copy);
	return 0;
}
