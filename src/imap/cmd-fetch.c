/* FETCH and UID FETCH (RFC 9051 6.4.5 / 7.5.2, RFC 3501 6.4.5 / 7.4.2),
 * BINARY (RFC 3516) and the CONDSTORE / QRESYNC parts of FETCH (RFC 7162
 * 3.1.4, 3.2.6).
 *
 * The data items are a table (fetch_atts[]): each entry says whether it
 * can serve a parsed item, whether it needs the message file, and writes
 * its part of "* n FETCH (...)".  Served: FLAGS, UID, INTERNALDATE,
 * RFC822.SIZE, MODSEQ, ENVELOPE, SAVEDATE (RFC 8514), PREVIEW (RFC 8970),
 * EMAILID and THREADID (RFC 8474), BODY, BODYSTRUCTURE, RFC822,
 * RFC822.HEADER, RFC822.TEXT, BODY[section]<partial> (part numbers through
 * embedded message/rfc822 parts, HEADER, HEADER.FIELDS(.NOT), TEXT, MIME;
 * a part that does not exist, or HEADER/TEXT of a part that is not a
 * message, is NIL as in Dovecot), BINARY[part]<partial> decoded from the
 * part's Content-Transfer-Encoding (literal8 when the result holds NUL)
 * and BINARY.SIZE[part].  Part offsets come from src/mail/mime.h.
 *
 * Invariants:
 *  - Items are validated before the first byte of output, so a FETCH is
 *    either answered or refused as a whole.
 *  - \Seen is set (non-PEEK body items, RFC 9051 6.4.5) through one store
 *    write committed before the responses go out; the responses of
 *    messages whose flags it changed carry FLAGS.
 *  - ENVELOPE, SAVEDATE, PREVIEW, EMAILID and THREADID come from the
 *    store's per-message summaries (computed at delivery), loaded with one
 *    query for the FETCH's UID range: FETCH 1:* ENVELOPE opens no file.
 *  - Output is produced a message at a time and pauses while more than
 *    IMAP_OUTPUT_PAUSE bytes wait for the socket (s->pump), so fetching a
 *    whole large mailbox never sits in memory.
 *  - A message whose file has gone (expunged by another session) is
 *    skipped and the command ends NO [EXPUNGEISSUED] (RFC 5530).
 *  - A message whose requested BINARY part has an unknown encoding gets no
 *    response and the command ends NO [UNKNOWN-CTE] (RFC 3516 4.3).
 *  - CHANGEDSINCE keeps only messages with a higher modseq and adds MODSEQ
 *    to each response; with VANISHED (QRESYNC enabled) the UIDs of the set
 *    expunged since then come first as "* VANISHED (EARLIER) set". */
#include "imap/imap-private.h"
#include "lib/log.h"
#include "mail/imap-bodystructure.h"
#include "mail/imap-string.h"
#include "mail/imap-envelope.h"
#include "mail/mime-decode.h"
#include "mail/mime.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* What the store keeps per message (store_summary_list), copied into
 * the command's arena for the UID range of the FETCH. */
struct fetch_summary {
	uint32_t uid;
	time_t savedate;
	const char *envelope, *preview, *emailid, *threadid;
};

/* One message being written. */
struct fetch_msg {
	struct imap_session *s;
	const struct imap_msg *m;
	const struct fetch_summary *sum;   /* NULL when none was loaded */
	uint32_t seq;
	struct buf data;        /* the file, when an item needs it */
	bool loaded;
	struct mime_part *mime; /* parsed on demand */
};

struct fetch_att_def {
	enum imap_fetch_att att;
	bool needs_file;
	bool needs_summary;
	/* NULL: always supported */
	bool (*supported)(const struct imap_fetch_item *item);
	void (*write)(struct fetch_msg *fm, const struct imap_fetch_item *item, struct buf *out);
};

struct fetch_ctx {
	struct imap_fetch_request req;
	uint32_t *seqs;
	size_t count, next;
	bool needs_file;
	bool sets_seen;
	bool missing;
	bool unknown_cte;           /* a BINARY part had an unknown encoding (RFC 3516 4.3) */
	bool has_flags, has_uid, has_modseq;
	bool add_modseq;            /* CHANGEDSINCE: MODSEQ in every response (RFC 7162 3.1.4.1) */
	uint32_t *seen_changed;     /* UIDs whose \Seen this FETCH set (sorted) */
	size_t nseen_changed;
	bool needs_summary;
	struct fetch_summary *sums; /* ascending UIDs (arena) */
	size_t nsums, sums_alloc;
	struct imap_arena *arena;
};

