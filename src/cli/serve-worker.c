/* The worker process: privileges dropped, one event loop per thread over
 * the listening sockets the master bound (each thread accepts on every
 * socket; the kernel hands each connection to one of them), the store and
 * its commit thread, and the password-hashing pool.  With SPF on port 25,
 * each loop has a resolver of its own (the first loop shares the queue's).
 *
 * Signals (from the master):
 *   SIGTERM  stop accepting, close idle sessions, let transactions in
 *            progress finish for up to 10 s, then close the rest and exit.
 *   SIGQUIT  retire after a reload: stop accepting, keep serving the open
 *            sessions until they end (at most 10 minutes), then exit.
 * The worker also asks the kernel for SIGTERM when the master dies, so a
 * killed master never leaves an orphan holding the ports. */
#include "cli/serve-private.h"
#include "cli/serve-dkim.h"
#include "cli/sendmail.h"
#include "auth/auth.h"
#include "dns/dns.h"
#include "http/http.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/privdrop.h"
#include "lib/threadpool.h"
#include "imap/imap.h"
#include "pop3/pop3.h"
#include "queue/queue.h"
#include "mailauth/dkim-dns.h"
#include "mailauth/spf-dns.h"
#include "smtp/receive.h"
#include "smtp/receive-mailauth.h"
#include "smtp/server.h"
#include "store/store.h"

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define DRAIN_SECONDS_STOP 10
#define DRAIN_SECONDS_RETIRE 600

struct worker_thread {
	pthread_t tid;
	struct event_base *base;
	struct dns_resolver *dns;        /* SPF's resolver (threads[0]: the queue's) */
	struct spf_dns_adapter *spf;
	struct dkim_dns_adapter *dkim;   /* over spf */
	struct evconnlistener **listeners;
	unsigned listener_count;
	struct event *stop_timer;
	struct http_server *http[2];   /* evhttp for the http and https sockets */
	bool stopping;
	bool immediate;
};

struct accept_ctx {
	const struct smtp_listener *smtp;
	const struct pop3_listener *pop3;   /* set for POP3 and POP3S sockets instead */
	const struct imap_listener *imap;   /* set for IMAP and IMAPS sockets instead */
	bool local;                         /* the sendmail socket (smtp is sendmail_listener) */
	struct worker_thread *thread;
};

static struct worker_thread *threads;
static unsigned thread_count;
static struct smtp_listener smtp_listeners[LISTENER_KIND_COUNT];
static struct pop3_listener pop3_listeners[LISTENER_KIND_COUNT];
static struct imap_listener imap_listeners[LISTENER_KIND_COUNT];
static struct smtp_listener sendmail_listener;
static struct http_listener http_listeners[2];   /* http, https */
static struct accept_ctx *accept_ctxs;
static atomic_int stop_mode;   /* 0 running, 1 stop, 2 retire */
static atomic_uint threads_listening;
static const struct serve_state *worker_state;
/* the outbound queue and what it needs, on threads[0]'s loop */
static struct queue *out_queue;
static struct dns_resolver *out_dns;

/* The last thread to stop accepting closes our copies of the listening
 * sockets, so that a master restarted after a crash can bind them while we
 * drain (we hold no listening socket of our own after this). */
static void listeners_closed_by_thread(void)
{
	if (atomic_fetch_sub(&threads_listening, 1) != 1)
		return;
	for (unsigned i = 0; i < worker_state->sock_count; i++)
		close(worker_state->socks[i].fd);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	(void)lev;
	struct accept_ctx *a = arg;
	if (a->local)
		serve_sendmail_accept(a->smtp, a->thread->base, fd);
	else if (a->imap != NULL)
		imap_session_accept(a->imap, a->thread->base, fd, sa, (socklen_t)salen);
	else if (a->pop3 != NULL)
		pop3_session_accept(a->pop3, a->thread->base, fd, sa, (socklen_t)salen);
	else
		smtp_session_accept(a->smtp, a->thread->base, fd, sa, (socklen_t)salen);
}

/* Runs on each thread while stopping: exit the loop once its sessions are gone. */
static void stop_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what;
	struct worker_thread *t = arg;
	if (smtp_sessions_count() == 0 && pop3_sessions_count() == 0 &&
	    imap_sessions_count() == 0 && http_connections_count() == 0) {
		http_server_free(&t->http[0]);
		http_server_free(&t->http[1]);
		event_base_loopexit(t->base, NULL);
	}
}

static void thread_begin_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what;
	struct worker_thread *t = arg;
	struct timeval tick = { 0, 100 * 1000 };

	if (!t->stopping) {
		t->stopping = true;
		if (t == &threads[0])
			queue_pause(out_queue);   /* attempts in flight are retried later */
		for (unsigned i = 0; i < t->listener_count; i++)
			evconnlistener_free(t->listeners[i]);
		t->listener_count = 0;
		http_server_stop_accepting(t->http[0]);
		http_server_stop_accepting(t->http[1]);
		listeners_closed_by_thread();
		t->stop_timer = event_new(t->base, -1, EV_PERSIST, stop_tick, t);
		event_add(t->stop_timer, &tick);
	}
	if (atomic_load(&stop_mode) == 1 || t->immediate) {
		smtp_sessions_drain(t->base, t->immediate);
		pop3_sessions_drain(t->base, t->immediate);
		imap_sessions_drain(t->base, t->immediate);
		/* HTTP answers are synchronous: nothing is left to finish but
		 * responses still being flushed and idle keep-alive connections */
		http_server_free(&t->http[0]);
		http_server_free(&t->http[1]);
	}
}

