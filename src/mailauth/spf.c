/* SPF check_host() (RFC 7208 sections 4 to 7) as a non-blocking state
 * machine over the DNS interface of spf.h.
 *
 * Invariants:
 * - A record is parsed completely before any of its terms is evaluated, so
 *   a syntax error anywhere gives permerror (section 4.6).
 * - include pushes a frame; frames are bounded by the lookup limit of 10
 *   (section 4.6.4), so the frame stack has a fixed size.
 * - At most one DNS question is outstanding.  spf_run() loops over steps;
 *   an answer that arrives inside the DNS call only clears `pending', so
 *   synchronous answers never recurse, and an answer that arrives later
 *   restarts spf_run() from the callback.
 * - Peer data (records, names) lives in malloc'd strings sized to the data
 *   and capped by SPF_MAX_RECORD; nothing is truncated silently.
 * Sections: 4.3 initial processing, 4.5 record selection, 4.6 record
 * evaluation, 5 mechanisms, 6 modifiers, 7 macros, 4.6.4 limits. */
#include "mailauth/spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/buf.h"
#include "lib/log.h"

#define SPF_MAX_FRAMES (SPF_MAX_DNS_MECHANISMS + 2)
#define SPF_MAX_DOMAIN 253

enum mech {
	MECH_ALL, MECH_INCLUDE, MECH_A, MECH_MX, MECH_PTR, MECH_IP4, MECH_IP6,
	MECH_EXISTS, MOD_REDIRECT, MOD_EXP,
};

struct term {
	enum mech mech;
	enum spf_result qual;
	char *spec;          /* domain-spec, NULL when absent */
	int cidr4, cidr6;
	struct spf_ip net;   /* ip4/ip6 */
};

struct record {
	struct term *terms;
	size_t n;
	int redirect, exp;   /* term index or -1 */
};

struct frame {
	char *domain;
	struct record rec;
	size_t idx;
	bool redirected;     /* this record came from redirect= */
};

enum step {
	S_FETCH, S_FETCHED, S_EVAL, S_A_ANS, S_MX_ANS, S_MX_HOST, S_MX_HOST_ANS,
	S_EXISTS_ANS, S_PTR_ANS, S_PTR_HOST, S_PTR_HOST_ANS, S_PTR_DONE,
	S_EXP, S_EXP_ANS, S_DONE,
};

enum ptr_purpose { PTR_MECH, PTR_MACRO };

struct spf_eval {
	struct spf_request req;
	char *sender, *local, *sender_domain, *helo, *receiver;
	const struct spf_dns *dns;
	spf_done_cb *cb;
	void *cb_ctx;

	struct frame frames[SPF_MAX_FRAMES];
	int depth;              /* frames in use */
	enum step step;
	int lookups, voids;
	bool pending, in_call;
	bool cancelled;         /* free on the next answer, no callback */

	/* the last answer, owned */
	enum spf_dns_status st;
	char **names;
	size_t nnames;
	struct spf_ip *addrs;
	size_t naddrs;

	/* mechanism in progress */
	char *target;
	char **list;            /* MX or PTR names */
	size_t nlist, li;
	char **valid;           /* validated PTR names */
	size_t nvalid;
	enum ptr_purpose ptr_purpose;
	enum step ptr_return;
	bool have_p;
	char *p_value;

	/* outcome */
	char *exp_text;         /* the explanation TXT, before expansion */
	enum spf_result result;
	char *exp_spec_domain;  /* expanded exp= target */
	char *explanation;
	const char *reason;
};

const char *spf_result_name(enum spf_result r)
{
	switch (r) {
	case SPF_RESULT_NONE: return "none";
	case SPF_RESULT_NEUTRAL: return "neutral";
	case SPF_RESULT_PASS: return "pass";
	case SPF_RESULT_FAIL: return "fail";
	case SPF_RESULT_SOFTFAIL: return "softfail";
	case SPF_RESULT_TEMPERROR: return "temperror";
	case SPF_RESULT_PERMERROR: return "permerror";
	}
	return "permerror";
}

int spf_ip_parse(const char *s, struct spf_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, s, ip->addr) == 1) {
		ip->family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, ip->addr) != 1)
		return -1;
	ip->family = 6;
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (memcmp(ip->addr, mapped, 12) == 0) {
		memmove(ip->addr, ip->addr + 12, 4);
		memset(ip->addr + 4, 0, 12);
		ip->family = 4;
	}
	return 0;
}

static bool ip_in_net(const struct spf_ip *ip, const struct spf_ip *net, int bits)
{
	if (ip->family != net->family)
		return false;
	int full = bits / 8, rest = bits % 8;
	if (memcmp(ip->addr, net->addr, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (ip->addr[full] & mask) == (net->addr[full] & mask);
}

/* ------------------------------------------------------------------ */
/* Record parsing (section 4.6.1, 12) */

static void record_free(struct record *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->terms[i].spec);
	free(r->terms);
	memset(r, 0, sizeof(*r));
	r->redirect = r->exp = -1;
}

static bool is_delim(char c)
{
	return c && strchr(".-+,/_=", c) != NULL;
}

/* Check macro-string syntax of s[0..len) (section 7.1).  exp allows the
 * explanation-only letters and spaces. */
static int macro_syntax(const char *s, size_t len, bool exp, const char **error_r)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ' && exp)
			continue;
		if (c < 0x21 || c > 0x7e) {
			*error_r = "invalid character in macro string";
			return -1;
		}
		if (c != '%')
			continue;
		if (++i >= len) {
			*error_r = "lone % at end of macro string";
			return -1;
		}
		if (s[i] == '%' || s[i] == '_' || s[i] == '-')
			continue;
		if (s[i] != '{') {
			*error_r = "% not followed by {, %, _ or -";
			return -1;
		}
		i++;
		if (i >= len || !strchr("slodiphcrtvSLODIPHCRTV", s[i]) || !s[i]) {
			*error_r = "unknown macro letter";
			return -1;
		}
		if (!exp && strchr("crtCRT", s[i])) {
			*error_r = "macro letter only allowed in exp";
			return -1;
		}
		i++;
		size_t d0 = i;
		while (i < len && isdigit((unsigned char)s[i]))
			i++;
		if (i > d0 && strtol(s + d0, NULL, 10) == 0) {
			*error_r = "macro digit transformer zero";
			return -1;
		}
		if (i < len && (s[i] == 'r' || s[i] == 'R'))
			i++;
		while (i < len && is_delim(s[i]))
			i++;
		if (i >= len || s[i] != '}') {
			*error_r = "unterminated macro";
			return -1;
		}
	}
	return 0;
}

