/* MTA-STS policy fetch over HTTPS (mta-sts-fetch.h), RFC 8461 3.3.
 *
 * Each fetch is one libcurl easy transfer on a thread of its own: a policy
 * fetch is rare (once per domain and max_age) and short, so a thread is
 * simpler than driving curl's multi interface from libevent and keeps the
 * loop free all the same.  The thread only touches the fetch's own state;
 * when the transfer ends it activates an event on the caller's loop, whose
 * handler joins the thread and calls back.  The event is also a timer past
 * curl's own timeout, so the loop waits for it and a lost wakeup cannot
 * leave a job hanging (the join is then bounded by that timeout).
 *
 * Invariants: curl connects only to the addresses given (CURLOPT_RESOLVE),
 * speaks only HTTPS with certificate and name checks, ignores proxy
 * variables, follows no redirect, and keeps at most MTA_STS_POLICY_MAX
 * bytes of body (a larger one is an error).  A cancel sets an abort flag
 * that curl's progress callback reads (at least once a second), then joins
 * the thread, so nothing outlives the cancel. */
#include "queue/mta-sts-fetch.h"

#include "lib/buf.h"
#include "queue/mta-sts.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

struct mta_sts_fetch {
	pthread_t thread;
	struct event *done;
	atomic_int abort;
	mta_sts_fetch_cb *cb;
	void *ctx;
	/* set up before the thread starts, read-only for it */
	char *url, *resolve, *ca_file;
	unsigned timeout;
	/* written by the thread, read after the join */
	struct buf body;
	bool too_big;
	int status;
	char *error;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct mta_sts_fetch *f = arg;

	/* RFC 8461 3.3: a policy is at most 64 KiB; refuse to store more */
	if (buf_append(&f->body, data, size * n) < 0) {
		f->too_big = true;
		return 0;
	}
	return size * n;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct mta_sts_fetch *f = arg;

	(void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
	return atomic_load(&f->abort) ? 1 : 0;
}

/* "text/plain" or "text/plain; charset=utf-8", any case */
static bool is_text_plain(const char *ct)
{
	size_t n = strlen("text/plain");

	if (ct == NULL || strncasecmp(ct, "text/plain", n) != 0)
		return false;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

static void *fetch_thread(void *arg)
{
	struct mta_sts_fetch *f = arg;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *resolve = NULL;
	CURL *h = curl_easy_init();
	CURLcode rc;
	long code = 0;
	char *ct = NULL;

	f->status = -1;
	if (h == NULL) {
		f->error = xstrdup("cannot create a curl handle");
		goto out;
	}
	resolve = curl_slist_append(NULL, f->resolve);
	curl_easy_setopt(h, CURLOPT_URL, f->url);
	curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_PROXY, "");                  /* never a proxy from the environment */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);         /* RFC 8461 3.3: no redirects */
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (f->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, f->ca_file);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)f->timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)f->timeout);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "Tern MTA-STS");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, f);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		if (f->too_big)
			f->error = xasprintf("the policy is larger than %d bytes", MTA_STS_POLICY_MAX);
		else
			f->error = xasprintf("%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
	if (code != 200) {
		f->error = xasprintf("HTTP status %ld", code);
		goto out;
	}
	if (!is_text_plain(ct)) {
		/* RFC 8461 3.2: the policy's media type is text/plain */
		f->error = xasprintf("media type \"%.64s\" is not text/plain", ct ? ct : "");
		goto out;
	}
	f->status = 0;
out:
	if (h != NULL)
		curl_easy_cleanup(h);
	curl_slist_free_all(resolve);
	event_active(f->done, EV_TIMEOUT, 0);
	return NULL;
}

static void fetch_free(struct mta_sts_fetch *f)
{
	if (f->done != NULL)
		event_free(f->done);
	buf_free(&f->body);
	free(f->url);
	free(f->resolve);
	free(f->ca_file);
	free(f->error);
	free(f);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct mta_sts_fetch *f = arg;

	(void)fd; (void)what;
	pthread_join(f->thread, NULL);
	f->cb(f->status, buf_cstr(&f->body), f->body.len, f->error ? f->error : "", f->ctx);
	fetch_free(f);
}

struct mta_sts_fetch *mta_sts_fetch_start(struct event_base *base,
					  const struct mta_sts_fetch_params *p,
					  mta_sts_fetch_cb *cb, void *ctx, const char **error_r)
{
	struct mta_sts_fetch *f;
	struct buf r;
	char ip[INET6_ADDRSTRLEN];

	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		*error_r = "libcurl failed to initialise";
		return NULL;
	}
	if (p->n_addrs == 0 || p->host == NULL || strpbrk(p->host, ":/[]@ ") != NULL) {
		*error_r = "mta_sts_fetch_start: bad host or no address";
		return NULL;
	}
	f = xcalloc(1, sizeof(*f));
	f->cb = cb;
	f->ctx = ctx;
	f->timeout = p->timeout > 0 ? p->timeout : 10;
	f->ca_file = p->ca_file != NULL ? xstrdup(p->ca_file) : NULL;
	f->url = xasprintf("https://%s:%u/.well-known/mta-sts.txt", p->host, p->port);
	/* "host:port:addr1,[addr6],..." */
	buf_init(&r, BUF_UNLIMITED);
	buf_printf(&r, "%s:%u:", p->host, p->port);
	for (size_t i = 0; i < p->n_addrs; i++) {
		const struct dns_address *a = &p->addrs[i];
		if (a->family == AF_INET6) {
			inet_ntop(AF_INET6, &a->addr.v6, ip, sizeof(ip));
			buf_printf(&r, "%s[%s]", i ? "," : "", ip);
		} else {
			inet_ntop(AF_INET, &a->addr.v4, ip, sizeof(ip));
			buf_printf(&r, "%s%s", i ? "," : "", ip);
		}
	}
	f->resolve = buf_steal(&r);
	buf_init(&f->body, MTA_STS_POLICY_MAX);
	atomic_init(&f->abort, 0);
	f->done = event_new(base, -1, 0, on_done, f);
	/* pending with a timeout well past curl's own, so that the loop stays
	 * alive for it (the thread activates it much earlier) */
	struct timeval tv = { (time_t)f->timeout * 2 + 5, 0 };
	if (f->done == NULL || event_add(f->done, &tv) < 0 ||
	    pthread_create(&f->thread, NULL, fetch_thread, f) != 0) {
		*error_r = "cannot start the MTA-STS fetch thread";
		fetch_free(f);
		return NULL;
	}
	return f;
}

void mta_sts_fetch_cancel(struct mta_sts_fetch **fp)
{
	struct mta_sts_fetch *f = *fp;

	if (f == NULL)
		return;
	*fp = NULL;
	atomic_store(&f->abort, 1);
	pthread_join(f->thread, NULL);
	fetch_free(f);   /* also removes the done event if it is already active */
}
