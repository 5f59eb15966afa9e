/* IMAP FETCH and STORE argument parsers, and flag lists.
 *
 * FETCH: the sequence set, the attribute (or macro, or list of them), each
 * BODY[...] / BINARY[...] section split into part numbers, a section text
 * and header field names, the <offset.length> partial, and the CONDSTORE /
 * QRESYNC modifiers.  STORE: the set, the UNCHANGEDSINCE modifier, the
 * operation and the flags.  Flags: system flags as a bit mask, keywords
 * validated as atoms and deduplicated case-insensitively.
 *
 * Invariants: results live in the caller's arena; part numbers are nonzero
 * 32-bit, at most IMAP_MAX_SECTION_PARTS of them; partial offsets and
 * lengths are below 2^63.
 *
 * RFC 9051 6.4.5, 6.4.6 and 9 (fetch-att, section, partial, store-att-flags,
 * flag), RFC 3501 6.4.5 (RFC822.*), RFC 3516 (BINARY), RFC 8514 (SAVEDATE),
 * RFC 8970 (PREVIEW), RFC 8474 (EMAILID, THREADID), RFC 7162 3.1.3,
 * 3.1.4, 3.2.6 (CHANGEDSINCE, UNCHANGEDSINCE, VANISHED). */
#include "imap/parse.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NUMBER64_MAX ((uint64_t)INT64_MAX)

static int fail(struct imap_parse_error *err, const char *text)
{
	*err = (struct imap_parse_error){ IMAP_ERR_SYNTAX, text };
	return -1;
}

/* ---- sections ---- */

/* Read a nonzero 32-bit decimal at s[*pos]. */
static bool part_number(struct slice s, size_t *pos, uint32_t *n_r)
{
	size_t i = *pos;
	uint64_t n = 0;

	if (i >= s.len || s.p[i] < '1' || s.p[i] > '9')
		return false;
	while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9') {
		n = n * 10 + (uint64_t)(s.p[i] - '0');
		if (n > UINT32_MAX)
			return false;
		i++;
	}
	*n_r = (uint32_t)n;
	*pos = i;
	return true;
}

static bool valid_field_name(struct slice s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (c <= 0x20 || c >= 0x7f || c == ':')
			return false;
	}
	return true;
}

static int parse_section(const struct imap_arg *sec, bool binary, struct imap_arena *a,
			 struct imap_fetch_item *item, struct imap_parse_error *err)
{
	struct slice text = { "", 0 };
	size_t pos = 0, nparts = 0;
	uint32_t parts[IMAP_MAX_SECTION_PARTS];

	item->spec = IMAP_SECTION_ALL;
	if (sec->count > 0) {
		const struct imap_arg *first = &sec->children[0];

		if (first->type != IMAP_ARG_ATOM && first->type != IMAP_ARG_NUMBER)
			return fail(err, "Invalid section");
		text = first->str;
	}
	/* section-part = nz-number *("." nz-number) */
	while (pos < text.len && text.p[pos] >= '0' && text.p[pos] <= '9') {
		if (nparts == IMAP_MAX_SECTION_PARTS)
			return fail(err, "Section nested too deeply");
		if (!part_number(text, &pos, &parts[nparts]))
			return fail(err, "Invalid section part number");
		nparts++;
		if (pos == text.len)
			break;
		if (text.p[pos] != '.' || pos + 1 == text.len)
			return fail(err, "Invalid section");
		pos++;
	}
	struct slice rest = { text.p + pos, text.len - pos };
	size_t want_children = sec->count > 0 ? 1 : 0;

	if (rest.len > 0) {
		if (binary)
			return fail(err, "Invalid BINARY section");
		if (slice_eq_ci(rest, "HEADER")) {
			item->spec = IMAP_SECTION_HEADER;
		} else if (slice_eq_ci(rest, "HEADER.FIELDS")) {
			item->spec = IMAP_SECTION_HEADER_FIELDS;
			want_children = 2;
		} else if (slice_eq_ci(rest, "HEADER.FIELDS.NOT")) {
			item->spec = IMAP_SECTION_HEADER_FIELDS_NOT;
			want_children = 2;
		} else if (slice_eq_ci(rest, "TEXT")) {
			item->spec = IMAP_SECTION_TEXT;
		} else if (slice_eq_ci(rest, "MIME")) {
			if (nparts == 0)
				return fail(err, "MIME needs a part number");
			item->spec = IMAP_SECTION_MIME;
		} else {
			return fail(err, "Invalid section");
		}
	}
	if (sec->count != want_children)
		return fail(err, want_children == 2 ? "HEADER.FIELDS needs a list of field names" :
			    "Invalid section");
	if (want_children == 2) {
		const struct imap_arg *list = &sec->children[1];

		if (list->type != IMAP_ARG_LIST || list->count == 0)
			return fail(err, "HEADER.FIELDS needs a list of field names");
		item->fields = imap_arena_alloc(a, list->count * sizeof(*item->fields));
		for (size_t i = 0; i < list->count; i++) {
			if (!imap_arg_astring(&list->children[i], &item->fields[i]) ||
			    !valid_field_name(item->fields[i]))
				return fail(err, "Invalid header field name");
		}
		item->nfields = list->count;
	}
	if (nparts > 0) {
		item->parts = imap_arena_alloc(a, nparts * sizeof(*item->parts));
		memcpy(item->parts, parts, nparts * sizeof(*parts));
		item->nparts = nparts;
	}
	return 0;
}

