/* POP3 download load generator for bench/pop3 (built by run.sh with cc -O2).
 *
 * One process, one epoll loop, C concurrent clients on 127.0.0.1:PORT.
 * Client i logs in as PREFIX<i>SUFFIX with USER/PASS, sends STAT and LIST
 * in one write, reads the sizes LIST gives, then pipelines RETR n / DELE n
 * for every message followed by QUIT (RFC 2449 6.6), all in one write, and
 * checks every reply as it streams in:
 *  - each status line starts with "+OK";
 *  - each RETR body ends with "\r\n.\r\n" (RFC 1939 3), a line starting
 *    with '.' that is not the terminator is "..": the stuffing byte is
 *    removed, and the unstuffed byte count equals the size LIST gave;
 *  - the client received as many messages as LIST announced, and that is
 *    EXPECT; the QUIT reply is +OK.
 * Bodies are parsed in place in a fixed receive buffer without copying, so
 * the client costs a small fraction of what the servers spend.
 *
 * Wall time runs from the first connect until the last QUIT reply.  Each
 * client also records when its login completed (the +OK to PASS) and when
 * the +OK to its QUIT came, which splits a run into:
 *  - the login phase: from the first connect until the last client got its
 *    PASS +OK (password verification dominates it);
 *  - each client's download time: from its own PASS +OK to its own QUIT
 *    +OK (STAT, LIST, every RETR and DELE, and the deletions committed at
 *    QUIT); the median over the clients is reported, and the download rate
 *    is messages / median download time: what the C clients get together
 *    when each takes the median time.  The clients' download phases still
 *    overlap other clients' logins on the same cores.
 * Output (one line on stdout):
 *   ok=1 clients=C messages=N bytes=B wall=S client_cpu=S login=S
 *   dl_median=S dl_min=S dl_max=S dl_sum=S tail=S
 *   quit_median=S quit_max=S
 * (tail: from the last login to the last QUIT reply; quit: from a client's
 * last DELE +OK to its QUIT +OK, the time the server takes to commit the
 * deletions, over the clients that deleted something.)
 * Exit status 0 when every client got everything, 1 otherwise (reasons on
 * stderr), 2 for usage errors.
 *
 *   load PORT CLIENTS PREFIX SUFFIX PASSWORD EXPECT [TIMEOUT_S] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE (256 * 1024)

enum phase {
	PH_GREET, PH_USER, PH_PASS, PH_STAT, PH_LIST_HEAD, PH_LIST,
	PH_RETR_HEAD, PH_RETR_BODY, PH_DELE, PH_QUIT, PH_EOF, PH_DONE, PH_FAILED,
};

struct client {
	int fd;
	int index;
	enum phase ph;
	char *rbuf;
	size_t rlen;            /* bytes held in rbuf */
	char *wbuf;
	size_t wlen, wpos;      /* pending output */
	long long *sizes;       /* LIST sizes by message number - 1 */
	uint32_t nsizes, alloc;
	uint32_t cur;           /* message being retrieved (0-based) */
	uint32_t received;
	long long body_bytes;   /* unstuffed bytes of the current message */
	long long total_bytes;
	bool bol;               /* the next body byte starts a line */
	bool prev_crlf;         /* the last body line ended with CRLF (or none yet) */
	bool last_cr;           /* the last body byte consumed was CR */
	double t_login;         /* when the +OK to PASS came (0: not yet) */
	double t_quit;          /* when the +OK to QUIT came (0: not yet) */
	double t_last;          /* when the reply before QUIT's came (last DELE +OK) */
};

static const char *prefix, *suffix, *password;
static uint32_t expect;
static int failures;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (p == NULL) {
		perror("malloc");
		exit(2);
	}
	return p;
}

static void fail(struct client *c, const char *what, const char *p, size_t len)
{
	if (len > 80)
		len = 80;
	fprintf(stderr, "client %d: %s (message %u): %.*s\n", c->index, what, c->cur + 1,
		(int)len, p ? p : "");
	c->ph = PH_FAILED;
	failures++;
}

