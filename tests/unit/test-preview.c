/* Unit tests for mail/preview.h (RFC 8970 previews): part selection
 * (text/plain first, text/html as fallback, attachments and embedded
 * messages skipped), transfer decoding and charsets, HTML tags, comments,
 * hidden elements and entities, white space collapsing, the 200-character
 * cut on a UTF-8 boundary, and degenerate input (no text part, no body,
 * truncated markup, every prefix of a message). */
#include "unit.h"
#include "mail/preview.h"
#include "lib/buf.h"

#include <stdlib.h>
#include <string.h>

static char *pv(const char *msg)
{
	return preview_from_message(msg, strlen(msg));
}

#define CHECK_PREVIEW(msg, want) do { \
	char *p_ = pv(msg); \
	CHECK_STR(p_, want); \
	free(p_); \
} while (0)

static char *html(const char *in)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	preview_html_to_text(in, strlen(in), &b);
	char *s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

#define CHECK_HTML(in, want) do { \
	char *h_ = html(in); \
	CHECK_STR(h_, want); \
	free(h_); \
} while (0)

static char *norm(const char *in, size_t max)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	preview_normalize(in, strlen(in), max, &b);
	char *s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

/* Count UTF-8 code points of a valid string. */
static size_t u8len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static void test_plain(void)
{
	CHECK_PREVIEW("Subject: x\r\n\r\nHello  world,\r\n\r\n  how\tare you?\r\n",
		      "Hello world, how are you?");
	/* no Content-Type: text/plain by default */
	CHECK_PREVIEW("From: a@b\r\n\r\n\r\n   \r\n", "");
	CHECK_PREVIEW("From: a@b\r\n\r\n", "");
	CHECK_PREVIEW("", "");
	/* quoted-printable, latin-1 */
	CHECK_PREVIEW("Content-Type: text/plain; charset=iso-8859-1\r\n"
		      "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		      "Caf=E9 cr=E8me=\r\n br=FBl=E9e\r\n", "Caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9" "e");
	/* base64 UTF-8 */
	CHECK_PREVIEW("Content-Type: text/plain; charset=utf-8\r\n"
		      "Content-Transfer-Encoding: base64\r\n\r\n"
		      "w6l0w6kgICBpY2k=\r\n", "\xc3\xa9t\xc3\xa9 ici");
	/* a non-text single part has no preview */
	CHECK_PREVIEW("Content-Type: image/png\r\n\r\nxxxx\r\n", "");
	/* control characters and invalid UTF-8 */
	CHECK_PREVIEW("\r\na\x01" "b\x7f" "c \xff d\r\n", "a b c \xef\xbf\xbd d");
}

static void test_multipart(void)
{
	const char *alt =
		"Content-Type: multipart/alternative; boundary=XX\r\n\r\n"
		"--XX\r\nContent-Type: text/html\r\n\r\n<p>html <b>version</b></p>\r\n"
		"--XX\r\nContent-Type: text/plain\r\n\r\nplain version\r\n"
		"--XX--\r\n";
	CHECK_PREVIEW(alt, "plain version");
	const char *html_only =
		"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
		"--B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n"
		"\r\nattached text\r\n"
		"--B\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner text\r\n"
		"--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
		"<html><head><title>T</title><style>p {color:red}</style></head>"
		"<body><p>Hi&nbsp;there&amp;you</p><p>second&#33; &#x263A;</p></body></html>\r\n"
		"--B--\r\n";
	CHECK_PREVIEW(html_only, "Hi there&you second! \xe2\x98\xba");
	/* only attachments: nothing */
	CHECK_PREVIEW("Content-Type: multipart/mixed; boundary=B\r\n\r\n"
		      "--B\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--B--\r\n", "");
	/* nested multipart, the first text/plain wins */
	CHECK_PREVIEW("Content-Type: multipart/mixed; boundary=O\r\n\r\n"
		      "--O\r\nContent-Type: multipart/alternative; boundary=I\r\n\r\n"
		      "--I\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--I--\r\n"
		      "--O\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--O--\r\n", "first");
}

static void test_html(void)
{
	CHECK_HTML("a<b>b</b>c", "abc");
	CHECK_HTML("one<br>two<br/>three", "one two three");
	CHECK_HTML("x <!-- hidden -> still --> y", "x  y");
	CHECK_HTML("<script>var a = '<p>';</script>shown", "shown");
	CHECK_HTML("<SCRIPT type=x>no</Script>yes", "yes");
	CHECK_HTML("<script src=x />after", "after");
	CHECK_HTML("<a href=\"x>y\">link</a>", "link");
	CHECK_HTML("1 < 2 &lt; 3 &gt; 0 &quot;q&quot; &apos;", "1 < 2 < 3 > 0 \"q\" '");
	CHECK_HTML("&unknown; &amp &#; &#xZZ; &#65;&#x42;", "&unknown; &amp &#; &#xZZ; AB");
	CHECK_HTML("&#0;&#xD800;&#1114112;", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	CHECK_HTML("<!DOCTYPE html><?xml x?>text", "text");
	/* truncated markup never fails */
	CHECK_HTML("text <div class=\"unterminated", "text  ");
	CHECK_HTML("<style>never closed", "");
	CHECK_HTML("a <!-- never closed", "a ");
	CHECK_HTML("&", "&");
	CHECK_HTML("<", "<");
}

static void test_normalize_cut(void)
{
	char *s = norm("  a \r\n\t b  ", 200);
	CHECK_STR(s, "a b");
	free(s);
	s = norm("abcdef", 3);
	CHECK_STR(s, "abc");
	free(s);
	/* the cut never leaves a trailing space */
	s = norm("ab   cd", 3);
	CHECK_STR(s, "ab");
	free(s);
	/* NBSP and C1 controls are white space */
	s = norm("a\xc2\xa0\xc2\x85" "b", 10);
	CHECK_STR(s, "a b");
	free(s);

	/* 300 x "é" (2 bytes each): 200 characters, 400 bytes, whole sequences */
	struct buf b;
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	for (int i = 0; i < 300; i++)
		buf_append_str(&b, i % 7 == 6 ? "\xc3\xa9 " : "\xc3\xa9");
	char *p = preview_from_message(buf_cstr(&b), b.len);
	CHECK(u8len(p) == PREVIEW_MAX_CHARS || u8len(p) == PREVIEW_MAX_CHARS - 1);
	CHECK(strlen(p) > PREVIEW_MAX_CHARS);
	CHECK(((unsigned char)p[strlen(p) - 1] & 0xc0) == 0x80);
	CHECK(p[strlen(p) - 1] != ' ');
	free(p);
	/* 4-byte characters */
	buf_reset(&b);
	buf_append_str(&b, "\r\n");
	for (int i = 0; i < 250; i++)
		buf_append_str(&b, "\xf0\x9f\x98\x80");
	p = preview_from_message(buf_cstr(&b), b.len);
	CHECK(u8len(p) == PREVIEW_MAX_CHARS);
	CHECK(strlen(p) == 4 * PREVIEW_MAX_CHARS);
	free(p);
	/* a huge part: only its start is read, the preview is still right */
	buf_reset(&b);
	buf_append_str(&b, "\r\nstart ");
	for (int i = 0; i < 200000; i++)
		buf_append_str(&b, "x ");
	p = preview_from_message(buf_cstr(&b), b.len);
	CHECK(strncmp(p, "start x x", 9) == 0);
	CHECK(u8len(p) == PREVIEW_MAX_CHARS - 1);       /* "start" + 97 x " x" */
	free(p);
	buf_free(&b);
}

/* Every prefix of a message (as a truncated file would be) yields valid,
 * bounded output and never crashes: the parser is not incremental, but
 * each cut point is a different input. */
static void test_prefixes(void)
{
	const char *msg =
		"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
		"--b1\r\nContent-Type: text/html; charset=utf-8\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		"<p>caf=C3=A9 &amp; <i>cr=C3=A8me</i></p>\r\n--b1--\r\n";
	size_t len = strlen(msg);
	int bad = 0;

	for (size_t i = 0; i <= len; i++) {
		char *cut = xstrndup(msg, i);
		char *p = preview_from_message(cut, i);
		if (u8len(p) > PREVIEW_MAX_CHARS || (p[0] != '\0' && (p[0] == ' ' ||
								      p[strlen(p) - 1] == ' ')))
			bad++;
		for (char *q = p; *q; q++)
			if ((unsigned char)*q < 0x20)
				bad++;
		free(p);
		free(cut);
	}
	CHECK(bad == 0);
	char *p = preview_from_message(msg, len);
	CHECK_STR(p, "caf\xc3\xa9 & cr\xc3\xa8me");
	free(p);
}

int main(void)
{
	RUN(test_plain);
	RUN(test_multipart);
	RUN(test_html);
	RUN(test_normalize_cut);
	RUN(test_prefixes);
	return unit_summary("preview");
}
