/* SEARCH / UID SEARCH (RFC 9051 6.4.4, RFC 3501 6.4.4): evaluation of the
 * parsed search program over the selected mailbox's view, with ESEARCH
 * results (RFC 4731, RFC 9051 7.3.4) and the CONDSTORE MODSEQ criterion
 * (RFC 7162 3.1.5).
 *
 * Keys answered from the view: ALL, sequence sets, UID, the flag keys,
 * KEYWORD / UNKEYWORD, NEW OLD RECENT, LARGER / SMALLER, BEFORE / ON /
 * SINCE (internal date, in UTC days), MODSEQ, AND / OR / NOT.
 * BCC CC FROM SUBJECT TO HEADER BODY TEXT are answered by the store's
 * full-text index (store/search.h: substring of decoded text, compared
 * with i;unicode-casemap folding): each such key is looked up once, before
 * the walk over the view, into a sorted UID list.  SENTBEFORE / SENTON /
 * SENTSINCE read the Date field of the message header (only the header
 * section of the file), compare the date as written there (time and zone
 * disregarded, RFC 3501 6.4.4) and fall back to the internal date when
 * the field is missing or unparseable, as Dovecot does.
 *
 * Results: "* SEARCH n..." in rev1 (with "(MODSEQ n)" when a MODSEQ key
 * was used, RFC 7162 3.1.5); "* ESEARCH (TAG "t") [UID] MIN MAX COUNT ALL
 * [MODSEQ]" for RETURN (...) and always after ENABLE IMAP4rev2.
 * RETURN (SAVE) keeps the result as the view's "$" (RFC 5182); OLDER and
 * YOUNGER (RFC 5032) compare the internal date with lib/clock's now. */
#include "imap/imap-private.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "mail/date.h"
#include "mail/header.h"
#include "mail/imap-string.h"
#include "store/search.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEARCH_HEADER_READ_MAX (1024 * 1024) /* header bytes read for SENT* */

/* Resolve every set in the tree against the current view, in place. */
static void resolve_sets(struct imap_session *s, struct imap_search_key *k)
{
	struct imap_view *v = s->view;

	if ((k->type == IMAP_SK_SEQSET || k->type == IMAP_SK_UID) && k->set.saved) {
		/* RFC 5182: "$" is the saved result, the same messages either way */
		imap_view_saved_set(s, &k->set);
		k->type = IMAP_SK_UID;
	} else if (k->type == IMAP_SK_SEQSET) {
		struct imap_seqset r;
		imap_seqset_resolve(&k->set, v->count, &s->arena, &r);
		k->set = r;
	} else if (k->type == IMAP_SK_UID) {
		struct imap_seqset r;
		imap_seqset_resolve(&k->set, v->count ? v->msgs[v->count - 1].uid : 0, &s->arena,
				    &r);
		k->set = r;
	}
	for (size_t i = 0; i < k->count; i++)
		resolve_sets(s, &k->children[i]);
}

/* A text key's answer from the index. */
struct text_hits {
	const struct imap_search_key *key;
	uint32_t *uids;             /* ascending */
	size_t count, alloc;
};

struct search_ctx {
	struct imap_session *s;
	struct text_hits *texts;
	size_t ntexts, texts_alloc;
	int64_t *sent_day;          /* per message: day of the Date field, INT64_MIN unknown */
	time_t now;                 /* OLDER / YOUNGER reference */
	bool sums_loaded;           /* the view's summary facts (SAVED*, *ID) asked for */
};

static int text_hit(void *ctx, uint32_t uid)
{
	struct text_hits *t = ctx;

	if (t->count == t->alloc) {
		t->alloc = t->alloc ? t->alloc * 2 : 64;
		t->uids = xrealloc(t->uids, t->alloc * sizeof(*t->uids));
	}
	t->uids[t->count++] = uid;
	return 0;
}

