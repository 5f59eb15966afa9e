/* mail/mime: part offsets and sizes, IMAP part numbers, Content-* fields,
 * RFC 2231 parameters, defaults, limits (depth, part count), linear time
 * on a 10 MB message, the decoders of mail/mime-decode.h, and every
 * prefix of each input parsed from an exact-size heap copy (ASan). */
#include "unit.h"
#include "lib/buf.h"
#include "mail/mime.h"
#include "mail/mime-decode.h"

#include <stdlib.h>
#include <time.h>

static struct mime_part *parse(const char *m, size_t len)
{
	struct mime_part *root = NULL;
	const char *err;

	CHECK(mime_parse(m, len, &root, &err) == 0);
	return root;
}

static void all_prefixes(const char *m)
{
	size_t len = strlen(m);
	for (size_t cut = 0; cut <= len; cut++) {
		char *copy = malloc(cut ? cut : 1);
		memcpy(copy, m, cut);
		struct mime_part *r = parse(copy, cut);
		CHECK(r != NULL && r->body_offset + r->body_size <= cut);
		mime_part_free(&r);
		free(copy);
	}
}

static const char NESTED[] =
	"Subject: x\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
	"pre\r\n--b1\r\nContent-Type: text/plain\r\n\r\nabc\r\nd\r\n--b1\r\n"
	"Content-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n"
	"--b2\r\n\r\none\r\n--b2\r\nContent-Type: text/html\r\n\r\n<two>\r\n--b2--\r\n"
	"\r\n--b1--\r\nepi\r\n";

static void test_structure(void)
{
	struct mime_part *r = parse(NESTED, strlen(NESTED)), *p;
	char *s;

	CHECK(r->flags & MIME_PART_MULTIPART);
	CHECK(r->n_children == 2);
	CHECK_STR(r->boundary, "b1");
	p = mime_part_find(r, "1");
	CHECK(p != NULL && strcmp(p->type, "text") == 0);
	CHECK(p->body_size == 6 && memcmp(NESTED + p->body_offset, "abc\r\nd", 6) == 0);
	CHECK(p->body_lines == 1);
	CHECK(memcmp(NESTED + p->header_offset, "Content-Type: text/plain\r\n\r\n", p->header_size) == 0);
	p = mime_part_find(r, "2");
	CHECK(p != NULL && (p->flags & MIME_PART_MESSAGE) && p->n_children == 1);
	p = mime_part_find(r, "2.1");
	CHECK(p != NULL && p->body_size == 3 && memcmp(NESTED + p->body_offset, "one", 3) == 0);
	CHECK(p != NULL && strcmp(p->type, "text") == 0);  /* default */
	p = mime_part_find(r, "2.2");
	CHECK(p != NULL && strcmp(p->subtype, "html") == 0);
	s = mime_part_section(p);
	CHECK_STR(s, "2.2");
	free(s);
	CHECK(mime_part_find(r, "2.3") == NULL);
	CHECK(mime_part_find(r, "1.1") == NULL);
	CHECK(mime_part_find(r, "3") == NULL);
	CHECK(mime_part_find(r, "0") == NULL);
	CHECK(mime_part_find(r, "1.") == NULL);
	CHECK(mime_part_find(r, "x") == NULL);
	mime_part_free(&r);
	all_prefixes(NESTED);

	/* a single-part message: "1" is the body */
	const char *m = "Subject: y\nContent-Type: Text/HTML; CHARSET=\"utf-8\"\n\n<p>\n";
	r = parse(m, strlen(m));
	CHECK(mime_part_find(r, "1") == r);
	CHECK_STR(r->type, "text");
	CHECK_STR(r->subtype, "html");
	CHECK_STR(mime_param_get(r->params, r->n_params, "charset"), "utf-8");
	CHECK(r->body_size == 4 && r->body_lines == 1);
	mime_part_free(&r);
	all_prefixes(m);
}

