/* Unit tests for the deferred unlink of released message files
 * (src/store/unlink.c): the POP3 update completes with its rows gone and
 * its files listed in the journal; a process that dies before unlinking
 * them (a forked child that _exit()s with the store open) leaves files
 * that the next open removes, keeping every file a row still names; a
 * journal locked by a live process is left alone; a clean close leaves no
 * journal and no file. */
#include "store-test-util.h"
#include "unit.h"
#include "store/store.h"
#include "store/unlink.h"
#include "lib/buf.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 4

struct list {
	uint32_t uids[N];
	char *paths[N];
	int n;
};

static int list_cb(void *ctx, const struct store_message *m)
{
	struct list *l = ctx;

	if (l->n < N) {
		l->uids[l->n] = m->uid;
		l->paths[l->n] = xstrdup(m->path);
		l->n++;
	}
	return 0;
}

static void list_free(struct list *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->paths[i]);
	l->n = 0;
}

/* A user with N messages in INBOX; *inbox_r and the list filled. */
static int64_t setup(const char *dir, int64_t *inbox_r, struct list *l)
{
	struct store *s = store_test_open(dir, &(struct store_options){ 0 });
	struct store_user u = { 0 };
	struct store_mailbox mb = { 0 };
	const char *err = NULL;
	int64_t uid;

	store_domain_add(s, "example.test", &err);
	CHECK(store_user_add(s, "a@example.test", NULL, NULL, 0, &err) == 0);
	CHECK(store_user_get(s, "a@example.test", &u, &err) == 1);
	uid = u.id;
	store_user_clear(&u);
	for (int i = 0; i < N; i++) {
		char body[64];
		snprintf(body, sizeof(body), "Subject: %d\r\n\r\nbody %d\r\n", i, i);
		struct store_delivery_rcpt r = { .user_id = uid, .delivered_to = "a@example.test" };
		struct store_delivery d = { .return_path = "x@y.test", .body = body,
					    .body_len = strlen(body), .rcpts = &r, .rcpt_count = 1 };
		CHECK(store_deliver_sync(s, &d, &err) == 0);
	}
	CHECK(store_mailbox_get(s, uid, "INBOX", &mb, &err) == 1);
	*inbox_r = mb.id;
	store_mailbox_clear(&mb);
	l->n = 0;
	CHECK(store_message_list(s, *inbox_r, 1, list_cb, l, &err) == 0);
	CHECK(l->n == N);
	store_close(&s);
	return uid;
}

/* Entries of dir/unlink (journals), "." and ".." left out. */
static int journals(const char *dir, char *name_r, size_t size)
{
	char path[256];
	int n = 0;

	snprintf(path, sizeof(path), "%s/unlink", dir);
	DIR *d = opendir(path);
	struct dirent *de;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || strcmp(de->d_name, "..") == 0))
			continue;
		if (name_r != NULL && strlen(de->d_name) < size)
			memcpy(name_r, de->d_name, strlen(de->d_name) + 1);
		n++;
	}
	closedir(d);
	return n;
}

