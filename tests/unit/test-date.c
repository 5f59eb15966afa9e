/* mail/date: RFC 5322 dates with obsolete forms (2/3-digit years, zone
 * names, comments, no seconds), invalid dates, IMAP date-time and date
 * parsing and formatting; every prefix of each input parsed from an
 * exact-size heap copy (ASan). */
#include "unit.h"
#include "mail/date.h"

#include <stdlib.h>

static void prefixes(const char *s)
{
	for (size_t cut = 0; cut <= strlen(s); cut++) {
		char *copy = malloc(cut ? cut : 1);
		time_t t;
		int tz;
		memcpy(copy, s, cut);
		(void)date_parse_rfc5322(copy, cut, &t, &tz);
		(void)date_parse_imap_datetime(copy, cut, &t, &tz);
		(void)date_parse_imap_date(copy, cut, &t);
		free(copy);
	}
}

static long long p5322(const char *s, int *tz)
{
	time_t t;
	prefixes(s);
	if (date_parse_rfc5322(s, strlen(s), &t, tz) < 0)
		return -1;
	return (long long)t;
}

static void test_rfc5322(void)
{
	int tz = 99;

	CHECK(p5322("Fri, 21 Nov 1997 09:55:06 -0600", &tz) == 880127706 && tz == -360);
	CHECK(p5322("21 Nov 97 09:55:06 GMT", &tz) == 880106106 && tz == 0);
	CHECK(p5322("Fri, 21 Nov 1997 09:55 -0600", &tz) == 880127700);
	CHECK(p5322("Thu,\r\n 13\r\n Feb\r\n 1969\r\n 23:32\r\n -0330 (Newfoundland Time)", &tz) ==
	      -27723480 && tz == -210);
	CHECK(p5322("Mon, 7 Feb 1994 21:52:25 -0800 (PST)", &tz) == 760686745);
	CHECK(p5322("1 Jan 2049 00:00:00 EST", &tz) == 2493090000LL && tz == -300);
	CHECK(p5322("1 Jan 49 00:00:00 +0000", &tz) == 2493072000LL);
	CHECK(p5322("1 Jan 50 00:00:00 +0000", &tz) == -631152000LL);
	CHECK(p5322("1 Jan 100 00:00:00 +0000", &tz) == 946684800LL);  /* 3 digits: +1900 */
	CHECK(p5322("29 Feb 2024 12:00:00 Z", &tz) == 1709208000LL);
	CHECK(p5322("29 Feb 2023 12:00:00 +0000", &tz) == -1);
	CHECK(p5322("32 Jan 2023 12:00:00 +0000", &tz) == -1);
	CHECK(p5322("1 Foo 2023 12:00:00 +0000", &tz) == -1);
	CHECK(p5322("1 Jan 2023 25:00:00 +0000", &tz) == -1);
	CHECK(p5322("1 Jan 2023 12:00:00 +0099", &tz) == -1);
	CHECK(p5322("", &tz) == -1);
	CHECK(p5322("garbage", &tz) == -1);
}

static void test_imap(void)
{
	time_t t;
	int tz;
	char out[DATE_IMAP_LEN + 1], out2[DATE_RFC5322_LEN + 1];

	CHECK(date_parse_imap_datetime("17-Jul-1996 02:44:25 -0700", 26, &t, &tz) == 0);
	CHECK((long long)t == 837596665 && tz == -420);
	CHECK(date_parse_imap_datetime(" 7-Jul-1996 02:44:25 +0000", 26, &t, &tz) == 0);
	CHECK(date_parse_imap_datetime("7-jul-1996 02:44:25 +0000", 25, &t, &tz) == 0);
	CHECK(date_parse_imap_datetime("17-Jul-1996 02:44:25", 20, &t, &tz) == -1);
	CHECK(date_parse_imap_datetime("17-Jul-1996 02:44:25 -0700x", 27, &t, &tz) == -1);
	CHECK(date_parse_imap_date("1-Feb-1994", 10, &t) == 0 && (long long)t == 760060800);
	CHECK(date_parse_imap_date("01-Feb-1994", 11, &t) == 0 && (long long)t == 760060800);
	CHECK(date_parse_imap_date("1-Feb-94", 8, &t) == -1);
	prefixes("17-Jul-1996 02:44:25 -0700");
	date_format_imap(837596665, -420, out);
	CHECK_STR(out, "17-Jul-1996 02:44:25 -0700");
	date_format_imap(0, 0, out);
	CHECK_STR(out, " 1-Jan-1970 00:00:00 +0000");
	date_format_imap(-1, 330, out);
	CHECK_STR(out, " 1-Jan-1970 05:29:59 +0530");
	date_format_rfc5322(880127706, -360, out2);
	CHECK_STR(out2, "Fri, 21 Nov 1997 09:55:06 -0600");
}

int main(void)
{
	RUN(test_rfc5322);
	RUN(test_imap);
	return unit_summary("date");
}
