/* Unit tests of the outbound queue records (store/queue.c, schema 5):
 * a delivery with local and remote recipients commits both; listing with
 * every filter; per-recipient outcomes, the message leaving with its file
 * when nothing is pending; a recipient recorded as delivered never moves
 * back nor is handed out again; the administrator's actions; the
 * records surviving a reopen; and a delivered message's file kept as a
 * spare and reused (same inode, cut to the new content) by the next,
 * unless it is large. */
#include "unit.h"
#include "store-test-util.h"
#include "store/store.h"
#include "lib/buf.h"
#include "lib/clock.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* What a listing saw, copied. */
struct seen {
	int msgs;
	char qid[8][32];
	char path[8][256];
	char sender[8][64];
	int rcpts[8];
	int64_t rcpt_id[8][4];
	char rcpt_addr[8][4][64];
	int state[8][4];
	int attempts[8][4];
	bool give_up[8][4];
	bool held[8];
	unsigned flags[8];
};

static int seen_cb(void *ctx, const struct store_queue_msg *m)
{
	struct seen *s = ctx;
	int i = s->msgs++;

	if (i >= 8)
		return 1;
	snprintf(s->qid[i], sizeof(s->qid[i]), "%s", m->qid);
	snprintf(s->path[i], sizeof(s->path[i]), "%s", m->path);
	snprintf(s->sender[i], sizeof(s->sender[i]), "%s", m->sender);
	s->held[i] = m->held;
	s->flags[i] = m->flags;
	s->rcpts[i] = (int)m->rcpt_count;
	for (size_t k = 0; k < m->rcpt_count && k < 4; k++) {
		s->rcpt_id[i][k] = m->rcpts[k].id;
		snprintf(s->rcpt_addr[i][k], sizeof(s->rcpt_addr[i][k]), "%s", m->rcpts[k].address);
		s->state[i][k] = m->rcpts[k].state;
		s->attempts[i][k] = m->rcpts[k].attempts;
		s->give_up[i][k] = m->rcpts[k].give_up;
	}
	return 0;
}

static void list(struct store *st, const struct store_queue_filter *f, struct seen *s)
{
	const char *err = NULL;

	memset(s, 0, sizeof(*s));
	CHECK(store_queue_list(st, f, seen_cb, s, &err) == 0);
}

static char dirbuf[64];

static int64_t add_user(struct store *s, const char *addr)
{
	struct store_user u = { 0 };
	const char *err = NULL;
	int64_t id = 0;

	store_domain_add(s, "example.test", &err);
	CHECK(store_user_add(s, addr, NULL, NULL, 0, &err) == 0);
	if (store_user_get(s, addr, &u, &err) == 1)
		id = u.id;
	store_user_clear(&u);
	return id;
}

static void submit(struct store *s, int64_t user, const char *sender, const char **remote,
		   size_t n, bool with_local)
{
	struct store_queue_rcpt_in in[4];
	struct store_delivery_rcpt local = { .user_id = user, .delivered_to = "me@example.test" };
	const char *body = "From: me@example.test\r\nSubject: out\r\n\r\nhello\r\n";
	struct store_delivery d = {
		.return_path = sender, .body = body, .body_len = strlen(body),
		.rcpts = with_local ? &local : NULL, .rcpt_count = with_local,
		.remote = in, .remote_count = n, .submit_user_id = user,
		.queue_flags = STORE_QUEUE_F_8BIT,
	};
	const char *err = NULL;

	for (size_t i = 0; i < n; i++)
		in[i] = (struct store_queue_rcpt_in){ .address = remote[i],
						       .notify = STORE_QUEUE_NOTIFY_FAILURE };
	CHECK(store_deliver_sync(s, &d, &err) == 0);
}

