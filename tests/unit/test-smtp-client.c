/* Unit tests for the outbound SMTP client (smtp/client.c) against a
 * scripted peer on 127.0.0.1: a thread that accepts one connection and
 * follows a script of expected client lines and replies ("S:" send,
 * "C:" expect a line, "D:" expect dot-stuffed DATA content, "B:" expect
 * BDAT bytes, "T" accept TLS, "t" TLS that must fail, "W:" sleep).
 * Covers PIPELINING (the peer reads the whole group before replying, so a
 * client that waited would time out), per-recipient 4xx/5xx, SIZE
 * refusal, BDAT vs DATA, dot-stuffing, STARTTLS opportunistic, DANE-EE
 * match and mismatch, implicit TLS (RFC 8314), AUTH PLAIN, HELO fallback, RSET between messages,
 * a multi-line greeting sent byte by byte, replies with CR/NUL/overlong
 * text, STARTTLS response injection, and timeouts. */
#include "unit.h"
#include "smtp/client.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "lib/tls-selfsigned.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- the scripted peer ---- */

struct peer {
	int lfd, port;
	const char *const *script;
	SSL_CTX *tls;
	pthread_t th;
	char error[512];
	/* I/O */
	int fd;
	SSL *ssl;
	char in[65536];
	size_t in_len;
};

static SSL_CTX *server_ctx;
static char cert_path[128];
static unsigned char spki_sha256[32];

static int peer_read_more(struct peer *p)
{
	ssize_t n;

	if (p->in_len == sizeof(p->in))
		return -1;
	if (p->ssl != NULL)
		n = SSL_read(p->ssl, p->in + p->in_len, (int)(sizeof(p->in) - p->in_len));
	else
		n = read(p->fd, p->in + p->in_len, sizeof(p->in) - p->in_len);
	if (n <= 0)
		return -1;
	p->in_len += (size_t)n;
	return 0;
}

static void peer_consume(struct peer *p, size_t n)
{
	memmove(p->in, p->in + n, p->in_len - n);
	p->in_len -= n;
}

/* A line without CRLF into out; -1 on EOF. */
static int peer_line(struct peer *p, char *out, size_t outsz)
{
	for (;;) {
		char *e = memmem(p->in, p->in_len, "\r\n", 2);
		if (e != NULL) {
			size_t n = (size_t)(e - p->in);
			snprintf(out, outsz, "%.*s", (int)n, p->in);
			peer_consume(p, n + 2);
			return 0;
		}
		if (peer_read_more(p) < 0)
			return -1;
	}
}

static void peer_write(struct peer *p, const char *s, size_t n)
{
	if (p->ssl != NULL)
		SSL_write(p->ssl, s, (int)n);
	else if (write(p->fd, s, n) < 0)
		snprintf(p->error, sizeof(p->error), "write failed");
}

static void peer_fail(struct peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void peer_fail(struct peer *p, const char *fmt, ...)
{
	va_list ap;

	if (p->error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(p->error, sizeof(p->error), fmt, ap);
	va_end(ap);
}

static void peer_run(struct peer *p)
{
	char line[8192];

	for (const char *const *st = p->script; *st != NULL && p->error[0] == '\0'; st++) {
		const char *s = *st, *arg = s[0] != '\0' && s[1] == '1' ? s + 3 : s + 2;
		if (s[0] == 'S' || s[0] == 'Z') {
			char *t = xasprintf("%s\r\n", arg);
			size_t n = strlen(t);
			for (size_t i = 0; s[0] == 'Z' && i < n; i++)
				if (t[i] == '~')
					t[i] = '\0';   /* a NUL byte */
			if (s[1] == '1') {     /* "S1:" one byte at a time */
				for (size_t i = 0; i < n; i++) {
					peer_write(p, t + i, 1);
					usleep(200);
				}
			} else {
				peer_write(p, t, n);
			}
			free(t);
		} else if (s[0] == 'C') {
			if (peer_line(p, line, sizeof(line)) < 0) {
				peer_fail(p, "EOF, expected \"%s\"%s", arg, "");
				break;
			}
			size_t al = strlen(arg);
			bool prefix = al > 0 && arg[al - 1] == '*';
			if (prefix ? strncmp(line, arg, al - 1) != 0 : strcmp(line, arg) != 0)
				peer_fail(p, "got \"%s\", expected \"%s\"", line, arg);
		} else if (s[0] == 'D') {
			char *end;
			while ((end = memmem(p->in, p->in_len, "\r\n.\r\n", 5)) == NULL)
				if (peer_read_more(p) < 0) {
					peer_fail(p, "EOF in DATA%s%s", "", "");
					return;
				}
			size_t n = (size_t)(end - p->in) + 2;
			if (n != strlen(arg) || memcmp(p->in, arg, n) != 0) {
				snprintf(line, sizeof(line), "%.*s", (int)n, p->in);
				peer_fail(p, "DATA \"%s\", expected \"%s\"", line, arg);
			}
			peer_consume(p, n + 3);
		} else if (s[0] == 'B') {
			size_t n = strlen(arg);
			while (p->in_len < n)
				if (peer_read_more(p) < 0) {
					peer_fail(p, "EOF in BDAT%s%s", "", "");
					return;
				}
			if (memcmp(p->in, arg, n) != 0)
				peer_fail(p, "BDAT bytes differ from \"%s\"%s", arg, "");
			peer_consume(p, n);
		} else if (s[0] == 'T' || s[0] == 't') {
			p->ssl = SSL_new(p->tls);
			SSL_set_fd(p->ssl, p->fd);
			int rc = SSL_accept(p->ssl);
			if (s[0] == 'T' && rc != 1)
				peer_fail(p, "TLS accept failed: %s%s", tls_last_error(), "");
			if (s[0] == 't') {
				if (rc == 1)
					peer_fail(p, "TLS accept should have failed%s%s", "", "");
				SSL_free(p->ssl);
				p->ssl = NULL;
				return;
			}
		} else if (s[0] == 'X') {   /* swallow everything up to EOF */
			do
				p->in_len = 0;
			while (peer_read_more(p) == 0);
			return;
		} else if (s[0] == 'W') {
			usleep((useconds_t)atoi(arg) * 1000);
		}
	}
	/* the script is over: nothing more may come but EOF */
	if (p->error[0] == '\0' && p->in_len == 0 && peer_read_more(p) == 0)
		peer_fail(p, "unexpected input after the script: \"%.40s\"%s", p->in, "");
	else if (p->error[0] == '\0' && p->in_len > 0)
		peer_fail(p, "unexpected input after the script: \"%.40s\"%s", p->in, "");
}

static void *peer_thread(void *arg)
{
	struct peer *p = arg;
	struct timeval tv = { 5, 0 };

	p->fd = accept(p->lfd, NULL, NULL);
	if (p->fd < 0) {
		snprintf(p->error, sizeof(p->error), "accept failed");
		return NULL;
	}
	setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	peer_run(p);
	if (p->ssl != NULL) {
		SSL_shutdown(p->ssl);
		SSL_free(p->ssl);
	}
	close(p->fd);
	return NULL;
}

static void peer_start(struct peer *p, const char *const *script)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);

	memset(p, 0, sizeof(*p));
	p->script = script;
	p->tls = server_ctx;
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa));
	listen(p->lfd, 1);
	getsockname(p->lfd, (struct sockaddr *)&sa, &len);
	p->port = ntohs(sa.sin_port);
	pthread_create(&p->th, NULL, peer_thread, p);
}

