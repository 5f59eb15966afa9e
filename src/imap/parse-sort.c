/* SORT and THREAD argument parsing (RFC 5256 section 5 grammar, RFC 5267
 * section 3 "SORT RETURN", RFC 5957 DISPLAYFROM / DISPLAYTO) over the
 * argument tree of the command reader.
 *
 *   sort   = ["UID" SP] "SORT" [SP "RETURN" SP "(" [opt *(SP opt)] ")"]
 *            SP sort-criteria SP search-criteria
 *   sort-criteria  = "(" sort-criterion *(SP sort-criterion) ")"
 *   sort-criterion = ["REVERSE" SP] sort-key
 *   thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria
 *   search-criteria = charset 1*(SP search-key)
 *
 * Invariants: at most IMAP_SORT_MAX_CRITERIA criteria are accepted (more
 * is an error, never a silent cut); the charset is mandatory and only
 * UTF-8 and US-ASCII are known; at least one search key follows it.  The
 * search keys themselves are checked later by imap_search_parse(). */
#include "imap/sort.h"

#include <string.h>

static int fail(struct imap_parse_error *err, enum imap_error_kind kind, const char *text)
{
	*err = (struct imap_parse_error){ kind, text };
	return -1;
}

static const struct {
	const char *name;
	enum imap_sort_key key;
} sort_keys[] = {
	{ "ARRIVAL", IMAP_SORT_ARRIVAL }, { "CC", IMAP_SORT_CC }, { "DATE", IMAP_SORT_DATE },
	{ "FROM", IMAP_SORT_FROM }, { "SIZE", IMAP_SORT_SIZE }, { "SUBJECT", IMAP_SORT_SUBJECT },
	{ "TO", IMAP_SORT_TO }, { "DISPLAYFROM", IMAP_SORT_DISPLAYFROM },
	{ "DISPLAYTO", IMAP_SORT_DISPLAYTO },
};

static int parse_criteria(const struct imap_arg *list, struct imap_sort_request *req,
			  struct imap_parse_error *err)
{
	bool reverse = false;

	if (list->type != IMAP_ARG_LIST)
		return fail(err, IMAP_ERR_SYNTAX, "SORT needs a list of sort criteria");
	if (list->count == 0)
		return fail(err, IMAP_ERR_SYNTAX, "Empty list of sort criteria");
	for (size_t i = 0; i < list->count; i++) {
		const struct imap_arg *a = &list->children[i];
		size_t k;

		if (imap_arg_atom_is(a, "REVERSE")) {
			if (reverse)
				return fail(err, IMAP_ERR_SYNTAX, "REVERSE twice in a row");
			reverse = true;
			continue;
		}
		for (k = 0; k < sizeof(sort_keys) / sizeof(sort_keys[0]); k++)
			if (imap_arg_atom_is(a, sort_keys[k].name))
				break;
		if (k == sizeof(sort_keys) / sizeof(sort_keys[0]))
			return fail(err, IMAP_ERR_SYNTAX, "Unknown sort criterion");
		if (req->ncrit == IMAP_SORT_MAX_CRITERIA)
			return fail(err, IMAP_ERR_SYNTAX, "Too many sort criteria");
		req->crit[req->ncrit++] = (struct imap_sort_criterion){ sort_keys[k].key, reverse };
		reverse = false;
	}
	if (reverse)
		return fail(err, IMAP_ERR_SYNTAX, "REVERSE must be followed by a sort key");
	return 0;
}

/* RFC 5267 3.2 / RFC 4731 3.1: MIN MAX COUNT ALL; () means ALL; SAVE
 * (RFC 5182 2.4) keeps the result as "$". */
