/* IMAP sequence sets and dates.
 *
 * A sequence set is parsed into ranges of 32-bit nonzero numbers.  '*' is
 * kept as IMAP_SEQ_STAR (0, which no real number can be) until the caller
 * resolves it against the current maximum; ranges without '*' are sorted
 * and merged at once, so a resolved set is a sorted list of disjoint,
 * non-adjacent ranges and membership is a binary search.  Arithmetic on
 * range ends is done in 64 bits so 4294967295 never wraps.
 *
 * RFC 9051 9 (sequence-set, seq-range, seq-number, nz-number, date,
 * date-time), RFC 3501 6.4.8 ("n:*" includes the largest UID), RFC 5182
 * ("$"). */
#include "imap/parse.h"

#include <stdlib.h>
#include <string.h>

static int range_cmp(const void *a, const void *b)
{
	const struct imap_seq_range *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->hi < y->hi ? -1 : x->hi > y->hi;
}

/* Sort and merge overlapping or adjacent ranges in place; returns the new
 * count.  Every range has lo <= hi and no star. */
static size_t ranges_normalise(struct imap_seq_range *r, size_t n)
{
	size_t out = 0;

	if (n == 0)
		return 0;
	qsort(r, n, sizeof(*r), range_cmp);
	for (size_t i = 1; i < n; i++) {
		if ((uint64_t)r[i].lo <= (uint64_t)r[out].hi + 1) {
			if (r[i].hi > r[out].hi)
				r[out].hi = r[i].hi;
		} else {
			r[++out] = r[i];
		}
	}
	return out + 1;
}

/* seq-number = nz-number / "*"; *n_r = IMAP_SEQ_STAR for '*'. */
static bool parse_seq_number(const char *p, size_t len, size_t *pos, uint32_t *n_r)
{
	size_t i = *pos;
	uint64_t n = 0;

	if (i < len && p[i] == '*') {
		*n_r = IMAP_SEQ_STAR;
		*pos = i + 1;
		return true;
	}
	if (i >= len || p[i] < '1' || p[i] > '9')
		return false;
	while (i < len && p[i] >= '0' && p[i] <= '9') {
		n = n * 10 + (uint64_t)(p[i] - '0');
		if (n > UINT32_MAX)
			return false;
		i++;
	}
	*n_r = (uint32_t)n;
	*pos = i;
	return true;
}

int imap_seqset_parse(struct slice s, struct imap_arena *a, struct imap_seqset *set_r,
		      struct imap_parse_error *err)
{
	size_t count = 1, pos = 0, n = 0;

	memset(set_r, 0, sizeof(*set_r));
	if (s.len == 1 && s.p[0] == '$') {
		set_r->saved = true;
		return 0;
	}
	for (size_t i = 0; i < s.len; i++)
		count += s.p[i] == ',';
	if (s.len == 0 || count > s.len) {
		*err = (struct imap_parse_error){ IMAP_ERR_SYNTAX, "Invalid sequence set" };
		return -1;
	}
	set_r->ranges = imap_arena_alloc(a, count * sizeof(*set_r->ranges));
	for (;;) {
		uint32_t lo, hi;

		if (!parse_seq_number(s.p, s.len, &pos, &lo))
			goto bad;
		hi = lo;
		if (pos < s.len && s.p[pos] == ':') {
			pos++;
			if (!parse_seq_number(s.p, s.len, &pos, &hi))
				goto bad;
		}
		if (lo == IMAP_SEQ_STAR || hi == IMAP_SEQ_STAR) {
			/* keep the number (if any) in lo, '*' in hi */
			set_r->has_star = true;
			if (lo == IMAP_SEQ_STAR) {
				lo = hi;
				hi = IMAP_SEQ_STAR;
			}
		} else if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		set_r->ranges[n].lo = lo;
		set_r->ranges[n].hi = hi;
		n++;
		if (pos == s.len)
			break;
		if (s.p[pos] != ',' || n >= count)
			goto bad;
		pos++;
	}
	set_r->count = set_r->has_star ? n : ranges_normalise(set_r->ranges, n);
	return 0;
bad:
	memset(set_r, 0, sizeof(*set_r));
	*err = (struct imap_parse_error){ IMAP_ERR_SYNTAX, "Invalid sequence set" };
	return -1;
}

int imap_seqset_parse_arg(const struct imap_arg *arg, struct imap_arena *a,
			  struct imap_seqset *set_r, struct imap_parse_error *err)
{
	if (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NUMBER) {
		memset(set_r, 0, sizeof(*set_r));
		*err = (struct imap_parse_error){ IMAP_ERR_SYNTAX, "Invalid sequence set" };
		return -1;
	}
	return imap_seqset_parse(arg->str, a, set_r, err);
}

void imap_seqset_resolve(const struct imap_seqset *in, uint32_t max, struct imap_arena *a,
			 struct imap_seqset *out)
{
	struct imap_seq_range *r;
	size_t n = 0;