static bool alnum(char c)
{
	return isalnum((unsigned char)c);
}

/* toplabel (section 4.6.1 via RFC 7208 ABNF): alphanumerics with at least
 * one letter, or with an inner dash. */
static bool toplabel_ok(const char *s, size_t len)
{
	if (len == 0)
		return false;
	bool alpha = false;
	for (size_t i = 0; i < len; i++) {
		if (isalpha((unsigned char)s[i]))
			alpha = true;
		else if (s[i] == '-') {
			if (i == 0 || i == len - 1)
				return false;
			alpha = true;
		} else if (!alnum(s[i]))
			return false;
	}
	return alpha;
}

/* domain-spec = macro-string domain-end; domain-end = "." toplabel ["."]
 * / macro-expand. */
static int domain_spec_syntax(const char *s, size_t len, const char **error_r)
{
	if (len == 0) {
		*error_r = "empty domain-spec";
		return -1;
	}
	if (macro_syntax(s, len, false, error_r) < 0)
		return -1;
	if (s[len - 1] == '}')
		return 0;
	size_t end = len;
	if (s[end - 1] == '.')
		end--;
	size_t dot = end;
	while (dot > 0 && s[dot - 1] != '.')
		dot--;
	if (dot == 0 || !toplabel_ok(s + dot, end - dot)) {
		*error_r = "domain-spec does not end in a valid top label";
		return -1;
	}
	return 0;
}

/* "/" ("0" / %x31-39 0*N DIGIT) with value <= max, at s; advances *i. */
static int parse_cidr(const char *s, size_t len, size_t *i, int max, int *out)
{
	size_t j = *i;
	if (j >= len || !isdigit((unsigned char)s[j]))
		return -1;
	if (s[j] == '0' && j + 1 < len && isdigit((unsigned char)s[j + 1]))
		return -1;
	int v = 0;
	while (j < len && isdigit((unsigned char)s[j])) {
		v = v * 10 + (s[j] - '0');
		if (v > max)
			return -1;
		j++;
	}
	*out = v;
	*i = j;
	return 0;
}

/* dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ] over the
 * whole of s[0..len), which starts with '/'. */
static int parse_dual_cidr(const char *s, size_t len, struct term *t)
{
	size_t i = 0;
	if (len == 0)
		return 0;
	if (s[0] != '/')
		return -1;
	i = 1;
	if (i < len && s[i] != '/') {
		if (parse_cidr(s, len, &i, 32, &t->cidr4) < 0)
			return -1;
		if (i == len)
			return 0;
		if (s[i] != '/')
			return -1;
		i++;
	}
	if (i >= len || s[i] != '/')
		return -1;
	i++;
	if (parse_cidr(s, len, &i, 128, &t->cidr6) < 0 || i != len)
		return -1;
	return 0;
}

/* Length of the domain-spec at the start of s: everything before a
 * trailing dual-cidr-length ("/N", "//N" or "/N//N"), since '/' and ':' are
 * legal domain-spec characters (section 7.1). */
static size_t spec_len(const char *s, size_t len)
{
	size_t j = len;
	size_t d = j;
	while (d > 0 && isdigit((unsigned char)s[d - 1]))
		d--;
	if (d == j || d == 0 || s[d - 1] != '/')
		return len;
	j = d - 1;
	if (j > 0 && s[j - 1] == '/') {
		/* "//N": the IPv6 length, maybe after an IPv4 one */
		j--;
		d = j;
		while (d > 0 && isdigit((unsigned char)s[d - 1]))
			d--;
		if (d < j && d > 0 && s[d - 1] == '/' && (d < 2 || s[d - 2] != '/'))
			j = d - 1;
	}
	return j;
}

