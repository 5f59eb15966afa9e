/* DMARC policy record parser (RFC 7489 section 6.3, the ABNF of 6.4 and
 * the fallback rules of section 6.6.3 step 6).
 *
 * A record is a tag list "v=DMARC1; p=...; ...".  v must be the first tag
 * with the exact value "DMARC1", else the TXT value is not a DMARC record
 * at all.  Whitespace (SP, HTAB) is allowed around tags, '=' and ';'; tag
 * names are matched ignoring ASCII case (ABNF literals), keyword values too.
 * Unknown tags are ignored; a repeated tag keeps its first value; a bad
 * value of any tag other than v, p and sp is discarded in favour of the
 * default (6.3 "SHOULD").  A missing or bad p, or a bad sp, makes the
 * record unusable unless rua holds a valid URI, in which case it acts as
 * p=none (6.6.3 step 6).
 *
 * Invariants: the input is length-counted and never read past len; a value
 * with NUL makes the TXT value "not DMARC"; stored URIs hold only visible
 * ASCII; at most DMARC_MAX_URIS URIs of at most DMARC_MAX_URI bytes are
 * kept per list, so a peer controls no allocation beyond that. */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mailauth/dmarc.h"

const char *dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_NONE: return "none";
	case DMARC_POLICY_QUARANTINE: return "quarantine";
	case DMARC_POLICY_REJECT: return "reject";
	}
	return "none";
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static struct slice trim(struct slice s)
{
	while (s.len > 0 && is_wsp(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && is_wsp(s.p[s.len - 1]))
		s.len--;
	return s;
}

static void uri_list_clear(struct dmarc_uri_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->uri[i].uri);
	memset(l, 0, sizeof(*l));
}

void dmarc_record_clear(struct dmarc_record *rec)
{
	uri_list_clear(&rec->rua);
	uri_list_clear(&rec->ruf);
	memset(rec, 0, sizeof(*rec));
	rec->p = DMARC_POLICY_NONE;
	rec->sp = DMARC_POLICY_NONE;
	rec->adkim = DMARC_ALIGN_RELAXED;
	rec->aspf = DMARC_ALIGN_RELAXED;
	rec->pct = 100;
	rec->fo = DMARC_FO_0;
	rec->rf_afrf = true;
	rec->ri = 86400;
}

