/* MIME structure parser (RFC 2045, RFC 2046 5.1, RFC 2231 parameters,
 * RFC 2183 Content-Disposition, RFC 3282 Content-Language, RFC 2557
 * Content-Location), see mime.h.
 *
 * One forward pass over the lines of the message with an explicit stack of
 * the parts that are still open (the root at the bottom).  A line that
 * starts with "--" is compared with the boundaries of the open multiparts
 * only, so the cost is linear in the message size times at most
 * MIME_MAX_DEPTH short comparisons, never a search per boundary.
 *
 * Boundary rules (RFC 2046 5.1.1, with Dovecot's leniency where the RFC
 * says nothing):
 *  - a delimiter line is "--" + boundary + anything; trailing white space
 *    is ignored; when the text after the boundary starts with "--" it is
 *    the close delimiter.  If several open boundaries are prefixes of the
 *    line, the longest wins (so boundary "a" never steals "--ab"), and
 *    among equals the innermost.
 *  - a delimiter of an outer multipart ends every part inside it, whether
 *    or not their own close delimiter came (MIME_PART_NO_END on the inner
 *    multipart).  After its close delimiter a multipart's boundary is no
 *    longer looked for; the rest, up to an outer delimiter, is its
 *    epilogue.
 *  - the line end before a delimiter belongs to the delimiter, so a part
 *    body ends before it -- except after a part header with no empty line,
 *    which keeps its last line end (then the enclosing parts keep it too).  A part that reaches the end of the message
 *    without any delimiter ends there (nothing is dropped).
 *  - a part header section ends at an empty line, or without one at an
 *    open delimiter line (MIME_PART_NO_HEADER_END) or at the end.
 *  - a multipart whose boundary never appears has no children; the
 *    preamble is in its body but in no part.
 * Limits: a multipart or message part whose children would sit deeper
 * than MIME_MAX_DEPTH is opaque; once MIME_MAX_PARTS parts exist, every
 * boundary stops being looked for and the open parts run to the end of
 * their enclosing text.  Nothing recurses: nested messages are entered
 * with a loop.
 *
 * Invariants: nothing is read at or past msg + len; every part satisfies
 * header_offset + header_size == body_offset and body_offset + body_size
 * <= len; a child lies inside its parent's body. */
#include "mail/mime.h"
#include "mail/charset.h"
#include "mail/header.h"
#include "mail/rfc2047.h"
#include "lib/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- RFC 2045 5.1 lexical pieces ---- */

static bool is_tspecial(unsigned char c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL && c != '\0';
}

/* token: any CHAR except SPACE, CTLs and tspecials; 8-bit bytes are
 * tolerated (they appear in the wild, and reject nothing useful) */
static bool is_token_char(unsigned char c)
{
	return c > 0x20 && c != 0x7f && !is_tspecial(c);
}

/* Skip white space, line breaks and (nested) comments. */
static void skip_cfws(const char **pp, const char *end)
{
	const char *p = *pp;

	while (p < end) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			p++;
		} else if (*p == '(') {
			unsigned depth = 0;
			while (p < end) {
				if (*p == '\\' && p + 1 < end)
					p++;
				else if (*p == '(')
					depth++;
				else if (*p == ')' && --depth == 0) {
					p++;
					break;
				}
				p++;
			}
		} else
			break;
	}
	*pp = p;
}

/* A token at *pp (after CFWS), appended lowercased when lower.  false
 * when there is none. */
