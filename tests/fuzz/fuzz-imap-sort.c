/* Fuzz target for SORT and THREAD arguments (imap/sort.h): the input
 * becomes the arguments of "t SORT " + input + CRLF and of "t THREAD " +
 * input + CRLF (literals announced as {n+}); each parse that succeeds hands
 * its search keys to imap_search_parse.  The input is also split at '\n'
 * into up to 64 messages (each line serves as subject, Message-ID,
 * In-Reply-To and References) that are sorted by every key and threaded
 * by both algorithms.
 *
 * Invariants checked: success and failure are exclusive and failures
 * carry a kind and a text; a parsed SORT has 1..IMAP_SORT_MAX_CRITERIA
 * criteria and at least one search key inside the argument array; sorting
 * keeps every message exactly once; a THREAD answer has balanced
 * parentheses and names every message exactly once. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/sort.h"
#include "mail/base-subject.h"

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz-imap-sort: assertion failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

#define MAX_MSGS 64

static void check_err(int ret, const struct imap_parse_error *err)
{
	if (ret < 0)
		FUZZ_ASSERT(err->kind != IMAP_ERR_NONE && err->text != NULL && err->text[0] != '\0');
}

static void search_keys(const struct imap_arg *keys, size_t nkeys)
{
	struct imap_arena a = { 0 };
	struct imap_search_program prog;
	struct imap_parse_error err = { 0, NULL };

	check_err(imap_search_parse(keys, nkeys, &a, &prog, &err), &err);
	imap_arena_clear(&a);
}

static void typed(const struct imap_command *c)
{
	struct imap_parse_error err = { 0, NULL };
	int ret;

	if (c->cmd == IMAP_CMD_SORT) {
		struct imap_sort_request req;
		ret = imap_sort_parse(c->args, c->nargs, &req, &err);
		check_err(ret, &err);
		if (ret == 0) {
			FUZZ_ASSERT(req.ncrit >= 1 && req.ncrit <= IMAP_SORT_MAX_CRITERIA);
			FUZZ_ASSERT(req.nkeys >= 1 && req.keys > c->args &&
				    req.keys + req.nkeys == c->args + c->nargs);
			search_keys(req.keys, req.nkeys);
		}
	} else {
		struct imap_thread_request req;
		ret = imap_thread_parse(c->args, c->nargs, &req, &err);
		check_err(ret, &err);
		if (ret == 0) {
			FUZZ_ASSERT(req.nkeys >= 1 && req.keys + req.nkeys == c->args + c->nargs);
			search_keys(req.keys, req.nkeys);
		}
	}
}

static void parse_as(const char *cmd, const uint8_t *data, size_t size)
{
	struct imap_reader_limits lim = {
		IMAP_MAX_LINE, 1 << 20, IMAP_MAX_ARGS, IMAP_MAX_DEPTH, false,
	};
	struct imap_reader *r = imap_reader_create(&lim);
	struct imap_read_result res;
	struct buf line;
	size_t pos = 0;

	buf_init(&line, BUF_UNLIMITED);
	buf_append_str(&line, cmd);
	buf_append(&line, data, size);
	buf_append_str(&line, "\r\n");
	while (pos < line.len) {
		imap_reader_feed(r, line.data + pos, line.len - pos, &res);
		FUZZ_ASSERT(res.consumed <= line.len - pos);
		pos += res.consumed;
		if (res.status == IMAP_READ_OK &&
		    (res.cmd.cmd == IMAP_CMD_SORT || res.cmd.cmd == IMAP_CMD_THREAD))
			typed(&res.cmd);
		if (res.status == IMAP_READ_OK || res.status == IMAP_READ_ERROR ||
		    res.status == IMAP_READ_NEED_MORE)
			break;
	}
	buf_free(&line);
	imap_reader_destroy(&r);
}

/* Every number 1..n once, parentheses balanced, never below zero. */
static void check_threads(const char *s, size_t n)
{
	unsigned char seen[MAX_MSGS + 1] = { 0 };
	long depth = 0;

	for (const char *p = s; *p;) {
		if (*p == '(') {
			depth++;
			p++;
		} else if (*p == ')') {
			FUZZ_ASSERT(--depth >= 0);
			p++;
		} else if (*p == ' ') {
			p++;
		} else {
			char *end;
			unsigned long v = strtoul(p, &end, 10);
			FUZZ_ASSERT(end != p && v >= 1 && v <= n && !seen[v]);
			seen[v] = 1;
			p = end;
		}
	}
	FUZZ_ASSERT(depth == 0);
	for (size_t i = 1; i <= n; i++)
		FUZZ_ASSERT(seen[i]);
}

static void messages(const uint8_t *data, size_t size)
{
	struct imap_sort_msg m[MAX_MSGS], copy[MAX_MSGS];
	char *text = malloc(size + 1);
	size_t n = 0, start = 0;

	memcpy(text, data, size);
	text[size] = '\0';
	for (size_t i = 0; i <= size && n < MAX_MSGS; i++) {
		if (i < size && text[i] != '\n')
			continue;
		text[i] = '\0';
		const char *l = text + start;
		m[n] = (struct imap_sort_msg){
			.seq = (uint32_t)n + 1, .uid = (uint32_t)n + 1,
			.internal_date = (time_t)(i % 7), .sent_date = (time_t)(start % 5),
			.size = (int64_t)(i - start), .subject = l, .from_mailbox = l,
			.to_display = l, .message_id = l, .in_reply_to = l,
			.references = n > 0 ? m[n - 1].subject : l,
		};
		n++;
		start = i + 1;
	}
	for (int alg = 0; alg < 2; alg++) {
		struct buf out;
		buf_init(&out, BUF_UNLIMITED);
		imap_thread_messages(m, n, (enum imap_thread_algorithm)alg, false, &out);
		check_threads(buf_cstr(&out), n);
		buf_free(&out);
	}
	for (int k = IMAP_SORT_ARRIVAL; k <= IMAP_SORT_DISPLAYTO; k++) {
		struct imap_sort_criterion crit[2] = {
			{ (enum imap_sort_key)k, k % 2 == 0 }, { IMAP_SORT_SUBJECT, true },
		};
		unsigned char seen[MAX_MSGS + 1] = { 0 };
		memcpy(copy, m, n * sizeof(m[0]));
		imap_sort_messages(copy, n, crit, 2);
		for (size_t i = 0; i < n; i++) {
			FUZZ_ASSERT(copy[i].seq >= 1 && copy[i].seq <= n && !seen[copy[i].seq]);
			seen[copy[i].seq] = 1;
		}
	}
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf b;

	parse_as("t SORT ", data, size);
	parse_as("t UID THREAD ", data, size);
	buf_init(&b, BUF_UNLIMITED);
	FUZZ_ASSERT(base_subject((const char *)data, size, &b, NULL) == 0);
	FUZZ_ASSERT(b.len <= size);
	buf_free(&b);
	messages(data, size);
	return 0;
}