	if (!in->has_star) {
		if (out != in)
			*out = *in;
		return;
	}
	r = imap_arena_alloc(a, (in->count ? in->count : 1) * sizeof(*r));
	for (size_t i = 0; i < in->count; i++) {
		uint32_t lo = in->ranges[i].lo, hi = in->ranges[i].hi;

		if (lo == IMAP_SEQ_STAR || hi == IMAP_SEQ_STAR) {
			if (max == 0)
				continue;
			if (lo == IMAP_SEQ_STAR)
				lo = max;
			if (hi == IMAP_SEQ_STAR)
				hi = max;
		}
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		r[n].lo = lo;
		r[n].hi = hi;
		n++;
	}
	out->saved = in->saved;
	out->has_star = false;
	out->ranges = r;
	out->count = ranges_normalise(r, n);
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct imap_seq_range *r = &set->ranges[mid];

		if (n < r->lo)
			hi = mid;
		else if (n > r->hi)
			lo = mid + 1;
		else
			return n != 0;
	}
	return false;
}

uint32_t imap_seqset_max(const struct imap_seqset *set)
{
	return set->count ? set->ranges[set->count - 1].hi : 0;
}

uint64_t imap_seqset_size(const struct imap_seqset *set)
{
	uint64_t n = 0;

	for (size_t i = 0; i < set->count; i++)
		n += (uint64_t)set->ranges[i].hi - set->ranges[i].lo + 1;
	return n;
}

void imap_seqset_iter_init(struct imap_seqset_iter *it, const struct imap_seqset *set)
{
	it->set = set;
	it->i = 0;
	it->next = set->count ? set->ranges[0].lo : 0;
}

bool imap_seqset_iter_next(struct imap_seqset_iter *it, uint32_t *n_r)
{
	while (it->i < it->set->count) {
		const struct imap_seq_range *r = &it->set->ranges[it->i];

		if (it->next <= r->hi) {
			*n_r = (uint32_t)it->next++;
			return true;
		}
		if (++it->i < it->set->count)
			it->next = it->set->ranges[it->i].lo;
	}
	return false;
}

/* ---- dates ---- */

static const char *const months[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static int parse_month(const char *p)
{
	for (int m = 0; m < 12; m++)
		if (slice_eq_ci((struct slice){ p, 3 }, months[m]))
			return m + 1;
	return 0;
}

static int days_in_month(int year, int month)
{
	static const int dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : dm[month - 1];
}

static bool digits(const char *p, size_t n, int *v_r)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*v_r = v;
	return true;
}

int imap_date_parse(struct slice s, struct imap_date *d_r)
{
	size_t dl;
	int day, year, month;

	/* 1*2DIGIT "-" month "-" 4DIGIT */
	if (s.len == 10)
		dl = 1;
	else if (s.len == 11)
		dl = 2;
	else
		return -1;
	if (!digits(s.p, dl, &day) || s.p[dl] != '-' || s.p[dl + 4] != '-')
		return -1;
	month = parse_month(s.p + dl + 1);
	if (month == 0 || !digits(s.p + dl + 5, 4, &year))
		return -1;
	if (day < 1 || day > days_in_month(year, month))
		return -1;
	d_r->year = year;
	d_r->month = month;
	d_r->day = day;
	return 0;
}

int64_t imap_date_days(const struct imap_date *d)
{
	/* days from the civil calendar, counting March-based years so the
	 * leap day is the last day of the year */
	int64_t y = d->year - (d->month <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t mp = (d->month + 9) % 12;
	int64_t doy = (153 * mp + 2) / 5 + d->day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

int imap_datetime_parse(struct slice s, time_t *t_r, int *zone_r)
{
	/* "dd-Mon-yyyy hh:mm:ss +zzzz", day as 2DIGIT or SP DIGIT */
	struct imap_date d;
	int h, m, sec, zh, zm;
	const char *p = s.p;

	if (s.len != 26)
		return -1;
	if (p[0] == ' ') {
		if (!digits(p + 1, 1, &d.day))
			return -1;
	} else if (!digits(p, 2, &d.day)) {
		return -1;
	}
	if (p[2] != '-' || p[6] != '-' || p[11] != ' ' || p[14] != ':' || p[17] != ':' ||
	    p[20] != ' ' || (p[21] != '+' && p[21] != '-'))
		return -1;
	d.month = parse_month(p + 3);
	if (d.month == 0 || !digits(p + 7, 4, &d.year) || !digits(p + 12, 2, &h) ||
	    !digits(p + 15, 2, &m) || !digits(p + 18, 2, &sec) || !digits(p + 22, 2, &zh) ||
	    !digits(p + 24, 2, &zm))
		return -1;
	if (d.day < 1 || d.day > days_in_month(d.year, d.month) || h > 23 || m > 59 ||
	    sec > 60 || zm > 59)
		return -1;
	int zone = (zh * 60 + zm) * (p[21] == '-' ? -1 : 1);
	*t_r = (time_t)(imap_date_days(&d) * 86400 + h * 3600 + m * 60 + sec - zone * 60);
	*zone_r = zone;
	return 0;
}
