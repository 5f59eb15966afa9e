/* Deferred unlinking of released message files, with a crash journal.
 *
 * Why: a POP3 client that deleted its 200 messages waits at QUIT for the
 * commit of the deletions (RFC 1939 6: the +OK to QUIT says they are
 * done).  Unlinking the 200 files (inode eviction on ext4) used to happen
 * on the commit thread before that reply and cost more than the commit
 * itself.  The index no longer names those files once the transaction has
 * committed, so nothing a client can see depends on their removal: the
 * reply goes out first and this thread unlinks them.
 *
 * Invariants:
 *  - a file is queued here only after the transaction that dropped its
 *    last row committed, and only if no row names it (the commit thread
 *    checks, as for a synchronous unlink); a file is never unlinked while
 *    a committed row names it;
 *  - before that COMMIT, the file's name is appended to this process's
 *    journal dir/unlink/<16 hex> (a write, no fsync: a process crash keeps
 *    it, a power failure may lose it, and then `tern store verify` reports
 *    the leftover file);
 *  - each journal is flock()ed by its process for as long as the store is
 *    open; a journal whose lock can be taken belongs to a dead process, and
 *    store_unlinker_start() removes every file it lists that neither a
 *    message row nor a queue row names, then the journal itself (a name
 *    whose COMMIT never happened is still named by its row and is kept);
 *  - the journal is emptied whenever the queue is drained and no batch is
 *    between its journal write and its hand-over, and removed at close.
 * A new journal is created as .new-<name> and renamed once locked, so a
 * concurrent recovery never takes an unlocked, fresh journal for a dead
 * one (recovery skips names starting with '.').
 * TERN_STORE_UNLINK_PAUSE=1 in the environment makes the thread leave the
 * queue alone until the store closes (tests use it to crash the server
 * between the commit and the unlink). */
#include "store/store-private.h"
#include "store/unlink.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

/* A journal line: 16 hex digits and LF. */
#define NAME_LEN 16

struct store_unlinker {
	pthread_mutex_t lock;
	pthread_cond_t cond;            /* work arrived, or stop */
	pthread_cond_t idle_cond;       /* the queue drained */
	pthread_t thread;
	bool started;
	bool stopping;
	bool busy;                      /* the thread holds a taken batch */
	bool paused;                    /* TERN_STORE_UNLINK_PAUSE */
	char **queue;
	size_t count, alloc;
	size_t inflight;                /* journaled ops not yet released */
	int dir_fd;                     /* dir/unlink */
	int journal_fd;                 /* -1: deferral off */
	char name[NAME_LEN + 1];
};

static const char SQL_NAMED[] =
	"SELECT 1 FROM messages WHERE file = ?1"
	" UNION ALL SELECT 1 FROM queue WHERE file = ?1 LIMIT 1";

