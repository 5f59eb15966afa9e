/* IMAP URL parser (RFC 5092 section 11 grammar, the subset that names a
 * message: imessagepart), for CATENATE (RFC 4469 5).
 *
 *   [ "imap://" [user [";AUTH=" type] "@"] host [":" port] ] "/"
 *   enc-mailbox [";UIDVALIDITY=" n] "/;UID=" n
 *   [ "/;SECTION=" enc-section ] [ "/;PARTIAL=" offset ["." length] ]
 *
 * Keywords are case-insensitive; enc-* parts are percent-decoded (%00 is
 * refused, the mailbox must be UTF-8); the mailbox is everything up to the
 * first ';' (bchar excludes ';'), without the '/' before ";UID=".
 * URLAUTH, EXPIRE and search URLs are refused.  Nothing is allocated
 * before the length is checked against IMAP_URL_MAX. */
#include "imap/url.h"

#include <string.h>
#include <strings.h>

static int fail(const char **error_r, const char *text)
{
	*error_r = text;
	return -1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 3986 unreserved / sub-delims plus what bchar adds; ';' never. */
static bool url_char(char c)
{
	/* (strchr would find NUL: it matches the terminator) */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("-._~!$'()*+,&=:@/", c) != NULL);
}

/* Percent-decode s into the arena; NULL when s holds a character outside
 * the grammar, a bad escape or %00. */
