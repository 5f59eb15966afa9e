/* Unit tests for src/http: the published MTA-STS policy (text, id, TXT
 * record, mta_sts config errors), the Host header check, and the HTTPS
 * server in process, fetched by Tern's own MTA-STS fetcher
 * (queue/mta-sts-fetch.c) and parsed by its policy parser
 * (queue/mta-sts.c), as a sending Tern would. */
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/net.h"
#include "lib/tls.h"
#include "lib/tls-selfsigned.h"
#include "queue/mta-sts-fetch.h"
#include "queue/mta-sts.h"
#include "store-test-util.h"
#include "unit.h"

static struct config *conf(const char *text)
{
	char *error = NULL;
	struct config *cfg = config_parse_string(text, "t.conf", &error);
	if (cfg == NULL) {
		fprintf(stderr, "config: %s\n", error);
		free(error);
	}
	return cfg;
}

static char *policy_of(const struct config *cfg)
{
	struct buf b;
	buf_init(&b, BUF_UNLIMITED);
	CHECK(http_mta_sts_policy(cfg, &b) == 0);
	return buf_steal(&b);
}

static void test_policy_text(void)
{
	struct config *cfg = conf("hostname = \"Mail.Example.TEST\";\n");
	struct mta_sts_policy pol = { 0 };
	const char *error = NULL;
	char *text;

	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	/* safe defaults: testing, the hostname, one week */
	text = policy_of(cfg);
	CHECK_STR(text, "version: STSv1\r\nmode: testing\r\nmx: mail.example.test\r\n"
			"max_age: 604800\r\n");
	CHECK(mta_sts_policy_parse(text, strlen(text), &pol, &error) == 0);
	CHECK(pol.mode == MTA_STS_MODE_TESTING && pol.max_age == 604800 && pol.mx_count == 1);
	CHECK(mta_sts_mx_matches(&pol, "mail.example.test"));
	mta_sts_policy_clear(&pol);
	free(text);
	config_free(&cfg);

	cfg = conf("hostname = \"mail.example.test\";\n"
		   "mta_sts = { mode = \"enforce\"; mx = [ \"MX1.example.test\", \"*.example.test\" ];"
		   " max_age = 31557600; };\n");
	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	text = policy_of(cfg);
	CHECK_STR(text, "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\n"
			"mx: *.example.test\r\nmax_age: 31557600\r\n");
	CHECK(mta_sts_policy_parse(text, strlen(text), &pol, &error) == 0);
	CHECK(pol.mode == MTA_STS_MODE_ENFORCE && pol.mx_count == 2);
	CHECK(mta_sts_mx_matches(&pol, "a.example.test"));
	mta_sts_policy_clear(&pol);
	free(text);

	/* a buffer too small gets nothing, not half a policy */
	struct buf small;
	buf_init(&small, 20);
	CHECK(http_mta_sts_policy(cfg, &small) == -1);
	CHECK(small.len == 0);
	buf_free(&small);
	config_free(&cfg);
}

static void test_config_errors(void)
{
	static const char *const bad[] = {
		"hostname = \"m.example.test\"; mta_sts = { mode = \"strict\"; };",
		"hostname = \"m.example.test\"; mta_sts = { max_age = 3600; };",
		"hostname = \"m.example.test\"; mta_sts = { max_age = 31557601; };",
		"hostname = \"m.example.test\"; mta_sts = { mx = [ \"bad name\" ]; };",
		"hostname = \"m.example.test\"; mta_sts = { mx = [ \"*.*.example.test\" ]; };",
		"hostname = \"m.example.test\"; mta_sts = { mx = [ \"localhost\" ]; };",
		"hostname = \"m.example.test\"; mta_sts = { mx = 5; };",
		"hostname = \"m.example.test\"; mta_sts = { other = 1; };",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *error = NULL;
		struct config *cfg = config_parse_string(bad[i], "t.conf", &error);
		CHECK(cfg == NULL && error != NULL && strstr(error, "t.conf:") != NULL);
		if (cfg != NULL)
			config_free(&cfg);
		free(error);
	}
}

