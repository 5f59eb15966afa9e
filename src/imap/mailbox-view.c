/* The selected mailbox as this session sees it: the sequence number <->
 * UID map, each message's flags as last reported, \Recent, and the
 * pending updates other sessions caused.
 *
 * Invariants:
 *  - msgs[] is in ascending UID order; the sequence number of msgs[i] is
 *    i + 1 and changes only when this session sends an EXPUNGE for an
 *    earlier message (RFC 3501 2.3.1.2), never silently.
 *  - A message removed from the store while the client may not be told
 *    (during FETCH, STORE, SEARCH: RFC 3501 7.4.1) stays in msgs[] marked
 *    expunged, keeping its number, until a command that allows EXPUNGE
 *    ends; EXPUNGEs are sent from the highest number down, so each number
 *    sent is still valid when the client applies it.
 *  - EXISTS never decreases except by the EXPUNGEs sent; a new message
 *    gets the next number and is announced with EXISTS (and RECENT in
 *    rev1) before the tagged reply of the command during which it was seen.
 *  - The view learns of changes through lib/notify.h (dirty) and then
 *    re-reads the store's list; our own writes re-read it too, so every
 *    change is reported exactly once.
 * RFC 3501 / RFC 9051 (2.3.1 message numbers, 2.3.2 \Recent, 5.2 mailbox
 * size and state updates, 5.5 and 7.4.1 when EXPUNGE may be sent). */
#include "imap/imap-private.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/notify.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void imap_msg_free(struct imap_msg *m)
{
	free(m->flags);
	free(m->path);
	free(m->sum);
	m->flags = m->path = NULL;
	m->sum = NULL;
}

static void view_free(struct imap_view *v)
{
	for (uint32_t i = 0; i < v->count; i++)
		imap_msg_free(&v->msgs[i]);
	free(v->msgs);
	free(v->name);
	free(v->objectid);
	free(v->saved_uids);
	free(v);
}

void imap_view_close(struct imap_session *s)
{
	struct imap_view *v = s->view;

	if (v == NULL)
		return;
	if (v->sub != NULL)
		notify_unsubscribe(&v->sub);
	view_free(v);
	s->view = NULL;
	if (s->state == IMAP_STATE_SELECTED)
		s->state = IMAP_STATE_AUTH;
}

static void view_notified(void *ctx, const struct notify_event *ev)
{
	struct imap_session *s = ctx;

	if (s->view == NULL || s->c.closed)
		return;
	if (ev->mailbox_id != s->view->mailbox_id &&
	    !(ev->kinds & NOTIFY_MAILBOX))
		return;
	s->view->dirty = true;
	if (s->idling)
		imap_idle_push(s);
}

/* ---- reading the store ---- */

struct load_ctx {
	struct imap_msg *msgs;
	uint32_t count, alloc;
	bool too_many;
};

static int load_one(void *ctx, const struct store_message *m)
{
	struct load_ctx *c = ctx;

	if (c->count >= IMAP_MAX_VIEW) {
		c->too_many = true;
		return 1;
	}
	if (c->count == c->alloc) {
		c->alloc = c->alloc ? c->alloc * 2 : 64;
		c->msgs = xrealloc(c->msgs, (size_t)c->alloc * sizeof(*c->msgs));
	}
	c->msgs[c->count++] = (struct imap_msg){
		.uid = m->uid,
		.modseq = m->modseq,
		.internal_date = m->internal_date,
		.size = m->size,
		.flags = xstrdup(m->flags != NULL ? m->flags : ""),
		.path = xstrdup(m->path != NULL ? m->path : ""),
	};
	return 0;
}

static int view_load(struct imap_session *s, int64_t mailbox_id, struct load_ctx *c,
		     const char **error_r)
{
	memset(c, 0, sizeof(*c));
	if (store_message_list(s->l->store, mailbox_id, 1, load_one, c, error_r) < 0) {
		for (uint32_t i = 0; i < c->count; i++)
			imap_msg_free(&c->msgs[i]);
		free(c->msgs);
		return -1;
	}
	return 0;
}

