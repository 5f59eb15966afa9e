/* Fuzz target for message previews (mail/preview.h): the input is a whole
 * message as delivered, and also an HTML body.
 *
 * Invariants checked: the preview is valid UTF-8 of at most
 * PREVIEW_MAX_CHARS characters, holds no control characters, and has no
 * leading, trailing or doubled space. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/preview.h"

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz-preview: assertion failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

static void check_text(const char *p)
{
	size_t n = strlen(p), chars = 0;

	FUZZ_ASSERT(n == 0 || (p[0] != ' ' && p[n - 1] != ' '));
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		FUZZ_ASSERT(c >= 0x20 && c != 0x7f);
		FUZZ_ASSERT(!(c == ' ' && p[i + 1] == ' '));
		if ((c & 0xc0) != 0x80)
			chars++;
	}
	FUZZ_ASSERT(chars <= PREVIEW_MAX_CHARS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = preview_from_message((const char *)data, size);
	struct buf html, norm;

	check_text(p);
	free(p);
	buf_init(&html, BUF_UNLIMITED);
	preview_html_to_text((const char *)data, size, &html);
	buf_init(&norm, BUF_UNLIMITED);
	preview_normalize(buf_cstr(&html), html.len, PREVIEW_MAX_CHARS, &norm);
	check_text(buf_cstr(&norm));
	buf_free(&html);
	buf_free(&norm);
	return 0;
}
