/* Message flags and mailbox names as the store keeps them.
 *
 * Flags are stored in messages.flags as one space-separated string in a
 * normal form, so equal flag sets are equal strings and a change can be
 * detected with strcmp:
 *   - system flags first, capitalised and in the fixed order
 *     \Seen \Answered \Flagged \Deleted \Draft (RFC 9051 2.3.2);
 *   - then keywords as the client spelled them, in case-insensitive order,
 *     with no duplicates (compared case-insensitively, the first spelling
 *     kept, as Dovecot does);
 *   - \Recent is a session property (RFC 3501 2.3.2), never stored.
 * A keyword must be an IMAP atom (RFC 9051 9, flag-keyword), at most
 * STORE_KEYWORD_MAX bytes.  Keywords used in a mailbox are kept in the
 * keywords table (COLLATE NOCASE) for the FLAGS response.
 *
 * Mailbox names: UTF-8 (the IMAP layer converts modified UTF-7), '/' as
 * the hierarchy separator, checked by store_mailbox_name_ok(). */
#include "store/store-private.h"
#include "lib/buf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STORE_KEYWORD_MAX 255
#define STORE_MAILBOX_NAME_MAX 255
#define STORE_MAILBOX_LEVELS_MAX 16

static const char *const system_flags[] = {
	"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft",
};
#define SYSTEM_FLAG_COUNT (sizeof(system_flags) / sizeof(system_flags[0]))

static const char SQL_KEYWORD_ADD[] =
	"INSERT OR IGNORE INTO keywords(mailbox_id, keyword) VALUES (?1, ?2)";

/* RFC 9051 9: atom-char is any CHAR except atom-specials. */
static bool atom_char(unsigned char ch)
{
	if (ch <= 0x20 || ch >= 0x7f)
		return false;
	return strchr("(){%*\"\\]", ch) == NULL;
}

static int cmp_keyword(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int r = strcasecmp(x, y);

	return r != 0 ? r : strcmp(x, y);
}

/* Parse flags into system bits and a sorted, deduplicated keyword list
 * (pointers into *copy_r).  lenient: drop invalid tokens instead of
 * failing (for stored strings). */
static int parse(const char *flags, bool lenient, unsigned *sys_r, char ***kw_r, size_t *kwn_r,
		 char **copy_r, const char **error_r)
{
	char *copy = xstrdup(flags ? flags : "");
	char **kw = NULL;
	size_t kwn = 0, alloc = 0;
	unsigned sys = 0;
	char *save = NULL;

	for (char *tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		if (tok[0] == '\\') {
			size_t i;
			if (strcasecmp(tok, "\\Recent") == 0)
				continue;
			for (i = 0; i < SYSTEM_FLAG_COUNT; i++)
				if (strcasecmp(tok, system_flags[i]) == 0)
					break;
			if (i < SYSTEM_FLAG_COUNT) {
				sys |= 1u << i;
				continue;
			}
			if (lenient)
				continue;
			*error_r = "unknown system flag";
			goto fail;
		}
		bool ok = strlen(tok) <= STORE_KEYWORD_MAX;
		for (const char *p = tok; ok && *p; p++)
			ok = atom_char((unsigned char)*p);
		if (!ok) {
			if (lenient)
				continue;
			*error_r = "invalid keyword";
			goto fail;
		}
		bool dup = false;
		for (size_t i = 0; i < kwn && !dup; i++)
			dup = strcasecmp(kw[i], tok) == 0;
		if (dup)
			continue;
		if (kwn == alloc) {
			alloc = alloc ? alloc * 2 : 8;
			kw = xrealloc(kw, alloc * sizeof(*kw));
		}
		kw[kwn++] = tok;
	}
	if (kwn > 1)
		qsort(kw, kwn, sizeof(*kw), cmp_keyword);
	*sys_r = sys;
	*kw_r = kw;
	*kwn_r = kwn;
	*copy_r = copy;
	return 0;
fail:
	free(kw);
	free(copy);
	return -1;
}

