/* SORT / UID SORT and THREAD / UID THREAD (RFC 5256), with ESORT results
 * (RFC 5267 section 3: SORT RETURN (MIN MAX COUNT ALL) answered by
 * "* ESEARCH") and the SORT=DISPLAY keys (RFC 5957).
 *
 * Flow: parse the sort or thread arguments (parse-sort.c), hand the search
 * keys after the charset to imap_search_parse() and imap_search_run()
 * (cmd-search.c), then take the matches' header facts from the view's
 * cache (imap_view_summaries: filled from the store's summaries the first
 * time, never from the message files; a later SORT reads only what
 * arrived since), and sort (sort.c) or thread (thread.c) them.
 *
 * Invariants: a match without a summary (expunged in the store meanwhile)
 * keeps the view's internal date and size and empty strings.  The strings
 * belong to the view's messages, which outlive the command.
 * RETURN (SAVE) keeps the result as the view's "$" (RFC 5182 2.4): every
 * match, or with MIN and/or MAX alone (no ALL, no COUNT) just the first
 * and/or last in sort order; a failed SORT ... SAVE leaves "$" empty; SAVE
 * alone sends no ESEARCH.  With a MODSEQ search key the reply carries the
 * highest mod-sequence (RFC 7162 3.1.5), as SEARCH does. */
#include "imap/imap-private.h"
#include "imap/sort.h"
#include "lib/log.h"
#include "mail/imap-string.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

/* Parse and run the search keys; then the matches' summaries.  0, or -1
 * after a tagged reply. */
