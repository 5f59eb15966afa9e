/* MTA-STS policy and TXT record parsing, MX pattern matching (RFC 8461
 * sections 3.1, 3.2 and 4.1).
 *
 * The policy parser follows the section 3.2 ABNF strictly: field names and
 * the values of the known fields are case-sensitive, no white space before
 * the colon, values without control characters, CR only as part of CRLF.
 * Two liberties, both harmless: empty lines are accepted at the very end of
 * the file (several servers end it with a blank line), and a max_age above
 * the one-year maximum is clamped rather than refused (refusing would drop
 * the policy and with it the protection it asks for).
 * Invariants: nothing is read past len; a returned policy has 1..MX_MAX
 * mx patterns unless its mode is none; every pattern is lowercase ASCII. */
#include "queue/mta-sts.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistr.h>

#include "lib/buf.h"
#include "mail/address.h"

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

void mta_sts_policy_format(const struct mta_sts_policy *policy, struct buf *out)
{
	buf_printf(out, "version: STSv1\nmode: %s\n", mta_sts_mode_name(policy->mode));
	for (size_t i = 0; i < policy->mx_count; i++)
		buf_printf(out, "mx: %s\n", policy->mx[i]);
	buf_printf(out, "max_age: %u\n", policy->max_age);
}

const char *mta_sts_mode_name(enum mta_sts_mode mode)
{
	switch (mode) {
	case MTA_STS_MODE_TESTING:
		return "testing";
	case MTA_STS_MODE_ENFORCE:
		return "enforce";
	case MTA_STS_MODE_NONE:
		break;
	}
	return "none";
}

void mta_sts_policy_clear(struct mta_sts_policy *policy)
{
	for (size_t i = 0; i < policy->mx_count; i++)
		free(policy->mx[i]);
	free(policy->mx);
	memset(policy, 0, sizeof(*policy));
}

/* sts-policy-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") */
static bool ext_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > 32 || !(is_alpha((unsigned char)s[0]) || is_digit((unsigned char)s[0])))
		return false;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!is_alpha(c) && !is_digit(c) && c != '_' && c != '-' && c != '.')
			return false;
	}
	return true;
}

/* sts-policy-ext-value: visible characters (UTF-8 allowed) with inner
 * spaces; the caller has already trimmed trailing white space. */
static bool ext_value_valid(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return u8_check((const uint8_t *)s, len) == NULL;
}

/* ["*."] Domain, Domain as in RFC 5321 (no trailing dot, no literal). */
static bool mx_pattern_valid(const char *s, size_t len)
{
	if (len >= 2 && s[0] == '*' && s[1] == '.') {
		s += 2;
		len -= 2;
	}
	if (len == 0 || s[0] == '[' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return false;
	}
	return address_domain_valid(s, len, false);
}

static char *lower_dup(const char *s, size_t len)
{
	char *d = xstrndup(s, len);
	for (size_t i = 0; i < len; i++) {
		if (d[i] >= 'A' && d[i] <= 'Z')
			d[i] = (char)(d[i] + 32);
	}
	return d;
}

static bool slice_is(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

struct policy_seen {
	bool version, mode, max_age;
};

/* One "name: value" line (without its line end). */
static int policy_field(const char *line, size_t len, struct mta_sts_policy *pol,
			struct policy_seen *seen, const char **error_r)
{
	const char *colon = memchr(line, ':', len);
	if (colon == NULL) {
		*error_r = "Policy line without a colon";
		return -1;
	}
	size_t nlen = (size_t)(colon - line);
	if (!ext_name_valid(line, nlen)) {
		*error_r = "Invalid policy field name";
		return -1;
	}
	const char *v = colon + 1, *end = line + len;
	while (v < end && is_wsp((unsigned char)*v))
		v++;
	while (end > v && is_wsp((unsigned char)end[-1]))
		end--;
	size_t vlen = (size_t)(end - v);
	if (!ext_value_valid(v, vlen)) {
		*error_r = "Invalid policy field value";
		return -1;
	}

	if (slice_is(line, nlen, "version")) {
		if (seen->version)
			return 0;
		if (!slice_is(v, vlen, "STSv1")) {
			*error_r = "Unsupported policy version";
			return -1;
		}
		seen->version = true;
	} else if (slice_is(line, nlen, "mode")) {
		if (seen->mode)
			return 0;
		if (slice_is(v, vlen, "enforce"))
			pol->mode = MTA_STS_MODE_ENFORCE;
		else if (slice_is(v, vlen, "testing"))
			pol->mode = MTA_STS_MODE_TESTING;
		else if (slice_is(v, vlen, "none"))
			pol->mode = MTA_STS_MODE_NONE;
		else {
			*error_r = "Invalid policy mode";
			return -1;
		}
		seen->mode = true;
	} else if (slice_is(line, nlen, "max_age")) {
		if (seen->max_age)
			return 0;
		uint64_t n = 0;
		if (vlen > 10) {
			*error_r = "Invalid policy max_age";
			return -1;
		}
		for (size_t i = 0; i < vlen; i++) {
			if (!is_digit((unsigned char)v[i])) {
				*error_r = "Invalid policy max_age";
				return -1;
			}
			n = n * 10 + (uint64_t)(v[i] - '0');
		}
		pol->max_age = n > MTA_STS_MAX_AGE_MAX ? MTA_STS_MAX_AGE_MAX : (uint32_t)n;
		seen->max_age = true;
	} else if (slice_is(line, nlen, "mx")) {
		if (!mx_pattern_valid(v, vlen)) {
			*error_r = "Invalid policy mx pattern";
			return -1;
		}
		if (pol->mx_count >= MTA_STS_MX_MAX) {
			*error_r = "Too many mx patterns in policy";
			return -1;
		}
		pol->mx = xrealloc(pol->mx, (pol->mx_count + 1) * sizeof(*pol->mx));
		pol->mx[pol->mx_count++] = lower_dup(v, vlen);
	}
	/* any other well-formed field is an extension: ignored (3.2) */
	return 0;
}

int mta_sts_policy_parse(const char *text, size_t len, struct mta_sts_policy *policy_r,
			 const char **error_r)
{
	struct policy_seen seen = { 0 };
	const char *p = text, *end = text + len;
	bool blank_seen = false;

	memset(policy_r, 0, sizeof(*policy_r));
	if (len > MTA_STS_POLICY_MAX) {
		*error_r = "Policy larger than 64 KiB";
		return -1;
	}
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = lf != NULL ? lf : end;
		const char *next = lf != NULL ? lf + 1 : end;
		if (lf != NULL && line_end > p && line_end[-1] == '\r')
			line_end--;
		size_t llen = (size_t)(line_end - p);
		if (memchr(p, '\r', llen) != NULL || memchr(p, '\0', llen) != NULL) {
			*error_r = "Bare CR or NUL in policy";
			goto fail;
		}
		if (llen == 0) {
			blank_seen = true;
		} else if (blank_seen) {
			*error_r = "Empty line inside policy";
			goto fail;
		} else if (policy_field(p, llen, policy_r, &seen, error_r) < 0) {
			goto fail;
		}
		p = next;
	}
	if (!seen.version) {
		*error_r = "Policy without version";
		goto fail;
	}
	if (!seen.mode) {
		*error_r = "Policy without mode";
		goto fail;
	}
	if (!seen.max_age) {
		*error_r = "Policy without max_age";
		goto fail;
	}
	if (policy_r->mode != MTA_STS_MODE_NONE && policy_r->mx_count == 0) {
		*error_r = "Policy without mx";
		goto fail;
	}
	return 0;
fail:
	mta_sts_policy_clear(policy_r);
	return -1;
}