static void test_enter_list_update(void)
{
	const char *dir = store_test_mkdtemp(dirbuf, "/tmp/tern-squeue-XXXXXX");
	struct store *s = store_test_open(dir, &(struct store_options){ 0 });
	int64_t user = add_user(s, "me@example.test");
	const char *two[] = { "a@remote.test", "b@Other.Test" };
	struct store_queue_filter all = { .now = clock_now() };
	struct seen v;
	struct res r;
	struct store_user u = { 0 };
	const char *err = NULL;

	submit(s, user, "me@example.test", two, 2, true);
	/* the local copy is there, counted for the user; the queue copy is not */
	CHECK(store_user_get_by_id(s, user, &u, &err) == 1 && u.used_messages == 1);
	store_user_clear(&u);
	list(s, &all, &v);
	CHECK(v.msgs == 1 && v.rcpts[0] == 2);
	CHECK(strcmp(v.sender[0], "me@example.test") == 0 && v.flags[0] == STORE_QUEUE_F_8BIT);
	CHECK(strcmp(v.rcpt_addr[0][1], "b@Other.Test") == 0);
	CHECK(access(v.path[0], R_OK) == 0);
	/* the file holds the body as received, without Return-Path */
	{
		char buf[64] = { 0 };
		FILE *f = fopen(v.path[0], "r");
		CHECK(f != NULL && fread(buf, 1, sizeof(buf) - 1, f) > 0);
		CHECK(strncmp(buf, "From: me@example.test", 21) == 0);
		if (f)
			fclose(f);
	}
	/* filters: due now; domain (lowercased); sender; recipient; qid */
	list(s, &(struct store_queue_filter){ .due = true, .now = clock_now() }, &v);
	CHECK(v.msgs == 1);
	list(s, &(struct store_queue_filter){ .due = true, .now = clock_now() - 3600 }, &v);
	CHECK(v.msgs == 0);
	list(s, &(struct store_queue_filter){ .domain = "OTHER.test" }, &v);
	CHECK(v.msgs == 1);
	list(s, &(struct store_queue_filter){ .domain = "nowhere.test" }, &v);
	CHECK(v.msgs == 0);
	list(s, &(struct store_queue_filter){ .sender = "ME@" }, &v);
	CHECK(v.msgs == 1);
	list(s, &(struct store_queue_filter){ .rcpt = "b@other" }, &v);
	CHECK(v.msgs == 1);
	list(s, &all, &v);
	char qid[32], path[256];
	int64_t ra = v.rcpt_id[0][0], rb = v.rcpt_id[0][1];
	snprintf(qid, sizeof(qid), "%s", v.qid[0]);
	snprintf(path, sizeof(path), "%s", v.path[0]);
	list(s, &(struct store_queue_filter){ .qid = qid }, &v);
	CHECK(v.msgs == 1);

	/* a delivered, b deferred for an hour: the message stays, not due */
	struct store_queue_result res[2] = {
		{ .rcpt_id = ra, .state = STORE_QUEUE_DELIVERED },
		{ .rcpt_id = rb, .state = STORE_QUEUE_DEFERRED, .next_attempt = clock_now() + 3600,
		  .error = "451 4.7.1 try later" },
	};
	CHECK(RUNW(r, store_queue_update(s, NULL, res, 2, res_cb, &r)) == 0);
	CHECK(r.count == 0);
	list(s, &(struct store_queue_filter){ .due = true, .now = clock_now() }, &v);
	CHECK(v.msgs == 0);
	list(s, &(struct store_queue_filter){ .pending_only = true }, &v);
	CHECK(v.msgs == 1 && v.rcpts[0] == 1 && v.rcpt_id[0][0] == rb && v.attempts[0][0] == 1);
	/* a delivered recipient never moves back */
	struct store_queue_result back = { .rcpt_id = ra, .state = STORE_QUEUE_DEFERRED,
					   .next_attempt = clock_now() };
	CHECK(RUNW(r, store_queue_update(s, NULL, &back, 1, res_cb, &r)) == 0);
	list(s, &all, &v);
	CHECK(v.state[0][0] == STORE_QUEUE_DELIVERED);

	/* survives a reopen */
	store_close(&s);
	s = store_test_open(dir, &(struct store_options){ 0 });
	list(s, &all, &v);
	CHECK(v.msgs == 1 && v.state[0][1] == STORE_QUEUE_DEFERRED);

	/* b bounces: nothing pending, the message and its file go */
	struct store_queue_result last = { .rcpt_id = rb, .state = STORE_QUEUE_BOUNCED,
					   .error = "550 5.1.1 no such user" };
	CHECK(RUNW(r, store_queue_update(s, NULL, &last, 1, res_cb, &r)) == 0);
	CHECK(r.count == 1);
	list(s, &all, &v);
	CHECK(v.msgs == 0);
	CHECK(access(path, F_OK) < 0);
	/* bad input */
	struct store_queue_result bad = { .rcpt_id = rb, .state = STORE_QUEUE_QUEUED };
	CHECK(store_queue_update(s, NULL, &bad, 1, res_cb, &r) < 0);
	store_close(&s);
	store_test_rm_rf(dir);
}

