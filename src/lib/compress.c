/* Raw DEFLATE streams for IMAP COMPRESS=DEFLATE and the bufferevent
 * filter that runs them under a protocol.
 *
 * Invariants:
 *  - Raw DEFLATE (RFC 1951) both ways, no zlib or gzip wrapper (RFC 4978
 *    section 3: windowBits negative).
 *  - Every burst of output ends with a sync flush (RFC 4978 section 4:
 *    the peer must be able to act on every response now); a burst is all
 *    the output one event-loop callback queued, because the filter's
 *    output callback is deferred.  Flushing each write on its own would
 *    cost 4-5 bytes per line and most of the ratio on FETCH FLAGS lists.
 *  - Inflating never grows the destination past inflate_max: a few KiB
 *    of compressed zeros must not become gigabytes in memory; the rest
 *    waits compressed until the protocol consumed some (conn.c kicks).
 *  - A corrupt stream (or bytes after its final block) is an error that
 *    sticks: no byte is inflated after it, and the connection ends.
 *
 * Memory per compressed connection: the inflater needs the peer's window,
 * which may be the full 32 KiB (1 << 15, plus about 7 KiB of state).  The
 * deflater's cost is ours to choose: zlib takes (1 << (windowBits + 2)) +
 * (1 << (memLevel + 9)) bytes, 256 KiB with the defaults (15, 8), which
 * would multiply the ~40 KiB an idle IMAP connection costs by seven.
 * windowBits 13 and memLevel 6 take 64 KiB; on mail text (headers, FETCH
 * responses, message bodies) that compressed about 10% less well than the
 * defaults in our measurements, a fair price for a quarter of the memory.
 * Base64 attachments gain little from a larger window anyway. */
#include "lib/compress.h"
#include "lib/buf.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define COMPRESS_DEFLATE_WBITS 13
#define COMPRESS_DEFLATE_MEMLEVEL 6
#define COMPRESS_INFLATE_WBITS 15
#define COMPRESS_INFLATE_MAX_DEFAULT (256 * 1024)
/* Output reserved per zlib call; input handed over per call. */
#define COMPRESS_CHUNK (16 * 1024)

struct compress {
	z_stream in, out;
	bool in_ready, out_ready;    /* inflateInit2 / deflateInit2 succeeded */
	bool in_more;                /* the last inflate filled its output space */
	bool in_ended;               /* the peer's final block was seen */
	bool out_unflushed;          /* deflate took input since the last sync flush */
	const char *error;
	size_t inflate_max;
	struct bufferevent *filter;  /* the filter that owns this, once made */
	struct compress_stats stats;
};

struct compress *compress_create(size_t inflate_max, const char **error_r)
{
	struct compress *z = xcalloc(1, sizeof(*z));

	z->inflate_max = inflate_max ? inflate_max : COMPRESS_INFLATE_MAX_DEFAULT;
	if (inflateInit2(&z->in, -COMPRESS_INFLATE_WBITS) != Z_OK) {
		*error_r = "cannot start the inflater";
		compress_destroy(&z);
		return NULL;
	}
	z->in_ready = true;
	if (deflateInit2(&z->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -COMPRESS_DEFLATE_WBITS,
			 COMPRESS_DEFLATE_MEMLEVEL, Z_DEFAULT_STRATEGY) != Z_OK) {
		*error_r = "cannot start the deflater";
		compress_destroy(&z);
		return NULL;
	}
	z->out_ready = true;
	return z;
}

void compress_destroy(struct compress **zp)
{
	struct compress *z = *zp;

	if (z == NULL)
		return;
	if (z->in_ready)
		inflateEnd(&z->in);
	if (z->out_ready)
		deflateEnd(&z->out);
	free(z);
	*zp = NULL;
}

const char *compress_error(const struct compress *z)
{
	return z->error;
}

void compress_get_stats(const struct compress *z, struct compress_stats *st)
{
	*st = z->stats;
}

/* ---- deflate ---- */

/* Run deflate over the input already set in z->out with the given flush
 * mode until it has no more output for now; adds to dst.  0 or -1. */
