/* Fuzz target: the search index's text extraction (store/search-extract.c)
 * on arbitrary bytes as a message, and search_fold() on them as a key.
 * Checks the invariants the index relies on: every column is valid UTF-8
 * without NUL bytes, the headers column is whole "name: value\n" lines,
 * and folding twice changes nothing more than folding once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "store/search-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_column(const struct buf *b)
{
	if (u8_check((const uint8_t *)buf_cstr(b), b->len) != NULL)
		panic("column is not valid UTF-8");
	if (memchr(buf_cstr(b), '\0', b->len) != NULL)
		panic("NUL in a column");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct search_doc d;
	struct buf once, twice;

	search_doc_init(&d);
	search_doc_extract((const char *)data, size, &d);
	check_column(&d.from);
	check_column(&d.to);
	check_column(&d.cc);
	check_column(&d.bcc);
	check_column(&d.subject);
	check_column(&d.headers);
	check_column(&d.body);
	if (d.headers.len > 0 && d.headers.data[d.headers.len - 1] != '\n')
		panic("headers column does not end a line");
	for (const char *p = buf_cstr(&d.headers); *p; p = strchr(p, '\n') + 1)
		if (strstr(p, ": ") == NULL || strstr(p, ": ") > strchr(p, '\n'))
			panic("header line without \": \"");
	search_doc_free(&d);

	buf_init(&once, BUF_UNLIMITED);
	buf_init(&twice, BUF_UNLIMITED);
	search_fold((const char *)data, size, &once);
	check_column(&once);
	search_fold(buf_cstr(&once), once.len, &twice);
	if (once.len != twice.len || memcmp(buf_cstr(&once), buf_cstr(&twice), once.len) != 0)
		panic("folding is not idempotent");
	buf_free(&once);
	buf_free(&twice);
	return 0;
}
