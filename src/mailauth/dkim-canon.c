/* DKIM canonicalisation (RFC 6376 section 3.4) and the split of a message
 * into header fields and body that signing and verification share.
 *
 * Invariants:
 * - The body canonicaliser is a byte-level state machine: chunk boundaries
 *   (even inside a CRLF or a run of blanks) never change its output, and it
 *   keeps no line in memory, only counts (pending empty lines, a pending
 *   blank), so a body of any size costs O(1) memory.  For speed it takes
 *   whole stretches that are already canonical at once (run_end()), and
 *   only ever within one chunk, so the state between chunks is the same
 *   as if it had gone byte by byte.
 * - A bare LF counts as CRLF (messages stored with LF line ends); a bare CR
 *   is an ordinary byte.
 * - l= (limit) caps what is emitted, never what is read: the total canonical
 *   length is reported so the caller can tell whether l= covers the body
 *   (section 8.2) or claims more than there is.
 * - The header section kept for header canonicalisation is capped at
 *   DKIM_MAX_HEADER_SECTION bytes and DKIM_MAX_HEADER_FIELDS fields; past
 *   either the message is marked and verification gives permerror.
 * Sections: 3.4.1 simple header, 3.4.2 relaxed header, 3.4.3 simple body,
 * 3.4.4 relaxed body (with erratum 1384: an empty body is empty), 3.4.5
 * l=, 5.4.2 header selection from the bottom. */
#include "mailauth/dkim.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "mailauth/dkim-private.h"

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

int dkim_canon_header(enum dkim_canon canon, const char *name, size_t name_len,
		      const char *value, size_t value_len, bool crlf, struct buf *out)
{
	int r = 0;
	if (canon == DKIM_CANON_SIMPLE) {
		r |= buf_append(out, name, name_len);
		r |= buf_append(out, ":", 1);
		r |= buf_append(out, value, value_len);
		if (crlf)
			r |= buf_append(out, "\r\n", 2);
		return r ? -1 : 0;
	}
	/* relaxed: lower-case name without trailing blanks */
	while (name_len > 0 && is_wsp(name[name_len - 1]))
		name_len--;
	size_t at = out->len;
	if (buf_append(out, name, name_len) < 0)
		return -1;
	for (size_t i = at; i < out->len; i++)
		out->data[i] = (char)tolower((unsigned char)out->data[i]);
	r |= buf_append(out, ":", 1);
	/* unfold (drop CRLF and LF), blank runs become one space, none at
	 * either end; the text between blanks goes in one append */
	bool started = false, blank = false;
	size_t i = 0;
	while (i < value_len) {
		char c = value[i];
		if (c == '\n' || (c == '\r' && i + 1 < value_len && value[i + 1] == '\n')) {
			i++;
			continue;
		}
		if (is_wsp(c)) {
			blank = true;
			i++;
			continue;
		}
		size_t j = i + 1;
		while (j < value_len && !is_wsp(value[j]) && value[j] != '\n' &&
		       !(value[j] == '\r' && j + 1 < value_len && value[j + 1] == '\n'))
			j++;
		if (blank && started)
			r |= buf_append(out, " ", 1);
		blank = false;
		started = true;
		r |= buf_append(out, value + i, j - i);
		i = j;
	}
	if (crlf)
		r |= buf_append(out, "\r\n", 2);
	return r ? -1 : 0;
}

/* ---- body ---- */

#define EMIT_BUF 4096
#define EMIT_DIRECT 256        /* runs this long go to emit without a copy */

struct dkim_body_canon {
	enum dkim_canon canon;
	uint64_t limit;        /* bytes still allowed out */
	uint64_t total;        /* canonical bytes produced, limit ignored */
	uint64_t empty_lines;  /* empty lines not yet written (may be trailing) */
	bool pending_cr;
	bool pending_blank;    /* relaxed: a run of blanks inside the line */
	bool line_empty;       /* nothing of the current line written yet */
	bool finished;
	dkim_emit_fn *emit;
	void *ctx;
	size_t n;
	char out[EMIT_BUF];    /* run of output not yet handed to emit */
};

static void bc_flush(struct dkim_body_canon *bc)
{
	if (bc->n > 0)
		bc->emit(bc->ctx, bc->out, bc->n);
	bc->n = 0;
}