static void thread_force_stop(evutil_socket_t fd, short what, void *arg)
{
	struct worker_thread *t = arg;
	t->immediate = true;
	thread_begin_stop(fd, what, arg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct event_base *main_base = arg;
	int mode = sig == SIGQUIT ? 2 : 1;
	int prev = atomic_exchange(&stop_mode, mode);
	struct timeval zero = { 0, 0 };
	struct timeval deadline = { mode == 1 ? DRAIN_SECONDS_STOP : DRAIN_SECONDS_RETIRE, 0 };

	if (prev == 1 && mode == 2)
		atomic_store(&stop_mode, 1);   /* already stopping: keep the shorter drain */
	log_info("worker", "event=%s pid=%d", mode == 1 ? "stopping" : "retiring", (int)getpid());
	for (unsigned i = 0; i < thread_count; i++) {
		event_base_once(threads[i].base, -1, EV_TIMEOUT, thread_begin_stop, &threads[i], &zero);
		if (prev == 0)
			event_base_once(threads[i].base, -1, EV_TIMEOUT, thread_force_stop, &threads[i],
					&deadline);
	}
	(void)main_base;
}

static void *thread_run(void *arg)
{
	struct worker_thread *t = arg;
	event_base_dispatch(t->base);
	return NULL;
}

static unsigned thread_target(const struct config *cfg)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (cfg->worker_threads > 0)
		return cfg->worker_threads;
	return n > 0 && n < 64 ? (unsigned)n : 1;
}

