/* Mail addresses: RFC 5321 paths (MAIL FROM / RCPT TO) and RFC 5322
 * address lists (From:, To:, ...), with SMTPUTF8 (RFC 6531, RFC 6532).
 *
 * Path grammar (RFC 5321 4.1.2):
 *   Path = "<" [ A-d-l ":" ] Mailbox ">"      A-d-l = At-domain *( "," At-domain )
 *   Mailbox = Local-part "@" ( Domain / address-literal )
 *   Local-part = Dot-string / Quoted-string
 * The source route is accepted and dropped (4.1.1.3, appendix C).  Limits
 * from 4.5.3.1: local part 64 octets as written (quotes included), domain
 * 255, whole path 256 including the brackets.  Address literals (4.1.3)
 * are limited to IPv4 and "IPv6:" forms checked with inet_pton().
 *
 * Invariants:
 *  - Nothing is read at or beyond s + s_len; the input need not be
 *    NUL-terminated.
 *  - A parsed address never holds CR, LF, NUL or another control
 *    character; non-ASCII bytes only with ADDRESS_ALLOW_UTF8 and only as
 *    well-formed UTF-8 (RFC 3629: no overlongs, surrogates or values past
 *    U+10FFFF).
 *  - The domain is the one after the LAST "@" of the mailbox: "%" and "!"
 *    are ordinary atext and a quoted "@" stays in the local part, so the
 *    old relay tricks (user%remote@local, remote!user@local,
 *    "user@remote"@local) name a local user and never another domain.
 *  - On error *addr_r holds nothing to free.
 *
 * The address-list parser (RFC 5322 3.4, 4.4 obsolete forms) tokenises
 * first (atoms, quoted strings, domain literals, specials; comments and
 * folding white space dropped) and then parses the token array.  It checks
 * every extracted addr-spec as strictly as a path (domain syntax, limits,
 * UTF-8) and reports addresses only when the whole list parses, so a
 * caller checking From: against the authenticated user never acts on half
 * a header. */
#include "mail/address.h"
#include "lib/buf.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ERR_SYNTAX "Bad address syntax"

/* ---- character classes ---- */

/* RFC 5322 3.2.3 atext (ASCII part). */
static bool is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
	case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
	case '|': case '}': case '~':
		return true;
	default:
		return false;
	}
}

static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Length of the well-formed UTF-8 sequence at p (n bytes available), or 0
 * when it is not one.  RFC 3629 section 4 table: rules out overlong forms,
 * UTF-16 surrogates and code points above U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t need;

	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c == 0xe0) {
		need = 2;
		lo = 0xa0;
	} else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef)
		need = 2;
	else if (c == 0xed) {
		need = 2;
		hi = 0x9f;
	} else if (c == 0xf0) {
		need = 3;
		lo = 0x90;
	} else if (c >= 0xf1 && c <= 0xf3)
		need = 3;
	else if (c == 0xf4) {
		need = 3;
		hi = 0x8f;
	} else
		return 0;
	if (n < need + 1 || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i <= need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	}
	return need + 1;
}

/* ---- domains and address literals ---- */

/* Check an address literal "[...]" (RFC 5321 4.1.3) of len bytes.  Only
 * IPv4 and "IPv6:" literals: a General-address-literal names nothing we can
 * deliver to.  With out != NULL, appends the normal form ("[1.2.3.4]",
 * "[IPv6:lowercase]"). */
static bool literal_check(const char *s, size_t len, struct buf *out)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	unsigned char bin[16];
	const char *a;
	size_t alen;
	bool v6;

	if (len < 3 || s[0] != '[' || s[len - 1] != ']')
		return false;
	a = s + 1;
	alen = len - 2;
	v6 = alen > 5 && strncasecmp(a, "IPv6:", 5) == 0;
	if (v6) {
		a += 5;
		alen -= 5;
	}
	/* the longest textual forms fit in INET6_ADDRSTRLEN; longer is wrong */
	if (alen == 0 || alen >= sizeof(tmp))
		return false;
	for (size_t i = 0; i < alen; i++) {
		unsigned char c = (unsigned char)a[i];
		if (!is_alnum(c) && c != '.' && c != ':')
			return false;
		tmp[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	tmp[alen] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, tmp, bin) != 1)
		return false;
	if (out != NULL) {
		buf_append_str(out, v6 ? "[IPv6:" : "[");
		buf_append_str(out, tmp);
		buf_append_str(out, "]");
	}
	return true;
}

/* RFC 5321 Domain with RFC 6531 U-labels: labels of letters, digits and
 * hyphens (not first or last), 1..63 octets, 255 in all; one trailing dot
 * tolerated (and not counted).  With allow_utf8 a label may also hold
 * well-formed UTF-8; *utf8_r (if not NULL) tells whether it did. */