static bool text_key(enum imap_search_type t, enum store_search_field *f_r)
{
	switch (t) {
	case IMAP_SK_BCC: *f_r = STORE_SEARCH_BCC; return true;
	case IMAP_SK_CC: *f_r = STORE_SEARCH_CC; return true;
	case IMAP_SK_FROM: *f_r = STORE_SEARCH_FROM; return true;
	case IMAP_SK_TO: *f_r = STORE_SEARCH_TO; return true;
	case IMAP_SK_SUBJECT: *f_r = STORE_SEARCH_SUBJECT; return true;
	case IMAP_SK_HEADER: *f_r = STORE_SEARCH_HEADER; return true;
	case IMAP_SK_BODY: *f_r = STORE_SEARCH_BODY; return true;
	case IMAP_SK_TEXT: *f_r = STORE_SEARCH_TEXT; return true;
	default: return false;
	}
}

/* Look every text key of the tree up in the index.  0, -1 with *error_r
 * (store failure), -2 when a needle is not UTF-8 (BADCHARSET). */
static int lookup_texts(struct search_ctx *c, const struct imap_search_key *k,
			const char **error_r)
{
	enum store_search_field f;

	if (text_key(k->type, &f)) {
		struct slice needle = k->type == IMAP_SK_HEADER ? k->str2 : k->str;
		char *n, *hname = NULL;
		int rc;

		if (!imap_utf8_valid(needle))
			return -2;
		if (c->ntexts == c->texts_alloc) {
			c->texts_alloc = c->texts_alloc ? c->texts_alloc * 2 : 8;
			c->texts = xrealloc(c->texts, c->texts_alloc * sizeof(*c->texts));
		}
		struct text_hits *t = &c->texts[c->ntexts++];
		*t = (struct text_hits){ .key = k };
		n = slice_dup(needle);
		if (k->type == IMAP_SK_HEADER)
			hname = slice_dup(k->str);
		rc = store_search_text(c->s->l->store, c->s->view->mailbox_id, f, hname, n, text_hit,
				       t, error_r);
		free(n);
		free(hname);
		if (rc < 0)
			return -1;
	}
	for (size_t i = 0; i < k->count; i++) {
		int rc = lookup_texts(c, &k->children[i], error_r);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static bool text_matches(const struct search_ctx *c, const struct imap_search_key *k,
			 uint32_t uid)
{
	for (size_t i = 0; i < c->ntexts; i++) {
		const struct text_hits *t = &c->texts[i];
		if (t->key != k)
			continue;
		size_t lo = 0, hi = t->count;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (t->uids[mid] < uid)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo < t->count && t->uids[lo] == uid;
	}
	return false;
}

/* Message seq's summary facts from the view's cache (filled for the whole
 * view with one store query the first time); NULL when the store has none. */
static const struct imap_msg_sum *summary_of(struct search_ctx *c, uint32_t seq)
{
	const char *error = NULL;

	if (!c->sums_loaded) {
		c->sums_loaded = true;
		if (imap_view_summaries(c->s, NULL, 0, &error) < 0)
			log_warn("imap", "sid=%s event=summary_failed error=%s", c->s->c.id,
				 log_quote(error ? error : ""));
	}
	return c->s->view->msgs[seq - 1].sum;
}

static bool id_is(const char *id, struct slice want)
{
	return id != NULL && strlen(id) == want.len && memcmp(id, want.p, want.len) == 0;
}

static int64_t day_of(time_t t)
{
	return (int64_t)(t >= 0 ? t / 86400 : (t - 86399) / 86400);
}

/* The day (days since the epoch) of the message's Date field as written
 * there, or of its internal date when it has none we can parse. */
static int64_t sent_day(struct search_ctx *c, uint32_t seq, const struct imap_msg *m)
{
	struct buf h;
	struct header_field f;
	time_t t;
	int tz = 0, fd;
	int64_t day = day_of(m->internal_date);
	char chunk[8192];

	if (c->sent_day == NULL) {
		size_t n = c->s->view->count ? c->s->view->count : 1;
		c->sent_day = xmalloc(n * sizeof(*c->sent_day));
		for (size_t i = 0; i < n; i++)
			c->sent_day[i] = INT64_MIN;
	}
	if (c->sent_day[seq - 1] != INT64_MIN)
		return c->sent_day[seq - 1];
	fd = open(m->path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		buf_init(&h, BUF_UNLIMITED);
		/* the header section only: stop at its end or at the cap */
		while (h.len < SEARCH_HEADER_READ_MAX) {
			ssize_t r = read(fd, chunk, sizeof(chunk));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			buf_append(&h, chunk, (size_t)r);
			if (header_section_length(buf_cstr(&h), h.len) < h.len)
				break;
		}
		close(fd);
		if (header_find(buf_cstr(&h), h.len, "Date", &f, NULL) == 1 &&
		    date_parse_rfc5322(f.value.p, f.value.len, &t, &tz) == 0)
			day = day_of(t + (time_t)tz * 60);
		buf_free(&h);
	}
	c->sent_day[seq - 1] = day;
	return day;
}

/* 1 match, 0 no match. */
static int key_eval(struct search_ctx *s, const struct imap_search_key *k, uint32_t seq,
		    const struct imap_msg *m)
{
	int64_t day = day_of(m->internal_date);
	enum store_search_field f;
	int r;

	switch (k->type) {
	case IMAP_SK_AND:
		for (size_t i = 0; i < k->count; i++) {
			r = key_eval(s, &k->children[i], seq, m);
			if (r <= 0)
				return r;
		}
		return 1;
	case IMAP_SK_OR: {
		int a = key_eval(s, &k->children[0], seq, m);
		int b = key_eval(s, &k->children[1], seq, m);
		if (a < 0 || b < 0)
			return -1;
		return a || b;
	}
	case IMAP_SK_NOT:
		r = key_eval(s, &k->children[0], seq, m);
		return r < 0 ? r : !r;
	case IMAP_SK_SEQSET:
		return imap_seqset_contains(&k->set, seq);
	case IMAP_SK_UID:
		return imap_seqset_contains(&k->set, m->uid);
	case IMAP_SK_ALL:
		return 1;
	case IMAP_SK_ANSWERED: return imap_msg_has_flag(m, "\\Answered");
	case IMAP_SK_DELETED: return imap_msg_has_flag(m, "\\Deleted");
	case IMAP_SK_DRAFT: return imap_msg_has_flag(m, "\\Draft");
	case IMAP_SK_FLAGGED: return imap_msg_has_flag(m, "\\Flagged");
	case IMAP_SK_SEEN: return imap_msg_has_flag(m, "\\Seen");
	case IMAP_SK_UNANSWERED: return !imap_msg_has_flag(m, "\\Answered");
	case IMAP_SK_UNDELETED: return !imap_msg_has_flag(m, "\\Deleted");
	case IMAP_SK_UNDRAFT: return !imap_msg_has_flag(m, "\\Draft");
	case IMAP_SK_UNFLAGGED: return !imap_msg_has_flag(m, "\\Flagged");
	case IMAP_SK_UNSEEN: return !imap_msg_has_flag(m, "\\Seen");
	case IMAP_SK_RECENT: return m->recent;
	case IMAP_SK_OLD: return !m->recent;
	case IMAP_SK_NEW: return m->recent && !imap_msg_has_flag(m, "\\Seen");
	case IMAP_SK_KEYWORD:
	case IMAP_SK_UNKEYWORD: {
		char *kw = slice_dup(k->str);
		bool has = imap_msg_has_flag(m, kw);
		free(kw);
		return k->type == IMAP_SK_KEYWORD ? has : !has;
	}
	case IMAP_SK_LARGER:
		return (uint64_t)m->size > k->number;
	case IMAP_SK_SMALLER:
		return (uint64_t)m->size < k->number;
	case IMAP_SK_BEFORE:
		return day < imap_date_days(&k->date);
	case IMAP_SK_ON:
		return day == imap_date_days(&k->date);
	case IMAP_SK_SINCE:
		return day >= imap_date_days(&k->date);
	case IMAP_SK_SENTBEFORE:
		return sent_day(s, seq, m) < imap_date_days(&k->date);
	case IMAP_SK_SENTON:
		return sent_day(s, seq, m) == imap_date_days(&k->date);
	case IMAP_SK_SENTSINCE:
		return sent_day(s, seq, m) >= imap_date_days(&k->date);
	case IMAP_SK_SAVEDATESUPPORTED:
		return 1;   /* RFC 8514: every mailbox keeps save dates */
	case IMAP_SK_SAVEDBEFORE:
	case IMAP_SK_SAVEDON:
	case IMAP_SK_SAVEDSINCE: {
		const struct imap_msg_sum *sum = summary_of(s, seq);
		/* RFC 8514 5.3: without a save date the internal date counts */
		int64_t sday = day_of(sum != NULL && sum->savedate > 0 ? sum->savedate
								       : m->internal_date);
		int64_t want = imap_date_days(&k->date);
		return k->type == IMAP_SK_SAVEDBEFORE ? sday < want :
		       k->type == IMAP_SK_SAVEDON ? sday == want : sday >= want;
	}
	case IMAP_SK_EMAILID:
	case IMAP_SK_THREADID: {
		const struct imap_msg_sum *sum = summary_of(s, seq);
		return sum != NULL && id_is(k->type == IMAP_SK_EMAILID ? sum->emailid
								     : sum->threadid, k->str);
	}
	case IMAP_SK_OLDER:
		/* RFC 5032 */
		return m->internal_date <= s->now - (time_t)k->number;
	case IMAP_SK_YOUNGER:
		return m->internal_date > s->now - (time_t)k->number;
	case IMAP_SK_MODSEQ:
		/* RFC 7162 3.1.5: modseq >= n; the entry (per-flag modseq) is
		 * answered with the message's modseq, which bounds every entry */
		return m->modseq >= k->number;
	default:
		if (text_key(k->type, &f))
			return text_matches(s, k, m->uid);
		return 0;
	}
}

static void search_ctx_free(struct search_ctx *c)
{
	for (size_t i = 0; i < c->ntexts; i++)
		free(c->texts[i].uids);
	free(c->texts);
	free(c->sent_day);
}

int imap_search_run(struct imap_session *s, struct imap_search_program *prog,
		    uint32_t **seqs_r, size_t *count_r, uint64_t *max_modseq_r)
{
	struct imap_view *v = s->view;
	struct search_ctx c = { .s = s, .now = clock_now() };
	const char *error = NULL;
	uint32_t *hits;
	uint64_t max_modseq = 0;
	size_t n = 0;
	int rc;

	if (prog->uses_modseq)
		imap_condstore_enable(s);   /* RFC 7162 3.1 */
	resolve_sets(s, &prog->root);
	rc = lookup_texts(&c, &prog->root, &error);
	if (rc < 0) {
		search_ctx_free(&c);
		if (rc == -2) {
			imap_tagged(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Search text is not UTF-8");
		} else {
			log_warn("imap", "sid=%s event=search_failed error=%s", s->c.id,
				 log_quote(error ? error : ""));
			imap_tagged(s, "NO", "[SERVERBUG] Search failed, try again later");
		}
		return -1;
	}
	hits = imap_arena_alloc(&s->arena, (size_t)(v->count ? v->count : 1) * sizeof(*hits));
	for (uint32_t i = 0; i < v->count; i++) {
		if (v->msgs[i].expunged || key_eval(&c, &prog->root, i + 1, &v->msgs[i]) <= 0)
			continue;
		hits[n++] = i + 1;
		if (v->msgs[i].modseq > max_modseq)
			max_modseq = v->msgs[i].modseq;
	}
	search_ctx_free(&c);
	*seqs_r = hits;
	*count_r = n;
	if (max_modseq_r != NULL)
		*max_modseq_r = max_modseq;
	return 0;
}

/* RFC 5182 2.1: SAVE with MIN and/or MAX (and neither ALL nor COUNT) keeps
 * just those; otherwise every match.  seqs are ascending. */
static void save_result(struct imap_view *v, unsigned ret, const uint32_t *seqs, size_t n)
{
	bool all = (ret & (IMAP_SEARCH_RET_ALL | IMAP_SEARCH_RET_COUNT)) != 0 ||
		   (ret & (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX)) == 0;

	v->saved_uids = xmalloc((n ? n : 1) * sizeof(*v->saved_uids));
	v->saved_count = 0;
	for (size_t i = 0; i < n; i++) {
		if (!all && !((ret & IMAP_SEARCH_RET_MIN) && i == 0) &&
		    !((ret & IMAP_SEARCH_RET_MAX) && i == n - 1))
			continue;
		v->saved_uids[v->saved_count++] = v->msgs[seqs[i] - 1].uid;
	}
}

void imap_cmd_search(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_search_program prog;
	struct imap_parse_error err;
	struct imap_view *v = s->view;
	uint32_t *hits;
	uint64_t max_modseq = 0;
	size_t n = 0;
	struct buf b;
	int rc;

	rc = imap_search_parse(cmd->args, cmd->nargs, &s->arena, &prog, &err);
	if (prog.ret & IMAP_SEARCH_RET_SAVE) {
		/* RFC 5182 2.1: a failed SEARCH ... SAVE leaves "$" empty */
		free(v->saved_uids);
		v->saved_uids = NULL;
		v->saved_count = 0;
	}
	if (rc < 0) {
		imap_parse_failed(s, &err);
		return;
	}
	if (imap_search_run(s, &prog, &hits, &n, &max_modseq) < 0)
		return;
	if (prog.ret & IMAP_SEARCH_RET_SAVE) {
		save_result(v, prog.ret, hits, n);
		if ((prog.ret & ~IMAP_SEARCH_RET_SAVE) == 0) {
			/* SAVE alone: no ESEARCH response (RFC 5182 2.1) */
			imap_tagged(s, "OK", "%sSEARCH completed, result saved",
				    cmd->uid ? "UID " : "");
			return;
		}
	}
	if (cmd->uid)
		for (size_t i = 0; i < n; i++)
			hits[i] = v->msgs[hits[i] - 1].uid;
	buf_init(&b, BUF_UNLIMITED);
	if (s->rev2 || prog.esearch) {
		/* RFC 4731 3.1, RFC 9051 7.3.4: RETURN () and no RETURN mean ALL */
		unsigned ret = prog.esearch && prog.ret != 0 ? prog.ret : IMAP_SEARCH_RET_ALL;
		buf_append_str(&b, "ESEARCH (TAG ");
		imap_append_string(&b, s->tag != NULL ? s->tag : "", s->tag != NULL ? strlen(s->tag) : 0);
		buf_append_str(&b, ")");
		if (cmd->uid)
			buf_append_str(&b, " UID");
		if ((ret & IMAP_SEARCH_RET_MIN) && n > 0)
			buf_printf(&b, " MIN %u", hits[0]);
		if ((ret & IMAP_SEARCH_RET_MAX) && n > 0)
			buf_printf(&b, " MAX %u", hits[n - 1]);
		if (ret & IMAP_SEARCH_RET_COUNT)
			buf_printf(&b, " COUNT %zu", n);
		if ((ret & IMAP_SEARCH_RET_ALL) && n > 0) {
			buf_append_str(&b, " ALL ");
			imap_append_numset(&b, hits, n);
		}
		/* RFC 7162 3.1.5 */
		if (prog.uses_modseq && n > 0)
			buf_printf(&b, " MODSEQ %llu", (unsigned long long)max_modseq);
	} else {
		buf_append_str(&b, "SEARCH");
		for (size_t i = 0; i < n; i++)
			buf_printf(&b, " %u", hits[i]);
		if (prog.uses_modseq && n > 0)
			buf_printf(&b, " (MODSEQ %llu)", (unsigned long long)max_modseq);
	}
	imap_untagged(s, "%s", buf_cstr(&b));
	buf_free(&b);
	imap_tagged(s, "OK", "%sSEARCH completed", cmd->uid ? "UID " : "");
}
