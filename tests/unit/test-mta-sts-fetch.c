/* Unit tests for queue/mta-sts-fetch: the fetch thread hands its result
 * back on the event loop (a refused connection, a peer that never
 * finishes the TLS handshake until the timeout), a cancel in flight
 * returns promptly without a callback, and bad parameters are refused at
 * once. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "queue/mta-sts-fetch.h"
#include "unit.h"

struct outcome {
	struct event_base *base;
	int calls;
	int status;
	char error[256];
};

static void on_fetch(int status, const char *body, size_t len, const char *error, void *ctx)
{
	struct outcome *o = ctx;

	(void)body; (void)len;
	o->calls++;
	o->status = status;
	snprintf(o->error, sizeof(o->error), "%s", error);
	event_base_loopbreak(o->base);
}

/* A listening socket on 127.0.0.1 that never accepts; its port in *port_r. */
static int listener(unsigned *port_r)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	*port_r = ntohs(sa.sin_port);
	return fd;
}

static struct dns_address loopback(void)
{
	struct dns_address a = { .family = AF_INET };
	a.addr.v4.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static void test_refused(void)
{
	struct outcome o = { .base = event_base_new() };
	struct dns_address a = loopback();
	const char *error = NULL;
	unsigned port;
	int fd = listener(&port);

	CHECK(fd >= 0);
	close(fd);   /* now nothing listens there */
	struct mta_sts_fetch_params p = {
		.host = "mta-sts.example.test", .port = port, .addrs = &a, .n_addrs = 1,
		.timeout = 5,
	};
	struct mta_sts_fetch *f = mta_sts_fetch_start(o.base, &p, on_fetch, &o, &error);
	CHECK(f != NULL);
	CHECK(o.calls == 0);   /* never inside the start call */
	event_base_dispatch(o.base);
	CHECK(o.calls == 1);
	CHECK(o.status == -1);
	CHECK(o.error[0] != '\0');
	event_base_free(o.base);
}

static void test_timeout_and_cancel(void)
{
	struct outcome o = { .base = event_base_new() };
	struct dns_address a = loopback();
	const char *error = NULL;
	unsigned port;
	int fd = listener(&port);
	time_t start;

	CHECK(fd >= 0);
	struct mta_sts_fetch_params p = {
		.host = "mta-sts.example.test", .port = port, .addrs = &a, .n_addrs = 1,
		.timeout = 1,
	};
	/* the handshake never completes: the timeout ends it */
	struct mta_sts_fetch *f = mta_sts_fetch_start(o.base, &p, on_fetch, &o, &error);
	CHECK(f != NULL);
	event_base_dispatch(o.base);
	CHECK(o.calls == 1 && o.status == -1);
	/* a cancel in flight: prompt, and no callback */
	p.timeout = 60;
	o.calls = 0;
	f = mta_sts_fetch_start(o.base, &p, on_fetch, &o, &error);
	CHECK(f != NULL);
	usleep(100 * 1000);
	start = time(NULL);
	mta_sts_fetch_cancel(&f);
	CHECK(f == NULL);
	CHECK(time(NULL) - start <= 3);
	event_base_loop(o.base, EVLOOP_NONBLOCK);
	CHECK(o.calls == 0);
	mta_sts_fetch_cancel(&f);   /* NULL is fine */
	close(fd);
	event_base_free(o.base);
}

static void test_bad_params(void)
{
	struct outcome o = { .base = event_base_new() };
	struct dns_address a = loopback();
	const char *error = NULL;
	struct mta_sts_fetch_params p = {
		.host = "mta-sts.example.test", .port = 443, .addrs = &a, .n_addrs = 0,
	};

	CHECK(mta_sts_fetch_start(o.base, &p, on_fetch, &o, &error) == NULL && error != NULL);
	p.n_addrs = 1;
	p.host = "evil.test:443:10.0.0.1";   /* must not smuggle a resolve entry */
	error = NULL;
	CHECK(mta_sts_fetch_start(o.base, &p, on_fetch, &o, &error) == NULL && error != NULL);
	p.host = "mta-sts.example.test/x";
	error = NULL;
	CHECK(mta_sts_fetch_start(o.base, &p, on_fetch, &o, &error) == NULL && error != NULL);
	CHECK(o.calls == 0);
	event_base_free(o.base);
}

int main(void)
{
	evthread_use_pthreads();
	RUN(test_refused);
	RUN(test_timeout_and_cancel);
	RUN(test_bad_params);
	return unit_summary("mta-sts-fetch");
}