static void queue(struct client *c, const char *p, size_t len)
{
	c->wbuf = realloc(c->wbuf, c->wlen + len);
	if (c->wbuf == NULL) {
		perror("realloc");
		exit(2);
	}
	memcpy(c->wbuf + c->wlen, p, len);
	c->wlen += len;
}

static int flush_out(struct client *c)
{
	while (c->wpos < c->wlen) {
		ssize_t n = write(c->fd, c->wbuf + c->wpos, c->wlen - c->wpos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0) {
			fail(c, "write", strerror(errno), strlen(strerror(errno)));
			return -1;
		}
		c->wpos += (size_t)n;
	}
	return 0;
}

/* The pipelined RETR/DELE batch and QUIT, once LIST is known. */
static void queue_batch(struct client *c)
{
	char line[64];

	for (uint32_t i = 1; i <= c->nsizes; i++) {
		int n = snprintf(line, sizeof(line), "RETR %u\r\nDELE %u\r\n", i, i);
		queue(c, line, (size_t)n);
	}
	queue(c, "QUIT\r\n", 6);
}

/* A status line: must be +OK. */
static bool status_ok(struct client *c, const char *p, size_t len)
{
	if (len < 3 || memcmp(p, "+OK", 3) != 0) {
		fail(c, "unexpected reply", p, len);
		return false;
	}
	return true;
}

/* Consume RETR body bytes at p[0..len); returns the bytes used (fewer
 * than len when the terminator was seen or more bytes are needed). */
static size_t body_consume(struct client *c, const char *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (c->bol) {
			if (p[i] == '.') {
				if (len - i < 2)
					return i;
				if (p[i + 1] != '.') {
					if (len - i < 3)
						return i;
					if (p[i + 1] == '\r' && p[i + 2] == '\n') {
						if (!c->prev_crlf) {
							fail(c, "body does not end with CRLF", NULL, 0);
							return i;
						}
						if (c->body_bytes != c->sizes[c->cur]) {
							char b[80];
							int n = snprintf(b, sizeof(b), "got %lld, LIST said %lld",
									 c->body_bytes, c->sizes[c->cur]);
							fail(c, "size mismatch", b, (size_t)n);
							return i;
						}
						c->received++;
						c->total_bytes += c->body_bytes;
						c->ph = PH_DELE;
						return i + 3;
					}
					fail(c, "unstuffed dot line", p + i, len - i);
					return i;
				}
				i++;    /* the stuffing byte */
			}
			c->bol = false;
		}
		const char *lf = memchr(p + i, '\n', len - i);
		size_t end = lf ? (size_t)(lf - p) + 1 : len;
		c->body_bytes += (long long)(end - i);
		if (lf) {
			/* the CR may have come in the previous read */
			c->prev_crlf = end - i >= 2 ? p[end - 2] == '\r' : c->last_cr;
			c->bol = true;
		} else {
			c->prev_crlf = false;
		}
		c->last_cr = p[end - 1] == '\r';
		i = end;
	}
	return i;
}

