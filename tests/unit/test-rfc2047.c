/* mail/rfc2047 and mail/charset: encoded words (B and Q, adjacent words,
 * split multi-byte characters, language suffix, malformed words), folding,
 * charset conversion and invalid bytes; every prefix of each input is
 * decoded from an exact-size heap copy (ASan). */
#include "unit.h"
#include "lib/buf.h"
#include "mail/charset.h"
#include "mail/rfc2047.h"

#include <stdlib.h>

static void check_decode(const char *in, const char *want)
{
	char *s = rfc2047_decode_str(in, strlen(in));
	CHECK_STR(s, want);
	free(s);
	for (size_t cut = 0; cut <= strlen(in); cut++) {
		char *copy = malloc(cut ? cut : 1);
		memcpy(copy, in, cut);
		s = rfc2047_decode_str(copy, cut);
		CHECK(s != NULL && strchr(s, '\r') == NULL && strchr(s, '\n') == NULL);
		free(s);
		free(copy);
	}
}

static void test_words(void)
{
	check_decode("=?ISO-8859-1?Q?a?=", "a");
	check_decode("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=", "Keld J\xc3\xb8rn Simonsen");
	check_decode("=?utf-8?B?SMOpbGxv?= world", "H\xc3\xa9llo world");
	check_decode("=?ISO-8859-1?Q?a?= b", "a b");
	check_decode("=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=", "ab");
	check_decode("=?ISO-8859-1?Q?a?=\r\n =?ISO-8859-1?Q?b?=", "ab");
	check_decode("=?ISO-8859-1?Q?a_b?=", "a b");
	check_decode("(=?ISO-8859-1?Q?a?= b)", "(a b)");
	/* one UTF-8 character split over two words */
	check_decode("=?UTF-8?B?w6k=?==?UTF-8?Q?=C3?= =?UTF-8?Q?=A9?=", "\xc3\xa9\xc3\xa9");
	check_decode("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore");
	check_decode("=?bogus?Q?x=FF?=", "x\xef\xbf\xbd");
	check_decode("=?utf-8?X?abc?=", "=?utf-8?X?abc?=");
	check_decode("=?utf-8?Q?a b?=", "=?utf-8?Q?a b?=");
	check_decode("=?utf-8?Q?unterminated", "=?utf-8?Q?unterminated");
	check_decode("plain\r\n folded", "plain folded");
	check_decode("raw \xc3\xa9 and \xff", "raw \xc3\xa9 and \xef\xbf\xbd");
	check_decode("=?utf-8?Q?line=0D=0Abreak?=", "line  break");
	check_decode("", "");
}

static void test_charset(void)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	CHECK(charset_to_utf8("windows-1252", "\x80", 1, &b) == 0);
	CHECK_STR(buf_cstr(&b), "\xe2\x82\xac");
	buf_reset(&b);
	CHECK(charset_to_utf8("iso-8859-1", "\x80\xe9", 2, &b) == 0);  /* read as cp1252 */
	CHECK_STR(buf_cstr(&b), "\xe2\x82\xac\xc3\xa9");
	buf_reset(&b);
	CHECK(charset_to_utf8("no-such-charset", "a\xe9", 2, &b) == 1);
	CHECK_STR(buf_cstr(&b), "a\xef\xbf\xbd");
	buf_reset(&b);
	CHECK(charset_to_utf8("utf-8", "\xed\xa0\x80" "ok", 5, &b) == 0);  /* surrogate */
	CHECK_STR(buf_cstr(&b), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdok");
	buf_reset(&b);
	CHECK(charset_to_utf8("shift_jis", "\x82\xa0\x82", 3, &b) == 0);  /* truncated */
	CHECK_STR(buf_cstr(&b), "\xe3\x81\x82\xef\xbf\xbd");
	buf_reset(&b);
	CHECK(charset_to_utf8("UTF-8//TRANSLIT", "x", 1, &b) == 1);
	buf_free(&b);
	buf_init(&b, 2);
	CHECK(charset_to_utf8("windows-1252", "abcdef", 6, &b) == -1);
	buf_free(&b);
}

int main(void)
{
	RUN(test_words);
	RUN(test_charset);
	return unit_summary("rfc2047");
}
