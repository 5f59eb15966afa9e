/* Unit tests for lib/conn.c over a socketpair and a real event loop:
 * greeting on accept, input and close after the reply is flushed,
 * resume from inside the input callback not re-entering it, the
 * connection limit's refusal, the idle timeout's last reply, the list
 * count and drain iteration, and the PROXY header switching the address. */
#include "unit.h"
#include "lib/conn.h"
#include "lib/config.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct tsess {
	struct conn c;
	int starts, inputs, depth, max_depth, timeouts, refusals, disconnects;
	char reason[64];
	bool resume_inside;     /* input: wait, then resume synchronously */
};

static int frees;
static struct conn_list list;

static void t_start(struct conn *c)
{
	conn_container(c, struct tsess, c)->starts++;
	conn_send(c, "HELLO\r\n", 7);
}

static void t_input(struct conn *c)
{
	struct tsess *s = conn_container(c, struct tsess, c);

	s->inputs++;
	if (++s->depth > s->max_depth)
		s->max_depth = s->depth;
	while (conn_can_read(c)) {
		struct evbuffer *in = conn_input(c);
		struct evbuffer_ptr pos = evbuffer_search(in, "\n", 1, NULL);
		if (pos.pos < 0)
			break;
		char *line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF);
		if (strcmp(line, "QUIT") == 0) {
			conn_send(c, "BYE\r\n", 5);
			conn_close(c, "QUIT");
		} else {
			conn_send(c, "OK\r\n", 4);
			if (s->resume_inside) {
				c->waiting = true;
				conn_resume(c);   /* a synchronous completion */
			}
		}
		free(line);
	}
	s->depth--;
}

static void t_timeout(struct conn *c)
{
	conn_container(c, struct tsess, c)->timeouts++;
	conn_send(c, "TIMEOUT\r\n", 9);
}

static void t_refuse(struct conn *c)
{
	conn_container(c, struct tsess, c)->refusals++;
	conn_send(c, "FULL\r\n", 6);
}

static void t_disconnect(struct conn *c, const char *reason)
{
	struct tsess *s = conn_container(c, struct tsess, c);
	s->disconnects++;
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
}

/* the test keeps the session to inspect it: counts frees only */
static void t_free(struct conn *c)
{
	(void)c;
	frees++;
}

static const struct conn_ops t_ops = {
	.log_mod = "test",
	.start = t_start,
	.input = t_input,
	.timeout = t_timeout,
	.refuse = t_refuse,
	.disconnect = t_disconnect,
	.free = t_free,
};

static struct config cfg;

/* Accept the server end of a socketpair; *peer_r is the client end. */
static void t_accept(struct event_base *base, struct tsess *s, unsigned read_timeout,
		     int *peer_r)
{
	int sv[2];
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(40000) };
	struct conn_params p = {
		.ops = &t_ops, .list = &list, .cfg = &cfg, .listener = "test",
		.read_timeout = read_timeout, .read_high = 4096,
	};

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	memset(s, 0, sizeof(*s));
	conn_accept(&s->c, &p, base, sv[0], (struct sockaddr *)&sin);
	*peer_r = sv[1];
}

/* Run the loop and read from peer until EOF or about max_ms; returns what
 * was read (static) and sets *eof_r. */
static const char *t_pump(struct event_base *base, int peer, int max_ms, bool *eof_r)
{
	static char got[4096];
	size_t n = 0;

	*eof_r = false;
	got[0] = '\0';
	for (int i = 0; i < max_ms; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		ssize_t r = read(peer, got + n, sizeof(got) - 1 - n);
		if (r > 0) {
			n += (size_t)r;
			got[n] = '\0';
		} else if (r == 0) {
			*eof_r = true;
			break;
		} else if (errno != EAGAIN) {
			break;
		}
		usleep(1000);
	}
	return got;
}

/* The client end reads exactly want, then EOF (the server closed). */
static void t_expect(struct event_base *base, int peer, const char *want)
{
	bool eof;

	CHECK_STR(t_pump(base, peer, 3000, &eof), want);
	CHECK(eof);
	close(peer);
}