static int parse_term(const char *s, size_t len, struct term *t, const char **error_r)
{
	memset(t, 0, sizeof(*t));
	t->qual = SPF_RESULT_PASS;
	t->cidr4 = 32;
	t->cidr6 = 128;
	size_t i = 0;
	/* modifier: name "=" macro-string (section 4.6.1) */
	if (isalpha((unsigned char)s[0])) {
		size_t n = 1;
		while (n < len && (alnum(s[n]) || s[n] == '-' || s[n] == '_' || s[n] == '.'))
			n++;
		if (n < len && s[n] == '=') {
			const char *v = s + n + 1;
			size_t vl = len - n - 1;
			if (n == 8 && strncasecmp(s, "redirect", 8) == 0) {
				t->mech = MOD_REDIRECT;
			} else if (n == 3 && strncasecmp(s, "exp", 3) == 0) {
				t->mech = MOD_EXP;
			} else {
				/* unknown modifiers are ignored but must be well formed */
				if (macro_syntax(v, vl, false, error_r) < 0)
					return -1;
				return 1;
			}
			if (domain_spec_syntax(v, vl, error_r) < 0)
				return -1;
			t->spec = xstrndup(v, vl);
			return 0;
		}
	}
	switch (s[0]) {
	case '+': t->qual = SPF_RESULT_PASS; i++; break;
	case '-': t->qual = SPF_RESULT_FAIL; i++; break;
	case '~': t->qual = SPF_RESULT_SOFTFAIL; i++; break;
	case '?': t->qual = SPF_RESULT_NEUTRAL; i++; break;
	}
	size_t n = i;
	while (n < len && isalnum((unsigned char)s[n]))
		n++;
	const char *name = s + i;
	size_t nl = n - i;
	const char *arg = s + n;
	size_t al = len - n;
	static const struct { const char *name; enum mech mech; } names[] = {
		{ "all", MECH_ALL }, { "include", MECH_INCLUDE }, { "a", MECH_A },
		{ "mx", MECH_MX }, { "ptr", MECH_PTR }, { "ip4", MECH_IP4 },
		{ "ip6", MECH_IP6 }, { "exists", MECH_EXISTS },
	};
	size_t k;
	for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
		if (strlen(names[k].name) == nl && strncasecmp(name, names[k].name, nl) == 0)
			break;
	if (k == sizeof(names) / sizeof(names[0])) {
		*error_r = "unknown mechanism";
		return -1;
	}
	t->mech = names[k].mech;
	bool colon = al > 0 && arg[0] == ':';
	if (colon) {
		arg++;
		al--;
	}
	switch (t->mech) {
	case MECH_ALL:
		if (al || colon)
			goto bad;
		return 0;
	case MECH_INCLUDE:
	case MECH_EXISTS:
	case MECH_PTR:
		if (!colon && t->mech != MECH_PTR)
			goto bad;
		if (colon) {
			if (domain_spec_syntax(arg, al, error_r) < 0)
				return -1;
			t->spec = xstrndup(arg, al);
		} else if (al) {
			goto bad;
		}
		return 0;
	case MECH_A:
	case MECH_MX: {
		size_t sl = 0;
		if (colon) {
			sl = spec_len(arg, al);
			if (domain_spec_syntax(arg, sl, error_r) < 0)
				return -1;
			t->spec = xstrndup(arg, sl);
		}
		if (parse_dual_cidr(arg + sl, al - sl, t) < 0)
			goto badcidr;
		return 0;
	}
	case MECH_IP4:
	case MECH_IP6: {
		if (!colon)
			goto bad;
		size_t sl = 0;
		while (sl < al && arg[sl] != '/')
			sl++;
		char *txt = xstrndup(arg, sl);
		int fam = t->mech == MECH_IP4 ? AF_INET : AF_INET6;
		int ok = inet_pton(fam, txt, t->net.addr);
		free(txt);
		if (ok != 1) {
			*error_r = "bad IP network";
			return -1;
		}
		t->net.family = t->mech == MECH_IP4 ? 4 : 6;
		if (sl < al) {
			size_t j = sl + 1;
			int *out = t->mech == MECH_IP4 ? &t->cidr4 : &t->cidr6;
			if (parse_cidr(arg, al, &j, t->mech == MECH_IP4 ? 32 : 128, out) < 0 ||
			    j != al)
				goto badcidr;
		}
		return 0;
	}
	default:
		break;
	}
bad:
	*error_r = "bad mechanism arguments";
	return -1;
badcidr:
	*error_r = "bad CIDR length";
	return -1;
}

/* Parse "v=spf1 ..." into r.  Returns 0 or -1 (permerror). */
static int record_parse(const char *txt, struct record *r, const char **error_r)
{
	memset(r, 0, sizeof(*r));
	r->redirect = r->exp = -1;
	const char *p = txt + 6;
	size_t cap = 0;
	for (;;) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		const char *e = p;
		while (*e && *e != ' ')
			e++;
		struct term t;
		int rc = parse_term(p, (size_t)(e - p), &t, error_r);
		if (rc < 0) {
			free(t.spec);
			record_free(r);
			return -1;
		}
		p = e;
		if (rc > 0)
			continue;
		if ((t.mech == MOD_REDIRECT && r->redirect >= 0) ||
		    (t.mech == MOD_EXP && r->exp >= 0)) {
			free(t.spec);
			record_free(r);
			*error_r = "duplicate redirect= or exp=";
			return -1;
		}
		if (r->n == cap) {
			cap = cap ? cap * 2 : 8;
			r->terms = xrealloc(r->terms, cap * sizeof(*r->terms));
		}
		if (t.mech == MOD_REDIRECT)
			r->redirect = (int)r->n;
		if (t.mech == MOD_EXP)
			r->exp = (int)r->n;
		r->terms[r->n++] = t;
	}
	return 0;
}

/* A TXT string is an SPF record if it is "v=spf1" alone or followed by a
 * space (section 4.5). */
static bool is_spf_record(const char *s)
{
	return strncasecmp(s, "v=spf1", 6) == 0 && (s[6] == 0 || s[6] == ' ');
}

static int record_check_chars(const char *s, const char **error_r)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p > 0x7e) {
			*error_r = "non-ASCII or control character in record";
			return -1;
		}
	return 0;
}

