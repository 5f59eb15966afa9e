/* DKIM parsers: the tag list (RFC 6376 section 3.2), the DKIM-Signature
 * field (section 3.5) and the key record (section 3.6.1, RFC 8463 section
 * 4).
 *
 * Invariants:
 * - Input is peer data: every length is capped (DKIM_MAX_SIG_VALUE,
 *   DKIM_MAX_KEY_RECORD, DKIM_MAX_TAGS, DKIM_MAX_SIGNED_HEADERS) before
 *   anything is allocated from it, and every byte outside VALCHAR and
 *   folding whitespace is an error, so no CR, LF or NUL reaches a parsed
 *   string.
 * - Parsed strings that end up in Authentication-Results (d=, s=, a=, b=)
 *   are restricted further to DNS-name or base64 characters.
 * - Errors are static strings; a failed parse leaves nothing allocated. */
#include "mailauth/dkim.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "mailauth/dkim-private.h"

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* VALCHAR = %x21-3A / %x3C-7E (RFC 6376 section 3.2) */
static bool is_valchar(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != ';';
}

int dkim_tag_list_parse(const char *s, size_t len, struct dkim_tag *tags, size_t max,
			size_t *n_r, const char **error_r)
{
	size_t pos = 0, n = 0;

	for (;;) {
		while (pos < len && is_ws(s[pos]))
			pos++;
		if (pos == len) {
			if (n == 0) {
				*error_r = "empty tag list";
				return -1;
			}
			break;
		}
		if (!isalpha((unsigned char)s[pos])) {
			*error_r = "bad tag name";
			return -1;
		}
		size_t name_start = pos;
		while (pos < len && (isalnum((unsigned char)s[pos]) || s[pos] == '_'))
			pos++;
		struct slice name = { s + name_start, pos - name_start };
		while (pos < len && is_ws(s[pos]))
			pos++;
		if (pos == len || s[pos] != '=') {
			*error_r = "tag without '='";
			return -1;
		}
		pos++;
		size_t val_start = pos;
		while (pos < len && is_ws(s[pos]))
			pos++;
		size_t vbegin = pos, vend = pos;
		while (pos < len && s[pos] != ';') {
			unsigned char c = (unsigned char)s[pos];
			if (is_valchar(c))
				vend = pos + 1;
			else if (!is_ws((char)c)) {
				*error_r = "bad character in tag value";
				return -1;
			}
			pos++;
		}
		for (size_t i = 0; i < n; i++) {
			if (slice_eq(tags[i].name, name)) {
				*error_r = "duplicate tag";
				return -1;
			}
		}
		if (n == max) {
			*error_r = "too many tags";
			return -1;
		}
		tags[n].name = name;
		tags[n].value = (struct slice){ s + vbegin, vend - vbegin };
		tags[n].val_start = val_start;
		tags[n].val_end = pos;
		n++;
		if (pos == len)
			break;
		pos++; /* ';' */
	}
	*n_r = n;
	return 0;
}

const struct dkim_tag *dkim_tag_find(const struct dkim_tag *tags, size_t n, const char *name)
{
	size_t l = strlen(name);
	for (size_t i = 0; i < n; i++) {
		if (tags[i].name.len == l && memcmp(tags[i].name.p, name, l) == 0)
			return &tags[i];
	}
	return NULL;
}

bool dkim_dns_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > 253)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-' && c != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

static bool slice_eq_lit(struct slice s, const char *lit)
{
	return slice_eq_ci(s, lit);
}

/* Decode base64 with FWS removed; optionally keep the stripped text. */
static int b64_decode_fws(struct slice v, uint8_t **out_r, size_t *len_r, char **text_r)
{
	struct buf clean, dec;
	buf_init(&clean, v.len + 1);
	/* copy the runs between folding whitespace in one piece each: a b=
	 * value is hundreds of characters folded into a few lines */
	for (size_t i = 0; i < v.len;) {
		size_t start = i;
		while (i < v.len && !is_ws(v.p[i]))
			i++;
		if (i > start)
			buf_append(&clean, &v.p[start], i - start);
		while (i < v.len && is_ws(v.p[i]))
			i++;
	}
	buf_init(&dec, base64_decoded_max(clean.len) + 1);
	if (base64_decode(&dec, buf_cstr(&clean), clean.len) < 0) {
		buf_free(&clean);
		buf_free(&dec);
		return -1;
	}
	*len_r = dec.len;
	*out_r = (uint8_t *)buf_steal(&dec);
	if (text_r)
		*text_r = buf_steal(&clean);
	buf_free(&clean);
	return 0;
}