void serve_worker_main(const struct serve_state *st)
{
	const struct config *cfg = st->cfg;
	struct store_options opts = { 0 };
	struct store *store = NULL;
	struct threadpool *pool;
	const char *error = NULL;
	struct event *sig_term, *sig_quit;
	sigset_t block;

	if (privdrop_to(cfg->user, &error) < 0) {
		log_error("worker", "event=privdrop_failed user=%s error=%s", cfg->user, log_quote(error));
		_exit(1);
	}
	/* after the uid change, which clears the parent-death signal */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		_exit(0);

	evthread_use_pthreads();
	opts.fsync_mode = cfg->store_fsync != NULL && strcmp(cfg->store_fsync, "fsync") == 0
				  ? STORE_FSYNC_FILE : STORE_FSYNC_SYNCFS;
	opts.commit_batch = cfg->commit_batch;
	if (store_open(cfg->data_dir, &opts, &store, &error) < 0) {
		log_error("worker", "event=store_open_failed dir=%s error=%s", log_quote(cfg->data_dir),
			  log_quote(error));
		_exit(1);
	}
	pool = threadpool_create(2);

	for (int k = 0; k < LISTENER_KIND_COUNT; k++) {
		struct smtp_listener *l = &smtp_listeners[k];
		l->cfg = cfg;
		l->store = store;
		l->pool = pool;
		l->hooks = &smtp_receive_hooks;
		l->tls = st->tls;
		l->name = listener_kind_name((enum listener_kind)k);
		l->role = k == LISTENER_SMTP ? SMTP_ROLE_MX : SMTP_ROLE_SUBMISSION;
		l->implicit_tls = k == LISTENER_SUBMISSIONS;

		struct pop3_listener *p = &pop3_listeners[k];
		p->name = listener_kind_name((enum listener_kind)k);
		p->implicit_tls = k == LISTENER_POP3S;
		p->cfg = cfg;
		p->tls = st->tls;
		p->store = store;
		p->pool = pool;

		struct imap_listener *im = &imap_listeners[k];
		im->name = listener_kind_name((enum listener_kind)k);
		im->implicit_tls = k == LISTENER_IMAPS;
		im->cfg = cfg;
		im->tls = st->tls;
		im->store = store;
		im->pool = pool;
	}

	http_listener_init(&http_listeners[0], "http", false, cfg, NULL, store);
	http_listener_init(&http_listeners[1], "https", true, cfg, st->tls, store);

	/* local submission: a submission session whose user comes from the
	 * peer's uid (serve-sendmail.c); no TLS on a local socket */
	sendmail_listener = smtp_listeners[LISTENER_SUBMISSION];
	sendmail_listener.name = "sendmail";
	sendmail_listener.implicit_tls = false;
	sendmail_listener.tls = NULL;

	/* only the main thread takes signals, through its event loop */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);

	thread_count = thread_target(cfg);
	worker_state = st;
	atomic_store(&threads_listening, thread_count);
	threads = xcalloc(thread_count, sizeof(*threads));
	accept_ctxs = xcalloc((size_t)thread_count * (st->sock_count + 1), sizeof(*accept_ctxs));
	for (unsigned i = 0; i < thread_count; i++) {
		struct worker_thread *t = &threads[i];
		t->base = event_base_new();
		t->listeners = xcalloc(st->sock_count + 1, sizeof(*t->listeners));
		for (unsigned j = 0; j < st->sock_count; j++) {
			struct accept_ctx *a = &accept_ctxs[i * (st->sock_count + 1) + j];
			enum listener_kind kind = st->socks[j].kind;
			if (!st->socks[j].local && (kind == LISTENER_HTTP || kind == LISTENER_HTTPS)) {
				int h = kind == LISTENER_HTTPS;
				if (t->http[h] == NULL)
					t->http[h] = http_server_create(&http_listeners[h], t->base, &error);
				if (t->http[h] == NULL ||
				    http_server_add_socket(t->http[h], st->socks[j].fd, &error) < 0)
					log_error("worker", "event=http_listen_failed listener=%s error=%s",
						  listener_kind_name(kind), log_quote(error));
				continue;
			}
			a->smtp = &smtp_listeners[st->socks[j].kind];
			if (st->socks[j].local) {
				a->smtp = &sendmail_listener;
				a->local = true;
			}
			if (!a->local && (st->socks[j].kind == LISTENER_POP3 ||
					  st->socks[j].kind == LISTENER_POP3S))
				a->pop3 = &pop3_listeners[st->socks[j].kind];
			if (!a->local && (st->socks[j].kind == LISTENER_IMAP ||
					  st->socks[j].kind == LISTENER_IMAPS))
				a->imap = &imap_listeners[st->socks[j].kind];
			a->thread = t;
			t->listeners[t->listener_count++] =
				evconnlistener_new(t->base, on_accept, a, LEV_OPT_CLOSE_ON_EXEC, -1,
						   st->socks[j].fd);
		}
	}
	/* the outbound queue runs on the first loop */
	out_dns = dns_resolver_new(threads[0].base, cfg, &error);
	if (out_dns == NULL) {
		log_error("worker", "event=queue_start_failed error=%s", log_quote(error));
	} else {
		struct queue_deps qd = { threads[0].base, store, out_dns, NULL, cfg };
		out_queue = queue_start(&qd, &error);
		if (out_queue == NULL)
			log_error("worker", "event=queue_start_failed error=%s", log_quote(error));
	}
	/* SPF and DKIM on port 25: one resolver per loop (receive-mailauth.c) */
	for (unsigned i = 0; (cfg->mailauth.spf || cfg->mailauth.dkim) &&
			     cfg->port[LISTENER_SMTP] != 0 && i < thread_count; i++) {
		struct worker_thread *t = &threads[i];
		t->dns = i == 0 && out_dns != NULL ? out_dns
			: dns_resolver_new(t->base, cfg, &error);
		if (t->dns == NULL)
			log_error("worker", "event=spf_resolver_failed error=%s", log_quote(error));
		else
			t->spf = spf_dns_adapter_new(t->dns);
		if (t->spf != NULL)
			t->dkim = dkim_dns_adapter_new(t->spf);
		receive_mailauth_register(t->base, t->spf, t->dkim);
	}
	/* DKIM signing hook and key rotation (before the other threads run) */
	serve_dkim_start(threads[0].base, store, out_dns, cfg);
	for (int k = 0; k < LISTENER_KIND_COUNT; k++)
		smtp_listeners[k].queue = out_queue;
	sendmail_listener.queue = out_queue;
	sig_term = evsignal_new(threads[0].base, SIGTERM, on_signal, threads[0].base);
	sig_quit = evsignal_new(threads[0].base, SIGQUIT, on_signal, threads[0].base);
	event_add(sig_term, NULL);
	event_add(sig_quit, NULL);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	for (unsigned i = 1; i < thread_count; i++)
		pthread_create(&threads[i].tid, NULL, thread_run, &threads[i]);
	pthread_sigmask(SIG_UNBLOCK, &block, NULL);
	log_info("worker", "event=ready pid=%d threads=%u user=%s", (int)getpid(), thread_count,
		 cfg->user);

	event_base_dispatch(threads[0].base);
	for (unsigned i = 1; i < thread_count; i++)
		pthread_join(threads[i].tid, NULL);
	for (unsigned i = 0; i < thread_count; i++) {
		http_server_free(&threads[i].http[0]);
		http_server_free(&threads[i].http[1]);
	}
	http_listener_clear(&http_listeners[0]);
	http_listener_clear(&http_listeners[1]);
	event_free(sig_term);
	event_free(sig_quit);
	serve_dkim_stop();
	receive_mailauth_unregister_all();
	for (unsigned i = 0; i < thread_count; i++) {
		dkim_dns_adapter_free(&threads[i].dkim);
		spf_dns_adapter_free(&threads[i].spf);
		if (threads[i].dns != out_dns)
			dns_resolver_free(&threads[i].dns);
	}
	queue_stop(&out_queue);
	dns_resolver_free(&out_dns);
	threadpool_destroy(&pool);
	store_close(&store);
	log_info("worker", "event=exit pid=%d", (int)getpid());
	_exit(0);
}