int spf_record_check(const char *record, const char **error_r)
{
	struct record r;
	if (!is_spf_record(record)) {
		*error_r = "not an SPF record";
		return -1;
	}
	if (record_check_chars(record, error_r) < 0)
		return -1;
	if (record_parse(record, &r, error_r) < 0)
		return -1;
	record_free(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Macros (section 7) */

struct macro_env {
	const char *sender, *local, *sender_domain, *domain, *helo, *receiver;
	const struct spf_ip *ip;
	time_t now;
	const char *p;          /* NULL: needed but not known yet */
};

static void ip_text(const struct spf_ip *ip, bool dotted_nibbles, struct buf *out)
{
	if (ip->family == 4) {
		buf_printf(out, "%u.%u.%u.%u", ip->addr[0], ip->addr[1], ip->addr[2],
			   ip->addr[3]);
		return;
	}
	if (dotted_nibbles) {
		for (int i = 0; i < 16; i++)
			buf_printf(out, "%s%x.%x", i ? "." : "", ip->addr[i] >> 4,
				   ip->addr[i] & 15);
		return;
	}
	char tmp[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET6, ip->addr, tmp, sizeof(tmp));
	buf_append_str(out, tmp);
}

/* Expand s; returns 0, -1 (syntax error) or 1 (needs %{p} first). */
static int macro_expand(const char *s, size_t len, const struct macro_env *env,
			bool exp, struct buf *out, const char **error_r)
{
	if (macro_syntax(s, len, exp, error_r) < 0)
		return -1;
	struct buf val;
	buf_init(&val, BUF_UNLIMITED);
	int rc = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			buf_append(out, s + i, 1);
			continue;
		}
		i++;
		if (s[i] == '%') {
			buf_append(out, "%", 1);
			continue;
		}
		if (s[i] == '_') {
			buf_append(out, " ", 1);
			continue;
		}
		if (s[i] == '-') {
			buf_append(out, "%20", 3);
			continue;
		}
		i++; /* '{' */
		char letter = s[i++];
		bool upper = isupper((unsigned char)letter);
		buf_reset(&val);
		switch (tolower((unsigned char)letter)) {
		case 's': buf_append_str(&val, env->sender); break;
		case 'l': buf_append_str(&val, env->local); break;
		case 'o': buf_append_str(&val, env->sender_domain); break;
		case 'd': buf_append_str(&val, env->domain); break;
		case 'i': ip_text(env->ip, true, &val); break;
		case 'c': ip_text(env->ip, false, &val); break;
		case 'v': buf_append_str(&val, env->ip->family == 4 ? "in-addr" : "ip6"); break;
		case 'h': buf_append_str(&val, env->helo); break;
		case 'r': buf_append_str(&val, env->receiver); break;
		case 't': buf_printf(&val, "%lld", (long long)env->now); break;
		case 'p':
			if (!env->p) {
				rc = 1;
				goto out;
			}
			buf_append_str(&val, env->p);
			break;
		}
		long digits = 0;
		while (isdigit((unsigned char)s[i])) {
			if (digits < 1000)
				digits = digits * 10 + (s[i] - '0');
			i++;
		}
		bool reverse = false;
		if (s[i] == 'r' || s[i] == 'R') {
			reverse = true;
			i++;
		}
		size_t d0 = i;
		while (s[i] != '}')
			i++;
		const char *delims = ".";
		char dbuf[8];
		if (i > d0) {
			/* only 7 distinct delimiters exist, so the set fits dbuf */
			size_t dl = 0;
			for (size_t k = d0; k < i; k++)
				if (!memchr(dbuf, s[k], dl))
					dbuf[dl++] = s[k];
			dbuf[dl] = 0;
			delims = dbuf;
		}
		/* split val on delims into parts */
		const char *v = buf_cstr(&val);
		size_t vl = val.len, nparts = 1;
		for (size_t k = 0; k < vl; k++)
			if (strchr(delims, v[k]))
				nparts++;
		struct slice *parts = xcalloc(nparts, sizeof(*parts));
		size_t pi = 0, st = 0;
		for (size_t k = 0; k <= vl; k++) {
			if (k == vl || strchr(delims, v[k])) {
				parts[pi].p = v + st;
				parts[pi].len = k - st;
				pi++;
				st = k + 1;
			}
		}
		if (reverse)
			for (size_t a = 0, b = nparts - 1; a < b; a++, b--) {
				struct slice tmp = parts[a];
				parts[a] = parts[b];
				parts[b] = tmp;
			}
		size_t first = 0;
		if (digits > 0 && (size_t)digits < nparts)
			first = nparts - (size_t)digits;
		for (size_t k = first; k < nparts; k++) {
			if (k > first)
				buf_append(out, ".", 1);
			if (!upper) {
				buf_append_slice(out, parts[k]);
				continue;
			}
			/* uppercase letter: URL-escape (section 7.3) */
			for (size_t m = 0; m < parts[k].len; m++) {
				unsigned char c = (unsigned char)parts[k].p[m];
				if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
					buf_append(out, &parts[k].p[m], 1);
				else
					buf_printf(out, "%%%02X", c);
			}
		}
		free(parts);
	}
out:
	buf_free(&val);
	return rc;
}

/* Cut a domain to at most 253 characters by dropping left labels
 * (section 7.3), and strip one trailing dot. */
static char *domain_finish(struct buf *b)
{
	const char *s = buf_cstr(b);
	size_t len = b->len;
	if (len && s[len - 1] == '.')
		len--;
	while (len > SPF_MAX_DOMAIN) {
		const char *dot = memchr(s, '.', len);
		if (!dot)
			break;
		len -= (size_t)(dot + 1 - s);
		s = dot + 1;
	}
	return xstrndup(s, len);
}

static void split_sender(const char *sender, const char *helo, char **s_r, char **l_r,
			 char **d_r)
{
	if (!sender || !*sender) {
		*s_r = xasprintf("postmaster@%s", helo ? helo : "");
		*l_r = xstrdup("postmaster");
		*d_r = xstrdup(helo ? helo : "");
		return;
	}
	const char *at = strrchr(sender, '@');
	if (!at) {
		*s_r = xasprintf("postmaster@%s", sender);
		*l_r = xstrdup("postmaster");
		*d_r = xstrdup(sender);
		return;
	}
	if (at == sender) {
		*s_r = xasprintf("postmaster%s", sender);
		*l_r = xstrdup("postmaster");
	} else {
		*s_r = xstrdup(sender);
		*l_r = xstrndup(sender, (size_t)(at - sender));
	}
	*d_r = xstrdup(at + 1);
}

