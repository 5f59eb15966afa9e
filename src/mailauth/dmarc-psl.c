/* Organisational domains for DMARC (RFC 7489 section 3.2) from the Public
 * Suffix List through libpsl, and identifier alignment (section 3.1).
 *
 * The organisational domain is the registrable domain: the longest public
 * suffix of the name plus one label.  Both sections of the list are used,
 * ICANN and private: a private entry such as github.io marks names whose
 * labels below it belong to different owners, which is exactly what
 * relaxed alignment must not join (docs/dmarc.md).  libpsl applies the
 * list's implicit "*" rule, so an unlisted TLD is a public suffix.
 *
 * Invariants: names are lower-cased before lookup (ASCII directly, UTF-8
 * through libpsl), so results are lower case; names that are empty, longer
 * than DMARC_MAX_DOMAIN, start with a dot, hold an empty label or a
 * control character or space have no registrable domain.  A loaded list is
 * read-only and may be shared by threads. */
#include <libpsl.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mailauth/dmarc.h"

struct dmarc_psl {
	psl_ctx_t *ctx;
};

struct dmarc_psl *dmarc_psl_open(const char *path, const char **error_r)
{
	psl_ctx_t *ctx = path != NULL ? psl_load_file(path) : psl_latest(NULL);

	if (ctx == NULL || psl_suffix_count(ctx) == 0) {
		if (ctx != NULL)
			psl_free(ctx);
		*error_r = path != NULL ? "cannot load the public suffix list file"
					: "no public suffix list (install Debian's publicsuffix)";
		return NULL;
	}
	struct dmarc_psl *psl = xcalloc(1, sizeof(*psl));
	psl->ctx = ctx;
	return psl;
}

void dmarc_psl_free(struct dmarc_psl **psl)
{
	if (*psl == NULL)
		return;
	psl_free((*psl)->ctx);
	free(*psl);
	*psl = NULL;
}

/* A lower-cased copy of domain without one trailing dot, or NULL when it
 * cannot be a domain name. */
static char *normalise(const char *domain)
{
	size_t len = domain != NULL ? strlen(domain) : 0;
	bool ascii = true;

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > DMARC_MAX_DOMAIN || domain[0] == '.')
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)domain[i];
		if (c <= 0x20 || c == 0x7f)
			return NULL;
		if (c == '.' && domain[i + 1] == '.')
			return NULL;
		if (c >= 0x80)
			ascii = false;
	}
	char *copy = xstrndup(domain, len);
	if (ascii) {
		for (size_t i = 0; i < len; i++)
			if (copy[i] >= 'A' && copy[i] <= 'Z')
				copy[i] = (char)(copy[i] - 'A' + 'a');
		return copy;
	}
	char *lower = NULL;
	if (psl_str_to_utf8lower(copy, "utf-8", NULL, &lower) != PSL_SUCCESS || lower == NULL) {
		free(copy);
		return NULL;
	}
	free(copy);
	char *out = xstrdup(lower);
	psl_free_string(lower);
	return out;
}

char *dmarc_psl_registrable(const struct dmarc_psl *psl, const char *domain)
{
	char *name = normalise(domain);

	if (name == NULL)
		return NULL;
	const char *reg = psl_registrable_domain(psl->ctx, name);
	char *out = reg != NULL ? xstrdup(reg) : NULL;
	free(name);
	return out;
}

char *dmarc_org_domain(const struct dmarc_psl *psl, const char *domain)
{
	char *reg = dmarc_psl_registrable(psl, domain);

	if (reg != NULL)
		return reg;
	char *name = normalise(domain);
	if (name != NULL)
		return name;
	/* not a domain: compare it as given, lower-cased */
	name = xstrdup(domain != NULL ? domain : "");
	for (char *p = name; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return name;
}

bool dmarc_aligned(const struct dmarc_psl *psl, const char *a, const char *b,
		   enum dmarc_align mode)
{
	char *x = normalise(a);
	char *y = normalise(b);
	bool same = false;

	if (x != NULL && y != NULL) {
		if (mode == DMARC_ALIGN_RELAXED) {
			char *ox = dmarc_org_domain(psl, x);
			char *oy = dmarc_org_domain(psl, y);
			same = strcmp(ox, oy) == 0;
			free(ox);
			free(oy);
		} else {
			same = strcmp(x, y) == 0;
		}
	}
	free(x);
	free(y);
	return same;
}
