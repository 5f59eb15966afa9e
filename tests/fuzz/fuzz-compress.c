/* Fuzz target for the COMPRESS=DEFLATE inflater (lib/compress.h): the
 * input is what a client sends after COMPRESS DEFLATE.  It is inflated in
 * chunks the way the connection layer does, draining the output between
 * calls; then the inflated bytes are deflated and inflated back.
 *
 * Invariants checked: a call never adds more than inflate_max bytes to an
 * empty destination; after an error every later call fails too; the
 * round trip of whatever was inflated gives the same bytes back. */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/compress.h"

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz-compress: assertion failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

#define INFLATE_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *error = NULL;
	struct compress *z = compress_create(INFLATE_MAX, &error);
	struct compress *z2 = compress_create(0, &error);
	struct evbuffer *src = evbuffer_new(), *out = evbuffer_new(), *all = evbuffer_new();
	struct evbuffer *packed = evbuffer_new(), *back = evbuffer_new();
	size_t chunk = size > 0 ? (data[0] % 64) + 1 : 1, pos = 0;
	bool failed = false;

	FUZZ_ASSERT(z != NULL && z2 != NULL);
	while (pos < size) {
		size_t n = size - pos < chunk ? size - pos : chunk;
		evbuffer_add(src, data + pos, n);
		pos += n;
		for (int round = 0; round < 10000; round++) {
			ssize_t got = compress_inflate(z, src, out, &error);
			if (got < 0) {
				FUZZ_ASSERT(error != NULL);
				failed = true;
				break;
			}
			FUZZ_ASSERT(evbuffer_get_length(out) <= INFLATE_MAX);
			evbuffer_add_buffer(all, out);
			if (got == 0 && !compress_inflate_pending(z, src, out))
				break;
		}
		if (failed)
			break;
	}
	if (failed) {
		evbuffer_add(src, "x", 1);
		FUZZ_ASSERT(compress_inflate(z, src, out, &error) < 0);
	}
	/* round trip what was inflated */
	size_t total = evbuffer_get_length(all);
	if (total > 0 && total < (1u << 20)) {
		unsigned char *orig = malloc(total);
		evbuffer_copyout(all, orig, total);
		FUZZ_ASSERT(compress_deflate(z2, all, packed, -1, &error) >= 0);
		struct compress *z3 = compress_create(0, &error);
		struct evbuffer *step = evbuffer_new();
		/* each call stops at inflate_max: drain between calls */
		for (int round = 0; round < 100000 && evbuffer_get_length(back) < total; round++) {
			if (compress_inflate(z3, packed, step, &error) <= 0)
				break;
			evbuffer_add_buffer(back, step);
		}
		evbuffer_free(step);
		FUZZ_ASSERT(evbuffer_get_length(back) == total);
		FUZZ_ASSERT(memcmp(evbuffer_pullup(back, -1), orig, total) == 0);
		compress_destroy(&z3);
		free(orig);
	}
	evbuffer_free(src);
	evbuffer_free(out);
	evbuffer_free(all);
	evbuffer_free(packed);
	evbuffer_free(back);
	compress_destroy(&z);
	compress_destroy(&z2);
	return 0;
}