char *spf_macro_expand(const char *macro, const struct spf_request *req,
		       const char *domain, bool exp, const char **error_r)
{
	char *s, *l, *o;
	split_sender(req->sender, req->helo, &s, &l, &o);
	struct macro_env env = {
		.sender = s, .local = l, .sender_domain = o,
		.domain = domain ? domain : o, .helo = req->helo ? req->helo : "",
		.receiver = req->receiver ? req->receiver : "unknown",
		.ip = &req->ip, .now = req->now, .p = "unknown",
	};
	struct buf out;
	buf_init(&out, BUF_UNLIMITED);
	int rc = macro_expand(macro, strlen(macro), &env, exp, &out, error_r);
	free(s);
	free(l);
	free(o);
	if (rc != 0) {
		buf_free(&out);
		return NULL;
	}
	return buf_steal(&out);
}

/* ------------------------------------------------------------------ */
/* Evaluation */

static bool run(struct spf_eval *ev);
static void eval_free(struct spf_eval *ev);

static void answer_clear(struct spf_eval *ev)
{
	for (size_t i = 0; i < ev->nnames; i++)
		free(ev->names[i]);
	free(ev->names);
	free(ev->addrs);
	ev->names = NULL;
	ev->addrs = NULL;
	ev->nnames = ev->naddrs = 0;
}

static void on_answer(void *ctx, const struct spf_dns_answer *a)
{
	struct spf_eval *ev = ctx;
	if (ev->cancelled) {
		eval_free(ev);
		return;
	}
	answer_clear(ev);
	ev->st = a->status;
	if (a->status == SPF_DNS_OK && a->count) {
		if (a->strings) {
			ev->names = xcalloc(a->count, sizeof(char *));
			for (size_t i = 0; i < a->count; i++) {
				const char *str = a->strings[i] ? a->strings[i] : "";
				size_t len = a->lengths ? a->lengths[i] : strlen(str);
				ev->names[i] = xstrndup(str, len);
				/* an embedded NUL becomes DEL, which no record or
				 * explanation accepts (section 4.5: 7-bit text) */
				for (size_t k = 0; k < len; k++)
					if (ev->names[i][k] == 0)
						ev->names[i][k] = 0x7f;
			}
			ev->nnames = a->count;
		}
		if (a->addrs) {
			ev->addrs = xcalloc(a->count, sizeof(*ev->addrs));
			memcpy(ev->addrs, a->addrs, a->count * sizeof(*ev->addrs));
			ev->naddrs = a->count;
		}
	}
	ev->pending = false;
	if (!ev->in_call)
		run(ev);
}

enum qtype { Q_TXT, Q_ADDR, Q_MX, Q_PTR };

static void query(struct spf_eval *ev, enum qtype t, const char *name, int family,
		  enum step next)
{
	ev->step = next;
	ev->pending = true;
	ev->in_call = true;
	switch (t) {
	case Q_TXT: ev->dns->txt(ev->dns->ctx, name, on_answer, ev); break;
	case Q_ADDR: ev->dns->addr(ev->dns->ctx, name, family, on_answer, ev); break;
	case Q_MX: ev->dns->mx(ev->dns->ctx, name, on_answer, ev); break;
	case Q_PTR: ev->dns->ptr(ev->dns->ctx, &ev->req.ip, on_answer, ev); break;
	}
	ev->in_call = false;
}

static struct frame *top(struct spf_eval *ev)
{
	return &ev->frames[ev->depth - 1];
}

static void list_free(char ***list, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*list)[i]);
	free(*list);
	*list = NULL;
	*n = 0;
}

/* The frame on top ends with r: pop it and hand r to its parent. */
static void frame_done(struct spf_eval *ev, enum spf_result r, const char *reason)
{
	if (ev->depth == 1) {
		struct frame *f = top(ev);
		ev->result = r;
		if (!ev->reason)
			ev->reason = reason;
		/* section 6.2: exp= of the record that gave fail, top level only */
		if (r == SPF_RESULT_FAIL && f->rec.exp >= 0) {
			ev->step = S_EXP;
			return;
		}
		ev->step = S_DONE;
		return;
	}
	struct frame *f = top(ev);
	free(f->domain);
	record_free(&f->rec);
	ev->depth--;
	f = top(ev);
	struct term *t = &f->rec.terms[f->idx];
	switch (r) {
	case SPF_RESULT_PASS:
		/* include matched: the parent's term matches (section 5.2) */
		frame_done(ev, t->qual, "include matched");
		return;
	case SPF_RESULT_FAIL:
	case SPF_RESULT_SOFTFAIL:
	case SPF_RESULT_NEUTRAL:
		f->idx++;
		ev->step = S_EVAL;
		return;
	case SPF_RESULT_TEMPERROR:
		frame_done(ev, r, reason);
		return;
	case SPF_RESULT_NONE:
		reason = "include target has no SPF record";
		/* fall through */
	default:
		frame_done(ev, SPF_RESULT_PERMERROR, reason);
		return;
	}
}

static void term_nomatch(struct spf_eval *ev)
{
	top(ev)->idx++;
	ev->step = S_EVAL;
}

static void term_match(struct spf_eval *ev)
{
	struct frame *f = top(ev);
	frame_done(ev, f->rec.terms[f->idx].qual, "mechanism matched");
}

