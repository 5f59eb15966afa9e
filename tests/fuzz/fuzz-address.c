/* Fuzz target: mail/address on arbitrary bytes, under every flag
 * combination: address_parse_path(), address_parse_list() and
 * address_domain_valid().  Beyond not crashing, it checks the promises
 * callers rely on: a path never claims more bytes than it was given, a
 * parsed address holds no control character, non-ASCII appears only with
 * ADDRESS_ALLOW_UTF8, and formatting a parsed address and parsing the
 * result again gives the same address. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "mail/address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ALL_FLAGS (ADDRESS_ALLOW_NULL | ADDRESS_ALLOW_UTF8 | ADDRESS_ALLOW_POSTMASTER | \
		   ADDRESS_ALLOW_NO_BRACKETS)

static void check_clean(const char *s, unsigned flags)
{
	for (const unsigned char *p = (const unsigned char *)s; s != NULL && *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			panic("control character in a parsed address");
		if (*p >= 0x80 && !(flags & ADDRESS_ALLOW_UTF8))
			panic("non-ASCII address without ADDRESS_ALLOW_UTF8");
	}
}

static void check_address(const struct address *a, unsigned flags)
{
	check_clean(a->local, flags);
	check_clean(a->domain, flags);
	if (a->domain != NULL && !address_domain_valid(a->domain, strlen(a->domain),
						      flags & ADDRESS_ALLOW_UTF8))
		panic("parsed domain is not valid");
	if (a->local == NULL || a->domain == NULL)
		return;
	/* round trip through address_format() */
	char *f = address_format(a);
	char *br = xasprintf("<%s>", f);
	struct address b;
	const char *err;
	int r = address_parse_path(br, strlen(br), flags & ADDRESS_ALLOW_UTF8, &b, &err);
	/* a formatted local part may exceed the path limits only if quoting
	 * grew it; anything else must parse back to the same address */
	if (r >= 0) {
		char *g = address_format(&b);
		if (strcmp(f, g) != 0 || strcmp(a->local, b.local) != 0 ||
		    strcmp(a->domain, b.domain) != 0)
			panic("address round trip changed it");
		free(g);
		address_clear(&b);
	} else if (strlen(br) <= ADDRESS_MAX_PATH && strlen(f) - strlen(a->domain) - 1 <= ADDRESS_MAX_LOCAL) {
		panic("formatted address does not parse again: %s", err);
	}
	free(br);
	free(f);
}

static void list_cb(void *ctx, const struct address *a)
{
	check_address(a, *(unsigned *)ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so ASan sees any read past the end */
	char *s = xmalloc(size);
	memcpy(s, data, size);
	for (unsigned flags = 0; flags <= ALL_FLAGS; flags++) {
		struct address a;
		const char *err = NULL;
		int r = address_parse_path(s, size, flags, &a, &err);
		if (r >= 0) {
			if ((size_t)r > size)
				panic("path consumed more than it got");
			check_address(&a, flags);
			address_clear(&a);
		} else if (err == NULL || a.local != NULL || a.domain != NULL) {
			panic("path error without a message, or with an address left");
		}
		err = NULL;
		r = address_parse_list(s, size, flags, list_cb, &flags, &err);
		if (r < 0 && err == NULL)
			panic("list error without a message");
	}
	address_domain_valid(s, size, false);
	address_domain_valid(s, size, true);
	free(s);
	return 0;
}
