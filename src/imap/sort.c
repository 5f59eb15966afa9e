/* SORT (RFC 5256 section 3, RFC 5957 DISPLAYFROM / DISPLAYTO): ordering
 * messages by a list of criteria.
 *
 * Why keys first: a comparison sort calls the comparator O(n log n)
 * times, and casefolding or base-subject extraction per call would make
 * sorting a large mailbox slow.  Every string key is computed once per
 * message (i;unicode-casemap key, mail/base-subject.h) into one buffer;
 * the comparator then only does memcmp and integer compares.
 *
 * Rules: strings missing count as "" (RFC 5256: a missing field sorts as
 * an empty string); REVERSE inverts only the key it precedes; equal keys
 * fall back to the sequence number, ascending (RFC 5256 section 3, also
 * with REVERSE). */
#include "imap/sort.h"
#include "mail/base-subject.h"

#include <stdlib.h>
#include <string.h>

struct sort_ctx {
	const struct imap_sort_msg *msgs;
	const struct imap_sort_criterion *crit;
	size_t ncrit;
	const char *keys;           /* the key buffer */
	const size_t *off, *len;    /* [i * ncrit + c]: string key c of message i */
};

static bool key_is_string(enum imap_sort_key k)
{
	return k != IMAP_SORT_ARRIVAL && k != IMAP_SORT_DATE && k != IMAP_SORT_SIZE;
}

static const char *msg_string(const struct imap_sort_msg *m, enum imap_sort_key k)
{
	const char *s = NULL;

	switch (k) {
	case IMAP_SORT_CC: s = m->cc_mailbox; break;
	case IMAP_SORT_FROM: s = m->from_mailbox; break;
	case IMAP_SORT_SUBJECT: s = m->subject; break;
	case IMAP_SORT_TO: s = m->to_mailbox; break;
	case IMAP_SORT_DISPLAYFROM: s = m->from_display; break;
	case IMAP_SORT_DISPLAYTO: s = m->to_display; break;
	default: break;
	}
	return s != NULL ? s : "";
}

static int cmp_num(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int sort_cmp(const void *pa, const void *pb, void *arg)
{
	const struct sort_ctx *c = arg;
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	const struct imap_sort_msg *ma = &c->msgs[a], *mb = &c->msgs[b];

	for (size_t i = 0; i < c->ncrit; i++) {
		int r;

		switch (c->crit[i].key) {
		case IMAP_SORT_ARRIVAL:
			r = cmp_num(ma->internal_date, mb->internal_date);
			break;
		case IMAP_SORT_DATE:
			r = cmp_num(ma->sent_date, mb->sent_date);
			break;
		case IMAP_SORT_SIZE:
			r = cmp_num(ma->size, mb->size);
			break;
		default: {
			size_t la = c->len[a * c->ncrit + i], lb = c->len[b * c->ncrit + i];
			r = memcmp(c->keys + c->off[a * c->ncrit + i], c->keys + c->off[b * c->ncrit + i],
				   la < lb ? la : lb);
			if (r == 0)
				r = cmp_num((int64_t)la, (int64_t)lb);
			else
				r = r < 0 ? -1 : 1;
			break;
		}
		}
		if (r != 0)
			return c->crit[i].reverse ? -r : r;
	}
	return cmp_num(ma->seq, mb->seq);
}

void imap_sort_messages(struct imap_sort_msg *msgs, size_t n,
			const struct imap_sort_criterion *crit, size_t ncrit)
{
	struct sort_ctx c = { msgs, crit, ncrit, NULL, NULL, NULL };
	struct buf keys, tmp;
	size_t *order, *off, *len;
	struct imap_sort_msg *sorted;

	if (n < 2)
		return;
	off = xcalloc(n * (ncrit ? ncrit : 1), sizeof(*off));
	len = xcalloc(n * (ncrit ? ncrit : 1), sizeof(*len));
	buf_init(&keys, BUF_UNLIMITED);
	buf_init(&tmp, BUF_UNLIMITED);
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < ncrit; k++) {
			const char *s;

			if (!key_is_string(crit[k].key))
				continue;
			s = msg_string(&msgs[i], crit[k].key);
			off[i * ncrit + k] = keys.len;
			if (crit[k].key == IMAP_SORT_SUBJECT) {
				buf_reset(&tmp);
				base_subject(s, strlen(s), &tmp, NULL);
				unicode_casemap_key(tmp.data ? tmp.data : "", tmp.len, &keys);
			} else {
				unicode_casemap_key(s, strlen(s), &keys);
			}
			len[i * ncrit + k] = keys.len - off[i * ncrit + k];
		}
	}
	c.keys = buf_cstr(&keys);
	c.off = off;
	c.len = len;
	order = xmalloc(n * sizeof(*order));
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), sort_cmp, &c);
	sorted = xmalloc(n * sizeof(*sorted));
	for (size_t i = 0; i < n; i++)
		sorted[i] = msgs[order[i]];
	memcpy(msgs, sorted, n * sizeof(*msgs));
	free(sorted);
	free(order);
	free(off);
	free(len);
	buf_free(&keys);
	buf_free(&tmp);
}
