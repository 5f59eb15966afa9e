/* IMAP argument parsers for mailbox commands: STATUS, LIST / LSUB,
 * SELECT / EXAMINE and APPEND.
 *
 * Invariants: mailbox names are returned as sent (the session decodes
 * modified UTF-7 or checks UTF-8 with the helpers in mutf7.c); every
 * number is range-checked; results live in the caller's arena.
 *
 * RFC 9051 6.3.1, 6.3.9, 6.3.11, 6.3.12 and 9 (select, list, status,
 * append, date-time), RFC 5258 (LIST-EXTENDED selection and return
 * options, 3: RECURSIVEMATCH never alone), RFC 5819 (LIST-STATUS), RFC 6154
 * (SPECIAL-USE), RFC 7162 3.1.8 and 3.2.5 (CONDSTORE / QRESYNC select
 * parameters), RFC 8438 (STATUS=SIZE), RFC 7889 (APPENDLIMIT), RFC 3516 4.4
 * (APPEND with literal8). */
#include "imap/parse.h"

#include <string.h>

#define NUMBER64_MAX ((uint64_t)INT64_MAX)

static int fail(struct imap_parse_error *err, const char *text)
{
	*err = (struct imap_parse_error){ IMAP_ERR_SYNTAX, text };
	return -1;
}

/* ---- STATUS ---- */

