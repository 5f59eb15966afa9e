/* IMAP SEARCH program parser: from the argument tree to an AST of search
 * keys (struct imap_search_key) with dates, numbers and sequence sets
 * already parsed.
 *
 * Invariants: the AST lives in the caller's arena and borrows strings from
 * the reader; nesting of NOT / OR / ( ) is bounded by IMAP_MAX_SEARCH_DEPTH
 * so recursion depth is bounded whatever the client sends; numbers are
 * range-checked (LARGER/SMALLER: number64, MODSEQ: mod-sequence-valzer).
 *
 * RFC 3501 6.4.4 and 9 (search-key), RFC 9051 6.4.4 and 9 (search-program,
 * search-return-opts), RFC 4731 (ESEARCH RETURN: MIN MAX COUNT ALL), RFC
 * 5182 (SAVE, "$"), RFC 7162 3.1.5 (MODSEQ search criterion), RFC 5032
 * (WITHIN: OLDER, YOUNGER), RFC 8514 (SAVEDBEFORE, SAVEDON, SAVEDSINCE,
 * SAVEDATESUPPORTED), RFC 8474 (EMAILID, THREADID). */
#include "imap/parse.h"

#include <stdlib.h>
#include <string.h>

#define NUMBER64_MAX ((uint64_t)INT64_MAX)

enum key_arg {
	KA_NONE, KA_STRING, KA_DATE, KA_NUMBER, KA_KEYWORD, KA_HEADER, KA_UID,
	KA_NOT, KA_OR, KA_MODSEQ, KA_INTERVAL, KA_OBJECTID,
};

static const struct {
	const char *name;
	enum imap_search_type type;
	enum key_arg arg;
} search_keys[] = {
	{ "ALL", IMAP_SK_ALL, KA_NONE }, { "ANSWERED", IMAP_SK_ANSWERED, KA_NONE },
	{ "BCC", IMAP_SK_BCC, KA_STRING }, { "BEFORE", IMAP_SK_BEFORE, KA_DATE },
	{ "BODY", IMAP_SK_BODY, KA_STRING }, { "CC", IMAP_SK_CC, KA_STRING },
	{ "DELETED", IMAP_SK_DELETED, KA_NONE }, { "DRAFT", IMAP_SK_DRAFT, KA_NONE },
	{ "FLAGGED", IMAP_SK_FLAGGED, KA_NONE }, { "FROM", IMAP_SK_FROM, KA_STRING },
	{ "HEADER", IMAP_SK_HEADER, KA_HEADER }, { "KEYWORD", IMAP_SK_KEYWORD, KA_KEYWORD },
	{ "LARGER", IMAP_SK_LARGER, KA_NUMBER }, { "NEW", IMAP_SK_NEW, KA_NONE },
	{ "NOT", IMAP_SK_NOT, KA_NOT }, { "OLD", IMAP_SK_OLD, KA_NONE },
	{ "ON", IMAP_SK_ON, KA_DATE }, { "OR", IMAP_SK_OR, KA_OR },
	{ "RECENT", IMAP_SK_RECENT, KA_NONE }, { "SEEN", IMAP_SK_SEEN, KA_NONE },
	{ "SENTBEFORE", IMAP_SK_SENTBEFORE, KA_DATE }, { "SENTON", IMAP_SK_SENTON, KA_DATE },
	{ "SENTSINCE", IMAP_SK_SENTSINCE, KA_DATE }, { "SINCE", IMAP_SK_SINCE, KA_DATE },
	{ "SMALLER", IMAP_SK_SMALLER, KA_NUMBER }, { "SUBJECT", IMAP_SK_SUBJECT, KA_STRING },
	{ "TEXT", IMAP_SK_TEXT, KA_STRING }, { "TO", IMAP_SK_TO, KA_STRING },
	{ "UID", IMAP_SK_UID, KA_UID }, { "UNANSWERED", IMAP_SK_UNANSWERED, KA_NONE },
	{ "UNDELETED", IMAP_SK_UNDELETED, KA_NONE }, { "UNDRAFT", IMAP_SK_UNDRAFT, KA_NONE },
	{ "UNFLAGGED", IMAP_SK_UNFLAGGED, KA_NONE }, { "UNKEYWORD", IMAP_SK_UNKEYWORD, KA_KEYWORD },
	{ "UNSEEN", IMAP_SK_UNSEEN, KA_NONE }, { "MODSEQ", IMAP_SK_MODSEQ, KA_MODSEQ },
	{ "OLDER", IMAP_SK_OLDER, KA_INTERVAL }, { "YOUNGER", IMAP_SK_YOUNGER, KA_INTERVAL },
	{ "SAVEDBEFORE", IMAP_SK_SAVEDBEFORE, KA_DATE }, { "SAVEDON", IMAP_SK_SAVEDON, KA_DATE },
	{ "SAVEDSINCE", IMAP_SK_SAVEDSINCE, KA_DATE },
	{ "SAVEDATESUPPORTED", IMAP_SK_SAVEDATESUPPORTED, KA_NONE },
	{ "EMAILID", IMAP_SK_EMAILID, KA_OBJECTID }, { "THREADID", IMAP_SK_THREADID, KA_OBJECTID },
};