static int parse_policy(struct slice v, enum dmarc_policy *p)
{
	if (slice_eq_ci(v, "none"))
		*p = DMARC_POLICY_NONE;
	else if (slice_eq_ci(v, "quarantine"))
		*p = DMARC_POLICY_QUARANTINE;
	else if (slice_eq_ci(v, "reject"))
		*p = DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

static int parse_align(struct slice v, enum dmarc_align *a)
{
	if (slice_eq_ci(v, "r"))
		*a = DMARC_ALIGN_RELAXED;
	else if (slice_eq_ci(v, "s"))
		*a = DMARC_ALIGN_STRICT;
	else
		return -1;
	return 0;
}

/* 1*DIGIT into *out, refusing values above max (and so any overflow). */
static int parse_number(struct slice v, uint64_t max, uint64_t *out)
{
	uint64_t n = 0;

	if (v.len == 0)
		return -1;
	for (size_t i = 0; i < v.len; i++) {
		if (!is_digit(v.p[i]))
			return -1;
		n = n * 10 + (uint64_t)(v.p[i] - '0');
		if (n > max)
			return -1;
	}
	*out = n;
	return 0;
}

/* Split v on sep into trimmed items, calling fn on each; stops at the
 * first item fn refuses.  Returns 0 or -1. */
static int for_each_item(struct slice v, char sep, int (*fn)(struct slice item, void *ctx),
			 void *ctx)
{
	size_t start = 0;

	for (size_t i = 0; i <= v.len; i++) {
		if (i < v.len && v.p[i] != sep)
			continue;
		struct slice item = trim((struct slice){ v.p + start, i - start });
		if (fn(item, ctx) < 0)
			return -1;
		start = i + 1;
	}
	return 0;
}

/* fo = 0 / 1 / d / s, separated by ':' (6.3). */
static int fo_item(struct slice item, void *ctx)
{
	unsigned *fo = ctx;

	if (item.len != 1)
		return -1;
	switch (item.p[0]) {
	case '0': *fo |= DMARC_FO_0; return 0;
	case '1': *fo |= DMARC_FO_1; return 0;
	case 'd': case 'D': *fo |= DMARC_FO_D; return 0;
	case 's': case 'S': *fo |= DMARC_FO_S; return 0;
	}
	return -1;
}

/* rf = Keyword *(":" Keyword), Keyword from RFC 5321 (ALPHA/DIGIT/"-"). */
static int rf_item(struct slice item, void *ctx)
{
	bool *afrf = ctx;

	if (item.len == 0 || !is_alpha(item.p[0]))
		return -1;
	for (size_t i = 0; i < item.len; i++)
		if (!is_alpha(item.p[i]) && !is_digit(item.p[i]) && item.p[i] != '-')
			return -1;
	if (slice_eq_ci(item, "afrf"))
		*afrf = true;
	return 0;
}

/* One dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ] (6.4).
 * The URI needs a scheme and visible ASCII only; ',' and '!' inside it must
 * be percent-escaped (6.2), so the first '!' starts the size.  Invalid
 * URIs and those beyond our caps are counted in dropped. */
static int uri_item(struct slice item, void *ctx)
{
	struct dmarc_uri_list *l = ctx;
	struct slice uri = item;
	uint64_t size = 0;
	const char *bang = memchr(item.p, '!', item.len);

	if (bang != NULL) {
		uri.len = (size_t)(bang - item.p);
		struct slice num = { bang + 1, item.len - uri.len - 1 };
		uint64_t mult = 1;
		if (num.len > 0 && !is_digit(num.p[num.len - 1])) {
			switch (num.p[num.len - 1]) {
			case 'k': case 'K': mult = 1ULL << 10; break;
			case 'm': case 'M': mult = 1ULL << 20; break;
			case 'g': case 'G': mult = 1ULL << 30; break;
			case 't': case 'T': mult = 1ULL << 40; break;
			default: goto bad;
			}
			num.len--;
		}
		/* 2^24 terabytes is far beyond any mailbox; it also keeps the
		 * product below 2^64 */
		if (parse_number(num, (1ULL << 23) - 1, &size) < 0)
			goto bad;
		size *= mult;
		if (size == 0)
			goto bad;
	}
	if (uri.len == 0 || uri.len > DMARC_MAX_URI || !is_alpha(uri.p[0]))
		goto bad;
	size_t i = 1;
	while (i < uri.len && (is_alpha(uri.p[i]) || is_digit(uri.p[i]) ||
			       uri.p[i] == '+' || uri.p[i] == '-' || uri.p[i] == '.'))
		i++;
	if (i >= uri.len - 1 || uri.p[i] != ':')
		goto bad;  /* no scheme, or nothing after it */
	for (i++; i < uri.len; i++) {
		unsigned char c = (unsigned char)uri.p[i];
		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' ||
		    c == '\\' || c == '^' || c == '`' || c == '{' || c == '|' || c == '}')
			goto bad;
		if (c == '%' && (i + 2 >= uri.len || !is_hex(uri.p[i + 1]) ||
				 !is_hex(uri.p[i + 2])))
			goto bad;
	}
	if (l->count == DMARC_MAX_URIS)
		goto bad;
	l->uri[l->count].uri = slice_dup(uri);
	l->uri[l->count].max_size = size;
	l->count++;
	return 0;
bad:
	l->dropped++;
	return 0;  /* keep the other URIs of the list */
}

enum tag_bit {
	TAG_P = 1 << 0, TAG_SP = 1 << 1, TAG_ADKIM = 1 << 2, TAG_ASPF = 1 << 3,
	TAG_PCT = 1 << 4, TAG_FO = 1 << 5, TAG_RF = 1 << 6, TAG_RI = 1 << 7,
	TAG_RUA = 1 << 8, TAG_RUF = 1 << 9,
};

static const struct {
	const char *name;
	enum tag_bit bit;
} tags[] = {
	{ "p", TAG_P }, { "sp", TAG_SP }, { "adkim", TAG_ADKIM }, { "aspf", TAG_ASPF },
	{ "pct", TAG_PCT }, { "fo", TAG_FO }, { "rf", TAG_RF }, { "ri", TAG_RI },
	{ "rua", TAG_RUA }, { "ruf", TAG_RUF },
};

/* Apply one tag=value; bad values leave the default and count as
 * discarded.  *sp_bad is set for an invalid sp. */