static void bc_put(struct dkim_body_canon *bc, const char *p, size_t len)
{
	bc->total += len;
	if (len > bc->limit)
		len = (size_t)bc->limit;
	bc->limit -= len;
	if (len >= EMIT_DIRECT) {
		/* a long stretch of the input is its own canonical form: hash it
		 * where it lies (what is buffered goes first, keeping the order) */
		bc_flush(bc);
		bc->emit(bc->ctx, p, len);
		return;
	}
	while (len > 0) {
		size_t room = EMIT_BUF - bc->n, k = len < room ? len : room;
		memcpy(bc->out + bc->n, p, k);
		bc->n += k;
		p += k;
		len -= k;
		if (bc->n == EMIT_BUF)
			bc_flush(bc);
	}
}

static void bc_line_content(struct dkim_body_canon *bc)
{
	if (!bc->line_empty)
		return;
	while (bc->empty_lines > 0) {
		bc_put(bc, "\r\n", 2);
		bc->empty_lines--;
	}
	bc->line_empty = false;
}

/* A run of canonical output that starts with content (not CR, LF, nor a
 * relaxed blank) and leaves the line non-empty with no blank pending.
 * It may hold whole lines: see run_end(). */
static void bc_run(struct dkim_body_canon *bc, const char *p, size_t n)
{
	bc_line_content(bc);
	if (bc->pending_blank) {
		bc_put(bc, " ", 1);
		bc->pending_blank = false;
	}
	bc_put(bc, p, n);
}

static void bc_eol(struct dkim_body_canon *bc)
{
	if (bc->line_empty)
		bc->empty_lines++;
	else
		bc_put(bc, "\r\n", 2);
	bc->line_empty = true;
	bc->pending_blank = false;
}

/* Bytes that end a run: bit 0 for both canonicalisations (CR, LF), bit 1
 * for relaxed only (SP, HTAB); relaxed tests both bits, simple bit 0. */
static const uint8_t run_stop[256] = {
	['\r'] = 3, ['\n'] = 3, [' '] = 2, ['\t'] = 2,
};

/* Word-at-a-time scanning (SWAR): eight bytes tested with a few integer
 * operations instead of a table lookup and a branch per byte, which was
 * the largest cost left once runs stopped at every word.  Each test is
 * exact per byte (no carry crosses a byte), so a flag is never missed; the
 * callers only need no false negatives, since stopping early is always
 * safe (see run_end()). */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
#define LOWS 0x7f7f7f7f7f7f7f7fULL

/* High bit of every zero byte of v. */
static inline uint64_t zero_bytes(uint64_t v)
{
	return ~(((v & LOWS) + LOWS) | v) & HIGHS;
}

