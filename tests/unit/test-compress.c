/* Unit tests for lib/compress.c: raw DEFLATE round trips (also inflating
 * the compressed bytes one at a time, every resume point), streams made
 * by plain zlib with a full 32 KiB window, the sync flush at the end of
 * every deflate call, the output limit, the inflate_max bound against a
 * "zip bomb", corrupt streams and bytes after the final block (sticky
 * errors), and the bufferevent filter over a bufferevent pair: both
 * directions, bytes waiting below the bound brought up by a kick, and a
 * corrupt stream raising an error event. */
#include "unit.h"
#include "lib/compress.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <zlib.h>

/* Text that compresses like mail: some repetition, some variety. */
static char *sample(size_t len)
{
	char *p = malloc(len);
	unsigned x = 12345;

	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		if (i % 61 == 60)
			p[i] = '\n';
		else if ((x >> 16) % 5 == 0)
			p[i] = (char)('a' + (x >> 8) % 26);
		else
			p[i] = "Subject: quarterly report from alice@example.org "[i % 49];
	}
	return p;
}

/* Everything in b as a malloc'd copy. */
static char *drain_all(struct evbuffer *b, size_t *len_r)
{
	size_t len = evbuffer_get_length(b);
	char *p = malloc(len + 1);

	evbuffer_remove(b, p, len);
	*len_r = len;
	return p;
}

/* Raw deflate with plain zlib, the way a client would (window 15). */
static struct evbuffer *zlib_raw(const char *p, size_t len, int flush)
{
	struct evbuffer *out = evbuffer_new();
	z_stream zs;
	unsigned char buf[4096];

	memset(&zs, 0, sizeof(zs));
	deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY);
	zs.next_in = (unsigned char *)(uintptr_t)p;
	zs.avail_in = (uInt)len;
	do {
		zs.next_out = buf;
		zs.avail_out = sizeof(buf);
		deflate(&zs, flush);
		evbuffer_add(out, buf, sizeof(buf) - zs.avail_out);
	} while (zs.avail_out == 0);
	deflateEnd(&zs);
	return out;
}

