/* `tern serve`: the master process (DESIGN.md, processes and concurrency).
 *
 * The master starts as root (or as the invoking user), reads the config and
 * the TLS key, binds the listeners and forks the worker, which drops to the
 * service user before touching the network.  The master never reads a byte
 * from a peer.  It only waits for signals:
 *   SIGHUP   re-read config and certificates, bind what changed, start a new
 *            worker, tell the old one to retire (SIGQUIT: stop accepting,
 *            finish its sessions); a bad new config keeps the old one running.
 *   SIGTERM  (or SIGINT) tell workers to drain (SIGTERM), wait, exit 0.
 *   SIGCHLD  a worker that dies unexpectedly is restarted (at most once a
 *            second), so a crash costs only its open connections. */
#include "cli/serve.h"
#include "cli/serve-private.h"
#include "cli/sendmail.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/privdrop.h"
#include "lib/tls.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RETIRED 16

static pid_t worker_pid;
static struct config *caller_cfg;   /* owned by cli_serve's caller */
static bool shutting_down;
static pid_t retired[MAX_RETIRED];

static enum log_level level_from_name(const char *name)
{
	if (name == NULL)
		return LOG_LEVEL_INFO;
	if (strcmp(name, "debug") == 0)
		return LOG_LEVEL_DEBUG;
	if (strcmp(name, "warn") == 0)
		return LOG_LEVEL_WARN;
	if (strcmp(name, "error") == 0)
		return LOG_LEVEL_ERROR;
	return LOG_LEVEL_INFO;
}

/* Bind every enabled listener of cfg, reusing sockets of old that have the
 * same kind, address and port (so a reload never drops a listening socket).
 * Returns 0, or -1 with *error_r (then nothing new stays open). */
static int bind_listeners(const struct config *cfg, struct serve_state *old,
			  struct serve_state *st, const char **error_r)
{
	static const char *const all[] = { "0.0.0.0", "::" };
	const char *const *binds = cfg->bind_count > 0 ? (const char *const *)cfg->bind : all;
	unsigned nbind = cfg->bind_count > 0 ? cfg->bind_count : 2;

	st->socks = xcalloc(LISTENER_KIND_COUNT * nbind + 1, sizeof(*st->socks));
	st->sock_count = 0;
	for (int k = 0; k < LISTENER_KIND_COUNT; k++) {
		if (cfg->port[k] <= 0)
			continue;
		if (!serve_kind_implemented((enum listener_kind)k)) {
			log_debug("master", "event=listener_skipped listener=%s reason=\"not in this version\"",
				  listener_kind_name((enum listener_kind)k));
			continue;
		}
		for (unsigned b = 0; b < nbind; b++) {
			struct serve_socket *s = &st->socks[st->sock_count];
			s->kind = (enum listener_kind)k;
			snprintf(s->addr, sizeof(s->addr), "%s", binds[b]);
			s->port = cfg->port[k];
			s->fd = -1;
			for (unsigned i = 0; old != NULL && i < old->sock_count; i++) {
				struct serve_socket *o = &old->socks[i];
				if (o->fd >= 0 && !o->local && o->kind == s->kind && o->port == s->port &&
				    strcmp(o->addr, s->addr) == 0) {
					s->fd = o->fd;
					o->fd = -1;   /* moved */
				}
			}
			/* At start-up, the worker of a master that was just killed may
			 * hold the port for a moment (it closes its listeners when it
			 * notices, see serve-worker.c): wait for it, briefly. */
			for (int tries = 0; s->fd < 0; tries++) {
				s->fd = net_listen(s->addr, s->port, 1024, error_r);
				if (s->fd >= 0 || errno != EADDRINUSE || old != NULL || tries >= 50)
					break;
				nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
			}
			if (s->fd < 0)
				return -1;
			st->sock_count++;
			log_info("master", "event=listening listener=%s addr=%s port=%d",
				 listener_kind_name(s->kind), s->addr, s->port);
		}
	}
	/* local submission: the Unix socket `tern sendmail` connects to */
	if (cfg->sendmail.socket[0] != '\0') {
		struct serve_socket *s = &st->socks[st->sock_count];
		s->kind = LISTENER_SUBMISSION;
		s->local = true;
		snprintf(s->addr, sizeof(s->addr), "unix");
		s->fd = -1;
		for (unsigned i = 0; old != NULL && i < old->sock_count; i++) {
			struct serve_socket *o = &old->socks[i];
			if (o->fd >= 0 && o->local &&
			    strcmp(old->cfg->sendmail.socket, cfg->sendmail.socket) == 0) {
				s->fd = o->fd;
				o->fd = -1;   /* moved */
			}
		}
		/* as for the ports: a just-killed master's worker may still hold it */
		for (int tries = 0; s->fd < 0; tries++) {
			s->fd = serve_sendmail_listen(cfg->sendmail.socket, error_r);
			if (s->fd >= 0 || errno != EADDRINUSE || old != NULL || tries >= 50)
				break;
			nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
		}
		if (s->fd < 0)
			return -1;
		st->sock_count++;
		log_info("master", "event=listening listener=sendmail path=%s",
			 log_quote(cfg->sendmail.socket));
	}
	return 0;
}