int imap_view_open(struct imap_session *s, const char *name, bool readonly,
		   const char **error_r)
{
	struct store_mailbox mb = { 0 };
	struct imap_view *v;
	struct load_ctx c;
	uint32_t first_recent = 0;
	int rc;

	rc = store_mailbox_get(s->l->store, s->user_id, name, &mb, error_r);
	if (rc <= 0)
		return rc;
	if (view_load(s, mb.id, &c, error_r) < 0) {
		store_mailbox_clear(&mb);
		return -1;
	}
	v = xcalloc(1, sizeof(*v));
	v->mailbox_id = mb.id;
	v->name = xstrdup(mb.name);
	v->objectid = mb.objectid != NULL ? xstrdup(mb.objectid) : NULL;
	v->readonly = readonly;
	v->uidvalidity = mb.uidvalidity;
	v->uidnext = mb.uidnext;
	v->highestmodseq = mb.highestmodseq;
	v->synced_modseq = mb.highestmodseq;   /* read before the list: never ahead of it */
	v->msgs = c.msgs;
	v->count = c.count;
	v->alloc = c.alloc;
	store_mailbox_clear(&mb);
	if (c.count > 0 && c.msgs[c.count - 1].uid >= v->uidnext)
		v->uidnext = c.msgs[c.count - 1].uid + 1;
	/* RFC 3501 2.3.2: this session is the first to see messages that
	 * arrived since the last claim; EXAMINE leaves \Recent alone */
	if (!readonly) {
		const char *err = NULL;
		if (store_mailbox_claim_recent(s->l->store, v->mailbox_id, &first_recent, &err) < 0) {
			log_warn("imap", "sid=%s event=claim_recent_failed error=%s", s->c.id,
				 log_quote(err));
			first_recent = UINT32_MAX;
		}
		for (uint32_t i = 0; i < v->count; i++)
			v->msgs[i].recent = v->msgs[i].uid >= first_recent && first_recent > 0;
	}
	v->exists_sent = v->count;
	v->sub = notify_subscribe(s->user_id, s->c.base, view_notified, s);
	s->view = v;
	s->state = IMAP_STATE_SELECTED;
	return 1;
}

/* ---- flags ---- */

bool imap_msg_has_flag(const struct imap_msg *m, const char *flag)
{
	size_t n = strlen(flag);
	const char *p = m->flags;

	while (p != NULL && *p != '\0') {
		size_t len = strcspn(p, " ");
		if (len == n && strncasecmp(p, flag, n) == 0)
			return true;
		p += len;
		while (*p == ' ')
			p++;
	}
	return false;
}

void imap_msg_flags(const struct imap_msg *m, struct buf *out)
{
	buf_append_str(out, "(");
	buf_append_str(out, m->flags != NULL ? m->flags : "");
	if (m->recent)
		buf_append_str(out, m->flags != NULL && m->flags[0] != '\0' ? " \\Recent"
									  : "\\Recent");
	buf_append_str(out, ")");
}

/* ---- sync ---- */

uint32_t imap_view_seq_of(const struct imap_view *v, uint32_t uid)
{
	uint32_t lo = 0, hi = v->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (v->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->count && v->msgs[lo].uid == uid ? lo + 1 : 0;
}

void imap_condstore_enable(struct imap_session *s)
{
	if (s->condstore)
		return;
	s->condstore = true;
	if (s->view != NULL)
		imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest",
			      (unsigned long long)s->view->highestmodseq);
}

/* Under QRESYNC, "* VANISHED uid-set" replaces the EXPUNGEs (RFC 7162 3.2.10). */
static void send_vanished(struct imap_session *s)
{
	struct imap_view *v = s->view;
	uint32_t *uids = xmalloc((size_t)v->count * sizeof(*uids));
	size_t n = 0;
	struct buf b;

	for (uint32_t i = 0; i < v->count; i++)
		if (v->msgs[i].expunged)
			uids[n++] = v->msgs[i].uid;
	buf_init(&b, BUF_UNLIMITED);
	imap_append_numset(&b, uids, n);
	imap_untagged(s, "VANISHED %s", buf_cstr(&b));
	buf_free(&b);
	free(uids);
}