static bool domain_name_check(const char *s, size_t len, bool allow_utf8, bool *utf8_r)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t label = 0;
	bool utf8 = false;

	if (len > 0 && p[len - 1] == '.')
		len--;
	if (len == 0 || len > ADDRESS_MAX_DOMAIN)
		return false;
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		if (c == '.') {
			if (label == 0 || p[i - 1] == '-')
				return false;
			label = 0;
			i++;
			continue;
		}
		if (c == '-') {
			if (label == 0)
				return false;
			label++;
			i++;
		} else if (is_alnum(c)) {
			label++;
			i++;
		} else if (c >= 0x80 && allow_utf8) {
			size_t n = utf8_seq(p + i, len - i);
			if (n == 0)
				return false;
			utf8 = true;
			label += n;
			i += n;
		} else
			return false;
		if (label > 63)
			return false;
	}
	if (label == 0 || p[len - 1] == '-')
		return false;
	if (utf8_r != NULL)
		*utf8_r = utf8;
	return true;
}

bool address_domain_valid(const char *s, size_t len, bool allow_utf8)
{
	if (len > 0 && s[0] == '[')
		return literal_check(s, len, NULL);
	return domain_name_check(s, len, allow_utf8, NULL);
}

/* Normal form of a domain already checked: ASCII lowercased, trailing dot
 * removed.  malloc'd. */
static char *domain_normalise(const char *s, size_t len)
{
	char *d;

	if (len > 0 && s[len - 1] == '.')
		len--;
	d = xstrndup(s, len);
	for (size_t i = 0; i < len; i++) {
		if (d[i] >= 'A' && d[i] <= 'Z')
			d[i] = (char)(d[i] + 32);
	}
	return d;
}

/* ---- RFC 5321 paths ---- */

struct path_cursor {
	const unsigned char *s;
	size_t len, pos;
	unsigned flags;
	bool utf8;
	const char *error;
};

static int path_fail(struct path_cursor *c, const char *error)
{
	/* say why when a peer slipped a control character in: it is the one
	 * mistake worth a precise message */
	if (c->pos < c->len && is_ctl(c->s[c->pos]))
		error = "Control character in address";
	else if (c->pos < c->len && c->s[c->pos] >= 0x80 && !(c->flags & ADDRESS_ALLOW_UTF8))
		error = "Non-ASCII address without SMTPUTF8";
	c->error = error;
	return -1;
}

/* One non-ASCII character at the cursor: copied to out when well-formed
 * UTF-8 and allowed. */
static int path_utf8(struct path_cursor *c, struct buf *out)
{
	size_t n;

	if (!(c->flags & ADDRESS_ALLOW_UTF8))
		return path_fail(c, "Non-ASCII address without SMTPUTF8");
	n = utf8_seq(c->s + c->pos, c->len - c->pos);
	if (n == 0)
		return path_fail(c, "Invalid UTF-8 in address");
	if (out != NULL)
		buf_append(out, c->s + c->pos, n);
	c->pos += n;
	c->utf8 = true;
	return 0;
}

/* Local-part = Dot-string / Quoted-string (RFC 5321 4.1.2, RFC 6531 3.3).
 * Appends the decoded local part to out. */
static int path_local(struct path_cursor *c, struct buf *out, bool *quoted_r)
{
	size_t start = c->pos;

	*quoted_r = false;
	if (c->pos < c->len && c->s[c->pos] == '"') {
		*quoted_r = true;
		c->pos++;
		for (;;) {
			unsigned char ch;
			if (c->pos >= c->len)
				return path_fail(c, "Unterminated quoted string");
			ch = c->s[c->pos];
			if (ch == '"') {
				c->pos++;
				break;
			}
			if (ch == '\\') {
				/* quoted-pairSMTP = "\" %d32-126 */
				c->pos++;
				if (c->pos >= c->len || c->s[c->pos] < 32 || c->s[c->pos] > 126)
					return path_fail(c, ERR_SYNTAX);
				buf_append(out, c->s + c->pos, 1);
				c->pos++;
			} else if (ch >= 0x80) {
				if (path_utf8(c, out) < 0)
					return -1;
			} else if (ch >= 32 && ch <= 126) {
				/* qtextSMTP, and the space RFC 5321 allows in it */
				buf_append(out, &ch, 1);
				c->pos++;
			} else
				return path_fail(c, ERR_SYNTAX);
		}
		if (out->len == 0)
			return path_fail(c, "Empty local part");
	} else {
		/* Dot-string = Atom *("." Atom) */
		for (;;) {
			size_t atom = c->pos;
			while (c->pos < c->len) {
				unsigned char ch = c->s[c->pos];
				if (is_atext(ch)) {
					buf_append(out, &ch, 1);
					c->pos++;
				} else if (ch >= 0x80) {
					if (path_utf8(c, out) < 0)
						return -1;
				} else
					break;
			}
			if (c->pos == atom)
				return path_fail(c, c->pos == start ? "Missing local part" : ERR_SYNTAX);
			if (c->pos < c->len && c->s[c->pos] == '.') {
				buf_append(out, ".", 1);
				c->pos++;
				continue;
			}
			break;
		}
	}
	if (c->pos - start > ADDRESS_MAX_LOCAL)
		return path_fail(c, "Local part too long");
	return 0;
}

/* Domain / address-literal at the cursor.  literal_ok is false in a source
 * route (At-domain = "@" Domain).  Returns a malloc'd normal form via
 * *domain_r (NULL when only checking). */