static void peer_end(struct peer *p)
{
	pthread_join(p->th, NULL);
	close(p->lfd);
	if (p->error[0] != '\0')
		fprintf(stderr, "  peer: %s\n", p->error);
}

/* ---- the client side ---- */

struct rec {
	bool have;
	enum smtp_stage stage;
	enum smtp_status status;
	int code;
	char enh[16];
	char text[1024];
	size_t n_rcpts, n_delivered;
	enum smtp_status rst[8];
	int rcode[8];
	char renh[8][16];
	char rtext[8][1024];
	bool tls, dane, verified;
	char tls_version[32];
};

struct run {
	struct event_base *base;
	const struct smtp_client_message *msgs;
	size_t n_msgs, next;
	struct rec conn;
	struct rec msg[4];
	bool done;
	bool has_8bitmime;
};

static void record(struct rec *r, const struct smtp_client_result *res)
{
	r->have = true;
	r->stage = res->stage;
	r->status = res->st.status;
	r->code = res->st.code;
	snprintf(r->enh, sizeof(r->enh), "%s", res->st.enhanced);
	snprintf(r->text, sizeof(r->text), "%s", res->st.text);
	r->n_rcpts = res->n_rcpts;
	r->n_delivered = res->n_delivered;
	for (size_t i = 0; i < res->n_rcpts && i < 8; i++) {
		r->rst[i] = res->rcpts[i].status;
		r->rcode[i] = res->rcpts[i].code;
		snprintf(r->renh[i], sizeof(r->renh[i]), "%s", res->rcpts[i].enhanced);
		snprintf(r->rtext[i], sizeof(r->rtext[i]), "%s", res->rcpts[i].text);
	}
	r->tls = res->tls.active;
	r->dane = res->tls.dane;
	r->verified = res->tls.verified;
	snprintf(r->tls_version, sizeof(r->tls_version), "%s", res->tls.version);
}

static void msg_cb(struct smtp_client *c, const struct smtp_client_result *res, void *ctx);

static void next_or_quit(struct smtp_client *c, struct run *r)
{
	const char *err = NULL;

	if (r->next < r->n_msgs && smtp_client_usable(c)) {
		if (smtp_client_send(c, &r->msgs[r->next], msg_cb, r, &err) == 0)
			return;
	}
	r->done = true;
	if (smtp_client_usable(c))
		smtp_client_quit(&c);
	else
		smtp_client_free(&c);
}

static void msg_cb(struct smtp_client *c, const struct smtp_client_result *res, void *ctx)
{
	struct run *r = ctx;

	record(&r->msg[r->next++], res);
	next_or_quit(c, r);
}

static void conn_cb(struct smtp_client *c, const struct smtp_client_result *res, void *ctx)
{
	struct run *r = ctx;

	record(&r->conn, res);
	r->has_8bitmime = smtp_client_has(c, SMTP_EXT_8BITMIME);
	if (res->st.status != SMTP_STATUS_OK) {
		r->done = true;
		smtp_client_free(&c);
		return;
	}
	next_or_quit(c, r);
}

static struct smtp_client_params default_params(void)
{
	struct smtp_client_params p = {
		.host = "mx.test.example",
		.helo_name = "tern.test",
		.tls = SMTP_TLS_NONE,
		.timeouts = { .connect = 2000, .greeting = 2000, .command = 2000, .mail = 2000,
			      .rcpt = 2000, .data_init = 2000, .data_block = 2000,
			      .data_final = 2000 },
		.log_id = "test",
	};
	return p;
}