static void macro_env_init(struct spf_eval *ev, struct macro_env *env)
{
	*env = (struct macro_env){
		.sender = ev->sender, .local = ev->local, .sender_domain = ev->sender_domain,
		.domain = top(ev)->domain, .helo = ev->helo, .receiver = ev->receiver,
		.ip = &ev->req.ip, .now = ev->req.now,
		.p = ev->have_p ? ev->p_value : NULL,
	};
}

static void ptr_start(struct spf_eval *ev, enum ptr_purpose purpose, enum step ret)
{
	ev->ptr_purpose = purpose;
	ev->ptr_return = ret;
	list_free(&ev->list, &ev->nlist);
	list_free(&ev->valid, &ev->nvalid);
	query(ev, Q_PTR, NULL, 0, S_PTR_ANS);
}

/* Expand the domain-spec of term t (or the current domain when absent)
 * into ev->target.  Returns 0, -1 (frame ended with permerror) or 1 (a
 * %{p} lookup was started; the step runs again afterwards). */
static int expand_target(struct spf_eval *ev, const char *spec)
{
	free(ev->target);
	ev->target = NULL;
	if (!spec) {
		ev->target = xstrdup(top(ev)->domain);
		return 0;
	}
	struct macro_env env;
	macro_env_init(ev, &env);
	struct buf out;
	buf_init(&out, BUF_UNLIMITED);
	const char *error = NULL;
	int rc = macro_expand(spec, strlen(spec), &env, false, &out, &error);
	if (rc < 0) {
		buf_free(&out);
		frame_done(ev, SPF_RESULT_PERMERROR, error);
		return -1;
	}
	if (rc > 0) {
		buf_free(&out);
		ptr_start(ev, PTR_MACRO, ev->step);
		return 1;
	}
	ev->target = domain_finish(&out);
	buf_free(&out);
	return 0;
}

static bool count_lookup(struct spf_eval *ev)
{
	if (++ev->lookups > SPF_MAX_DNS_MECHANISMS) {
		frame_done(ev, SPF_RESULT_PERMERROR, "more than 10 DNS mechanisms");
		return false;
	}
	return true;
}

/* Returns false when the answer ended the frame (temperror, void limit). */
static bool check_answer(struct spf_eval *ev, bool counts_void)
{
	if (ev->st == SPF_DNS_TEMPFAIL) {
		frame_done(ev, SPF_RESULT_TEMPERROR, "DNS timeout");
		return false;
	}
	if (counts_void && (ev->st == SPF_DNS_NXDOMAIN || ev->nnames + ev->naddrs == 0) &&
	    ++ev->voids > SPF_MAX_VOID_LOOKUPS) {
		frame_done(ev, SPF_RESULT_PERMERROR, "more than 2 void lookups");
		return false;
	}
	return true;
}

static bool addrs_match(struct spf_eval *ev, const struct term *t)
{
	for (size_t i = 0; i < ev->naddrs; i++) {
		const struct spf_ip *a = &ev->addrs[i];
		if (ip_in_net(&ev->req.ip, a, a->family == 4 ? t->cidr4 : t->cidr6))
			return true;
	}
	return false;
}

/* Section 4.3: a usable domain is a multi-label FQDN without empty or
 * over-long labels. */
static bool domain_ok(const char *d)
{
	size_t len = strlen(d);
	if (len && d[len - 1] == '.')
		len--;
	if (len == 0 || len > SPF_MAX_DOMAIN)
		return false;
	size_t lab = 0, labels = 1;
	for (size_t i = 0; i < len; i++) {
		if (d[i] == '.') {
			if (lab == 0)
				return false;
			lab = 0;
			labels++;
			continue;
		}
		if (++lab > 63)
			return false;
	}
	return lab > 0 && labels > 1;
}

/* One step of the machine.  Steps that issue a query set ev->step to the
 * step that reads the answer. */
