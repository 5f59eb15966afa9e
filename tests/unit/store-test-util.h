/* Setup shared by the store's unit tests (test-store*.c): a scratch data
 * folder made with mkdtemp, removed recursively afterwards, and a store
 * opened on it or the test exits, and the wait for a queued store call's
 * result.  Functions are static inline so a test that does not use one
 * gets no warning. */
#ifndef TERN_STORE_TEST_UTIL_H
#define TERN_STORE_TEST_UTIL_H

#include "store/store.h"

#include <ftw.h>
#include <pthread.h>
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

/* SQL that takes a schema-7 index back to schema 6. */
#define STORE_TEST_UNDO_V7							\
	"DROP TABLE dmarc_report_rows; DROP TABLE dmarc_reports;"		\
	"DROP TABLE dmarc_results;"						\
	"DELETE FROM schema_version WHERE version = 7;"

/* SQL that takes a current index back to schema 5. */
#define STORE_TEST_UNDO_V6							\
	STORE_TEST_UNDO_V7							\
	"DROP TABLE dkim_keys; DROP TABLE tls_results;"				\
	"DROP TABLE mta_sts_policies;"						\
	"DELETE FROM schema_version WHERE version = 6;"

/* SQL that takes a current index back to schema 4. */
#define STORE_TEST_UNDO_V5							\
	STORE_TEST_UNDO_V6							\
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

/* A queued store call's result, copied on the commit thread by res_cb
 * (its callback) and waited for by res_wait; RUNW(r, call) does both. */
#define STORE_TEST_MAX_UIDS 64

struct res {
	bool done;
	int status;
	char code[32];
	char error[256];
	uint64_t modseq;
	uint32_t uidvalidity;
	uint32_t src[STORE_TEST_MAX_UIDS], dst[STORE_TEST_MAX_UIDS], modified[STORE_TEST_MAX_UIDS];
	size_t count, modified_count;
	int64_t mailbox_id;
};

static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_cond = PTHREAD_COND_INITIALIZER;

/* Runs on the commit thread (base NULL): copy the result, wake the test. */
static inline void res_cb(void *ctx, const struct store_write_result *r)
{
	struct res *out = ctx;

	pthread_mutex_lock(&wait_lock);
	out->status = r->status;
	snprintf(out->code, sizeof(out->code), "%s", r->code ? r->code : "");
	snprintf(out->error, sizeof(out->error), "%s", r->error ? r->error : "");
	out->modseq = r->modseq;
	out->uidvalidity = r->uidvalidity;
	out->count = r->count < STORE_TEST_MAX_UIDS ? r->count : STORE_TEST_MAX_UIDS;
	for (size_t i = 0; i < out->count; i++) {
		out->src[i] = r->src_uids ? r->src_uids[i] : 0;
		out->dst[i] = r->dst_uids ? r->dst_uids[i] : 0;
	}
	out->modified_count = r->modified_count < STORE_TEST_MAX_UIDS ? r->modified_count : STORE_TEST_MAX_UIDS;
	for (size_t i = 0; i < out->modified_count; i++)
		out->modified[i] = r->modified_uids[i];
	out->mailbox_id = r->mailbox_id;
	out->done = true;
	pthread_cond_broadcast(&wait_cond);
	pthread_mutex_unlock(&wait_lock);
}

/* Wait for a queued call (rc is its return value); the result in *r. */
static inline int res_wait(int rc, struct res *r)
{
	if (rc < 0)
		return -100;
	pthread_mutex_lock(&wait_lock);
	while (!r->done)
		pthread_cond_wait(&wait_cond, &wait_lock);
	pthread_mutex_unlock(&wait_lock);
	if (r->status < 0 && r->code[0] == '\0')
		fprintf(stderr, "  store error: %s\n", r->error);
	return r->status;
}

#define RUNW(r, call) (memset(&(r), 0, sizeof(r)), res_wait((call), &(r)))

#endif
