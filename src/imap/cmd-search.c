/* SEARCH / UID SEARCH (RFC 9051 6.4.4, RFC 3501 6.4.4): evaluation of the
 * parsed search program over the selected mailbox's view.
 *
 * Keys answered here from the view alone: ALL, sequence sets, UID, the
 * flag keys (ANSWERED DELETED DRAFT FLAGGED SEEN and their UN- forms,
 * KEYWORD / UNKEYWORD, NEW OLD RECENT), LARGER / SMALLER, BEFORE / ON /
 * SINCE (internal date, in UTC days), and AND / OR / NOT.  The header,
 * text and sent-date keys and MODSEQ answer NO [CANNOT] for now: they go
 * in key_eval() (search_key_needs_text lists them) with the full-text
 * index.  Results: "* SEARCH" in rev1, "* ESEARCH (TAG ..) [UID] ALL set"
 * after ENABLE IMAP4rev2 (RFC 9051 7.3.4). */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <string.h>

/* Resolve every set in the tree against the current view, in place. */
static void resolve_sets(struct imap_session *s, struct imap_search_key *k)
{
	struct imap_view *v = s->view;

	if (k->type == IMAP_SK_SEQSET) {
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

/* 1 match, 0 no match, -1 key not supported yet. */
static int key_eval(struct imap_session *s, const struct imap_search_key *k, uint32_t seq,
		    const struct imap_msg *m)
{
	int64_t day = (int64_t)(m->internal_date >= 0 ? m->internal_date / 86400
						       : (m->internal_date - 86399) / 86400);
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
	default:
		/* BCC BODY CC FROM SUBJECT TEXT TO HEADER, SENT*, MODSEQ: later */
		return -1;
	}
}

void imap_cmd_search(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_search_program prog;
	struct imap_parse_error err;
	struct imap_view *v = s->view;
	uint32_t *hits;
	size_t n = 0;
	struct buf b;

	if (imap_search_parse(cmd->args, cmd->nargs, &s->arena, &prog, &err) < 0) {
		imap_parse_failed(s, &err);
		return;
	}
	if (prog.esearch && !s->rev2) {
		imap_bad(s, "SEARCH RETURN is not supported");
		return;
	}
	resolve_sets(s, &prog.root);
	hits = imap_arena_alloc(&s->arena, (size_t)(v->count ? v->count : 1) * sizeof(*hits));
	for (uint32_t i = 0; i < v->count; i++) {
		int r = key_eval(s, &prog.root, i + 1, &v->msgs[i]);
		if (r < 0) {
			imap_tagged(s, "NO", "[CANNOT] This search key is not supported yet");
			return;
		}
		if (r > 0 && !v->msgs[i].expunged)
			hits[n++] = cmd->uid ? v->msgs[i].uid : i + 1;
	}
	buf_init(&b, BUF_UNLIMITED);
	if (s->rev2) {
		/* RFC 9051 7.3.4: ESEARCH; RETURN () and no RETURN mean ALL */
		unsigned ret = prog.esearch && prog.ret != 0 ? prog.ret : IMAP_SEARCH_RET_ALL;
		buf_append_str(&b, "ESEARCH (TAG \"");
		buf_append_str(&b, s->tag != NULL ? s->tag : "");
		buf_append_str(&b, "\")");
		if (cmd->uid)
			buf_append_str(&b, " UID");
		if ((ret & IMAP_SEARCH_RET_MIN) && n > 0)
			buf_printf(&b, " MIN %u", hits[0]);
		if ((ret & IMAP_SEARCH_RET_MAX) && n > 0)
			buf_printf(&b, " MAX %u", hits[n - 1]);
		if ((ret & IMAP_SEARCH_RET_ALL) && n > 0) {
			buf_append_str(&b, " ALL ");
			imap_append_numset(&b, hits, n);
		}
		if (ret & IMAP_SEARCH_RET_COUNT)
			buf_printf(&b, " COUNT %zu", n);
	} else {
		buf_append_str(&b, "SEARCH");
		for (size_t i = 0; i < n; i++)
			buf_printf(&b, " %u", hits[i]);
	}
	imap_untagged(s, "%s", buf_cstr(&b));
	buf_free(&b);
	imap_tagged(s, "OK", "%sSEARCH completed", cmd->uid ? "UID " : "");
}