struct sp {
	const struct imap_arg *args;
	size_t n, pos;
	struct imap_arena *a;
	struct imap_search_program *prog;
	struct imap_parse_error *err;
};

static int fail(struct sp *p, const char *text)
{
	*p->err = (struct imap_parse_error){ IMAP_ERR_SYNTAX, text };
	return -1;
}

static const struct imap_arg *next_arg(struct sp *p)
{
	return p->pos < p->n ? &p->args[p->pos++] : NULL;
}

static int parse_key(struct sp *p, unsigned depth, struct imap_search_key *key);

/* Parse keys from args[from..to) into an AND node's children. */
static int parse_keys(struct sp *p, const struct imap_arg *args, size_t n, unsigned depth,
		      struct imap_search_key *and)
{
	struct sp sub = *p;
	struct imap_search_key *v = NULL;
	size_t cap = 0, count = 0;

	sub.args = args;
	sub.n = n;
	sub.pos = 0;
	if (n == 0)
		return fail(p, "Missing search key");
	while (sub.pos < sub.n) {
		if (count == cap) {
			cap = cap ? cap * 2 : 8;
			v = xrealloc(v, cap * sizeof(*v));
		}
		memset(&v[count], 0, sizeof(v[0]));
		if (parse_key(&sub, depth, &v[count]) < 0) {
			free(v);
			return -1;
		}
		count++;
	}
	and->type = IMAP_SK_AND;
	and->count = count;
	and->children = imap_arena_alloc(p->a, count * sizeof(*v));
	memcpy(and->children, v, count * sizeof(*v));
	free(v);
	return 0;
}

static bool looks_like_seqset(struct slice s)
{
	return s.len > 0 && ((s.p[0] >= '0' && s.p[0] <= '9') || s.p[0] == '*' || s.p[0] == '$');
}

static int parse_key(struct sp *p, unsigned depth, struct imap_search_key *key)
{
	const struct imap_arg *arg = next_arg(p);
	struct slice name;
	size_t i;

	if (depth >= IMAP_MAX_SEARCH_DEPTH)
		return fail(p, "Search program too deeply nested");
	if (arg == NULL)
		return fail(p, "Missing search key");
	if (arg->type == IMAP_ARG_LIST)
		return parse_keys(p, arg->children, arg->count, depth + 1, key);
	if (arg->type == IMAP_ARG_NUMBER ||
	    (arg->type == IMAP_ARG_ATOM && looks_like_seqset(arg->str))) {
		key->type = IMAP_SK_SEQSET;
		if (imap_seqset_parse(arg->str, p->a, &key->set, p->err) < 0)
			return -1;
		return 0;
	}
	if (!imap_arg_atom(arg, &name))
		return fail(p, "Invalid search key");
	for (i = 0; i < sizeof(search_keys) / sizeof(search_keys[0]); i++)
		if (slice_eq_ci(name, search_keys[i].name))
			break;
	if (i == sizeof(search_keys) / sizeof(search_keys[0]))
		return fail(p, "Unknown search key");
	key->type = search_keys[i].type;

	switch (search_keys[i].arg) {
	case KA_NONE:
		return 0;
	case KA_STRING:
		arg = next_arg(p);
		if (arg == NULL || !imap_arg_astring(arg, &key->str))
			return fail(p, "Missing search string");
		return 0;
	case KA_HEADER:
		arg = next_arg(p);
		if (arg == NULL || !imap_arg_astring(arg, &key->str) || key->str.len == 0)
			return fail(p, "Missing header field name");
		for (size_t k = 0; k < key->str.len; k++) {
			unsigned char c = (unsigned char)key->str.p[k];
			if (c <= 0x20 || c >= 0x7f || c == ':')
				return fail(p, "Invalid header field name");
		}
		arg = next_arg(p);
		if (arg == NULL || !imap_arg_astring(arg, &key->str2))
			return fail(p, "Missing search string");
		return 0;
	case KA_DATE: {
		struct slice s;

		arg = next_arg(p);
		if (arg == NULL || !imap_arg_astring(arg, &s) || imap_date_parse(s, &key->date) < 0)
			return fail(p, "Invalid search date");
		return 0;
	}
	case KA_NUMBER:
		arg = next_arg(p);
		if (arg == NULL || !imap_arg_number(arg, NUMBER64_MAX, &key->number))
			return fail(p, "Invalid search size");
		return 0;
	case KA_INTERVAL:
		/* RFC 5032: nz-number of seconds */
		arg = next_arg(p);
		if (arg == NULL || !imap_arg_number(arg, UINT32_MAX, &key->number) ||
		    key->number == 0)
			return fail(p, "Invalid interval");
		return 0;
	case KA_OBJECTID:
		/* RFC 8474 7: objectid = 1*255(ALPHA / DIGIT / "_" / "-") */
		arg = next_arg(p);
		if (arg == NULL || !imap_arg_atom(arg, &key->str) || key->str.len == 0 ||
		    key->str.len > 255)
			return fail(p, "Invalid object id");
		for (size_t k = 0; k < key->str.len; k++) {
			char c = key->str.p[k];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '_' || c == '-'))
				return fail(p, "Invalid object id");
		}
		return 0;
	case KA_KEYWORD:
		arg = next_arg(p);
		if (arg == NULL || !imap_arg_atom(arg, &key->str) || !imap_is_atom(key->str))
			return fail(p, "Invalid keyword");
		return 0;
	case KA_UID:
		arg = next_arg(p);
		if (arg == NULL)
			return fail(p, "Missing UID set");
		return imap_seqset_parse_arg(arg, p->a, &key->set, p->err);
	case KA_NOT:
		key->count = 1;
		key->children = imap_arena_alloc(p->a, sizeof(*key->children));
		return parse_key(p, depth + 1, &key->children[0]);
	case KA_OR:
		key->count = 2;
		key->children = imap_arena_alloc(p->a, 2 * sizeof(*key->children));
		if (parse_key(p, depth + 1, &key->children[0]) < 0)
			return -1;
		return parse_key(p, depth + 1, &key->children[1]);
	case KA_MODSEQ:
		p->prog->uses_modseq = true;
		arg = next_arg(p);
		if (arg != NULL && (arg->type == IMAP_ARG_QUOTED || arg->type == IMAP_ARG_LITERAL)) {
			/* entry-name = DQUOTE "/flags/" attr-flag DQUOTE */
			struct slice type;

			key->entry_name = arg->str;
			if (!slice_starts_ci(arg->str, "/flags/") || arg->str.len <= 7)
				return fail(p, "Invalid MODSEQ entry name");
			arg = next_arg(p);
			if (arg == NULL || !imap_arg_atom(arg, &type))
				return fail(p, "Missing MODSEQ entry type");
			if (slice_eq_ci(type, "priv"))
				key->entry_type = IMAP_ENTRY_PRIV;
			else if (slice_eq_ci(type, "shared"))
				key->entry_type = IMAP_ENTRY_SHARED;
			else if (slice_eq_ci(type, "all"))
				key->entry_type = IMAP_ENTRY_ALL;
			else
				return fail(p, "Invalid MODSEQ entry type");
			arg = next_arg(p);
		}
		if (arg == NULL || !imap_arg_number(arg, NUMBER64_MAX, &key->number))
			return fail(p, "Invalid MODSEQ value");
		return 0;
	}
	return fail(p, "Invalid search key");
}

