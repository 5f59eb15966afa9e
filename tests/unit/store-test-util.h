/* Setup shared by the store's unit tests (test-store*.c): a scratch data
 * folder made with mkdtemp, removed recursively afterwards, and a store
 * opened on it or the test exits.  Functions are static inline so a test
 * that does not use one gets no warning. */
#ifndef TERN_STORE_TEST_UTIL_H
#define TERN_STORE_TEST_UTIL_H

#include "store/store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Copy the mkdtemp template tmpl ("/tmp/x-XXXXXX") into buf (of at least
 * strlen(tmpl) + 1 bytes) and create it; exits on failure. */
static inline const char *store_test_mkdtemp(char *buf, const char *tmpl)
{
	strcpy(buf, tmpl);
	if (mkdtemp(buf) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	return buf;
}

static inline int store_test_rm_cb(const char *path, const struct stat *sb, int flag,
				   struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(path);
}

/* Remove dir and everything below it (links not followed). */
static inline void store_test_rm_rf(const char *dir)
{
	nftw(dir, store_test_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* store_open or exit with its error. */
static inline struct store *store_test_open(const char *dir, const struct store_options *o)
{
	struct store *s = NULL;
	const char *err = NULL;

	if (store_open(dir, o, &s, &err) < 0) {
		fprintf(stderr, "store_open: %s\n", err);
		exit(1);
	}
	return s;
}

/* SQL that takes a schema-5 index back to schema 4. */
#define STORE_TEST_UNDO_V5							\
	"DROP TABLE queue_rcpts; DROP TABLE queue;"				\
	"DELETE FROM schema_version WHERE version = 5;"

/* SQL that takes a current index back to schema 3 (for upgrade tests). */
#define STORE_TEST_UNDO_V4							\
	STORE_TEST_UNDO_V5							\
	"DROP TRIGGER mailboxes_annotations; DROP TABLE annotations;"		\
	"DROP INDEX summaries_threadid; DROP INDEX summaries_msgid;"		\
	"DROP TABLE summaries; ALTER TABLE messages DROP COLUMN savedate;"	\
	"DROP TRIGGER mailboxes_objectid; DROP INDEX mailboxes_objectid;"	\
	"ALTER TABLE mailboxes DROP COLUMN objectid;"				\
	"ALTER TABLE users DROP COLUMN quota_messages;"			\
	"DELETE FROM schema_version WHERE version = 4;"

#endif
