/* Unit tests for the 8BITMIME downgrade (mail/downgrade.c): non-MIME
 * bodies, quoted-printable details (=, trailing space, 76-character
 * lines, bare CR), base64 for non-text parts, multipart with 8bit labels,
 * message/rfc822, the refusals (8-bit headers, encoded parts, epilogue),
 * and 7-bit messages copied unchanged. */
#include "unit.h"
#include "mail/downgrade.h"

#include <stdlib.h>

static char *down(const char *msg, int *rc, const char **err)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	*err = NULL;
	*rc = mail_downgrade_7bit(msg, strlen(msg), &b, err);
	return buf_steal(&b);
}

static bool lines_ok(const char *s)
{
	/* CRLF only, no line over 76 characters, nothing 8-bit */
	size_t col = 0;
	for (; *s; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
		if (*s == '\r') {
			if (s[1] != '\n')
				return false;
			continue;
		}
		if (*s == '\n') {
			if (col > 76)
				return false;
			col = 0;
			continue;
		}
		col++;
	}
	return col <= 76;
}

static void test_unchanged(void)
{
	static const char m[] = "Subject: a\r\n\r\nplain = ascii \r\n";
	int rc;
	const char *err;
	char *o = down(m, &rc, &err);

	CHECK(!mail_has_8bit(m, strlen(m)));
	CHECK(mail_has_8bit("a\0b", 3));
	CHECK(mail_has_8bit("caf\xc3\xa9", 5));
	CHECK(rc == 0);
	CHECK_STR(o, m);
	free(o);
}

static void test_non_mime(void)
{
	int rc;
	const char *err;
	char *o = down("Subject: x\r\n\r\ncaf\xc3\xa9 = ok \r\nnext\r\n", &rc, &err);

	CHECK(rc == 0);
	CHECK_STR(o, "Subject: x\r\nMIME-Version: 1.0\r\n"
		  "Content-Type: text/plain; charset=utf-8\r\n"
		  "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		  "caf=C3=A9 =3D ok=20\r\nnext\r\n");
	CHECK(lines_ok(o));
	free(o);

	o = down("Subject: x\r\n\r\nLatin \xe9t\xe9\r\n", &rc, &err);
	CHECK(rc == 0);
	CHECK(strstr(o, "charset=unknown-8bit") != NULL);
	CHECK(strstr(o, "Latin =E9t=E9\r\n") != NULL);
	free(o);
}

static void test_long_lines(void)
{
	char m[600];
	int rc;
	const char *err;

	strcpy(m, "Content-Type: text/plain; charset=utf-8\r\nMIME-Version: 1.0\r\n"
	       "Content-Transfer-Encoding: 8bit\r\n\r\n");
	size_t n = strlen(m);
	for (int i = 0; i < 100; i++) {
		memcpy(m + n, "\xc3\xa9", 2);
		n += 2;
	}
	strcpy(m + n, "\rtail\r\n");
	char *o = down(m, &rc, &err);
	CHECK(rc == 0);
	CHECK(lines_ok(o));
	CHECK(strstr(o, "8bit") == NULL);
	CHECK(strstr(o, "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A9") != NULL);
	CHECK(strstr(o, "=0Dtail\r\n") != NULL);
	CHECK(strstr(o, "=\r\n") != NULL);   /* soft line breaks */
	/* one MIME-Version only */
	CHECK(strstr(strstr(o, "MIME-Version") + 1, "MIME-Version") == NULL);
	free(o);
}

static void test_multipart(void)
{
	static const char m[] =
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
		"Content-Transfer-Encoding: 8bit\r\n"
		"\r\n"
		"preamble\r\n"
		"--b1\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 8bit\r\n"
		"\r\n"
		"\xc3\xbc\r\n"
		"--b1\r\n"
		"Content-Type: application/octet-stream\r\n"
		"Content-transfer-encoding:\r\n 8bit\r\n"
		"\r\n"
		"\x80\x81\x82\r\n"
		"--b1\r\n"
		"Content-Type: text/plain\r\n"
		"\r\n"
		"ascii only\r\n"
		"--b1--\r\n";
	int rc;
	const char *err;
	char *o = down(m, &rc, &err);

	CHECK(rc == 0);
	CHECK(lines_ok(o));
	CHECK(strstr(o, "boundary=\"b1\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\npreamble") != NULL);
	CHECK(strstr(o, "charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
		  "=C3=BC\r\n--b1") != NULL);
	/* the folded field went away whole, base64 of 80 81 82 */
	CHECK(strstr(o, "octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\ngIGC\r\n--b1") != NULL);
	CHECK(strstr(o, " 8bit") == NULL);
	CHECK(strstr(o, "Content-Type: text/plain\r\n\r\nascii only\r\n--b1--\r\n") != NULL);
	free(o);
}

static void test_message_rfc822(void)
{
	static const char m[] =
		"MIME-Version: 1.0\r\n"
		"Content-Type: message/rfc822\r\n"
		"Content-Transfer-Encoding: 8bit\r\n"
		"\r\n"
		"Subject: inner\r\n"
		"\r\n"
		"gr\xc3\xbc\xc3\x9f\r\n";
	int rc;
	const char *err;
	char *o = down(m, &rc, &err);

	CHECK(rc == 0);
	CHECK(lines_ok(o));
	CHECK(strstr(o, "message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n") != NULL);
	CHECK(strstr(o, "gr=C3=BC=C3=9F\r\n") != NULL);
	free(o);
}

static void test_refusals(void)
{
	static const char *const bad[] = {
		"Subject: caf\xc3\xa9\r\n\r\nbody\r\n",
		"MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n\xff\xff\r\n",
		("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n"
		 "--b--\r\nepilogue \xc3\xa9\r\n"),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc;
		const char *err;
		char *o = down(bad[i], &rc, &err);
		CHECK(rc == -1);
		CHECK(err != NULL);
		free(o);
	}
	/* the output limit */
	struct buf b;
	const char *err = NULL;
	buf_init(&b, 10);
	CHECK(mail_downgrade_7bit("Subject: x\r\n\r\n\xc3\xa9\r\n", 17, &b, &err) == -1);
	buf_free(&b);
}

int main(void)
{
	RUN(test_unchanged);
	RUN(test_non_mime);
	RUN(test_long_lines);
	RUN(test_multipart);
	RUN(test_message_rfc822);
	RUN(test_refusals);
	return unit_summary("downgrade");
}