static bool read_token(const char **pp, const char *end, struct buf *out, bool lower)
{
	const char *p, *start;

	skip_cfws(pp, end);
	p = start = *pp;
	while (p < end && is_token_char((unsigned char)*p))
		p++;
	if (p == start)
		return false;
	for (const char *q = start; q < p; q++) {
		char c = *q;
		if (lower && c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		buf_append(out, &c, 1);
	}
	*pp = p;
	return true;
}

/* A parameter value: a quoted-string (quoted-pairs undone, line breaks
 * dropped; an unterminated one runs to the end) or a token.  Like
 * Dovecot, an unquoted value stops at white space or a tspecial, and what
 * follows up to the next ';' is skipped by the caller. */
static void read_value(const char **pp, const char *end, struct buf *out)
{
	const char *p;

	skip_cfws(pp, end);
	p = *pp;
	if (p < end && *p == '"') {
		p++;
		while (p < end && *p != '"') {
			if (*p == '\\' && p + 1 < end)
				p++;
			if (*p != '\r' && *p != '\n')
				buf_append(out, p, 1);
			p++;
		}
		if (p < end)
			p++;
		*pp = p;
	} else
		read_token(pp, end, out, false);
}

/* ---- parameters, RFC 2045 5.1 and RFC 2231 ---- */

struct raw_param {
	char *base;        /* attribute without the RFC 2231 suffixes */
	char *value;
	int section;       /* -1 when not a continuation */
	bool extended;     /* ended in '*': charset'lang'%XX or %XX */
	size_t order;
};

static int raw_cmp(const void *a, const void *b)
{
	const struct raw_param *x = a, *y = b;
	int r = strcmp(x->base, y->base);

	if (r != 0)
		return r;
	if (x->section != y->section)
		return x->section < y->section ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void pct_decode(const char *s, struct buf *out)
{
	for (; *s != '\0'; s++) {
		int h, l;
		if (*s == '%' && (h = hexval((unsigned char)s[1])) >= 0 &&
		    (l = hexval((unsigned char)s[2])) >= 0) {
			char c = (char)(h << 4 | l);
			buf_append(out, &c, 1);
			s += 2;
		} else
			buf_append(out, s, 1);
	}
}

/* RFC 2231 7 attribute-char: what may stand unencoded in an extended value */
static bool is_attr_char(unsigned char c)
{
	return is_token_char(c) && c < 0x80 && c != '*' && c != '\'' && c != '%';
}

/* UTF-8 form of a finished parameter */
static char *param_utf8(const char *name, const char *value)
{
	struct buf raw, out;
	size_t nl = strlen(name);

	buf_init(&out, BUF_UNLIMITED);
	if (nl > 0 && name[nl - 1] == '*') {
		/* charset'language'%XX; without the two quotes, %XX only */
		const char *q1 = strchr(value, '\''), *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
		char *charset = NULL;
		const char *text = value;

		if (q2 != NULL) {
			charset = xstrndup(value, (size_t)(q1 - value));
			text = q2 + 1;
		}
		buf_init(&raw, BUF_UNLIMITED);
		pct_decode(text, &raw);
		charset_to_utf8(charset, buf_cstr(&raw), raw.len, &out);
		buf_free(&raw);
		free(charset);
	} else if (strstr(value, "=?") != NULL) {
		/* not standard, but what many mailers send for file names */
		rfc2047_decode(value, strlen(value), &out);
	} else
		charset_utf8_sanitize(value, strlen(value), &out);
	return buf_steal(&out);
}

static void param_add(struct mime_param **arr, size_t *n, char *name, char *value)
{
	*arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
	(*arr)[*n].name = name;
	(*arr)[*n].value = value;
	(*arr)[*n].utf8 = param_utf8(name, value);
	(*n)++;
}

/* Merge one run of continuations base*0, base*1, ... (sorted, the first
 * is section 0) into a parameter; consecutive sections only, a gap ends
 * it (RFC 2231 3: the rest is ignored). */
static void merge_run(struct raw_param *run, size_t n, struct mime_param **arr, size_t *count)
{
	struct buf v;
	bool ext = run[0].extended;
	int next = 0;

	buf_init(&v, BUF_UNLIMITED);
	for (size_t i = 0; i < n && run[i].section == next; i++, next++) {
		const char *s = run[i].value;
		if (ext == run[i].extended || (!ext && !run[i].extended)) {
			buf_append_str(&v, s);
		} else if (ext) {
			/* a plain section inside an extended value: encode it so
			 * the whole stays one valid extended value */
			for (; *s != '\0'; s++) {
				if (is_attr_char((unsigned char)*s))
					buf_append(&v, s, 1);
				else
					buf_printf(&v, "%%%02X", (unsigned char)*s);
			}
		} else {
			/* extended section after a plain first one: no charset
			 * to tell, so its bytes go in as they are */
			pct_decode(s, &v);
		}
		/* skip duplicates of this section number */
		while (i + 1 < n && run[i + 1].section == next)
			i++;
	}
	param_add(arr, count, ext ? xasprintf("%s*", run[0].base) : xstrdup(run[0].base),
		  buf_steal(&v));
}

size_t mime_params_parse(const char *s, size_t len, struct mime_param **params_r)
{
	const char *p = s, *end = s + len;
	struct raw_param *raw = NULL;
	size_t nraw = 0, count = 0;
	struct mime_param *out = NULL;

	while (p < end && nraw < MIME_MAX_PARAMS) {
		struct buf name, value;
		const char *semi;

		/* find the next ';' outside a quoted string */
		skip_cfws(&p, end);
		if (p < end && *p != ';') {
			/* junk after the value: skip to the next ';' */
			bool inq = false;
			while (p < end && (inq || *p != ';')) {
				if (*p == '"')
					inq = !inq;
				else if (*p == '\\' && p + 1 < end)
					p++;
				p++;
			}
		}
		if (p >= end)
			break;
		p++;  /* ';' */
		buf_init(&name, BUF_UNLIMITED);
		buf_init(&value, BUF_UNLIMITED);
		semi = p;
		if (!read_token(&p, end, &name, true)) {
			buf_free(&name);
			buf_free(&value);
			continue;
		}
		skip_cfws(&p, end);
		if (p >= end || *p != '=') {
			buf_free(&name);
			buf_free(&value);
			(void)semi;
			continue;
		}
		p++;
		read_value(&p, end, &value);

		struct raw_param rp = { 0 };
		char *nm = buf_steal(&name);
		size_t nl = strlen(nm);
		rp.section = -1;
		if (nl > 1 && nm[nl - 1] == '*') {
			rp.extended = true;
			nm[--nl] = '\0';
		}
		char *star = strrchr(nm, '*');
		if (star != NULL && star > nm && star[1] != '\0' && strspn(star + 1, "0123456789") ==
		    strlen(star + 1) && strlen(star + 1) <= 4 && (star[1] != '0' || star[2] == '\0')) {
			rp.section = atoi(star + 1);
			*star = '\0';
		}
		rp.base = nm;
		rp.value = buf_steal(&value);
		rp.order = nraw;
		raw = xrealloc(raw, (nraw + 1) * sizeof(*raw));
		raw[nraw++] = rp;
	}

	/* Continuations: sort a copy by (base, section) -- O(n log n), so many
	 * parameters cost nothing quadratic -- and merge runs starting at
	 * section 0.  Output keeps the order of first appearance. */
	struct raw_param *sorted = NULL;
	size_t nsorted = 0;
	for (size_t i = 0; i < nraw; i++) {
		if (raw[i].section >= 0) {
			sorted = xrealloc(sorted, (nsorted + 1) * sizeof(*sorted));
			sorted[nsorted++] = raw[i];
		}
	}
	if (nsorted > 0)
		qsort(sorted, nsorted, sizeof(*sorted), raw_cmp);
	for (size_t i = 0; i < nraw; i++) {
		struct raw_param *r = &raw[i];
		if (r->section < 0) {
			param_add(&out, &count,
				  r->extended ? xasprintf("%s*", r->base) : xstrdup(r->base),
				  xstrdup(r->value));
			continue;
		}
		/* find r's run in sorted; emit it at its first member */
		size_t a = 0, b;
		while (a < nsorted && strcmp(sorted[a].base, r->base) != 0)
			a++;
		for (b = a; b < nsorted && strcmp(sorted[b].base, r->base) == 0; b++)
			;
		bool first = true;
		for (size_t k = a; k < b; k++) {
			if (sorted[k].order < r->order)
				first = false;
		}
		if (!first)
			continue;
		if (sorted[a].section == 0)
			merge_run(sorted + a, b - a, &out, &count);
		else {
			/* no section 0: not a valid continuation; keep each as
			 * written so nothing is lost */
			for (size_t k = a; k < b; k++)
				param_add(&out, &count,
					  xasprintf("%s*%d%s", sorted[k].base, sorted[k].section,
						    sorted[k].extended ? "*" : ""),
					  xstrdup(sorted[k].value));
		}
	}
	free(sorted);
	for (size_t i = 0; i < nraw; i++) {
		free(raw[i].base);
		free(raw[i].value);
	}
	free(raw);
	*params_r = out;
	return count;
}

void mime_params_free(struct mime_param *params, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(params[i].name);
		free(params[i].value);
		free(params[i].utf8);
	}
	free(params);
}

const char *mime_param_get(const struct mime_param *params, size_t n, const char *name)
{
	size_t nl = strlen(name);
	const char *plain = NULL;

	for (size_t i = 0; i < n; i++) {
		const char *pn = params[i].name;
		if (strncmp(pn, name, nl) != 0)
			continue;
		if (pn[nl] == '*' && pn[nl + 1] == '\0')
			return params[i].utf8;
		if (pn[nl] == '\0' && plain == NULL)
			plain = params[i].utf8;
	}
	return plain;
}

/* ---- the Content-* fields of one part ---- */

static void set_default_type(struct mime_part *part, bool digest)
{
	free(part->type);
	free(part->subtype);
	mime_params_free(part->params, part->n_params);
	part->params = NULL;
	part->n_params = 0;
	if (digest) {
		part->type = xstrdup("message");
		part->subtype = xstrdup("rfc822");
	} else {
		/* RFC 2045 5.2 */
		part->type = xstrdup("text");
		part->subtype = xstrdup("plain");
		param_add(&part->params, &part->n_params, xstrdup("charset"), xstrdup("us-ascii"));
	}
}

static void parse_content_type(struct mime_part *part, const char *v, bool digest)
{
	const char *p = v, *end = v + strlen(v);
	struct buf type, sub;

	buf_init(&type, BUF_UNLIMITED);
	buf_init(&sub, BUF_UNLIMITED);
	if (!read_token(&p, end, &type, true) || (skip_cfws(&p, end), p >= end || *p != '/') ||
	    (p++, !read_token(&p, end, &sub, true)) || (skip_cfws(&p, end), p < end && *p != ';')) {
		/* RFC 2045 5.2: an invalid Content-Type (also junk after
		 * the subtype) means the default */
		buf_free(&type);
		buf_free(&sub);
		set_default_type(part, digest);
		return;
	}
	free(part->type);
	free(part->subtype);
	part->type = buf_steal(&type);
	part->subtype = buf_steal(&sub);
	part->n_params = mime_params_parse(p, (size_t)(end - p), &part->params);
	part->flags |= MIME_PART_HAS_CTYPE;
}

static void parse_disposition(struct mime_part *part, const char *v)
{
	const char *p = v, *end = v + strlen(v);
	struct buf d;

	buf_init(&d, BUF_UNLIMITED);
	if (!read_token(&p, end, &d, true)) {
		buf_free(&d);
		return;
	}
	part->disposition = buf_steal(&d);
	part->n_disp_params = mime_params_parse(p, (size_t)(end - p), &part->disp_params);
}

static void parse_languages(struct mime_part *part, const char *v)
{
	const char *p = v, *end = v + strlen(v);

	while (p < end && part->n_languages < MIME_MAX_PARAMS) {
		struct buf tag;
		skip_cfws(&p, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		buf_init(&tag, BUF_UNLIMITED);
		/* Language-Tag: alphanumerics and '-' (RFC 5646) */
		while (p < end && (is_token_char((unsigned char)*p) && *p != ','))
			buf_append(&tag, p++, 1);
		if (tag.len == 0) {
			buf_free(&tag);
			p++;  /* a stray byte; step over it */
			continue;
		}
		part->languages = xrealloc(part->languages,
					   (part->n_languages + 1) * sizeof(*part->languages));
		part->languages[part->n_languages++] = buf_steal(&tag);
	}
}

/* One token value (Content-Transfer-Encoding), lowercased; NULL if none. */
static char *token_value(const char *v)
{
	const char *p = v;
	struct buf t;

	buf_init(&t, BUF_UNLIMITED);
	if (!read_token(&p, v + strlen(v), &t, true)) {
		buf_free(&t);
		return NULL;
	}
	return buf_steal(&t);
}

static void parse_part_header(struct mime_part *part, const char *msg, bool digest)
{
	struct header_iter it;
	struct header_field f;
	int r;
	bool seen_ctype = false;

	header_iter_init(&it, msg + part->header_offset, part->header_size);
	while ((r = header_iter_next(&it, &f)) != 0) {
		char **dst = NULL;
		const char *n;

		if (r < 0 || f.name.len < 8 || strncasecmp(f.name.p, "Content-", 8) != 0)
			continue;
		n = f.name.p + 8;
#define IS(s) (f.name.len == 8 + sizeof(s) - 1 && strncasecmp(n, s, sizeof(s) - 1) == 0)
		/* the first of each field counts, as in Dovecot */
		if (IS("Type")) {
			if (!seen_ctype) {
				char *v = header_value_unfold(f.value);
				seen_ctype = true;
				parse_content_type(part, v, digest);
				free(v);
			}
		} else if (IS("Transfer-Encoding")) {
			if (part->encoding == NULL) {
				char *v = header_value_unfold(f.value);
				part->encoding = token_value(v);
				free(v);
			}
		} else if (IS("ID"))
			dst = &part->id;
		else if (IS("Description"))
			dst = &part->description;
		else if (IS("MD5"))
			dst = &part->md5;
		else if (IS("Location"))
			dst = &part->location;
		else if (IS("Disposition")) {
			if (part->disposition == NULL) {
				char *v = header_value_unfold(f.value);
				parse_disposition(part, v);
				free(v);
			}
		} else if (IS("Language")) {
			if (part->languages == NULL) {
				char *v = header_value_unfold(f.value);
				parse_languages(part, v);
				free(v);
			}
		}
#undef IS
		if (dst != NULL && *dst == NULL)
			*dst = header_value_unfold(f.value);
	}
	if (part->type == NULL)
		set_default_type(part, digest);
	for (size_t i = 0; i < part->n_params; i++) {
		if (strcmp(part->params[i].name, "boundary") == 0 && part->params[i].value[0] != '\0') {
			part->boundary = part->params[i].value;
			break;
		}
	}
	if (strcmp(part->type, "multipart") == 0)
		part->flags |= MIME_PART_MULTIPART;
}

/* ---- the structure pass ---- */

struct open_part {
	struct mime_part *part;
	struct mime_part *last_child;   /* append in O(1) */
	size_t body_line;               /* LFs before body_offset */
	bool active;                    /* boundary looked for */
};

struct parser {
	const char *msg;
	size_t len, pos, lineno;
	struct open_part *stack;
	size_t depth, cap;
	size_t n_parts, n_active;
};

/* Step over the line at pos; counts its LF. */
static void next_line(struct parser *ps)
{
	const char *nl = memchr(ps->msg + ps->pos, '\n', ps->len - ps->pos);

	if (nl == NULL)
		ps->pos = ps->len;
	else {
		ps->pos = (size_t)(nl - ps->msg) + 1;
		ps->lineno++;
	}
}

/* Is the line at pos a delimiter of an open multipart?  Returns its stack
 * index, or -1; *close_r tells a close delimiter. */
static long find_boundary(const struct parser *ps, bool *close_r)
{
	const char *p = ps->msg + ps->pos, *end = ps->msg + ps->len, *le;
	long best = -1;
	size_t best_len = 0, llen;

	if (ps->n_active == 0 || end - p < 3 || p[0] != '-' || p[1] != '-')
		return -1;
	p += 2;
	le = memchr(p, '\n', (size_t)(end - p));
	if (le == NULL)
		le = end;
	while (le > p && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t'))
		le--;
	llen = (size_t)(le - p);
	for (size_t i = ps->depth; i-- > 0;) {
		const struct open_part *o = &ps->stack[i];
		size_t bl;
		if (!o->active)
			continue;
		bl = strlen(o->part->boundary);
		if (bl <= llen && bl > best_len && memcmp(o->part->boundary, p, bl) == 0) {
			best = (long)i;
			best_len = bl;
		}
	}
	if (best >= 0)
		*close_r = llen - best_len >= 2 && p[best_len] == '-' && p[best_len + 1] == '-';
	return best;
}

static struct mime_part *part_new(struct parser *ps, struct mime_part *parent)
{
	struct mime_part *p = xcalloc(1, sizeof(*p));

	ps->n_parts++;
	p->parent = parent;
	return p;
}

static void push(struct parser *ps, struct mime_part *part)
{
	if (ps->depth == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 16;
		ps->stack = xrealloc(ps->stack, ps->cap * sizeof(*ps->stack));
	}
	ps->stack[ps->depth++] = (struct open_part){ part, NULL, ps->lineno, false };
}

static void link_child(struct open_part *o, struct mime_part *child)
{
	if (o->last_child == NULL)
		o->part->children = child;
	else
		o->last_child->next = child;
	o->last_child = child;
	o->part->n_children++;
}

/* Stop looking for any boundary: the part limit was reached. */
static void deactivate_all(struct parser *ps)
{
	for (size_t i = 0; i < ps->depth; i++) {
		if (ps->stack[i].active)
			ps->stack[i].part->flags |= MIME_PART_OPAQUE;
		ps->stack[i].active = false;
	}
	ps->n_active = 0;
}

/* Read the header of part at pos, fill its fields, and open it; for a
 * message part open its embedded message too, and so on (a loop, not
 * recursion). */
static void part_start(struct parser *ps, struct mime_part *part, bool digest)
{
	for (;;) {
		bool dummy, ended = false;
		size_t idx;

		part->header_offset = ps->pos;
		while (ps->pos < ps->len) {
			const char *p = ps->msg + ps->pos;
			if (*p == '\n' || (ps->len - ps->pos >= 2 && p[0] == '\r' && p[1] == '\n')) {
				next_line(ps);
				ended = true;
				break;
			}
			if (find_boundary(ps, &dummy) >= 0)
				break;
			next_line(ps);
		}
		if (!ended)
			part->flags |= MIME_PART_NO_HEADER_END;
		part->header_size = ps->pos - part->header_offset;
		part->body_offset = ps->pos;
		parse_part_header(part, ps->msg, digest);
		push(ps, part);
		idx = ps->depth - 1;

		if (part->flags & MIME_PART_MULTIPART) {
			if (part->boundary == NULL)
				return;
			if (ps->depth > MIME_MAX_DEPTH || ps->n_parts >= MIME_MAX_PARTS) {
				part->flags |= MIME_PART_OPAQUE;
				return;
			}
			part->flags |= MIME_PART_NO_END;  /* until the close delimiter */
			ps->stack[idx].active = true;
			ps->n_active++;
			return;
		}
		if (strcmp(part->type, "message") != 0 ||
		    (strcmp(part->subtype, "rfc822") != 0 && strcmp(part->subtype, "global") != 0))
			return;
		/* RFC 2046 5.2.1: only 7bit, 8bit or binary; an encoded one is
		 * an ordinary leaf (as Dovecot treats it) */
		if (part->encoding != NULL && strcmp(part->encoding, "7bit") != 0 &&
		    strcmp(part->encoding, "8bit") != 0 && strcmp(part->encoding, "binary") != 0)
			return;
		part->flags |= MIME_PART_MESSAGE;
		if (ps->depth > MIME_MAX_DEPTH || ps->n_parts >= MIME_MAX_PARTS) {
			part->flags |= MIME_PART_OPAQUE;
			return;
		}
		struct mime_part *child = part_new(ps, part);
		link_child(&ps->stack[idx], child);
		part = child;
		digest = false;
	}
}

/* End every open part above stack index keep at the current line (a
 * delimiter line, or the end of the message). */
static void close_above(struct parser *ps, size_t keep, bool at_end)
{
	size_t e = ps->pos, eline = ps->lineno;

	if (!at_end && e > 0 && ps->msg[e - 1] == '\n') {
		e--;
		eline--;
		if (e > 0 && ps->msg[e - 1] == '\r')
			e--;
	}
	bool extended = false;
	while (ps->depth > keep) {
		struct open_part *o = &ps->stack[--ps->depth];
		struct mime_part *part = o->part;
		if (o->active)
			ps->n_active--;
		/* A header that ran into the delimiter without an empty line
		 * took the line end the delimiter would own: that part, and
		 * every part around it, then ends at the delimiter line itself
		 * (Dovecot's sizes are the same), so a child always lies
		 * inside its parent. */
		if (extended || part->body_offset > e) {
			extended = true;
			part->body_size = ps->pos - part->body_offset;
			part->body_lines = ps->lineno - o->body_line;
		} else {
			part->body_size = e - part->body_offset;
			part->body_lines = eline - o->body_line;
		}
	}
}

int mime_parse(const char *msg, size_t len, struct mime_part **root_r, const char **error_r)
{
	struct parser ps = { .msg = msg, .len = len };
	struct mime_part *root;

	*root_r = NULL;
	if (len > SIZE_MAX / 2) {
		*error_r = "Message too large";
		return -1;
	}
	root = part_new(&ps, NULL);
	part_start(&ps, root, false);
	while (ps.pos < ps.len) {
		bool close = false;
		long mi = find_boundary(&ps, &close);
		if (mi < 0) {
			next_line(&ps);
			continue;
		}
		close_above(&ps, (size_t)mi + 1, false);
		next_line(&ps);  /* the delimiter line itself */
		struct open_part *m = &ps.stack[mi];
		if (close) {
			m->active = false;
			ps.n_active--;
			m->part->flags &= ~MIME_PART_NO_END;
			continue;
		}
		if (ps.n_parts >= MIME_MAX_PARTS) {
			deactivate_all(&ps);
			continue;
		}
		struct mime_part *child = part_new(&ps, m->part);
		bool digest = strcmp(m->part->subtype, "digest") == 0;
		link_child(m, child);
		part_start(&ps, child, digest);
	}
	close_above(&ps, 0, true);
	free(ps.stack);
	*root_r = root;
	return 0;
}

static void part_free_fields(struct mime_part *p)
{
	free(p->type);
	free(p->subtype);
	mime_params_free(p->params, p->n_params);
	free(p->encoding);
	free(p->id);
	free(p->description);
	free(p->md5);
	free(p->location);
	free(p->disposition);
	mime_params_free(p->disp_params, p->n_disp_params);
	for (size_t i = 0; i < p->n_languages; i++)
		free(p->languages[i]);
	free(p->languages);
}

void mime_part_free(struct mime_part **rootp)
{
	struct mime_part *p = *rootp;

	if (p == NULL)
		return;
	*rootp = NULL;
	/* iterative post-order walk: depth is bounded, but a loop costs
	 * nothing and needs no stack */
	while (p != NULL) {
		if (p->children != NULL) {
			struct mime_part *c = p->children;
			p->children = NULL;
			p = c;
			continue;
		}
		struct mime_part *next = p->next, *parent = p->parent;
		part_free_fields(p);
		free(p);
		if (parent == NULL)
			break;
		p = next != NULL ? next : parent;
	}
}

/* ---- IMAP part numbers ---- */

struct mime_part *mime_part_find(struct mime_part *root, const char *section)
{
	struct mime_part *cur = root;
	const char *s = section;
	bool in_message = true;  /* cur is a message whose body may be "1" */

	if (root == NULL || *s == '\0')
		return NULL;
	while (*s != '\0') {
		unsigned long n = 0;
		size_t digits = 0;

		while (*s >= '0' && *s <= '9' && digits < 10) {
			n = n * 10 + (unsigned long)(*s - '0');
			s++;
			digits++;
		}
		if (digits == 0 || digits >= 10 || n == 0 || (*s != '.' && *s != '\0'))
			return NULL;
		if (*s == '.') {
			s++;
			if (*s == '\0')
				return NULL;
		}
		if (!in_message) {
			/* step into a message/rfc822 part's embedded message */
			if (cur->flags & MIME_PART_MESSAGE && cur->children != NULL)
				cur = cur->children;
			else if (!(cur->flags & MIME_PART_MULTIPART))
				return NULL;
		}
		if (cur->flags & MIME_PART_MULTIPART) {
			struct mime_part *c = cur->children;
			while (c != NULL && --n > 0)
				c = c->next;
			if (c == NULL)
				return NULL;
			cur = c;
		} else if (n != 1)
			return NULL;
		/* else: "1" of a non-multipart message is its body: cur */
		in_message = false;
	}
	return cur;
}

char *mime_part_section(const struct mime_part *part)
{
	struct buf b;
	unsigned nums[MIME_MAX_DEPTH * 2 + 4];
	size_t n = 0;

	buf_init(&b, BUF_UNLIMITED);
	while (part != NULL && n < sizeof(nums) / sizeof(nums[0])) {
		const struct mime_part *parent = part->parent;
		if (parent == NULL || (parent->flags & MIME_PART_MESSAGE)) {
			/* a message (the root or an embedded one): its body is
			 * "1" when it is not multipart, and a multipart one
			 * numbers its parts directly */
			if (!(part->flags & MIME_PART_MULTIPART))
				nums[n++] = 1;
		} else {
			unsigned idx = 1;
			for (const struct mime_part *c = parent->children; c != part; c = c->next)
				idx++;
			nums[n++] = idx;
		}
		part = parent;
	}
	while (n > 0) {
		buf_printf(&b, "%u%s", nums[n - 1], n > 1 ? "." : "");
		n--;
	}
	return buf_steal(&b);
}