static void test_id_and_txt(void)
{
	struct config *a = conf("hostname = \"mail.example.test\";\n");
	struct config *b = conf("hostname = \"mail.example.test\"; mta_sts = { mode = \"enforce\"; };");
	char ida[HTTP_MTA_STS_ID_LEN + 1], ida2[HTTP_MTA_STS_ID_LEN + 1], idb[HTTP_MTA_STS_ID_LEN + 1];
	struct mta_sts_record rec;
	const char *error = NULL;
	struct buf line;

	CHECK(a != NULL && b != NULL);
	if (a == NULL || b == NULL)
		return;
	http_mta_sts_id(a, ida);
	http_mta_sts_id(a, ida2);
	http_mta_sts_id(b, idb);
	CHECK(strlen(ida) == HTTP_MTA_STS_ID_LEN);
	CHECK(strspn(ida, "0123456789abcdef") == HTTP_MTA_STS_ID_LEN);
	CHECK_STR(ida, ida2);                 /* stable */
	CHECK(strcmp(ida, idb) != 0);         /* changes with the policy */

	buf_init(&line, BUF_UNLIMITED);
	CHECK(http_mta_sts_txt_record(a, "example.test.", &line) == 0);
	char want[128];
	snprintf(want, sizeof(want), "_mta-sts.example.test. IN TXT \"v=STSv1; id=%s\"", ida);
	CHECK_STR(buf_cstr(&line), want);
	/* the quoted string is a record Tern's own parser accepts, with the id */
	const char *q = strchr(buf_cstr(&line), '"');
	CHECK(q != NULL);
	if (q != NULL) {
		CHECK(mta_sts_txt_parse(q + 1, strlen(q + 1) - 1, &rec, &error) == 1);
		CHECK_STR(rec.id, ida);
	}
	buf_free(&line);
	config_free(&a);
	config_free(&b);
}

static void host_ok(const char *host, const char *want)
{
	char *d = NULL;
	CHECK(http_mta_sts_host_domain(host, strlen(host), &d) == 0);
	CHECK(d != NULL && strcmp(d, want) == 0);
	free(d);
}

static void host_bad(const char *host, size_t len)
{
	char *d = (char *)"x";
	CHECK(http_mta_sts_host_domain(host, len, &d) == -1);
	CHECK(d == NULL);
}

static void test_host(void)
{
	host_ok("mta-sts.example.com", "example.com");
	host_ok("MTA-STS.Example.COM", "example.com");
	host_ok("mta-sts.example.com:443", "example.com");
	host_ok("mta-sts.example.com.", "example.com");
	host_ok("mta-sts.example.com.:8443", "example.com");
	host_ok("mta-sts.a-b.c1.example", "a-b.c1.example");
	host_ok("mta-sts.localhost", "localhost");

	host_bad("", 0);
	host_bad("mta-sts.", 8);
	host_bad("mta-sts", 7);
	host_bad("example.com", 11);
	host_bad("www.mta-sts.example.com", 23);
	host_bad("mta-sts..example.com", 20);
	host_bad("mta-sts.-x.example.com", 22);
	host_bad("mta-sts.x-.example.com", 22);
	host_bad("mta-sts.ex ample.com", 20);
	host_bad("mta-sts.example.com:44a", 23);
	host_bad("mta-sts.example.com:443443", 26);
	host_bad("mta-sts.example.com\r\nX: y", 26);
	host_bad("mta-sts.exa\0mple.com", 20);       /* NUL inside len */
	host_bad("mta-sts.ex_ample.com", 20);
	host_bad("[::1]:443", 9);
	host_bad("mta-sts.\xc3\xa9xample.com", 21);
	host_bad(NULL, 0);
	/* len is honoured: the bytes after it are not read */
	char *d = NULL;
	CHECK(http_mta_sts_host_domain("mta-sts.example.com:443garbage", 23, &d) == 0);
	CHECK(d != NULL && strcmp(d, "example.com") == 0);
	free(d);
	/* a 64-byte label and a name over 253 bytes */
	char big[400];
	memset(big, 0, sizeof(big));
	strcpy(big, "mta-sts.");
	memset(big + 8, 'a', 64);
	strcpy(big + 72, ".test");
	host_bad(big, strlen(big));
	strcpy(big, "mta-sts.");
	for (int i = 0; i < 64; i++)
		strcat(big, "abc.");
	strcat(big, "test");
	host_bad(big, strlen(big));
}

/* ---- the server in process, fetched by Tern's own MTA-STS client ---- */

struct outcome {
	struct event_base *base;
	int calls;
	int status;
	char *body;
	char error[256];
};

static void on_fetch(int status, const char *body, size_t len, const char *error, void *ctx)
{
	struct outcome *o = ctx;

	o->calls++;
	o->status = status;
	if (status == 0)
		o->body = xstrndup(body, len);
	snprintf(o->error, sizeof(o->error), "%s", error != NULL ? error : "");
	event_base_loopbreak(o->base);
}

