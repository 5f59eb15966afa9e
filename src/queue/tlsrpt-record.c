/* The `_smtp._tls.DOMAIN` TXT record of SMTP TLS Reporting (RFC 8460 3):
 *
 *   tlsrpt-record = "v=TLSRPTv1" 1*(field-delim field) [field-delim]
 *   field-delim   = *WSP ";" *WSP
 *   field         = "rua=" uri *(*WSP "," *WSP uri) / ext-name "=" ext-value
 *
 * "rua" must appear exactly once; extensions are skipped (checked for
 * their syntax only).  Of the URIs, mailto: (RFC 6068, the address only:
 * hfields after "?" are ignored) and https: are kept; others are skipped.
 *
 * Invariants: the input is untrusted DNS data: every size and count is
 * capped (TLSRPT_RECORD_MAX, TLSRPT_FIELDS_MAX, TLSRPT_RUA_MAX,
 * TLSRPT_URI_MAX); a kept value holds only printable ASCII without
 * spaces, so it is safe in a mail header, a log line and a URL. */
#include "queue/tlsrpt.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static void skip_wsp(const char **p, const char *end)
{
	while (*p < end && is_wsp(**p))
		(*p)++;
}

void tlsrpt_record_clear(struct tlsrpt_record *r)
{
	for (size_t i = 0; i < r->rua_count; i++)
		free(r->rua[i].value);
	memset(r, 0, sizeof(*r));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A domain name: labels of letters, digits and '-', dots between, at most
 * 253 bytes, no empty label (a trailing dot is not allowed here). */
static bool domain_ok(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)c) || c == '-') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0;
}

/* mailto:addr[?hfields]: the percent-decoded address, checked, malloc'd. */
static char *mailto_address(const char *s, size_t n, const char **error_r)
{
	size_t end = 0, o = 0;
	char *a;

	while (end < n && s[end] != '?')
		end++;
	a = xmalloc(end + 1);
	for (size_t i = 0; i < end; i++) {
		char c = s[i];
		if (c == '%') {
			int hi = i + 2 < end ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < end ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				*error_r = "bad percent-encoding in a mailto: URI";
				free(a);
				return NULL;
			}
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		/* printable ASCII without space and the characters that would
		 * change an address's meaning in a header */
		if (c <= ' ' || c > '~' || c == '<' || c == '>' || c == '"' || c == '(' ||
		    c == ')' || c == ',' || c == ';' || c == '\\') {
			*error_r = "a mailto: address holds a character it cannot have";
			free(a);
			return NULL;
		}
		a[o++] = c;
	}
	a[o] = '\0';
	const char *at = strrchr(a, '@');
	if (at == NULL || at == a || !domain_ok(at + 1, strlen(at + 1)) || strchr(a, '@') != at) {
		*error_r = "a mailto: URI without a valid address";
		free(a);
		return NULL;
	}
	return a;
}

/* https://host[:port][/path...]: checked, malloc'd. */
static char *https_uri(const char *s, size_t n, const char **error_r)
{
	const char *h = s + 8, *end = s + n, *p;   /* after "https://" */

	if (n < 9 || strncmp(s + 6, "//", 2) != 0) {
		*error_r = "an https: URI without a host";
		return NULL;
	}
	for (p = s; p < end; p++) {
		if (*p <= ' ' || *p > '~' || *p == '"' || *p == '\\' || *p == '<' || *p == '>') {
			*error_r = "an https: URI holds a character it cannot have";
			return NULL;
		}
	}
	for (p = h; p < end && *p != ':' && *p != '/' && *p != '?' && *p != '#'; p++)
		;
	if (!domain_ok(h, (size_t)(p - h))) {
		*error_r = "an https: URI whose host is not a domain name";
		return NULL;
	}
	if (p < end && *p == ':') {
		const char *d = ++p;
		unsigned long port = 0;
		while (p < end && isdigit((unsigned char)*p) && p - d < 6)
			port = port * 10 + (unsigned long)(*p++ - '0');
		if (p == d || port == 0 || port > 65535 || (p < end && *p != '/')) {
			*error_r = "an https: URI with a bad port";
			return NULL;
		}
	}
	if (p < end && *p != '/') {
		*error_r = "an https: URI without a path";
		return NULL;
	}
	/* the scheme is case-insensitive (RFC 3986 3.1): keep it lowercase */
	char *v = xstrndup(s, n);
	memcpy(v, "https", 5);
	return v;
}