static int parse_return(const struct imap_arg *list, struct imap_sort_request *req,
			struct imap_parse_error *err)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {
		{ "MIN", IMAP_SEARCH_RET_MIN }, { "MAX", IMAP_SEARCH_RET_MAX },
		{ "COUNT", IMAP_SEARCH_RET_COUNT }, { "ALL", IMAP_SEARCH_RET_ALL },
		{ "SAVE", IMAP_SEARCH_RET_SAVE },
	};

	if (list == NULL || list->type != IMAP_ARG_LIST)
		return fail(err, IMAP_ERR_SYNTAX, "RETURN needs a list of options");
	req->esearch = true;
	for (size_t i = 0; i < list->count; i++) {
		size_t k;
		for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
			if (imap_arg_atom_is(&list->children[i], opts[k].name))
				break;
		if (k == sizeof(opts) / sizeof(opts[0]))
			return fail(err, IMAP_ERR_SYNTAX, "Unknown RETURN option");
		req->ret |= opts[k].bit;
	}
	if (list->count == 0)
		req->ret = IMAP_SEARCH_RET_ALL;
	return 0;
}

/* charset 1*(SP search-key) from args[0..nargs). */
static int parse_search_criteria(const struct imap_arg *args, size_t nargs,
				 enum imap_search_charset *charset_r,
				 const struct imap_arg **keys_r, size_t *nkeys_r,
				 struct imap_parse_error *err)
{
	struct slice cs;

	if (nargs == 0)
		return fail(err, IMAP_ERR_SYNTAX, "Missing charset");
	if ((args[0].type != IMAP_ARG_ATOM && args[0].type != IMAP_ARG_QUOTED &&
	     args[0].type != IMAP_ARG_LITERAL) || !imap_arg_astring(&args[0], &cs))
		return fail(err, IMAP_ERR_SYNTAX, "Missing charset");
	if (slice_eq_ci(cs, "UTF-8"))
		*charset_r = IMAP_CHARSET_UTF8;
	else if (slice_eq_ci(cs, "US-ASCII"))
		*charset_r = IMAP_CHARSET_US_ASCII;
	else
		return fail(err, IMAP_ERR_BADCHARSET, "Unsupported charset");
	if (nargs < 2)
		return fail(err, IMAP_ERR_SYNTAX, "Missing search criteria");
	/* the keys go to imap_search_parse(), which would take these two as
	 * its own prefix words: they are not search keys here */
	if (imap_arg_atom_is(&args[1], "RETURN") || imap_arg_atom_is(&args[1], "CHARSET"))
		return fail(err, IMAP_ERR_SYNTAX, "Unknown search key");
	*keys_r = &args[1];
	*nkeys_r = nargs - 1;
	return 0;
}

int imap_sort_parse(const struct imap_arg *args, size_t nargs, struct imap_sort_request *req_r,
		    struct imap_parse_error *err)
{
	size_t pos = 0;

	memset(req_r, 0, sizeof(*req_r));
	*err = (struct imap_parse_error){ IMAP_ERR_NONE, NULL };
	if (pos < nargs && imap_arg_atom_is(&args[pos], "RETURN")) {
		pos++;
		if (parse_return(pos < nargs ? &args[pos] : NULL, req_r, err) < 0)
			return -1;
		pos++;
	}
	if (pos >= nargs)
		return fail(err, IMAP_ERR_SYNTAX, "SORT needs a list of sort criteria");
	if (parse_criteria(&args[pos], req_r, err) < 0)
		return -1;
	pos++;
	return parse_search_criteria(args + pos, nargs - pos, &req_r->charset, &req_r->keys,
				     &req_r->nkeys, err);
}

int imap_thread_parse(const struct imap_arg *args, size_t nargs,
		      struct imap_thread_request *req_r, struct imap_parse_error *err)
{
	memset(req_r, 0, sizeof(*req_r));
	*err = (struct imap_parse_error){ IMAP_ERR_NONE, NULL };
	if (nargs == 0)
		return fail(err, IMAP_ERR_SYNTAX, "THREAD needs an algorithm");
	if (imap_arg_atom_is(&args[0], "ORDEREDSUBJECT"))
		req_r->algorithm = IMAP_THREAD_ORDEREDSUBJECT;
	else if (imap_arg_atom_is(&args[0], "REFERENCES"))
		req_r->algorithm = IMAP_THREAD_REFERENCES;
	else
		return fail(err, IMAP_ERR_SYNTAX, "Unknown threading algorithm");
	return parse_search_criteria(args + 1, nargs - 1, &req_r->charset, &req_r->keys,
				     &req_r->nkeys, err);
}