/* Process what rbuf holds; returns the bytes consumed. */
static size_t process(struct client *c)
{
	size_t pos = 0;

	while (pos < c->rlen && c->ph != PH_FAILED && c->ph != PH_EOF) {
		const char *p = c->rbuf + pos;
		size_t avail = c->rlen - pos;

		if (c->ph == PH_RETR_BODY) {
			size_t used = body_consume(c, p, avail);
			pos += used;
			if (c->ph == PH_RETR_BODY && used == 0)
				break;  /* wait for more */
			continue;
		}
		const char *lf = memchr(p, '\n', avail);
		if (lf == NULL)
			break;
		size_t len = (size_t)(lf - p) + 1;
		pos += len;
		switch (c->ph) {
		case PH_GREET:
			if (!status_ok(c, p, len))
				break;
			{
				char cmd[512];
				int n = snprintf(cmd, sizeof(cmd), "USER %s%d%s\r\nPASS %s\r\nSTAT\r\nLIST\r\n",
						 prefix, c->index, suffix, password);
				queue(c, cmd, (size_t)n);
			}
			c->ph = PH_USER;
			break;
		case PH_USER:
		case PH_PASS:
		case PH_STAT:
			if (status_ok(c, p, len)) {
				if (c->ph == PH_PASS)
					c->t_login = now();
				c->ph++;
			}
			break;
		case PH_LIST_HEAD:
			if (status_ok(c, p, len))
				c->ph = PH_LIST;
			break;
		case PH_LIST:
			if (len == 3 && memcmp(p, ".\r\n", 3) == 0) {
				queue_batch(c);
				c->cur = 0;
				c->ph = c->nsizes > 0 ? PH_RETR_HEAD : PH_QUIT;
				break;
			}
			{
				unsigned num;
				long long size;
				if (sscanf(p, "%u %lld", &num, &size) != 2 || num != c->nsizes + 1) {
					fail(c, "bad LIST line", p, len);
					break;
				}
				if (c->nsizes == c->alloc) {
					c->alloc = c->alloc ? c->alloc * 2 : 256;
					c->sizes = realloc(c->sizes, c->alloc * sizeof(*c->sizes));
					if (c->sizes == NULL)
						exit(2);
				}
				c->sizes[c->nsizes++] = size;
			}
			break;
		case PH_RETR_HEAD:
			if (status_ok(c, p, len)) {
				c->ph = PH_RETR_BODY;
				c->body_bytes = 0;
				c->bol = true;
				c->prev_crlf = true;
				c->last_cr = false;
			}
			break;
		case PH_DELE:
			if (status_ok(c, p, len)) {
				c->cur++;
				if (c->cur == c->nsizes)
					c->t_last = now();
				c->ph = c->cur < c->nsizes ? PH_RETR_HEAD : PH_QUIT;
			}
			break;
		case PH_QUIT:
			if (status_ok(c, p, len)) {
				c->t_quit = now();
				c->ph = PH_EOF;
			}
			break;
		default:
			fail(c, "data after QUIT", p, len);
			break;
		}
	}
	return pos;
}

/* Readable: read, process, keep the unprocessed tail.  Returns false once
 * the client is finished (done or failed). */