/* Run the client against a peer following script; true when the peer
 * saw exactly the script. */
static bool run_script(const char *const *script, struct smtp_client_params *p,
		       const struct smtp_client_message *msgs, size_t n_msgs, struct run *r)
{
	struct peer peer;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	const char *err = NULL;
	struct smtp_client *c;

	memset(r, 0, sizeof(*r));
	r->base = event_base_new();
	r->msgs = msgs;
	r->n_msgs = n_msgs;
	peer_start(&peer, script);
	sa.sin_port = htons((uint16_t)peer.port);
	p->addr = (struct sockaddr *)&sa;
	p->addrlen = sizeof(sa);
	c = smtp_client_connect(r->base, p, conn_cb, r, &err);
	CHECK(c != NULL);
	if (c != NULL)
		event_base_dispatch(r->base);   /* ends when the session is gone */
	peer_end(&peer);
	event_base_free(r->base);
	CHECK(r->done);
	return peer.error[0] == '\0';
}

/* ---- tests ---- */

static const struct smtp_client_rcpt rcpts2[] = {
	{ "bob@example.org", SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, "rfc822;bob+x@example.org" },
	{ "nobody@example.org", 0, NULL },
};

static void test_pipelining_dot_stuffing(void)
{
	static const char body[] = "Subject: hi\r\n\r\n.leading dot\r\nline\r\n..two\r\n";
	struct smtp_client_message m = {
		.sender = "alice@example.com", .rcpts = rcpts2, .n_rcpts = 2,
		.data = body, .len = sizeof(body) - 1, .ret = SMTP_DSN_RET_HDRS, .envid = "id 1",
	};
	char mail[200];
	snprintf(mail, sizeof(mail), "C:MAIL FROM:<alice@example.com> SIZE=%zu RET=HDRS ENVID=id+201",
		 m.len);
	const char *const script[] = {
		"S:220 mx.test.example ESMTP",
		"C:EHLO tern.test",
		"S:250-mx.test.example\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250-DSN\r\n"
		"250 ENHANCEDSTATUSCODES",
		mail,
		"C:RCPT TO:<bob@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob+2Bx@example.org",
		"C:RCPT TO:<nobody@example.org>",
		"C:DATA",
		"S:250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go ahead",
		"D:Subject: hi\r\n\r\n..leading dot\r\nline\r\n...two\r\n",
		"S:250 2.0.0 queued as X",
		"C:QUIT",
		"S:221 bye",
		NULL,
	};
	struct smtp_client_params p = default_params();
	struct run r;

	CHECK(run_script(script, &p, &m, 1, &r));
	CHECK(r.conn.status == SMTP_STATUS_OK && r.conn.stage == SMTP_STAGE_READY);
	CHECK(r.msg[0].have);
	CHECK(r.msg[0].status == SMTP_STATUS_OK);
	CHECK(r.msg[0].n_rcpts == 2 && r.msg[0].n_delivered == 1);
	CHECK(r.msg[0].rst[0] == SMTP_STATUS_OK && r.msg[0].rcode[0] == 250);
	CHECK_STR(r.msg[0].renh[0], "2.0.0");
	CHECK_STR(r.msg[0].rtext[0], "queued as X");
	CHECK(r.msg[0].rst[1] == SMTP_STATUS_PERM && r.msg[0].rcode[1] == 550);
	CHECK_STR(r.msg[0].renh[1], "5.1.1");
	CHECK_STR(r.msg[0].rtext[1], "no such user");
	CHECK(!r.msg[0].tls);
}

static void test_no_pipelining_temp_rcpt(void)
{
	static const char body[] = "Subject: x\r\n\r\nno final line end";
	struct smtp_client_message m = {
		.sender = "", .rcpts = rcpts2, .n_rcpts = 2, .data = body, .len = sizeof(body) - 1,
	};
	const char *const script[] = {
		"S:220 hi",
		"C:EHLO tern.test",
		"S:250-hi\r\n250 8BITMIME",
		"C:MAIL FROM:<>",
		"S:250 ok",
		"C:RCPT TO:<bob@example.org>",      /* no DSN: no NOTIFY */
		"S:451 4.3.0 try later",
		"C:RCPT TO:<nobody@example.org>",
		"S:250 ok",
		"C:DATA",
		"S:354 go",
		"D:Subject: x\r\n\r\nno final line end\r\n",
		"S:250 done",
		"C:QUIT",
		"S:221 bye",
		NULL,
	};
	struct smtp_client_params p = default_params();
	struct run r;

	CHECK(run_script(script, &p, &m, 1, &r));
	CHECK(r.msg[0].status == SMTP_STATUS_OK && r.msg[0].n_delivered == 1);
	CHECK(r.msg[0].rst[0] == SMTP_STATUS_TEMP && r.msg[0].rcode[0] == 451);
	CHECK_STR(r.msg[0].rtext[0], "try later");
	CHECK(r.msg[0].rst[1] == SMTP_STATUS_OK);
	CHECK(r.has_8bitmime);
}

