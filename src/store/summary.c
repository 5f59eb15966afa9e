/* Message summaries (schema 4): what IMAP needs about a message without
 * reading its file — the ENVELOPE (RFC 3501 7.4.2, cached byte for byte as
 * FETCH ENVELOPE computes it), the SORT keys (RFC 5256 3: sent date, base
 * subject input, first From/To/Cc mailbox; RFC 5957 DISPLAYFROM/TO), the
 * threading headers (RFC 5256 THREAD=REFERENCES), the PREVIEW (RFC 8970),
 * SAVEDATE (RFC 8514) and the object IDs EMAILID/THREADID (RFC 8474).
 *
 * Invariants:
 *  - A summary is computed once, from the header (and for the preview the
 *    first text part), on the thread that already holds the message bytes
 *    (the caller of store_deliver / store_append), and written by the
 *    commit thread in the same savepoint as the message row, keyed by the
 *    row's id; COPY copies it to the new row, MOVE keeps the row.
 *  - Rows stored before schema 4 have none: store_summary_list computes
 *    theirs from the file on the reading thread and saves them through the
 *    commit thread (one request per chunk of SUMMARY_BACKFILL_CHUNK), so it
 *    is done once; when saving is impossible (read-only store, a call from
 *    the commit thread, a file that cannot be read) the summary is served
 *    computed but unsaved.
 *  - EMAILID is "M" + the message file name: copies share the file, so
 *    they share the ID, and a file name (64 random bits, created O_EXCL) is
 *    never that of another live message.  THREADID is the THREADID of a
 *    message of the same user whose Message-ID is this message's own, its
 *    In-Reply-To, or one of its References (last first), else "T" + file.
 *    Both match RFC 8474's objectid syntax (1*255 of [A-Za-z0-9_-]).
 *  - Text fields (all but the envelope) are valid UTF-8 without control
 *    characters: CR, LF and NUL never reach the index. */
#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "mail/address.h"
#include "mail/charset.h"
#include "mail/date.h"
#include "mail/header.h"
#include "mail/imap-envelope.h"
#include "mail/preview.h"
#include "mail/rfc2047.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Legacy rows summarised per commit-thread request. */
#define SUMMARY_BACKFILL_CHUNK 256
/* References entries tried when looking for a thread (a peer controls how
 * many there are). */
#define SUMMARY_THREAD_LOOKUPS 64

static const char SQL_SUMMARY_INSERT[] =
	"INSERT OR IGNORE INTO summaries(id, user_id, emailid, threadid, msgid, sent_date,"
	" envelope, subject, from_mailbox, to_mailbox, cc_mailbox, from_display, to_display,"
	" message_id, in_reply_to, refs, preview)"
	" SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17"
	" WHERE EXISTS (SELECT 1 FROM messages WHERE id = ?1)";
static const char SQL_SUMMARY_COPY[] =
	"INSERT OR IGNORE INTO summaries(id, user_id, emailid, threadid, msgid, sent_date,"
	" envelope, subject, from_mailbox, to_mailbox, cc_mailbox, from_display, to_display,"
	" message_id, in_reply_to, refs, preview)"
	" SELECT ?1, user_id, emailid, threadid, msgid, sent_date,"
	" envelope, subject, from_mailbox, to_mailbox, cc_mailbox, from_display, to_display,"
	" message_id, in_reply_to, refs, preview FROM summaries WHERE id = ?2";
static const char SQL_THREAD_BY_MSGID[] =
	"SELECT threadid FROM summaries WHERE user_id = ?1 AND msgid = ?2 LIMIT 1";
static const char SQL_SUMMARY_LIST[] =
	"SELECT m.id, m.uid, m.internal_date, m.size, coalesce(m.savedate, m.internal_date),"
	" m.file, s.id, s.sent_date, s.envelope, s.subject, s.from_mailbox, s.to_mailbox,"
	" s.cc_mailbox, s.from_display, s.to_display, s.message_id, s.in_reply_to, s.refs,"
	" s.preview, s.emailid, s.threadid"
	" FROM messages m LEFT JOIN summaries s ON s.id = m.id"
	" WHERE m.mailbox_id = ?1 AND m.uid >= ?2 AND m.uid <= ?3 ORDER BY m.uid";