void imap_view_send_expunges(struct imap_session *s)
{
	struct imap_view *v = s->view;
	uint32_t w = 0;
	bool any = false;

	if (v == NULL)
		return;
	for (uint32_t i = v->count; i > 0 && !any; i--)
		any = v->msgs[i - 1].expunged;
	if (!any)
		return;
	if (s->qresync) {
		send_vanished(s);
	} else {
		for (uint32_t i = v->count; i > 0; i--)
			if (v->msgs[i - 1].expunged)
				imap_untagged(s, "%u EXPUNGE", i);
	}
	for (uint32_t i = 0; i < v->count; i++) {
		if (v->msgs[i].expunged)
			imap_msg_free(&v->msgs[i]);
		else
			v->msgs[w++] = v->msgs[i];
	}
	v->count = w;
	v->exists_sent = w;
}

static void send_fetch_flags(struct imap_session *s, uint32_t seq, const struct imap_msg *m)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	buf_printf(&b, "* %u FETCH (", seq);
	if (s->cur_uid)
		buf_printf(&b, "UID %u ", m->uid);
	buf_append_str(&b, "FLAGS ");
	imap_msg_flags(m, &b);
	if (s->condstore)   /* RFC 7162 3.1.4.1 */
		buf_printf(&b, " MODSEQ (%llu)", (unsigned long long)m->modseq);
	buf_append_str(&b, ")\r\n");
	imap_send_raw(s, b.data, b.len);
	buf_free(&b);
}

/* Merge the store's current list into the view.  Flag changes are
 * reported (FETCH) unless quiet; removals are marked; new messages are
 * appended.  Returns the number of new messages. */
static bool skipped(const uint32_t *skip, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (skip[mid] < uid)
			lo = mid + 1;
		else if (skip[mid] > uid)
			hi = mid;
		else
			return true;
	}
	return false;
}

static uint32_t view_merge(struct imap_session *s, struct load_ctx *c, bool quiet,
			   const uint32_t *skip, size_t nskip)
{
	struct imap_view *v = s->view;
	uint32_t i = 0, j = 0, added = 0, old_count = v->count;
	uint32_t first_recent = UINT32_MAX;

	for (; i < old_count; i++) {
		struct imap_msg *m = &v->msgs[i];
		while (j < c->count && c->msgs[j].uid < m->uid)
			j++;   /* cannot happen (UIDs only grow) */
		if (j >= c->count || c->msgs[j].uid != m->uid) {
			m->expunged = true;
			continue;
		}
		if (m->expunged) {
			j++;
			continue;
		}
		struct imap_msg *n = &c->msgs[j++];
		m->modseq = n->modseq;
		if (strcmp(m->flags, n->flags) != 0) {
			free(m->flags);
			m->flags = n->flags;
			n->flags = NULL;
			if (!quiet && !skipped(skip, nskip, m->uid))
				send_fetch_flags(s, i + 1, m);
		}
	}
	/* new messages: everything past the last UID we had */
	uint32_t last_uid = old_count > 0 ? v->msgs[old_count - 1].uid : 0;
	for (j = 0; j < c->count && c->msgs[j].uid <= last_uid; j++)
		;
	if (j < c->count && !v->readonly) {
		const char *err = NULL;
		uint32_t mark = 0;
		if (store_mailbox_claim_recent(s->l->store, v->mailbox_id, &mark, &err) == 0 &&
		    mark > 0)
			first_recent = mark;
	}
	for (; j < c->count; j++) {
		if (v->count == v->alloc) {
			v->alloc = v->alloc ? v->alloc * 2 : 64;
			v->msgs = xrealloc(v->msgs, (size_t)v->alloc * sizeof(*v->msgs));
		}
		v->msgs[v->count] = c->msgs[j];
		v->msgs[v->count].recent = c->msgs[j].uid >= first_recent;
		c->msgs[j].flags = c->msgs[j].path = NULL;
		v->count++;
		added++;
	}
	for (j = 0; j < c->count; j++)
		imap_msg_free(&c->msgs[j]);
	free(c->msgs);
	c->msgs = NULL;
	if (v->count > 0 && v->msgs[v->count - 1].uid >= v->uidnext)
		v->uidnext = v->msgs[v->count - 1].uid + 1;
	return added;
}

