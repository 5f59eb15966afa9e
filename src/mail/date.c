/* Date parsing and formatting: RFC 5322 3.3 and 4.3 (obsolete date and
 * zone forms), IMAP date-time/date (RFC 3501 9, RFC 9051 9).
 *
 * Calendar arithmetic is done here on the proleptic Gregorian calendar
 * (days from 1970-01-01 by the era method), not with mktime/timegm, so no
 * call depends on the process time zone or locale.  Inputs are never read
 * past s + len. */
#include "mail/date.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
static const char wdays[7][4] = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" };

/* Days since 1970-01-01 of y-m-d (m 1..12). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y_r, unsigned *m_r, unsigned *d_r)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	*y_r = y + (m <= 2);
	*m_r = m;
	*d_r = d;
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(int64_t y, unsigned m)
{
	static const unsigned md[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : md[m - 1];
}

static int month_from_name(const char *p, size_t n)
{
	if (n < 3)
		return -1;
	for (int i = 0; i < 12; i++) {
		if (strncasecmp(p, months[i], 3) == 0)
			return i + 1;
	}
	return -1;
}

static bool make_time(int64_t y, unsigned mon, unsigned d, unsigned h, unsigned mi, unsigned s,
		      int tz_min, time_t *t_r)
{
	if (mon < 1 || mon > 12 || d < 1 || d > month_days(y, mon) || h > 23 || mi > 59 || s > 60)
		return false;
	int64_t t = days_from_civil(y, mon, d) * 86400 + h * 3600 + mi * 60 + s;
	t -= (int64_t)tz_min * 60;
	*t_r = (time_t)t;
	return true;
}

/* ---- RFC 5322 ---- */

struct cur {
	const char *p, *end;
};

static void skip_cfws(struct cur *c)
{
	while (c->p < c->end) {
		char ch = *c->p;
		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			c->p++;
		} else if (ch == '(') {
			unsigned depth = 0;
			while (c->p < c->end) {
				if (*c->p == '\\' && c->p + 1 < c->end)
					c->p++;
				else if (*c->p == '(')
					depth++;
				else if (*c->p == ')' && --depth == 0) {
					c->p++;
					break;
				}
				c->p++;
			}
		} else
			break;
	}
}

static size_t read_digits(struct cur *c, unsigned max, unsigned *v)
{
	size_t n = 0;
	*v = 0;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9' && n < max) {
		*v = *v * 10 + (unsigned)(*c->p - '0');
		c->p++;
		n++;
	}
	return n;
}

static size_t read_alpha(struct cur *c, const char **start)
{
	*start = c->p;
	while (c->p < c->end && ((*c->p >= 'a' && *c->p <= 'z') || (*c->p >= 'A' && *c->p <= 'Z')))
		c->p++;
	return (size_t)(c->p - *start);
}

static int zone_from_name(const char *p, size_t n)
{
	static const struct { const char *name; int min; } zones[] = {
		{ "UT", 0 }, { "UTC", 0 }, { "GMT", 0 }, { "Z", 0 },
		{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 }, { "CDT", -300 },
		{ "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 },
	};
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
		if (strlen(zones[i].name) == n && strncasecmp(p, zones[i].name, n) == 0)
			return zones[i].min;
	}
	return 0;  /* military and unknown zones: RFC 5322 4.3 says -0000 */
}

int date_parse_rfc5322(const char *s, size_t len, time_t *t_r, int *tz_min_r)
{
	struct cur c = { s, s + len };
	const char *a;
	size_t n;
	unsigned day, year, h, mi, sec = 0, v;
	int mon, tz = 0;

	skip_cfws(&c);
	/* [ day-of-week "," ] */
	if ((n = read_alpha(&c, &a)) > 0) {
		skip_cfws(&c);
		if (c.p < c.end && *c.p == ',')
			c.p++;
		skip_cfws(&c);
	}
	if (read_digits(&c, 2, &day) == 0)
		return -1;
	skip_cfws(&c);
	if (c.p < c.end && *c.p == '-')   /* "2-Jan-2020" seen in the wild */
		c.p++;
	if ((n = read_alpha(&c, &a)) == 0 || (mon = month_from_name(a, n)) < 0)
		return -1;
	skip_cfws(&c);
	if (c.p < c.end && *c.p == '-')
		c.p++;
	if ((n = read_digits(&c, 4, &year)) < 2)
		return -1;
	if (n == 2)
		year += year < 50 ? 2000 : 1900;
	else if (n == 3)
		year += 1900;
	skip_cfws(&c);
	if (read_digits(&c, 2, &h) == 0)
		return -1;
	skip_cfws(&c);
	if (c.p >= c.end || *c.p != ':')
		return -1;
	c.p++;
	skip_cfws(&c);
	if (read_digits(&c, 2, &mi) != 2)
		return -1;
	skip_cfws(&c);
	if (c.p < c.end && *c.p == ':') {
		c.p++;
		skip_cfws(&c);
		if (read_digits(&c, 2, &sec) != 2)
			return -1;
		skip_cfws(&c);
	}
	if (c.p < c.end && (*c.p == '+' || *c.p == '-')) {
		int sign = *c.p == '-' ? -1 : 1;
		c.p++;
		if (read_digits(&c, 4, &v) != 4 || v % 100 > 59)
			return -1;
		tz = sign * (int)(v / 100 * 60 + v % 100);
	} else if ((n = read_alpha(&c, &a)) > 0)
		tz = zone_from_name(a, n);
	if (!make_time(year, (unsigned)mon, day, h, mi, sec, tz, t_r))
		return -1;
	if (tz_min_r != NULL)
		*tz_min_r = tz;
	return 0;
}

