/* DKIM signing and verification rate of Tern's library, for bench/mailauth
 * (built by run.sh against build/libtern.a with cc -O2).
 *
 * One thread, in process, through the public API of src/mailauth/dkim.h:
 *   rate sign ALG KEY.pem DOMAIN SELECTOR MSGDIR N RUNS OUTDIR
 *       signs MSGDIR/0.eml .. MSGDIR/(N-1).eml (read into memory first)
 *       with dkim_sign_message() (relaxed/relaxed, the library's header
 *       set), RUNS times; writes each signed message (DKIM-Signature on
 *       top, line ends CRLF as the library signs them) to OUTDIR/I.eml
 *       after the timed runs.  ALG is rsa or ed25519.
 *   rate verify RECORD DOMAIN SELECTOR MSGDIR N RUNS
 *       verifies MSGDIR/I.eml RUNS times with dkim_verify_create/feed/
 *       finish/destroy; the DNS answers SELECTOR._domainkey.DOMAIN with the
 *       key record held in the file RECORD (at once, as a warm cache would),
 *       every other name NXDOMAIN.  Every signature must pass.
 * Only the library calls are timed (CLOCK_MONOTONIC around the loop over
 * the N messages); reading and writing files is not.
 * Output, one line per run and a summary line:
 *   run=R msgs_per_s=X
 *   median_msgs_per_s=X passed=P of=N     (verify: P signatures passed)
 * Exit status 0, or 1 (reason on stderr) when a file cannot be read, a
 * signature cannot be made or a message does not verify; 2 for usage. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/buf.h"
#include "mailauth/dkim.h"

#define MAX_MESSAGES 100000
#define MAX_RUNS 20

static char *slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "rate: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	struct buf b;
	buf_init(&b, BUF_UNLIMITED);
	char tmp[65536];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(&b, tmp, n);
	fclose(f);
	*len_r = b.len;
	return buf_steal(&b);
}

struct msgs {
	char **data;
	size_t *len;
	size_t n;
};

static void load_messages(struct msgs *m, const char *dir, size_t n)
{
	m->data = calloc(n, sizeof(*m->data));
	m->len = calloc(n, sizeof(*m->len));
	if (m->data == NULL || m->len == NULL) {
		fprintf(stderr, "rate: out of memory\n");
		exit(1);
	}
	m->n = n;
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%zu.eml", dir, i);
		m->data[i] = slurp(path, &m->len[i]);
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[(n - 1) / 2];
}

static size_t parse_count(const char *s, size_t max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*s == 0 || *end != 0 || v == 0 || v > max) {
		fprintf(stderr, "rate: bad count %s (1..%zu)\n", s, max);
		exit(2);
	}
	return v;
}

static int cmd_sign(char **argv)
{
	const char *alg_name = argv[0], *keyfile = argv[1], *domain = argv[2],
		   *selector = argv[3], *msgdir = argv[4], *outdir = argv[7];
	size_t n = parse_count(argv[5], MAX_MESSAGES), runs = parse_count(argv[6], MAX_RUNS);
	enum dkim_alg alg;
	if (strcmp(alg_name, "rsa") == 0)
		alg = DKIM_ALG_RSA_SHA256;
	else if (strcmp(alg_name, "ed25519") == 0)
		alg = DKIM_ALG_ED25519_SHA256;
	else {
		fprintf(stderr, "rate: algorithm must be rsa or ed25519\n");
		return 2;
	}
	struct dkim_keyring *kr = dkim_keyring_create();
	const char *error;
	size_t klen;
	char *pem = slurp(keyfile, &klen);
	if (dkim_keyring_add_pem(kr, "k", pem, klen, &error) < 0) {
		fprintf(stderr, "rate: %s: %s\n", keyfile, error);
		return 1;
	}
	free(pem);
	struct dkim_signer signer = dkim_keyring_signer(kr);
	struct msgs m;
	load_messages(&m, msgdir, n);
	struct buf *sigs = calloc(n, sizeof(*sigs));
	if (sigs == NULL)
		return 1;
	for (size_t i = 0; i < n; i++)
		buf_init(&sigs[i], BUF_UNLIMITED);
	/* a fixed t= so every run signs exactly the same bytes */
	struct dkim_sign_request req = { .domain = domain, .selector = selector, .alg = alg,
					 .key_id = "k", .timestamp = time(NULL) };
	double rates[MAX_RUNS];
	for (size_t r = 0; r < runs; r++) {
		double t0 = now_s();
		for (size_t i = 0; i < n; i++) {
			buf_reset(&sigs[i]);
			if (dkim_sign_message(&req, &signer, m.data[i], m.len[i], &sigs[i], &error) < 0) {
				fprintf(stderr, "rate: signing message %zu: %s\n", i, error);
				return 1;
			}
		}
		double t = now_s() - t0;
		rates[r] = t > 0 ? (double)n / t : 0;
		printf("run=%zu msgs_per_s=%.1f\n", r + 1, rates[r]);
	}
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%zu.eml", outdir, i);
		FILE *f = fopen(path, "wb");
		if (f == NULL) {
			fprintf(stderr, "rate: %s: %s\n", path, strerror(errno));
			return 1;
		}
		fwrite(sigs[i].data, 1, sigs[i].len, f);
		/* the message with CRLF line ends, the form that was signed */
		for (size_t j = 0; j < m.len[i]; j++) {
			if (m.data[i][j] == '\n' && (j == 0 || m.data[i][j - 1] != '\r'))
				fputc('\r', f);
			fputc(m.data[i][j], f);
		}
		if (fclose(f) != 0) {
			fprintf(stderr, "rate: %s: %s\n", path, strerror(errno));
			return 1;
		}
		buf_free(&sigs[i]);
		free(m.data[i]);
	}
	printf("median_msgs_per_s=%.1f passed=%zu of=%zu\n", median(rates, runs), n, n);
	free(sigs);
	free(m.data);
	free(m.len);
	dkim_keyring_destroy(&kr);
	return 0;
}