static int path_domain(struct path_cursor *c, bool literal_ok, char **domain_r, bool *literal_r)
{
	size_t start = c->pos;

	*literal_r = false;
	if (c->pos < c->len && c->s[c->pos] == '[') {
		struct buf b;
		if (!literal_ok)
			return path_fail(c, ERR_SYNTAX);
		while (c->pos < c->len && c->s[c->pos] != ']') {
			if (is_ctl(c->s[c->pos]) || c->s[c->pos] == ' ' || c->s[c->pos] == '>')
				return path_fail(c, "Bad address literal");
			c->pos++;
		}
		if (c->pos >= c->len)
			return path_fail(c, "Bad address literal");
		c->pos++;
		buf_init(&b, BUF_UNLIMITED);
		if (!literal_check((const char *)c->s + start, c->pos - start, &b)) {
			buf_free(&b);
			c->pos = start;
			return path_fail(c, "Bad address literal");
		}
		*literal_r = true;
		if (domain_r != NULL)
			*domain_r = buf_steal(&b);
		buf_free(&b);
		return 0;
	}
	while (c->pos < c->len) {
		unsigned char ch = c->s[c->pos];
		if (is_alnum(ch) || ch == '-' || ch == '.')
			c->pos++;
		else if (ch >= 0x80) {
			if (path_utf8(c, NULL) < 0)
				return -1;
		} else
			break;
	}
	if (c->pos == start)
		return path_fail(c, "Missing domain");
	if (!domain_name_check((const char *)c->s + start, c->pos - start,
			       c->flags & ADDRESS_ALLOW_UTF8, NULL)) {
		size_t end = c->pos;
		c->pos = start;
		c->error = end - start > ADDRESS_MAX_DOMAIN ? "Domain too long" : "Bad domain syntax";
		return -1;
	}
	if (domain_r != NULL)
		*domain_r = domain_normalise((const char *)c->s + start, c->pos - start);
	return 0;
}

/* A-d-l ":" after the opening bracket: checked, then forgotten. */
static int path_route(struct path_cursor *c)
{
	bool literal;

	for (;;) {
		if (c->pos >= c->len || c->s[c->pos] != '@')
			return path_fail(c, ERR_SYNTAX);
		c->pos++;
		if (path_domain(c, false, NULL, &literal) < 0)
			return -1;
		if (c->pos < c->len && c->s[c->pos] == ',') {
			c->pos++;
			continue;
		}
		if (c->pos < c->len && c->s[c->pos] == ':') {
			c->pos++;
			return 0;
		}
		return path_fail(c, ERR_SYNTAX);
	}
}

/* Does the path continue with "postmaster" followed by its end? */
static bool path_is_postmaster(const struct path_cursor *c, bool bracketed)
{
	size_t end = c->pos + 10;

	if (c->len - c->pos < 10 || strncasecmp((const char *)c->s + c->pos, "postmaster", 10) != 0)
		return false;
	if (bracketed)
		return end < c->len && c->s[end] == '>';
	return end == c->len || c->s[end] == ' ';
}

int address_parse_path(const char *s, size_t s_len, unsigned flags, struct address *addr_r,
		       const char **error_r)
{
	struct path_cursor c = { (const unsigned char *)s, s_len, 0, flags, false, NULL };
	struct buf local;
	bool bracketed = false, quoted;
	char *domain = NULL;
	size_t total;

	memset(addr_r, 0, sizeof(*addr_r));
	*error_r = NULL;
	if (s_len > 0 && s[0] == '<') {
		bracketed = true;
		c.pos = 1;
		if (c.pos < c.len && c.s[c.pos] == '>') {
			if (!(flags & ADDRESS_ALLOW_NULL)) {
				*error_r = "Null path not allowed here";
				return -1;
			}
			return 2;
		}
		if (c.pos < c.len && c.s[c.pos] == '@') {
			if (path_route(&c) < 0) {
				*error_r = c.error;
				return -1;
			}
			addr_r->had_route = true;
		}
	} else if (!(flags & ADDRESS_ALLOW_NO_BRACKETS)) {
		c.pos = 0;
		path_fail(&c, "Address must be in angle brackets");
		*error_r = c.error;
		return -1;
	}

	if ((flags & ADDRESS_ALLOW_POSTMASTER) && !addr_r->had_route &&
	    path_is_postmaster(&c, bracketed)) {
		addr_r->local = xstrndup(s + c.pos, 10);
		total = c.pos + 10 + bracketed;
		return (int)total;
	}

	buf_init(&local, BUF_UNLIMITED);
	if (path_local(&c, &local, &quoted) < 0)
		goto fail;
	if (c.pos >= c.len || c.s[c.pos] != '@') {
		path_fail(&c, c.pos >= c.len || c.s[c.pos] == '>' ? "Missing domain" : ERR_SYNTAX);
		goto fail;
	}
	c.pos++;
	if (path_domain(&c, true, &domain, &addr_r->ip_literal) < 0)
		goto fail;
	if (bracketed) {
		if (c.pos >= c.len || c.s[c.pos] != '>') {
			path_fail(&c, ERR_SYNTAX);
			goto fail;
		}
		c.pos++;
		total = c.pos;
	} else {
		if (c.pos < c.len && c.s[c.pos] != ' ') {
			path_fail(&c, ERR_SYNTAX);
			goto fail;
		}
		total = c.pos + 2;  /* as if it had its brackets */
	}
	if (total > ADDRESS_MAX_PATH) {
		c.error = "Path too long";
		goto fail;
	}
	addr_r->local = buf_steal(&local);
	addr_r->domain = domain;
	addr_r->quoted = quoted;
	addr_r->utf8 = c.utf8;
	return (int)c.pos;
fail:
	buf_free(&local);
	free(domain);
	addr_r->had_route = false;
	addr_r->ip_literal = false;
	*error_r = c.error != NULL ? c.error : ERR_SYNTAX;
	return -1;
}