static int compress_deflate_run(struct compress *z, int flush, struct evbuffer *dst,
				size_t *produced)
{
	do {
		struct evbuffer_iovec v;
		int ret;

		if (evbuffer_reserve_space(dst, COMPRESS_CHUNK, &v, 1) < 1)
			return -1;
		z->out.next_out = v.iov_base;
		z->out.avail_out = (uInt)v.iov_len;
		ret = deflate(&z->out, flush);
		if (ret == Z_STREAM_ERROR)
			return -1;
		v.iov_len -= z->out.avail_out;
		if (v.iov_len > 0 && evbuffer_commit_space(dst, &v, 1) < 0)
			return -1;
		*produced += v.iov_len;
		/* output space left over: deflate has nothing more for now
		 * (Z_BUF_ERROR, "no progress possible", also lands here) */
	} while (z->out.avail_out == 0);
	return 0;
}

ssize_t compress_deflate(struct compress *z, struct evbuffer *src, struct evbuffer *dst,
			 ssize_t limit, const char **error_r)
{
	size_t taken = 0, produced = 0;

	if (z->error != NULL) {
		*error_r = z->error;
		return -1;
	}
	while (evbuffer_get_length(src) > 0 && (limit < 0 || produced < (size_t)limit)) {
		struct evbuffer_iovec in;
		size_t n;

		if (evbuffer_peek(src, -1, NULL, &in, 1) < 1)
			break;
		n = in.iov_len < COMPRESS_CHUNK ? in.iov_len : COMPRESS_CHUNK;
		z->out.next_in = in.iov_base;
		z->out.avail_in = (uInt)n;
		if (compress_deflate_run(z, Z_NO_FLUSH, dst, &produced) < 0)
			goto fail;
		/* with output space left over, deflate took all the input */
		n -= z->out.avail_in;
		z->out.next_in = NULL;
		z->out.avail_in = 0;
		evbuffer_drain(src, n);
		taken += n;
		if (n > 0)
			z->out_unflushed = true;
	}
	if (evbuffer_get_length(src) == 0 && z->out_unflushed) {
		if (compress_deflate_run(z, Z_SYNC_FLUSH, dst, &produced) < 0)
			goto fail;
		z->out_unflushed = false;
	}
	z->stats.out_plain += taken;
	z->stats.out_wire += produced;
	return (ssize_t)taken;
fail:
	z->error = "deflate failed";
	*error_r = z->error;
	return -1;
}

/* ---- inflate ---- */

bool compress_inflate_pending(const struct compress *z, struct evbuffer *src,
			      struct evbuffer *dst)
{
	if (z->error != NULL || evbuffer_get_length(dst) >= z->inflate_max)
		return false;
	return evbuffer_get_length(src) > 0 || z->in_more;
}

static ssize_t compress_inflate_fail(struct compress *z, struct evbuffer *src,
				     const char *error, const char **error_r)
{
	z->error = error;
	*error_r = error;
	/* nothing after a broken stream is ever read: do not keep it */
	evbuffer_drain(src, evbuffer_get_length(src));
	return -1;
}

ssize_t compress_inflate(struct compress *z, struct evbuffer *src, struct evbuffer *dst,
			 const char **error_r)
{
	size_t produced = 0;

	if (z->error != NULL)
		return compress_inflate_fail(z, src, z->error, error_r);
	while ((evbuffer_get_length(src) > 0 || z->in_more) &&
	       evbuffer_get_length(dst) < z->inflate_max) {
		struct evbuffer_iovec in = { NULL, 0 }, out;
		size_t room = z->inflate_max - evbuffer_get_length(dst), used_in, used_out;
		int ret;

		if (z->in_ended)
			return compress_inflate_fail(z, src, "data after the end of the compressed "
						     "stream", error_r);
		if (evbuffer_get_length(src) > 0 && evbuffer_peek(src, -1, NULL, &in, 1) < 1)
			break;
		if (in.iov_len > COMPRESS_CHUNK)
			in.iov_len = COMPRESS_CHUNK;
		if (room > COMPRESS_CHUNK)
			room = COMPRESS_CHUNK;
		if (evbuffer_reserve_space(dst, room, &out, 1) < 1)
			return compress_inflate_fail(z, src, "out of memory", error_r);
		z->in.next_in = in.iov_base;
		z->in.avail_in = (uInt)in.iov_len;
		z->in.next_out = out.iov_base;
		z->in.avail_out = (uInt)room;
		ret = inflate(&z->in, Z_SYNC_FLUSH);
		used_in = in.iov_len - z->in.avail_in;
		used_out = room - z->in.avail_out;
		z->in.next_in = NULL;
		z->in.avail_in = 0;
		if (used_out > 0) {
			out.iov_len = used_out;
			evbuffer_commit_space(dst, &out, 1);
		}
		evbuffer_drain(src, used_in);
		produced += used_out;
		z->stats.in_wire += used_in;
		z->stats.in_plain += used_out;
		z->in_more = used_out == room;
		switch (ret) {
		case Z_OK:
			break;
		case Z_STREAM_END:
			/* RFC 4978 has no end of stream: the peer closes instead.
			 * Anything after the final block is an error (above). */
			z->in_ended = true;
			z->in_more = false;
			break;
		case Z_BUF_ERROR:
			/* no progress possible: input used up mid-block */
			if (used_in == 0 && used_out == 0) {
				z->in_more = false;
				goto done;
			}
			break;
		default:   /* Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR, Z_STREAM_ERROR */
			return compress_inflate_fail(z, src, z->in.msg != NULL ? z->in.msg :
						     "invalid compressed data", error_r);
		}
	}
done:
	return (ssize_t)produced;
}