static bool on_read(struct client *c)
{
	for (;;) {
		ssize_t n = read(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			fail(c, "read", strerror(errno), strlen(strerror(errno)));
			return false;
		}
		if (n == 0) {
			if (c->ph == PH_EOF) {
				c->ph = PH_DONE;
			} else {
				fail(c, "server closed early", c->rbuf, c->rlen);
			}
			return false;
		}
		c->rlen += (size_t)n;
		size_t used = process(c);
		if (c->ph == PH_FAILED)
			return false;
		memmove(c->rbuf, c->rbuf + used, c->rlen - used);
		c->rlen -= used;
		if (c->rlen == RBUF_SIZE) {
			fail(c, "line too long", c->rbuf, 80);
			return false;
		}
		if (c->wpos < c->wlen && flush_out(c) < 0)
			return false;
		if (c->ph == PH_EOF)
			break;  /* the wall clock stops at the QUIT reply */
	}
	return true;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: %s PORT CLIENTS PREFIX SUFFIX PASSWORD EXPECT [TIMEOUT_S]\n",
			argv[0]);
		return 2;
	}
	int port = atoi(argv[1]);
	int nclients = atoi(argv[2]);
	prefix = argv[3];
	suffix = argv[4];
	password = argv[5];
	expect = (uint32_t)strtoul(argv[6], NULL, 10);
	double timeout = argc > 7 ? atof(argv[7]) : 300;
	if (port <= 0 || nclients <= 0)
		return 2;

	struct client *cs = calloc((size_t)nclients, sizeof(*cs));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	double t0 = now(), t_end = t0;
	int active = 0;

	for (int i = 0; i < nclients; i++) {
		struct client *c = &cs[i];
		c->index = i;
		c->rbuf = xmalloc(RBUF_SIZE);
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
			fail(c, "connect", strerror(errno), strlen(strerror(errno)));
			continue;
		}
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
		active++;
	}

	struct epoll_event evs[64];
	while (active > 0) {
		double left = t0 + timeout - now();
		if (left <= 0) {
			fprintf(stderr, "timeout after %.0f s with %d clients unfinished\n", timeout, active);
			failures += active;
			break;
		}
		int n = epoll_wait(ep, evs, 64, (int)(left * 1000) + 1);
		if (n < 0 && errno == EINTR)
			continue;
		for (int k = 0; k < n; k++) {
			struct client *c = evs[k].data.ptr;
			bool live = true;
			if (c->ph == PH_DONE || c->ph == PH_FAILED)
				continue;
			if (evs[k].events & EPOLLOUT) {
				if (flush_out(c) < 0)
					live = false;
			}
			if (live && (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				enum phase before = c->ph;
				live = on_read(c);
				if (c->ph == PH_EOF && before != PH_EOF)
					t_end = now();
			}
			if (live && c->ph != PH_DONE) {
				/* watch for output only while some is pending */
				struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
				if (c->wpos < c->wlen)
					ev.events |= EPOLLOUT;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			if (c->ph == PH_DONE && t_end < t0)
				t_end = now();
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			active--;
		}
	}

	uint32_t messages = 0;
	long long bytes = 0;
	double *dl = xmalloc((size_t)nclients * sizeof(*dl));
	double *qt = xmalloc((size_t)nclients * sizeof(*qt));
	double last_login = t0, dl_sum = 0;
	int ndl = 0, nqt = 0;
	for (int i = 0; i < nclients; i++) {
		struct client *c = &cs[i];
		messages += c->received;
		bytes += c->total_bytes;
		if (c->t_login > last_login)
			last_login = c->t_login;
		if (c->t_login > 0 && c->t_quit >= c->t_login) {
			dl[ndl++] = c->t_quit - c->t_login;
			dl_sum += c->t_quit - c->t_login;
		}
		if (c->t_last > 0 && c->t_quit >= c->t_last)
			qt[nqt++] = c->t_quit - c->t_last;
		if (c->ph == PH_DONE && (c->received != c->nsizes || c->nsizes != expect)) {
			fprintf(stderr, "client %d: received %u of %u messages, expected %u\n", i,
				c->received, c->nsizes, expect);
			failures++;
		}
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
		ru.ru_stime.tv_usec / 1e6;
	double dl_median = 0, qt_median = 0;
	if (nqt > 0) {
		qsort(qt, (size_t)nqt, sizeof(*qt), cmp_double);
		qt_median = nqt % 2 ? qt[nqt / 2] : (qt[nqt / 2 - 1] + qt[nqt / 2]) / 2;
	}
	if (ndl > 0) {
		qsort(dl, (size_t)ndl, sizeof(*dl), cmp_double);
		dl_median = ndl % 2 ? dl[ndl / 2] : (dl[ndl / 2 - 1] + dl[ndl / 2]) / 2;
	}
	printf("ok=%d clients=%d messages=%u bytes=%lld wall=%.4f client_cpu=%.3f login=%.4f"
	       " dl_median=%.4f dl_min=%.4f dl_max=%.4f dl_sum=%.4f tail=%.4f"
	       " quit_median=%.4f quit_max=%.4f\n",
	       failures == 0, nclients, messages, bytes, t_end - t0, cpu, last_login - t0,
	       dl_median, ndl ? dl[0] : 0.0, ndl ? dl[ndl - 1] : 0.0, dl_sum,
	       t_end > last_login ? t_end - last_login : 0.0, qt_median,
	       nqt ? qt[nqt - 1] : 0.0);
	free(dl);
	free(qt);
	return failures == 0 ? 0 : 1;
}