static void test_size_refusal_and_utf8(void)
{
	static const char body[] = "0123456789012345678901234567890123456789\r\n";
	static const struct smtp_client_rcpt rc[] = { { "bob@example.org", 0, NULL } };
	struct smtp_client_message m[2] = {
		{ .sender = "a@b.example", .rcpts = rc, .n_rcpts = 1, .data = body,
		  .len = sizeof(body) - 1 },
		{ .sender = "a@b.example", .rcpts = rc, .n_rcpts = 1, .data = body, .len = 5,
		  .flags = SMTP_MSG_SMTPUTF8 },
	};
	const char *const script[] = {
		"S:220 hi",
		"C:EHLO tern.test",
		"S:250-hi\r\n250-SIZE 20\r\n250 PIPELINING",
		"C:QUIT",       /* nothing else was sent */
		"S:221 bye",
		NULL,
	};
	struct smtp_client_params p = default_params();
	struct run r;

	CHECK(run_script(script, &p, m, 2, &r));
	CHECK(r.msg[0].status == SMTP_STATUS_PERM && r.msg[0].code == 552);
	CHECK_STR(r.msg[0].enh, "5.3.4");
	CHECK(r.msg[0].rst[0] == SMTP_STATUS_PERM);
	CHECK(r.msg[1].status == SMTP_STATUS_PERM);
	CHECK_STR(r.msg[1].enh, "5.6.7");
	CHECK(strstr(r.msg[1].text, "SMTPUTF8") != NULL);
}

static void test_bdat(void)
{
	static const char body[] = "Subject: b\r\n\r\n.dot stays\r\n";
	static const struct smtp_client_rcpt rc[] = { { "bob@example.org", 0, NULL } };
	struct smtp_client_message m = {
		.sender = "a@b.example", .rcpts = rc, .n_rcpts = 1, .data = body,
		.len = sizeof(body) - 1, .flags = SMTP_MSG_8BIT,
	};
	char bdat[64];
	snprintf(bdat, sizeof(bdat), "C:BDAT %zu LAST", m.len);
	const char *const script[] = {
		"S:220 hi",
		"C:EHLO tern.test",
		"S:250-hi\r\n250-CHUNKING\r\n250-8BITMIME\r\n250 PIPELINING",
		"C:MAIL FROM:<a@b.example> BODY=8BITMIME",
		"C:RCPT TO:<bob@example.org>",
		"S:250 ok\r\n250 ok",
		bdat,
		"B:Subject: b\r\n\r\n.dot stays\r\n",
		"S:250 2.0.0 got it",
		"C:QUIT",
		"S:221 bye",
		NULL,
	};
	struct smtp_client_params p = default_params();
	struct run r;

	CHECK(run_script(script, &p, &m, 1, &r));
	CHECK(r.msg[0].status == SMTP_STATUS_OK && r.msg[0].n_delivered == 1);
	CHECK_STR(r.msg[0].rtext[0], "got it");
}

static void test_rset_between_messages(void)
{
	static const struct smtp_client_rcpt rc[] = { { "bob@example.org", 0, NULL } };
	struct smtp_client_message m = {
		.sender = "a@b.example", .rcpts = rc, .n_rcpts = 1, .data = "x\r\n", .len = 3,
	};
	struct smtp_client_message ms[2] = { m, m };
	const char *const script[] = {
		"S:220 hi",
		"C:EHLO tern.test",
		"S:250-hi\r\n250 PIPELINING",
		"C:MAIL FROM:<a@b.example>",
		"C:RCPT TO:<bob@example.org>",
		"C:DATA",
		"S:250 ok\r\n550 5.7.1 refused\r\n503 5.5.1 no valid recipients",
		"C:RSET",
		"C:MAIL FROM:<a@b.example>",
		"C:RCPT TO:<bob@example.org>",
		"C:DATA",
		"S:250 ok\r\n250 ok\r\n250 ok\r\n354 go",
		"D:x\r\n",
		"S:250 ok",
		"C:QUIT",
		"S:221 bye",
		NULL,
	};
	struct smtp_client_params p = default_params();
	struct run r;

	CHECK(run_script(script, &p, ms, 2, &r));
	CHECK(r.msg[0].status == SMTP_STATUS_PERM && r.msg[0].code == 550);
	CHECK_STR(r.msg[0].enh, "5.7.1");
	CHECK(r.msg[1].status == SMTP_STATUS_OK && r.msg[1].n_delivered == 1);
}

static void test_mail_refused_and_empty_data(void)
{
	static const struct smtp_client_rcpt rc[] = {
		{ "a@example.org", 0, NULL }, { "b@example.org", 0, NULL },
	};
	struct smtp_client_message m = {
		.sender = "s@example.com", .rcpts = rc, .n_rcpts = 2, .data = "x\r\n", .len = 3,
	};
	struct smtp_client_message ms[2] = { m, m };
	const char *const script[] = {
		"S:220 hi",
		"C:EHLO tern.test",
		"S:250-hi\r\n250 PIPELINING",
		"C:MAIL FROM:<s@example.com>", "C:RCPT TO:<a@example.org>",
		"C:RCPT TO:<b@example.org>", "C:DATA",
		"S:451 4.3.2 sender later\r\n503 no\r\n503 no\r\n503 no",
		/* second message: every RCPT refused, but DATA gets 354 anyway */
		"C:RSET", "C:MAIL FROM:<s@example.com>", "C:RCPT TO:<a@example.org>",
		"C:RCPT TO:<b@example.org>", "C:DATA",
		"S:250 ok\r\n250 ok\r\n550 5.1.1 a unknown\r\n450 4.2.1 b busy\r\n354 go",
		"C:.",          /* the empty message ends at once (RFC 2920 3.1) */
		"S:554 no valid recipients",
		"C:QUIT",
		"S:221 bye",
		NULL,
	};
	struct smtp_client_params p = default_params();
	struct run r;

	CHECK(run_script(script, &p, ms, 2, &r));
	CHECK(r.msg[0].status == SMTP_STATUS_TEMP && r.msg[0].code == 451);
	CHECK(r.msg[0].rst[0] == SMTP_STATUS_TEMP && r.msg[0].rst[1] == SMTP_STATUS_TEMP);
	CHECK_STR(r.msg[0].rtext[1], "sender later");
	CHECK(r.msg[1].n_delivered == 0);
	CHECK(r.msg[1].rst[0] == SMTP_STATUS_PERM && r.msg[1].rcode[0] == 550);
	CHECK(r.msg[1].rst[1] == SMTP_STATUS_TEMP && r.msg[1].rcode[1] == 450);
	CHECK(r.msg[1].status == SMTP_STATUS_TEMP);
}