static void close_sockets(struct serve_state *st)
{
	for (unsigned i = 0; i < st->sock_count; i++)
		if (st->socks[i].fd >= 0)
			close(st->socks[i].fd);
	free(st->socks);
	st->socks = NULL;
	st->sock_count = 0;
}

/* Give back moved sockets to old so that a failed reload leaves it whole. */
static void return_sockets(struct serve_state *old, struct serve_state *st)
{
	for (unsigned i = 0; i < st->sock_count; i++) {
		for (unsigned j = 0; j < old->sock_count; j++) {
			struct serve_socket *o = &old->socks[j];
			if (o->fd < 0 && o->kind == st->socks[i].kind && o->port == st->socks[i].port &&
			    o->local == st->socks[i].local && strcmp(o->addr, st->socks[i].addr) == 0) {
				o->fd = st->socks[i].fd;
				st->socks[i].fd = -1;
			}
		}
	}
	close_sockets(st);
}

static int load_state(struct config *cfg, struct serve_state *old, struct serve_state *st,
		      const char **error_r)
{
	memset(st, 0, sizeof(*st));
	st->cfg = cfg;
	st->tls = tls_server_ctx_create(cfg->tls_cert, cfg->tls_key, error_r);
	if (st->tls == NULL)
		return -1;
	if (bind_listeners(cfg, old, st, error_r) < 0) {
		if (old != NULL)
			return_sockets(old, st);
		else
			close_sockets(st);
		SSL_CTX_free(st->tls);
		return -1;
	}
	return 0;
}

static pid_t spawn_worker(const struct serve_state *st)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_error("master", "event=fork_failed error=%s", log_quote(strerror(errno)));
		return -1;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		serve_worker_main(st);
	}
	log_info("master", "event=worker_started pid=%d", (int)pid);
	return pid;
}

/* kill() that says so when it fails (e.g. without CAP_KILL under systemd) */
static void signal_worker(pid_t pid, int sig)
{
	if (kill(pid, sig) < 0 && errno != ESRCH)
		log_error("master", "event=signal_failed pid=%d signal=%d error=%s", (int)pid, sig,
			  log_quote(strerror(errno)));
}

static void add_retired(pid_t pid)
{
	for (int i = 0; i < MAX_RETIRED; i++)
		if (retired[i] == 0) {
			retired[i] = pid;
			return;
		}
	/* too many draining workers: the oldest must go now */
	signal_worker(retired[0], SIGTERM);
	memmove(retired, retired + 1, sizeof(retired) - sizeof(retired[0]));
	retired[MAX_RETIRED - 1] = pid;
}

static bool reap_children(void)
{
	bool current_died = false;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == worker_pid) {
			worker_pid = 0;
			if (!shutting_down) {
				current_died = true;
				log_warn("master", "event=worker_died pid=%d status=%d signal=%d", (int)pid,
					 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
					 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
				continue;
			}
		}
		for (int i = 0; i < MAX_RETIRED; i++)
			if (retired[i] == pid)
				retired[i] = 0;
		log_info("master", "event=worker_exited pid=%d", (int)pid);
	}
	return current_died;
}

