/* STORE / UID STORE (RFC 9051 6.4.6) and COPY / MOVE with their UID forms
 * (6.4.7, 6.4.8, RFC 6851 MOVE, RFC 4315 COPYUID).
 *
 * STORE answers with the flags of every message of the set (untagged
 * FETCH; none for .SILENT) after the change is committed; flag changes
 * other sessions made meanwhile are reported too.  A conditional STORE
 * (RFC 7162 3.1.3, UNCHANGEDSINCE) also sends the current FLAGS and MODSEQ
 * of each message it skipped before OK [MODIFIED set].  COPY and MOVE answer
 * OK [COPYUID uidvalidity source-uids new-uids]; MOVE sends its
 * "* OK [COPYUID ...]" and then the EXPUNGEs (RFC 6851 4.3), all after the
 * commit. */
#include "imap/imap-private.h"
#include "lib/log.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

void imap_append_numset(struct buf *out, const uint32_t *n, size_t count)
{
	for (size_t i = 0; i < count;) {
		size_t j = i;
		while (j + 1 < count && n[j + 1] == n[j] + 1)
			j++;
		if (i > 0)
			buf_append_str(out, ",");
		if (j > i)
			buf_printf(out, "%u:%u", n[i], n[j]);
		else
			buf_printf(out, "%u", n[i]);
		i = j + 1;
	}
}

/* UIDs of the messages at seqs (skipping pending expunges), arena. */
static uint32_t *seqs_to_uids(struct imap_session *s, const uint32_t *seqs, size_t count,
			      size_t *n_r)
{
	uint32_t *uids = imap_arena_alloc(&s->arena, (count ? count : 1) * sizeof(*uids));
	size_t n = 0;

	for (size_t i = 0; i < count; i++) {
		const struct imap_msg *m = &s->view->msgs[seqs[i] - 1];
		if (!m->expunged)
			uids[n++] = m->uid;
	}
	*n_r = n;
	return uids;
}

/* ---- STORE ---- */

struct store_ctx {
	uint32_t *uids;
	size_t count;
	bool silent;
};

/* " [MODIFIED set]" (RFC 7162 3.1.3) for the UIDs of r that failed the
 * UNCHANGEDSINCE test: sequence numbers for STORE, UIDs for UID STORE. */
static void append_modified(struct imap_session *s, const uint32_t *muids, size_t n,
			    struct buf *out)
{
	uint32_t *ids = xmalloc((n ? n : 1) * sizeof(*ids));
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t seq = imap_view_seq_of(s->view, muids[i]);
		if (seq != 0)
			ids[k++] = s->cur_uid ? muids[i] : seq;
	}
	/* ascending either way: UIDs and sequence numbers grow together */
	for (size_t i = 1; i < k; i++)
		for (size_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
			uint32_t t = ids[j];
			ids[j] = ids[j - 1];
			ids[j - 1] = t;
		}
	if (k > 0) {
		buf_append_str(out, "[MODIFIED ");
		imap_append_numset(out, ids, k);
		buf_append_str(out, "] ");
	}
	free(ids);
}

/* "* n FETCH ([UID u ]FLAGS (...) MODSEQ (m))" for each message that failed
 * the UNCHANGEDSINCE test, even with .SILENT: the client's copy of its
 * flags is stale, and this tells it the current ones without another
 * FETCH (RFC 7162 3.1.3; an unsolicited FETCH is allowed at any time).
 * The view holds the flags just re-read from the store. */
static void send_modified_flags(struct imap_session *s, const uint32_t *muids, size_t n)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	for (size_t i = 0; i < n; i++) {
		uint32_t seq = imap_view_seq_of(s->view, muids[i]);
		if (seq == 0)
			continue;
		const struct imap_msg *m = &s->view->msgs[seq - 1];
		buf_reset(&b);
		buf_printf(&b, "* %u FETCH (", seq);
		if (s->cur_uid)
			buf_printf(&b, "UID %u ", m->uid);
		buf_append_str(&b, "FLAGS ");
		imap_msg_flags(m, &b);
		buf_printf(&b, " MODSEQ (%llu))\r\n", (unsigned long long)m->modseq);
		imap_send_raw(s, b.data, b.len);
	}
	buf_free(&b);
}

static bool uid_listed(const uint32_t *uids, size_t n, uint32_t uid)
{
	for (size_t i = 0; i < n; i++)
		if (uids[i] == uid)
			return true;
	return false;
}