/* ---- formatting ---- */

/* Can the local part go out as a Dot-string, without quotes? */
static bool local_is_dot_string(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	bool atom = false;

	for (; *p != '\0'; p++) {
		if (*p == '.') {
			if (!atom)
				return false;
			atom = false;
		} else if (is_atext(*p) || *p >= 0x80)
			atom = true;
		else
			return false;
	}
	return atom;
}

char *address_format(const struct address *addr)
{
	struct buf b;

	if (addr->local == NULL)
		return xstrdup("");
	buf_init(&b, BUF_UNLIMITED);
	if (local_is_dot_string(addr->local))
		buf_append_str(&b, addr->local);
	else {
		buf_append(&b, "\"", 1);
		for (const char *p = addr->local; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				buf_append(&b, "\\", 1);
			buf_append(&b, p, 1);
		}
		buf_append(&b, "\"", 1);
	}
	if (addr->domain != NULL) {
		buf_append(&b, "@", 1);
		buf_append_str(&b, addr->domain);
	}
	return buf_steal(&b);
}

void address_clear(struct address *addr)
{
	free(addr->local);
	free(addr->domain);
	memset(addr, 0, sizeof(*addr));
}

/* ---- RFC 5322 address lists ---- */

enum tok_kind { TOK_ATOM, TOK_QSTRING, TOK_DLIT, TOK_SPECIAL };

struct tok {
	enum tok_kind kind;
	char ch;          /* TOK_SPECIAL */
	const char *p;    /* ATOM: the atom; QSTRING: inside the quotes, raw; DLIT: with brackets */
	size_t len;
};

struct list_parser {
	struct tok *toks;
	size_t n, i, cap;
	unsigned flags;
	struct address *addrs;
	size_t naddrs, addrs_cap;
	const char *error;
};

/* FWS line break at p: CRLF or LF followed by WSP.  Returns its length
 * without the WSP, 0 when p is not at a fold. */
static size_t fold_len(const char *p, const char *end)
{
	size_t n = 0;

	if (p < end && *p == '\r')
		n++;
	if (p + n >= end || p[n] != '\n')
		return 0;
	n++;
	if (p + n >= end || (p[n] != ' ' && p[n] != '\t'))
		return 0;
	return n;
}

static void tok_push(struct list_parser *lp, enum tok_kind kind, char ch, const char *p, size_t len)
{
	if (lp->n == lp->cap) {
		lp->cap = lp->cap ? lp->cap * 2 : 16;
		lp->toks = xrealloc(lp->toks, lp->cap * sizeof(*lp->toks));
	}
	lp->toks[lp->n++] = (struct tok){ kind, ch, p, len };
}

/* Scan a quoted string or comment body after its opening byte; returns the
 * position of the closing byte, or NULL.  Comments nest (RFC 5322 3.2.2). */
static const char *scan_delimited(const char *p, const char *end, char close, bool nest)
{
	int depth = 1;

	while (p < end) {
		size_t f;
		if (*p == '\\') {
			if (p + 1 >= end || p[1] == '\0' || p[1] == '\r' || p[1] == '\n')
				return NULL;
			p += 2;
			continue;
		}
		if (*p == '\r' || *p == '\n') {
			if ((f = fold_len(p, end)) == 0)
				return NULL;
			p += f;
			continue;
		}
		if (*p == '\0')
			return NULL;
		if (nest && *p == '(')
			depth++;
		else if (*p == close && --depth == 0)
			return p;
		p++;
	}
	return NULL;
}