/* ---- IMAP ---- */

static bool fixed_digits(const char *p, size_t n, unsigned *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*v = *v * 10 + (unsigned)(p[i] - '0');
	}
	return true;
}

/* "d-Mon-yyyy" or "dd-Mon-yyyy" (or " d-" when space_ok); returns the
 * bytes used, 0 on error */
static size_t imap_day(const char *s, size_t len, bool space_ok, unsigned *d, int *m, unsigned *y)
{
	size_t i = 0;

	if (len >= 1 && s[0] == ' ' && space_ok)
		i = 1;
	size_t dstart = i;
	while (i < len && i - dstart < 2 && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == dstart || !fixed_digits(s + dstart, i - dstart, d) || (dstart == 1 && i != 2))
		return 0;
	if (len < i + 9 || s[i] != '-' || s[i + 4] != '-')
		return 0;
	if ((*m = month_from_name(s + i + 1, 3)) < 0 || !fixed_digits(s + i + 5, 4, y))
		return 0;
	return i + 9;
}

int date_parse_imap_datetime(const char *s, size_t len, time_t *t_r, int *tz_min_r)
{
	unsigned d, y, h, mi, sec, z;
	int m, tz;
	size_t i = imap_day(s, len, true, &d, &m, &y);

	/* then " hh:mm:ss +zzzz" exactly */
	if (i == 0 || len != i + 15 || s[i] != ' ' || s[i + 3] != ':' || s[i + 6] != ':' ||
	    s[i + 9] != ' ' || (s[i + 10] != '+' && s[i + 10] != '-'))
		return -1;
	if (!fixed_digits(s + i + 1, 2, &h) || !fixed_digits(s + i + 4, 2, &mi) ||
	    !fixed_digits(s + i + 7, 2, &sec) || !fixed_digits(s + i + 11, 4, &z) || z % 100 > 59)
		return -1;
	tz = (s[i + 10] == '-' ? -1 : 1) * (int)(z / 100 * 60 + z % 100);
	if (!make_time(y, (unsigned)m, d, h, mi, sec, tz, t_r))
		return -1;
	if (tz_min_r != NULL)
		*tz_min_r = tz;
	return 0;
}

int date_parse_imap_date(const char *s, size_t len, time_t *t_r)
{
	unsigned d, y;
	int m;
	size_t i = imap_day(s, len, false, &d, &m, &y);

	if (i == 0 || i != len)
		return -1;
	return make_time(y, (unsigned)m, d, 0, 0, 0, 0, t_r) ? 0 : -1;
}

static void split(time_t t, int tz_min, int64_t *y, unsigned *mon, unsigned *d, unsigned *h,
		  unsigned *mi, unsigned *s, unsigned *wday)
{
	int64_t lt = (int64_t)t + (int64_t)tz_min * 60;
	int64_t days = lt >= 0 ? lt / 86400 : -((-lt + 86399) / 86400);
	int64_t secs = lt - days * 86400;

	civil_from_days(days, y, mon, d);
	*h = (unsigned)(secs / 3600);
	*mi = (unsigned)(secs / 60 % 60);
	*s = (unsigned)(secs % 60);
	*wday = (unsigned)(((days % 7) + 7) % 7);
	if (*y < 0)
		*y = 0;
	else if (*y > 9999)
		*y = 9999;
}

void date_format_imap(time_t t, int tz_min, char out[DATE_IMAP_LEN + 1])
{
	int64_t y;
	unsigned mon, d, h, mi, s, wd;
	int az;

	if (tz_min < -1439 || tz_min > 1439)
		tz_min = 0;
	az = tz_min < 0 ? -tz_min : tz_min;
	split(t, tz_min, &y, &mon, &d, &h, &mi, &s, &wd);
	snprintf(out, DATE_IMAP_LEN + 1, "%2u-%s-%04u %02u:%02u:%02u %c%02d%02d", d, months[mon - 1],
		 (unsigned)y, h, mi, s, tz_min < 0 ? '-' : '+', az / 60, az % 60);
}

void date_format_rfc5322(time_t t, int tz_min, char out[DATE_RFC5322_LEN + 1])
{
	int64_t y;
	unsigned mon, d, h, mi, s, wd;
	int az;

	if (tz_min < -1439 || tz_min > 1439)
		tz_min = 0;
	az = tz_min < 0 ? -tz_min : tz_min;
	split(t, tz_min, &y, &mon, &d, &h, &mi, &s, &wd);
	snprintf(out, DATE_RFC5322_LEN + 1, "%s, %02u %s %04u %02u:%02u:%02u %c%02d%02d", wdays[wd],
		 d, months[mon - 1], (unsigned)y, h, mi, s, tz_min < 0 ? '-' : '+', az / 60,
		 az % 60);
}