static void step(struct spf_eval *ev)
{
	struct frame *f = top(ev);
	struct term *t = f->idx < f->rec.n ? &f->rec.terms[f->idx] : NULL;
	const char *error = NULL;

	switch (ev->step) {
	case S_FETCH:
		if (!domain_ok(f->domain)) {
			frame_done(ev, ev->depth == 1 && !f->redirected ? SPF_RESULT_NONE
				   : SPF_RESULT_PERMERROR, "invalid domain");
			return;
		}
		query(ev, Q_TXT, f->domain, 0, S_FETCHED);
		return;
	case S_FETCHED: {
		if (ev->st == SPF_DNS_TEMPFAIL) {
			frame_done(ev, SPF_RESULT_TEMPERROR, "DNS timeout fetching record");
			return;
		}
		const char *found = NULL;
		size_t n = 0;
		for (size_t i = 0; i < ev->nnames; i++)
			if (is_spf_record(ev->names[i])) {
				found = ev->names[i];
				n++;
			}
		if (n == 0) {
			if (ev->depth > 1 || f->redirected)
				if (ev->st == SPF_DNS_NXDOMAIN || ev->nnames == 0)
					if (++ev->voids > SPF_MAX_VOID_LOOKUPS) {
						frame_done(ev, SPF_RESULT_PERMERROR,
							   "more than 2 void lookups");
						return;
					}
			frame_done(ev, f->redirected ? SPF_RESULT_PERMERROR : SPF_RESULT_NONE,
				   "no SPF record");
			return;
		}
		if (n > 1) {
			frame_done(ev, SPF_RESULT_PERMERROR, "more than one SPF record");
			return;
		}
		if (strlen(found) > SPF_MAX_RECORD ||
		    record_check_chars(found, &error) < 0 ||
		    record_parse(found, &f->rec, &error) < 0) {
			frame_done(ev, SPF_RESULT_PERMERROR, error ? error : "record too long");
			return;
		}
		f->idx = 0;
		ev->step = S_EVAL;
		return;
	}
	case S_EVAL:
		if (!t) {
			/* end of record: redirect= or neutral (section 4.7, 6.1) */
			if (f->rec.redirect < 0) {
				frame_done(ev, SPF_RESULT_NEUTRAL, "no mechanism matched");
				return;
			}
			struct term *r = &f->rec.terms[f->rec.redirect];
			if (expand_target(ev, r->spec) != 0)
				return;
			if (!count_lookup(ev))
				return;
			free(f->domain);
			f->domain = ev->target;
			ev->target = NULL;
			record_free(&f->rec);
			f->redirected = true;
			f->idx = 0;
			ev->step = S_FETCH;
			return;
		}
		switch (t->mech) {
		case MOD_REDIRECT:
		case MOD_EXP:
			term_nomatch(ev);
			return;
		case MECH_ALL:
			term_match(ev);
			return;
		case MECH_IP4:
		case MECH_IP6:
			if (ip_in_net(&ev->req.ip, &t->net, t->mech == MECH_IP4 ? t->cidr4 : t->cidr6))
				term_match(ev);
			else
				term_nomatch(ev);
			return;
		case MECH_INCLUDE:
			if (expand_target(ev, t->spec) != 0 || !count_lookup(ev))
				return;
			if (ev->depth >= SPF_MAX_FRAMES) {
				frame_done(ev, SPF_RESULT_PERMERROR, "include too deep");
				return;
			}
			ev->depth++;
			f = top(ev);
			memset(f, 0, sizeof(*f));
			f->rec.redirect = f->rec.exp = -1;
			f->domain = ev->target;
			ev->target = NULL;
			ev->step = S_FETCH;
			return;
		case MECH_A:
			if (expand_target(ev, t->spec) != 0 || !count_lookup(ev))
				return;
			query(ev, Q_ADDR, ev->target, ev->req.ip.family, S_A_ANS);
			return;
		case MECH_MX:
			if (expand_target(ev, t->spec) != 0 || !count_lookup(ev))
				return;
			query(ev, Q_MX, ev->target, 0, S_MX_ANS);
			return;
		case MECH_EXISTS:
			if (expand_target(ev, t->spec) != 0 || !count_lookup(ev))
				return;
			query(ev, Q_ADDR, ev->target, 4, S_EXISTS_ANS);
			return;
		case MECH_PTR:
			if (expand_target(ev, t->spec) != 0 || !count_lookup(ev))
				return;
			ptr_start(ev, PTR_MECH, S_EVAL);
			return;
		}
		return;
	case S_A_ANS:
		if (!check_answer(ev, true))
			return;
		if (addrs_match(ev, t))
			term_match(ev);
		else
			term_nomatch(ev);
		return;
	case S_EXISTS_ANS:
		if (!check_answer(ev, true))
			return;
		if (ev->naddrs)
			term_match(ev);
		else
			term_nomatch(ev);
		return;
	case S_MX_ANS:
		if (!check_answer(ev, true))
			return;
		list_free(&ev->list, &ev->nlist);
		if (ev->nnames > SPF_MAX_MX_NAMES) {
			frame_done(ev, SPF_RESULT_PERMERROR, "more than 10 MX names");
			return;
		}
		ev->list = ev->names;
		ev->nlist = ev->nnames;
		ev->names = NULL;
		ev->nnames = 0;
		ev->li = 0;
		ev->step = S_MX_HOST;
		return;
	case S_MX_HOST:
		if (ev->li >= ev->nlist) {
			term_nomatch(ev);
			return;
		}
		query(ev, Q_ADDR, ev->list[ev->li], ev->req.ip.family, S_MX_HOST_ANS);
		return;
	case S_MX_HOST_ANS:
		if (!check_answer(ev, false))
			return;
		if (addrs_match(ev, t)) {
			term_match(ev);
			return;
		}
		ev->li++;
		ev->step = S_MX_HOST;
		return;
	case S_PTR_ANS:
		/* section 5.5: a failed PTR lookup is no match, not an error */
		list_free(&ev->list, &ev->nlist);
		if (ev->st == SPF_DNS_OK) {
			ev->list = ev->names;
			ev->nlist = ev->nnames > SPF_MAX_PTR_NAMES ? SPF_MAX_PTR_NAMES : ev->nnames;
			for (size_t i = ev->nlist; i < ev->nnames; i++)
				free(ev->names[i]);
			ev->names = NULL;
			ev->nnames = 0;
		}
		ev->li = 0;
		ev->step = S_PTR_HOST;
		return;
	case S_PTR_HOST:
		if (ev->li >= ev->nlist) {
			ev->step = S_PTR_DONE;
			return;
		}
		query(ev, Q_ADDR, ev->list[ev->li], ev->req.ip.family, S_PTR_HOST_ANS);
		return;
	case S_PTR_HOST_ANS:
		for (size_t i = 0; i < ev->naddrs; i++)
			if (ip_in_net(&ev->req.ip, &ev->addrs[i], ev->req.ip.family == 4 ? 32 : 128)) {
				ev->valid = xrealloc(ev->valid, (ev->nvalid + 1) * sizeof(char *));
				ev->valid[ev->nvalid++] = ev->list[ev->li];
				ev->list[ev->li] = NULL;
				break;
			}
		ev->li++;
		ev->step = S_PTR_HOST;
		return;
	case S_PTR_DONE: {
		/* the PTR name that is the target, or a subdomain of it */
		const char *target = ev->ptr_purpose == PTR_MECH ? ev->target : f->domain;
		size_t tl = strlen(target);
		const char *exact = NULL, *sub = NULL;
		for (size_t i = 0; i < ev->nvalid; i++) {
			char *v = ev->valid[i];
			size_t vl = strlen(v);
			if (vl && v[vl - 1] == '.')
				v[--vl] = 0;
			if (strcasecmp(v, target) == 0)
				exact = exact ? exact : v;
			else if (vl > tl && v[vl - tl - 1] == '.' &&
				 strcasecmp(v + vl - tl, target) == 0)
				sub = sub ? sub : v;
		}
		if (ev->ptr_purpose == PTR_MECH) {
			if (exact || sub)
				term_match(ev);
			else
				term_nomatch(ev);
			return;
		}
		/* %{p} (section 7.3) */
		const char *p = exact ? exact : sub ? sub : ev->nvalid ? ev->valid[0] : "unknown";
		ev->p_value = xstrdup(p);
		ev->have_p = true;
		ev->step = ev->ptr_return;
		return;
	}
	case S_EXP: {
		/* section 6.2: expand exp= and fetch its TXT */
		struct term *e = &f->rec.terms[f->rec.exp];
		struct macro_env env;
		macro_env_init(ev, &env);
		struct buf out;
		buf_init(&out, BUF_UNLIMITED);
		int rc = macro_expand(e->spec, strlen(e->spec), &env, false, &out, &error);
		if (rc > 0) {
			buf_free(&out);
			ptr_start(ev, PTR_MACRO, S_EXP);
			return;
		}
		if (rc < 0) {
			buf_free(&out);
			ev->step = S_DONE;
			return;
		}
		free(ev->exp_spec_domain);
		ev->exp_spec_domain = domain_finish(&out);
		buf_free(&out);
		query(ev, Q_TXT, ev->exp_spec_domain, 0, S_EXP_ANS);
		return;
	}
	case S_EXP_ANS: {
		if (!ev->exp_text) {
			if (ev->st != SPF_DNS_OK || ev->nnames != 1) {
				ev->step = S_DONE;
				return;
			}
			/* kept apart: a %{p} lookup replaces the answer */
			ev->exp_text = xstrdup(ev->names[0]);
		}
		struct macro_env env;
		macro_env_init(ev, &env);
		struct buf out;
		buf_init(&out, BUF_UNLIMITED);
		const char *text = ev->exp_text;
		for (const unsigned char *p = (const unsigned char *)text; *p; p++)
			if (*p < 0x20 || *p > 0x7e) {
				ev->step = S_DONE;
				buf_free(&out);
				return;
			}
		int rc = macro_expand(text, strlen(text), &env, true, &out, &error);
		if (rc > 0) {
			buf_free(&out);
			ptr_start(ev, PTR_MACRO, S_EXP_ANS);
			return;
		}
		/* an over-long explanation is dropped, never cut */
		if (rc == 0 && out.len <= SPF_MAX_EXPLANATION)
			ev->explanation = buf_steal(&out);
		buf_free(&out);
		ev->step = S_DONE;
		return;
	}
	case S_DONE:
		return;
	}
}

