/* Dates in mail: RFC 5322 3.3 date-time (with the obsolete forms of 4.3)
 * as found in Date: and Received: fields, and the IMAP date-time and date
 * (RFC 3501 9 / RFC 9051 9) used by INTERNALDATE, APPEND and SEARCH.
 *
 * Times are seconds since the epoch in UTC (time_t) plus the zone offset
 * as written, in minutes east of UTC.  No function touches the process
 * time zone or any global state (thread-safe). */
#ifndef TERN_MAIL_DATE_H
#define TERN_MAIL_DATE_H

#include <stddef.h>
#include <time.h>

#define DATE_IMAP_LEN 26       /* "dd-Mon-yyyy hh:mm:ss +zzzz" */
#define DATE_RFC5322_LEN 31    /* "Mon, 02 Jan 2006 15:04:05 -0700" */

/* Parse an RFC 5322 date-time in s[0..len): optional day name, day, month
 * name, year (2 and 3 digit years per 4.3: < 50 is 20xx, else 19xx; 3
 * digits add 1900), hh:mm[:ss], zone (+hhmm/-hhmm, UT, GMT, the US zone
 * names of 4.3; military letters and unknown names count as +0000;
 * a missing zone too).  Comments and folding white space are skipped;
 * text after the zone is ignored.  Returns 0 with *t_r (UTC) and
 * *tz_min_r (may be NULL), or -1 when it is not a date. */
int date_parse_rfc5322(const char *s, size_t len, time_t *t_r, int *tz_min_r);

/* Parse an IMAP date-time "dd-Mon-yyyy hh:mm:ss +zzzz" (the day may be
 * " d" or "d"; the month is case-insensitive) exactly, s[0..len) without
 * the surrounding quotes.  0 with *t_r and *tz_min_r (may be NULL), or -1. */
int date_parse_imap_datetime(const char *s, size_t len, time_t *t_r, int *tz_min_r);

/* Parse an IMAP date "d-Mon-yyyy" (SEARCH BEFORE/ON/SINCE...) into the
 * UTC midnight starting that day.  0 with *t_r, or -1. */
int date_parse_imap_date(const char *s, size_t len, time_t *t_r);

/* Format t as an IMAP date-time in zone tz_min: "dd-Mon-yyyy hh:mm:ss
 * +zzzz" with the day space-padded (date-day-fixed), NUL-terminated into
 * out.  Years outside 0..9999 are clamped. */
void date_format_imap(time_t t, int tz_min, char out[DATE_IMAP_LEN + 1]);

/* Format t as an RFC 5322 date-time in zone tz_min ("Mon, 02 Jan 2006
 * 15:04:05 -0700"), NUL-terminated into out. */
void date_format_rfc5322(time_t t, int tz_min, char out[DATE_RFC5322_LEN + 1]);

#endif