static bool name_eq_ci(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && strncasecmp(a, b, alen) == 0;
}

bool mta_sts_mx_matches(const struct mta_sts_policy *policy, const char *hostname)
{
	size_t hlen = strlen(hostname);

	if (hlen > 0 && hostname[hlen - 1] == '.')
		hlen--;
	if (hlen == 0)
		return false;
	for (size_t i = 0; i < policy->mx_count; i++) {
		const char *pat = policy->mx[i];
		size_t plen = strlen(pat);
		if (plen >= 2 && pat[0] == '*' && pat[1] == '.') {
			/* exactly one label, then ".rest" */
			const char *dot = memchr(hostname, '.', hlen);
			if (dot == NULL || dot == hostname)
				continue;
			size_t rest = hlen - (size_t)(dot - hostname);
			if (name_eq_ci(dot, rest, pat + 1, plen - 1))
				return true;
		} else if (name_eq_ci(hostname, hlen, pat, plen)) {
			return true;
		}
	}
	return false;
}

/* TXT record (3.1):
 *   sts-text-record = sts-version 1*(*WSP %x3B *WSP sts-field) *WSP [%x3B *WSP]
 *   sts-version = %s"v=STSv1";  sts-id = %s"id=" 1*32(ALPHA / DIGIT)
 *   sts-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
 *   sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
 * The id is required; extensions are checked and ignored. */
int mta_sts_txt_parse(const char *txt, size_t len, struct mta_sts_record *record_r,
		      const char **error_r)
{
	static const char version[] = "v=STSv1";
	size_t vlen = sizeof(version) - 1, i;
	bool have_id = false;

	memset(record_r, 0, sizeof(*record_r));
	if (len < vlen || memcmp(txt, version, vlen) != 0)
		return 0;
	i = vlen;
	if (i < len && txt[i] != ';' && !is_wsp((unsigned char)txt[i]))
		return 0;       /* "v=STSv10" is some other record */
	for (;;) {
		while (i < len && is_wsp((unsigned char)txt[i]))
			i++;
		if (i == len)
			break;
		if (txt[i] != ';') {
			*error_r = "Expected ';' in MTA-STS record";
			return -1;
		}
		i++;
		while (i < len && is_wsp((unsigned char)txt[i]))
			i++;
		if (i == len)
			break;
		size_t name = i;
		while (i < len && txt[i] != '=' && txt[i] != ';' && !is_wsp((unsigned char)txt[i]))
			i++;
		if (i == len || txt[i] != '=' || !ext_name_valid(txt + name, i - name)) {
			*error_r = "Invalid field name in MTA-STS record";
			return -1;
		}
		size_t nlen = i - name;
		size_t val = ++i;
		while (i < len) {
			unsigned char c = (unsigned char)txt[i];
			if (c < 0x21 || c > 0x7e || c == ';' || c == '=')
				break;
			i++;
		}
		size_t val_len = i - val;
		if (val_len == 0 || (i < len && txt[i] != ';' && !is_wsp((unsigned char)txt[i]))) {
			*error_r = "Invalid field value in MTA-STS record";
			return -1;
		}
		if (nlen == 2 && memcmp(txt + name, "id", 2) == 0) {
			if (have_id)
				continue;
			if (val_len > MTA_STS_ID_MAX) {
				*error_r = "MTA-STS id longer than 32 characters";
				return -1;
			}
			for (size_t k = 0; k < val_len; k++) {
				unsigned char c = (unsigned char)txt[val + k];
				if (!is_alpha(c) && !is_digit(c)) {
					*error_r = "MTA-STS id not alphanumeric";
					return -1;
				}
			}
			memcpy(record_r->id, txt + val, val_len);
			record_r->id[val_len] = '\0';
			have_id = true;
		}
	}
	if (!have_id) {
		*error_r = "MTA-STS record without id";
		return -1;
	}
	return 1;
}
