/* Selecting and leaving a mailbox: SELECT / EXAMINE (RFC 9051 6.3.2,
 * 6.3.3; RFC 3501 6.3.1, 6.3.2 for the rev1 responses RECENT and
 * [UNSEEN]), CLOSE (6.4.1), UNSELECT (RFC 3691), CHECK (RFC 3501 6.4.1)
 * and EXPUNGE / UID EXPUNGE (6.4.3, RFC 4315 2.1).
 *
 * CLOSE removes the \Deleted messages without untagged EXPUNGEs (RFC 9051
 * 6.4.1); EXPUNGE answers OK only once the removal is committed. */
#include "imap/imap-private.h"
#include "lib/log.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

static void append_keywords(struct buf *b, const char *kw)
{
	if (kw != NULL && kw[0] != '\0') {
		buf_append_str(b, " ");
		buf_append_str(b, kw);
	}
}

/* ---- QRESYNC (RFC 7162 3.2.5) ---- */

struct qresync_ctx {
	const struct imap_select_request *req;
	uint32_t *uids;
	size_t count, alloc;
};

static bool known_uid(const struct imap_select_request *req, uint32_t uid)
{
	return !req->has_known_uids || imap_seqset_contains(&req->known_uids, uid);
}

static int qresync_expunged(void *ctx, uint32_t uid)
{
	struct qresync_ctx *q = ctx;

	if (!known_uid(q->req, uid))
		return 0;
	if (q->count == q->alloc) {
		q->alloc = q->alloc ? q->alloc * 2 : 64;
		q->uids = xrealloc(q->uids, q->alloc * sizeof(*q->uids));
	}
	q->uids[q->count++] = uid;
	return 0;
}

/* The client's cache matches our UIDVALIDITY: tell it what was expunged
 * since its modseq (VANISHED (EARLIER), limited to its known UIDs) and
 * the flags of every message changed since (FETCH UID FLAGS MODSEQ).  The
 * seq-match data is only an optimisation of the known UIDs; the expunge
 * history is complete, so it is not needed. */
static void select_qresync(struct imap_session *s, const struct imap_select_request *req)
{
	struct imap_view *v = s->view;
	struct qresync_ctx q = { .req = req };
	const char *error = NULL;
	struct buf b;

	if (store_expunged_since(s->l->store, v->mailbox_id, req->modseq, qresync_expunged, &q,
				 &error) < 0)
		log_warn("imap", "sid=%s event=qresync_failed error=%s", s->c.id, log_quote(error));
	buf_init(&b, BUF_UNLIMITED);
	if (q.count > 0) {
		imap_append_numset(&b, q.uids, q.count);
		imap_untagged(s, "VANISHED (EARLIER) %s", buf_cstr(&b));
	}
	free(q.uids);
	for (uint32_t i = 0; i < v->count; i++) {
		const struct imap_msg *m = &v->msgs[i];
		if (m->modseq <= req->modseq || !known_uid(req, m->uid))
			continue;
		buf_reset(&b);
		buf_printf(&b, "* %u FETCH (UID %u FLAGS ", i + 1, m->uid);
		imap_msg_flags(m, &b);
		buf_printf(&b, " MODSEQ (%llu))\r\n", (unsigned long long)m->modseq);
		imap_send_raw(s, b.data, b.len);
	}
	buf_free(&b);
}

