/* Unit tests of DKIM key management: the store calls (store/dkim-keys.c:
 * add with its checks, list by domain, get, the active-set stamp,
 * activation retiring the previous key of the same algorithm only, the
 * async forms, set-state, retirement when due), selector naming (the year,
 * the letter sequence past z, used bases), the zone line (255-byte
 * strings), key records matching, and the store signer: keys made with
 * dkim_keygen sign a message with two signatures (RSA and Ed25519) that
 * the library's verifier accepts against the printed records, a domain
 * without keys gets none, and a key activated later is picked up without
 * a new signer; the dkim group of tern.conf. */
#include "unit.h"
#include "store-test-util.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "mailauth/dkim-manage.h"
#include "store/dkim-keys.h"

#include <stdlib.h>
#include <string.h>

static char dirbuf[64];

static struct store *open_store(void)
{
	struct store *s = store_test_open(store_test_mkdtemp(dirbuf, "/tmp/tern-dkk-XXXXXX"),
					  NULL);
	const char *err = NULL;

	if (store_domain_add(s, "a.test", &err) < 0 || store_domain_add(s, "b.test", &err) < 0) {
		fprintf(stderr, "domain add: %s\n", err);
		exit(1);
	}
	return s;
}

static void close_store(struct store **s)
{
	store_close(s);
	store_test_rm_rf(dirbuf);
}