static bool any_children(void)
{
	if (worker_pid > 0)
		return true;
	for (int i = 0; i < MAX_RETIRED; i++)
		if (retired[i] > 0)
			return true;
	return false;
}

static void shutdown_all(void)
{
	struct timespec deadline;

	log_info("master", "event=shutdown");
	shutting_down = true;
	if (worker_pid > 0)
		signal_worker(worker_pid, SIGTERM);
	for (int i = 0; i < MAX_RETIRED; i++)
		if (retired[i] > 0)
			signal_worker(retired[i], SIGTERM);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 20;
	while (any_children()) {
		struct timespec now, wait = { 0, 100 * 1000 * 1000 };
		reap_children();
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec >= deadline.tv_sec) {
			if (worker_pid > 0)
				kill(worker_pid, SIGKILL);
			for (int i = 0; i < MAX_RETIRED; i++)
				if (retired[i] > 0)
					kill(retired[i], SIGKILL);
		}
		nanosleep(&wait, NULL);
	}
}

static void reload(struct serve_state *st)
{
	struct serve_state next;
	struct config *cfg;
	char *error = NULL;
	const char *err = NULL;

	log_info("master", "event=reload file=%s", log_quote(st->cfg->path));
	cfg = config_load(st->cfg->path, &error);
	if (cfg == NULL) {
		log_error("master", "event=reload_failed error=%s", log_quote(error));
		free(error);
		return;
	}
	if (load_state(cfg, st, &next, &err) < 0) {
		log_error("master", "event=reload_failed error=%s", log_quote(err));
		config_free(&cfg);
		return;
	}
	pid_t pid = spawn_worker(&next);
	if (pid < 0) {
		return_sockets(st, &next);
		SSL_CTX_free(next.tls);
		config_free(&cfg);
		return;
	}
	if (worker_pid > 0) {
		signal_worker(worker_pid, SIGQUIT);
		add_retired(worker_pid);
	}
	worker_pid = pid;
	/* sockets not moved to next are listeners that were removed */
	close_sockets(st);
	SSL_CTX_free(st->tls);
	if (st->cfg != caller_cfg)
		config_free(&st->cfg);
	*st = next;
	log_set_level(level_from_name(cfg->log_level));
	log_info("master", "event=reloaded");
}

int cli_serve(struct config *cfg, int argc, char **argv)
{
	(void)argc; (void)argv;
	struct serve_state st;
	const char *error = NULL;
	sigset_t set;
	struct rlimit rl;
	time_t last_spawn = 0;
	uid_t uid;
	gid_t gid;

	caller_cfg = cfg;
	log_set_level(level_from_name(cfg->log_level));
	log_set_syslog(cfg->log_syslog);
	if (privdrop_is_root()) {
		int r = privdrop_lookup(cfg->user, &uid, &gid, &error);
		if (r <= 0) {
			fprintf(stderr, "tern: service user '%s' %s (create it, or run `tern init` as root)\n",
				cfg->user, r == 0 ? "does not exist" : error);
			return 1;
		}
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (load_state(cfg, NULL, &st, &error) < 0) {
		fprintf(stderr, "tern: %s\n", error);
		return 1;
	}
	log_info("master", "event=start pid=%d config=%s hostname=%s", (int)getpid(),
		 log_quote(cfg->path), cfg->hostname);
	worker_pid = spawn_worker(&st);
	last_spawn = time(NULL);

	for (;;) {
		struct timespec tick = { 1, 0 };
		int sig = sigtimedwait(&set, NULL, &tick);

		if (sig == SIGTERM || sig == SIGINT) {
			shutdown_all();
			break;
		}
		if (sig == SIGHUP)
			reload(&st);
		if (sig == SIGCHLD)
			reap_children();
		if (worker_pid <= 0 && time(NULL) > last_spawn) {
			worker_pid = spawn_worker(&st);
			last_spawn = time(NULL);
		}
	}
	if (st.cfg->sendmail.socket[0] != '\0')
		unlink(st.cfg->sendmail.socket);   /* sendmail then says "not running" */
	close_sockets(&st);
	SSL_CTX_free(st.tls);
	if (st.cfg != caller_cfg)
		config_free(&st.cfg);
	log_info("master", "event=stopped");
	return 0;
}
