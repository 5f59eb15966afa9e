/* Authentication-Results (see auth-results.h).
 *
 * RFC 8601 2.2: authres-header-field = "Authentication-Results:"
 * authserv-id [ CFWS authres-version ] ( no-result / 1*resinfo ) CRLF,
 * with authserv-id = value (RFC 2045: token / quoted-string).  Section 5:
 * a border MTA removes fields claiming its own authserv-id before adding
 * its own, which goes above the fields it covers.
 * Invariants: only the header section is ever rewritten (a body line that
 * looks like a field is content); bytes not removed are copied unchanged;
 * the comment parser is iterative with a depth counter, so a peer's nesting
 * costs no stack. */
#include "mailauth/auth-results.h"

#include <string.h>
#include <strings.h>

#include "mail/header.h"

/* Skip CFWS (RFC 5322 3.2.2): white space, line folding, comments with
 * quoted-pairs and nesting.  Returns the new position, or len when a
 * comment never ends. */
static size_t skip_cfws(const char *v, size_t len, size_t i)
{
	while (i < len) {
		char c = v[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			i++;
			continue;
		}
		if (c != '(')
			break;
		size_t depth = 0;
		for (; i < len; i++) {
			if (v[i] == '\\' && i + 1 < len) {
				i++;
			} else if (v[i] == '(') {
				depth++;
			} else if (v[i] == ')') {
				if (--depth == 0) {
					i++;
					break;
				}
			}
		}
		if (depth != 0)
			return len;
	}
	return i;
}

/* RFC 2045 5.1 tspecials, and what a token can never hold */
static bool token_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

bool auth_results_claims(const char *v, size_t len, const char *authserv_id)
{
	size_t i = skip_cfws(v, len, 0), idlen = strlen(authserv_id);
	struct buf id;
	bool match;

	if (i >= len)
		return false;
	buf_init(&id, 1024);
	if (v[i] == '"') {
		for (i++; i < len && v[i] != '"'; i++) {
			if (v[i] == '\\' && i + 1 < len)
				i++;
			if (v[i] == '\r' || v[i] == '\n')
				continue;
			if (buf_append(&id, &v[i], 1) < 0)
				break;
		}
		if (i >= len) {
			buf_free(&id);
			return false;
		}
	} else {
		size_t start = i;
		while (i < len && token_char((unsigned char)v[i]))
			i++;
		if (buf_append(&id, v + start, i - start) < 0)
			id.len = 0;
	}
	/* a trailing dot names the same domain */
	size_t n = id.len;
	if (n > 1 && id.data[n - 1] == '.')
		n--;
	if (idlen > 1 && authserv_id[idlen - 1] == '.')
		idlen--;
	match = n > 0 && n == idlen && strncasecmp(id.data, authserv_id, n) == 0;
	buf_free(&id);
	return match;
}

static bool atext_char(unsigned char c)
{
	/* RFC 5322 3.2.3 atext, plus the '.' and '@' of addresses and domains */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("!#$%&'*+-/=?^_`{|}~.@", c) != NULL || c >= 0x80;
}

int auth_results_append_pvalue(struct buf *out, const char *v)
{
	bool plain = *v != '\0';

	for (const char *p = v; *p != '\0' && plain; p++)
		plain = atext_char((unsigned char)*p);
	if (plain)
		return buf_append_str(out, v);
	if (buf_append(out, "\"", 1) < 0)
		return -1;
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
		if (*p < ' ' || *p == 0x7f)
			continue;
		if ((*p == '"' || *p == '\\') && buf_append(out, "\\", 1) < 0)
			return -1;
		if (buf_append(out, p, 1) < 0)
			return -1;
	}
	return buf_append(out, "\"", 1);
}

int auth_results_append_separator(struct buf *out)
{
	if (out->len == 0)
		return 0;
	return buf_append_str(out, ";\r\n\t");
}

int auth_results_rewrite(const char *msg, size_t len, unsigned after, const char *authserv_id,
			 const char *resinfo, struct buf *out, unsigned *removed_r,
			 const char **error_r)
{
	static const char name[] = "Authentication-Results";
	struct header_iter it;
	struct header_field f;
	size_t pos = 0, hdr_end = header_section_length(msg, len);
	unsigned fields = 0, removed = 0;
	bool inserted = false;
	int r;

	header_iter_init(&it, msg, hdr_end);
	while ((r = header_iter_next(&it, &f)) != 0) {
		if (r < 0)
			continue;   /* a malformed line: copied with the gap below */
		size_t start = (size_t)(f.raw.p - msg), end = start + f.raw.len;
		if (fields == after && !inserted) {
			if (buf_append(out, msg + pos, start - pos) < 0 ||
			    buf_printf(out, "%s: %s;\r\n\t%s\r\n", name, authserv_id, resinfo) < 0)
				goto full;
			pos = start;
			inserted = true;
		}
		fields++;
		if (f.name.len == sizeof(name) - 1 && strncasecmp(f.name.p, name, f.name.len) == 0 &&
		    auth_results_claims(f.value.p, f.value.len, authserv_id)) {
			if (buf_append(out, msg + pos, start - pos) < 0)
				goto full;
			pos = end;
			removed++;
		}
	}
	if (!inserted) {
		/* fewer fields than `after`: at the end of the header section
		 * (before the empty line, when there is one) */
		size_t at = hdr_end;
		if (at >= 2 && msg[at - 2] == '\r' && msg[at - 1] == '\n' &&
		    (at == 2 || msg[at - 3] == '\n'))
			at -= 2;        /* the empty line (CRLF) */
		else if (at >= 1 && msg[at - 1] == '\n' && (at == 1 || msg[at - 2] == '\n'))
			at -= 1;        /* the empty line (bare LF) */
		if (at < pos)
			at = pos;
		if (buf_append(out, msg + pos, at - pos) < 0 ||
		    buf_printf(out, "%s: %s;\r\n\t%s\r\n", name, authserv_id, resinfo) < 0)
			goto full;
		pos = at;
	}
	if (buf_append(out, msg + pos, len - pos) < 0)
		goto full;
	if (removed_r != NULL)
		*removed_r = removed;
	return 0;
full:
	*error_r = "message too large";
	return -1;
}
