/* Fuzz target for the typed IMAP argument parsers on parsed trees: the
 * input becomes the arguments of one command ("t SEARCH " + input + CRLF,
 * literals announced as {n+}), and the same argument tree goes through the
 * SEARCH, FETCH (and UID FETCH), STORE, STATUS, LIST, LSUB, SELECT and
 * APPEND parsers; the raw input also goes through the sequence-set parser,
 * resolved against a maximum taken from its length.
 *
 * Invariants checked: success and failure are exclusive and failures
 * carry a kind and a text; SEARCH ASTs respect the nesting bound and every
 * node's children count matches its type; resolved sequence sets are
 * sorted, disjoint, non-adjacent and agree with membership tests; dates
 * are in range. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/parse.h"

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz-imap-search: assertion failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

static void check_err(int ret, const struct imap_parse_error *err)
{
	if (ret < 0)
		FUZZ_ASSERT(err->kind != IMAP_ERR_NONE && err->text != NULL && err->text[0] != '\0');
}

static void check_set(const struct imap_seqset *set)
{
	if (set->has_star || set->saved)
		return;
	for (size_t i = 0; i < set->count; i++) {
		FUZZ_ASSERT(set->ranges[i].lo >= 1 && set->ranges[i].lo <= set->ranges[i].hi);
		FUZZ_ASSERT(imap_seqset_contains(set, set->ranges[i].lo));
		FUZZ_ASSERT(imap_seqset_contains(set, set->ranges[i].hi));
		if (i > 0) {
			FUZZ_ASSERT((uint64_t)set->ranges[i - 1].hi + 1 < set->ranges[i].lo);
			FUZZ_ASSERT(!imap_seqset_contains(set, set->ranges[i].lo - 1));
		}
	}
}

static unsigned check_key(const struct imap_search_key *k)
{
	unsigned depth = 0;

	switch (k->type) {
	case IMAP_SK_AND:
		FUZZ_ASSERT(k->count >= 1);
		break;
	case IMAP_SK_OR:
		FUZZ_ASSERT(k->count == 2);
		break;
	case IMAP_SK_NOT:
		FUZZ_ASSERT(k->count == 1);
		break;
	case IMAP_SK_SEQSET: case IMAP_SK_UID:
		check_set(&k->set);
		break;
	case IMAP_SK_BEFORE: case IMAP_SK_ON: case IMAP_SK_SINCE: case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON: case IMAP_SK_SENTSINCE:
		FUZZ_ASSERT(k->date.month >= 1 && k->date.month <= 12 && k->date.day >= 1 &&
			    k->date.day <= 31);
		break;
	default:
		FUZZ_ASSERT(k->count == 0);
		break;
	}
	for (size_t i = 0; i < k->count; i++) {
		unsigned d = check_key(&k->children[i]);
		if (d > depth)
			depth = d;
	}
	return depth + 1;
}

static void typed(const struct imap_command *c)
{
	struct imap_arena a = { 0 };
	struct imap_parse_error err = { 0, NULL };
	int ret;

	{
		struct imap_search_program prog;
		ret = imap_search_parse(c->args, c->nargs, &a, &prog, &err);
		check_err(ret, &err);
		if (ret == 0)
			FUZZ_ASSERT(check_key(&prog.root) <= IMAP_MAX_SEARCH_DEPTH + 1);
	}
	for (int uid = 0; uid < 2; uid++) {
		struct imap_fetch_request req;
		ret = imap_fetch_parse(c->args, c->nargs, uid, &a, &req, &err);
		check_err(ret, &err);
		if (ret == 0) {
			FUZZ_ASSERT(req.nitems > 0 && (uid || !req.vanished));
			check_set(&req.set);
			for (size_t i = 0; i < req.nitems; i++) {
				FUZZ_ASSERT(req.items[i].nparts <= IMAP_MAX_SECTION_PARTS);
				FUZZ_ASSERT(!req.items[i].partial || req.items[i].length > 0);
			}
		}
	}
	{
		struct imap_store_request req;
		ret = imap_store_parse(c->args, c->nargs, &a, &req, &err);
		check_err(ret, &err);
		if (ret == 0)
			for (size_t i = 0; i < req.flags.nkeywords; i++)
				FUZZ_ASSERT(imap_is_atom(req.flags.keywords[i]));
	}
	{
		struct imap_status_request req;
		check_err(imap_status_parse(c->args, c->nargs, &req, &err), &err);
	}
	for (int lsub = 0; lsub < 2; lsub++) {
		struct imap_list_request req;
		ret = imap_list_parse(c->args, c->nargs, lsub, &a, &req, &err);
		check_err(ret, &err);
		if (ret == 0)
			FUZZ_ASSERT(req.npatterns >= 1);
	}
	{
		struct imap_select_request req;
		check_err(imap_select_parse(c->args, c->nargs, &a, &req, &err), &err);
	}
	{
		struct imap_append_request req;
		check_err(imap_append_parse(c->args, c->nargs, &a, &req, &err), &err);
	}
	imap_arena_clear(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_reader_limits lim = {
		IMAP_MAX_LINE, 1 << 20, IMAP_MAX_ARGS, IMAP_MAX_DEPTH, false,
	};
	struct imap_reader *r = imap_reader_create(&lim);
	struct imap_arena a = { 0 };
	struct imap_parse_error err;
	struct imap_seqset set;
	struct imap_read_result res;
	struct buf line;

	/* the raw input as a sequence set */
	if (imap_seqset_parse((struct slice){ (const char *)data, size }, &a, &set, &err) == 0) {
		check_set(&set);
		imap_seqset_resolve(&set, (uint32_t)size, &a, &set);
		check_set(&set);
		FUZZ_ASSERT(imap_seqset_size(&set) <= UINT32_MAX);
	} else {
		check_err(-1, &err);
	}
	imap_arena_clear(&a);

	buf_init(&line, BUF_UNLIMITED);
	buf_append_str(&line, "t SEARCH ");
	buf_append(&line, data, size);
	buf_append_str(&line, "\r\n");
	size_t pos = 0;
	while (pos < line.len) {
		imap_reader_feed(r, line.data + pos, line.len - pos, &res);
		FUZZ_ASSERT(res.consumed <= line.len - pos);
		pos += res.consumed;
		if (res.status == IMAP_READ_OK && res.cmd.cmd == IMAP_CMD_SEARCH)
			typed(&res.cmd);
		if (res.status == IMAP_READ_OK || res.status == IMAP_READ_ERROR ||
		    res.status == IMAP_READ_NEED_MORE)
			break;
	}
	buf_free(&line);
	imap_reader_destroy(&r);
	return 0;
}