static void store_done(void *ctx, const struct store_write_result *r)
{
	struct imap_session *s = ctx;
	struct store_ctx *c = s->pump_ctx;

	s->pump_ctx = NULL;
	if (s->c.closed || s->view == NULL) {
		imap_session_unref(s);
		return;
	}
	if (r->status < 0) {
		imap_store_failed(s, "STORE", r->code, r->error);
	} else {
		struct buf b, mod;
		imap_view_refresh_skip(s, s->cur_uid, c->uids, c->count);
		buf_init(&b, BUF_UNLIMITED);
		buf_init(&mod, BUF_UNLIMITED);
		for (size_t i = 0; i < c->count; i++) {
			uint32_t seq = imap_view_seq_of(s->view, c->uids[i]);
			if (seq == 0 || uid_listed(r->modified_uids, r->modified_count, c->uids[i]))
				continue;
			const struct imap_msg *m = &s->view->msgs[seq - 1];
			if (c->silent && !s->condstore)
				continue;
			buf_reset(&b);
			buf_printf(&b, "* %u FETCH (", seq);
			if (s->cur_uid)
				buf_printf(&b, "UID %u ", m->uid);
			if (!c->silent) {
				buf_append_str(&b, "FLAGS ");
				imap_msg_flags(m, &b);
			}
			/* RFC 7162 3.1.3: MODSEQ even with .SILENT */
			if (s->condstore)
				buf_printf(&b, "%sMODSEQ (%llu)", c->silent ? "" : " ",
					   (unsigned long long)m->modseq);
			buf_append_str(&b, ")\r\n");
			imap_send_raw(s, b.data, b.len);
		}
		send_modified_flags(s, r->modified_uids, r->modified_count);
		append_modified(s, r->modified_uids, r->modified_count, &mod);
		buf_free(&b);
		imap_tagged(s, "OK", "%s%sSTORE completed", buf_cstr(&mod), s->cur_uid ? "UID " : "");
		buf_free(&mod);
	}
	if (imap_session_unref(s))
		imap_resume(s);
}

void imap_cmd_store(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_store_request req;
	struct imap_parse_error err;
	struct store_ctx *c = imap_arena_alloc(&s->arena, sizeof(*c));
	enum store_flags_mode mode;
	uint32_t *seqs;
	size_t nseqs;
	char *flags;

	if (imap_store_parse(cmd->args, cmd->nargs, &s->arena, &req, &err) < 0) {
		imap_parse_failed(s, &err);
		return;
	}
	if (imap_view_resolve(s, &req.set, cmd->uid, &seqs, &nseqs) < 0) {
		imap_bad(s, "Invalid sequence number (mailbox has %u messages)", s->view->count);
		return;
	}
	c->uids = seqs_to_uids(s, seqs, nseqs, &c->count);
	c->silent = req.silent;
	if (req.unchangedsince_given)
		imap_condstore_enable(s);   /* RFC 7162 3.1 */
	if (req.unchangedsince_given && req.unchangedsince == 0 && c->count > 0) {
		/* every message has a modseq above 0: all fail the test */
		struct buf mod;
		imap_view_refresh_skip(s, cmd->uid, c->uids, c->count);
		send_modified_flags(s, c->uids, c->count);
		buf_init(&mod, BUF_UNLIMITED);
		append_modified(s, c->uids, c->count, &mod);
		imap_tagged(s, "OK", "%s%sSTORE completed", buf_cstr(&mod), cmd->uid ? "UID " : "");
		buf_free(&mod);
		return;
	}
	if (c->count == 0) {
		imap_tagged(s, "OK", "%sSTORE completed", cmd->uid ? "UID " : "");
		return;
	}
	mode = req.op == IMAP_STORE_ADD ? STORE_FLAGS_ADD :
	       req.op == IMAP_STORE_REMOVE ? STORE_FLAGS_REMOVE : STORE_FLAGS_SET;
	flags = imap_flags_string(&req.flags);
	s->pump_ctx = c;
	s->c.waiting = true;
	imap_session_ref(s);
	if (store_flags_update(s->l->store, s->c.base, s->view->mailbox_id, c->uids, c->count, mode,
			       flags, req.unchangedsince_given ? req.unchangedsince : 0, store_done,
			       s) < 0) {
		s->c.waiting = false;
		s->pump_ctx = NULL;
		imap_session_unref(s);
		imap_tagged(s, "NO", "[SERVERBUG] STORE failed, try again later");
	}
	free(flags);
}