static void test_helo_fallback_and_quirks(void)
{
	static const struct smtp_client_rcpt rc[] = {
		{ "a@example.org", 0, NULL }, { "b@example.org", 0, NULL },
		{ "c@example.org", 0, NULL },
	};
	struct smtp_client_message m = {
		.sender = "s@example.com", .rcpts = rc, .n_rcpts = 3, .data = "x\r\n", .len = 3,
	};
	char longline[1600];
	memset(longline, 0, sizeof(longline));
	strcpy(longline, "S:550 5.1.1 ");
	memset(longline + strlen(longline), 'L', 1400);
	const char *const script[] = {
		"S1:220-first line\r\n220-second line\n220 last",   /* byte by byte, one bare LF */
		"C:EHLO tern.test",
		"S:502 5.5.1 what",
		"C:HELO tern.test",
		"S:250 old server",
		"C:MAIL FROM:<s@example.com>",
		"S:250 ok",
		"C:RCPT TO:<a@example.org>",
		"S:550 5.1.1 evil\rX-Injected: yes",
		"C:RCPT TO:<b@example.org>",
		"Z:550 5.1.1 nul~here\x01\x7f",
		"C:RCPT TO:<c@example.org>",
		longline,
		"C:QUIT",
		"S:221 bye",
		NULL,
	};
	struct smtp_client_params p = default_params();
	struct run r;

	CHECK(run_script(script, &p, &m, 1, &r));
	CHECK(r.conn.status == SMTP_STATUS_OK);
	CHECK(r.msg[0].status == SMTP_STATUS_PERM && r.msg[0].n_delivered == 0);
	CHECK_STR(r.msg[0].rtext[0], "evil?X-Injected: yes");
	CHECK_STR(r.msg[0].rtext[1], "nul?here??");
	CHECK(strlen(r.msg[0].rtext[2]) == SMTP_REPLY_TEXT_MAX);
	CHECK(strcmp(r.msg[0].rtext[2] + SMTP_REPLY_TEXT_MAX - 3, "...") == 0);
	for (int i = 0; i < 3; i++)
		for (const char *s = r.msg[0].rtext[i]; *s; s++)
			CHECK(*s >= 0x20 && *s < 0x7f);
}

static void test_greeting_timeout(void)
{
	const char *const script[] = { "W:600", NULL };
	struct smtp_client_params p = default_params();
	struct run r;

	p.timeouts.greeting = 100;
	run_script(script, &p, NULL, 0, &r);
	CHECK(r.conn.status == SMTP_STATUS_TEMP);
	CHECK(r.conn.stage == SMTP_STAGE_GREETING);
	CHECK(strstr(r.conn.text, "timeout") != NULL);
}

static void test_data_timeout(void)
{
	static const struct smtp_client_rcpt rc[] = { { "bob@example.org", 0, NULL } };
	struct smtp_client_message m = {
		.sender = "a@b.example", .rcpts = rc, .n_rcpts = 1, .data = "x\r\n", .len = 3,
	};
	const char *const script[] = {
		"S:220 hi", "C:EHLO tern.test", "S:250 hi",
		"C:MAIL FROM:<a@b.example>", "S:250 ok",
		"C:RCPT TO:<bob@example.org>", "S:250 ok",
		"C:DATA", "S:354 go", "D:x\r\n", "W:500", NULL,
	};
	struct smtp_client_params p = default_params();
	struct run r;

	p.timeouts.data_final = 150;
	CHECK(run_script(script, &p, &m, 1, &r));
	CHECK(r.msg[0].status == SMTP_STATUS_TEMP);
	CHECK(r.msg[0].rst[0] == SMTP_STATUS_TEMP);
	CHECK(strstr(r.msg[0].rtext[0], "timeout") != NULL);
}