static const char SQL_SUMMARY_MISSING[] =
	"SELECT m.id, m.uid, m.file, m.size, b.user_id FROM messages m"
	" JOIN mailboxes b ON b.id = m.mailbox_id"
	" WHERE m.mailbox_id = ?1 AND m.uid >= ?2 AND m.uid <= ?3"
	" AND NOT EXISTS (SELECT 1 FROM summaries s WHERE s.id = m.id)"
	" ORDER BY m.uid LIMIT " "256";
_Static_assert(SUMMARY_BACKFILL_CHUNK == 256, "SQL_SUMMARY_MISSING's LIMIT");

/* ------------------------------------------------------------ computing */

/* Length of the header section as FETCH ENVELOPE takes it
 * (imap/cmd-fetch.c): through the first empty line, the whole message if
 * there is none. */
static size_t envelope_header_len(const char *p, size_t len)
{
	if (len >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	const char *e = len >= 4 ? memmem(p, len, "\r\n\r\n", 4) : NULL;
	return e != NULL ? (size_t)(e - p) + 4 : len;
}

/* s as valid UTF-8 with every control character (CR, LF, NUL, TAB...) a
 * space and the ends trimmed; takes ownership of s. */
static char *text_clean(char *s)
{
	struct buf b;
	size_t start = 0, end;

	buf_init(&b, BUF_UNLIMITED);
	charset_utf8_sanitize(s, strlen(s), &b);
	free(s);
	char *t = buf_steal(&b);
	for (char *p = t; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	end = strlen(t);
	while (start < end && t[start] == ' ')
		start++;
	while (end > start && t[end - 1] == ' ')
		end--;
	memmove(t, t + start, end - start);
	t[end - start] = '\0';
	buf_free(&b);
	return t;
}

/* The unfolded, cleaned value of the first field name, "" when absent. */
static char *field_text(const char *hdr, size_t len, const char *name)
{
	struct header_field f;

	if (!header_find(hdr, len, name, &f, NULL))
		return xstrdup("");
	return text_clean(header_value_unfold(f.value));
}

/* The first address of a list, for SORT and DISPLAYFROM. */
struct first_addr {
	bool found;
	char *mailbox;          /* local part as written, "" none */
	char *display;          /* RFC 5957 display form */
};

static void first_addr_cb(void *ctx, const struct address_item *it)
{
	struct first_addr *a = ctx;

	if (a->found || it->group_start || it->group_end)
		return;
	a->found = true;
	a->mailbox = text_clean(xstrdup(it->mailbox ? it->mailbox : ""));
	if (it->name != NULL) {
		char *name = text_clean(rfc2047_decode_str(it->name, strlen(it->name)));
		if (name[0] != '\0') {
			a->display = name;
			return;
		}
		free(name);
	}
	if (it->mailbox != NULL && it->domain != NULL)
		a->display = text_clean(xasprintf("%s@%s", it->mailbox, it->domain));
	else
		a->display = text_clean(xstrdup(it->mailbox ? it->mailbox : ""));
}

static void first_address(const char *hdr, size_t len, const char *name, char **mailbox_r,
			  char **display_r)
{
	struct header_field f;
	struct first_addr a = { 0 };

	/* groups come first in the list as items; a handful is enough to
	 * reach the first real address */
	if (header_find(hdr, len, name, &f, NULL))
		address_parse_list_display(f.value.p, f.value.len, 64, first_addr_cb, &a);
	*mailbox_r = a.mailbox ? a.mailbox : xstrdup("");
	if (display_r != NULL)
		*display_r = a.display ? a.display : xstrdup("");
	else
		free(a.display);
}

/* The next "<...>" in s from *pos (as a malloc'd copy), or NULL. */
static char *next_msgid(const char *s, size_t *pos)
{
	const char *lt = strchr(s + *pos, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;

	if (gt == NULL) {
		*pos = strlen(s);
		return NULL;
	}
	*pos = (size_t)(gt - s) + 1;
	return xstrndup(lt, (size_t)(gt - lt) + 1);
}

struct store_summary_data *store_summary_compute(const char *prefix, size_t prefix_len,
						 const char *msg, size_t len)
{
	struct store_summary_data *sd = xcalloc(1, sizeof(*sd));
	size_t hl = envelope_header_len(msg, len);
	struct buf joined, env;
	const char *hdr = msg;
	size_t hlen = hl;
	struct header_field f;

	buf_init(&joined, BUF_UNLIMITED);
	if (prefix_len > 0) {
		buf_append(&joined, prefix, prefix_len);
		buf_append(&joined, msg, hl);
		hdr = buf_cstr(&joined);
		hlen = joined.len;
	}
	buf_init(&env, BUF_UNLIMITED);
	imap_envelope_write(&env, hdr, hlen);
	sd->envelope = buf_steal(&env);
	buf_free(&env);

	if (header_find(hdr, hlen, "Date", &f, NULL)) {
		char *v = header_value_unfold(f.value);
		sd->has_sent_date = date_parse_rfc5322(v, strlen(v), &sd->sent_date, NULL) == 0;
		free(v);
	}
	if (header_find(hdr, hlen, "Subject", &f, NULL))
		sd->subject = text_clean(rfc2047_decode_str(f.value.p, f.value.len));
	else
		sd->subject = xstrdup("");
	first_address(hdr, hlen, "From", &sd->from_mailbox, &sd->from_display);
	first_address(hdr, hlen, "To", &sd->to_mailbox, &sd->to_display);
	first_address(hdr, hlen, "Cc", &sd->cc_mailbox, NULL);
	sd->message_id = field_text(hdr, hlen, "Message-ID");
	sd->in_reply_to = field_text(hdr, hlen, "In-Reply-To");
	sd->references = field_text(hdr, hlen, "References");
	size_t pos = 0;
	sd->msgid = next_msgid(sd->message_id, &pos);
	if (sd->msgid == NULL)
		sd->msgid = xstrdup("");
	buf_free(&joined);
	sd->preview = preview_from_message(msg, len);
	return sd;
}

void store_summary_data_free(struct store_summary_data **sdp)
{
	struct store_summary_data *sd = *sdp;

	if (sd == NULL)
		return;
	free(sd->envelope);
	free(sd->subject);
	free(sd->from_mailbox);
	free(sd->to_mailbox);
	free(sd->cc_mailbox);
	free(sd->from_display);
	free(sd->to_display);
	free(sd->message_id);
	free(sd->in_reply_to);
	free(sd->references);
	free(sd->preview);
	free(sd->msgid);
	free(sd);
	*sdp = NULL;
}

/* ----------------------------------------------------------- the writer */

/* The THREADID of the user's message with Message-ID id: 1 (malloc'd in
 * *threadid_r), 0 none, <0 error. */
static int thread_of(struct store *store, int64_t user_id, const char *id, char **threadid_r,
		     char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, SQL_THREAD_BY_MSGID, error_r);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*threadid_r = store_col_dup(st, 0);
	else if (rc != SQLITE_DONE)
		*error_r = store_sqlerr_dup(c, "finding a thread");
	sqlite3_reset(st);
	if (rc == SQLITE_ROW && *threadid_r != NULL)
		return 1;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* Candidates in order: own Message-ID, In-Reply-To, then References from
 * the last (the parent) back; at most SUMMARY_THREAD_LOOKUPS lookups. */
static int thread_find(struct store *store, int64_t user_id, const struct store_summary_data *sd,
		       char **threadid_r, char **error_r)
{
	char **refs = NULL;
	size_t nrefs = 0, pos = 0, lookups = 0;
	char *id;
	int rc = 0;

	if (sd->msgid[0] != '\0') {
		rc = thread_of(store, user_id, sd->msgid, threadid_r, error_r);
		lookups++;
	}
	while (rc == 0 && lookups < SUMMARY_THREAD_LOOKUPS / 2 &&
	       (id = next_msgid(sd->in_reply_to, &pos)) != NULL) {
		rc = thread_of(store, user_id, id, threadid_r, error_r);
		lookups++;
		free(id);
	}
	pos = 0;
	while (rc == 0 && (id = next_msgid(sd->references, &pos)) != NULL) {
		refs = xrealloc(refs, (nrefs + 1) * sizeof(*refs));
		refs[nrefs++] = id;
	}
	for (size_t i = nrefs; rc == 0 && i > 0 && lookups < SUMMARY_THREAD_LOOKUPS; i--) {
		rc = thread_of(store, user_id, refs[i - 1], threadid_r, error_r);
		lookups++;
	}
	for (size_t i = 0; i < nrefs; i++)
		free(refs[i]);
	free(refs);
	return rc;
}

int store_summary_insert(struct store *store, int64_t msg_row, int64_t user_id,
			 const char *file, const struct store_summary_data *sd, char **error_r)
{
	struct store_conn *c = &store->wconn;
	char *threadid = NULL, *emailid;
	sqlite3_stmt *st;
	int rc = thread_find(store, user_id, sd, &threadid, error_r);

	if (rc < 0)
		return -1;
	if (rc == 0)
		threadid = xasprintf("T%s", file);
	emailid = xasprintf("M%s", file);
	if ((st = store_wstmt(c, SQL_SUMMARY_INSERT, error_r)) == NULL) {
		free(threadid);
		free(emailid);
		return -1;
	}
	sqlite3_bind_int64(st, 1, msg_row);
	sqlite3_bind_int64(st, 2, user_id);
	sqlite3_bind_text(st, 3, emailid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, threadid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, sd->msgid, -1, SQLITE_STATIC);
	if (sd->has_sent_date)
		sqlite3_bind_int64(st, 6, (sqlite3_int64)sd->sent_date);
	else
		sqlite3_bind_null(st, 6);
	const char *texts[] = {
		sd->envelope, sd->subject, sd->from_mailbox, sd->to_mailbox, sd->cc_mailbox,
		sd->from_display, sd->to_display, sd->message_id, sd->in_reply_to,
		sd->references, sd->preview,
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		sqlite3_bind_text(st, 7 + (int)i, texts[i], -1, SQLITE_STATIC);
	rc = store_step_done(c, st, error_r);
	free(threadid);
	free(emailid);
	return rc;
}

int store_summary_copy(struct store *store, int64_t dst_row, int64_t src_row, char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, SQL_SUMMARY_COPY, error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, dst_row);
	sqlite3_bind_int64(st, 2, src_row);
	return store_step_done(c, st, error_r);
}

/* ------------------------------------------------------------ listing */

/* The stored file as the index records it (its first size bytes);
 * malloc'd, -1 when it cannot be read. */
static int read_message(struct store *store, const char *file, int64_t size, char **data_r,
			size_t *len_r)
{
	char *path = store_message_path(store, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t want = size > 0 ? (size_t)size : 0;
	struct buf data;
	long got;

	free(path);
	if (fd < 0)
		return -1;
	buf_init(&data, BUF_UNLIMITED);
	got = buf_append_file(&data, fd, want);
	close(fd);
	if (got < 0 || (size_t)got < want) {
		buf_free(&data);
		return -1;
	}
	*len_r = data.len;
	*data_r = buf_steal(&data);
	return 0;
}

/* One legacy row being summarised. */
struct backfill_row {
	int64_t id, user_id;
	uint32_t uid;
	int64_t size;
	char *file;
	struct store_summary_data *sd;
};

struct backfill_op {
	struct store_op op;     /* first: the commit thread hands us &op */
	struct backfill_row *rows;
	size_t count;
};

static int op_backfill(struct store *store, struct store_op *op, char **error_r)
{
	struct backfill_op *b = (struct backfill_op *)op;

	for (size_t i = 0; i < b->count; i++) {
		if (b->rows[i].sd == NULL)
			continue;
		if (store_summary_insert(store, b->rows[i].id, b->rows[i].user_id, b->rows[i].file,
					 b->rows[i].sd, error_r) < 0)
			return -1;
	}
	return 0;
}

static void backfill_free(struct backfill_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].file);
		store_summary_data_free(&rows[i].sd);
	}
	free(rows);
}

/* Summarise and save up to SUMMARY_BACKFILL_CHUNK rows without a summary
 * from uid from.  0 with *count_r of them and *last_uid_r the last UID
 * looked at (when *count_r > 0), or -1 when they cannot be saved. */
static int backfill(struct store *store, struct store_conn *c, int64_t mailbox_id,
		    uint32_t from, uint32_t to, uint32_t *last_uid_r, size_t *count_r,
		    const char **error_r)
{
	sqlite3_stmt *st = store_stmt(c, SQL_SUMMARY_MISSING, error_r);
	struct backfill_row *rows;
	size_t n = 0;
	int rc;

	if (st == NULL)
		return -1;
	rows = xcalloc(SUMMARY_BACKFILL_CHUNK, sizeof(*rows));
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	while (n < SUMMARY_BACKFILL_CHUNK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct backfill_row *r = &rows[n++];
		r->id = sqlite3_column_int64(st, 0);
		r->uid = (uint32_t)sqlite3_column_int64(st, 1);
		r->file = store_col_dup(st, 2);
		r->user_id = sqlite3_column_int64(st, 4);
		if (r->file == NULL)
			r->file = xstrdup("");
		r->size = sqlite3_column_int64(st, 3);
	}
	if (n < SUMMARY_BACKFILL_CHUNK && rc != SQLITE_DONE) {
		*error_r = store_sqlerr(c, "listing messages without a summary");
		sqlite3_reset(st);
		backfill_free(rows, n);
		return -1;
	}
	/* no read transaction may stay open while the commit thread writes */
	sqlite3_reset(st);
	*last_uid_r = n > 0 ? rows[n - 1].uid : from;
	*count_r = n;
	for (size_t i = 0; i < n; i++) {
		char *data;
		size_t len;

		if (read_message(store, rows[i].file, rows[i].size, &data, &len) < 0)
			continue;       /* served unsaved; retried by a later listing */
		rows[i].sd = store_summary_compute(NULL, 0, data, len);
		free(data);
	}
	rc = 0;
	if (n > 0) {
		struct backfill_op b = { .op = { .fn = op_backfill }, .rows = rows, .count = n };
		rc = store_run_op(store, &b.op, error_r);
		if (rc == 0)
			log_info("store", "event=summaries_backfilled mailbox_id=%lld messages=%zu",
				 (long long)mailbox_id, n);
	}
	backfill_free(rows, n);
	return rc;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return s != NULL ? s : "";
}

/* The summary of a row that has none saved, computed from its file
 * (or from nothing when the file cannot be read). */
static int unsaved_summary(struct store *store, sqlite3_stmt *st, struct store_summary *s,
			   int (*cb)(void *ctx, const struct store_summary *s), void *ctx)
{
	const char *file = col_text(st, 5);
	char *data = NULL;
	size_t len = 0;

	if (read_message(store, file, sqlite3_column_int64(st, 3), &data, &len) < 0) {
		data = xstrdup("");
		len = 0;
	}
	struct store_summary_data *sd = store_summary_compute(NULL, 0, data, len);
	free(data);
	char *emailid = xasprintf("M%s", file), *threadid = xasprintf("T%s", file);
	s->sent_date = sd->has_sent_date ? sd->sent_date : s->internal_date;
	s->envelope = sd->envelope;
	s->subject = sd->subject;
	s->from_mailbox = sd->from_mailbox;
	s->to_mailbox = sd->to_mailbox;
	s->cc_mailbox = sd->cc_mailbox;
	s->from_display = sd->from_display;
	s->to_display = sd->to_display;
	s->message_id = sd->message_id;
	s->in_reply_to = sd->in_reply_to;
	s->references = sd->references;
	s->preview = sd->preview;
	s->emailid = emailid;
	s->threadid = threadid;
	int stop = cb(ctx, s);
	free(emailid);
	free(threadid);
	store_summary_data_free(&sd);
	return stop;
}

int store_summary_list(struct store *store, int64_t mailbox_id, uint32_t min_uid,
		       uint32_t max_uid, int (*cb)(void *ctx, const struct store_summary *s),
		       void *ctx, const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	uint64_t next = min_uid, to = max_uid ? max_uid : UINT32_MAX;
	/* rows below this UID without a summary are served unsaved */
	uint64_t unsaved_below = 0;
	bool can_save = store->thread_started &&
		!pthread_equal(pthread_self(), store->thread);

	if (c == NULL)
		return -1;
	if (!can_save)
		unsaved_below = UINT64_MAX;
	while (next <= to) {
		sqlite3_stmt *st = store_stmt(c, SQL_SUMMARY_LIST, error_r);
		int rc, stop = 0;
		bool need_backfill = false;

		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)next);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)to);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct store_summary s = {
				.uid = (uint32_t)sqlite3_column_int64(st, 1),
				.internal_date = (time_t)sqlite3_column_int64(st, 2),
				.size = sqlite3_column_int64(st, 3),
				.savedate = (time_t)sqlite3_column_int64(st, 4),
			};
			if (sqlite3_column_type(st, 6) == SQLITE_NULL) {
				if (s.uid >= unsaved_below) {
					next = s.uid;
					need_backfill = true;
					break;
				}
				if ((stop = unsaved_summary(store, st, &s, cb, ctx)) != 0)
					break;
				continue;
			}
			s.sent_date = sqlite3_column_type(st, 7) == SQLITE_NULL ? s.internal_date :
				(time_t)sqlite3_column_int64(st, 7);
			s.envelope = col_text(st, 8);
			s.subject = col_text(st, 9);
			s.from_mailbox = col_text(st, 10);
			s.to_mailbox = col_text(st, 11);
			s.cc_mailbox = col_text(st, 12);
			s.from_display = col_text(st, 13);
			s.to_display = col_text(st, 14);
			s.message_id = col_text(st, 15);
			s.in_reply_to = col_text(st, 16);
			s.references = col_text(st, 17);
			s.preview = col_text(st, 18);
			s.emailid = col_text(st, 19);
			s.threadid = col_text(st, 20);
			if ((stop = cb(ctx, &s)) != 0)
				break;
		}
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			*error_r = store_sqlerr(c, "listing summaries");
			sqlite3_reset(st);
			return -1;
		}
		sqlite3_reset(st);
		if (!need_backfill)
			return 0;
		/* Rows stored before schema 4: summarise and save them in UID
		 * order from the mailbox's first one (a reply usually follows
		 * its parent, so THREADID finds it), a chunk at a time, until
		 * the row we stopped at is done; then go on from that row
		 * (nothing before it was skipped). */
		uint32_t from = 0, last = 0;
		size_t n;
		const char *err;
		for (;;) {
			if (backfill(store, c, mailbox_id, from, UINT32_MAX, &last, &n, &err) < 0) {
				log_warn("store", "event=summary_backfill_failed mailbox_id=%lld "
					 "error=%s", (long long)mailbox_id, log_quote(err));
				last = UINT32_MAX;
				break;
			}
			if (n == 0 || last >= next || last == UINT32_MAX)
				break;  /* none left, or past the row we stopped at */
			from = last + 1;
		}
		unsaved_below = (uint64_t)(last > next ? last : next) + 1;
	}
	return 0;
}
