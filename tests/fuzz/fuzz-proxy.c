/* Fuzz target: lib/proxy on arbitrary bytes.  proxy_parse() on the whole
 * input and, for short inputs, on every prefix, checking the incremental
 * contract: NEED_MORE until a verdict, an ERROR never turns into anything
 * else with more bytes, an OK keeps the same length, and the parser never
 * waits for more than PROXY_V2_MAX bytes.  The input's lines are also used
 * as proxy_trusted entries against the parsed source address. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum proxy_status parse(const uint8_t *data, size_t n, struct proxy_info *info,
			       size_t *consumed)
{
	unsigned char *copy = xmalloc(n);   /* exact size: ASan sees over-reads */
	const char *err = NULL;
	enum proxy_status st;

	memcpy(copy, data, n);
	st = proxy_parse(copy, n, info, consumed, &err);
	free(copy);
	if (st == PROXY_ERROR && err == NULL)
		panic("proxy error without a message");
	if (st == PROXY_OK && (*consumed == 0 || *consumed > n))
		panic("bad consumed length");
	if (st == PROXY_NEED_MORE && n >= PROXY_V2_MAX)
		panic("waiting past PROXY_V2_MAX");
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_info info;
	size_t consumed = 0, first_consumed = 0;
	enum proxy_status st, verdict = PROXY_NEED_MORE;

	if (size <= 512) {
		for (size_t n = 0; n <= size; n++) {
			st = parse(data, n, &info, &consumed);
			if (verdict == PROXY_ERROR && st != PROXY_ERROR)
				panic("an error turned into something else");
			if (verdict == PROXY_OK && (st != PROXY_OK || consumed != first_consumed))
				panic("an accepted header changed with more bytes");
			if (verdict == PROXY_NEED_MORE && st != PROXY_NEED_MORE) {
				verdict = st;
				first_consumed = consumed;
			}
		}
	}
	st = parse(data, size, &info, &consumed);
	if (st == PROXY_OK && !info.local) {
		/* the input's lines as trusted entries */
		char *text = xstrndup((const char *)data, size);
		const char *cidrs[16];
		unsigned n = 0;
		for (char *p = text, *nl; p != NULL && n < 16; p = nl) {
			nl = strchr(p, '\n');
			if (nl != NULL)
				*nl++ = '\0';
			cidrs[n++] = p;
		}
		proxy_addr_trusted((const struct sockaddr *)&info.src, cidrs, n);
		proxy_addr_trusted((const struct sockaddr *)&info.dst, cidrs, n);
		free(text);
	}
	return 0;
}