static off_t journal_size(const char *dir, const char *name)
{
	char path[256];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/unlink/%s", dir, name);
	return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static void test_deferred_and_clean_close(void)
{
	char dir[64];
	struct list l = { 0 };
	int64_t inbox, uid;
	const char *err = NULL;
	char jname[64];

	store_test_mkdtemp(dir, "/tmp/tern-unlink-XXXXXX");
	uid = setup(dir, &inbox, &l);

	/* paused: the files stay while the store is open, listed in the journal */
	setenv("TERN_STORE_UNLINK_PAUSE", "1", 1);
	struct store *s = store_test_open(dir, &(struct store_options){ 0 });
	unsetenv("TERN_STORE_UNLINK_PAUSE");
	uint32_t ex[] = { l.uids[0], l.uids[1] };
	struct store_pop3_update up = { .user_id = uid, .mailbox_id = inbox, .expunge_uids = ex,
					.expunge_count = 2 };
	CHECK(store_pop3_update_sync(s, &up, &err) == 0);
	CHECK(store_message_exists(s, inbox, l.uids[0], &err) == 0);
	CHECK(store_message_exists(s, inbox, l.uids[1], &err) == 0);
	CHECK(access(l.paths[0], F_OK) == 0 && access(l.paths[1], F_OK) == 0);
	CHECK(journals(dir, jname, sizeof(jname)) == 1);
	CHECK(journal_size(dir, jname) == 2 * 17);
	/* the close unlinks what is queued and removes the journal */
	store_close(&s);
	CHECK(access(l.paths[0], F_OK) < 0 && access(l.paths[1], F_OK) < 0);
	CHECK(access(l.paths[2], F_OK) == 0 && access(l.paths[3], F_OK) == 0);
	CHECK(journals(dir, NULL, 0) == 0);

	/* not paused: the files go, and the drained journal is emptied */
	s = store_test_open(dir, &(struct store_options){ 0 });
	uint32_t ex2[] = { l.uids[2] };
	struct store_pop3_update up2 = { .user_id = uid, .mailbox_id = inbox,
					 .expunge_uids = ex2, .expunge_count = 1 };
	CHECK(store_pop3_update_sync(s, &up2, &err) == 0);
	store_unlink_wait(s);
	CHECK(access(l.paths[2], F_OK) < 0 && access(l.paths[3], F_OK) == 0);
	CHECK(journals(dir, jname, sizeof(jname)) == 1);
	CHECK(journal_size(dir, jname) == 0);
	store_close(&s);
	list_free(&l);
	store_test_rm_rf(dir);
}

static void test_crash_recovery(void)
{
	char dir[64], fake[300], jpath[300];
	struct list l = { 0 };
	int64_t inbox, uid;
	const char *err = NULL;
	int status = -1;

	store_test_mkdtemp(dir, "/tmp/tern-unlink-XXXXXX");
	uid = setup(dir, &inbox, &l);

	/* a child expunges two messages and dies before unlinking them */
	pid_t pid = fork();
	if (pid == 0) {
		setenv("TERN_STORE_UNLINK_PAUSE", "1", 1);
		struct store *c = store_test_open(dir, &(struct store_options){ 0 });
		uint32_t ex[] = { l.uids[0], l.uids[1] };
		struct store_pop3_update up = { .user_id = uid, .mailbox_id = inbox,
						.expunge_uids = ex, .expunge_count = 2 };
		_exit(store_pop3_update_sync(c, &up, &err) == 0 ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(access(l.paths[0], F_OK) == 0 && access(l.paths[1], F_OK) == 0);
	CHECK(journals(dir, NULL, 0) == 1);

	/* a journal a live process holds (locked here) is left alone; it names
	 * a stray file and a file a row still names (a commit that never
	 * happened) */
	const char *name3 = strrchr(l.paths[3], '/') + 1;
	snprintf(fake, sizeof(fake), "%.*s/00aa00aa00aa00aa", (int)(strrchr(l.paths[3], '/') -
		 l.paths[3]), l.paths[3]);
	/* the stray file must live in its own folder, 00/ */
	char *slash = strrchr(fake, '/');
	memcpy(slash - 2, "00", 2);
	int ffd = open(fake, O_WRONLY | O_CREAT | O_EXCL, 0640);
	CHECK(ffd >= 0);
	close(ffd);
	snprintf(jpath, sizeof(jpath), "%s/unlink/0123456789abcdef", dir);
	int jfd = open(jpath, O_RDWR | O_CREAT | O_EXCL, 0640);
	CHECK(jfd >= 0 && flock(jfd, LOCK_EX) == 0);
	char lines[64];
	int n = snprintf(lines, sizeof(lines), "00aa00aa00aa00aa\n%s\n", name3);
	CHECK(write(jfd, lines, (size_t)n) == n);

	/* the next open removes the dead child's files and its journal */
	struct store *s = store_test_open(dir, &(struct store_options){ 0 });
	CHECK(access(l.paths[0], F_OK) < 0 && access(l.paths[1], F_OK) < 0);
	CHECK(access(l.paths[2], F_OK) == 0 && access(l.paths[3], F_OK) == 0);
	CHECK(access(fake, F_OK) == 0);         /* the live journal's */
	CHECK(access(jpath, F_OK) == 0);
	CHECK(journals(dir, NULL, 0) == 2);     /* the live one and ours */
	store_close(&s);

	/* once its process is gone (lock released), that journal is handled:
	 * the stray file goes, the file a row names stays */
	close(jfd);
	s = store_test_open(dir, &(struct store_options){ 0 });
	CHECK(access(fake, F_OK) < 0);
	CHECK(access(l.paths[3], F_OK) == 0);
	CHECK(store_message_exists(s, inbox, l.uids[3], &err) == 1);
	CHECK(access(jpath, F_OK) < 0);
	CHECK(journals(dir, NULL, 0) == 1);
	store_close(&s);
	CHECK(journals(dir, NULL, 0) == 0);
	list_free(&l);
	store_test_rm_rf(dir);
}

int main(void)
{
	RUN(test_deferred_and_clean_close);
	RUN(test_crash_recovery);
	return unit_summary("store-unlink");
}