/* The DNS: one key record, answered inside the call. */
struct one_zone {
	char *name;
	const char *record;
};

static void zone_txt(void *ctx, const char *name, dkim_dns_cb *cb, void *query_ctx)
{
	struct one_zone *z = ctx;
	struct dkim_dns_answer a = { .status = DKIM_DNS_NXDOMAIN };
	const char *strings[1] = { z->record };
	if (strcasecmp(name, z->name) == 0) {
		a.status = DKIM_DNS_OK;
		a.count = 1;
		a.strings = strings;
	}
	cb(query_ctx, &a);
}

struct tally {
	bool done;
	size_t passed, failed;
};

static void verify_done(void *ctx, const struct dkim_outcome *o)
{
	struct tally *t = ctx;
	t->done = true;
	for (size_t i = 0; i < o->count; i++) {
		if (o->results[i].result == DKIM_RESULT_PASS)
			t->passed++;
		else
			t->failed++;
	}
	if (o->count == 0)
		t->failed++;
}

static int cmd_verify(char **argv)
{
	const char *recfile = argv[0], *domain = argv[1], *selector = argv[2], *msgdir = argv[3];
	size_t n = parse_count(argv[4], MAX_MESSAGES), runs = parse_count(argv[5], MAX_RUNS);
	size_t rlen;
	char *record = slurp(recfile, &rlen);
	while (rlen > 0 && (record[rlen - 1] == '\n' || record[rlen - 1] == '\r'))
		record[--rlen] = 0;
	struct one_zone z = { .record = record };
	if (asprintf(&z.name, "%s._domainkey.%s", selector, domain) < 0)
		return 1;
	struct dkim_dns dns = { .ctx = &z, .txt = zone_txt };
	struct msgs m;
	load_messages(&m, msgdir, n);
	double rates[MAX_RUNS];
	struct tally t = { 0 };
	for (size_t r = 0; r < runs; r++) {
		memset(&t, 0, sizeof(t));
		double t0 = now_s();
		for (size_t i = 0; i < n; i++) {
			struct dkim_verify *v = dkim_verify_create(NULL);
			dkim_verify_feed(v, m.data[i], m.len[i]);
			t.done = false;
			dkim_verify_finish(v, &dns, verify_done, &t);
			if (!t.done) {
				fprintf(stderr, "rate: message %zu: no result from an immediate DNS\n", i);
				return 1;
			}
			dkim_verify_destroy(&v);
		}
		double el = now_s() - t0;
		rates[r] = el > 0 ? (double)n / el : 0;
		printf("run=%zu msgs_per_s=%.1f\n", r + 1, rates[r]);
		if (t.failed > 0 || t.passed != n) {
			fprintf(stderr, "rate: %zu of %zu signatures passed, %zu did not\n",
				t.passed, n, t.failed);
			return 1;
		}
	}
	printf("median_msgs_per_s=%.1f passed=%zu of=%zu\n", median(rates, runs), t.passed, n);
	for (size_t i = 0; i < n; i++)
		free(m.data[i]);
	free(m.data);
	free(m.len);
	free(z.name);
	free(record);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 10 && strcmp(argv[1], "sign") == 0)
		return cmd_sign(argv + 2);
	if (argc == 8 && strcmp(argv[1], "verify") == 0)
		return cmd_verify(argv + 2);
	fprintf(stderr, "usage: rate sign ALG KEY.pem DOMAIN SELECTOR MSGDIR N RUNS OUTDIR\n"
			"       rate verify RECORD DOMAIN SELECTOR MSGDIR N RUNS\n");
	return 2;
}