static const char PEM[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

static int add(struct store *s, const char *domain, const char *sel, const char *alg, int state,
	       int64_t *id_r, const char **err)
{
	struct store_dkim_key k = {
		.domain = (char *)domain, .selector = (char *)sel, .algorithm = (char *)alg,
		.private_key = (char *)PEM, .public_key = (char *)"QUJD", .state = state,
		.created = 1000,
	};
	return store_dkim_key_add(s, &k, id_r, err);
}

struct listed {
	int n;
	char sel[8][64];
	int state[8];
	time_t retire_at[8];
};

static int list_cb(void *ctx, const struct store_dkim_key *k)
{
	struct listed *l = ctx;

	if (l->n < 8) {
		snprintf(l->sel[l->n], sizeof(l->sel[0]), "%s", k->selector);
		l->state[l->n] = k->state;
		l->retire_at[l->n] = k->retire_at;
	}
	l->n++;
	return 0;
}

static void test_store_add_list_get(void)
{
	struct store *s = open_store();
	struct store_dkim_key k;
	struct listed l = { 0 };
	const char *err = NULL;
	int64_t id = 0;
	char *stamp = NULL;

	CHECK(add(s, "A.test", "T2026a-rsa", "rsa-sha256", 1, &id, &err) == 0);
	CHECK(id > 0);
	CHECK(add(s, "a.test", "t2026a-ed", "ed25519-sha256", 0, NULL, &err) == 0);
	CHECK(add(s, "b.test", "s1", "rsa-sha256", 1, NULL, &err) == 0);
	/* refusals */
	CHECK(add(s, "a.test", "t2026a-rsa", "rsa-sha256", 1, NULL, &err) < 0);
	CHECK(strstr(err, "already") != NULL);
	CHECK(add(s, "c.test", "x", "rsa-sha256", 1, NULL, &err) < 0);
	CHECK(strstr(err, "not a local domain") != NULL);
	CHECK(add(s, "a.test", "bad.sel", "rsa-sha256", 1, NULL, &err) < 0);
	CHECK(add(s, "a.test", "-x", "rsa-sha256", 1, NULL, &err) < 0);
	CHECK(add(s, "a.test", "x\r\n", "rsa-sha256", 1, NULL, &err) < 0);
	CHECK(add(s, "a.test", "x", "rsa-sha1", 1, NULL, &err) < 0);
	CHECK(add(s, "a.test", "x", "rsa-sha256", 7, NULL, &err) < 0);
	CHECK(add(s, "a.te\nst", "x", "rsa-sha256", 1, NULL, &err) < 0);
	struct store_dkim_key bad = { .domain = (char *)"a.test", .selector = (char *)"y",
				      .algorithm = (char *)"rsa-sha256",
				      .private_key = (char *)"not a pem",
				      .public_key = (char *)"QUJD", .state = 1 };
	CHECK(store_dkim_key_add(s, &bad, NULL, &err) < 0);
	bad.private_key = (char *)PEM;
	bad.public_key = (char *)"QU\"JD";
	CHECK(store_dkim_key_add(s, &bad, NULL, &err) < 0);

	CHECK(store_dkim_keys_list(s, "A.TEST", list_cb, &l, &err) == 0);
	CHECK(l.n == 2);
	CHECK_STR(l.sel[0], "t2026a-rsa");
	CHECK_STR(l.sel[1], "t2026a-ed");
	CHECK(l.state[0] == STORE_DKIM_ACTIVE && l.state[1] == STORE_DKIM_PENDING);
	memset(&l, 0, sizeof(l));
	CHECK(store_dkim_keys_list(s, NULL, list_cb, &l, &err) == 0);
	CHECK(l.n == 3);

	CHECK(store_dkim_key_get(s, "a.test", "T2026A-RSA", &k, &err) == 1);
	CHECK(k.id == id);
	CHECK_STR(k.domain, "a.test");
	CHECK_STR(k.algorithm, "rsa-sha256");
	CHECK_STR(k.private_key, PEM);
	CHECK_STR(k.public_key, "QUJD");
	CHECK(k.created == 1000 && k.activated == 1000 && k.retire_at == 0);
	store_dkim_key_clear(&k);
	CHECK(store_dkim_key_get(s, "a.test", "nope", &k, &err) == 0);

	CHECK(store_dkim_keys_active_stamp(s, &stamp, &err) == 0);
	CHECK(stamp != NULL && strlen(stamp) > 0 && strchr(stamp, ',') != NULL);
	free(stamp);
	close_store(&s);
}

static void test_store_activate_retire(void)
{
	struct store *s = open_store();
	struct listed l = { 0 };
	const char *err = NULL;
	int64_t rsa1, ed1, rsa2, ed2, other;
	char *st1 = NULL, *st2 = NULL;
	struct res r;

	add(s, "a.test", "k1-rsa", "rsa-sha256", 1, &rsa1, &err);
	add(s, "a.test", "k1-ed", "ed25519-sha256", 1, &ed1, &err);
	add(s, "a.test", "k2-rsa", "rsa-sha256", 0, &rsa2, &err);
	add(s, "a.test", "k2-ed", "ed25519-sha256", 0, &ed2, &err);
	add(s, "b.test", "k1-rsa", "rsa-sha256", 1, &other, &err);
	store_dkim_keys_active_stamp(s, &st1, &err);

	/* activating rsa2 retires rsa1 only (not ed1, not b.test's key) */
	CHECK(store_dkim_key_activate(s, rsa2, 2000, 5000, &err) == 1);
	store_dkim_keys_active_stamp(s, &st2, &err);
	CHECK(st1 != NULL && st2 != NULL && strcmp(st1, st2) != 0);
	CHECK(store_dkim_keys_list(s, "a.test", list_cb, &l, &err) == 0);
	CHECK(l.state[0] == STORE_DKIM_RETIRING && l.retire_at[0] == 5000);
	CHECK(l.state[1] == STORE_DKIM_ACTIVE);
	CHECK(l.state[2] == STORE_DKIM_ACTIVE);
	CHECK(l.state[3] == STORE_DKIM_PENDING);
	memset(&l, 0, sizeof(l));
	CHECK(store_dkim_keys_list(s, "b.test", list_cb, &l, &err) == 0);
	CHECK(l.n == 1 && l.state[0] == STORE_DKIM_ACTIVE);

	/* the async form only activates a pending key */
	CHECK(RUNW(r, store_dkim_key_activate_async(s, NULL, rsa1, 2100, 6000, res_cb, &r)) == 0);
	CHECK(r.status == 0 && r.count == 0);
	CHECK(RUNW(r, store_dkim_key_activate_async(s, NULL, ed2, 2100, 6000, res_cb, &r)) == 0);
	CHECK(r.status == 0 && r.count == 1);
	memset(&l, 0, sizeof(l));
	store_dkim_keys_list(s, "a.test", list_cb, &l, &err);
	CHECK(l.state[1] == STORE_DKIM_RETIRING && l.retire_at[1] == 6000);
	CHECK(l.state[3] == STORE_DKIM_ACTIVE);
	CHECK(store_dkim_key_activate(s, 999999, 2000, 5000, &err) < 0);

	/* retirement when due: rsa1 at 5000, ed1 at 6000 */
	CHECK(store_dkim_keys_retire_due(s, 4999, &err) == 0);
	CHECK(store_dkim_keys_retire_due(s, 5000, &err) == 1);
	CHECK(RUNW(r, store_dkim_keys_retire_due_async(s, NULL, 7000, res_cb, &r)) == 0);
	CHECK(r.status == 0 && r.count == 1);
	memset(&l, 0, sizeof(l));
	store_dkim_keys_list(s, "a.test", list_cb, &l, &err);
	CHECK(l.state[0] == STORE_DKIM_RETIRED && l.state[1] == STORE_DKIM_RETIRED);
	/* a retired key does not come back */
	CHECK(store_dkim_key_activate(s, rsa1, 8000, 9000, &err) < 0);
	CHECK(strstr(err, "retired") != NULL);

	/* set-state */
	CHECK(store_dkim_key_set_state(s, other, STORE_DKIM_RETIRING, 12345, &err) == 0);
	memset(&l, 0, sizeof(l));
	store_dkim_keys_list(s, "b.test", list_cb, &l, &err);
	CHECK(l.state[0] == STORE_DKIM_RETIRING && l.retire_at[0] == 12345);
	CHECK(store_dkim_key_set_state(s, other, 9, 0, &err) < 0);
	CHECK(store_dkim_key_set_state(s, 424242, 1, 0, &err) < 0);
	free(st1);
	free(st2);
	close_store(&s);
}

static void test_selector_next(void)
{
	time_t t2026 = 1795911654;     /* 2026-11-29 */
	const char *used[] = { "t2026a-rsa", "t2026a-ed", "t2026b", "t2026cx-rsa", "other" };
	char *s;

	s = dkim_selector_next(t2026, NULL, 0);
	CHECK_STR(s, "t2026a");
	free(s);
	s = dkim_selector_next(t2026, used, 5);
	CHECK_STR(s, "t2026c");     /* "t2026cx-rsa" does not use "t2026c" */
	free(s);
	s = dkim_selector_next(t2026 + 40 * 86400, used, 5);
	CHECK_STR(s, "t2027a");
	free(s);

	/* past z: aa */
	char names[27][16];
	const char *ptrs[27];
	for (int i = 0; i < 26; i++) {
		snprintf(names[i], sizeof(names[i]), "T2026%c-ed", 'a' + i);
		ptrs[i] = names[i];
	}
	s = dkim_selector_next(t2026, ptrs, 26);
	CHECK_STR(s, "t2026aa");
	free(s);
	snprintf(names[26], sizeof(names[26]), "t2026aa");
	ptrs[26] = names[26];
	s = dkim_selector_next(t2026, ptrs, 27);
	CHECK_STR(s, "t2026ab");
	free(s);
}

static void test_zone_line(void)
{
	struct buf b;
	char pub[600];

	memset(pub, 'A', sizeof(pub) - 1);
	pub[sizeof(pub) - 1] = '\0';
	buf_init(&b, 65536);
	CHECK(dkim_record_zone_line("s1", "a.test", DKIM_KEY_ED25519, "QUJD", &b) == 0);
	CHECK_STR(buf_cstr(&b), "s1._domainkey.a.test. IN TXT ( \"v=DKIM1; k=ed25519; p=QUJD\" )\n");
	buf_reset(&b);
	CHECK(dkim_record_zone_line("s1", "a.test", DKIM_KEY_RSA, pub, &b) == 0);
	/* "v=DKIM1; k=rsa; p=" is 18 bytes + 599: three strings 255, 255, 107 */
	const char *p = buf_cstr(&b), *q;
	int strings = 0;
	size_t total = 0;
	while ((p = strchr(p, '"')) != NULL && (q = strchr(p + 1, '"')) != NULL) {
		size_t n = (size_t)(q - p - 1);
		CHECK(n <= 255);
		total += n;
		strings++;
		p = q + 1;
	}
	CHECK(strings == 3);
	CHECK(total == 18 + 599);
	CHECK(b.data[b.len - 1] == '\n');
	buf_free(&b);
}

/* ---- the signer against the library's verifier ---- */

struct zone {
	const char *names[4];
	char *records[4];
	int n;
};

static void z_txt(void *ctx, const char *name, dkim_dns_cb *cb, void *query_ctx)
{
	struct zone *z = ctx;

	for (int i = 0; i < z->n; i++) {
		if (strcmp(z->names[i], name) == 0) {
			const char *s[1] = { z->records[i] };
			struct dkim_dns_answer a = { DKIM_DNS_OK, 1, s, NULL };
			cb(query_ctx, &a);
			return;
		}
	}
	struct dkim_dns_answer a = { DKIM_DNS_NXDOMAIN, 0, NULL, NULL };
	cb(query_ctx, &a);
}

struct outcome {
	int count, pass;
};

static void done(void *ctx, const struct dkim_outcome *o)
{
	struct outcome *out = ctx;

	out->count = (int)o->count;
	for (size_t i = 0; i < o->count; i++)
		if (o->results[i].result == DKIM_RESULT_PASS)
			out->pass++;
}

static struct outcome verify(struct zone *z, const char *msg, size_t len)
{
	struct outcome out = { -1, 0 };
	struct dkim_verify *v = dkim_verify_create(NULL);
	struct dkim_dns dns = { z, z_txt, NULL };

	dkim_verify_feed(v, msg, len);
	dkim_verify_finish(v, &dns, done, &out);
	dkim_verify_destroy(&v);
	return out;
}

static void keygen_add(struct store *s, struct zone *z, const char *sel, enum dkim_key_type t,
		       int state)
{
	struct store_dkim_key k = { 0 };
	struct buf rec;
	const char *err = NULL;
	char *pem = NULL, *pub = NULL;

	CHECK(dkim_keygen(t, &pem, &pub, &err) == 0);
	CHECK(pem != NULL && strncmp(pem, "-----BEGIN PRIVATE KEY-----", 27) == 0);
	k.domain = (char *)"a.test";
	k.selector = (char *)sel;
	k.algorithm = (char *)dkim_key_type_algorithm(t);
	k.private_key = pem;
	k.public_key = pub;
	k.state = state;
	k.created = clock_now();
	CHECK(store_dkim_key_add(s, &k, NULL, &err) == 0);
	buf_init(&rec, 65536);
	dkim_record_text(t, pub, &rec);
	CHECK(dkim_record_matches(rec.data, rec.len, t, pub));
	CHECK(!dkim_record_matches(rec.data, rec.len, t == DKIM_KEY_RSA ? DKIM_KEY_ED25519
				   : DKIM_KEY_RSA, pub));
	CHECK(!dkim_record_matches("v=DKIM1; p=", 11, t, pub));
	z->names[z->n] = sel;
	z->records[z->n] = xasprintf("%s", buf_cstr(&rec));
	z->n++;
	buf_free(&rec);
	free(pem);
	free(pub);
}

static void test_signer(void)
{
	static const char MSG[] = "From: alice@a.test\r\nTo: bob@b.test\r\nSubject: hi\r\n"
				  "Date: Sun, 29 Nov 2026 00:00:00 +0000\r\n\r\nhello\r\n";
	struct store *s = open_store();
	struct dkim_store_signer *sg = dkim_store_signer_create(s);
	struct zone z = { 0 };
	struct buf out, msg;
	struct outcome o;
	const char *err = NULL;
	struct store_dkim_key k;

	/* no keys: no signature, no error */
	buf_init(&out, 1 << 20);
	CHECK(dkim_store_signer_sign(sg, "a.test", MSG, strlen(MSG), &out, &err) == 0);
	CHECK(out.len == 0);

	keygen_add(s, &z, "k1-rsa", DKIM_KEY_RSA, STORE_DKIM_ACTIVE);
	keygen_add(s, &z, "k1-ed", DKIM_KEY_ED25519, STORE_DKIM_ACTIVE);
	keygen_add(s, &z, "k2-ed", DKIM_KEY_ED25519, STORE_DKIM_PENDING);
	for (int i = 0; i < z.n; i++)
		z.names[i] = xasprintf("%s._domainkey.a.test", z.names[i]);

	CHECK(dkim_store_signer_sign(sg, "A.TEST", MSG, strlen(MSG), &out, &err) == 2);
	CHECK(strstr(buf_cstr(&out), "s=k1-rsa") != NULL);
	CHECK(strstr(buf_cstr(&out), "s=k1-ed") != NULL);
	CHECK(strstr(buf_cstr(&out), "a=rsa-sha256") < strstr(buf_cstr(&out), "a=ed25519"));
	buf_init(&msg, 1 << 20);
	buf_append(&msg, out.data, out.len);
	buf_append_str(&msg, MSG);
	o = verify(&z, msg.data, msg.len);
	CHECK(o.count == 2 && o.pass == 2);
	/* a changed body fails */
	buf_append_str(&msg, "more\r\n");
	o = verify(&z, msg.data, msg.len);
	CHECK(o.count == 2 && o.pass == 0);

	/* other domain: nothing */
	buf_reset(&out);
	CHECK(dkim_store_signer_sign(sg, "b.test", MSG, strlen(MSG), &out, &err) == 0);
	CHECK(out.len == 0);

	/* activation is picked up by the same signer */
	CHECK(store_dkim_key_get(s, "a.test", "k2-ed", &k, &err) == 1);
	CHECK(store_dkim_key_activate(s, k.id, clock_now(), clock_now() + 10, &err) == 1);
	store_dkim_key_clear(&k);
	buf_reset(&out);
	CHECK(dkim_store_signer_sign(sg, "a.test", MSG, strlen(MSG), &out, &err) == 2);
	CHECK(strstr(buf_cstr(&out), "s=k2-ed") != NULL);
	CHECK(strstr(buf_cstr(&out), "s=k1-ed") == NULL);
	buf_reset(&msg);
	buf_append(&msg, out.data, out.len);
	buf_append_str(&msg, MSG);
	o = verify(&z, msg.data, msg.len);
	CHECK(o.count == 2 && o.pass == 2);

	/* no From: the domain has keys but nothing can be signed */
	buf_reset(&out);
	CHECK(dkim_store_signer_sign(sg, "a.test", "Subject: x\r\n\r\nb\r\n", 17, &out, &err) < 0);

	for (int i = 0; i < z.n; i++) {
		free((char *)z.names[i]);
		free(z.records[i]);
	}
	buf_free(&out);
	buf_free(&msg);
	dkim_store_signer_destroy(&sg);
	CHECK(sg == NULL);
	close_store(&s);
}

/* the dkim group of tern.conf: defaults, values, range */
static void test_config(void)
{
	char *error = NULL;
	struct config *cfg = config_parse_string("hostname = \"mx.a.test\";\n", "/tmp/t.conf",
						 &error);

	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK(cfg->dkim.sign);
		CHECK(cfg->dkim.rotation_grace == 7 * 86400);
		CHECK(cfg->dkim.check_interval == 3600);
		config_free(&cfg);
	}
	cfg = config_parse_string("hostname = \"mx.a.test\";\ndkim = { sign = false; "
				  "rotation_grace = 60; check_interval = 5; };\n", "/tmp/t.conf",
				  &error);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK(!cfg->dkim.sign);
		CHECK(cfg->dkim.rotation_grace == 60);
		CHECK(cfg->dkim.check_interval == 5);
		config_free(&cfg);
	}
	cfg = config_parse_string("hostname = \"mx.a.test\";\ndkim = { check_interval = 0; };\n",
				  "/tmp/t.conf", &error);
	CHECK(cfg == NULL && error != NULL && strstr(error, ":2:") != NULL);
	free(error);
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);
	RUN(test_store_add_list_get);
	RUN(test_store_activate_retire);
	RUN(test_selector_next);
	RUN(test_zone_line);
	RUN(test_signer);
	RUN(test_config);
	return unit_summary("dkim-keys");
}
