/* Fuzz target for the IMAP command reader: the input (after one flag byte)
 * is a client byte stream.  Continuation requests are answered (the stream
 * simply goes on) or refused, as the flag byte says; after IDLE the reader
 * is put in line mode; every complete command goes through the typed
 * parser for its kind, and mailbox arguments through the modified UTF-7
 * decoder and encoder.
 *
 * Input layout: byte 0 = flags (bit 0: LITERAL- instead of LITERAL+; bit 1:
 * small line limit (pre-auth 8 KiB becomes 256); bit 2: small literal limit
 * (64); bit 3: refuse every synchronising literal; bit 4: run the typed
 * parsers in the chunked pass rather than the byte-by-byte one; bit 5:
 * small depth and argument limits), bytes 1.. = the stream.  The stream is
 * read twice, one byte at a time and in chunks of 1..64 chosen by the
 * data.
 *
 * Invariants checked: both passes give the same results at the same stream
 * positions; consumed counts stay within what was fed, NEED_MORE
 * consumes everything, the loop always makes progress; errors carry a
 * kind and a text; tags never hold CR, LF, NUL or SP; the argument tree
 * respects the depth limit; mutf7 decode then encode gives the input back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/parse.h"

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz-imap-command: assertion failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

static unsigned tree_depth(const struct imap_arg *args, size_t n)
{
	unsigned max = 0;

	for (size_t i = 0; i < n; i++) {
		FUZZ_ASSERT(args[i].str.len == 0 || args[i].str.p != NULL);
		if (args[i].type == IMAP_ARG_LIST || args[i].type == IMAP_ARG_SECTION) {
			unsigned d = 1 + tree_depth(args[i].children, args[i].count);
			if (d > max)
				max = d;
		}
	}
	return max;
}

static void check_mailbox(const struct imap_arg *arg)
{
	struct slice s;
	struct buf utf8, back;

	if (!imap_arg_astring(arg, &s))
		return;
	buf_init(&utf8, 1 << 20);
	buf_init(&back, 1 << 20);
	if (imap_mutf7_decode(s, &utf8) == 0) {
		FUZZ_ASSERT(imap_utf8_valid(buf_slice(&utf8)));
		FUZZ_ASSERT(imap_mutf7_encode(buf_slice(&utf8), &back) == 0);
		FUZZ_ASSERT(back.len == s.len && memcmp(back.data ? back.data : "", s.p, s.len) == 0);
	}
	buf_reset(&back);
	if (imap_utf8_valid(s) && imap_mutf7_encode(s, &back) == 0) {
		buf_reset(&utf8);
		FUZZ_ASSERT(imap_mutf7_decode(buf_slice(&back), &utf8) == 0);
		FUZZ_ASSERT(utf8.len == s.len && memcmp(buf_cstr(&utf8), s.p, s.len) == 0);
	}
	buf_free(&utf8);
	buf_free(&back);
}

static void check_err(int ret, const struct imap_parse_error *err)
{
	if (ret < 0)
		FUZZ_ASSERT(err->kind != IMAP_ERR_NONE && err->text != NULL && err->text[0] != '\0');
}

static void typed(const struct imap_command *c)
{
	struct imap_arena a = { 0 };
	struct imap_parse_error err = { 0, NULL };
	int ret = 0;

	switch (c->cmd) {
	case IMAP_CMD_FETCH: {
		struct imap_fetch_request req;
		ret = imap_fetch_parse(c->args, c->nargs, c->uid, &a, &req, &err);
		if (ret == 0)
			FUZZ_ASSERT(req.nitems > 0);
		break;
	}
	case IMAP_CMD_STORE: {
		struct imap_store_request req;
		ret = imap_store_parse(c->args, c->nargs, &a, &req, &err);
		break;
	}
	case IMAP_CMD_SEARCH: {
		struct imap_search_program prog;
		ret = imap_search_parse(c->args, c->nargs, &a, &prog, &err);
		break;
	}
	case IMAP_CMD_STATUS: {
		struct imap_status_request req;
		ret = imap_status_parse(c->args, c->nargs, &req, &err);
		break;
	}
	case IMAP_CMD_LIST: case IMAP_CMD_LSUB: {
		struct imap_list_request req;
		ret = imap_list_parse(c->args, c->nargs, c->cmd == IMAP_CMD_LSUB, &a, &req, &err);
		break;
	}
	case IMAP_CMD_SELECT: case IMAP_CMD_EXAMINE: {
		struct imap_select_request req;
		ret = imap_select_parse(c->args, c->nargs, &a, &req, &err);
		break;
	}
	case IMAP_CMD_APPEND: {
		struct imap_append_request req;
		ret = imap_append_parse(c->args, c->nargs, &a, &req, &err);
		break;
	}
	case IMAP_CMD_COPY: case IMAP_CMD_MOVE: case IMAP_CMD_EXPUNGE:
		if (c->nargs > 0) {
			struct imap_seqset set;
			ret = imap_seqset_parse_arg(&c->args[0], &a, &set, &err);
			if (ret == 0) {
				imap_seqset_resolve(&set, 1000, &a, &set);
				for (size_t i = 1; i < set.count; i++)
					FUZZ_ASSERT(set.ranges[i - 1].hi < set.ranges[i].lo);
			}
		}
		break;
	default:
		break;
	}
	check_err(ret, &err);
	switch (c->cmd) {
	case IMAP_CMD_SELECT: case IMAP_CMD_EXAMINE: case IMAP_CMD_CREATE: case IMAP_CMD_DELETE:
	case IMAP_CMD_RENAME: case IMAP_CMD_SUBSCRIBE: case IMAP_CMD_UNSUBSCRIBE:
	case IMAP_CMD_STATUS: case IMAP_CMD_APPEND:
		if (c->nargs > 0)
			check_mailbox(&c->args[0]);
		break;
	default:
		break;
	}
	imap_arena_clear(&a);
}

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

/* Run the stream through a reader, feeding one byte at a time or in
 * chunks chosen by the data; returns a hash of the result sequence. */
