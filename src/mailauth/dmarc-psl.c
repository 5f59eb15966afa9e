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
 * read-only and may be shared by threads.
 *
 * Answers are cached per thread: a libpsl lookup walks the list's tables
 * label by label, and a server asks the same few names (the From domain,
 * the DKIM d=, the SPF domain) for every message.  Each thread has
 * DMARC_PSL_CACHE_SLOTS slots, direct-mapped by a hash of the lower-cased
 * name, a new answer replacing whatever held its slot, so the cache never
 * grows and needs no lock.  A slot records the list it was computed with
 * (each loaded list has a process-unique id), so a reloaded list never
 * gets another list's answers.  The registrable domain is always a suffix
 * of the name, so a slot stores the name (at most DMARC_MAX_DOMAIN bytes,
 * checked before anything is cached) and the offset of the answer in it. */
#include <libpsl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "mailauth/dmarc.h"

struct dmarc_psl {
	psl_ctx_t *ctx;
	uint64_t id;		/* never 0: 0 marks an empty cache slot */
};

static atomic_uint_fast64_t last_list_id;

struct psl_slot {
	uint64_t list_id;	/* 0: empty */
	int reg_off;		/* offset of the registrable domain in name; -1: none */
	size_t len;
	char name[DMARC_MAX_DOMAIN + 1];
};

struct psl_cache {
	struct psl_slot slot[DMARC_PSL_CACHE_SLOTS];
	uint64_t hits, misses;
	size_t used;
};

static __thread struct psl_cache *thread_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;

static void cache_key_create(void)
{
	/* the key only exists so that a thread's cache is freed when it ends */
	if (pthread_key_create(&cache_key, free) != 0)
		fatal("dmarc: pthread_key_create failed");
}

static struct psl_cache *cache_get(void)
{
	if (thread_cache == NULL) {
		pthread_once(&cache_key_once, cache_key_create);
		thread_cache = xcalloc(1, sizeof(*thread_cache));
		if (pthread_setspecific(cache_key, thread_cache) != 0)
			fatal("dmarc: pthread_setspecific failed");
	}
	return thread_cache;
}

/* FNV-1a: the names are short and the table small, any even spread does. */
static size_t name_slot(const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 0x100000001b3ULL;
	}
	return (size_t)(h % DMARC_PSL_CACHE_SLOTS);
}

void dmarc_psl_cache_stats(struct dmarc_psl_cache_stats *st)
{
	const struct psl_cache *c = thread_cache;

	st->hits = c != NULL ? c->hits : 0;
	st->misses = c != NULL ? c->misses : 0;
	st->used = c != NULL ? c->used : 0;
}

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
	psl->id = atomic_fetch_add(&last_list_id, 1) + 1;
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
	size_t len = strlen(name);
	struct psl_cache *c = cache_get();
	struct psl_slot *slot = &c->slot[name_slot(name, len)];
	char *out;

	if (slot->list_id == psl->id && slot->len == len && memcmp(slot->name, name, len) == 0) {
		c->hits++;
		out = slot->reg_off >= 0 ? xstrdup(slot->name + slot->reg_off) : NULL;
		free(name);
		return out;
	}
	c->misses++;
	const char *reg = psl_registrable_domain(psl->ctx, name);
	out = reg != NULL ? xstrdup(reg) : NULL;
	/* libpsl answers with a pointer into name; anything else (which
	 * would be a libpsl change) is simply not cached */
	if (len <= DMARC_MAX_DOMAIN &&
	    (reg == NULL || (reg >= name && reg <= name + len))) {
		if (slot->list_id == 0)
			c->used++;
		slot->list_id = psl->id;
		slot->len = len;
		memcpy(slot->name, name, len);
		slot->name[len] = '\0';
		slot->reg_off = reg != NULL ? (int)(reg - name) : -1;
	}
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