static void test_greet_input_close(void)
{
	struct event_base *base = event_base_new();
	struct tsess s;
	int peer;

	frees = 0;
	t_accept(base, &s, 0, &peer);
	CHECK(s.starts == 1);
	CHECK(list.count == 1);
	CHECK_STR(s.c.ip, "127.0.0.1");
	CHECK(s.c.port == 40000);
	CHECK(s.c.loopback);
	CHECK(strlen(s.c.id) == 8);
	CHECK(write(peer, "A\r\nB\r\nQUIT\r\nC\r\n", 15) == 15);
	t_expect(base, peer, "HELLO\r\nOK\r\nOK\r\nBYE\r\n");
	CHECK(s.disconnects == 1);
	CHECK_STR(s.reason, "closed");
	CHECK(frees == 1);
	CHECK(list.count == 0);
	event_base_free(base);
}

static void test_resume_no_reentry(void)
{
	struct event_base *base = event_base_new();
	struct tsess s;
	int peer;

	frees = 0;
	t_accept(base, &s, 0, &peer);
	s.resume_inside = true;
	CHECK(write(peer, "A\r\nB\r\nC\r\nQUIT\r\n", 15) == 15);
	t_expect(base, peer, "HELLO\r\nOK\r\nOK\r\nOK\r\nBYE\r\n");
	CHECK(s.max_depth == 1);
	CHECK(frees == 1);
	event_base_free(base);
}

static void test_connection_limit(void)
{
	struct event_base *base = event_base_new();
	struct tsess s;
	int peer;

	frees = 0;
	cfg.limits.connections = 0;
	t_accept(base, &s, 0, &peer);
	cfg.limits.connections = 100;
	CHECK(s.refusals == 1);
	CHECK(s.starts == 0);
	t_expect(base, peer, "FULL\r\n");
	CHECK(frees == 1);
	event_base_free(base);
}

static void test_timeout(void)
{
	struct event_base *base = event_base_new();
	struct tsess s;
	int peer;

	frees = 0;
	t_accept(base, &s, 1, &peer);
	t_expect(base, peer, "HELLO\r\nTIMEOUT\r\n");
	CHECK(s.timeouts == 1);
	CHECK(frees == 1);
	event_base_free(base);
}

static void t_drain(struct conn *c, void *arg)
{
	(*(int *)arg)++;
	conn_send(c, "DRAIN\r\n", 7);
	conn_close(c, "shutdown");
}

static void test_list_drain(void)
{
	struct event_base *base = event_base_new();
	struct tsess s1, s2;
	int p1, p2, n = 0;

	frees = 0;
	t_accept(base, &s1, 0, &p1);
	t_accept(base, &s2, 0, &p2);
	CHECK(list.count == 2);
	conn_list_foreach(&list, t_drain, &n);
	CHECK(n == 2);
	t_expect(base, p1, "HELLO\r\nDRAIN\r\n");
	t_expect(base, p2, "HELLO\r\nDRAIN\r\n");
	CHECK(frees == 2);
	CHECK(list.count == 0);
	event_base_free(base);
}

static void test_proxy(void)
{
	struct event_base *base = event_base_new();
	struct tsess s;
	int peer;
	static char trusted[] = "127.0.0.0/8";
	const char *hdr = "PROXY TCP4 192.0.2.7 127.0.0.1 5555 25\r\nQUIT\r\n";

	frees = 0;
	cfg.proxy_trusted[0] = trusted;
	cfg.proxy_trusted_count = 1;
	t_accept(base, &s, 0, &peer);
	cfg.proxy_trusted_count = 0;
	CHECK(s.starts == 0);
	CHECK(write(peer, hdr, strlen(hdr)) == (ssize_t)strlen(hdr));
	t_expect(base, peer, "HELLO\r\nBYE\r\n");
	CHECK_STR(s.c.ip, "192.0.2.7");
	CHECK(s.c.port == 5555);
	CHECK(!s.c.loopback);
	CHECK(frees == 1);
	event_base_free(base);
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);
	cfg.limits.connections_per_ip = 10;
	cfg.limits.connections = 100;
	RUN(test_greet_input_close);
	RUN(test_resume_no_reentry);
	RUN(test_connection_limit);
	RUN(test_timeout);
	RUN(test_list_drain);
	RUN(test_proxy);
	return unit_summary("conn");
}