void imap_cmd_select(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_select_request req;
	struct imap_parse_error err;
	bool readonly = cmd->cmd == IMAP_CMD_EXAMINE;
	const char *error = NULL;
	char *name, *kw;
	struct buf b;
	int rc;

	if (imap_select_parse(cmd->args, cmd->nargs, &s->arena, &req, &err) < 0) {
		imap_parse_failed(s, &err);
		return;
	}
	if (req.qresync && !s->qresync) {
		/* RFC 7162 3.2.5: only after ENABLE QRESYNC */
		imap_bad(s, "QRESYNC parameter needs ENABLE QRESYNC first");
		return;
	}
	name = imap_mailbox_from_wire(s, req.mailbox);
	if (name == NULL) {
		imap_tagged(s, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	if (s->view != NULL) {
		imap_view_close(s);
		/* RFC 9051 6.3.2 / RFC 7162 3.2.11 */
		if (s->rev2 || s->qresync)
			imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
	}
	rc = imap_view_open(s, name, readonly, &error);
	if (rc <= 0) {
		free(name);
		if (rc == 0) {
			imap_tagged(s, "NO", "[NONEXISTENT] Mailbox doesn't exist");
		} else {
			log_error("imap", "sid=%s event=select_failed error=%s", s->c.id,
				  log_quote(error));
			imap_tagged(s, "NO", "[SERVERBUG] Cannot open the mailbox, try again later");
		}
		return;
	}
	free(name);
	if (req.condstore || req.qresync)
		s->condstore = true;   /* RFC 7162 3.1.8: HIGHESTMODSEQ follows anyway */

	struct imap_view *v = s->view;
	kw = store_mailbox_keywords(s->l->store, v->mailbox_id, &error);
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	append_keywords(&b, kw);
	buf_append_str(&b, ")");
	imap_untagged(s, "%s", buf_cstr(&b));
	buf_reset(&b);
	if (readonly) {
		imap_untagged(s, "OK [PERMANENTFLAGS ()] Read-only mailbox");
	} else {
		buf_append_str(&b, "OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
		append_keywords(&b, kw);
		buf_append_str(&b, " \\*)] Flags permitted");
		imap_untagged(s, "%s", buf_cstr(&b));
	}
	free(kw);
	buf_free(&b);
	imap_untagged(s, "%u EXISTS", v->count);
	if (!s->rev2) {
		uint32_t recent = 0, unseen = 0;
		for (uint32_t i = 0; i < v->count; i++) {
			recent += v->msgs[i].recent;
			if (unseen == 0 && !imap_msg_has_flag(&v->msgs[i], "\\Seen"))
				unseen = i + 1;
		}
		imap_untagged(s, "%u RECENT", recent);
		if (unseen > 0)
			imap_untagged(s, "OK [UNSEEN %u] First unseen", unseen);
	}
	imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", v->uidvalidity);
	imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", v->uidnext);
	imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)v->highestmodseq);
	if (v->objectid != NULL)
		imap_untagged(s, "OK [MAILBOXID (%s)] Ok", v->objectid);   /* RFC 8474 4.1 */
	if (s->rev2) {
		buf_init(&b, BUF_UNLIMITED);
		buf_append_str(&b, "LIST () \"/\" ");
		imap_mailbox_to_wire(s, &b, v->name);
		imap_untagged(s, "%s", buf_cstr(&b));
		buf_free(&b);
	}
	if (req.qresync && req.uidvalidity == v->uidvalidity)
		select_qresync(s, &req);
	imap_tagged(s, "OK", "[%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE",
		    readonly ? "EXAMINE" : "SELECT");
}

void imap_cmd_check(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->nargs != 0) {
		imap_bad(s, "CHECK takes no arguments");
		return;
	}
	/* every write is already durable: CHECK is a NOOP (RFC 9051 removed it) */
	imap_tagged(s, "OK", "CHECK completed");
}

/* ---- EXPUNGE and CLOSE ---- */

static void close_done(void *ctx, const struct store_write_result *r)
{
	struct imap_session *s = ctx;

	if (s->c.closed) {
		imap_session_unref(s);
		return;
	}
	if (r->status < 0) {
		/* the mailbox stays closed either way; report the failure */
		imap_view_close(s);
		imap_store_failed(s, "CLOSE", r->code, r->error);
	} else {
		imap_view_close(s);
		imap_tagged(s, "OK", "CLOSE completed");
	}
	if (imap_session_unref(s))
		imap_resume(s);
}

