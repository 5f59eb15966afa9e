/* Unit tests for the signing hook's plumbing (queue/sign-hook.c), with a
 * test signer registered here (the hook is an extension point; DKIM will
 * register the real one): nothing happens without a hook; registration
 * checks; the signer's fields are prepended; malformed signer output
 * (bare LF, NUL, undeclared or bad names, oversize, no CRLF) is refused
 * and the message left as it was; the re-sign after the 8BITMIME
 * downgrade replaces the old signature instead of stacking a second one,
 * and signs the converted bytes; a signer that fails at re-sign leaves
 * the converted message unsigned. */
#include "unit.h"
#include "mail/downgrade.h"
#include "queue/sign-hook.h"

#include <stdint.h>
#include <stdlib.h>

/* The test signer: "X-Test-Sig: d=<domain> n=<len> h=<fnv-1a of data>"
 * (resign adds "r=1"), or what the test asks for. */
struct signer {
	int calls;
	const char *reply;          /* non-NULL: append this instead */
	bool fail;
	bool nothing;
};

static uint32_t fnv(const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

static int test_sign(void *ctx, const struct sign_hook_request *req, struct buf *out,
		     const char **error_r)
{
	struct signer *s = ctx;

	s->calls++;
	if (s->fail) {
		*error_r = "test signer failed";
		return -1;
	}
	if (s->nothing)
		return 0;
	if (s->reply != NULL)
		return buf_append_str(out, s->reply) < 0 ? -1 : 0;
	return buf_printf(out, "X-Test-Sig: d=%s n=%zu%s\r\n\th=%08x\r\n", req->domain, req->len,
			  req->resign ? " r=1" : "", fnv(req->data, req->len)) < 0 ? -1 : 0;
}

static const char *const fields[] = { "X-Test-Sig", "X-Test-Seal", NULL };

static void reg(struct signer *s)
{
	const char *err = NULL;
	struct sign_hook h = { .sign = test_sign, .ctx = s, .fields = fields };

	memset(s, 0, sizeof(*s));
	CHECK(sign_hook_set(&h, &err) == 0);
}

static void test_no_hook(void)
{
	static const char m[] = "From: a@example.com\r\n\r\nhi\r\n";
	struct buf out;
	const char *err = NULL;

	sign_hook_set(NULL, &err);
	buf_init(&out, BUF_UNLIMITED);
	CHECK(!sign_hook_active());
	CHECK(sign_hook_sign("example.com", m, strlen(m), NULL, &out, &err) == 0);
	CHECK(out.len == 0);
	CHECK(sign_hook_signed_prefix("X-Test-Sig: a\r\n\r\n", 17) == 0);
	CHECK(sign_hook_resign("example.com", m, strlen(m), NULL, &out, &err) == 0);
	CHECK(out.len == 0);
	/* the downgrade still converts */
	{
		static const char m8[] = "A: b\r\n\r\ncaf\xc3\xa9\r\n";
		CHECK(sign_hook_downgrade("example.com", m8, strlen(m8), NULL, &out, &err) == 0);
	}
	CHECK(!mail_has_8bit(out.data, out.len));
	buf_free(&out);
}

static void test_register(void)
{
	static const char *const none[] = { NULL };
	static const char *const bad[] = { "X-Ok", "Bad:Name", NULL };
	static const char *const sp[] = { "Bad Name", NULL };
	static const char *const many[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i", NULL };
	struct sign_hook h = { .sign = test_sign, .fields = fields };
	const char *err = NULL;

	CHECK(sign_hook_set(&h, &err) == 0 && sign_hook_active());
	h.fields = none;
	CHECK(sign_hook_set(&h, &err) < 0 && err != NULL);
	h.fields = bad;
	CHECK(sign_hook_set(&h, &err) < 0);
	h.fields = sp;
	CHECK(sign_hook_set(&h, &err) < 0);
	h.fields = many;
	CHECK(sign_hook_set(&h, &err) < 0);
	h.fields = NULL;
	CHECK(sign_hook_set(&h, &err) < 0);
	h.fields = fields;
	h.sign = NULL;
	CHECK(sign_hook_set(&h, &err) < 0);
	/* a refused registration keeps the previous hook */
	CHECK(sign_hook_active());
	CHECK(sign_hook_set(NULL, &err) == 0 && !sign_hook_active());
}

static void test_sign_prepends(void)
{
	static const char m[] = "Received: from x\r\nFrom: a@example.com\r\n\r\nhi\r\n";
	struct signer s;
	struct buf out;
	const char *err = NULL;
	char want[256];

	reg(&s);
	buf_init(&out, BUF_UNLIMITED);
	CHECK(sign_hook_sign("example.com", m, strlen(m), "q1", &out, &err) == 1);
	snprintf(want, sizeof(want), "X-Test-Sig: d=example.com n=%zu\r\n\th=%08x\r\n%s",
		 strlen(m), fnv(m, strlen(m)), m);
	CHECK_STR(buf_cstr(&out), want);
	CHECK(s.calls == 1);
	/* the prefix is exactly the signer's field (with its continuation) */
	CHECK(sign_hook_signed_prefix(out.data, out.len) == out.len - strlen(m));
	CHECK(sign_hook_signed_prefix(m, strlen(m)) == 0);
	/* nothing added: not signed, out untouched */
	s.nothing = true;
	buf_reset(&out);
	CHECK(sign_hook_sign("example.com", m, strlen(m), NULL, &out, &err) == 0);
	CHECK(out.len == 0);
	/* a failing signer: the error comes back, out untouched */
	s.nothing = false;
	s.fail = true;
	CHECK(sign_hook_sign("example.com", m, strlen(m), NULL, &out, &err) < 0);
	CHECK_STR(err, "test signer failed");
	CHECK(out.len == 0);
	buf_free(&out);
	sign_hook_set(NULL, &err);
}

static void test_sign_output_checked(void)
{
	static const char m[] = "From: a@example.com\r\n\r\nhi\r\n";
	static const char *bad[] = {
		"X-Test-Sig: a\n",              /* bare LF */
		"X-Test-Sig: a\r\nBcc: x@evil.example\r\n", /* a field not declared */
		"X-Test-Sig: a\rb\r\n",         /* bare CR */
		"X-Test-Sig: a",                /* no line end */
		"\tcontinued\r\n",              /* continuation first */
		"X-Test-Sig a\r\n",             /* no colon */
		": a\r\n",                      /* empty name */
		"X-Test-Sig: a\r\n\r\n",        /* an empty line would end the header */
		"X-Test-Sig\x01: a\r\n",        /* control in the name */
	};
	struct signer s;
	struct buf out;
	const char *err = NULL;

	reg(&s);
	buf_init(&out, BUF_UNLIMITED);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s.reply = bad[i];
		err = NULL;
		CHECK(sign_hook_sign("example.com", m, strlen(m), NULL, &out, &err) < 0);
		CHECK(err != NULL && out.len == 0);
	}
	/* declared names, any case, folded: fine */
	s.reply = "x-test-seal: i=1;\r\n a=b\r\nX-TEST-SIG : c\r\n";
	CHECK(sign_hook_sign("example.com", m, strlen(m), NULL, &out, &err) == 1);
	CHECK(sign_hook_signed_prefix(out.data, out.len) == strlen(s.reply));
	/* oversized output is refused */
	{
		size_t n = SIGN_HOOK_MAX + 64;
		char *huge = xmalloc(n + 1);
		memcpy(huge, "X-Test-Sig: ", 12);
		memset(huge + 12, 'a', n - 14);
		memcpy(huge + n - 2, "\r\n", 3);
		s.reply = huge;
		buf_reset(&out);
		CHECK(sign_hook_sign("example.com", m, strlen(m), NULL, &out, &err) < 0);
		CHECK(out.len == 0);
		free(huge);
	}
	buf_free(&out);
	sign_hook_set(NULL, &err);
}

/* A signer that puts a NUL in its field: refused. */
static int nul_sign(void *ctx, const struct sign_hook_request *req, struct buf *out,
		    const char **error_r)
{
	(void)ctx; (void)req; (void)error_r;
	return buf_append(out, "X-Test-Sig: a\0b\r\n", 17) < 0 ? -1 : 0;
}

static void test_sign_nul(void)
{
	struct sign_hook h = { .sign = nul_sign, .fields = fields };
	struct buf out;
	const char *err = NULL;

	CHECK(sign_hook_set(&h, &err) == 0);
	buf_init(&out, BUF_UNLIMITED);
	CHECK(sign_hook_sign("example.com", "A: b\r\n\r\n", 8, NULL, &out, &err) < 0);
	CHECK(out.len == 0);
	buf_free(&out);
	sign_hook_set(NULL, &err);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* The rule: after the 8BITMIME downgrade the message is signed
 * again, the old signature replaced, the new one over the converted bytes. */
static void test_resign_after_downgrade(void)
{
	static const char m[] = "Received: from x\r\nFrom: a@example.com\r\nSubject: s\r\n"
				"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
				"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9 = ok\r\n";
	struct signer s;
	struct buf signed_, sent, conv;
	const char *err = NULL;
	char want[256];

	reg(&s);
	buf_init(&signed_, BUF_UNLIMITED);
	buf_init(&sent, BUF_UNLIMITED);
	buf_init(&conv, BUF_UNLIMITED);
	/* as it enters the queue */
	CHECK(sign_hook_sign("example.com", m, strlen(m), "q1", &signed_, &err) == 1);
	/* delivery to a peer without 8BITMIME */
	CHECK(sign_hook_downgrade("example.com", signed_.data, signed_.len, "q1", &sent, &err) == 0);
	CHECK(s.calls == 2);
	CHECK(!mail_has_8bit(sent.data, sent.len));
	/* what the peer gets = new signature + the conversion of the unsigned message */
	CHECK(mail_downgrade_7bit(m, strlen(m), &conv, &err) == 0);
	snprintf(want, sizeof(want), "X-Test-Sig: d=example.com n=%zu r=1\r\n\th=%08x\r\n",
		 conv.len, fnv(conv.data, conv.len));
	CHECK(sent.len == strlen(want) + conv.len);
	CHECK(sent.len >= strlen(want) && memcmp(sent.data, want, strlen(want)) == 0);
	CHECK(memcmp(sent.data + strlen(want), conv.data, conv.len) == 0);
	/* one signature, not two */
	CHECK(count(buf_cstr(&sent), "X-Test-Sig:") == 1);
	CHECK(strstr(buf_cstr(&sent), "Content-Transfer-Encoding: quoted-printable") != NULL);

	/* a message we did not sign at entry is not signed on the way */
	buf_reset(&sent);
	CHECK(sign_hook_downgrade("example.com", m, strlen(m), "q2", &sent, &err) == 0);
	CHECK(s.calls == 2);
	CHECK(sent.len == conv.len && memcmp(sent.data, conv.data, conv.len) == 0);

	/* the signer fails at re-sign: sent converted and unsigned */
	s.fail = true;
	buf_reset(&sent);
	CHECK(sign_hook_downgrade("example.com", signed_.data, signed_.len, "q1", &sent, &err) == 0);
	CHECK(sent.len == conv.len && memcmp(sent.data, conv.data, conv.len) == 0);
	/* the signer declines at re-sign: unsigned too */
	s.fail = false;
	s.nothing = true;
	buf_reset(&sent);
	CHECK(sign_hook_resign("example.com", signed_.data, signed_.len, "q1", &sent, &err) == 2);
	CHECK(sent.len == strlen(m) && memcmp(sent.data, m, strlen(m)) == 0);

	/* an 8-bit header cannot be converted: an error, whatever the hook */
	buf_reset(&sent);
	{
		static const char h8[] = "Subject: caf\xc3\xa9\r\n\r\n\xc3\xa9\r\n";
		CHECK(sign_hook_downgrade("example.com", h8, strlen(h8), "q3", &sent, &err) < 0);
	}
	buf_free(&signed_);
	buf_free(&sent);
	buf_free(&conv);
	sign_hook_set(NULL, &err);
}

/* Only the run at the very top counts: a field of the same name further
 * down (a foreign signature below our Received) is left alone. */
static void test_prefix_top_only(void)
{
	static const char m[] = "X-Test-Sig: ours\r\nX-Test-Seal: ours\r\nReceived: x\r\n"
				"X-Test-Sig: theirs\r\n\r\nbody\r\n";
	struct signer s;

	reg(&s);
	CHECK(sign_hook_signed_prefix(m, strlen(m)) == strlen("X-Test-Sig: ours\r\nX-Test-Seal: ours\r\n"));
	{
		static const char r[] = "Received: x\r\nX-Test-Sig: a\r\n\r\n";
		CHECK(sign_hook_signed_prefix(r, strlen(r)) == 0);
	}
	CHECK(sign_hook_signed_prefix("", 0) == 0);
	sign_hook_set(NULL, NULL);
}

int main(void)
{
	RUN(test_no_hook);
	RUN(test_register);
	RUN(test_sign_prepends);
	RUN(test_sign_output_checked);
	RUN(test_sign_nul);
	RUN(test_resign_after_downgrade);
	RUN(test_prefix_top_only);
	return unit_summary("sign-hook");
}
