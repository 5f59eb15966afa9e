/* Raw DEFLATE (RFC 1951) in both directions of a connection, for IMAP
 * COMPRESS=DEFLATE (RFC 4978): the two zlib streams over evbuffers, and a
 * libevent filter bufferevent that puts them between a protocol and the
 * stream below it (the socket, or TLS).  lib/conn.c stacks the filter;
 * protocols only see plain bytes. */
#ifndef TERN_LIB_COMPRESS_H
#define TERN_LIB_COMPRESS_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct compress;

/* Bytes through one compressed connection so far. */
struct compress_stats {
	uint64_t in_wire, in_plain;     /* received compressed, and after inflating */
	uint64_t out_plain, out_wire;   /* sent before deflating, and compressed */
};

/* Create the inflater (32 KiB window: the peer may use any) and the
 * deflater (a smaller window and memLevel: see compress.c).  Inflating
 * stops once the destination holds inflate_max bytes (0: 256 KiB), so a
 * small compressed input never grows unbounded in memory.  Returns NULL
 * with *error_r when zlib cannot start (out of memory). */
struct compress *compress_create(size_t inflate_max, const char **error_r);
/* Free both streams and set *z to NULL (NULL is fine). */
void compress_destroy(struct compress **z);

/* Deflate bytes from src into dst and drain what was taken: stops when
 * src is empty or dst grew by limit bytes or more (limit < 0: no limit).
 * When src is empty at the end, every byte given so far is flushed
 * (Z_SYNC_FLUSH), so the peer can inflate all of it now.  Returns the
 * bytes taken from src, or -1 with *error_r (a zlib bug: never from peer
 * data). */
ssize_t compress_deflate(struct compress *z, struct evbuffer *src, struct evbuffer *dst,
			 ssize_t limit, const char **error_r);

/* Inflate bytes from src into dst and drain what was used: stops when
 * src is used up (and the inflater holds no more output) or dst holds
 * inflate_max bytes.  Returns the bytes added to dst, or -1 with *error_r
 * when the peer's data is not a valid raw DEFLATE stream (or continues
 * past its last block); every later call fails the same way. */
ssize_t compress_inflate(struct compress *z, struct evbuffer *src, struct evbuffer *dst,
			 const char **error_r);

/* Would compress_inflate() produce more from src now (input waits, or
 * the inflater holds output it could not give, dst permitting)? */
bool compress_inflate_pending(const struct compress *z, struct evbuffer *src,
			      struct evbuffer *dst);

/* The error that stopped the streams, or NULL. */
const char *compress_error(const struct compress *z);
/* Byte counts so far. */
void compress_get_stats(const struct compress *z, struct compress_stats *st);

/* A filter bufferevent over under (which it owns from now on: freed with
 * it) that inflates what under reads and deflates what is written to it,
 * flushing at the end of each burst of output (output callbacks are
 * deferred to the event loop, so a burst is whatever one callback
 * queued).  Its callbacks are deferred too.  The filter owns the stream
 * state; *z_r points to it while the filter lives.  A corrupt input
 * stream raises BEV_EVENT_ERROR | BEV_EVENT_READING on the filter, with
 * compress_error() set.  Returns NULL with *error_r. */
struct bufferevent *compress_filter_new(struct bufferevent *under, size_t inflate_max,
					struct compress **z_r, const char **error_r);

/* Inflate input that waits in the layer below now: libevent runs the
 * filter only when new bytes arrive there, so bytes left behind by the
 * inflate_max bound (or pipelined before the filter existed) need this
 * once the protocol consumed some.  The filter's read callback follows
 * (deferred) when anything was inflated. */
void compress_filter_kick(struct bufferevent *filter, struct compress *z);

#endif