static void expunge_done(void *ctx, const struct store_write_result *r)
{
	struct imap_session *s = ctx;

	if (s->c.closed) {
		imap_session_unref(s);
		return;
	}
	if (r->status < 0) {
		imap_store_failed(s, "EXPUNGE", r->code, r->error);
	} else {
		imap_view_refresh(s, true);
		imap_tagged(s, "OK", "EXPUNGE completed");
	}
	if (imap_session_unref(s))
		imap_resume(s);
}

/* UIDs of the \Deleted messages (within set when given), arena. */
static uint32_t *deleted_uids(struct imap_session *s, const struct imap_seqset *uidset,
			      size_t *count_r)
{
	struct imap_view *v = s->view;
	uint32_t *uids = imap_arena_alloc(&s->arena, (size_t)(v->count ? v->count : 1) *
					  sizeof(*uids));
	size_t n = 0;

	for (uint32_t i = 0; i < v->count; i++) {
		const struct imap_msg *m = &v->msgs[i];
		if (m->expunged || !imap_msg_has_flag(m, "\\Deleted"))
			continue;
		if (uidset != NULL && !imap_seqset_contains(uidset, m->uid))
			continue;
		uids[n++] = m->uid;
	}
	*count_r = n;
	return uids;
}

void imap_cmd_close(struct imap_session *s, const struct imap_command *cmd)
{
	uint32_t *uids;
	size_t n;

	if (cmd->nargs != 0) {
		imap_bad(s, "%s takes no arguments", imap_cmd_name(cmd->cmd));
		return;
	}
	if (cmd->cmd == IMAP_CMD_UNSELECT || s->view->readonly) {
		imap_view_close(s);
		imap_tagged(s, "OK", "%s completed", imap_cmd_name(cmd->cmd));
		return;
	}
	uids = deleted_uids(s, NULL, &n);
	if (n == 0) {
		imap_view_close(s);
		imap_tagged(s, "OK", "CLOSE completed");
		return;
	}
	s->c.waiting = true;
	imap_session_ref(s);
	if (store_expunge(s->l->store, s->c.base, s->view->mailbox_id, uids, n, close_done, s) < 0) {
		s->c.waiting = false;
		imap_session_unref(s);
		imap_view_close(s);
		imap_tagged(s, "NO", "[SERVERBUG] CLOSE failed, try again later");
	}
}

void imap_cmd_expunge(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_seqset set, resolved;
	struct imap_parse_error err;
	uint32_t *uids;
	size_t n;

	if (cmd->uid) {
		/* RFC 4315 2.1: UID EXPUNGE sequence-set */
		if (cmd->nargs != 1 ||
		    imap_seqset_parse_arg(&cmd->args[0], &s->arena, &set, &err) < 0) {
			imap_bad(s, "Syntax: UID EXPUNGE uid-set");
			return;
		}
		uint32_t max = s->view->count ? s->view->msgs[s->view->count - 1].uid : 0;
		if (set.saved)
			imap_view_saved_set(s, &resolved);   /* RFC 5182 "$" */
		else
			imap_seqset_resolve(&set, max, &s->arena, &resolved);
		uids = deleted_uids(s, &resolved, &n);
	} else {
		if (cmd->nargs != 0) {
			imap_bad(s, "EXPUNGE takes no arguments");
			return;
		}
		uids = deleted_uids(s, NULL, &n);
	}
	if (n == 0) {
		imap_tagged(s, "OK", "EXPUNGE completed");
		return;
	}
	s->c.waiting = true;
	imap_session_ref(s);
	if (store_expunge(s->l->store, s->c.base, s->view->mailbox_id, uids, n, expunge_done,
			  s) < 0) {
		s->c.waiting = false;
		imap_session_unref(s);
		imap_tagged(s, "NO", "[SERVERBUG] EXPUNGE failed, try again later");
	}
}