static bool name_ok(const char *s, size_t len)
{
	if (len != NAME_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* The file name of a message path ("<msg_dir>/xx/<16 hex>"), or NULL when
 * path is not one (such a file is never journaled). */
static const char *path_name(struct store *store, const char *path)
{
	size_t dl = strlen(store->msg_dir);

	if (strncmp(path, store->msg_dir, dl) != 0 || strlen(path) != dl + 4 + NAME_LEN ||
	    path[dl] != '/' || path[dl + 3] != '/' ||
	    !name_ok(path + dl + 4, NAME_LEN) || memcmp(path + dl + 1, path + dl + 4, 2) != 0)
		return NULL;
	return path + dl + 4;
}

/* ------------------------------------------------------------- recovery */

/* Is name still named by a message or queue row?  On error: yes (keeping
 * a file is harmless, losing one is not). */
static bool named(struct store *store, const char *name)
{
	const char *err;
	sqlite3_stmt *st = store_stmt(&store->wconn, SQL_NAMED, &err);
	int rc;

	if (st == NULL)
		return true;
	sqlite3_bind_text(st, 1, name, NAME_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc != SQLITE_DONE;
}

/* Remove the unnamed files a dead process's journal (fd, locked) lists. */
static void recover_journal(struct store *store, int fd, const char *jname)
{
	char line[64];
	size_t removed = 0, kept = 0;
	FILE *f = fdopen(dup(fd), "r");

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t len = strcspn(line, "\n");
		unsigned sub;

		if (line[len] != '\n' || !name_ok(line, len))
			continue;       /* cut short by the crash, or not ours */
		line[len] = '\0';
		if (named(store, line)) {
			kept++;
			continue;
		}
		if (sscanf(line, "%2x", &sub) != 1 || store->subdir_fd[sub] < 0)
			continue;
		if (unlinkat(store->subdir_fd[sub], line, 0) == 0)
			removed++;
		else if (errno != ENOENT)
			log_warn("store", "event=unlink_failed file=%s error=%s", line,
				 log_quote(strerror(errno)));
	}
	fclose(f);
	log_info("store", "event=unlink_journal_recovered journal=%s removed=%zu kept=%zu", jname,
		 removed, kept);
}

static void recover(struct store *store, int dir_fd)
{
	int dfd = dup(dir_fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;

	if (d == NULL) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		int fd;

		if (!name_ok(de->d_name, strlen(de->d_name)))
			continue;       /* ".", "..", and .new-* being created */
		fd = openat(dir_fd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd);      /* a live process's journal */
			continue;
		}
		recover_journal(store, fd, de->d_name);
		if (unlinkat(dir_fd, de->d_name, 0) < 0 && errno != ENOENT)
			log_warn("store", "event=unlink_journal_remove_failed journal=%s error=%s",
				 de->d_name, log_quote(strerror(errno)));
		close(fd);
	}
	closedir(d);
}

/* ------------------------------------------------------------- the thread */

/* arg is the unlinker itself, not the store: store_unlinker_stop() clears
 * store->unlinker before joining, possibly before this thread first ran */
static void *unlink_thread(void *arg)
{
	struct store_unlinker *u = arg;

	pthread_mutex_lock(&u->lock);
	for (;;) {
		while ((u->count == 0 || u->paused) && !u->stopping)
			pthread_cond_wait(&u->cond, &u->lock);
		if (u->count == 0)
			break;  /* stopping, and everything is done */
		char **batch = u->queue;
		size_t n = u->count;

		u->queue = NULL;
		u->count = u->alloc = 0;
		u->busy = true;
		pthread_mutex_unlock(&u->lock);
		for (size_t i = 0; i < n; i++) {
			if (unlink(batch[i]) < 0 && errno != ENOENT)
				log_warn("store", "event=unlink_failed path=%s error=%s",
					 log_quote(batch[i]), log_quote(strerror(errno)));
			free(batch[i]);
		}
		free(batch);
		pthread_mutex_lock(&u->lock);
		u->busy = false;
		/* nothing listed is still to do: start the journal afresh */
		if (u->count == 0 && u->inflight == 0 && u->journal_fd >= 0 &&
		    ftruncate(u->journal_fd, 0) < 0)
			log_warn("store", "event=unlink_journal_truncate_failed error=%s",
				 log_quote(strerror(errno)));
		if (u->count == 0)
			pthread_cond_broadcast(&u->idle_cond);
	}
	u->busy = false;
	pthread_cond_broadcast(&u->idle_cond);
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

/* Create and lock this process's journal: 0, or -1 (deferral off). */
static int journal_create(struct store_unlinker *u)
{
	char tmp[NAME_LEN + 6];
	uint64_t id;
	int fd;

	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		return -1;
	snprintf(u->name, sizeof(u->name), "%016llx", (unsigned long long)id);
	snprintf(tmp, sizeof(tmp), ".new-%s", u->name);
	fd = openat(u->dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
		    STORE_FILE_MODE);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 ||
	    renameat2(u->dir_fd, tmp, u->dir_fd, u->name, RENAME_NOREPLACE) < 0) {
		unlinkat(u->dir_fd, tmp, 0);
		close(fd);
		return -1;
	}
	u->journal_fd = fd;
	return 0;
}

void store_unlinker_start(struct store *store)
{
	struct store_unlinker *u = xcalloc(1, sizeof(*u));
	char *path = xasprintf("%s/unlink", store->dir);
	const char *pause = getenv("TERN_STORE_UNLINK_PAUSE");
	int rc;

	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	pthread_cond_init(&u->idle_cond, NULL);
	u->journal_fd = -1;
	u->paused = pause != NULL && strcmp(pause, "1") == 0;
	store->unlinker = u;
	if (mkdir(path, STORE_DIR_MODE) < 0 && errno != EEXIST)
		log_warn("store", "event=unlink_journal_unavailable path=%s error=%s",
			 log_quote(path), log_quote(strerror(errno)));
	u->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(path);
	if (u->dir_fd < 0)
		return;
	recover(store, u->dir_fd);
	if (journal_create(u) < 0) {
		log_warn("store", "event=unlink_journal_unavailable error=%s",
			 log_quote(strerror(errno)));
		return;
	}
	rc = pthread_create(&u->thread, NULL, unlink_thread, u);
	if (rc != 0) {
		log_warn("store", "event=unlink_thread_failed error=%s", log_quote(strerror(rc)));
		unlinkat(u->dir_fd, u->name, 0);
		close(u->journal_fd);
		u->journal_fd = -1;
		return;
	}
	u->started = true;
}

void store_unlinker_stop(struct store *store)
{
	struct store_unlinker *u = store->unlinker;

	if (u == NULL)
		return;
	store->unlinker = NULL;
	if (u->started) {
		pthread_mutex_lock(&u->lock);
		u->stopping = true;
		pthread_cond_signal(&u->cond);
		pthread_mutex_unlock(&u->lock);
		pthread_join(u->thread, NULL);
	}
	/* everything listed is done (the thread drained the queue) */
	if (u->journal_fd >= 0) {
		unlinkat(u->dir_fd, u->name, 0);
		close(u->journal_fd);
	}
	if (u->dir_fd >= 0)
		close(u->dir_fd);
	for (size_t i = 0; i < u->count; i++)
		free(u->queue[i]);
	free(u->queue);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cond);
	pthread_cond_destroy(&u->idle_cond);
	free(u);
}