static void test_data_block_timeout(void)
{
	static const struct smtp_client_rcpt rc[] = { { "bob@example.org", 0, NULL } };
	size_t len = 32u << 20;
	char *big = xmalloc(len);
	memset(big, 'a', len);
	for (size_t i = 1000; i < len; i += 1000)
		memcpy(big + i - 2, "\r\n", 2);
	struct smtp_client_message m = {
		.sender = "a@b.example", .rcpts = rc, .n_rcpts = 1, .data = big, .len = len,
	};
	const char *const script[] = {
		"S:220 hi", "C:EHLO tern.test", "S:250 hi",
		"C:MAIL FROM:<a@b.example>", "S:250 ok",
		"C:RCPT TO:<bob@example.org>", "S:250 ok",
		"C:DATA", "S:354 go", "W:1200", "X", NULL,
	};
	struct smtp_client_params p = default_params();
	struct run r;

	p.timeouts.data_block = 200;
	CHECK(run_script(script, &p, &m, 1, &r));
	CHECK(r.msg[0].status == SMTP_STATUS_TEMP);
	CHECK(strstr(r.msg[0].text, "timeout sending") != NULL);
	free(big);
}

static void test_bad_reply_code(void)
{
	const char *const script[] = { "S:220 hi", "C:EHLO tern.test", "S:250-a\r\n251 b", NULL };
	struct smtp_client_params p = default_params();
	struct run r;

	CHECK(run_script(script, &p, NULL, 0, &r));
	CHECK(r.conn.status == SMTP_STATUS_TEMP && r.conn.stage == SMTP_STAGE_EHLO);
}

static const char *const tls_script_head[] = {
	"S:220 hi",
	"C:EHLO tern.test",
	"S:250-hi\r\n250-STARTTLS\r\n250 PIPELINING",
	"C:STARTTLS",
	"S:220 2.0.0 go",
};

#define TLS_SCRIPT(...) { tls_script_head[0], tls_script_head[1], tls_script_head[2], \
	tls_script_head[3], tls_script_head[4], __VA_ARGS__, NULL }

static void test_starttls_opportunistic_auth(void)
{
	static const struct smtp_client_rcpt rc[] = { { "bob@example.org", 0, NULL } };
	struct smtp_client_message m = {
		.sender = "a@b.example", .rcpts = rc, .n_rcpts = 1, .data = "x\r\n", .len = 3,
	};
	const char *const script[] = TLS_SCRIPT(
		"T",
		"C:EHLO tern.test",
		"S:250-hi\r\n250-AUTH LOGIN PLAIN\r\n250 PIPELINING",
		/* base64 of "\0user\0secret" */
		"C:AUTH PLAIN AHVzZXIAc2VjcmV0",
		"S:235 2.7.0 ok",
		"C:MAIL FROM:<a@b.example>", "C:RCPT TO:<bob@example.org>", "C:DATA",
		"S:250 ok\r\n250 ok\r\n354 go", "D:x\r\n", "S:250 ok",
		"C:QUIT", "S:221 bye");
	struct smtp_client_params p = default_params();
	struct run r;

	p.tls = SMTP_TLS_OPPORTUNISTIC;
	p.auth_user = "user";
	p.auth_pass = "secret";
	CHECK(run_script(script, &p, &m, 1, &r));
	CHECK(r.conn.status == SMTP_STATUS_OK && r.conn.tls);
	CHECK(!r.conn.dane && !r.conn.verified);
	CHECK(strncmp(r.conn.tls_version, "TLSv1.", 6) == 0);
	CHECK(r.msg[0].status == SMTP_STATUS_OK && r.msg[0].tls);
}

static void test_auth_login(void)
{
	const char *const script[] = TLS_SCRIPT(
		"T",
		"C:EHLO tern.test",
		"S:250-hi\r\n250 AUTH LOGIN",
		"C:AUTH LOGIN",
		"S:334 VXNlcm5hbWU6",
		"C:dXNlcg==",
		"S:334 UGFzc3dvcmQ6",
		"C:c2VjcmV0",
		"S:535 5.7.8 bad credentials");
	struct smtp_client_params p = default_params();
	struct run r;

	p.tls = SMTP_TLS_OPPORTUNISTIC;
	p.auth_user = "user";
	p.auth_pass = "secret";
	CHECK(run_script(script, &p, NULL, 0, &r));
	CHECK(r.conn.status == SMTP_STATUS_PERM && r.conn.stage == SMTP_STAGE_AUTH);
	CHECK(r.conn.code == 535);
	CHECK_STR(r.conn.enh, "5.7.8");
	CHECK(r.conn.tls);
}

static void test_auth_requires_tls(void)
{
	const char *const script[] = {
		"S:220 hi", "C:EHLO tern.test", "S:250-hi\r\n250 AUTH PLAIN", NULL,
	};
	struct smtp_client_params p = default_params();
	struct run r;

	p.tls = SMTP_TLS_OPPORTUNISTIC;   /* no STARTTLS offered */
	p.auth_user = "user";
	p.auth_pass = "secret";
	CHECK(run_script(script, &p, NULL, 0, &r));
	CHECK(r.conn.status == SMTP_STATUS_TEMP && r.conn.stage == SMTP_STAGE_AUTH);
}