static int parse_return(struct sp *p, const struct imap_arg *list)
{
	if (list == NULL || list->type != IMAP_ARG_LIST)
		return fail(p, "RETURN needs a list of options");
	p->prog->esearch = true;
	for (size_t i = 0; i < list->count; i++) {
		const struct imap_arg *o = &list->children[i];

		if (imap_arg_atom_is(o, "MIN"))
			p->prog->ret |= IMAP_SEARCH_RET_MIN;
		else if (imap_arg_atom_is(o, "MAX"))
			p->prog->ret |= IMAP_SEARCH_RET_MAX;
		else if (imap_arg_atom_is(o, "COUNT"))
			p->prog->ret |= IMAP_SEARCH_RET_COUNT;
		else if (imap_arg_atom_is(o, "ALL"))
			p->prog->ret |= IMAP_SEARCH_RET_ALL;
		else if (imap_arg_atom_is(o, "SAVE"))
			p->prog->ret |= IMAP_SEARCH_RET_SAVE;
		else
			return fail(p, "Unknown RETURN option");
	}
	/* RFC 4731 3.1: RETURN () is RETURN (ALL) */
	if (list->count == 0)
		p->prog->ret = IMAP_SEARCH_RET_ALL;
	return 0;
}

int imap_search_parse(const struct imap_arg *args, size_t nargs, struct imap_arena *a,
		      struct imap_search_program *prog_r, struct imap_parse_error *err)
{
	struct sp p = { args, nargs, 0, a, prog_r, err };

	memset(prog_r, 0, sizeof(*prog_r));
	if (p.pos < nargs && imap_arg_atom_is(&args[p.pos], "RETURN")) {
		p.pos++;
		if (parse_return(&p, next_arg(&p)) < 0)
			return -1;
	}
	if (p.pos < nargs && imap_arg_atom_is(&args[p.pos], "CHARSET")) {
		struct slice cs;
		const struct imap_arg *arg;

		p.pos++;
		arg = next_arg(&p);
		if (arg == NULL || !imap_arg_astring(arg, &cs))
			return fail(&p, "Missing charset");
		if (slice_eq_ci(cs, "UTF-8")) {
			prog_r->charset = IMAP_CHARSET_UTF8;
		} else if (slice_eq_ci(cs, "US-ASCII")) {
			prog_r->charset = IMAP_CHARSET_US_ASCII;
		} else {
			*err = (struct imap_parse_error){ IMAP_ERR_BADCHARSET, "Unsupported charset" };
			return -1;
		}
	}
	return parse_keys(&p, p.pos < nargs ? args + p.pos : NULL, nargs - p.pos, 0, &prog_r->root);
}