static int list_tokenise(struct list_parser *lp, const char *s, size_t len)
{
	const char *p = s, *end = s + len, *q;

	while (p < end) {
		unsigned char c = (unsigned char)*p;
		size_t f;

		if (c == ' ' || c == '\t') {
			p++;
		} else if (c == '\r' || c == '\n') {
			if ((f = fold_len(p, end)) == 0) {
				lp->error = "Line break in address list";
				return -1;
			}
			p += f;
		} else if (c == '(') {
			if ((q = scan_delimited(p + 1, end, ')', true)) == NULL) {
				lp->error = "Bad comment in address list";
				return -1;
			}
			p = q + 1;
		} else if (c == '"') {
			if ((q = scan_delimited(p + 1, end, '"', false)) == NULL) {
				lp->error = "Unterminated quoted string";
				return -1;
			}
			tok_push(lp, TOK_QSTRING, 0, p + 1, (size_t)(q - p - 1));
			p = q + 1;
		} else if (c == '[') {
			for (q = p + 1; q < end && *q != ']' && *q != '[' && *q != '\\' &&
			     !is_ctl((unsigned char)*q); q++)
				;
			if (q >= end || *q != ']') {
				lp->error = "Bad domain literal";
				return -1;
			}
			tok_push(lp, TOK_DLIT, 0, p, (size_t)(q - p + 1));
			p = q + 1;
		} else if (c == '<' || c == '>' || c == '@' || c == ',' || c == ';' || c == ':' ||
			   c == '.') {
			tok_push(lp, TOK_SPECIAL, (char)c, p, 1);
			p++;
		} else if (is_atext(c) || c >= 0x80) {
			/* non-ASCII is tolerated here for display names (RFC 6532 or
			 * legacy 8-bit); addr-specs are checked again later */
			for (q = p; q < end && (is_atext((unsigned char)*q) || (unsigned char)*q >= 0x80);
			     q++)
				;
			tok_push(lp, TOK_ATOM, 0, p, (size_t)(q - p));
			p = q;
		} else {
			lp->error = c == 0 || is_ctl(c) ? "Control character in address list" :
							  "Bad character in address list";
			return -1;
		}
	}
	return 0;
}

static bool tok_is(const struct list_parser *lp, size_t i, char ch)
{
	return i < lp->n && lp->toks[i].kind == TOK_SPECIAL && lp->toks[i].ch == ch;
}

static bool tok_is_word(const struct list_parser *lp, size_t i)
{
	return i < lp->n && (lp->toks[i].kind == TOK_ATOM || lp->toks[i].kind == TOK_QSTRING);
}

static int list_fail(struct list_parser *lp, const char *error)
{
	lp->error = error;
	return -1;
}

/* Append a word of a local part, decoded: quoted-pairs undone and folds
 * removed from quoted strings.  Fails on characters no mailbox may hold. */
static int local_word(struct list_parser *lp, const struct tok *t, struct buf *out, bool *utf8)
{
	const unsigned char *p = (const unsigned char *)t->p, *end = p + t->len;

	while (p < end) {
		unsigned char c = *p;
		if (t->kind == TOK_QSTRING && (c == '\r' || c == '\n')) {
			p++;  /* the tokeniser let only folds through */
			continue;
		}
		if (t->kind == TOK_QSTRING && c == '\\') {
			p++;
			c = *p;  /* the tokeniser guaranteed a byte after "\" */
		}
		if (c >= 0x80) {
			size_t n;
			if (!(lp->flags & ADDRESS_ALLOW_UTF8))
				return list_fail(lp, "Non-ASCII address without SMTPUTF8");
			if ((n = utf8_seq(p, (size_t)(end - p))) == 0)
				return list_fail(lp, "Invalid UTF-8 in address");
			buf_append(out, p, n);
			*utf8 = true;
			p += n;
			continue;
		}
		if (is_ctl(c))
			return list_fail(lp, "Control character in address");
		buf_append(out, &c, 1);
		p++;
	}
	return 0;
}

/* addr-spec = local-part "@" domain, obsolete forms included; the result
 * is checked like a path's mailbox. */
static int list_addr_spec(struct list_parser *lp, struct address *a)
{
	struct buf local, dom;
	bool utf8 = false, quoted = false, dom_utf8 = false;

	buf_init(&local, BUF_UNLIMITED);
	buf_init(&dom, BUF_UNLIMITED);
	for (;;) {
		if (!tok_is_word(lp, lp->i)) {
			list_fail(lp, lp->i == lp->n || tok_is(lp, lp->i, '@') ? "Missing local part" :
										  ERR_SYNTAX);
			goto fail;
		}
		quoted |= lp->toks[lp->i].kind == TOK_QSTRING;
		if (local_word(lp, &lp->toks[lp->i], &local, &utf8) < 0)
			goto fail;
		lp->i++;
		if (!tok_is(lp, lp->i, '.'))
			break;
		buf_append(&local, ".", 1);
		lp->i++;
	}
	if (!tok_is(lp, lp->i, '@')) {
		list_fail(lp, "Missing domain");
		goto fail;
	}
	lp->i++;
	if (local.len == 0) {
		list_fail(lp, "Empty local part");
		goto fail;
	}
	if (local.len > ADDRESS_MAX_LOCAL) {
		list_fail(lp, "Local part too long");
		goto fail;
	}

	if (lp->i < lp->n && lp->toks[lp->i].kind == TOK_DLIT) {
		const struct tok *t = &lp->toks[lp->i++];
		if (!literal_check(t->p, t->len, &dom)) {
			list_fail(lp, "Bad address literal");
			goto fail;
		}
		a->ip_literal = true;
		a->domain = buf_steal(&dom);
	} else {
		/* domain = dot-atom / obs-domain; a trailing dot is tolerated */
		for (;;) {
			if (lp->i >= lp->n || lp->toks[lp->i].kind != TOK_ATOM) {
				list_fail(lp, "Missing domain");
				goto fail;
			}
			buf_append(&dom, lp->toks[lp->i].p, lp->toks[lp->i].len);
			lp->i++;
			if (!tok_is(lp, lp->i, '.'))
				break;
			buf_append(&dom, ".", 1);
			lp->i++;
			if (lp->i >= lp->n || lp->toks[lp->i].kind != TOK_ATOM)
				break;
		}
		for (size_t k = 0; k < dom.len && !(lp->flags & ADDRESS_ALLOW_UTF8); k++) {
			if ((unsigned char)dom.data[k] >= 0x80) {
				list_fail(lp, "Non-ASCII address without SMTPUTF8");
				goto fail;
			}
		}
		if (!domain_name_check(dom.data, dom.len, lp->flags & ADDRESS_ALLOW_UTF8, &dom_utf8)) {
			list_fail(lp, dom.len > ADDRESS_MAX_DOMAIN + 1 ? "Domain too long" :
									 "Bad domain syntax");
			goto fail;
		}
		a->domain = domain_normalise(dom.data, dom.len);
		buf_free(&dom);
	}
	a->local = buf_steal(&local);
	a->quoted = quoted;
	a->utf8 = utf8 || dom_utf8;
	return 0;
fail:
	buf_free(&local);
	buf_free(&dom);
	return -1;
}