/* ---- COPY / MOVE ---- */

static void copy_done(void *ctx, const struct store_write_result *r)
{
	struct imap_session *s = ctx;
	bool move = s->cur_def != NULL && s->cur_def->cmd == IMAP_CMD_MOVE;

	if (s->c.closed) {
		imap_session_unref(s);
		return;
	}
	if (r->status < 0) {
		if (r->code != NULL && strcmp(r->code, "NONEXISTENT") == 0)
			imap_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist");
		else
			imap_store_failed(s, move ? "MOVE" : "COPY", r->code, r->error);
	} else {
		struct buf b;
		buf_init(&b, BUF_UNLIMITED);
		if (r->count > 0) {
			buf_printf(&b, "[COPYUID %u ", r->uidvalidity);
			imap_append_numset(&b, r->src_uids, r->count);
			buf_append_str(&b, " ");
			imap_append_numset(&b, r->dst_uids, r->count);
			buf_append_str(&b, "] ");
		}
		if (s->view != NULL)
			s->view->dirty = true;
		if (move) {
			if (b.len > 0)
				imap_untagged(s, "OK %sMoved", buf_cstr(&b));
			imap_view_refresh(s, true);
			imap_tagged(s, "OK", "%sMOVE completed", s->cur_uid ? "UID " : "");
		} else {
			imap_tagged(s, "OK", "%s%sCOPY completed", buf_cstr(&b),
				    s->cur_uid ? "UID " : "");
		}
		buf_free(&b);
	}
	if (imap_session_unref(s))
		imap_resume(s);
}

void imap_cmd_copy(struct imap_session *s, const struct imap_command *cmd)
{
	bool move = cmd->cmd == IMAP_CMD_MOVE;
	struct imap_seqset set;
	struct imap_parse_error err;
	struct store_mailbox mb = { 0 };
	struct slice wire;
	const char *error = NULL;
	uint32_t *seqs, *uids;
	size_t nseqs, n;
	char *name;
	int rc;

	if (cmd->nargs != 2 || imap_seqset_parse_arg(&cmd->args[0], &s->arena, &set, &err) < 0 ||
	    !imap_arg_astring(&cmd->args[1], &wire)) {
		imap_bad(s, "Syntax: %s%s sequence-set mailbox", cmd->uid ? "UID " : "",
			 imap_cmd_name(cmd->cmd));
		return;
	}
	if (imap_view_resolve(s, &set, cmd->uid, &seqs, &nseqs) < 0) {
		imap_bad(s, "Invalid sequence number (mailbox has %u messages)", s->view->count);
		return;
	}
	name = imap_mailbox_from_wire(s, wire);
	if (name == NULL) {
		imap_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist");
		return;
	}
	rc = store_mailbox_get(s->l->store, s->user_id, name, &mb, &error);
	free(name);
	if (rc <= 0) {
		if (rc == 0)
			imap_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist");
		else
			imap_tagged(s, "NO", "[SERVERBUG] %s failed, try again later",
				    imap_cmd_name(cmd->cmd));
		return;
	}
	int64_t dst = mb.id;
	store_mailbox_clear(&mb);
	uids = seqs_to_uids(s, seqs, nseqs, &n);
	if (n == 0) {
		if (nseqs > 0)
			imap_tagged(s, "NO", "[EXPUNGEISSUED] Messages were expunged meanwhile");
		else
			imap_tagged(s, "OK", "%s%s completed", cmd->uid ? "UID " : "",
				    imap_cmd_name(cmd->cmd));
		return;
	}
	if (move && dst == s->view->mailbox_id) {
		imap_tagged(s, "NO", "[CANNOT] Source and destination are the same mailbox");
		return;
	}
	s->c.waiting = true;
	imap_session_ref(s);
	if (store_copy(s->l->store, s->c.base, s->view->mailbox_id, uids, n, dst, move, copy_done,
		       s) < 0) {
		s->c.waiting = false;
		imap_session_unref(s);
		imap_tagged(s, "NO", "[SERVERBUG] %s failed, try again later",
			    imap_cmd_name(cmd->cmd));
	}
}