static void test_fields(void)
{
	const char *m = "Content-Type: application/pdf; name*0*=utf-8''%C3%A9t; name*1=\"e.pdf\"\r\n"
			"Content-Transfer-Encoding: BASE64 (comment)\r\n"
			"Content-Disposition: Attachment; filename=\"a \\\"b\\\".pdf\"\r\n"
			"Content-Language: en (english), fr\r\nContent-ID: <id@x>\r\n"
			"Content-Type: text/plain\r\n\r\nQUJD\r\n";
	struct mime_part *r = parse(m, strlen(m));
	struct buf b;
	bool invalid = false;

	CHECK_STR(r->type, "application");
	CHECK(r->n_params == 1);
	CHECK_STR(r->params[0].name, "name*");
	CHECK_STR(r->params[0].value, "utf-8''%C3%A9te.pdf");
	CHECK_STR(mime_param_get(r->params, r->n_params, "name"), "\xc3\xa9te.pdf");
	CHECK_STR(r->encoding, "base64");
	CHECK_STR(r->disposition, "attachment");
	CHECK_STR(mime_param_get(r->disp_params, r->n_disp_params, "filename"), "a \"b\".pdf");
	CHECK(r->n_languages == 2 && strcmp(r->languages[1], "fr") == 0);
	CHECK_STR(r->id, "<id@x>");
	buf_init(&b, 100);
	CHECK(mime_part_decoded_text(m, r, &b) == 0);
	CHECK_STR(buf_cstr(&b), "ABC");
	buf_reset(&b);
	CHECK(mime_decode_qp("a=3Db=\r\nc  \r\n=XX", 16, false, &b, &invalid) == 0);
	CHECK_STR(buf_cstr(&b), "a=bc\r\n=XX");
	CHECK(invalid);
	buf_reset(&b);
	invalid = false;
	CHECK(mime_decode_base64("SGVs\r\nbG8=", 10, &b, &invalid) == 0 && !invalid);
	CHECK_STR(buf_cstr(&b), "Hello");
	buf_free(&b);
	mime_part_free(&r);
	all_prefixes(m);

	/* RFC 2231: out of order, gap, no *0, many params */
	struct mime_param *ps;
	const char *pl = "; a*1=B; a*0=A; a*3=D; c*1=x; d=plain; d*=''%41";
	size_t n = mime_params_parse(pl, strlen(pl), &ps);
	CHECK(n == 4);
	CHECK_STR(ps[0].name, "a");
	CHECK_STR(ps[0].value, "AB");
	CHECK_STR(ps[1].name, "c*1");
	CHECK_STR(mime_param_get(ps, n, "d"), "A");
	mime_params_free(ps, n);
	struct buf many;
	buf_init(&many, BUF_UNLIMITED);
	for (int i = 0; i < 5000; i++)
		buf_printf(&many, "; p*%d=v", 4999 - i);
	n = mime_params_parse(many.data, many.len, &ps);
	CHECK(n == MIME_MAX_PARAMS);  /* capped; no *0 among them, so kept apart */
	mime_params_free(ps, n);
	buf_free(&many);
}

static void test_defaults(void)
{
	const char *m = "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: s\r\n\r\nb\r\n--d--\r\n";
	struct mime_part *r = parse(m, strlen(m));
	CHECK(r->children != NULL && strcmp(r->children->type, "message") == 0);
	CHECK(r->children->flags & MIME_PART_MESSAGE);
	mime_part_free(&r);

	const char *m2 = "Content-Type: garbage\r\n\r\nx";
	r = parse(m2, strlen(m2));
	CHECK_STR(r->type, "text");
	CHECK_STR(mime_param_get(r->params, r->n_params, "charset"), "us-ascii");
	CHECK(r->body_size == 1 && r->body_lines == 0);
	mime_part_free(&r);

	/* unterminated: the last part runs to the end */
	const char *m3 = "Content-Type: multipart/mixed; boundary=z\n\n--z\n\nabc";
	r = parse(m3, strlen(m3));
	CHECK(r->flags & MIME_PART_NO_END);
	CHECK(r->children != NULL && r->children->body_size == 3);
	mime_part_free(&r);
	all_prefixes(m3);
}

static void test_limits(void)
{
	struct buf b;
	struct mime_part *r;
	unsigned depth = 0, count = 0;

	buf_init(&b, BUF_UNLIMITED);
	for (int i = 0; i < 300; i++)
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=\"l%d\"\r\n\r\n--l%d\r\n", i, i);
	r = parse(b.data, b.len);
	for (struct mime_part *p = r; p != NULL; p = p->children)
		depth++;
	CHECK(depth >= 50 && depth <= MIME_MAX_DEPTH + 1);
	mime_part_free(&r);

	buf_reset(&b);
	buf_append_str(&b, "Content-Type: multipart/mixed; boundary=m\r\n\r\n");
	for (int i = 0; i < 20000; i++)
		buf_append_str(&b, "--m\r\n\r\nx\r\n");
	r = parse(b.data, b.len);
	for (struct mime_part *p = r->children; p != NULL; p = p->next)
		count++;
	CHECK(count == MIME_MAX_PARTS - 1);
	mime_part_free(&r);

	/* 10 MB: many boundary-like lines and one long line; linear time */
	buf_reset(&b);
	buf_append_str(&b, "Content-Type: multipart/mixed; boundary=\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\"\r\n\r\n");
	while (b.len < 10 * 1024 * 1024)
		buf_append_str(&b, "--aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
	clock_t t0 = clock();
	r = parse(b.data, b.len);
	double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	CHECK(r->n_children == 0);
	CHECK(secs < 2.0);
	mime_part_free(&r);
	buf_free(&b);
}

int main(void)
{
	RUN(test_structure);
	RUN(test_fields);
	RUN(test_defaults);
	RUN(test_limits);
	return unit_summary("mime");
}