static void list_add(struct list_parser *lp, struct address *a)
{
	if (lp->naddrs == lp->addrs_cap) {
		lp->addrs_cap = lp->addrs_cap ? lp->addrs_cap * 2 : 4;
		lp->addrs = xrealloc(lp->addrs, lp->addrs_cap * sizeof(*lp->addrs));
	}
	lp->addrs[lp->naddrs++] = *a;
}

/* First token after a phrase (words and the dots obs-phrase allows). */
static size_t skip_phrase(const struct list_parser *lp, size_t i)
{
	while (tok_is_word(lp, i) || tok_is(lp, i, '.'))
		i++;
	return i;
}

/* mailbox = name-addr / addr-spec */
static int list_mailbox(struct list_parser *lp)
{
	struct address a = { 0 };
	size_t j = skip_phrase(lp, lp->i);

	if (!tok_is(lp, j, '<')) {
		if (list_addr_spec(lp, &a) < 0)
			return -1;
		list_add(lp, &a);
		return 0;
	}
	/* name-addr: the display name is only skipped */
	lp->i = j + 1;
	if (tok_is(lp, lp->i, '@') || tok_is(lp, lp->i, ',')) {
		/* obs-route = obs-domain-list ":" -- checked, then dropped */
		unsigned hops = 0;
		for (;;) {
			while (tok_is(lp, lp->i, ','))
				lp->i++;
			if (tok_is(lp, lp->i, ':') && hops > 0) {
				lp->i++;
				break;
			}
			if (!tok_is(lp, lp->i, '@'))
				return list_fail(lp, ERR_SYNTAX);
			lp->i++;
			hops++;
			if (lp->i < lp->n && lp->toks[lp->i].kind == TOK_DLIT)
				lp->i++;
			else if (lp->i >= lp->n || lp->toks[lp->i].kind != TOK_ATOM)
				return list_fail(lp, ERR_SYNTAX);
			else {
				while (lp->i < lp->n && lp->toks[lp->i].kind == TOK_ATOM) {
					lp->i++;
					if (!tok_is(lp, lp->i, '.'))
						break;
					lp->i++;
				}
			}
			if (!tok_is(lp, lp->i, ',') && !tok_is(lp, lp->i, ':'))
				return list_fail(lp, ERR_SYNTAX);
		}
		a.had_route = true;
	}
	if (tok_is(lp, lp->i, '>') && !a.had_route) {
		if (!(lp->flags & ADDRESS_ALLOW_NULL))
			return list_fail(lp, "Null address not allowed here");
		lp->i++;
		list_add(lp, &a);
		return 0;
	}
	if (list_addr_spec(lp, &a) < 0)
		return -1;
	if (!tok_is(lp, lp->i, '>')) {
		address_clear(&a);
		return list_fail(lp, "Missing >");
	}
	lp->i++;
	list_add(lp, &a);
	return 0;
}

/* address = mailbox / group;  group = display-name ":" [group-list] ";" */
static int list_address(struct list_parser *lp)
{
	size_t j = skip_phrase(lp, lp->i);

	if (!tok_is(lp, j, ':'))
		return list_mailbox(lp);
	if (j == lp->i)
		return list_fail(lp, "Missing group name");
	lp->i = j + 1;
	for (;;) {
		while (tok_is(lp, lp->i, ','))
			lp->i++;
		/* a group left open at the very end is tolerated: it changes
		 * nothing about which addresses it holds */
		if (lp->i == lp->n)
			return 0;
		if (tok_is(lp, lp->i, ';')) {
			lp->i++;
			return 0;
		}
		if (list_mailbox(lp) < 0)
			return -1;
		if (!tok_is(lp, lp->i, ',') && !tok_is(lp, lp->i, ';') && lp->i != lp->n)
			return list_fail(lp, "Expected , or ; in group");
	}
}