static char *format(unsigned sys, char **kw, size_t kwn, bool (*keep)(void *ctx, const char *k),
		    void *ctx)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	for (size_t i = 0; i < SYSTEM_FLAG_COUNT; i++) {
		if ((sys & (1u << i)) == 0)
			continue;
		if (b.len > 0)
			buf_append(&b, " ", 1);
		buf_append(&b, system_flags[i], strlen(system_flags[i]));
	}
	for (size_t i = 0; i < kwn; i++) {
		if (keep != NULL && !keep(ctx, kw[i]))
			continue;
		if (b.len > 0)
			buf_append(&b, " ", 1);
		buf_append(&b, kw[i], strlen(kw[i]));
	}
	char *out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

char *store_flags_normalize(const char *flags, const char **error_r)
{
	unsigned sys;
	char **kw, *copy, *out;
	size_t kwn;

	if (parse(flags, false, &sys, &kw, &kwn, &copy, error_r) < 0)
		return NULL;
	out = format(sys, kw, kwn, NULL, NULL);
	free(kw);
	free(copy);
	return out;
}

struct removal {
	char **kw;
	size_t kwn;
};

static bool not_removed(void *ctx, const char *k)
{
	struct removal *r = ctx;

	for (size_t i = 0; i < r->kwn; i++)
		if (strcasecmp(r->kw[i], k) == 0)
			return false;
	return true;
}

char *store_flags_apply(const char *cur, enum store_flags_mode mode, const char *change)
{
	const char *err;
	unsigned sys, csys;
	char **kw, **ckw, *copy, *ccopy, *out;
	size_t kwn, ckwn;

	if (mode == STORE_FLAGS_SET)
		cur = "";
	if (mode != STORE_FLAGS_REMOVE) {
		/* the union: current spellings first, so they win */
		char *both = xasprintf("%s %s", cur ? cur : "", change ? change : "");
		parse(both, true, &sys, &kw, &kwn, &copy, &err);
		out = format(sys, kw, kwn, NULL, NULL);
		free(both);
		free(kw);
		free(copy);
		return out;
	}
	parse(cur, true, &sys, &kw, &kwn, &copy, &err);
	parse(change, true, &csys, &ckw, &ckwn, &ccopy, &err);
	struct removal r = { ckw, ckwn };
	out = format(sys & ~csys, kw, kwn, not_removed, &r);
	free(kw);
	free(copy);
	free(ckw);
	free(ccopy);
	return out;
}

int store_keywords_add(struct store *store, int64_t mailbox_id, const char *flags,
		       char **error_r)
{
	struct store_conn *c = &store->wconn;
	const char *p = flags;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ' ');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len > 0 && p[0] != '\\') {
			sqlite3_stmt *st = store_wstmt(c, SQL_KEYWORD_ADD, error_r);
			if (st == NULL)
				return -1;
			sqlite3_bind_int64(st, 1, mailbox_id);
			sqlite3_bind_text(st, 2, p, (int)len, SQLITE_TRANSIENT);
			if (store_step_done(c, st, error_r) < 0)
				return -1;
		}
		p = end ? end + 1 : NULL;
	}
	return 0;
}

/* Length of the UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))
			return 0;
		return 3;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

bool store_mailbox_name_ok(const char *name, const char **why_r)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t len, levels = 1;

	if (name == NULL || *name == '\0') {
		*why_r = "empty mailbox name";
		return false;
	}
	len = strlen(name);
	if (len > STORE_MAILBOX_NAME_MAX) {
		*why_r = "mailbox name too long";
		return false;
	}
	if (name[0] == '/' || name[len - 1] == '/' || strstr(name, "//") != NULL) {
		*why_r = "empty hierarchy level in mailbox name";
		return false;
	}
	for (size_t i = 0; i < len;) {
		size_t n;
		if (s[i] < 0x20 || s[i] == 0x7f) {
			*why_r = "control character in mailbox name";
			return false;
		}
		if (s[i] == '*' || s[i] == '%') {
			*why_r = "wildcard character in mailbox name";
			return false;
		}
		if (s[i] == '/')
			levels++;
		if ((n = utf8_len(s + i)) == 0) {
			*why_r = "mailbox name is not valid UTF-8";
			return false;
		}
		i += n;
	}
	if (levels > STORE_MAILBOX_LEVELS_MAX) {
		*why_r = "mailbox name has too many levels";
		return false;
	}
	return true;
}