static void fetch(struct outcome *o, const char *host, unsigned port, const char *ca)
{
	struct dns_address a = { .family = AF_INET };
	const char *error = NULL;

	a.addr.v4.s_addr = htonl(INADDR_LOOPBACK);
	struct mta_sts_fetch_params p = {
		.host = host, .port = port, .addrs = &a, .n_addrs = 1, .ca_file = ca, .timeout = 10,
	};
	o->calls = 0;
	free(o->body);
	o->body = NULL;
	struct mta_sts_fetch *f = mta_sts_fetch_start(o->base, &p, on_fetch, o, &error);
	CHECK(f != NULL);
	if (f == NULL)
		return;
	struct timeval limit = { 20, 0 };
	event_base_loopexit(o->base, &limit);   /* bounded even if nothing comes back */
	event_base_dispatch(o->base);
	CHECK(o->calls == 1);
	if (o->calls == 0)
		mta_sts_fetch_cancel(&f);
}

static void test_server_and_fetcher(void)
{
	char dirbuf[64], cert[128], key[128];
	const char *dir = store_test_mkdtemp(dirbuf, "/tmp/tern-http-XXXXXX");
	struct store_options so = { 0 };
	struct store *store;
	struct config *cfg = conf("hostname = \"mail.example.test\";\n"
				  "mta_sts = { mode = \"enforce\"; mx = [ \"*.example.test\" ]; };");
	struct outcome o = { .base = NULL };
	const char *error = NULL;
	struct http_listener l;
	struct http_server *s;
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	SSL_CTX *ctx;
	int fd;

	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	/* before the base: the fetch thread wakes the loop up through its lock */
	evthread_use_pthreads();
	o.base = event_base_new();
	store = store_test_open(dir, &so);
	CHECK(store_domain_add(store, "example.test", &error) == 0);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	CHECK(tls_selfsigned_create("mta-sts.example.test", cert, key, &error) == 0);
	ctx = tls_server_ctx_create(cert, key, &error);
	CHECK(ctx != NULL);
	fd = net_listen("127.0.0.1", 0, 16, &error);
	CHECK(fd >= 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &salen) == 0);

	http_listener_init(&l, "https", true, cfg, ctx, store);
	s = http_server_create(&l, o.base, &error);
	CHECK(s != NULL);
	CHECK(http_server_add_socket(s, fd, &error) == 0);

	/* a verified fetch of a local domain's policy, parsed as a sender would */
	fetch(&o, "mta-sts.example.test", ntohs(sa.sin_port), cert);
	CHECK(o.status == 0);
	if (o.status == 0) {
		struct mta_sts_policy pol = { 0 };
		CHECK_STR(o.body, l.policy);
		CHECK(mta_sts_policy_parse(o.body, strlen(o.body), &pol, &error) == 0);
		CHECK(pol.mode == MTA_STS_MODE_ENFORCE && pol.max_age == 604800);
		CHECK(mta_sts_mx_matches(&pol, "mx.example.test"));
		CHECK(!mta_sts_mx_matches(&pol, "mx.other.test"));
		mta_sts_policy_clear(&pol);
	}
	/* the domain removed: 404, which the fetcher reports as a failure */
	CHECK(store_domain_remove(store, "example.test", true, &error) == 0);
	fetch(&o, "mta-sts.example.test", ntohs(sa.sin_port), cert);
	CHECK(o.status == -1 && strstr(o.error, "404") != NULL);
	/* a certificate the client does not trust: refused before any request */
	CHECK(store_domain_add(store, "example.test", &error) == 0);
	fetch(&o, "mta-sts.example.test", ntohs(sa.sin_port), "/nonexistent-ca.pem");
	CHECK(o.status == -1);
	/* every connection the fetches made is closed and uncounted (bounded wait) */
	for (int i = 0; i < 200 && http_connections_count() > 0; i++) {
		struct timeval tick = { 0, 10 * 1000 };
		event_base_loopexit(o.base, &tick);
		event_base_dispatch(o.base);
	}
	CHECK(http_connections_count() == 0);

	http_server_free(&s);
	CHECK(s == NULL);
	http_server_free(&s);   /* NULL is fine */
	close(fd);
	http_listener_clear(&l);
	SSL_CTX_free(ctx);
	store_close(&store);
	free(o.body);
	event_base_free(o.base);
	config_free(&cfg);
	store_test_rm_rf(dir);
}

int main(void)
{
	/* as in the worker: a peer that hangs up mid-handshake is not fatal */
	signal(SIGPIPE, SIG_IGN);
	RUN(test_policy_text);
	RUN(test_config_errors);
	RUN(test_id_and_txt);
	RUN(test_host);
	RUN(test_server_and_fetcher);
	return unit_summary("http");
}
