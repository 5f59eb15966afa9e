/* METADATA argument parsing (RFC 5464 section 5 grammar): GETMETADATA
 * options (MAXSIZE, DEPTH), the entry list, SETMETADATA's entry/value
 * pairs, and the entry-name rules of section 3.2.
 *
 * Invariants: counts are bounded by IMAP_METADATA_MAX_ITEMS and names by
 * IMAP_METADATA_MAX_ENTRY before anything is allocated; entry names are
 * lowercased copies in the arena (names are case-insensitive, 3.2); the
 * values are the reader's bytes, never copied. */
#include "imap/metadata.h"

#include <string.h>

static int fail(struct imap_parse_error *err, const char *text)
{
	*err = (struct imap_parse_error){ IMAP_ERR_SYNTAX, text };
	return -1;
}

bool imap_metadata_entry_valid(struct slice e, bool top_allowed)
{
	size_t prefix;

	if (e.len == 0 || e.len > IMAP_METADATA_MAX_ENTRY)
		return false;
	if (slice_starts_ci(e, "/private"))
		prefix = 8;
	else if (slice_starts_ci(e, "/shared"))
		prefix = 7;
	else
		return false;
	if (e.len == prefix)
		return top_allowed;
	if (e.p[prefix] != '/' || e.p[e.len - 1] == '/')
		return false;
	for (size_t i = 0; i < e.len; i++) {
		unsigned char c = (unsigned char)e.p[i];
		if (c <= 0x20 || c >= 0x7f || c == '*' || c == '%')
			return false;
		if (c == '/' && i + 1 < e.len && e.p[i + 1] == '/')
			return false;
	}
	return true;
}

static char *entry_copy(struct imap_arena *a, struct slice e)
{
	char *p = imap_arena_alloc(a, e.len + 1);

	for (size_t i = 0; i < e.len; i++) {
		char c = e.p[i];
		p[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	p[e.len] = '\0';
	return p;
}

static int parse_options(const struct imap_arg *list, struct imap_getmetadata_request *req,
			 struct imap_parse_error *err)
{
	bool seen_maxsize = false, seen_depth = false;

	if (list->count == 0)
		return fail(err, "Empty GETMETADATA options");
	for (size_t i = 0; i < list->count; i++) {
		const struct imap_arg *o = &list->children[i];

		if (imap_arg_atom_is(o, "MAXSIZE")) {
			if (seen_maxsize || ++i >= list->count ||
			    !imap_arg_number(&list->children[i], UINT32_MAX, &req->maxsize))
				return fail(err, "MAXSIZE needs a number");
			req->has_maxsize = seen_maxsize = true;
		} else if (imap_arg_atom_is(o, "DEPTH")) {
			const struct imap_arg *d;

			if (seen_depth || ++i >= list->count)
				return fail(err, "DEPTH needs 0, 1 or infinity");
			d = &list->children[i];
			if (d->type == IMAP_ARG_NUMBER && d->num == 0)
				req->depth = 0;
			else if (d->type == IMAP_ARG_NUMBER && d->num == 1)
				req->depth = 1;
			else if (imap_arg_atom_is(d, "infinity"))
				req->depth = -1;
			else
				return fail(err, "DEPTH needs 0, 1 or infinity");
			seen_depth = true;
		} else {
			return fail(err, "Unknown GETMETADATA option");
		}
	}
	return 0;
}

int imap_getmetadata_parse(const struct imap_arg *args, size_t nargs, struct imap_arena *a,
			   struct imap_getmetadata_request *req_r, struct imap_parse_error *err)
{
	const struct imap_arg *entries;
	size_t pos = 0, n;

	memset(req_r, 0, sizeof(*req_r));
	if (nargs > 0 && args[0].type == IMAP_ARG_LIST) {
		if (parse_options(&args[0], req_r, err) < 0)
			return -1;
		pos = 1;
	}
	if (nargs != pos + 2)
		return fail(err, "Syntax: GETMETADATA [(options)] mailbox entries");
	if (!imap_arg_astring(&args[pos], &req_r->mailbox))
		return fail(err, "Invalid mailbox name");
	entries = &args[pos + 1];
	n = entries->type == IMAP_ARG_LIST ? entries->count : 1;
	if (n == 0 || n > IMAP_METADATA_MAX_ITEMS)
		return fail(err, n == 0 ? "No entries given" : "Too many entries");
	req_r->entries = imap_arena_alloc(a, n * sizeof(*req_r->entries));
	for (size_t i = 0; i < n; i++) {
		const struct imap_arg *e = entries->type == IMAP_ARG_LIST ? &entries->children[i]
									  : entries;
		struct slice name;

		if (!imap_arg_astring(e, &name) || !imap_metadata_entry_valid(name, true))
			return fail(err, "Invalid entry name");
		req_r->entries[i] = entry_copy(a, name);
	}
	req_r->nentries = n;
	return 0;
}

int imap_setmetadata_parse(const struct imap_arg *args, size_t nargs, struct imap_arena *a,
			   struct imap_setmetadata_request *req_r, struct imap_parse_error *err)
{
	const struct imap_arg *list;
	size_t n = 0;

	memset(req_r, 0, sizeof(*req_r));
	if (nargs != 2 || !imap_arg_astring(&args[0], &req_r->mailbox) ||
	    args[1].type != IMAP_ARG_LIST)
		return fail(err, "Syntax: SETMETADATA mailbox (entry value ...)");
	list = &args[1];
	if (list->count == 0 || list->count % 2 != 0)
		return fail(err, "SETMETADATA needs entry and value pairs");
	if (list->count / 2 > IMAP_METADATA_MAX_ITEMS)
		return fail(err, "Too many entries");
	req_r->values = imap_arena_alloc(a, list->count / 2 * sizeof(*req_r->values));
	for (size_t i = 0; i < list->count; i += 2) {
		const struct imap_arg *e = &list->children[i], *v = &list->children[i + 1];
		struct imap_metadata_value *mv = NULL;
		struct slice name;
		char *entry;

		if (!imap_arg_astring(e, &name) || !imap_metadata_entry_valid(name, false))
			return fail(err, "Invalid entry name");
		entry = entry_copy(a, name);
		for (size_t k = 0; k < n; k++)
			if (strcmp(req_r->values[k].entry, entry) == 0)
				mv = &req_r->values[k];
		if (mv == NULL)
			mv = &req_r->values[n++];
		mv->entry = entry;
		if (v->type == IMAP_ARG_NIL || imap_arg_atom_is(v, "NIL")) {
			mv->nil = true;
			mv->value = (struct slice){ NULL, 0 };
		} else if (v->type == IMAP_ARG_QUOTED || v->type == IMAP_ARG_LITERAL) {
			mv->nil = false;
			mv->value = v->str;
		} else {
			return fail(err, "A value is a string, a literal or NIL");
		}
	}
	req_r->count = n;
	return 0;
}