static int sort_search(struct imap_session *s, const struct imap_arg *keys, size_t nkeys,
		       enum imap_search_charset charset, bool thread,
		       struct imap_sort_msg **msgs_r, size_t *n_r, bool *uses_modseq_r,
		       uint64_t *max_modseq_r)
{
	struct imap_search_program prog;
	struct imap_parse_error err;
	struct imap_view *v = s->view;
	struct imap_sort_msg *msgs;
	const char *error = NULL;
	uint32_t *seqs;
	size_t n;

	if (imap_search_parse(keys, nkeys, &s->arena, &prog, &err) < 0) {
		imap_parse_failed(s, &err);
		return -1;
	}
	prog.charset = charset;
	if (imap_search_run(s, &prog, &seqs, &n, max_modseq_r) < 0)
		return -1;
	*uses_modseq_r = prog.uses_modseq;
	/* the facts come from the view's cache, filled from the store's
	 * summaries the first time (never from the message files) */
	if (imap_view_summaries(s, seqs, n, &error) < 0) {
		log_warn("imap", "sid=%s event=sort_failed error=%s", s->c.id,
			 log_quote(error ? error : ""));
		imap_tagged(s, "NO", "[SERVERBUG] %s failed, try again later",
			    thread ? "THREAD" : "SORT");
		return -1;
	}
	msgs = imap_arena_alloc(&s->arena, (n ? n : 1) * sizeof(*msgs));
	for (size_t i = 0; i < n; i++) {
		const struct imap_msg *vm = &v->msgs[seqs[i] - 1];
		const struct imap_msg_sum *sum = vm->sum;
		msgs[i] = (struct imap_sort_msg){
			.seq = seqs[i], .uid = vm->uid, .internal_date = vm->internal_date,
			.sent_date = vm->internal_date, .size = vm->size,
		};
		if (sum == NULL)
			continue;   /* no summary (should not happen): arrival facts only */
		msgs[i].sent_date = sum->sent_date;
		msgs[i].subject = sum->subject[0] ? sum->subject : NULL;
		if (thread) {
			msgs[i].message_id = sum->message_id[0] ? sum->message_id : NULL;
			msgs[i].in_reply_to = sum->in_reply_to[0] ? sum->in_reply_to : NULL;
			msgs[i].references = sum->references[0] ? sum->references : NULL;
		} else {
			msgs[i].from_mailbox = sum->from_mailbox[0] ? sum->from_mailbox : NULL;
			msgs[i].to_mailbox = sum->to_mailbox[0] ? sum->to_mailbox : NULL;
			msgs[i].cc_mailbox = sum->cc_mailbox[0] ? sum->cc_mailbox : NULL;
			msgs[i].from_display = sum->from_display[0] ? sum->from_display : NULL;
			msgs[i].to_display = sum->to_display[0] ? sum->to_display : NULL;
		}
	}
	*msgs_r = msgs;
	*n_r = n;
	return 0;
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* "$" from the sorted result (RFC 5182 2.4); kept as ascending UIDs. */
static void save_sorted(struct imap_view *v, unsigned ret, const struct imap_sort_msg *msgs,
			size_t n)
{
	bool all = (ret & (IMAP_SEARCH_RET_ALL | IMAP_SEARCH_RET_COUNT)) != 0 ||
		   (ret & (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX)) == 0;

	v->saved_uids = xmalloc((n ? n : 1) * sizeof(*v->saved_uids));
	v->saved_count = 0;
	for (size_t i = 0; i < n; i++) {
		if (all || ((ret & IMAP_SEARCH_RET_MIN) && i == 0) ||
		    ((ret & IMAP_SEARCH_RET_MAX) && i == n - 1))
			v->saved_uids[v->saved_count++] = msgs[i].uid;
	}
	qsort(v->saved_uids, v->saved_count, sizeof(*v->saved_uids), uid_cmp);
}

void imap_cmd_sort(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_sort_request req;
	struct imap_parse_error err;
	struct imap_sort_msg *msgs;
	uint32_t *ids;
	uint64_t max_modseq = 0;
	bool uses_modseq = false;
	size_t n;
	struct buf b;

	int rc = imap_sort_parse(cmd->args, cmd->nargs, &req, &err);

	if (req.ret & IMAP_SEARCH_RET_SAVE) {
		/* RFC 5182 2.1: a failed ... SAVE leaves "$" empty */
		free(s->view->saved_uids);
		s->view->saved_uids = NULL;
		s->view->saved_count = 0;
	}
	if (rc < 0) {
		imap_parse_failed(s, &err);
		return;
	}
	if (sort_search(s, req.keys, req.nkeys, req.charset, false, &msgs, &n, &uses_modseq,
			&max_modseq) < 0)
		return;
	imap_sort_messages(msgs, n, req.crit, req.ncrit);
	if (req.ret & IMAP_SEARCH_RET_SAVE) {
		save_sorted(s->view, req.ret, msgs, n);
		if ((req.ret & ~IMAP_SEARCH_RET_SAVE) == 0) {
			imap_tagged(s, "OK", "%sSORT completed, result saved", cmd->uid ? "UID " : "");
			return;
		}
	}
	ids = imap_arena_alloc(&s->arena, (n ? n : 1) * sizeof(*ids));
	for (size_t i = 0; i < n; i++)
		ids[i] = cmd->uid ? msgs[i].uid : msgs[i].seq;

	buf_init(&b, BUF_UNLIMITED);
	if (req.esearch) {
		/* RFC 5267 3.2: MIN / MAX are the first / last in sort order,
		 * ALL is the sorted list as a sequence-set (runs only where
		 * the sorted order ascends by one) */
		buf_append_str(&b, "ESEARCH (TAG ");
		imap_append_string(&b, s->tag != NULL ? s->tag : "", s->tag != NULL ? strlen(s->tag) : 0);
		buf_append_str(&b, ")");
		if (cmd->uid)
			buf_append_str(&b, " UID");
		if ((req.ret & IMAP_SEARCH_RET_MIN) && n > 0)
			buf_printf(&b, " MIN %u", ids[0]);
		if ((req.ret & IMAP_SEARCH_RET_MAX) && n > 0)
			buf_printf(&b, " MAX %u", ids[n - 1]);
		if (req.ret & IMAP_SEARCH_RET_COUNT)
			buf_printf(&b, " COUNT %zu", n);
		if ((req.ret & IMAP_SEARCH_RET_ALL) && n > 0) {
			buf_append_str(&b, " ALL ");
			imap_append_numset(&b, ids, n);
		}
		if (uses_modseq && n > 0)
			buf_printf(&b, " MODSEQ %llu", (unsigned long long)max_modseq);
	} else {
		buf_append_str(&b, "SORT");
		for (size_t i = 0; i < n; i++)
			buf_printf(&b, " %u", ids[i]);
		if (uses_modseq && n > 0)
			buf_printf(&b, " (MODSEQ %llu)", (unsigned long long)max_modseq);
	}
	imap_untagged(s, "%s", buf_cstr(&b));
	buf_free(&b);
	imap_tagged(s, "OK", "%sSORT completed", cmd->uid ? "UID " : "");
}

void imap_cmd_thread(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_thread_request req;
	struct imap_parse_error err;
	struct imap_sort_msg *msgs;
	uint64_t max_modseq = 0;
	bool uses_modseq = false;
	size_t n;
	struct buf b;

	if (imap_thread_parse(cmd->args, cmd->nargs, &req, &err) < 0) {
		imap_parse_failed(s, &err);
		return;
	}
	if (sort_search(s, req.keys, req.nkeys, req.charset, true, &msgs, &n, &uses_modseq,
			&max_modseq) < 0)
		return;
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "THREAD");
	if (n > 0) {
		buf_append_str(&b, " ");
		imap_thread_messages(msgs, n, req.algorithm, cmd->uid, &b);
	}
	imap_untagged(s, "%s", buf_cstr(&b));
	buf_free(&b);
	imap_tagged(s, "OK", "%sTHREAD completed", cmd->uid ? "UID " : "");
}