static char *decode(struct slice s, struct imap_arena *a)
{
	char *out = imap_arena_alloc(a, s.len + 1);
	size_t n = 0;

	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] == '%') {
			int hi, lo;
			if (i + 2 >= s.len)
				return NULL;
			hi = hexval(s.p[i + 1]);
			lo = hexval(s.p[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return NULL;
			out[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (url_char(s.p[i])) {
			out[n++] = s.p[i];
		} else {
			return NULL;
		}
	}
	out[n] = '\0';
	return out;
}

static bool parse_number(struct slice s, uint64_t max, uint64_t *n_r)
{
	uint64_t n = 0;

	if (s.len == 0 || s.len > 20)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
		if (n > (max - (uint64_t)(s.p[i] - '0')) / 10)
			return false;
		n = n * 10 + (uint64_t)(s.p[i] - '0');
	}
	*n_r = n;
	return true;
}

/* Take "KEY=value" at *pos (KEY case-insensitive) up to the next '/' or
 * ';' (or the end); false when the text there is not KEY=. */
static bool take_param(struct slice s, size_t *pos, const char *key, struct slice *value_r)
{
	size_t klen = strlen(key), end;

	if (s.len - *pos < klen || strncasecmp(s.p + *pos, key, klen) != 0)
		return false;
	end = *pos + klen;
	while (end < s.len && s.p[end] != '/' && s.p[end] != ';')
		end++;
	*value_r = (struct slice){ s.p + *pos + klen, end - *pos - klen };
	*pos = end;
	return true;
}

static int parse_server(struct slice s, size_t *pos, struct imap_arena *a, struct imap_url *u,
			const char **error_r)
{
	size_t start = *pos, end = start, at = SIZE_MAX;
	struct slice host;

	while (end < s.len && s.p[end] != '/')
		end++;
	for (size_t i = start; i < end; i++)
		if (s.p[i] == '@')
			at = i;
	if (at != SIZE_MAX) {
		struct slice user = { s.p + start, at - start };
		for (size_t i = 0; i < user.len; i++)
			if (user.p[i] == ';') {   /* ";AUTH=..." is allowed and ignored */
				if (strncasecmp(user.p + i, ";AUTH=", 6) != 0)
					return fail(error_r, "Invalid user in URL");
				user.len = i;
				break;
			}
		if (user.len > 0 && (u->user = decode(user, a)) == NULL)
			return fail(error_r, "Invalid user in URL");
		start = at + 1;
	}
	host = (struct slice){ s.p + start, end - start };
	for (size_t i = 0; i < host.len; i++) {
		if (host.p[i] == ':') {
			uint64_t port;
			if (!parse_number((struct slice){ host.p + i + 1, host.len - i - 1 }, 65535,
					  &port))
				return fail(error_r, "Invalid port in URL");
			u->port = (unsigned)port;
			host.len = i;
			break;
		}
	}
	if (host.len == 0 || (u->host = decode(host, a)) == NULL)
		return fail(error_r, "Invalid host in URL");
	*pos = end;
	return 0;
}

int imap_url_parse(struct slice s, struct imap_arena *a, struct imap_url *u,
		   const char **error_r)
{
	size_t pos = 0, semi;
	struct slice v;
	uint64_t n;

	memset(u, 0, sizeof(*u));
	if (s.len == 0 || s.len > IMAP_URL_MAX)
		return fail(error_r, "Invalid URL length");
	if (s.len > 7 && strncasecmp(s.p, "imap://", 7) == 0) {
		pos = 7;
		if (parse_server(s, &pos, a, u, error_r) < 0)
			return -1;
	}
	if (pos >= s.len || s.p[pos] != '/')
		return fail(error_r, "URL does not name a mailbox");
	pos++;
	/* the mailbox: up to the first ';' */
	for (semi = pos; semi < s.len && s.p[semi] != ';'; semi++)
		;
	if (semi == s.len)
		return fail(error_r, "URL does not name a message (;UID= missing)");
	{
		size_t mend = semi;
		if (mend > pos && s.p[mend - 1] == '/')
			mend--;
		if (mend == pos)
			return fail(error_r, "URL does not name a mailbox");
		u->mailbox = decode((struct slice){ s.p + pos, mend - pos }, a);
		if (u->mailbox == NULL ||
		    !imap_utf8_valid((struct slice){ u->mailbox, strlen(u->mailbox) }))
			return fail(error_r, "Invalid mailbox in URL");
		pos = semi;
		if (s.p[pos - 1] != '/') {
			if (!take_param(s, &pos, ";UIDVALIDITY=", &v) ||
			    !parse_number(v, UINT32_MAX, &n) || n == 0)
				return fail(error_r, "Invalid UIDVALIDITY in URL");
			u->uidvalidity = (uint32_t)n;
			if (pos >= s.len || s.p[pos] != '/')
				return fail(error_r, "URL does not name a message (;UID= missing)");
			pos++;
		}
	}
	if (!take_param(s, &pos, ";UID=", &v) || !parse_number(v, UINT32_MAX, &n) || n == 0)
		return fail(error_r, "Invalid UID in URL");
	u->uid = (uint32_t)n;
	if (pos + 1 < s.len && s.p[pos] == '/') {
		size_t save = pos++;
		if (take_param(s, &pos, ";SECTION=", &v)) {
			if (v.len == 0 || (u->section = decode(v, a)) == NULL)
				return fail(error_r, "Invalid SECTION in URL");
		} else {
			pos = save;
		}
	}
	if (pos + 1 < s.len && s.p[pos] == '/') {
		size_t dot;
		pos++;
		if (!take_param(s, &pos, ";PARTIAL=", &v))
			return fail(error_r, "Unsupported URL parameter");
		for (dot = 0; dot < v.len && v.p[dot] != '.'; dot++)
			;
		if (!parse_number((struct slice){ v.p, dot }, UINT32_MAX, &u->offset))
			return fail(error_r, "Invalid PARTIAL in URL");
		if (dot < v.len &&
		    (!parse_number((struct slice){ v.p + dot + 1, v.len - dot - 1 }, UINT32_MAX,
				   &u->length) || u->length == 0))
			return fail(error_r, "Invalid PARTIAL in URL");
		u->has_partial = true;
	}
	if (pos != s.len)
		return fail(error_r, s.p[pos] == ';' ? "URLAUTH and other URL parameters are not "
				     "supported" : "Invalid URL");
	return 0;
}