static void view_report(struct imap_session *s, bool allow_expunge)
{
	struct imap_view *v = s->view;

	if (allow_expunge)
		imap_view_send_expunges(s);
	if (v->count != v->exists_sent) {
		uint32_t recent = 0;
		imap_untagged(s, "%u EXISTS", v->count);
		if (!s->rev2) {
			for (uint32_t i = 0; i < v->count; i++)
				recent += v->msgs[i].recent;
			imap_untagged(s, "%u RECENT", recent);
		}
		v->exists_sent = v->count;
	}
}

struct expunged_ctx {
	struct imap_view *v;
};

static int mark_expunged(void *ctx, uint32_t uid)
{
	struct expunged_ctx *c = ctx;
	uint32_t seq = imap_view_seq_of(c->v, uid);

	if (seq > 0)
		c->v->msgs[seq - 1].expunged = true;
	return 0;
}

/* Merge only what changed since the view's synced modseq: the rows whose
 * modseq is higher (flag changes and new messages) and the expunge
 * history.  Both are idempotent, so a change committed while we read is
 * merely seen twice.  false when the result does not add up (then the
 * caller reloads everything). */
static bool view_merge_changes(struct imap_session *s, uint32_t store_count, bool quiet,
			       const uint32_t *skip, size_t nskip)
{
	struct imap_view *v = s->view;
	struct load_ctx c;
	struct expunged_ctx e = { v };
	const char *error = NULL;
	uint32_t last_uid = v->count > 0 ? v->msgs[v->count - 1].uid : 0, live = 0;
	uint32_t first_recent = UINT32_MAX;
	bool claimed = false;

	memset(&c, 0, sizeof(c));
	if (store_message_list_changed(s->l->store, v->mailbox_id, v->synced_modseq, load_one,
				       &c, &error) < 0 ||
	    store_expunged_since(s->l->store, v->mailbox_id, v->synced_modseq, mark_expunged, &e,
				 &error) < 0) {
		for (uint32_t j = 0; j < c.count; j++)
			imap_msg_free(&c.msgs[j]);
		free(c.msgs);
		return false;
	}
	for (uint32_t j = 0; j < c.count; j++) {
		struct imap_msg *n = &c.msgs[j];
		uint32_t seq = n->uid <= last_uid ? imap_view_seq_of(v, n->uid) : 0;

		if (seq > 0) {
			struct imap_msg *m = &v->msgs[seq - 1];
			if (m->expunged)
				continue;
			m->modseq = n->modseq;
			if (strcmp(m->flags, n->flags) != 0) {
				free(m->flags);
				m->flags = n->flags;
				n->flags = NULL;
				if (!quiet && !skipped(skip, nskip, m->uid))
					send_fetch_flags(s, seq, m);
			}
			continue;
		}
		if (n->uid <= last_uid)
			continue;   /* gone before we saw it */
		if (!claimed && !v->readonly) {
			const char *err = NULL;
			uint32_t mark = 0;
			claimed = true;
			if (store_mailbox_claim_recent(s->l->store, v->mailbox_id, &mark, &err) == 0 &&
			    mark > 0)
				first_recent = mark;
		}
		if (v->count == v->alloc) {
			v->alloc = v->alloc ? v->alloc * 2 : 64;
			v->msgs = xrealloc(v->msgs, (size_t)v->alloc * sizeof(*v->msgs));
		}
		v->msgs[v->count] = *n;
		v->msgs[v->count].recent = n->uid >= first_recent;
		n->flags = n->path = NULL;
		n->sum = NULL;
		last_uid = n->uid;
		v->count++;
	}
	for (uint32_t j = 0; j < c.count; j++)
		imap_msg_free(&c.msgs[j]);
	free(c.msgs);
	if (v->count > 0 && v->msgs[v->count - 1].uid >= v->uidnext)
		v->uidnext = v->msgs[v->count - 1].uid + 1;
	for (uint32_t i = 0; i < v->count; i++)
		live += !v->msgs[i].expunged;
	return live == store_count;
}

