/* Fuzz target for the METADATA parsers (RFC 5464): the input becomes the
 * arguments of one command ("t GETMETADATA " + input + CRLF, literals as
 * {n+}) whose argument tree goes through both the GETMETADATA and the
 * SETMETADATA parser; the raw input also goes through the entry-name
 * check.
 *
 * Invariants checked: success and failure are exclusive and failures carry
 * a text; every parsed entry name passes the entry-name check, is
 * lowercase and within the length bound; counts stay within
 * IMAP_METADATA_MAX_ITEMS; DEPTH is 0, 1 or -1; a SETMETADATA request
 * names no entry twice and a NIL value has no bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/metadata.h"

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz-imap-metadata: assertion failed: %s (line %d)\n", #c, \
			__LINE__); \
		abort(); \
	} \
} while (0)

static void check_entry(const char *e, bool top_allowed)
{
	struct slice s = { e, strlen(e) };

	FUZZ_ASSERT(imap_metadata_entry_valid(s, top_allowed));
	FUZZ_ASSERT(s.len <= IMAP_METADATA_MAX_ENTRY);
	for (size_t i = 0; i < s.len; i++)
		FUZZ_ASSERT(!(e[i] >= 'A' && e[i] <= 'Z'));
}

static void typed(const struct imap_command *c)
{
	struct imap_arena a = { 0 };
	struct imap_parse_error err = { 0, NULL };
	struct imap_getmetadata_request g;
	struct imap_setmetadata_request st;
	int ret;

	ret = imap_getmetadata_parse(c->args, c->nargs, &a, &g, &err);
	if (ret < 0) {
		FUZZ_ASSERT(err.text != NULL && err.text[0] != '\0');
	} else {
		FUZZ_ASSERT(g.nentries >= 1 && g.nentries <= IMAP_METADATA_MAX_ITEMS);
		FUZZ_ASSERT(g.depth == 0 || g.depth == 1 || g.depth == -1);
		for (size_t i = 0; i < g.nentries; i++)
			check_entry(g.entries[i], true);
	}
	err = (struct imap_parse_error){ 0, NULL };
	ret = imap_setmetadata_parse(c->args, c->nargs, &a, &st, &err);
	if (ret < 0) {
		FUZZ_ASSERT(err.text != NULL && err.text[0] != '\0');
	} else {
		FUZZ_ASSERT(st.count >= 1 && st.count <= IMAP_METADATA_MAX_ITEMS);
		for (size_t i = 0; i < st.count; i++) {
			check_entry(st.values[i].entry, false);
			FUZZ_ASSERT(!st.values[i].nil || st.values[i].value.len == 0);
			for (size_t k = 0; k < i; k++)
				FUZZ_ASSERT(strcmp(st.values[i].entry, st.values[k].entry) != 0);
		}
	}
	imap_arena_clear(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_reader_limits lim = {
		IMAP_MAX_LINE, 1 << 20, IMAP_MAX_ARGS, IMAP_MAX_DEPTH, false,
	};
	struct imap_reader *r = imap_reader_create(&lim);
	struct imap_read_result res;
	struct buf line;
	size_t pos = 0;

	(void)imap_metadata_entry_valid((struct slice){ (const char *)data, size }, true);
	buf_init(&line, BUF_UNLIMITED);
	buf_append_str(&line, "t GETMETADATA ");
	buf_append(&line, data, size);
	buf_append_str(&line, "\r\n");
	while (pos < line.len) {
		imap_reader_feed(r, line.data + pos, line.len - pos, &res);
		FUZZ_ASSERT(res.consumed <= line.len - pos);
		pos += res.consumed;
		if (res.status == IMAP_READ_OK && res.cmd.cmd == IMAP_CMD_GETMETADATA)
			typed(&res.cmd);
		if (res.status == IMAP_READ_OK || res.status == IMAP_READ_ERROR ||
		    res.status == IMAP_READ_NEED_MORE)
			break;
	}
	buf_free(&line);
	imap_reader_destroy(&r);
	return 0;
}