/* ---- helpers ---- */

static int load_file(struct fetch_msg *fm)
{
	int fd;
	size_t want;

	if (fm->loaded)
		return 0;
	fd = open(fm->m->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	want = fm->m->size > 0 ? (size_t)fm->m->size : 0;
	buf_init(&fm->data, BUF_UNLIMITED);
	/* read exactly the recorded size (RFC822.SIZE must match BODY[]) */
	buf_append_file(&fm->data, fd, want);
	close(fd);
	fm->loaded = true;
	return 0;
}

/* Length of the header section including the empty line (or everything). */
static size_t header_len(const char *p, size_t len)
{
	if (len >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	for (size_t i = 0; i + 3 < len; i++)
		if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
			return i + 4;
	return len;
}

/* "{n}\r\n" + bytes, honouring <partial> (RFC 9051 6.4.5: a partial past
 * the end is empty; the response names only the origin). */
/* The <offset.length> window of p[0..len) (RFC 9051 6.4.5). */
static void apply_partial(const struct imap_fetch_item *item, const char **p, size_t *len)
{
	if (item == NULL || !item->partial)
		return;
	if (item->offset >= *len) {
		*len = 0;
		return;
	}
	*p += item->offset;
	*len -= (size_t)item->offset;
	if (item->length < *len)
		*len = (size_t)item->length;
}

static void write_literal(struct buf *out, const char *p, size_t len,
			  const struct imap_fetch_item *item)
{
	apply_partial(item, &p, &len);
	buf_printf(out, "{%zu}\r\n", len);
	buf_append(out, p, len);
}

static void write_origin(struct buf *out, const struct imap_fetch_item *item)
{
	if (item->partial)
		buf_printf(out, "<%llu>", (unsigned long long)item->offset);
}

static bool field_listed(const struct imap_fetch_item *item, const char *name, size_t n)
{
	for (size_t i = 0; i < item->nfields; i++)
		if (item->fields[i].len == n && strncasecmp(item->fields[i].p, name, n) == 0)
			return true;
	return false;
}

/* HEADER.FIELDS (.NOT) of the header section h[0..len) into sel. */
static void select_fields(const struct imap_fetch_item *item, const char *h, size_t len,
			  struct buf *sel)
{
	bool not = item->spec == IMAP_SECTION_HEADER_FIELDS_NOT;
	size_t i = 0;

	while (i < len) {
		/* one field: its first line and continuation lines */
		size_t start = i, colon;
		do {
			const char *nl = memchr(h + i, '\n', len - i);
			i = nl != NULL ? (size_t)(nl - h) + 1 : len;
		} while (i < len && (h[i] == ' ' || h[i] == '\t'));
		if (i - start <= 2 && (h[start] == '\r' || h[start] == '\n'))
			break;   /* the empty line */
		for (colon = start; colon < i && h[colon] != ':'; colon++)
			;
		size_t nlen = colon - start;
		while (nlen > 0 && (h[start + nlen - 1] == ' ' || h[start + nlen - 1] == '\t'))
			nlen--;
		if (colon < i && field_listed(item, h + start, nlen) != not)
			buf_append(sel, h + start, i - start);
	}
	buf_append_str(sel, "\r\n");
}

/* ---- the data items ---- */

static void att_flags(struct fetch_msg *fm, const struct imap_fetch_item *item, struct buf *out)
{
	(void)item;
	buf_append_str(out, "FLAGS ");
	imap_msg_flags(fm->m, out);
}

static void att_uid(struct fetch_msg *fm, const struct imap_fetch_item *item, struct buf *out)
{
	(void)item;
	buf_printf(out, "UID %u", fm->m->uid);
}

/* date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE */
static void append_datetime(struct buf *out, time_t t)
{
	static const char *months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	buf_printf(out, "\"%2d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday, months[tm.tm_mon],
		   tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void att_internaldate(struct fetch_msg *fm, const struct imap_fetch_item *item,
			     struct buf *out)
{
	(void)item;
	buf_append_str(out, "INTERNALDATE ");
	append_datetime(out, fm->m->internal_date);
}

/* RFC 8514: when the message was saved in this mailbox */
static void att_savedate(struct fetch_msg *fm, const struct imap_fetch_item *item,
			 struct buf *out)
{
	(void)item;
	buf_append_str(out, "SAVEDATE ");
	if (fm->sum != NULL && fm->sum->savedate > 0)
		append_datetime(out, fm->sum->savedate);
	else
		buf_append_str(out, "NIL");
}

/* RFC 8970: computed at delivery; NIL only if the summary is missing */
static void att_preview(struct fetch_msg *fm, const struct imap_fetch_item *item,
			struct buf *out)
{
	(void)item;
	buf_append_str(out, "PREVIEW ");
	imap_append_nstr(out, fm->sum != NULL ? fm->sum->preview : NULL);
}

/* RFC 8474 5.1: EMAILID (id) and THREADID (id) or THREADID NIL */
static void att_objectid(struct fetch_msg *fm, const struct imap_fetch_item *item,
			 struct buf *out)
{
	bool email = item->att == IMAP_FETCH_EMAILID;
	const char *id = fm->sum == NULL ? NULL : email ? fm->sum->emailid : fm->sum->threadid;

	buf_append_str(out, email ? "EMAILID " : "THREADID ");
	if (id != NULL && id[0] != '\0')
		buf_printf(out, "(%s)", id);
	else
		buf_append_str(out, "NIL");
}

static void att_size(struct fetch_msg *fm, const struct imap_fetch_item *item, struct buf *out)
{
	(void)item;
	buf_printf(out, "RFC822.SIZE %lld", (long long)fm->m->size);
}

static void att_modseq(struct fetch_msg *fm, const struct imap_fetch_item *item, struct buf *out)
{
	(void)item;
	buf_printf(out, "MODSEQ (%llu)", (unsigned long long)fm->m->modseq);
}

static void att_envelope(struct fetch_msg *fm, const struct imap_fetch_item *item,
			 struct buf *out)
{
	(void)item;
	buf_append_str(out, "ENVELOPE ");
	if (fm->sum != NULL && fm->sum->envelope != NULL && fm->sum->envelope[0] == '(') {
		buf_append_str(out, fm->sum->envelope);   /* cached at delivery */
		return;
	}
	if (load_file(fm) < 0) {
		buf_append_str(out, "NIL");
		return;
	}
	imap_envelope_write(out, fm->data.data != NULL ? fm->data.data : "",
			    header_len(buf_cstr(&fm->data), fm->data.len));
}

static void att_structure(struct fetch_msg *fm, const struct imap_fetch_item *item,
			  struct buf *out)
{
	const char *error = NULL;
	bool ext = item->att == IMAP_FETCH_BODYSTRUCTURE;

	if (fm->mime == NULL && mime_parse(buf_cstr(&fm->data), fm->data.len, &fm->mime,
					   &error) < 0) {
		buf_append_str(out, ext ? "BODYSTRUCTURE NIL" : "BODY NIL");
		return;
	}
	buf_append_str(out, ext ? "BODYSTRUCTURE " : "BODY ");
	imap_bodystructure_write(out, buf_cstr(&fm->data), fm->mime, ext);
}

static void att_rfc822(struct fetch_msg *fm, const struct imap_fetch_item *item, struct buf *out)
{
	const char *p = buf_cstr(&fm->data);
	size_t len = fm->data.len, h = header_len(p, len);

	switch (item->att) {
	case IMAP_FETCH_RFC822_HEADER:
		buf_append_str(out, "RFC822.HEADER ");
		write_literal(out, p, h, NULL);
		break;
	case IMAP_FETCH_RFC822_TEXT:
		buf_append_str(out, "RFC822.TEXT ");
		write_literal(out, p + h, len - h, NULL);
		break;
	default:
		buf_append_str(out, "RFC822 ");
		write_literal(out, p, len, NULL);
		break;
	}
}

static int ensure_mime(struct fetch_msg *fm)
{
	const char *error = NULL;

	if (fm->mime != NULL)
		return 0;
	return mime_parse(buf_cstr(&fm->data), fm->data.len, &fm->mime, &error);
}

/* The MIME part a section's part numbers name (RFC 9051 6.4.5), or NULL
 * when the message has no such part. */
static const struct mime_part *section_part(struct fetch_msg *fm,
					    const struct imap_fetch_item *item)
{
	struct buf num;
	struct mime_part *p;

	if (ensure_mime(fm) < 0)
		return NULL;
	buf_init(&num, BUF_UNLIMITED);
	for (size_t i = 0; i < item->nparts; i++)
		buf_printf(&num, "%s%u", i > 0 ? "." : "", item->parts[i]);
	p = mime_part_find(fm->mime, buf_cstr(&num));
	buf_free(&num);
	return p;
}

/* "BODY[1.2.HEADER.FIELDS (A B)]<origin>" as the client asked for it. */
static void write_section_name(struct buf *out, const char *att,
			       const struct imap_fetch_item *item)
{
	buf_append_str(out, att);
	buf_append_str(out, "[");
	for (size_t i = 0; i < item->nparts; i++)
		buf_printf(out, "%s%u", i > 0 ? "." : "", item->parts[i]);
	if (item->nparts > 0 && item->spec != IMAP_SECTION_ALL)
		buf_append_str(out, ".");
	switch (item->spec) {
	case IMAP_SECTION_HEADER:
		buf_append_str(out, "HEADER");
		break;
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT:
		buf_append_str(out, item->spec == IMAP_SECTION_HEADER_FIELDS ? "HEADER.FIELDS ("
									      : "HEADER.FIELDS.NOT (");
		for (size_t i = 0; i < item->nfields; i++) {
			if (i > 0)
				buf_append_str(out, " ");
			buf_append_slice(out, item->fields[i]);
		}
		buf_append_str(out, ")");
		break;
	case IMAP_SECTION_TEXT:
		buf_append_str(out, "TEXT");
		break;
	case IMAP_SECTION_MIME:
		buf_append_str(out, "MIME");
		break;
	default:
		break;
	}
	buf_append_str(out, "]");
}

/* The bytes the section of item names, into *p_r / *len_r (pointing into
 * the message, or into sel for HEADER.FIELDS).  false when the message has
 * no such part or the part has no header of its own (HEADER / TEXT of a
 * part that is not message/rfc822): the caller answers NIL. */
static bool section_bytes(struct fetch_msg *fm, const struct imap_fetch_item *item,
			  struct buf *sel, const char **p_r, size_t *len_r)
{
	const char *msg = buf_cstr(&fm->data);
	size_t hoff = 0, hlen, boff, blen;

	if (item->nparts == 0) {
		hlen = header_len(msg, fm->data.len);
		boff = hlen;
		blen = fm->data.len - hlen;
	} else {
		const struct mime_part *p = section_part(fm, item);
		if (p == NULL)
			return false;
		if (item->spec == IMAP_SECTION_ALL) {
			*p_r = msg + p->body_offset;
			*len_r = p->body_size;
			return true;
		}
		if (item->spec == IMAP_SECTION_MIME) {
			/* RFC 9051 6.4.5: the MIME header of this part */
			*p_r = msg + p->header_offset;
			*len_r = p->header_size;
			return true;
		}
		/* HEADER, HEADER.FIELDS(.NOT), TEXT: of an embedded message only */
		if (!(p->flags & MIME_PART_MESSAGE) || p->children == NULL)
			return false;
		p = p->children;
		hoff = p->header_offset;
		hlen = p->header_size;
		boff = p->body_offset;
		blen = p->body_size;
	}
	switch (item->spec) {
	case IMAP_SECTION_HEADER:
		*p_r = msg + hoff;
		*len_r = hlen;
		return true;
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT:
		select_fields(item, msg + hoff, hlen, sel);
		*p_r = buf_cstr(sel);
		*len_r = sel->len;
		return true;
	case IMAP_SECTION_TEXT:
		*p_r = msg + boff;
		*len_r = blen;
		return true;
	default:
		*p_r = msg;
		*len_r = fm->data.len;
		return true;
	}
}

static void att_section(struct fetch_msg *fm, const struct imap_fetch_item *item,
			struct buf *out)
{
	struct buf sel;
	const char *p;
	size_t len;

	buf_init(&sel, BUF_UNLIMITED);
	write_section_name(out, "BODY", item);
	write_origin(out, item);
	buf_append_str(out, " ");
	if (section_bytes(fm, item, &sel, &p, &len))
		write_literal(out, p, len, item);
	else
		buf_append_str(out, "NIL");
	buf_free(&sel);
}

bool imap_fetch_section_bytes(const char *msg, size_t len, const struct imap_fetch_item *item,
			      struct buf *out)
{
	struct fetch_msg fm = { .loaded = true };
	struct buf sel;
	const char *p;
	size_t n;
	bool ok;

	buf_init(&fm.data, BUF_UNLIMITED);
	buf_append(&fm.data, msg, len);
	buf_init(&sel, BUF_UNLIMITED);
	ok = section_bytes(&fm, item, &sel, &p, &n);
	if (ok) {
		apply_partial(item, &p, &n);
		buf_append(out, p, n);
	}
	buf_free(&sel);
	buf_free(&fm.data);
	mime_part_free(&fm.mime);
	return ok;
}

/* ---- BINARY (RFC 3516) ---- */

/* The decoded content of item's part into dec.  0 ok, 1 no such part
 * (NIL), -1 unknown Content-Transfer-Encoding (RFC 3516 4.3). */
static int binary_content(struct fetch_msg *fm, const struct imap_fetch_item *item,
			  struct buf *dec)
{
	const struct mime_part *p;
	enum mime_encoding enc;

	if (item->nparts == 0) {
		/* BINARY[]: the whole message, which has no encoding of its own */
		buf_append(dec, buf_cstr(&fm->data), fm->data.len);
		return 0;
	}
	p = section_part(fm, item);
	if (p == NULL)
		return 1;
	enc = (p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) ? MIME_ENC_8BIT
								     : mime_encoding_parse(p->encoding);
	if (enc == MIME_ENC_UNKNOWN)
		return -1;
	mime_decode_body(enc, buf_cstr(&fm->data) + p->body_offset, p->body_size, dec, NULL);
	return 0;
}

/* Would this message's BINARY items meet an unknown encoding? */
static bool binary_unknown_cte(struct fetch_msg *fm, const struct imap_fetch_item *item)
{
	const struct mime_part *p;

	if (item->nparts == 0)
		return false;
	p = section_part(fm, item);
	return p != NULL && !(p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) &&
	       mime_encoding_parse(p->encoding) == MIME_ENC_UNKNOWN;
}

static bool binary_supported(const struct imap_fetch_item *item)
{
	/* the grammar allows part numbers only (section-binary) */
	return item->spec == IMAP_SECTION_ALL;
}

static void att_binary(struct fetch_msg *fm, const struct imap_fetch_item *item,
		       struct buf *out)
{
	struct buf dec;
	int rc;

	buf_init(&dec, BUF_UNLIMITED);
	rc = binary_content(fm, item, &dec);
	if (item->att == IMAP_FETCH_BINARY_SIZE) {
		write_section_name(out, "BINARY.SIZE", item);
		if (rc == 0)
			buf_printf(out, " %zu", dec.len);
		else
			buf_append_str(out, " NIL");
		buf_free(&dec);
		return;
	}
	write_section_name(out, "BINARY", item);
	write_origin(out, item);
	buf_append_str(out, " ");
	if (rc != 0) {
		buf_append_str(out, "NIL");
	} else {
		const char *p = buf_cstr(&dec);
		size_t len = dec.len;
		apply_partial(item, &p, &len);
		/* RFC 3516 4.2: literal8 only when the content holds NUL */
		buf_printf(out, "%s{%zu}\r\n", memchr(p, '\0', len) != NULL ? "~" : "", len);
		buf_append(out, p, len);
	}
	buf_free(&dec);
}

static const struct fetch_att_def fetch_atts[] = {
	{ IMAP_FETCH_FLAGS, false, false, NULL, att_flags },
	{ IMAP_FETCH_UID, false, false, NULL, att_uid },
	{ IMAP_FETCH_INTERNALDATE, false, false, NULL, att_internaldate },
	{ IMAP_FETCH_RFC822_SIZE, false, false, NULL, att_size },
	{ IMAP_FETCH_MODSEQ, false, false, NULL, att_modseq },
	{ IMAP_FETCH_ENVELOPE, false, true, NULL, att_envelope },
	{ IMAP_FETCH_SAVEDATE, false, true, NULL, att_savedate },
	{ IMAP_FETCH_PREVIEW, false, true, NULL, att_preview },
	{ IMAP_FETCH_EMAILID, false, true, NULL, att_objectid },
	{ IMAP_FETCH_THREADID, false, true, NULL, att_objectid },
	{ IMAP_FETCH_BODY, true, false, NULL, att_structure },
	{ IMAP_FETCH_BODYSTRUCTURE, true, false, NULL, att_structure },
	{ IMAP_FETCH_RFC822, true, false, NULL, att_rfc822 },
	{ IMAP_FETCH_RFC822_HEADER, true, false, NULL, att_rfc822 },
	{ IMAP_FETCH_RFC822_TEXT, true, false, NULL, att_rfc822 },
	{ IMAP_FETCH_BODY_SECTION, true, false, NULL, att_section },
	{ IMAP_FETCH_BINARY, true, false, binary_supported, att_binary },
	{ IMAP_FETCH_BINARY_SIZE, true, false, binary_supported, att_binary },
};

/* ---- summaries ---- */

static const char *arena_strdup(struct imap_arena *a, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	char *p;

	if (s == NULL)
		return NULL;
	p = imap_arena_alloc(a, n + 1);
	memcpy(p, s, n + 1);
	return p;
}

static int summary_loaded(void *ctx, const struct store_summary *ss)
{
	struct fetch_ctx *c = ctx;
	struct fetch_summary *f;

	if (c->nsums == c->sums_alloc)
		return 1;   /* more rows than the view knows: newer mail, not asked for */
	f = &c->sums[c->nsums++];
	f->uid = ss->uid;
	f->savedate = ss->savedate;
	f->envelope = arena_strdup(c->arena, ss->envelope);
	f->preview = arena_strdup(c->arena, ss->preview);
	f->emailid = arena_strdup(c->arena, ss->emailid);
	f->threadid = arena_strdup(c->arena, ss->threadid);
	return 0;
}

/* Load the summaries of the UIDs between the set's first and last message
 * with one store query (no message file is opened for them). */
static void summaries_load(struct imap_session *s, struct fetch_ctx *c)
{
	const struct imap_view *v = s->view;
	const char *error = NULL;
	uint32_t lo, hi;

	if (c->count == 0)
		return;
	lo = c->seqs[0];
	hi = c->seqs[c->count - 1];
	c->arena = &s->arena;
	c->sums_alloc = (size_t)(hi - lo) + 1;
	c->sums = imap_arena_alloc(&s->arena, c->sums_alloc * sizeof(*c->sums));
	if (store_summary_list(s->l->store, v->mailbox_id, v->msgs[lo - 1].uid,
			       v->msgs[hi - 1].uid, summary_loaded, c, &error) < 0)
		log_warn("imap", "sid=%s event=summary_failed error=%s", s->c.id,
			 log_quote(error ? error : ""));
}

static const struct fetch_summary *summary_find(const struct fetch_ctx *c, uint32_t uid)
{
	size_t lo = 0, hi = c->nsums;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->sums[mid].uid < uid)
			lo = mid + 1;
		else if (c->sums[mid].uid > uid)
			hi = mid;
		else
			return &c->sums[mid];
	}
	return NULL;
}

static const struct fetch_att_def *fetch_att_find(const struct imap_fetch_item *item)
{
	for (size_t i = 0; i < sizeof(fetch_atts) / sizeof(fetch_atts[0]); i++)
		if (fetch_atts[i].att == item->att &&
		    (fetch_atts[i].supported == NULL || fetch_atts[i].supported(item)))
			return &fetch_atts[i];
	return NULL;
}

/* Does this item set \Seen (RFC 9051 6.4.5)? */
static bool item_sets_seen(const struct imap_fetch_item *item)
{
	return (item->att == IMAP_FETCH_BODY_SECTION && !item->peek) ||
	       item->att == IMAP_FETCH_RFC822 || item->att == IMAP_FETCH_RFC822_TEXT ||
	       (item->att == IMAP_FETCH_BINARY && !item->peek);
}

/* ---- output ---- */

static bool uid_in(const uint32_t *uids, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (uids[mid] < uid)
			lo = mid + 1;
		else if (uids[mid] > uid)
			hi = mid;
		else
			return true;
	}
	return false;
}

static void fetch_one(struct imap_session *s, struct fetch_ctx *c, uint32_t seq)
{
	struct fetch_msg fm = { .s = s, .m = &s->view->msgs[seq - 1], .seq = seq };
	struct buf out;
	bool first = true;

	if (c->needs_summary)
		fm.sum = summary_find(c, fm.m->uid);
	if (c->needs_file && load_file(&fm) < 0) {
		c->missing = true;
		return;
	}
	for (size_t i = 0; i < c->req.nitems; i++) {
		const struct imap_fetch_item *item = &c->req.items[i];
		if ((item->att == IMAP_FETCH_BINARY || item->att == IMAP_FETCH_BINARY_SIZE) &&
		    binary_unknown_cte(&fm, item)) {
			/* RFC 3516 4.3: no response for this message, NO [UNKNOWN-CTE] */
			c->unknown_cte = true;
			buf_free(&fm.data);
			mime_part_free(&fm.mime);
			return;
		}
	}
	buf_init(&out, BUF_UNLIMITED);
	buf_printf(&out, "* %u FETCH (", seq);
	if (s->cur_uid && !c->has_uid) {
		att_uid(&fm, NULL, &out);
		first = false;
	}
	for (size_t i = 0; i < c->req.nitems; i++) {
		const struct imap_fetch_item *item = &c->req.items[i];
		if (!first)
			buf_append_str(&out, " ");
		first = false;
		fetch_att_find(item)->write(&fm, item, &out);
	}
	if (!c->has_flags && uid_in(c->seen_changed, c->nseen_changed, fm.m->uid)) {
		buf_append_str(&out, first ? "" : " ");
		att_flags(&fm, NULL, &out);
		first = false;
		if (s->condstore && !c->has_modseq && !c->add_modseq) {
			/* RFC 7162 3.1.4.1: flag changes carry their MODSEQ */
			buf_append_str(&out, " ");
			att_modseq(&fm, NULL, &out);
		}
	}
	if (c->add_modseq && !c->has_modseq) {
		buf_append_str(&out, first ? "" : " ");
		att_modseq(&fm, NULL, &out);
	}
	buf_append_str(&out, ")\r\n");
	imap_send_raw(s, out.data, out.len);
	buf_free(&out);
	if (fm.loaded)
		buf_free(&fm.data);
	mime_part_free(&fm.mime);
}

static void fetch_pump(struct imap_session *s)
{
	struct fetch_ctx *c = s->pump_ctx;
	bool was_waiting = s->c.waiting;

	while (c->next < c->count && !s->c.closed) {
		if (imap_output_pending(s) > IMAP_OUTPUT_PAUSE) {
			s->pump = fetch_pump;
			s->c.waiting = true;
			return;
		}
		uint32_t seq = c->seqs[c->next++];
		if (seq <= s->view->count)
			fetch_one(s, c, seq);
	}
	s->pump = NULL;
	s->pump_ctx = NULL;
	if (s->c.closed)
		return;
	if (c->unknown_cte)
		imap_tagged(s, "NO", "[UNKNOWN-CTE] Unknown Content-Transfer-Encoding in a part");
	else if (c->missing)
		imap_tagged(s, "NO", "[EXPUNGEISSUED] Some messages were expunged meanwhile");
	else
		imap_tagged(s, "OK", "%sFETCH completed", s->cur_uid ? "UID " : "");
	if (was_waiting)
		imap_resume(s);
}

static void fetch_seen_done(void *ctx, const struct store_write_result *r)
{
	struct imap_session *s = ctx;

	if (s->c.closed || s->view == NULL) {
		imap_session_unref(s);
		return;
	}
	if (r->status < 0)
		log_warn("imap", "sid=%s event=set_seen_failed error=%s", s->c.id,
			 log_quote(r->error ? r->error : ""));
	/* take in the new flags without separate FETCH responses: the FETCH
	 * responses below carry them */
	imap_view_refresh_quiet(s);
	if (imap_session_unref(s))
		fetch_pump(s);
}

struct vanished_ctx {
	const struct imap_seqset *set;
	uint32_t *uids;
	size_t count, alloc;
};

static int vanished_one(void *ctx, uint32_t uid)
{
	struct vanished_ctx *v = ctx;

	if (!imap_seqset_contains(v->set, uid))
		return 0;
	if (v->count == v->alloc) {
		v->alloc = v->alloc ? v->alloc * 2 : 64;
		v->uids = xrealloc(v->uids, v->alloc * sizeof(*v->uids));
	}
	v->uids[v->count++] = uid;
	return 0;
}

/* UID FETCH ... (CHANGEDSINCE n VANISHED), RFC 7162 3.2.6: the UIDs of the
 * set expunged since n, as "* VANISHED (EARLIER) set" before the FETCHes. */
static void fetch_vanished(struct imap_session *s, struct fetch_ctx *c)
{
	struct imap_seqset r;
	struct vanished_ctx v = { .set = &r };
	const char *error = NULL;

	imap_seqset_resolve(&c->req.set, s->view->uidnext > 1 ? s->view->uidnext - 1 : 1,
			    &s->arena, &r);
	if (store_expunged_since(s->l->store, s->view->mailbox_id, c->req.changedsince,
				 vanished_one, &v, &error) < 0)
		log_warn("imap", "sid=%s event=vanished_failed error=%s", s->c.id, log_quote(error));
	if (v.count > 0) {
		struct buf b;
		buf_init(&b, BUF_UNLIMITED);
		imap_append_numset(&b, v.uids, v.count);
		imap_untagged(s, "VANISHED (EARLIER) %s", buf_cstr(&b));
		buf_free(&b);
	}
	free(v.uids);
}

void imap_cmd_fetch(struct imap_session *s, const struct imap_command *cmd)
{
	struct fetch_ctx *c = imap_arena_alloc(&s->arena, sizeof(*c));
	struct imap_parse_error err;

	if (imap_fetch_parse(cmd->args, cmd->nargs, cmd->uid, &s->arena, &c->req, &err) < 0) {
		imap_parse_failed(s, &err);
		return;
	}
	if (c->req.vanished && !s->qresync) {
		/* RFC 7162 3.2.6 */
		imap_bad(s, "VANISHED needs ENABLE QRESYNC");
		return;
	}
	for (size_t i = 0; i < c->req.nitems; i++) {
		const struct imap_fetch_item *item = &c->req.items[i];
		const struct fetch_att_def *def = fetch_att_find(item);
		if (def == NULL) {
			imap_tagged(s, "NO", "[CANNOT] This FETCH item is not supported yet");
			return;
		}
		c->needs_file |= def->needs_file;
		c->needs_summary |= def->needs_summary;
		c->sets_seen |= item_sets_seen(item);
		c->has_flags |= item->att == IMAP_FETCH_FLAGS;
		c->has_uid |= item->att == IMAP_FETCH_UID;
		c->has_modseq |= item->att == IMAP_FETCH_MODSEQ;
	}
	if (imap_view_resolve(s, &c->req.set, cmd->uid, &c->seqs, &c->count) < 0) {
		imap_bad(s, "Invalid sequence number (mailbox has %u messages)", s->view->count);
		return;
	}
	/* RFC 7162 3.1: MODSEQ and CHANGEDSINCE are CONDSTORE enabling */
	if (c->has_modseq || c->req.changedsince_given)
		imap_condstore_enable(s);
	if (c->req.changedsince_given) {
		size_t w = 0;
		if (c->req.vanished)
			fetch_vanished(s, c);
		for (size_t i = 0; i < c->count; i++)
			if (s->view->msgs[c->seqs[i] - 1].modseq > c->req.changedsince)
				c->seqs[w++] = c->seqs[i];
		c->count = w;
		c->add_modseq = true;
	}
	if (c->needs_summary)
		summaries_load(s, c);
	s->pump_ctx = c;
	if (c->sets_seen && !s->view->readonly) {
		uint32_t *uids = imap_arena_alloc(&s->arena, (c->count ? c->count : 1) *
						  sizeof(*uids));
		size_t n = 0;
		for (size_t i = 0; i < c->count; i++) {
			const struct imap_msg *m = &s->view->msgs[c->seqs[i] - 1];
			if (!m->expunged && !imap_msg_has_flag(m, "\\Seen"))
				uids[n++] = m->uid;
		}
		if (n > 0) {
			c->seen_changed = uids;
			c->nseen_changed = n;
			s->c.waiting = true;
			imap_session_ref(s);
			if (store_flags_update(s->l->store, s->c.base, s->view->mailbox_id, uids, n,
					       STORE_FLAGS_ADD, "\\Seen", 0, fetch_seen_done, s) == 0)
				return;
			s->c.waiting = false;
			imap_session_unref(s);
			c->nseen_changed = 0;
		}
	}
	fetch_pump(s);
}