static void test_round_trip(void)
{
	const char *error = NULL;
	struct compress *a = compress_create(0, &error), *b = compress_create(0, &error);
	struct evbuffer *src = evbuffer_new(), *wire = evbuffer_new(), *plain = evbuffer_new();
	size_t len = 300 * 1024, got_len;
	char *text = sample(len), *got;
	struct compress_stats st;

	CHECK(a != NULL && b != NULL);
	evbuffer_add(src, text, len);
	CHECK(compress_deflate(a, src, wire, -1, &error) == (ssize_t)len);
	CHECK(evbuffer_get_length(src) == 0);
	CHECK(evbuffer_get_length(wire) > 0 && evbuffer_get_length(wire) < len / 2);
	/* a sync flush ends the output: 00 00 ff ff */
	size_t wl = evbuffer_get_length(wire);
	unsigned char tail[4];
	struct evbuffer_ptr pos;
	evbuffer_ptr_set(wire, &pos, wl - 4, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(wire, &pos, tail, 4);
	CHECK(memcmp(tail, "\x00\x00\xff\xff", 4) == 0);
	/* everything inflates now, without more input (the consumer takes
	 * each inflate_max worth as it comes) */
	struct evbuffer *all = evbuffer_new();
	while (compress_inflate_pending(b, wire, plain)) {
		ssize_t n = compress_inflate(b, wire, plain, &error);
		CHECK(n > 0);
		if (n <= 0)
			break;
		evbuffer_remove_buffer(plain, all, evbuffer_get_length(plain));
	}
	CHECK(evbuffer_get_length(wire) == 0);
	got = drain_all(all, &got_len);
	evbuffer_free(all);
	CHECK(got_len == len && memcmp(got, text, len) == 0);
	compress_get_stats(a, &st);
	CHECK(st.out_plain == len && st.out_wire == wl);
	compress_get_stats(b, &st);
	CHECK(st.in_wire == wl && st.in_plain == len);
	CHECK(compress_error(b) == NULL);
	free(got);
	free(text);
	compress_destroy(&a);
	compress_destroy(&b);
	CHECK(a == NULL);
	evbuffer_free(src);
	evbuffer_free(wire);
	evbuffer_free(plain);
}

/* Compressed bytes fed one at a time, as a slow peer sends them. */
static void test_inflate_byte_at_a_time(void)
{
	const char *error = NULL;
	size_t len = 40 * 1024, wlen, got_len;
	char *text = sample(len);
	struct evbuffer *wire = zlib_raw(text, len, Z_SYNC_FLUSH), *one = evbuffer_new(),
		*plain = evbuffer_new();
	struct compress *z = compress_create(0, &error);
	char *w = drain_all(wire, &wlen), *got;
	bool ok = true;

	for (size_t i = 0; i < wlen; i++) {
		evbuffer_add(one, w + i, 1);
		if (compress_inflate(z, one, plain, &error) < 0)
			ok = false;
		if (evbuffer_get_length(one) != 0)
			ok = false;
	}
	CHECK(ok);
	got = drain_all(plain, &got_len);
	CHECK(got_len == len && memcmp(got, text, len) == 0);
	free(got);
	free(w);
	free(text);
	compress_destroy(&z);
	evbuffer_free(wire);
	evbuffer_free(one);
	evbuffer_free(plain);
}

/* Two replies, each flushed: the first inflates fully before the second
 * is written; the limit stops deflating early and the rest follows. */
static void test_flush_and_limit(void)
{
	const char *error = NULL;
	struct compress *a = compress_create(0, &error), *b = compress_create(0, &error);
	struct evbuffer *src = evbuffer_new(), *wire = evbuffer_new(), *plain = evbuffer_new();
	size_t len = 200 * 1024, got_len;
	char *text = sample(len), *got;
	ssize_t n;

	evbuffer_add(src, "* OK first\r\n", 12);
	CHECK(compress_deflate(a, src, wire, -1, &error) == 12);
	CHECK(compress_inflate(b, wire, plain, &error) == 12);
	got = drain_all(plain, &got_len);
	CHECK(got_len == 12 && memcmp(got, "* OK first\r\n", 12) == 0);
	free(got);
	/* nothing new: no output at all, not even another flush marker */
	CHECK(compress_deflate(a, src, wire, -1, &error) == 0);
	CHECK(evbuffer_get_length(wire) == 0);

	evbuffer_add(src, text, len);
	n = compress_deflate(a, src, wire, 100, &error);
	CHECK(n > 0 && n < (ssize_t)len);
	CHECK(evbuffer_get_length(src) == len - (size_t)n);
	while (evbuffer_get_length(src) > 0)
		CHECK(compress_deflate(a, src, wire, 1000, &error) > 0);
	while (compress_inflate_pending(b, wire, plain))
		CHECK(compress_inflate(b, wire, plain, &error) >= 0);
	got = drain_all(plain, &got_len);
	CHECK(got_len == len && memcmp(got, text, len) == 0);
	free(got);
	free(text);
	compress_destroy(&a);
	compress_destroy(&b);
	evbuffer_free(src);
	evbuffer_free(wire);
	evbuffer_free(plain);
}

/* 64 MiB of zeros is about 64 KiB compressed: inflating never holds more
 * than inflate_max, and the rest comes as the consumer drains. */
static void test_zip_bomb_bounded(void)
{
	const char *error = NULL;
	size_t big = 64u << 20, max = 128 * 1024, total = 0, peak = 0;
	char *zeros = calloc(1, big);
	struct evbuffer *wire = zlib_raw(zeros, big, Z_SYNC_FLUSH), *plain = evbuffer_new();
	struct compress *z = compress_create(max, &error);
	bool ok = true;

	free(zeros);
	CHECK(evbuffer_get_length(wire) < big / 100);
	while (compress_inflate_pending(z, wire, plain)) {
		ssize_t n = compress_inflate(z, wire, plain, &error);
		if (n < 0) {
			ok = false;
			break;
		}
		if (evbuffer_get_length(plain) > peak)
			peak = evbuffer_get_length(plain);
		CHECK(evbuffer_get_length(plain) == max || !compress_inflate_pending(z, wire, plain));
		/* the consumer takes what it can */
		total += evbuffer_get_length(plain);
		evbuffer_drain(plain, evbuffer_get_length(plain));
	}
	CHECK(ok);
	CHECK(peak <= max);
	CHECK(total == big);
	compress_destroy(&z);
	evbuffer_free(wire);
	evbuffer_free(plain);
}

static void test_corrupt_and_trailing(void)
{
	const char *error = NULL;
	struct compress *z = compress_create(0, &error);
	struct evbuffer *wire = evbuffer_new(), *plain = evbuffer_new();

	/* block type 3 is reserved (RFC 1951 3.2.3) */
	evbuffer_add(wire, "\xff\xff\xff\xff", 4);
	CHECK(compress_inflate(z, wire, plain, &error) < 0);
	CHECK(error != NULL && compress_error(z) != NULL);
	CHECK(evbuffer_get_length(wire) == 0);
	/* sticky: even valid data is refused now */
	evbuffer_add(wire, "\x02\x00", 2);
	error = NULL;
	CHECK(compress_inflate(z, wire, plain, &error) < 0 && error != NULL);
	CHECK(evbuffer_get_length(plain) == 0);
	compress_destroy(&z);

	/* a final block, then more bytes */
	z = compress_create(0, &error);
	struct evbuffer *fin = zlib_raw("hello", 5, Z_FINISH);
	size_t got_len;
	CHECK(compress_inflate(z, fin, plain, &error) == 5);
	CHECK(compress_error(z) == NULL);
	char *got = drain_all(plain, &got_len);
	CHECK(got_len == 5 && memcmp(got, "hello", 5) == 0);
	free(got);
	evbuffer_add(fin, "x", 1);
	error = NULL;
	CHECK(compress_inflate(z, fin, plain, &error) < 0);
	CHECK_STR(error, "data after the end of the compressed stream");
	compress_destroy(&z);
	compress_destroy(&z);   /* NULL is fine */
	evbuffer_free(fin);
	evbuffer_free(wire);
	evbuffer_free(plain);
}

/* ---- the filter over a bufferevent pair ---- */

struct fstate {
	int reads, errors;
};

static void f_read(struct bufferevent *bev, void *ctx)
{
	(void)bev;
	((struct fstate *)ctx)->reads++;
}

static void f_event(struct bufferevent *bev, short what, void *ctx)
{
	(void)bev;
	if (what & BEV_EVENT_ERROR)
		((struct fstate *)ctx)->errors++;
}

static void loop(struct event_base *base)
{
	for (int i = 0; i < 20; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static void test_filter(void)
{
	struct event_base *base = event_base_new();
	struct bufferevent *pair[2], *f;
	struct compress *z = NULL, *peer;
	const char *error = NULL;
	struct fstate st = { 0, 0 };
	size_t len = 100 * 1024, got_len;
	char *text = sample(len), *got;

	CHECK(bufferevent_pair_new(base, 0, pair) == 0);
	f = compress_filter_new(pair[0], 16 * 1024, &z, &error);
	CHECK(f != NULL && z != NULL);
	bufferevent_setcb(f, f_read, NULL, f_event, &st);
	bufferevent_enable(f, EV_READ | EV_WRITE);
	bufferevent_enable(pair[1], EV_READ | EV_WRITE);
	peer = compress_create(0, &error);

	/* server to client: two writes in one burst, flushed once */
	evbuffer_add(bufferevent_get_output(f), "* OK one\r\n", 10);
	evbuffer_add(bufferevent_get_output(f), "* OK two\r\n", 10);
	loop(base);
	CHECK(evbuffer_get_length(bufferevent_get_output(f)) == 0);
	struct evbuffer *plain = evbuffer_new();
	CHECK(compress_inflate(peer, bufferevent_get_input(pair[1]), plain, &error) == 20);
	got = drain_all(plain, &got_len);
	CHECK(got_len == 20 && memcmp(got, "* OK one\r\n* OK two\r\n", 20) == 0);
	free(got);

	/* client to server: more than the bound; the rest waits compressed
	 * until the consumer drains and kicks */
	struct evbuffer *wire = zlib_raw(text, len, Z_SYNC_FLUSH);
	bufferevent_write_buffer(pair[1], wire);
	loop(base);
	CHECK(st.reads > 0);
	CHECK(evbuffer_get_length(bufferevent_get_input(f)) == 16 * 1024);
	size_t total = 0;
	struct evbuffer *all = evbuffer_new();
	for (int i = 0; i < 100 && total < len; i++) {
		struct evbuffer *in = bufferevent_get_input(f);
		CHECK(evbuffer_get_length(in) <= 16 * 1024);
		total += evbuffer_get_length(in);
		evbuffer_remove_buffer(in, all, evbuffer_get_length(in));
		compress_filter_kick(f, z);
		loop(base);
	}
	got = drain_all(all, &got_len);
	CHECK(got_len == len && memcmp(got, text, len) == 0);
	free(got);
	CHECK(st.errors == 0);

	/* a corrupt stream: an error event, and nothing more is inflated */
	bufferevent_write(pair[1], "\xff\xff\xff\xff", 4);
	loop(base);
	CHECK(st.errors == 1);
	CHECK(compress_error(z) != NULL);
	CHECK(evbuffer_get_length(bufferevent_get_input(f)) == 0);

	bufferevent_free(f);   /* frees pair[0] and z too */
	bufferevent_free(pair[1]);
	loop(base);
	compress_destroy(&peer);
	evbuffer_free(plain);
	evbuffer_free(wire);
	evbuffer_free(all);
	free(text);
	event_base_free(base);
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_inflate_byte_at_a_time);
	RUN(test_flush_and_limit);
	RUN(test_zip_bomb_bounded);
	RUN(test_corrupt_and_trailing);
	RUN(test_filter);
	return unit_summary("compress");
}