/* partial = "<" number64 "." nz-number64 ">" */
static int parse_partial(struct slice s, struct imap_fetch_item *item,
			 struct imap_parse_error *err)
{
	size_t i = 0;
	uint64_t v[2] = { 0, 0 };

	for (int k = 0; k < 2; k++) {
		size_t start = i;

		while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9') {
			v[k] = v[k] * 10 + (uint64_t)(s.p[i] - '0');
			if (v[k] > NUMBER64_MAX)
				return fail(err, "Invalid partial");
			i++;
		}
		if (i == start)
			return fail(err, "Invalid partial");
		if (k == 0) {
			if (i >= s.len || s.p[i] != '.')
				return fail(err, "Invalid partial");
			i++;
		}
	}
	if (i != s.len || v[1] == 0)
		return fail(err, "Invalid partial");
	item->partial = true;
	item->offset = v[0];
	item->length = v[1];
	return 0;
}

/* ---- attributes ---- */

static const struct {
	const char *name;
	enum imap_fetch_att att;
} simple_atts[] = {
	{ "FLAGS", IMAP_FETCH_FLAGS }, { "INTERNALDATE", IMAP_FETCH_INTERNALDATE },
	{ "RFC822.SIZE", IMAP_FETCH_RFC822_SIZE }, { "ENVELOPE", IMAP_FETCH_ENVELOPE },
	{ "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE }, { "UID", IMAP_FETCH_UID },
	{ "MODSEQ", IMAP_FETCH_MODSEQ }, { "RFC822", IMAP_FETCH_RFC822 },
	{ "RFC822.HEADER", IMAP_FETCH_RFC822_HEADER }, { "RFC822.TEXT", IMAP_FETCH_RFC822_TEXT },
	{ "SAVEDATE", IMAP_FETCH_SAVEDATE }, { "EMAILID", IMAP_FETCH_EMAILID },
	{ "THREADID", IMAP_FETCH_THREADID },
};

/* Parse one attribute at args[*i] (and its section at args[*i + 1]). */
static int parse_att(const struct imap_arg *args, size_t n, size_t *i, struct imap_arena *a,
		     struct imap_fetch_item *item, struct imap_parse_error *err)
{
	const struct imap_arg *arg = &args[*i];
	const struct imap_arg *sec = NULL;
	struct slice name;

	memset(item, 0, sizeof(*item));
	if (!imap_arg_atom(arg, &name))
		return fail(err, "Invalid fetch attribute");
	(*i)++;
	if (*i < n && args[*i].type == IMAP_ARG_SECTION)
		sec = &args[(*i)++];
	for (size_t k = 0; k < sizeof(simple_atts) / sizeof(simple_atts[0]); k++) {
		if (slice_eq_ci(name, simple_atts[k].name)) {
			item->att = simple_atts[k].att;
			return 0;
		}
	}
	bool binary = false;

	if (slice_eq_ci(name, "PREVIEW")) {
		/* RFC 8970 3.1: PREVIEW [(LAZY)] */
		item->att = IMAP_FETCH_PREVIEW;
		if (sec != NULL)
			return fail(err, "PREVIEW takes no section");
		/* (a list starting with CHANGEDSINCE, say, is FETCH's modifiers) */
		if (*i < n && args[*i].type == IMAP_ARG_LIST && args[*i].count > 0 &&
		    imap_arg_atom_is(&args[*i].children[0], "LAZY")) {
			const struct imap_arg *mods = &args[(*i)++];
			for (size_t k = 0; k < mods->count; k++) {
				if (!imap_arg_atom_is(&mods->children[k], "LAZY"))
					return fail(err, "Unknown PREVIEW modifier");
				item->lazy = true;
			}
		}
		return 0;
	}
	if (slice_eq_ci(name, "BODY")) {
		if (sec == NULL) {
			item->att = IMAP_FETCH_BODY;
			return 0;
		}
		item->att = IMAP_FETCH_BODY_SECTION;
	} else if (slice_eq_ci(name, "BODY.PEEK")) {
		item->att = IMAP_FETCH_BODY_SECTION;
		item->peek = true;
	} else if (slice_eq_ci(name, "BINARY")) {
		item->att = IMAP_FETCH_BINARY;
		binary = true;
	} else if (slice_eq_ci(name, "BINARY.PEEK")) {
		item->att = IMAP_FETCH_BINARY;
		item->peek = true;
		binary = true;
	} else if (slice_eq_ci(name, "BINARY.SIZE")) {
		item->att = IMAP_FETCH_BINARY_SIZE;
		binary = true;
	} else {
		return fail(err, "Unknown fetch attribute");
	}
	if (sec == NULL)
		return fail(err, "Missing section");
	if (parse_section(sec, binary, a, item, err) < 0)
		return -1;
	if (sec->has_partial) {
		if (item->att == IMAP_FETCH_BINARY_SIZE)
			return fail(err, "BINARY.SIZE takes no partial");
		return parse_partial(sec->partial, item, err);
	}
	return 0;
}

static void add_macro(struct imap_fetch_request *req, struct imap_arena *a, bool all, bool full)
{
	static const enum imap_fetch_att fast[] = {
		IMAP_FETCH_FLAGS, IMAP_FETCH_INTERNALDATE, IMAP_FETCH_RFC822_SIZE,
		IMAP_FETCH_ENVELOPE, IMAP_FETCH_BODY,
	};
	size_t n = full ? 5 : all ? 4 : 3;

	req->items = imap_arena_alloc(a, n * sizeof(*req->items));
	for (size_t i = 0; i < n; i++)
		req->items[i].att = fast[i];
	req->nitems = n;
	req->macro = true;
}

int imap_fetch_parse(const struct imap_arg *args, size_t nargs, bool uid, struct imap_arena *a,
		     struct imap_fetch_request *req_r, struct imap_parse_error *err)
{
	size_t i = 1;

	memset(req_r, 0, sizeof(*req_r));
	if (nargs < 2)
		return fail(err, "FETCH needs a sequence set and attributes");
	if (imap_seqset_parse_arg(&args[0], a, &req_r->set, err) < 0)
		return -1;
	if (imap_arg_atom_is(&args[1], "ALL") || imap_arg_atom_is(&args[1], "FAST") ||
	    imap_arg_atom_is(&args[1], "FULL")) {
		add_macro(req_r, a, imap_arg_atom_is(&args[1], "ALL"),
			  imap_arg_atom_is(&args[1], "FULL"));
		i = 2;
	} else if (args[1].type == IMAP_ARG_LIST) {
		const struct imap_arg *list = &args[1];
		size_t k = 0, count = 0;

		if (list->count == 0)
			return fail(err, "Empty fetch attribute list");
		req_r->items = imap_arena_alloc(a, list->count * sizeof(*req_r->items));
		while (k < list->count) {
			if (parse_att(list->children, list->count, &k, a, &req_r->items[count],
				      err) < 0)
				return -1;
			count++;
		}
		req_r->nitems = count;
		i = 2;
	} else {
		req_r->items = imap_arena_alloc(a, sizeof(*req_r->items));
		if (parse_att(args, nargs, &i, a, &req_r->items[0], err) < 0)
			return -1;
		req_r->nitems = 1;
	}
	if (i < nargs) {
		const struct imap_arg *mods = &args[i++];

		if (mods->type != IMAP_ARG_LIST || mods->count == 0)
			return fail(err, "Invalid fetch modifiers");
		for (size_t k = 0; k < mods->count; k++) {
			const struct imap_arg *m = &mods->children[k];

			if (imap_arg_atom_is(m, "CHANGEDSINCE")) {
				if (req_r->changedsince_given || k + 1 >= mods->count ||
				    !imap_arg_number(&m[1], NUMBER64_MAX, &req_r->changedsince) ||
				    req_r->changedsince == 0)
					return fail(err, "Invalid CHANGEDSINCE");
				req_r->changedsince_given = true;
				k++;
			} else if (imap_arg_atom_is(m, "VANISHED")) {
				if (!uid)
					return fail(err, "VANISHED is allowed only with UID FETCH");
				req_r->vanished = true;
			} else {
				return fail(err, "Unknown fetch modifier");
			}
		}
		/* RFC 7162 3.2.6: VANISHED requires CHANGEDSINCE */
		if (req_r->vanished && !req_r->changedsince_given)
			return fail(err, "VANISHED requires CHANGEDSINCE");
	}
	if (i != nargs)
		return fail(err, "Too many FETCH arguments");
	return 0;
}

/* ---- flags ---- */

static const struct {
	const char *name;
	unsigned bit;
} system_flags[] = {
	{ "\\Answered", IMAP_FLAG_ANSWERED }, { "\\Flagged", IMAP_FLAG_FLAGGED },
	{ "\\Deleted", IMAP_FLAG_DELETED }, { "\\Seen", IMAP_FLAG_SEEN },
	{ "\\Draft", IMAP_FLAG_DRAFT },
};

static int slice_cmp_ci(const void *x, const void *y)
{
	const struct slice *a = x, *b = y;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = strncasecmp(a->p, b->p, n);

	if (c != 0)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

int imap_flags_parse(const struct imap_arg *args, size_t n, struct imap_arena *a,
		     struct imap_flags *flags_r, struct imap_parse_error *err)
{
	size_t nk = 0;

	memset(flags_r, 0, sizeof(*flags_r));
	if (n == 1 && args[0].type == IMAP_ARG_LIST) {
		n = args[0].count;
		args = args[0].children;
	}
	if (n > 0)
		flags_r->keywords = imap_arena_alloc(a, n * sizeof(*flags_r->keywords));
	for (size_t i = 0; i < n; i++) {
		struct slice f;

		if (!imap_arg_atom(&args[i], &f))
			return fail(err, "Invalid flag");
		if (f.len > 0 && f.p[0] == '\\') {
			size_t k;

			for (k = 0; k < sizeof(system_flags) / sizeof(system_flags[0]); k++)
				if (slice_eq_ci(f, system_flags[k].name))
					break;
			if (k < sizeof(system_flags) / sizeof(system_flags[0])) {
				flags_r->system |= system_flags[k].bit;
				continue;
			}
			if (slice_eq_ci(f, "\\Recent"))
				return fail(err, "\\Recent cannot be set");
			return fail(err, "Invalid system flag");
		}
		if (!imap_is_atom(f))
			return fail(err, "Invalid keyword");
		flags_r->keywords[nk++] = f;
	}
	if (nk > 1) {
		size_t out = 0;

		qsort(flags_r->keywords, nk, sizeof(struct slice), slice_cmp_ci);
		for (size_t i = 1; i < nk; i++)
			if (slice_cmp_ci(&flags_r->keywords[out], &flags_r->keywords[i]) != 0)
				flags_r->keywords[++out] = flags_r->keywords[i];
		nk = out + 1;
	}
	flags_r->nkeywords = nk;
	return 0;
}

/* ---- STORE ---- */

int imap_store_parse(const struct imap_arg *args, size_t nargs, struct imap_arena *a,
		     struct imap_store_request *req_r, struct imap_parse_error *err)
{
	size_t i = 1;
	struct slice op;

	memset(req_r, 0, sizeof(*req_r));
	if (nargs < 3)
		return fail(err, "STORE needs a sequence set, an operation and flags");
	if (imap_seqset_parse_arg(&args[0], a, &req_r->set, err) < 0)
		return -1;
	if (args[1].type == IMAP_ARG_LIST) {
		const struct imap_arg *mods = &args[1];

		for (size_t k = 0; k < mods->count; k++) {
			if (imap_arg_atom_is(&mods->children[k], "UNCHANGEDSINCE") &&
			    !req_r->unchangedsince_given && k + 1 < mods->count &&
			    imap_arg_number(&mods->children[k + 1], NUMBER64_MAX,
					    &req_r->unchangedsince)) {
				req_r->unchangedsince_given = true;
				k++;
				continue;
			}
			return fail(err, "Invalid STORE modifier");
		}
		if (mods->count == 0)
			return fail(err, "Invalid STORE modifier");
		i = 2;
	}
	if (i + 1 >= nargs || !imap_arg_atom(&args[i], &op))
		return fail(err, "STORE needs an operation and flags");
	i++;
	if (op.len > 0 && (op.p[0] == '+' || op.p[0] == '-')) {
		req_r->op = op.p[0] == '+' ? IMAP_STORE_ADD : IMAP_STORE_REMOVE;
		op.p++;
		op.len--;
	}
	if (slice_eq_ci(op, "FLAGS.SILENT"))
		req_r->silent = true;
	else if (!slice_eq_ci(op, "FLAGS"))
		return fail(err, "Invalid STORE operation");
	/* flag-list, or flags separated by spaces (RFC 9051 store-att-flags) */
	if (args[i].type == IMAP_ARG_LIST && i + 1 != nargs)
		return fail(err, "Too many STORE arguments");
	return imap_flags_parse(args + i, nargs - i, a, &req_r->flags, err);
}