static void view_reload(struct imap_session *s, bool allow_expunge, bool quiet,
			const uint32_t *skip, size_t nskip)
{
	struct imap_view *v = s->view;
	struct store_mailbox mb = { 0 };
	struct load_ctx c;
	const char *error = NULL;
	uint64_t store_modseq;
	uint32_t store_count;
	int rc;

	v->dirty = false;
	rc = store_mailbox_get_by_id(s->l->store, v->mailbox_id, &mb, &error);
	if (rc == 0) {
		/* deleted (or renamed away) by another session: RFC 9051 7.1.5 */
		imap_untagged(s, "BYE Selected mailbox was deleted");
		imap_close(s, "mailbox deleted");
		return;
	}
	if (rc < 0) {
		log_warn("imap", "sid=%s event=view_sync_failed error=%s", s->c.id, log_quote(error));
		return;
	}
	store_modseq = mb.highestmodseq;
	store_count = mb.messages;
	store_mailbox_clear(&mb);
	v->highestmodseq = store_modseq;
	/* every change bumps the mailbox's modseq: none, nothing to read */
	if (store_modseq != v->synced_modseq &&
	    !view_merge_changes(s, store_count, quiet, skip, nskip)) {
		/* the incremental view disagrees with the store: read it all */
		if (view_load(s, v->mailbox_id, &c, &error) < 0) {
			log_warn("imap", "sid=%s event=view_sync_failed error=%s", s->c.id,
				 log_quote(error));
			return;
		}
		view_merge(s, &c, quiet, skip, nskip);
	}
	v->synced_modseq = store_modseq;
	view_report(s, allow_expunge);
}

void imap_view_sync(struct imap_session *s, bool allow_expunge)
{
	if (s->view == NULL || s->c.closed)
		return;
	if (s->view->dirty)
		view_reload(s, allow_expunge, false, NULL, 0);
	else
		view_report(s, allow_expunge);
}

void imap_view_refresh(struct imap_session *s, bool allow_expunge)
{
	if (s->view == NULL || s->c.closed)
		return;
	view_reload(s, allow_expunge, false, NULL, 0);
}

void imap_view_refresh_quiet(struct imap_session *s)
{
	if (s->view == NULL || s->c.closed)
		return;
	view_reload(s, false, true, NULL, 0);
}

void imap_view_refresh_skip(struct imap_session *s, bool allow_expunge, const uint32_t *skip,
			    size_t nskip)
{
	if (s->view == NULL || s->c.closed)
		return;
	view_reload(s, allow_expunge, false, skip, nskip);
}

/* ---- SORT / THREAD facts ---- */

static struct imap_msg_sum *sum_new(const struct store_summary *ss)
{
	enum { NSTR = 11 };
	const char *src[NSTR] = { ss->subject, ss->from_mailbox, ss->to_mailbox, ss->cc_mailbox,
				  ss->from_display, ss->to_display, ss->message_id,
				  ss->in_reply_to, ss->references, ss->emailid, ss->threadid };
	size_t len[NSTR], total = sizeof(struct imap_msg_sum);
	struct imap_msg_sum *m;
	const char **dst[NSTR];
	char *p;

	for (size_t i = 0; i < NSTR; i++) {
		len[i] = src[i] != NULL ? strlen(src[i]) : 0;
		total += len[i] + 1;
	}
	m = xmalloc(total);
	m->sent_date = ss->sent_date;
	m->savedate = ss->savedate;
	dst[0] = &m->subject; dst[1] = &m->from_mailbox; dst[2] = &m->to_mailbox;
	dst[3] = &m->cc_mailbox; dst[4] = &m->from_display; dst[5] = &m->to_display;
	dst[6] = &m->message_id; dst[7] = &m->in_reply_to; dst[8] = &m->references;
	dst[9] = &m->emailid; dst[10] = &m->threadid;
	p = (char *)(m + 1);
	for (size_t i = 0; i < NSTR; i++) {
		if (len[i] > 0)
			memcpy(p, src[i], len[i]);
		p[len[i]] = '\0';
		*dst[i] = p;
		p += len[i] + 1;
	}
	return m;
}