void store_unlink_wait(struct store *store)
{
	struct store_unlinker *u = store->unlinker;

	if (u == NULL || !u->started)
		return;
	pthread_mutex_lock(&u->lock);
	while ((u->count > 0 || u->busy) && !u->paused)
		pthread_cond_wait(&u->idle_cond, &u->lock);
	pthread_mutex_unlock(&u->lock);
}

/* ------------------------------------------------- the commit thread's side */

bool store_unlinker_journal(struct store *store, struct store_op *op)
{
	struct store_unlinker *u = store->unlinker;
	char *buf, *p;
	size_t n = 0;
	ssize_t w;

	op->unlink_journaled = false;
	if (u == NULL || !u->started || op->unlink_count == 0)
		return false;
	p = buf = xmalloc(op->unlink_count * (NAME_LEN + 1));
	for (size_t i = 0; i < op->unlink_count; i++) {
		const char *name;

		if (op->unlink_recycle != NULL && op->unlink_recycle[i])
			continue;       /* spare candidates stay with the commit thread */
		if ((name = path_name(store, op->unlink_paths[i])) == NULL) {
			free(buf);
			return false;
		}
		memcpy(p, name, NAME_LEN);
		p[NAME_LEN] = '\n';
		p += NAME_LEN + 1;
		n++;
	}
	if (n == 0) {
		free(buf);
		return false;
	}
	pthread_mutex_lock(&u->lock);
	do
		w = write(u->journal_fd, buf, (size_t)(p - buf));
	while (w < 0 && errno == EINTR);
	if (w == p - buf) {
		u->inflight++;
		op->unlink_journaled = true;
	} else if (w > 0 && write(u->journal_fd, "\n", 1) < 0) {
		/* ends the partial line (skipped at recovery) so the next
		 * entry starts a line of its own; nothing more to do */
	}
	pthread_mutex_unlock(&u->lock);
	free(buf);
	return op->unlink_journaled;
}

void store_unlinker_push(struct store *store, char *path)
{
	struct store_unlinker *u = store->unlinker;

	pthread_mutex_lock(&u->lock);
	if (u->count == u->alloc) {
		u->alloc = u->alloc ? u->alloc * 2 : 256;
		u->queue = xrealloc(u->queue, u->alloc * sizeof(*u->queue));
	}
	u->queue[u->count++] = path;
	pthread_cond_signal(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

void store_unlinker_release(struct store *store)
{
	struct store_unlinker *u = store->unlinker;

	pthread_mutex_lock(&u->lock);
	if (u->inflight > 0)
		u->inflight--;
	if (u->inflight == 0 && u->count == 0 && !u->busy && ftruncate(u->journal_fd, 0) < 0)
		log_warn("store", "event=unlink_journal_truncate_failed error=%s",
			 log_quote(strerror(errno)));
	pthread_mutex_unlock(&u->lock);
}