static void test_dane_match(void)
{
	static const struct smtp_client_rcpt rc[] = { { "bob@example.org", 0, NULL } };
	struct smtp_client_message m = {
		.sender = "a@b.example", .rcpts = rc, .n_rcpts = 1, .data = "x\r\n", .len = 3,
		.flags = SMTP_MSG_REQUIRETLS,
	};
	unsigned char wrong[32] = { 1, 2, 3 };
	struct smtp_tlsa tlsa[] = {
		{ 1, 1, 1, wrong, sizeof(wrong) },        /* PKIX-EE: ignored */
		{ 3, 1, 1, spki_sha256, sizeof(spki_sha256) },
	};
	const char *const script[] = TLS_SCRIPT(
		"T",
		"C:EHLO tern.test",
		"S:250-hi\r\n250-REQUIRETLS\r\n250 PIPELINING",
		"C:MAIL FROM:<a@b.example> REQUIRETLS", "C:RCPT TO:<bob@example.org>", "C:DATA",
		"S:250 ok\r\n250 ok\r\n354 go", "D:x\r\n", "S:250 ok",
		"C:QUIT", "S:221 bye");
	struct smtp_client_params p = default_params();
	struct run r;

	p.tls = SMTP_TLS_DANE;
	p.tlsa = tlsa;
	p.n_tlsa = 2;
	CHECK(run_script(script, &p, &m, 1, &r));
	CHECK(r.conn.status == SMTP_STATUS_OK && r.conn.tls && r.conn.dane);
	CHECK(r.msg[0].status == SMTP_STATUS_OK);
}

static void test_dane_mismatch(void)
{
	unsigned char wrong[32];
	memcpy(wrong, spki_sha256, sizeof(wrong));
	wrong[0] ^= 0xff;
	struct smtp_tlsa tlsa[] = { { 3, 1, 1, wrong, sizeof(wrong) } };
	const char *const script[] = TLS_SCRIPT("t");
	struct smtp_client_params p = default_params();
	struct run r;

	p.tls = SMTP_TLS_DANE;
	p.tlsa = tlsa;
	p.n_tlsa = 1;
	CHECK(run_script(script, &p, NULL, 0, &r));
	CHECK(r.conn.status == SMTP_STATUS_TEMP && r.conn.stage == SMTP_STAGE_TLS);
	CHECK(strstr(r.conn.text, "verif") != NULL);
	CHECK(!r.conn.tls);
}

static void test_verify_fails_self_signed(void)
{
	const char *const script[] = TLS_SCRIPT("t");
	struct smtp_client_params p = default_params();
	struct run r;
	const char *err = NULL;
	SSL_CTX *ctx = smtp_client_tls_ctx_create(NULL, NULL, &err);

	CHECK(ctx != NULL);
	p.tls = SMTP_TLS_REQUIRE_VERIFY;
	p.tls_ctx = ctx;
	CHECK(run_script(script, &p, NULL, 0, &r));
	CHECK(r.conn.status == SMTP_STATUS_TEMP && r.conn.stage == SMTP_STAGE_TLS);
	SSL_CTX_free(ctx);
}

/* The self-signed certificate as the trusted CA: the chain verifies, so
 * the name decides. */
static void test_verify_ok_and_name_mismatch(void)
{
	static const struct smtp_client_rcpt rc[] = { { "bob@example.org", 0, NULL } };
	struct smtp_client_message m = {
		.sender = "a@b.example", .rcpts = rc, .n_rcpts = 1, .data = "x\r\n", .len = 3,
	};
	const char *const ok[] = TLS_SCRIPT(
		"T", "C:EHLO tern.test", "S:250 hi",
		"C:MAIL FROM:<a@b.example>", "S:250 ok", "C:RCPT TO:<bob@example.org>", "S:250 ok",
		"C:DATA", "S:354 go", "D:x\r\n", "S:250 ok", "C:QUIT", "S:221 bye");
	const char *const bad[] = TLS_SCRIPT("t");
	struct smtp_client_params p = default_params();
	struct run r;
	const char *err = NULL;
	SSL_CTX *ctx = smtp_client_tls_ctx_create(cert_path, NULL, &err);

	CHECK(ctx != NULL);
	p.tls = SMTP_TLS_REQUIRE_VERIFY;
	p.tls_ctx = ctx;
	CHECK(run_script(ok, &p, &m, 1, &r));
	CHECK(r.conn.status == SMTP_STATUS_OK && r.conn.verified && !r.conn.dane);
	CHECK(r.msg[0].status == SMTP_STATUS_OK);

	p.host = "other.test.example";
	CHECK(run_script(bad, &p, NULL, 0, &r));
	CHECK(r.conn.status == SMTP_STATUS_TEMP && r.conn.stage == SMTP_STAGE_TLS);
	CHECK(strstr(r.conn.text, "verif") != NULL);
	SSL_CTX_free(ctx);
}

/* Implicit TLS (RFC 8314 3): the handshake right after the connect, the
 * greeting inside TLS, no STARTTLS even when offered, AUTH after it; a
 * certificate that does not verify ends the session before any byte in
 * clear; implicit TLS without a TLS policy is refused. */
