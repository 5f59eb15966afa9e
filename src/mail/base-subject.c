/* Base subject extraction (RFC 5256 section 2.1 and the subject ABNF of
 * section 5) and the i;unicode-casemap key (RFC 5051).
 *
 * The extraction works on one normalised copy of the subject (tabs, CR, LF
 * made spaces, runs of spaces collapsed: step (1)) and narrows a window
 * [b, e) over it; nothing is copied again until the result is appended.
 * Every loop either shrinks the window or stops, so the work is linear in
 * the subject length per pass and the number of passes is bounded by it.
 * Only ASCII bytes take part in the syntax ("re", "fw", "fwd", '[', ']',
 * ':', "(fwd)", space); other bytes, including UTF-8 sequences, are plain
 * text (BLOBCHAR / NONWSP).  NUL bytes never occur in the output: they
 * become spaces like other controls that separate words. */
#include "mail/base-subject.h"
#include "mail/charset.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unicase.h>
#include <uninorm.h>
#include <unistr.h>

/* End of the subj-blob starting at s[p] ("[" *BLOBCHAR "]" *WSP), or 0
 * when there is none (p is never 0 when a blob ends there). */
static size_t blob_end(const char *s, size_t p, size_t e)
{
	if (p >= e || s[p] != '[')
		return 0;
	for (size_t q = p + 1; q < e; q++) {
		if (s[q] == '[')
			return 0;
		if (s[q] == ']') {
			q++;
			while (q < e && s[q] == ' ')
				q++;
			return q;
		}
	}
	return 0;
}

/* End of a subj-leader "*subj-blob subj-refwd" starting at s[p], or 0.
 * subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" */
static size_t refwd_leader_end(const char *s, size_t p, size_t e)
{
	size_t q;

	while ((q = blob_end(s, p, e)) != 0)
		p = q;
	if (e - p >= 2 && strncasecmp(s + p, "re", 2) == 0) {
		p += 2;
	} else if (e - p >= 2 && strncasecmp(s + p, "fw", 2) == 0) {
		p += 2;
		if (p < e && (s[p] == 'd' || s[p] == 'D'))
			p++;
	} else {
		return 0;
	}
	while (p < e && s[p] == ' ')
		p++;
	if ((q = blob_end(s, p, e)) != 0)
		p = q;
	if (p < e && s[p] == ':')
		return p + 1;
	return 0;
}

int base_subject(const char *subject, size_t len, struct buf *out, bool *is_refwd_r)
{
	char *s = xmalloc(len + 1);
	size_t n = 0, b, e;
	bool refwd = false;
	int ret;

	/* (1) tabs and line ends to spaces, runs of spaces to one */
	for (size_t i = 0; i < len; i++) {
		char c = subject[i];
		if (c == '\t' || c == '\r' || c == '\n' || c == '\0')
			c = ' ';
		if (c == ' ' && n > 0 && s[n - 1] == ' ')
			continue;
		s[n++] = c;
	}
	b = 0;
	e = n;
	for (;;) {
		bool changed;

		/* (2) trailing subj-trailer = "(fwd)" / WSP, repeatedly */
		while (e > b) {
			if (s[e - 1] == ' ') {
				e--;
			} else if (e - b >= 5 && strncasecmp(s + e - 5, "(fwd)", 5) == 0) {
				e -= 5;
				refwd = true;
			} else {
				break;
			}
		}
		do {
			size_t q;

			changed = false;
			/* (3) every leading subj-leader = (*subj-blob subj-refwd) / WSP */
			for (;;) {
				if (b < e && s[b] == ' ') {
					b++;
				} else if ((q = refwd_leader_end(s, b, e)) != 0) {
					b = q;
					refwd = true;
				} else {
					break;
				}
				changed = true;
			}
			/* (4) a leading subj-blob, when a non-empty subj-base remains
			 * (the window never ends in a space after step (2)) */
			if ((q = blob_end(s, b, e)) != 0 && q < e) {
				b = q;
				changed = true;
			}
		} while (changed);   /* (5) */
		/* (6) "[fwd:" subject "]" */
		if (e - b >= 6 && strncasecmp(s + b, "[fwd:", 5) == 0 && s[e - 1] == ']') {
			b += 5;
			e--;
			refwd = true;
			continue;
		}
		break;
	}
	ret = buf_append(out, s + b, e - b);
	free(s);
	if (is_refwd_r != NULL)
		*is_refwd_r = refwd;
	return ret;
}

/* Fold a run of non-ASCII bytes (valid UTF-8 or not). */
static int fold_run(const uint8_t *s, size_t len, struct buf *out)
{
	uint8_t *folded;
	size_t n = 0;
	int ret;

	if (u8_check(s, len) != NULL) {
		struct buf clean;
		buf_init(&clean, BUF_UNLIMITED);
		charset_utf8_sanitize((const char *)s, len, &clean);
		ret = fold_run((const uint8_t *)buf_cstr(&clean), clean.len, out);
		buf_free(&clean);
		return ret;
	}
	folded = u8_casefold(s, len, NULL, UNINORM_NFKD, NULL, &n);
	if (folded == NULL)     /* out of memory only */
		return buf_append(out, s, len);
	ret = buf_append(out, folded, n);
	free(folded);
	return ret;
}

int unicode_casemap_key(const char *s, size_t len, struct buf *out)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + len;

	/* Why runs: subjects and addresses are mostly ASCII, where folding is
	 * tolower and NFKD the identity, and u8_casefold costs much more per
	 * byte.  Splitting at ASCII characters is exact: folding without a
	 * language is context-free and NFKD reorders only combining marks,
	 * which never cross an ASCII starter. */
	while (p < end) {
		const uint8_t *run = p;

		if (*p < 0x80) {
			/* in chunks, so that a limited out keeps a prefix */
			char tmp[256];
			size_t n = 0;
			while (p < end && *p < 0x80 && n < sizeof(tmp)) {
				uint8_t c = *p++;
				if (c >= 'A' && c <= 'Z')
					c = (uint8_t)(c + ('a' - 'A'));
				else if (c == 0)
					c = ' ';
				tmp[n++] = (char)c;
			}
			if (buf_append(out, tmp, n) < 0)
				return -1;
			continue;
		}
		while (p < end && *p >= 0x80)
			p++;
		if (fold_run(run, (size_t)(p - run), out) < 0)
			return -1;
	}
	return 0;
}