/* Queue body for one remote recipient (no local copy). */
static void submit_body(struct store *s, const char *body)
{
	struct store_queue_rcpt_in in = { .address = "far@remote.test" };
	struct store_delivery d = {
		.return_path = "me@example.test", .body = body, .body_len = strlen(body),
		.remote = &in, .remote_count = 1,
	};
	const char *err = NULL;

	CHECK(store_deliver_sync(s, &d, &err) == 0);
}

/* The files in dir/spare. */
static int spare_files(const char *dir, char name_r[256])
{
	char path[256];
	DIR *d;
	struct dirent *de;
	int n = 0;

	snprintf(path, sizeof(path), "%s/spare", dir);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n++ == 0 && name_r != NULL)
			snprintf(name_r, 256, "%s", de->d_name);
	}
	closedir(d);
	return n;
}

/* Deliver the only queued message's recipient; its path into path_r. */
static void deliver_only(struct store *s, char path_r[256])
{
	struct store_queue_filter all = { .now = clock_now() };
	struct seen v;
	struct res r;

	list(s, &all, &v);
	CHECK(v.msgs == 1);
	if (v.msgs != 1)
		return;
	snprintf(path_r, 256, "%s", v.path[0]);
	struct store_queue_result done = { .rcpt_id = v.rcpt_id[0][0],
					   .state = STORE_QUEUE_DELIVERED };
	CHECK(RUNW(r, store_queue_update(s, NULL, &done, 1, res_cb, &r)) == 0);
	CHECK(r.count == 1);
}

static void count_problem(void *ctx, const char *problem)
{
	(void)problem;
	(*(int *)ctx)++;
}

static void test_spare_reuse(void)
{
	const char *dir = store_test_mkdtemp(dirbuf, "/tmp/tern-squeue-XXXXXX");
	struct store *s = store_test_open(dir, &(struct store_options){ 0 });
	struct store_queue_filter all = { .now = clock_now() };
	char path[256] = "", spare[256] = "", spare_path[512];
	const char *shorter = "Subject: two\r\n\r\nshort\r\n";
	struct buf longer;
	struct stat sb_spare, sb_new;
	struct seen v;
	const char *err = NULL;
	int problems = 0;

	buf_init(&longer, BUF_UNLIMITED);
	buf_append_str(&longer, "Subject: one\r\n\r\n");
	for (int i = 0; i < 200; i++)
		buf_append_str(&longer, "a line of the first, longer message\r\n");
	CHECK(spare_files(dir, NULL) == 0);
	submit_body(s, buf_cstr(&longer));
	deliver_only(s, path);
	/* the file left messages/ for spare/, under the same name */
	CHECK(access(path, F_OK) < 0);
	CHECK(spare_files(dir, spare) == 1);
	CHECK(strlen(path) > 16 && strcmp(spare, path + strlen(path) - 16) == 0);
	snprintf(spare_path, sizeof(spare_path), "%s/spare/%s", dir, spare);
	CHECK(stat(spare_path, &sb_spare) == 0 && sb_spare.st_size == (off_t)longer.len);

	/* the next message takes it: same inode, only the new content */
	submit_body(s, shorter);
	CHECK(spare_files(dir, NULL) == 0);
	list(s, &all, &v);
	CHECK(v.msgs == 1);
	CHECK(stat(v.path[0], &sb_new) == 0 && sb_new.st_ino == sb_spare.st_ino);
	CHECK(sb_new.st_size == (off_t)strlen(shorter));
	{
		char buf[128] = { 0 };
		FILE *f = fopen(v.path[0], "r");
		CHECK(f != NULL && fread(buf, 1, sizeof(buf) - 1, f) == strlen(shorter));
		CHECK(strcmp(buf, shorter) == 0);
		if (f)
			fclose(f);
	}
	CHECK(store_verify(s, count_problem, &problems, &err) == 0 && problems == 0);

	/* spares found at open are used too */
	deliver_only(s, path);
	CHECK(spare_files(dir, NULL) == 1);
	store_close(&s);
	s = store_test_open(dir, &(struct store_options){ 0 });
	submit_body(s, shorter);
	CHECK(spare_files(dir, NULL) == 0);
	list(s, &all, &v);
	CHECK(v.msgs == 1 && access(v.path[0], R_OK) == 0);
	deliver_only(s, path);
	CHECK(spare_files(dir, NULL) == 1);

	/* a large file is not kept: deleted as before */
	buf_reset(&longer);
	buf_append_str(&longer, "Subject: big\r\n\r\n");
	while (longer.len < 300 * 1024)
		buf_append_str(&longer, "a line of a message too large to keep as a spare\r\n");
	submit_body(s, buf_cstr(&longer));
	CHECK(spare_files(dir, NULL) == 0);
	deliver_only(s, path);
	CHECK(access(path, F_OK) < 0);
	CHECK(spare_files(dir, NULL) == 0);
	buf_free(&longer);
	store_close(&s);
	store_test_rm_rf(dir);
}