/* One URI of the rua list: kept (1), skipped (0, another scheme) or -1. */
static int parse_uri(const char *s, size_t n, struct tlsrpt_record *r, const char **error_r)
{
	struct tlsrpt_uri u;

	if (n == 0) {
		*error_r = "an empty URI in rua";
		return -1;
	}
	if (n > TLSRPT_URI_MAX) {
		*error_r = "a rua URI is too long";
		return -1;
	}
	if (n > 7 && strncasecmp(s, "mailto:", 7) == 0) {
		u.kind = TLSRPT_URI_MAILTO;
		u.value = mailto_address(s + 7, n - 7, error_r);
	} else if (n > 6 && strncasecmp(s, "https:", 6) == 0) {
		u.kind = TLSRPT_URI_HTTPS;
		u.value = https_uri(s, n, error_r);
	} else {
		/* RFC 8460 3: other schemes may come; a URI needs scheme ":" */
		const char *colon = memchr(s, ':', n);
		if (colon == NULL || colon == s || !isalpha((unsigned char)s[0])) {
			*error_r = "a rua entry that is not a URI";
			return -1;
		}
		return 0;
	}
	if (u.value == NULL)
		return -1;
	if (r->rua_count == TLSRPT_RUA_MAX) {
		free(u.value);
		return 0;
	}
	r->rua[r->rua_count++] = u;
	return 1;
}

static int parse_rua(const char *s, const char *end, struct tlsrpt_record *r,
		     const char **error_r)
{
	const char *p = s;

	for (;;) {
		const char *u = p;
		while (p < end && *p != ',' && !is_wsp(*p))
			p++;
		if (parse_uri(u, (size_t)(p - u), r, error_r) < 0)
			return -1;
		skip_wsp(&p, end);
		if (p == end)
			return 0;
		if (*p != ',') {
			*error_r = "rua URIs must be separated by commas";
			return -1;
		}
		p++;
		skip_wsp(&p, end);
	}
}

static bool ext_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 32 || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

static bool ext_value_ok(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '=' || s[i] == ';')
			return false;
	return true;
}

int tlsrpt_record_parse(const char *text, size_t len, struct tlsrpt_record *r,
			const char **error_r)
{
	static const char version[] = "v=TLSRPTv1";
	const char *p = text, *end = text + len;
	unsigned fields = 0, rua = 0;

	memset(r, 0, sizeof(*r));
	if (len < sizeof(version) - 1 || memcmp(text, version, sizeof(version) - 1) != 0)
		return 0;
	p += sizeof(version) - 1;
	if (p < end && *p != ';' && !is_wsp(*p))
		return 0;   /* "v=TLSRPTv10": another version */
	if (len > TLSRPT_RECORD_MAX) {
		*error_r = "the record is too long";
		return -1;
	}
	if (memchr(text, '\0', len) != NULL) {
		*error_r = "the record holds a NUL byte";
		return -1;
	}
	for (;;) {
		/* field-delim */
		skip_wsp(&p, end);
		if (p == end)
			break;
		if (*p != ';') {
			*error_r = "fields must be separated by ';'";
			goto fail;
		}
		p++;
		skip_wsp(&p, end);
		if (p == end)
			break;   /* a trailing delimiter */
		/* field: name "=" value up to the next ';' (values hold no ';') */
		const char *name = p, *eq, *vend;
		while (p < end && *p != '=' && *p != ';')
			p++;
		if (p == end || *p != '=') {
			*error_r = "a field without '='";
			goto fail;
		}
		eq = p++;
		while (p < end && *p != ';')
			p++;
		vend = p;
		while (vend > eq + 1 && is_wsp(vend[-1]))
			vend--;
		if (++fields > TLSRPT_FIELDS_MAX) {
			*error_r = "too many fields";
			goto fail;
		}
		if (eq - name == 3 && memcmp(name, "rua", 3) == 0) {
			if (rua++ > 0) {
				*error_r = "rua appears more than once";
				goto fail;
			}
			if (parse_rua(eq + 1, vend, r, error_r) < 0)
				goto fail;
		} else if (!ext_name_ok(name, (size_t)(eq - name)) ||
			   !ext_value_ok(eq + 1, (size_t)(vend - eq - 1))) {
			*error_r = "a malformed field";
			goto fail;
		}
	}
	if (rua == 0) {
		*error_r = "the record has no rua field";
		goto fail;
	}
	return 1;
fail:
	tlsrpt_record_clear(r);
	return -1;
}