static void test_implicit_tls(void)
{
	static const struct smtp_client_rcpt rc[] = { { "bob@example.org", 0, NULL } };
	struct smtp_client_message m = {
		.sender = "a@b.example", .rcpts = rc, .n_rcpts = 1, .data = "x\r\n", .len = 3,
	};
	const char *const ok[] = {
		"T", "S:220 hi", "C:EHLO tern.test",
		"S:250-hi\r\n250-STARTTLS\r\n250 AUTH PLAIN",
		"C:AUTH PLAIN AHVzZXIAc2VjcmV0", "S:235 2.7.0 ok",
		"C:MAIL FROM:<a@b.example>", "S:250 ok", "C:RCPT TO:<bob@example.org>", "S:250 ok",
		"C:DATA", "S:354 go", "D:x\r\n", "S:250 ok", "C:QUIT", "S:221 bye", NULL,
	};
	const char *const bad[] = { "t", NULL };
	struct smtp_client_params p = default_params();
	struct run r;
	const char *err = NULL;
	SSL_CTX *ctx = smtp_client_tls_ctx_create(cert_path, NULL, &err);

	CHECK(ctx != NULL);
	p.tls = SMTP_TLS_REQUIRE_VERIFY;
	p.tls_ctx = ctx;
	p.implicit_tls = true;
	p.auth_user = "user";
	p.auth_pass = "secret";
	CHECK(run_script(ok, &p, &m, 1, &r));
	CHECK(r.conn.status == SMTP_STATUS_OK && r.conn.tls && r.conn.verified);
	CHECK(r.msg[0].status == SMTP_STATUS_OK);

	p.host = "other.test.example";
	CHECK(run_script(bad, &p, NULL, 0, &r));
	CHECK(r.conn.status == SMTP_STATUS_TEMP && r.conn.stage == SMTP_STAGE_TLS);
	CHECK(strstr(r.conn.text, "verif") != NULL);

	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p.addr = (const struct sockaddr *)&sin;
	p.addrlen = sizeof(sin);
	p.tls = SMTP_TLS_NONE;
	struct event_base *base = event_base_new();
	CHECK(smtp_client_connect(base, &p, conn_cb, NULL, &err) == NULL);
	event_base_free(base);
	SSL_CTX_free(ctx);
}

static void test_tls_required_not_offered(void)
{
	const char *const script[] = { "S:220 hi", "C:EHLO tern.test", "S:250 hi", NULL };
	struct smtp_client_params p = default_params();
	struct run r;

	p.tls = SMTP_TLS_DANE;
	CHECK(run_script(script, &p, NULL, 0, &r));
	CHECK(r.conn.status == SMTP_STATUS_TEMP && r.conn.stage == SMTP_STAGE_STARTTLS);
}

static void test_starttls_injection(void)
{
	const char *const script[] = {
		"S:220 hi", "C:EHLO tern.test", "S:250-hi\r\n250 STARTTLS",
		"C:STARTTLS", "S:220 go\r\n250 injected", NULL,
	};
	struct smtp_client_params p = default_params();
	struct run r;

	p.tls = SMTP_TLS_OPPORTUNISTIC;
	CHECK(run_script(script, &p, NULL, 0, &r));
	CHECK(r.conn.status == SMTP_STATUS_TEMP && r.conn.stage == SMTP_STAGE_STARTTLS);
}

static void test_connect_refused(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct smtp_client_params p = default_params();
	struct run r;
	const char *err = NULL;

	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &len);
	close(fd);   /* nobody listens there now */
	memset(&r, 0, sizeof(r));
	r.base = event_base_new();
	p.addr = (struct sockaddr *)&sa;
	p.addrlen = sizeof(sa);
	struct smtp_client *c = smtp_client_connect(r.base, &p, conn_cb, &r, &err);
	if (c != NULL)
		event_base_dispatch(r.base);
	CHECK(c == NULL || (r.conn.have && r.conn.status == SMTP_STATUS_TEMP &&
			    r.conn.stage == SMTP_STAGE_CONNECT));
	event_base_free(r.base);
}

static int setup_tls(void)
{
	char dir[] = "/tmp/tern-smtp-client-XXXXXX", cert[128], key[128];
	const char *err = NULL;
	FILE *f;
	X509 *x;
	unsigned char *der = NULL;
	int n;

	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	if (tls_selfsigned_create("mx.test.example", cert, key, &err) < 0 ||
	    (server_ctx = tls_server_ctx_create(cert, key, &err)) == NULL) {
		fprintf(stderr, "tls setup: %s\n", err);
		return -1;
	}
	f = fopen(cert, "r");
	x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f != NULL)
		fclose(f);
	if (x == NULL)
		return -1;
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	SHA256(der, (size_t)n, spki_sha256);
	OPENSSL_free(der);
	X509_free(x);
	snprintf(cert_path, sizeof(cert_path), "%s", cert);   /* the CA for REQUIRE_VERIFY */
	unlink(key);
	return 0;
}

static void test_tls_setup_failed(void)
{
	CHECK(!"cannot make a test certificate");
}

int main(void)
{
	log_set_level(getenv("TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
	signal(SIGPIPE, SIG_IGN);
	RUN(test_pipelining_dot_stuffing);
	RUN(test_no_pipelining_temp_rcpt);
	RUN(test_size_refusal_and_utf8);
	RUN(test_bdat);
	RUN(test_rset_between_messages);
	RUN(test_mail_refused_and_empty_data);
	RUN(test_helo_fallback_and_quirks);
	RUN(test_greeting_timeout);
	RUN(test_data_timeout);
	RUN(test_data_block_timeout);
	RUN(test_bad_reply_code);
	RUN(test_tls_required_not_offered);
	RUN(test_starttls_injection);
	RUN(test_connect_refused);
	if (setup_tls() == 0) {
		RUN(test_starttls_opportunistic_auth);
		RUN(test_auth_login);
		RUN(test_auth_requires_tls);
		RUN(test_dane_match);
		RUN(test_dane_mismatch);
		RUN(test_verify_fails_self_signed);
		RUN(test_verify_ok_and_name_mismatch);
		RUN(test_implicit_tls);
		unlink(cert_path);
		*strrchr(cert_path, '/') = '\0';
		rmdir(cert_path);
		SSL_CTX_free(server_ctx);
	} else {
		RUN(test_tls_setup_failed);
	}
	return unit_summary("smtp-client");
}