int address_parse_list(const char *s, size_t s_len, unsigned flags,
		       void (*cb)(void *ctx, const struct address *addr), void *ctx,
		       const char **error_r)
{
	struct list_parser lp = { 0 };
	int ret = -1;

	*error_r = NULL;
	lp.flags = flags;
	if (s_len > INT32_MAX) {
		*error_r = "Address list too long";
		return -1;
	}
	if (list_tokenise(&lp, s, s_len) < 0)
		goto out;
	for (;;) {
		/* obs-addr-list allows empty elements between commas */
		while (tok_is(&lp, lp.i, ','))
			lp.i++;
		if (lp.i == lp.n)
			break;
		if (list_address(&lp) < 0)
			goto out;
		if (lp.i == lp.n)
			break;
		if (!tok_is(&lp, lp.i, ',')) {
			list_fail(&lp, "Expected , between addresses");
			goto out;
		}
	}
	/* report only when the whole list parsed */
	for (size_t k = 0; k < lp.naddrs; k++) {
		if (cb != NULL)
			cb(ctx, &lp.addrs[k]);
	}
	ret = (int)lp.naddrs;
out:
	for (size_t k = 0; k < lp.naddrs; k++)
		address_clear(&lp.addrs[k]);
	free(lp.addrs);
	free(lp.toks);
	if (ret < 0)
		*error_r = lp.error != NULL ? lp.error : ERR_SYNTAX;
	return ret;
}

/* ---- RFC 5322 address lists for display (IMAP ENVELOPE) ----
 *
 * A second, forgiving parser: the strict one above decides whom mail goes
 * to and must refuse what it does not understand; this one shows a header
 * to a client and must show something for anything.  Same grammar (3.4,
 * obsolete forms of 4.4), different error policy:
 *  - unterminated quoted strings, comments and domain literals run to the
 *    end of the value;
 *  - an element with no '@' gives a mailbox without a domain, "<>" one with
 *    neither; junk up to the next ',' (or ';' in a group) is skipped;
 *  - a group left open at the end is closed.
 * Matches what Dovecot reports (it fills missing parts with MISSING_*; the
 * caller decides).  Linear: one tokenising pass, one parse pass. */

struct dtok {
	enum tok_kind kind;
	char ch;
	const char *p;
	size_t len;
};

struct dparser {
	struct dtok *toks;
	size_t n, cap, i;
};

static void dtok_push(struct dparser *dp, enum tok_kind kind, char ch, const char *p, size_t len)
{
	if (dp->n == dp->cap) {
		dp->cap = dp->cap ? dp->cap * 2 : 16;
		dp->toks = xrealloc(dp->toks, dp->cap * sizeof(*dp->toks));
	}
	dp->toks[dp->n++] = (struct dtok){ kind, ch, p, len };
}

static void display_tokenise(struct dparser *dp, const char *s, size_t len)
{
	const char *p = s, *end = s + len;

	while (p < end) {
		unsigned char c = (unsigned char)*p;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			p++;
		} else if (c == '(') {
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
		} else if (c == '"') {
			const char *q = p + 1;
			while (q < end && *q != '"') {
				if (*q == '\\' && q + 1 < end)
					q++;
				q++;
			}
			dtok_push(dp, TOK_QSTRING, 0, p + 1, (size_t)(q - p - 1));
			p = q < end ? q + 1 : end;
		} else if (c == '[') {
			const char *q = p + 1;
			while (q < end && *q != ']')
				q++;
			q = q < end ? q + 1 : end;
			dtok_push(dp, TOK_DLIT, 0, p, (size_t)(q - p));
			p = q;
		} else if (strchr("<>@,;:.", c) != NULL && c != 0) {
			dtok_push(dp, TOK_SPECIAL, (char)c, p, 1);
			p++;
		} else {
			const char *q = p;
			while (q < end && strchr("<>@,;:.()\"[ \t\r\n", *q) == NULL)
				q++;
			if (q == p)
				q++;  /* a lone ']' or ')' or NUL: an atom of its own */
			dtok_push(dp, TOK_ATOM, 0, p, (size_t)(q - p));
			p = q;
		}
	}
}

static bool dtok_is(const struct dparser *dp, size_t i, char ch)
{
	return i < dp->n && dp->toks[i].kind == TOK_SPECIAL && dp->toks[i].ch == ch;
}

/* Append a token's text: quoted strings unquoted, CR/LF dropped. */
static void dtok_text(const struct dtok *t, struct buf *out)
{
	for (size_t k = 0; k < t->len; k++) {
		char c = t->p[k];
		if (t->kind == TOK_QSTRING && c == '\\' && k + 1 < t->len)
			c = t->p[++k];
		if (c != '\r' && c != '\n')
			buf_append(out, &c, 1);
	}
}