/* 1*maxdig DIGIT into *out; values past UINT64_MAX saturate. */
static int parse_number(struct slice v, size_t maxdig, uint64_t *out)
{
	if (v.len == 0 || v.len > maxdig)
		return -1;
	uint64_t n = 0;
	for (size_t i = 0; i < v.len; i++) {
		if (!isdigit((unsigned char)v.p[i]))
			return -1;
		unsigned d = (unsigned)(v.p[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			n = UINT64_MAX;
		else
			n = n * 10 + d;
	}
	*out = n;
	return 0;
}

/* Split a colon-separated list (FWS allowed around items) and call fn on
 * each trimmed item; stops at fn's non-zero return. */
static int colon_list(struct slice v, int (*fn)(void *ctx, struct slice item), void *ctx)
{
	size_t pos = 0;
	for (;;) {
		size_t start = pos;
		while (pos < v.len && v.p[pos] != ':')
			pos++;
		size_t a = start, b = pos;
		while (a < b && is_ws(v.p[a]))
			a++;
		while (b > a && is_ws(v.p[b - 1]))
			b--;
		int r = fn(ctx, (struct slice){ v.p + a, b - a });
		if (r != 0)
			return r;
		if (pos == v.len)
			return 0;
		pos++;
	}
}

void dkim_signature_free(struct dkim_signature **sigp)
{
	struct dkim_signature *sig = *sigp;
	if (sig == NULL)
		return;
	free(sig->alg_text);
	free(sig->domain);
	free(sig->selector);
	free(sig->auid);
	for (size_t i = 0; i < sig->n_headers; i++)
		free(sig->headers[i]);
	free(sig->headers);
	free(sig->body_hash);
	free(sig->sig);
	free(sig->sig_text);
	free(sig);
	*sigp = NULL;
}

static int add_header_name(void *ctx, struct slice item)
{
	struct dkim_signature *sig = ctx;
	if (item.len == 0)
		return -1;
	for (size_t i = 0; i < item.len; i++) {
		unsigned char c = (unsigned char)item.p[i];
		/* field-name = 1*ftext, printable except ':' (RFC 5322 3.6.8) */
		if (c < 0x21 || c > 0x7e)
			return -1;
	}
	if (sig->n_headers == DKIM_MAX_SIGNED_HEADERS)
		return -2;
	char *name = slice_dup(item);
	for (char *p = name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	sig->headers[sig->n_headers++] = name;
	return 0;
}

static int check_query_method(void *ctx, struct slice item)
{
	bool *found = ctx;
	/* "dns/txt", possibly with a "/options" tail we do not know */
	if (slice_eq_lit(item, "dns/txt") || slice_starts_ci(item, "dns/txt/"))
		*found = true;
	return 0;
}

static int parse_canon(struct slice s, enum dkim_canon *c)
{
	if (slice_eq_lit(s, "simple"))
		*c = DKIM_CANON_SIMPLE;
	else if (slice_eq_lit(s, "relaxed"))
		*c = DKIM_CANON_RELAXED;
	else
		return -1;
	return 0;
}

/* true when sub is dom or a subdomain of it (ASCII case-insensitive) */
static bool domain_within(const char *sub, size_t sublen, const char *dom)
{
	size_t dl = strlen(dom);
	if (sublen < dl || strncasecmp(sub + sublen - dl, dom, dl) != 0)
		return false;
	return sublen == dl || sub[sublen - dl - 1] == '.';
}

static int sig_parse(struct dkim_signature *sig, const char *value, size_t len,
		     const char **error_r)
{
	struct dkim_tag tags[DKIM_MAX_TAGS];
	size_t n;

	if (len > DKIM_MAX_SIG_VALUE) {
		*error_r = "signature too long";
		return -1;
	}
	if (dkim_tag_list_parse(value, len, tags, DKIM_MAX_TAGS, &n, error_r) < 0)
		return -1;
	static const char *const required[] = { "v", "a", "b", "bh", "d", "h", "s" };
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (dkim_tag_find(tags, n, required[i]) == NULL) {
			*error_r = "missing required tag";
			return -1;
		}
	}
	const struct dkim_tag *t;

	t = dkim_tag_find(tags, n, "v");
	if (!slice_eq_lit(t->value, "1")) {
		*error_r = "unsupported version";
		return -1;
	}

	t = dkim_tag_find(tags, n, "a");
	if (t->value.len == 0 || t->value.len > 64) {
		*error_r = "bad a= tag";
		return -1;
	}
	for (size_t i = 0; i < t->value.len; i++) {
		char c = t->value.p[i];
		if (!isalnum((unsigned char)c) && c != '-') {
			*error_r = "bad a= tag";
			return -1;
		}
	}
	sig->alg_text = slice_dup(t->value);
	for (char *p = sig->alg_text; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (strcmp(sig->alg_text, "rsa-sha256") == 0)
		sig->alg = DKIM_ALG_RSA_SHA256;
	else if (strcmp(sig->alg_text, "ed25519-sha256") == 0)
		sig->alg = DKIM_ALG_ED25519_SHA256;
	else if (strcmp(sig->alg_text, "rsa-sha1") == 0)
		sig->alg = DKIM_ALG_RSA_SHA1;
	else
		sig->alg = DKIM_ALG_UNKNOWN;

	t = dkim_tag_find(tags, n, "b");
	if (b64_decode_fws(t->value, &sig->sig, &sig->sig_len, &sig->sig_text) < 0 ||
	    sig->sig_len == 0) {
		*error_r = "bad b= tag";
		return -1;
	}
	sig->b_start = t->val_start;
	sig->b_end = t->val_end;
	t = dkim_tag_find(tags, n, "bh");
	if (b64_decode_fws(t->value, &sig->body_hash, &sig->body_hash_len, NULL) < 0 ||
	    sig->body_hash_len == 0) {
		*error_r = "bad bh= tag";
		return -1;
	}

	sig->header_canon = sig->body_canon = DKIM_CANON_SIMPLE;
	t = dkim_tag_find(tags, n, "c");
	if (t) {
		const char *slash = memchr(t->value.p, '/', t->value.len);
		struct slice h = t->value, b = { NULL, 0 };
		if (slash) {
			h.len = (size_t)(slash - t->value.p);
			b = (struct slice){ slash + 1, t->value.len - h.len - 1 };
		}
		if (parse_canon(h, &sig->header_canon) < 0 ||
		    (slash && parse_canon(b, &sig->body_canon) < 0)) {
			*error_r = "bad c= tag";
			return -1;
		}
	}

	t = dkim_tag_find(tags, n, "d");
	if (!dkim_dns_name_ok(t->value.p, t->value.len)) {
		*error_r = "bad d= tag";
		return -1;
	}
	sig->domain = slice_dup(t->value);

	t = dkim_tag_find(tags, n, "s");
	if (!dkim_dns_name_ok(t->value.p, t->value.len)) {
		*error_r = "bad s= tag";
		return -1;
	}
	sig->selector = slice_dup(t->value);

	t = dkim_tag_find(tags, n, "h");
	sig->headers = xcalloc(DKIM_MAX_SIGNED_HEADERS, sizeof(char *));
	int r = colon_list(t->value, add_header_name, sig);
	if (r != 0) {
		*error_r = r == -2 ? "too many names in h= tag" : "bad h= tag";
		return -1;
	}
	bool from = false;
	for (size_t i = 0; i < sig->n_headers; i++)
		from |= strcmp(sig->headers[i], "from") == 0;
	if (!from) {
		*error_r = "h= does not include From";
		return -1;
	}

	t = dkim_tag_find(tags, n, "i");
	if (t) {
		const char *at = NULL;
		for (size_t i = 0; i < t->value.len; i++) {
			if (t->value.p[i] == '@')
				at = t->value.p + i;
		}
		if (at == NULL) {
			*error_r = "bad i= tag";
			return -1;
		}
		size_t dl = t->value.len - (size_t)(at + 1 - t->value.p);
		if (!dkim_dns_name_ok(at + 1, dl) || !domain_within(at + 1, dl, sig->domain)) {
			*error_r = "i= domain not within d=";
			return -1;
		}
		sig->auid = slice_dup(t->value);
	} else {
		sig->auid = xasprintf("@%s", sig->domain);
	}

	t = dkim_tag_find(tags, n, "l");
	if (t) {
		if (parse_number(t->value, 76, &sig->length) < 0) {
			*error_r = "bad l= tag";
			return -1;
		}
		sig->has_length = true;
	}

	t = dkim_tag_find(tags, n, "q");
	if (t) {
		bool found = false;
		colon_list(t->value, check_query_method, &found);
		if (!found) {
			*error_r = "q= without dns/txt";
			return -1;
		}
	}

	uint64_t num;
	t = dkim_tag_find(tags, n, "t");
	if (t) {
		if (parse_number(t->value, 18, &num) < 0) {
			*error_r = "bad t= tag";
			return -1;
		}
		sig->has_timestamp = true;
		sig->timestamp = (int64_t)num;
	}
	t = dkim_tag_find(tags, n, "x");
	if (t) {
		if (parse_number(t->value, 18, &num) < 0) {
			*error_r = "bad x= tag";
			return -1;
		}
		sig->has_expiry = true;
		sig->expiry = (int64_t)num;
		if (sig->has_timestamp && sig->expiry < sig->timestamp) {
			*error_r = "x= before t=";
			return -1;
		}
	}
	return 0;
}

int dkim_signature_parse(const char *value, size_t len,
			 struct dkim_signature **sig_r, const char **error_r)
{
	struct dkim_signature *sig = xcalloc(1, sizeof(*sig));
	if (sig_parse(sig, value, len, error_r) < 0) {
		dkim_signature_free(&sig);
		return -1;
	}
	*sig_r = sig;
	return 0;
}

void dkim_key_free(struct dkim_key **keyp)
{
	struct dkim_key *key = *keyp;
	if (key == NULL)
		return;
	free(key->public_key);
	free(key);
	*keyp = NULL;
}

static int key_hash_item(void *ctx, struct slice item)
{
	struct dkim_key *key = ctx;
	if (slice_eq_lit(item, "sha256"))
		key->sha256_allowed = true;
	return 0;
}

static int key_service_item(void *ctx, struct slice item)
{
	bool *ok = ctx;
	if (slice_eq_lit(item, "*") || slice_eq_lit(item, "email"))
		*ok = true;
	return 0;
}

static int key_flag_item(void *ctx, struct slice item)
{
	struct dkim_key *key = ctx;
	if (slice_eq_lit(item, "y"))
		key->testing = true;
	else if (slice_eq_lit(item, "s"))
		key->strict = true;
	return 0;
}

static int key_parse(struct dkim_key *key, const char *record, size_t len,
		     const char **error_r)
{
	struct dkim_tag tags[DKIM_MAX_TAGS];
	size_t n;
	const struct dkim_tag *t;

	if (len > DKIM_MAX_KEY_RECORD) {
		*error_r = "key record too long";
		return -1;
	}
	if (dkim_tag_list_parse(record, len, tags, DKIM_MAX_TAGS, &n, error_r) < 0)
		return -1;
	t = dkim_tag_find(tags, n, "v");
	if (t && (t != &tags[0] || !slice_eq(t->value, SLICE_C("DKIM1")))) {
		*error_r = "bad v= in key record";
		return -1;
	}
	key->type = DKIM_KEY_RSA;
	t = dkim_tag_find(tags, n, "k");
	if (t) {
		if (slice_eq_lit(t->value, "rsa"))
			key->type = DKIM_KEY_RSA;
		else if (slice_eq_lit(t->value, "ed25519"))
			key->type = DKIM_KEY_ED25519;
		else {
			*error_r = "unknown key type";
			return -1;
		}
	}
	key->sha256_allowed = true;
	t = dkim_tag_find(tags, n, "h");
	if (t) {
		key->sha256_allowed = false;
		colon_list(t->value, key_hash_item, key);
	}
	t = dkim_tag_find(tags, n, "s");
	if (t) {
		bool ok = false;
		colon_list(t->value, key_service_item, &ok);
		if (!ok) {
			*error_r = "key not for email (s= tag)";
			return -1;
		}
	}
	t = dkim_tag_find(tags, n, "t");
	if (t)
		colon_list(t->value, key_flag_item, key);
	t = dkim_tag_find(tags, n, "p");
	if (t == NULL) {
		*error_r = "key record without p=";
		return -1;
	}
	if (b64_decode_fws(t->value, &key->public_key, &key->public_key_len, NULL) < 0) {
		*error_r = "bad base64 in p=";
		return -1;
	}
	if (key->public_key_len == 0) {
		key->revoked = true;
		return 0;
	}
	if (key->type == DKIM_KEY_ED25519 && key->public_key_len != 32) {
		*error_r = "Ed25519 key not 32 bytes";
		return -1;
	}
	return 0;
}

int dkim_key_parse(const char *record, size_t len, struct dkim_key **key_r,
		   const char **error_r)
{
	struct dkim_key *key = xcalloc(1, sizeof(*key));
	if (key_parse(key, record, len, error_r) < 0) {
		dkim_key_free(&key);
		return -1;
	}
	*key_r = key;
	return 0;
}

const char *dkim_result_name(enum dkim_result r)
{
	switch (r) {
	case DKIM_RESULT_NONE: return "none";
	case DKIM_RESULT_PASS: return "pass";
	case DKIM_RESULT_FAIL: return "fail";
	case DKIM_RESULT_NEUTRAL: return "neutral";
	case DKIM_RESULT_POLICY: return "policy";
	case DKIM_RESULT_TEMPERROR: return "temperror";
	case DKIM_RESULT_PERMERROR: return "permerror";
	}
	return "permerror";
}

const char *dkim_alg_name(enum dkim_alg alg)
{
	switch (alg) {
	case DKIM_ALG_RSA_SHA256: return "rsa-sha256";
	case DKIM_ALG_ED25519_SHA256: return "ed25519-sha256";
	case DKIM_ALG_RSA_SHA1: return "rsa-sha1";
	case DKIM_ALG_UNKNOWN: break;
	}
	return "unknown";
}
