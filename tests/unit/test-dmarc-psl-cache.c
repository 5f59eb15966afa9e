/* The per-thread cache of registrable-domain answers in dmarc-psl.c: a
 * repeated name is a hit with the same answer (including "none"), a
 * different list never sees another list's answers, the cache stays within
 * DMARC_PSL_CACHE_SLOTS and forgets old names, and threads looking up the
 * same names at once each get the right answers from their own cache. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "mailauth/dmarc.h"
#include "unit.h"

static struct dmarc_psl *psl;

static struct dmarc_psl_cache_stats stats(void)
{
	struct dmarc_psl_cache_stats st;

	dmarc_psl_cache_stats(&st);
	return st;
}

/* Whether dmarc_psl_registrable(list, name) is want (NULL: none). */
static bool answers(const struct dmarc_psl *list, const char *name, const char *want)
{
	char *got = dmarc_psl_registrable(list, name);
	bool ok = want == NULL ? got == NULL : got != NULL && strcmp(got, want) == 0;

	if (!ok)
		fprintf(stderr, "  %s: got %s, expected %s\n", name, got ? got : "null",
			want ? want : "null");
	free(got);
	return ok;
}

static void test_hit_and_miss(void)
{
	struct dmarc_psl_cache_stats a = stats();

	CHECK(answers(psl, "Mail.Example.COM", "example.com"));
	struct dmarc_psl_cache_stats b = stats();
	CHECK(b.misses == a.misses + 1 && b.hits == a.hits);
	/* the same name after lower-casing and without the trailing dot */
	CHECK(answers(psl, "mail.example.com.", "example.com"));
	struct dmarc_psl_cache_stats c = stats();
	CHECK(c.hits == b.hits + 1 && c.misses == b.misses);
	/* "no registrable domain" is cached too */
	CHECK(answers(psl, "co.uk", NULL));
	CHECK(answers(psl, "CO.UK", NULL));
	struct dmarc_psl_cache_stats d = stats();
	CHECK(d.misses == c.misses + 1 && d.hits == c.hits + 1);
	/* names that are not domains never reach the cache */
	CHECK(answers(psl, "a..example.com", NULL));
	CHECK(answers(psl, "", NULL));
	struct dmarc_psl_cache_stats e = stats();
	CHECK(e.misses == d.misses && e.hits == d.hits);
	/* a private-section suffix and a wildcard rule, asked twice */
	for (int i = 0; i < 2; i++) {
		CHECK(answers(psl, "www.alice.github.io", "alice.github.io"));
		CHECK(answers(psl, "a.b.c.kobe.jp", "b.c.kobe.jp"));
	}
}

static void test_longest_name(void)
{
	char name[DMARC_MAX_DOMAIN + 2];

	/* 63 + 1 + 63 + 1 + 63 + 1 + 57 + ".com" = 253 bytes */
	memset(name, 'a', sizeof(name));
	name[63] = name[127] = name[191] = '.';
	memcpy(name + 249, ".com", 5);
	CHECK(strlen(name) == DMARC_MAX_DOMAIN);
	const char *want = name + 192;
	CHECK(answers(psl, name, want));
	struct dmarc_psl_cache_stats a = stats();
	CHECK(answers(psl, name, want));
	struct dmarc_psl_cache_stats b = stats();
	CHECK(b.hits == a.hits + 1);
	/* one byte more is not a domain */
	memmove(name + 1, name, DMARC_MAX_DOMAIN + 1);
	name[0] = 'b';
	CHECK(answers(psl, name, NULL));
}

static void test_other_list(void)
{
	const char *error = NULL;
	struct dmarc_psl *other = dmarc_psl_open(NULL, &error);

	CHECK(other != NULL);
	if (other == NULL)
		return;
	CHECK(answers(psl, "shop.example.net", "example.net"));
	struct dmarc_psl_cache_stats a = stats();
	/* same name, another list: computed again, not taken from psl's slot */
	CHECK(answers(other, "shop.example.net", "example.net"));
	struct dmarc_psl_cache_stats b = stats();
	CHECK(b.misses == a.misses + 1 && b.hits == a.hits);
	CHECK(answers(other, "shop.example.net", "example.net"));
	CHECK(stats().hits == b.hits + 1);
	dmarc_psl_free(&other);
}

static void test_bound_and_eviction(void)
{
	char name[64];

	CHECK(answers(psl, "first.example.org", "example.org"));
	for (int i = 0; i < 20 * DMARC_PSL_CACHE_SLOTS; i++) {
		snprintf(name, sizeof(name), "h%d.d%d.example.org", i, i % 7);
		CHECK(answers(psl, name, "example.org"));
		CHECK(stats().used <= DMARC_PSL_CACHE_SLOTS);
	}
	CHECK(stats().used == DMARC_PSL_CACHE_SLOTS);
	/* 2560 other names went through 128 slots: the first one was replaced,
	 * so it is computed again, with the same answer */
	struct dmarc_psl_cache_stats a = stats();
	CHECK(answers(psl, "first.example.org", "example.org"));
	CHECK(stats().misses == a.misses + 1);
}

static const char *const thread_names[][2] = {
	{ "example.com", "example.com" },
	{ "b.example.com", "example.com" },
	{ "a.b.example.co.uk", "example.co.uk" },
	{ "co.uk", NULL },
	{ "www.bob.github.io", "bob.github.io" },
	{ "github.io", NULL },
	{ "x.y.z.kobe.jp", "y.z.kobe.jp" },
	{ "foo.unlisted-tld", "foo.unlisted-tld" },
	{ "MIXED.Case.Example.Org.", "example.org" },
};
#define N_THREAD_NAMES (sizeof(thread_names) / sizeof(thread_names[0]))

struct thread_run {
	int wrong;
	struct dmarc_psl_cache_stats st;
};

static void *thread_main(void *arg)
{
	struct thread_run *run = arg;
	char name[64];

	for (int i = 0; i < 3000; i++) {
		const char *const *t = thread_names[(size_t)i % N_THREAD_NAMES];
		if (!answers(psl, t[0], t[1]))
			run->wrong++;
		/* and some names of its own, to make slots change under use */
		snprintf(name, sizeof(name), "t%d.example.net", i % 40);
		if (!answers(psl, name, "example.net"))
			run->wrong++;
	}
	dmarc_psl_cache_stats(&run->st);
	return NULL;
}

static void test_threads(void)
{
	pthread_t th[4];
	struct thread_run run[4];

	memset(run, 0, sizeof(run));
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, thread_main, &run[i]) == 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(run[i].wrong == 0);
		/* each thread had its own cache: its counters cover exactly its
		 * own 6000 lookups, most of them hits */
		CHECK(run[i].st.hits + run[i].st.misses == 6000);
		CHECK(run[i].st.hits > 3000);
		CHECK(run[i].st.used <= DMARC_PSL_CACHE_SLOTS);
	}
}

int main(void)
{
	const char *error = NULL;

	log_set_level(LOG_LEVEL_ERROR);
	psl = dmarc_psl_open(NULL, &error);
	if (psl == NULL) {
		fprintf(stderr, "cannot load the PSL: %s\n", error);
		unit_failed++;
		return unit_summary("dmarc-psl-cache");
	}
	RUN(test_hit_and_miss);
	RUN(test_longest_name);
	RUN(test_other_list);
	RUN(test_bound_and_eviction);
	RUN(test_threads);
	dmarc_psl_free(&psl);
	return unit_summary("dmarc-psl-cache");
}