static uint64_t run(const uint8_t *data, size_t size, const struct imap_reader_limits *lim,
		    uint8_t flags, bool bytewise, bool check_typed)
{
	struct imap_reader *r = imap_reader_create(lim);
	size_t pos = 1, rounds = 0;
	uint64_t h = 14695981039346656037ull;

	while (pos < size) {
		struct imap_read_result res;
		size_t n = bytewise ? 1 : 1 + data[pos] % 64;

		if (n > size - pos)
			n = size - pos;
		imap_reader_feed(r, (const char *)data + pos, n, &res);
		FUZZ_ASSERT(res.consumed <= n);
		FUZZ_ASSERT(++rounds <= 4 * size + 16);
		pos += res.consumed;
		if (res.status != IMAP_READ_NEED_MORE) {
			h = mix(h, &res.status, sizeof(res.status));
			h = mix(h, &res.error.kind, sizeof(res.error.kind));
			h = mix(h, &res.cmd.cmd, sizeof(res.cmd.cmd));
			h = mix(h, &res.cmd.nargs, sizeof(res.cmd.nargs));
			h = mix(h, &res.literal_size, sizeof(res.literal_size));
			h = mix(h, res.cmd.tag.p, res.cmd.tag.len);
			h = mix(h, &pos, sizeof(pos));
		}
		switch (res.status) {
		case IMAP_READ_NEED_MORE:
			FUZZ_ASSERT(res.consumed == n);
			break;
		case IMAP_READ_NEED_CONTINUATION:
			FUZZ_ASSERT(res.cmd.tag.len > 0);
			if (flags & 8)
				imap_reader_refuse_literal(r);
			break;
		case IMAP_READ_ERROR:
			FUZZ_ASSERT(res.error.kind != IMAP_ERR_NONE && res.error.text != NULL);
			break;
		case IMAP_READ_OK:
			for (size_t i = 0; i < res.cmd.tag.len; i++) {
				char c = res.cmd.tag.p[i];
				FUZZ_ASSERT(c != '\r' && c != '\n' && c != '\0' && c != ' ');
			}
			if (res.cmd.cmd == IMAP_CMD_LINE || res.cmd.cmd == IMAP_CMD_DONE) {
				FUZZ_ASSERT(memchr(res.cmd.line.p, '\n', res.cmd.line.len) == NULL);
				h = mix(h, res.cmd.line.p, res.cmd.line.len);
				break;
			}
			FUZZ_ASSERT(res.cmd.tag.len > 0 && res.cmd.cmd != IMAP_CMD_UNKNOWN);
			FUZZ_ASSERT(tree_depth(res.cmd.args, res.cmd.nargs) <= lim->max_depth);
			if (check_typed)
				typed(&res.cmd);
			if (res.cmd.cmd == IMAP_CMD_IDLE || res.cmd.cmd == IMAP_CMD_AUTHENTICATE)
				imap_reader_expect_line(r);
			break;
		}
	}
	imap_reader_destroy(&r);
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_reader_limits lim = {
		IMAP_MAX_LINE_PREAUTH, 1 << 20, IMAP_MAX_ARGS, IMAP_MAX_DEPTH, false,
	};
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	lim.literal_minus = flags & 1;
	if (flags & 2)
		lim.max_line = 256;
	if (flags & 4)
		lim.max_literal = 64;
	if (flags & 32) {
		lim.max_depth = 3;
		lim.max_args = 16;
	}
	/* the reader is resumable: byte-by-byte and chunked feeding must give
	 * the same results at the same stream positions */
	uint64_t a = run(data, size, &lim, flags, true, !(flags & 16));
	uint64_t b = run(data, size, &lim, flags, false, (flags & 16) != 0);
	FUZZ_ASSERT(a == b);
	return 0;
}
