/* libFuzzer target for finding our own ARC set on top of a queued message
 * (sign_hook_arc_top, src/queue/sign-hook-arc.c; RFC 8617 section 4.1
 * fields, RFC 6376 section 3.2 tag lists).
 *
 * Any bytes are a message.  Checked: a hit never claims more bytes than
 * the message has and ends on a line end; the instance is 1..50 and cv=
 * matches it (none for 1, pass above); the domain holds no white space,
 * CR, LF or NUL; the AAR payload holds no NUL; a miss leaves the set
 * empty; finding it again in the same bytes gives the same answer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/sign-hook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct sign_hook_arc_set a, b;
	size_t n = sign_hook_arc_top(msg, size, &a);
	size_t m = sign_hook_arc_top(msg, size, &b);

	if (n != m)
		abort();
	if (n == 0) {
		if (a.domain != NULL || a.aar != NULL || a.instance != 0)
			abort();
		return 0;
	}
	if (n > size || msg[n - 1] != '\n')
		abort();
	if (a.instance < 1 || a.instance > 50 || a.cv_pass != (a.instance > 1))
		abort();
	if (a.domain == NULL || a.aar == NULL || strcmp(a.domain, b.domain) != 0 ||
	    strcmp(a.aar, b.aar) != 0 || a.instance != b.instance)
		abort();
	if (strpbrk(a.domain, " \t\r\n") != NULL || a.domain[0] == '\0')
		abort();
	sign_hook_arc_set_free(&a);
	sign_hook_arc_set_free(&b);
	return 0;
}
