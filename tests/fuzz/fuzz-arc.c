/* libFuzzer target for ARC header parsing and chain checks
 * (src/mailauth/arc-verify.c, RFC 8617 sections 4 and 5.2).
 *
 * The first byte picks a chunk size; the rest is a whole message, checked
 * once fed at once and once fed in chunks, over a DNS that answers every
 * key name with one fixed RSA key record (so the signature path runs).
 * Both must give the same result, instance count and oldest-pass; the
 * callback runs exactly once; the outcome's strings hold no CR, LF or
 * NUL, and a pass always has at least one instance. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mailauth/arc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* mail-auth's arc/002 manchego.org key (RSA-1024) */
static const char key[] =
	"v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/"
	"zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4"
	"OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB";

static void f_txt(void *ctx, const char *name, dkim_dns_cb *cb, void *q)
{
	(void)ctx;
	(void)name;
	const char *strs[1] = { key };
	struct dkim_dns_answer a = { .status = DKIM_DNS_OK, .count = 1, .strings = strs };
	cb(q, &a);
}

struct got {
	int calls;
	enum arc_result result;
	unsigned instances, oldest;
};

static void clean(const char *s)
{
	if (strpbrk(s, "\r\n") != NULL)
		abort();
}

static void done(void *ctx, const struct arc_outcome *o)
{
	struct got *g = ctx;
	g->calls++;
	g->result = o->result;
	g->instances = o->instances;
	g->oldest = o->oldest_pass;
	clean(o->reason);
	clean(o->sealer);
	clean(o->ams_domain);
	if (o->result == ARC_RESULT_PASS && (o->instances == 0 || o->oldest_pass > o->instances))
		abort();
}

static void check(const char *msg, size_t len, size_t chunk, struct got *g)
{
	struct dkim_dns dns = { NULL, f_txt, NULL };
	struct arc_verify_options opts = { .now = 1700000000 };
	struct arc_verify *v = arc_verify_create(&opts);
	for (size_t i = 0; i < len; i += chunk)
		arc_verify_feed(v, msg + i, len - i < chunk ? len - i : chunk);
	arc_verify_finish(v, &dns, done, g);
	arc_verify_destroy(&v);
	if (g->calls != 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 256 * 1024)
		return 0;
	size_t chunk = (size_t)(data[0] % 61) + 1;
	const char *msg = (const char *)data + 1;
	size_t len = size - 1;
	struct got a = { 0 }, b = { 0 };
	check(msg, len, len ? len : 1, &a);
	check(msg, len, chunk, &b);
	if (a.result != b.result || a.instances != b.instances || a.oldest != b.oldest)
		abort();
	return 0;
}