static int sum_loaded(void *ctx, const struct store_summary *ss)
{
	struct imap_view *v = ctx;
	uint32_t seq = imap_view_seq_of(v, ss->uid);

	if (seq > 0 && v->msgs[seq - 1].sum == NULL)
		v->msgs[seq - 1].sum = sum_new(ss);
	return 0;
}

int imap_view_summaries(struct imap_session *s, const uint32_t *seqs, size_t n,
			const char **error_r)
{
	struct imap_view *v = s->view;
	uint32_t lo = 0, hi = 0;

	if (seqs == NULL)
		n = v->count;
	for (size_t i = 0; i < n; i++) {
		const struct imap_msg *m = &v->msgs[seqs != NULL ? seqs[i] - 1 : i];
		if (m->sum != NULL || m->expunged)
			continue;
		if (lo == 0 || m->uid < lo)
			lo = m->uid;
		if (m->uid > hi)
			hi = m->uid;
	}
	if (lo == 0)
		return 0;   /* all cached */
	return store_summary_list(s->l->store, v->mailbox_id, lo, hi, sum_loaded, v, error_r);
}

void imap_view_saved_set(struct imap_session *s, struct imap_seqset *set_r)
{
	const struct imap_view *v = s->view;
	size_t n = 0;

	memset(set_r, 0, sizeof(*set_r));
	set_r->ranges = imap_arena_alloc(&s->arena, (v->saved_count ? v->saved_count : 1) *
					 sizeof(*set_r->ranges));
	for (size_t i = 0; i < v->saved_count; i++) {
		uint32_t uid = v->saved_uids[i];
		if (n > 0 && set_r->ranges[n - 1].hi + 1 == uid)
			set_r->ranges[n - 1].hi = uid;
		else
			set_r->ranges[n++] = (struct imap_seq_range){ uid, uid };
	}
	set_r->count = n;
}

int imap_view_resolve(struct imap_session *s, const struct imap_seqset *set, bool uid,
		      uint32_t **seqs_r, size_t *count_r)
{
	struct imap_view *v = s->view;
	struct imap_seqset r;
	struct imap_seqset_iter it;
	uint32_t n, max;
	uint32_t *out;
	size_t count = 0;

	*seqs_r = NULL;
	*count_r = 0;
	if (set->saved) {
		/* RFC 5182 2.1: "$" names the same messages in both forms */
		imap_view_saved_set(s, &r);
		set = &r;
		uid = true;
	}
	if (uid) {
		max = v->count > 0 ? v->msgs[v->count - 1].uid : 0;
		imap_seqset_resolve(set, max, &s->arena, &r);
		if (max == 0 && set->has_star) {
			/* "n:*" in an empty mailbox matches nothing */
		}
		/* walk the view once, keeping members: O(n log k) */
		out = imap_arena_alloc(&s->arena, (size_t)(v->count ? v->count : 1) * sizeof(*out));
		for (uint32_t i = 0; i < v->count; i++)
			if (imap_seqset_contains(&r, v->msgs[i].uid))
				out[count++] = i + 1;
		*seqs_r = out;
		*count_r = count;
		return 0;
	}
	imap_seqset_resolve(set, v->count, &s->arena, &r);
	if (imap_seqset_max(&r) > v->count)
		return -1;
	uint64_t size = imap_seqset_size(&r);
	out = imap_arena_alloc(&s->arena, (size_t)(size ? size : 1) * sizeof(*out));
	imap_seqset_iter_init(&it, &r);
	while (imap_seqset_iter_next(&it, &n))
		out[count++] = n;
	*seqs_r = out;
	*count_r = count;
	return 0;
}