static const struct {
	const char *name;
	unsigned bit;
} status_items[] = {
	{ "MESSAGES", IMAP_STATUS_MESSAGES }, { "UIDNEXT", IMAP_STATUS_UIDNEXT },
	{ "UIDVALIDITY", IMAP_STATUS_UIDVALIDITY }, { "UNSEEN", IMAP_STATUS_UNSEEN },
	{ "DELETED", IMAP_STATUS_DELETED }, { "SIZE", IMAP_STATUS_SIZE },
	{ "RECENT", IMAP_STATUS_RECENT }, { "HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ },
	{ "APPENDLIMIT", IMAP_STATUS_APPENDLIMIT }, { "MAILBOXID", IMAP_STATUS_MAILBOXID },
};

int imap_status_items_parse(const struct imap_arg *list, unsigned *items_r,
			    struct imap_parse_error *err)
{
	*items_r = 0;
	if (list->type != IMAP_ARG_LIST || list->count == 0)
		return fail(err, "STATUS needs a list of items");
	for (size_t i = 0; i < list->count; i++) {
		size_t k;

		for (k = 0; k < sizeof(status_items) / sizeof(status_items[0]); k++)
			if (imap_arg_atom_is(&list->children[i], status_items[k].name))
				break;
		if (k == sizeof(status_items) / sizeof(status_items[0]))
			return fail(err, "Unknown STATUS item");
		*items_r |= status_items[k].bit;
	}
	return 0;
}

int imap_status_parse(const struct imap_arg *args, size_t nargs,
		      struct imap_status_request *req_r, struct imap_parse_error *err)
{
	memset(req_r, 0, sizeof(*req_r));
	if (nargs != 2 || !imap_arg_astring(&args[0], &req_r->mailbox))
		return fail(err, "STATUS needs a mailbox and a list of items");
	return imap_status_items_parse(&args[1], &req_r->items, err);
}

/* ---- LIST / LSUB ---- */

/* list-mailbox = 1*list-char / string */
static bool list_mailbox(const struct imap_arg *arg, struct slice *s_r)
{
	return imap_arg_astring(arg, s_r);
}

int imap_list_parse(const struct imap_arg *args, size_t nargs, bool lsub, struct imap_arena *a,
		    struct imap_list_request *req_r, struct imap_parse_error *err)
{
	size_t i = 0;

	memset(req_r, 0, sizeof(*req_r));
	if (lsub) {
		if (nargs != 2)
			return fail(err, "LSUB needs a reference and a pattern");
	} else if (nargs > 0 && args[0].type == IMAP_ARG_LIST) {
		const struct imap_arg *sel = &args[0];

		req_r->extended = true;
		for (size_t k = 0; k < sel->count; k++) {
			const struct imap_arg *o = &sel->children[k];

			if (imap_arg_atom_is(o, "SUBSCRIBED"))
				req_r->select |= IMAP_LIST_SEL_SUBSCRIBED;
			else if (imap_arg_atom_is(o, "REMOTE"))
				req_r->select |= IMAP_LIST_SEL_REMOTE;
			else if (imap_arg_atom_is(o, "RECURSIVEMATCH"))
				req_r->select |= IMAP_LIST_SEL_RECURSIVEMATCH;
			else if (imap_arg_atom_is(o, "SPECIAL-USE"))
				req_r->select |= IMAP_LIST_SEL_SPECIAL_USE;
			else
				return fail(err, "Unknown LIST selection option");
		}
		/* RFC 5258 3.1: RECURSIVEMATCH needs a base selection option */
		if ((req_r->select & IMAP_LIST_SEL_RECURSIVEMATCH) &&
		    !(req_r->select & (IMAP_LIST_SEL_SUBSCRIBED | IMAP_LIST_SEL_SPECIAL_USE)))
			return fail(err, "RECURSIVEMATCH needs another selection option");
		i = 1;
	}
	if (nargs - i < 2 || !imap_arg_astring(&args[i], &req_r->reference))
		return fail(err, "LIST needs a reference and a pattern");
	i++;
	if (args[i].type == IMAP_ARG_LIST && !lsub) {
		const struct imap_arg *pl = &args[i];

		if (pl->count == 0)
			return fail(err, "Empty LIST pattern list");
		req_r->extended = true;
		req_r->patterns = imap_arena_alloc(a, pl->count * sizeof(*req_r->patterns));
		for (size_t k = 0; k < pl->count; k++)
			if (!list_mailbox(&pl->children[k], &req_r->patterns[k]))
				return fail(err, "Invalid LIST pattern");
		req_r->npatterns = pl->count;
	} else {
		req_r->patterns = imap_arena_alloc(a, sizeof(*req_r->patterns));
		if (!list_mailbox(&args[i], &req_r->patterns[0]))
			return fail(err, "Invalid LIST pattern");
		req_r->npatterns = 1;
	}
	i++;
	if (i < nargs) {
		const struct imap_arg *ret;

		if (lsub || !imap_arg_atom_is(&args[i], "RETURN") || i + 2 != nargs ||
		    args[i + 1].type != IMAP_ARG_LIST)
			return fail(err, "Invalid LIST return options");
		ret = &args[i + 1];
		req_r->extended = true;
		for (size_t k = 0; k < ret->count; k++) {
			const struct imap_arg *o = &ret->children[k];

			if (imap_arg_atom_is(o, "SUBSCRIBED")) {
				req_r->ret |= IMAP_LIST_RET_SUBSCRIBED;
			} else if (imap_arg_atom_is(o, "CHILDREN")) {
				req_r->ret |= IMAP_LIST_RET_CHILDREN;
			} else if (imap_arg_atom_is(o, "SPECIAL-USE")) {
				req_r->ret |= IMAP_LIST_RET_SPECIAL_USE;
			} else if (imap_arg_atom_is(o, "STATUS")) {
				if ((req_r->ret & IMAP_LIST_RET_STATUS) || k + 1 >= ret->count)
					return fail(err, "Invalid LIST return options");
				if (imap_status_items_parse(&ret->children[++k],
							    &req_r->status_items, err) < 0)
					return -1;
				req_r->ret |= IMAP_LIST_RET_STATUS;
			} else {
				return fail(err, "Unknown LIST return option");
			}
		}
	}
	return 0;
}

/* ---- SELECT / EXAMINE ---- */

static int known_set(const struct imap_arg *arg, struct imap_arena *a, struct imap_seqset *set,
		     struct imap_parse_error *err)
{
	if (imap_seqset_parse_arg(arg, a, set, err) < 0)
		return -1;
	if (set->has_star || set->saved)
		return fail(err, "Invalid QRESYNC known set");
	return 0;
}

static int parse_qresync(const struct imap_arg *list, struct imap_arena *a,
			 struct imap_select_request *req, struct imap_parse_error *err)
{
	uint64_t v;
	size_t i = 2;

	if (list->type != IMAP_ARG_LIST || list->count < 2 || list->count > 4)
		return fail(err, "Invalid QRESYNC parameters");
	if (!imap_arg_number(&list->children[0], UINT32_MAX, &v) || v == 0)
		return fail(err, "Invalid QRESYNC UIDVALIDITY");
	req->uidvalidity = (uint32_t)v;
	if (!imap_arg_number(&list->children[1], NUMBER64_MAX, &req->modseq) || req->modseq == 0)
		return fail(err, "Invalid QRESYNC modseq");
	if (i < list->count && list->children[i].type != IMAP_ARG_LIST) {
		if (known_set(&list->children[i], a, &req->known_uids, err) < 0)
			return -1;
		req->has_known_uids = true;
		i++;
	}
	if (i < list->count) {
		const struct imap_arg *m = &list->children[i];

		if (m->type != IMAP_ARG_LIST || m->count != 2 ||
		    known_set(&m->children[0], a, &req->known_seqs, err) < 0 ||
		    known_set(&m->children[1], a, &req->known_seq_uids, err) < 0)
			return fail(err, "Invalid QRESYNC sequence match data");
		req->has_seq_match = true;
		i++;
	}
	if (i != list->count)
		return fail(err, "Invalid QRESYNC parameters");
	return 0;
}

int imap_select_parse(const struct imap_arg *args, size_t nargs, struct imap_arena *a,
		      struct imap_select_request *req_r, struct imap_parse_error *err)
{
	memset(req_r, 0, sizeof(*req_r));
	if (nargs < 1 || nargs > 2 || !imap_arg_astring(&args[0], &req_r->mailbox))
		return fail(err, "SELECT needs a mailbox name");
	if (nargs == 1)
		return 0;
	const struct imap_arg *params = &args[1];

	if (params->type != IMAP_ARG_LIST)
		return fail(err, "Invalid SELECT parameters");
	for (size_t k = 0; k < params->count; k++) {
		const struct imap_arg *p = &params->children[k];

		if (imap_arg_atom_is(p, "CONDSTORE") && !req_r->condstore) {
			req_r->condstore = true;
		} else if (imap_arg_atom_is(p, "QRESYNC") && !req_r->qresync) {
			if (k + 1 >= params->count)
				return fail(err, "Invalid QRESYNC parameters");
			if (parse_qresync(&params->children[++k], a, req_r, err) < 0)
				return -1;
			req_r->qresync = true;
		} else {
			return fail(err, "Unknown SELECT parameter");
		}
	}
	return 0;
}

/* ---- APPEND ---- */

static int parse_catenate(const struct imap_arg *list, struct imap_arena *a,
			  struct imap_append_message *m, struct imap_parse_error *err)
{
	if (list->type != IMAP_ARG_LIST || list->count == 0 || list->count % 2 != 0)
		return fail(err, "CATENATE needs a list of TEXT and URL parts");
	if (list->count / 2 > IMAP_CATENATE_MAX_PARTS)
		return fail(err, "Too many CATENATE parts");
	m->parts = imap_arena_alloc(a, list->count / 2 * sizeof(*m->parts));
	for (size_t i = 0; i < list->count; i += 2) {
		const struct imap_arg *kind = &list->children[i], *v = &list->children[i + 1];
		struct imap_catenate_part *p = &m->parts[m->nparts++];

		if (imap_arg_atom_is(kind, "TEXT")) {
			if (v->type != IMAP_ARG_LITERAL)
				return fail(err, "CATENATE TEXT needs a literal");
			p->data = v->str;
			p->binary = v->literal8;
		} else if (imap_arg_atom_is(kind, "URL")) {
			if (!imap_arg_astring(v, &p->data) || v->type == IMAP_ARG_NIL)
				return fail(err, "CATENATE URL needs a URL");
			p->url = true;
		} else {
			return fail(err, "CATENATE parts are TEXT or URL");
		}
	}
	return 0;
}

int imap_append_parse(const struct imap_arg *args, size_t nargs, struct imap_arena *a,
		      struct imap_append_request *req_r, struct imap_parse_error *err)
{
	size_t i = 1, cap;

	memset(req_r, 0, sizeof(*req_r));
	if (nargs < 2 || !imap_arg_astring(&args[0], &req_r->mailbox))
		return fail(err, "APPEND needs a mailbox and a message literal");
	/* each message takes at least one argument */
	cap = nargs - 1 < IMAP_APPEND_MAX_MESSAGES ? nargs - 1 : IMAP_APPEND_MAX_MESSAGES;
	req_r->msgs = imap_arena_alloc(a, cap * sizeof(*req_r->msgs));
	while (i < nargs) {
		struct imap_append_message *m;

		if (req_r->count == IMAP_APPEND_MAX_MESSAGES)
			return fail(err, "Too many messages in one APPEND");
		m = &req_r->msgs[req_r->count++];
		if (i < nargs && args[i].type == IMAP_ARG_LIST) {
			if (imap_flags_parse(&args[i], 1, a, &m->flags, err) < 0)
				return -1;
			m->has_flags = true;
			i++;
		}
		if (i < nargs && args[i].type == IMAP_ARG_QUOTED) {
			if (imap_datetime_parse(args[i].str, &m->date, &m->zone) < 0)
				return fail(err, "Invalid APPEND date-time");
			m->has_date = true;
			i++;
		}
		if (i >= nargs)
			return fail(err, "APPEND needs the message as a literal");
		if (args[i].type == IMAP_ARG_LITERAL) {
			m->message = args[i].str;
			m->binary = args[i].literal8;
			i++;
		} else if (imap_arg_atom_is(&args[i], "UTF8")) {
			const struct imap_arg *l = i + 1 < nargs ? &args[i + 1] : NULL;
			if (l == NULL || l->type != IMAP_ARG_LIST || l->count != 1 ||
			    l->children[0].type != IMAP_ARG_LITERAL)
				return fail(err, "Syntax: APPEND mailbox [flags] [date] UTF8 (literal)");
			m->message = l->children[0].str;
			m->binary = l->children[0].literal8;
			m->utf8 = true;
			i += 2;
		} else if (imap_arg_atom_is(&args[i], "CATENATE")) {
			if (i + 1 >= nargs || parse_catenate(&args[i + 1], a, m, err) < 0)
				return i + 1 >= nargs ? fail(err, "CATENATE needs a list") : -1;
			i += 2;
		} else {
			return fail(err, "APPEND needs the message as a literal");
		}
	}
	req_r->has_flags = req_r->msgs[0].has_flags;
	req_r->flags = req_r->msgs[0].flags;
	req_r->has_date = req_r->msgs[0].has_date;
	req_r->date = req_r->msgs[0].date;
	req_r->zone = req_r->msgs[0].zone;
	req_r->message = req_r->msgs[0].message;
	req_r->binary = req_r->msgs[0].binary;
	return 0;
}