static void eval_free(struct spf_eval *ev)
{
	for (int i = 0; i < ev->depth; i++) {
		free(ev->frames[i].domain);
		record_free(&ev->frames[i].rec);
	}
	answer_clear(ev);
	list_free(&ev->list, &ev->nlist);
	list_free(&ev->valid, &ev->nvalid);
	free(ev->target);
	free(ev->p_value);
	free(ev->exp_spec_domain);
	free(ev->explanation);
	free(ev->exp_text);
	free(ev->sender);
	free(ev->local);
	free(ev->sender_domain);
	free(ev->helo);
	free(ev->receiver);
	free(ev);
}

/* Run steps until a question is outstanding (false) or the evaluation has
 * ended, its callback run and its state freed (true). */
static bool run(struct spf_eval *ev)
{
	while (ev->step != S_DONE) {
		if (ev->pending)
			return false;
		step(ev);
	}
	struct spf_outcome out = {
		.result = ev->result,
		.explanation = ev->explanation,
		.reason = ev->reason ? ev->reason : "",
		.dns_mechanisms = ev->lookups,
	};
	log_debug("spf", "event=result result=%s domain=%s reason=%s",
		  spf_result_name(out.result), log_quote(ev->frames[0].domain),
		  log_quote(out.reason));
	ev->cb(ev->cb_ctx, &out);
	eval_free(ev);
	return true;
}

struct spf_eval *spf_check(const struct spf_request *req, const struct spf_dns *dns,
			   spf_done_cb *cb, void *ctx)
{
	struct spf_eval *ev = xcalloc(1, sizeof(*ev));
	ev->req = *req;
	ev->dns = dns;
	ev->cb = cb;
	ev->cb_ctx = ctx;
	ev->helo = xstrdup(req->helo ? req->helo : "");
	ev->receiver = xstrdup(req->receiver ? req->receiver : "unknown");
	split_sender(req->sender, req->helo, &ev->sender, &ev->local, &ev->sender_domain);
	ev->req.sender = ev->req.helo = ev->req.domain = ev->req.receiver = NULL;
	ev->depth = 1;
	ev->frames[0].rec.redirect = ev->frames[0].rec.exp = -1;
	ev->frames[0].domain = xstrdup(req->domain ? req->domain : ev->sender_domain);
	ev->step = S_FETCH;
	return run(ev) ? NULL : ev;
}

void spf_cancel(struct spf_eval **evp)
{
	struct spf_eval *ev = *evp;
	*evp = NULL;
	if (!ev)
		return;
	/* run() returned with a question outstanding, so pending is true */
	if (ev->dns->cancel) {
		ev->dns->cancel(ev->dns->ctx, ev);
		eval_free(ev);
		return;
	}
	ev->cancelled = true;
}