/* ---- the bufferevent filter ---- */

static enum bufferevent_filter_result compress_filter_in(struct evbuffer *src,
							 struct evbuffer *dst, ev_ssize_t limit,
							 enum bufferevent_flush_mode mode, void *ctx)
{
	(void)limit; (void)mode;   /* no read watermark: inflate_max bounds dst */
	struct compress *z = ctx;
	bool had_error = z->error != NULL;
	const char *error;
	ssize_t n = compress_inflate(z, src, dst, &error);

	if (n < 0) {
		/* libevent drops the filter's return value: report it as an
		 * event (deferred, like every callback of the filter), once */
		if (!had_error && z->filter != NULL)
			bufferevent_trigger_event(z->filter, BEV_EVENT_ERROR | BEV_EVENT_READING, 0);
		return BEV_ERROR;
	}
	return n > 0 ? BEV_OK : BEV_NEED_MORE;
}

static enum bufferevent_filter_result compress_filter_out(struct evbuffer *src,
							  struct evbuffer *dst, ev_ssize_t limit,
							  enum bufferevent_flush_mode mode, void *ctx)
{
	(void)mode;   /* every burst is flushed anyway */
	struct compress *z = ctx;
	const char *error;
	ssize_t n = compress_deflate(z, src, dst, limit, &error);

	if (n < 0) {
		bufferevent_trigger_event(z->filter, BEV_EVENT_ERROR | BEV_EVENT_WRITING, 0);
		return BEV_ERROR;
	}
	return n > 0 ? BEV_OK : BEV_NEED_MORE;
}

static void compress_filter_free(void *ctx)
{
	struct compress *z = ctx;

	compress_destroy(&z);
}

struct bufferevent *compress_filter_new(struct bufferevent *under, size_t inflate_max,
					struct compress **z_r, const char **error_r)
{
	struct compress *z = compress_create(inflate_max, error_r);
	struct bufferevent *bev;

	if (z == NULL)
		return NULL;
	bev = bufferevent_filter_new(under, compress_filter_in, compress_filter_out,
				     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS,
				     compress_filter_free, z);
	if (bev == NULL) {
		compress_destroy(&z);
		*error_r = "cannot create the compression filter";
		return NULL;
	}
	z->filter = bev;
	/* the filter deflates from its output callback: deferred, it runs
	 * once per burst, after the protocol queued a whole reply (it
	 * cannot fail: libevent 2.1 always returns 0) */
	(void)evbuffer_defer_callbacks(bufferevent_get_output(bev), bufferevent_get_base(bev));
	*z_r = z;
	return bev;
}

void compress_filter_kick(struct bufferevent *filter, struct compress *z)
{
	struct bufferevent *under = bufferevent_get_underlying(filter);

	if (under == NULL || !compress_inflate_pending(z, bufferevent_get_input(under),
							bufferevent_get_input(filter)))
		return;
	/* runs the filter's read side on what waits in under's input */
	bufferevent_trigger(under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS);
}