static void test_admin(void)
{
	const char *dir = store_test_mkdtemp(dirbuf, "/tmp/tern-squeue-XXXXXX");
	struct store *s = store_test_open(dir, &(struct store_options){ 0 });
	int64_t user = add_user(s, "me@example.test");
	const char *one[] = { "x@slow.test" }, *other[] = { "y@fast.test" };
	struct store_queue_filter all = { .now = clock_now() };
	struct seen v;
	struct res r;

	submit(s, user, "", one, 1, false);          /* null sender, remote only */
	submit(s, user, "me@example.test", other, 1, false);
	list(s, &all, &v);
	CHECK(v.msgs == 2 && v.sender[0][0] == '\0');
	char qid[32], path[256];
	snprintf(qid, sizeof(qid), "%s", v.qid[0]);
	snprintf(path, sizeof(path), "%s", v.path[0]);

	/* hold: never due; release: due again */
	CHECK(RUNW(r, store_queue_admin(s, NULL, qid, NULL, STORE_QUEUE_HOLD, res_cb, &r)) == 0);
	CHECK(r.count == 1);
	list(s, &(struct store_queue_filter){ .due = true, .now = clock_now() }, &v);
	CHECK(v.msgs == 1 && strcmp(v.qid[0], qid) != 0);
	list(s, &(struct store_queue_filter){ .qid = qid }, &v);
	CHECK(v.held[0]);
	CHECK(RUNW(r, store_queue_admin(s, NULL, qid, NULL, STORE_QUEUE_RELEASE, res_cb, &r)) == 0);
	list(s, &(struct store_queue_filter){ .due = true, .now = clock_now() }, &v);
	CHECK(v.msgs == 2);
	/* flush by domain after a deferral */
	list(s, &(struct store_queue_filter){ .domain = "fast.test" }, &v);
	struct store_queue_result later = { .rcpt_id = v.rcpt_id[0][0],
					    .state = STORE_QUEUE_DEFERRED,
					    .next_attempt = clock_now() + 86400 };
	CHECK(RUNW(r, store_queue_update(s, NULL, &later, 1, res_cb, &r)) == 0);
	list(s, &(struct store_queue_filter){ .due = true, .now = clock_now() }, &v);
	CHECK(v.msgs == 1);
	CHECK(RUNW(r, store_queue_admin(s, NULL, NULL, "FAST.test", STORE_QUEUE_FLUSH, res_cb,
					&r)) == 0);
	CHECK(r.count == 1);
	list(s, &(struct store_queue_filter){ .due = true, .now = clock_now() }, &v);
	CHECK(v.msgs == 2);
	/* bounce: pending recipients marked give_up and due */
	CHECK(RUNW(r, store_queue_admin(s, NULL, NULL, "fast.test", STORE_QUEUE_BOUNCE, res_cb,
					&r)) == 0);
	list(s, &(struct store_queue_filter){ .domain = "fast.test" }, &v);
	CHECK(v.msgs == 1 && v.give_up[0][0]);
	/* delete: gone with its file; an unknown id is NONEXISTENT */
	CHECK(RUNW(r, store_queue_admin(s, NULL, qid, NULL, STORE_QUEUE_DELETE, res_cb, &r)) == 0);
	list(s, &all, &v);
	CHECK(v.msgs == 1);
	CHECK(access(path, F_OK) < 0);
	CHECK(RUNW(r, store_queue_admin(s, NULL, qid, NULL, STORE_QUEUE_DELETE, res_cb, &r)) < 0);
	CHECK(strcmp(r.code, "NONEXISTENT") == 0);
	CHECK(store_queue_admin(s, NULL, NULL, NULL, STORE_QUEUE_FLUSH, res_cb, &r) < 0);
	/* a remote address without a domain is refused at the door */
	{
		struct store_queue_rcpt_in in = { .address = "nodomain" };
		struct store_delivery d = { .return_path = "", .body = "x\r\n", .body_len = 3,
					    .remote = &in, .remote_count = 1 };
		const char *err = NULL;
		CHECK(store_deliver_sync(s, &d, &err) < 0);
	}
	store_close(&s);
	store_test_rm_rf(dir);
}

int main(void)
{
	RUN(test_enter_list_update);
	RUN(test_admin);
	RUN(test_spare_reuse);
	return unit_summary("store-queue");
}
