/* Dovecot passwd-file lines, for importing users from Dovecot.
 *
 * Format (Dovecot's passwd-file documentation):
 *   user:password:uid:gid:(gecos):home:(shell):extra_fields
 * Only user and password are required; trailing fields may be missing.
 * The extra fields are everything after the seventh ':' (they may hold
 * ':' themselves, as in "userdb_quota_rule=*:storage=1G"), space-separated
 * key=value pairs.  A password without a {SCHEME} prefix is Dovecot's
 * default scheme for this file, CRYPT.  Of the extra fields only the
 * quota rule for all mailboxes ("*:storage=SIZE", with userdb_ prefix or
 * without) is used; relative rules ("+10M", "50%") are ignored.
 * Invariant: on return < 1, nothing was allocated for the caller. */
#include "auth/auth.h"
#include "lib/buf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "1G", "512M", "100k", "2048", "10B" -> bytes.  0, or -1 when malformed
 * or absurdly large. */
static int dovecot_parse_size(const char *s, size_t len, int64_t *bytes_r)
{
	int64_t v = 0;
	size_t i = 0;
	if (len == 0 || !isdigit((unsigned char)s[0]))
		return -1;
	for (; i < len && isdigit((unsigned char)s[i]); i++) {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	int shift = 0;
	if (i < len) {
		switch (toupper((unsigned char)s[i])) {
		case 'B': shift = 0; break;
		case 'K': shift = 10; break;
		case 'M': shift = 20; break;
		case 'G': shift = 30; break;
		case 'T': shift = 40; break;
		default: return -1;
		}
		i++;
		/* allow "KB", "MiB"-less forms like "MB" as well */
		if (shift > 0 && i < len && toupper((unsigned char)s[i]) == 'B')
			i++;
	}
	if (i != len)
		return -1;
	if (v > (INT64_MAX >> shift))
		return -1;
	*bytes_r = v << shift;
	return 0;
}

/* A quota rule value: "*:storage=1G[:messages=N...]".  Sets *bytes_r when
 * it has an absolute storage limit for "*". */
static int dovecot_quota_rule(const char *v, size_t len, int64_t *bytes_r)
{
	if (len < 2 || v[0] != '*' || v[1] != ':')
		return 0;   /* rule for one mailbox only: not ours to apply */
	size_t i = 2;
	while (i < len) {
		const char *p = v + i;
		const char *colon = memchr(p, ':', len - i);
		size_t n = colon != NULL ? (size_t)(colon - p) : len - i;
		if (n > 8 && strncasecmp(p, "storage=", 8) == 0) {
			int64_t bytes;
			if (p[8] == '+' || p[8] == '-' || memchr(p, '%', n) != NULL)
				; /* relative to a default we do not have */
			else if (dovecot_parse_size(p + 8, n - 8, &bytes) < 0)
				return -1;
			else
				*bytes_r = bytes;
		}
		i += n + 1;
	}
	return 0;
}

int auth_dovecot_passwd_line(const char *line, char **user_r, char **hash_r,
			     int64_t *quota_bytes_r, const char **error_r)
{
	size_t len = strlen(line);
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	size_t start = 0;
	while (start < len && (line[start] == ' ' || line[start] == '\t'))
		start++;
	if (start == len || line[start] == '#')
		return 0;

	/* fields[0..6] as slices, extra = the rest after the 7th ':' */
	struct slice fields[7] = { { NULL, 0 } };
	struct slice extra = { NULL, 0 };
	size_t nfields = 0, i = 0;
	const char *p = line;
	while (nfields < 7) {
		const char *colon = memchr(p + i, ':', len - i);
		size_t end = colon != NULL ? (size_t)(colon - p) : len;
		fields[nfields++] = (struct slice){ p + i, end - i };
		if (colon == NULL) {
			i = len;
			break;
		}
		i = end + 1;
	}
	if (nfields == 7 && i < len)
		extra = (struct slice){ p + i, len - i };

	if (nfields < 2 || fields[0].len == 0) {
		*error_r = "missing user or password field";
		return -1;
	}
	if (fields[1].len == 0) {
		*error_r = "empty password field";
		return -1;
	}
	for (size_t k = 0; k < len; k++) {
		unsigned char c = (unsigned char)line[k];
		if (c < ' ' && c != '\t') {
			*error_r = "control character in line";
			return -1;
		}
	}
	for (size_t k = 0; k < fields[0].len; k++) {
		if (fields[0].p[k] == ' ' || fields[0].p[k] == '\t') {
			*error_r = "space in user name";
			return -1;
		}
	}
	if (memchr(fields[1].p, ' ', fields[1].len) != NULL) {
		*error_r = "space in password field";
		return -1;
	}

	int64_t quota = 0;
	size_t e = 0;
	while (e < extra.len) {
		while (e < extra.len && (extra.p[e] == ' ' || extra.p[e] == '\t'))
			e++;
		size_t s = e;
		while (e < extra.len && extra.p[e] != ' ' && extra.p[e] != '\t')
			e++;
		struct slice kv = { extra.p + s, e - s };
		const char *eq = memchr(kv.p, '=', kv.len);
		if (kv.len == 0 || eq == NULL)
			continue;   /* "nopassword" style flags: nothing for us */
		size_t klen = (size_t)(eq - kv.p);
		if ((klen == 17 && strncasecmp(kv.p, "userdb_quota_rule", 17) == 0) ||
		    (klen == 10 && strncasecmp(kv.p, "quota_rule", 10) == 0)) {
			if (dovecot_quota_rule(eq + 1, kv.len - klen - 1, &quota) < 0) {
				*error_r = "malformed quota_rule size";
				return -1;
			}
		}
	}

	char *user = slice_dup(fields[0]);
	for (char *c = user; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	if (fields[1].p[0] == '{')
		*hash_r = slice_dup(fields[1]);
	else
		*hash_r = xasprintf("{CRYPT}%.*s", (int)fields[1].len, fields[1].p);
	*user_r = user;
	*quota_bytes_r = quota;
	return 1;
}