static void apply_tag(struct dmarc_record *rec, enum tag_bit bit, struct slice v, bool *sp_bad)
{
	uint64_t n;
	int r = 0;

	switch (bit) {
	case TAG_P:
		rec->p_valid = parse_policy(v, &rec->p) == 0;
		r = rec->p_valid ? 0 : -1;
		break;
	case TAG_SP:
		rec->sp_explicit = parse_policy(v, &rec->sp) == 0;
		*sp_bad = !rec->sp_explicit;
		r = rec->sp_explicit ? 0 : -1;
		break;
	case TAG_ADKIM:
		r = parse_align(v, &rec->adkim);
		break;
	case TAG_ASPF:
		r = parse_align(v, &rec->aspf);
		break;
	case TAG_PCT:
		/* 1*3DIGIT in 0..100 (6.3) */
		r = v.len <= 3 ? parse_number(v, 100, &n) : -1;
		if (r == 0)
			rec->pct = (unsigned)n;
		break;
	case TAG_FO: {
		unsigned fo = 0;
		r = for_each_item(v, ':', fo_item, &fo);
		if (r == 0)
			rec->fo = fo;
		break;
	}
	case TAG_RF: {
		bool afrf = false;
		r = for_each_item(v, ':', rf_item, &afrf);
		if (r == 0)
			rec->rf_afrf = afrf;
		break;
	}
	case TAG_RI:
		r = parse_number(v, UINT32_MAX, &n);
		if (r == 0)
			rec->ri = (uint32_t)n;
		break;
	case TAG_RUA:
	case TAG_RUF: {
		struct dmarc_uri_list *l = bit == TAG_RUA ? &rec->rua : &rec->ruf;
		l->present = true;
		(void)for_each_item(v, ',', uri_item, l);
		r = l->count > 0 ? 0 : -1;
		break;
	}
	}
	if (r < 0)
		rec->discarded++;
}

int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *rec,
		       const char **error_r)
{
	size_t i = 0;

	memset(rec, 0, sizeof(*rec));
	dmarc_record_clear(rec);

	/* dmarc-version = "v" *WSP "=" *WSP %x44.4d.41.52.43.31, first */
	while (i < len && is_wsp(txt[i]))
		i++;
	if (i >= len || (txt[i] != 'v' && txt[i] != 'V'))
		goto not_dmarc;
	for (i++; i < len && is_wsp(txt[i]); i++)
		;
	if (i >= len || txt[i] != '=')
		goto not_dmarc;
	for (i++; i < len && is_wsp(txt[i]); i++)
		;
	if (len - i < 6 || memcmp(txt + i, "DMARC1", 6) != 0)
		goto not_dmarc;
	for (i += 6; i < len && is_wsp(txt[i]); i++)
		;
	if (i < len && txt[i] != ';')
		goto not_dmarc;
	if (memchr(txt, '\0', len) != NULL)
		goto not_dmarc;
	if (len > DMARC_MAX_RECORD) {
		*error_r = "DMARC record too long";
		return DMARC_PARSE_UNUSABLE;
	}

	unsigned seen = 0;
	bool sp_bad = false;
	while (i < len) {
		/* at a ';' */
		size_t start = ++i;
		while (i < len && txt[i] != ';')
			i++;
		struct slice spec = trim((struct slice){ txt + start, i - start });
		if (spec.len == 0)
			continue;
		const char *eq = memchr(spec.p, '=', spec.len);
		if (eq == NULL) {
			rec->discarded++;
			continue;
		}
		struct slice name = trim((struct slice){ spec.p, (size_t)(eq - spec.p) });
		struct slice value = trim((struct slice){ eq + 1, (size_t)(spec.p + spec.len - eq - 1) });
		for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++) {
			if (!slice_eq_ci(name, tags[t].name))
				continue;
			if ((seen & tags[t].bit) == 0) {
				seen |= tags[t].bit;
				apply_tag(rec, tags[t].bit, value, &sp_bad);
			}
			break;
		}
	}

	if (!rec->p_valid || sp_bad) {
		if (rec->rua.count == 0) {
			*error_r = !rec->p_valid ? "DMARC record without a valid p= or rua="
						 : "DMARC record with an invalid sp= and no valid rua=";
			return DMARC_PARSE_UNUSABLE;
		}
		/* 6.6.3 step 6: act as if "v=DMARC1; p=none" was found */
		rec->p_fallback = true;
		rec->p = DMARC_POLICY_NONE;
		rec->sp = DMARC_POLICY_NONE;
		return DMARC_PARSE_OK;
	}
	if (!rec->sp_explicit)
		rec->sp = rec->p;
	return DMARC_PARSE_OK;

not_dmarc:
	*error_r = "not a DMARC record";
	return DMARC_PARSE_NOT_DMARC;
}