/* High bit of every byte of v below 0x21 (controls, CR, LF, HTAB, SP). */
static inline uint64_t low_bytes(uint64_t v)
{
	return ~(((v & LOWS) + 0x5f * ONES) | v) & HIGHS;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HAVE_SWAR 1
/* The first position from q on that is CR or LF (simple), or else end
 * rounded down to a word. */
static const char *skip_simple(const char *q, const char *end)
{
	while (end - q >= 8) {
		uint64_t w;
		memcpy(&w, q, 8);
		uint64_t stop = zero_bytes(w ^ ('\r' * ONES)) | zero_bytes(w ^ ('\n' * ONES));
		if (stop)
			return q + (__builtin_ctzll(stop) >> 3);
		q += 8;
	}
	return q;
}

/* Relaxed: skip content bytes and single spaces followed by content (a
 * byte of 0x21 or more); stop at any other byte below 0x21, or at a space
 * followed by one.  The second load, one byte on, gives each byte its
 * successor. */
static const char *skip_relaxed(const char *q, const char *end)
{
	while (end - q >= 9) {
		uint64_t w, next;
		memcpy(&w, q, 8);
		memcpy(&next, q + 1, 8);
		uint64_t sp = zero_bytes(w ^ (' ' * ONES));
		uint64_t stop = (low_bytes(w) & ~sp) | (sp & low_bytes(next));
		if (stop)
			return q + (__builtin_ctzll(stop) >> 3);
		q += 8;
	}
	return q;
}
#else
#define HAVE_SWAR 0
#endif

/* The end of the longest run starting at p (content: not CR, LF, nor for
 * relaxed a blank) whose bytes are already canonical, as far as this chunk
 * shows.  Hot path: plain text would otherwise move a word or a line at a
 * time.  The run goes on over
 * - (relaxed) a single SP between two content bytes: a blank run of one
 *   space is its own canonical form;
 * - a CRLF between a content byte and a line starting with content: the
 *   line is not empty and (relaxed) has no trailing blank, so its CRLF is
 *   written as it is, and the next line clears no pending state.
 * It stops at anything else (bare LF, bare CR, blank runs, empty lines,
 * the chunk's end), which the byte-level state machine then handles, so
 * chunk boundaries never change the output.  Stopping earlier than need
 * be only splits a run: the next one starts at a content byte with
 * nothing pending. */
static const char *run_end(const char *p, const char *end, bool relaxed)
{
	uint8_t mask = relaxed ? 3 : 1;
	const char *q = p + 1;

	for (;;) {
#if HAVE_SWAR
		q = relaxed ? skip_relaxed(q, end) : skip_simple(q, end);
#endif
		while (q < end && !(run_stop[(uint8_t)*q] & mask))
			q++;
		if (q + 1 < end && relaxed && *q == ' ' && !(run_stop[(uint8_t)q[1]] & mask)) {
			q += 2;
			continue;
		}
		if (q + 2 < end && q[0] == '\r' && q[1] == '\n' &&
		    !(run_stop[(uint8_t)q[2]] & mask)) {
			q += 3;
			continue;
		}
		return q;
	}
}

struct dkim_body_canon *dkim_body_canon_create(enum dkim_canon canon, uint64_t limit,
					       dkim_emit_fn *emit, void *ctx)
{
	struct dkim_body_canon *bc = xcalloc(1, sizeof(*bc));
	bc->canon = canon;
	bc->limit = limit;
	bc->line_empty = true;
	bc->emit = emit;
	bc->ctx = ctx;
	return bc;
}

void dkim_body_canon_feed(struct dkim_body_canon *bc, const char *data, size_t len)
{
	bool relaxed = bc->canon == DKIM_CANON_RELAXED;
	const char *p = data, *end = data + len;

	while (p < end) {
		char c = *p;
		if (bc->pending_cr) {
			bc->pending_cr = false;
			if (c == '\n') {
				bc_eol(bc);
				p++;
				continue;
			}
			bc_run(bc, "\r", 1);  /* a bare CR is data */
		}
		if (c == '\r') {
			bc->pending_cr = true;
			p++;
		} else if (c == '\n') {
			bc_eol(bc);
			p++;
		} else if (relaxed && is_wsp(c)) {
			bc->pending_blank = true;
			p++;
		} else {
			const char *q = run_end(p, end, relaxed);
			bc_run(bc, p, (size_t)(q - p));
			p = q;
		}
	}
}

void dkim_body_canon_finish(struct dkim_body_canon *bc, uint64_t *total_r)
{
	if (!bc->finished) {
		bc->finished = true;
		if (bc->pending_cr) {
			bc->pending_cr = false;
			bc_run(bc, "\r", 1);
		}
		/* an unterminated last line gets its CRLF (3.4.3, 3.4.4) */
		if (!bc->line_empty)
			bc_put(bc, "\r\n", 2);
		/* simple: an empty body (or only empty lines) is one CRLF */
		if (bc->canon == DKIM_CANON_SIMPLE && bc->total == 0)
			bc_put(bc, "\r\n", 2);
		bc_flush(bc);
	}
	if (total_r)
		*total_r = bc->total;
}

void dkim_body_canon_destroy(struct dkim_body_canon **bcp)
{
	free(*bcp);
	*bcp = NULL;
}

/* ---- message split ---- */

void dkim_msg_init(struct dkim_msg *m, void (*header_end_cb)(void *ctx),
		   void (*body_cb)(void *ctx, const char *data, size_t len), void *ctx)
{
	memset(m, 0, sizeof(*m));
	buf_init(&m->header, DKIM_MAX_HEADER_SECTION);
	m->line_start = true;
	m->header_end_cb = header_end_cb;
	m->body_cb = body_cb;
	m->ctx = ctx;
}

void dkim_msg_free(struct dkim_msg *m)
{
	buf_free(&m->header);
	free(m->fields);
	m->fields = NULL;
}

static void hdr_append(struct dkim_msg *m, const char *p, size_t n)
{
	if (m->overflow)
		return;
	if (buf_append(&m->header, p, n) < 0)
		m->overflow = true;
}

/* Split the kept header section into fields. */
static void split_fields(struct dkim_msg *m)
{
	const char *h = m->header.data;
	size_t len = m->header.len, pos = 0, cap = 0;
	struct dkim_field *cur = NULL;

	while (pos < len) {
		size_t eol = pos;
		while (eol + 1 < len && !(h[eol] == '\r' && h[eol + 1] == '\n'))
			eol++;
		if (eol + 1 >= len)
			eol = len; /* cannot happen: every kept line ends in CRLF */
		size_t next = eol + 2 <= len ? eol + 2 : len;
		if (is_wsp(h[pos]) && cur) {
			cur->value_len = eol - cur->value_off;
		} else {
			cur = NULL;
			const char *colon = memchr(h + pos, ':', eol - pos);
			if (colon && colon > h + pos) {
				if (m->n_fields == DKIM_MAX_HEADER_FIELDS) {
					m->too_many_fields = true;
					return;
				}
				if (m->n_fields == cap) {
					cap = cap ? cap * 2 : 32;
					m->fields = xrealloc(m->fields, cap * sizeof(*m->fields));
				}
				cur = &m->fields[m->n_fields++];
				cur->name_off = pos;
				cur->name_len = (size_t)(colon - (h + pos));
				cur->value_off = cur->name_len + pos + 1;
				cur->value_len = eol - cur->value_off;
			}
		}
		pos = next;
	}
}

static void msg_header_end(struct dkim_msg *m)
{
	m->in_body = true;
	if (!m->overflow)
		split_fields(m);
	if (m->header_end_cb)
		m->header_end_cb(m->ctx);
}

/* A line ending (CRLF or bare LF) in the header section: an empty line
 * ends it, any other is kept as CRLF. */
static void msg_eol(struct dkim_msg *m)
{
	if (m->line_start)
		msg_header_end(m);
	else {
		hdr_append(m, "\r\n", 2);
		m->line_start = true;
	}
}

void dkim_msg_feed(struct dkim_msg *m, const char *data, size_t len)
{
	const char *p = data, *end = data + len;

	while (p < end) {
		if (m->in_body) {
			if (m->body_cb)
				m->body_cb(m->ctx, p, (size_t)(end - p));
			return;
		}
		char c = *p;
		if (m->pending_cr) {
			m->pending_cr = false;
			if (c == '\n') {
				p++;
				msg_eol(m);
				continue;
			}
			hdr_append(m, "\r", 1);
			m->line_start = false;
		}
		if (c == '\r') {
			m->pending_cr = true;
			p++;
		} else if (c == '\n') {
			p++;
			msg_eol(m);
		} else {
			/* the rest of the line up to CR or LF, kept in one append;
			 * past the cap the section is marked too large whatever
			 * part of it was kept */
			const char *q = p + 1;
			while (q < end && *q != '\r' && *q != '\n')
				q++;
			hdr_append(m, p, (size_t)(q - p));
			m->line_start = false;
			p = q;
		}
	}
}

void dkim_msg_end(struct dkim_msg *m)
{
	if (m->in_body)
		return;
	if (m->pending_cr) {
		m->pending_cr = false;
		hdr_append(m, "\r", 1);
		m->line_start = false;
	}
	if (!m->line_start)
		hdr_append(m, "\r\n", 2);
	msg_header_end(m);
}

int dkim_msg_canon_headers(const struct dkim_msg *m, enum dkim_canon canon,
			   char *const *names, size_t n_names, struct buf *out)
{
	bool *used = xcalloc(m->n_fields + 1, sizeof(bool));
	const char *h = m->header.data;
	int r = 0;

	for (size_t k = 0; k < n_names && r == 0; k++) {
		size_t nl = strlen(names[k]);
		for (size_t i = m->n_fields; i-- > 0;) {
			const struct dkim_field *f = &m->fields[i];
			size_t fl = f->name_len;
			while (fl > 0 && is_wsp(h[f->name_off + fl - 1]))
				fl--;
			if (used[i] || fl != nl || strncasecmp(h + f->name_off, names[k], nl) != 0)
				continue;
			used[i] = true;
			r = dkim_canon_header(canon, h + f->name_off, f->name_len,
					      h + f->value_off, f->value_len, true, out);
			break;
		}
	}
	free(used);
	return r;
}