/* display-name / obs-phrase: words (and dots) up to a special */
static char *display_phrase(struct dparser *dp)
{
	struct buf b;
	bool any = false;

	buf_init(&b, BUF_UNLIMITED);
	while (dp->i < dp->n && (dp->toks[dp->i].kind == TOK_ATOM ||
				 dp->toks[dp->i].kind == TOK_QSTRING ||
				 dp->toks[dp->i].kind == TOK_DLIT || dtok_is(dp, dp->i, '.'))) {
		const struct dtok *t = &dp->toks[dp->i++];
		if (any && !(t->kind == TOK_SPECIAL))
			buf_append(&b, " ", 1);
		dtok_text(t, &b);
		any = true;
	}
	if (!any) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* local-part [ "@" domain ], each as written; stops at '>' ',' ';' */
static void display_addr_spec(struct dparser *dp, char **mailbox, char **domain)
{
	struct buf b;
	bool any = false;

	buf_init(&b, BUF_UNLIMITED);
	while (dp->i < dp->n && !dtok_is(dp, dp->i, '@') && !dtok_is(dp, dp->i, '>') &&
	       !dtok_is(dp, dp->i, ',') && !dtok_is(dp, dp->i, ';') && !dtok_is(dp, dp->i, '<')) {
		dtok_text(&dp->toks[dp->i++], &b);
		any = true;
	}
	*mailbox = any ? buf_steal(&b) : NULL;
	if (!any)
		buf_free(&b);
	if (!dtok_is(dp, dp->i, '@'))
		return;
	dp->i++;
	buf_init(&b, BUF_UNLIMITED);
	any = false;
	while (dp->i < dp->n && !dtok_is(dp, dp->i, '>') && !dtok_is(dp, dp->i, ',') &&
	       !dtok_is(dp, dp->i, ';') && !dtok_is(dp, dp->i, '<')) {
		const struct dtok *t = &dp->toks[dp->i++];
		if (t->kind == TOK_QSTRING || dtok_is(dp, dp->i - 1, '@'))
			continue;
		dtok_text(t, &b);
		any = true;
	}
	*domain = any ? buf_steal(&b) : NULL;
	if (!any)
		buf_free(&b);
}

static void item_clear(struct address_item *it)
{
	free(it->name);
	free(it->route);
	free(it->mailbox);
	free(it->domain);
	memset(it, 0, sizeof(*it));
}

size_t address_parse_list_display(const char *s, size_t s_len, size_t max_items,
				  void (*cb)(void *ctx, const struct address_item *item),
				  void *ctx)
{
	struct dparser dp = { 0 };
	struct address_item it = { 0 };
	size_t count = 0;
	bool in_group = false;

	display_tokenise(&dp, s, s_len);
	while (dp.i < dp.n && count < max_items) {
		size_t start = dp.i;
		if (dtok_is(&dp, dp.i, ',')) {
			dp.i++;
			continue;
		}
		if (dtok_is(&dp, dp.i, ';')) {
			dp.i++;
			if (in_group) {
				it.group_end = true;
				cb(ctx, &it);
				item_clear(&it);
				count++;
				in_group = false;
			}
			continue;
		}
		it.name = display_phrase(&dp);
		if (dtok_is(&dp, dp.i, ':') && !in_group && it.name != NULL) {
			dp.i++;
			it.mailbox = it.name;
			it.name = NULL;
			it.group_start = true;
			cb(ctx, &it);
			item_clear(&it);
			count++;
			in_group = true;
			continue;
		}
		if (dtok_is(&dp, dp.i, '<')) {
			dp.i++;
			if (dtok_is(&dp, dp.i, '@')) {
				/* obs-route: "@a,@b:" */
				struct buf r;
				buf_init(&r, BUF_UNLIMITED);
				while (dp.i < dp.n && !dtok_is(&dp, dp.i, ':') &&
				       !dtok_is(&dp, dp.i, '>'))
					dtok_text(&dp.toks[dp.i++], &r);
				if (dtok_is(&dp, dp.i, ':')) {
					dp.i++;
					it.route = buf_steal(&r);
				} else
					buf_free(&r);
			}
			display_addr_spec(&dp, &it.mailbox, &it.domain);
		} else if (dp.i - start > 1 && !dtok_is(&dp, dp.i, '@') &&
			   dp.toks[start].kind != TOK_SPECIAL && strchr(it.name, ' ') != NULL) {
			/* several words and no address: a display name
			 * without a mailbox (what Dovecot reports) */
		} else {
			/* addr-spec alone: what was read as a phrase is the
			 * local part */
			dp.i = start;
			free(it.name);
			it.name = NULL;
			display_addr_spec(&dp, &it.mailbox, &it.domain);
		}
		cb(ctx, &it);
		item_clear(&it);
		count++;
		/* skip junk to the end of this element */
		while (dp.i < dp.n && !dtok_is(&dp, dp.i, ',') && !dtok_is(&dp, dp.i, ';'))
			dp.i++;
		if (dp.i == start)
			dp.i++;  /* always advance */
	}
	if (in_group && count < max_items) {
		it.group_end = true;
		cb(ctx, &it);
		count++;
	}
	item_clear(&it);
	free(dp.toks);
	return count;
}
