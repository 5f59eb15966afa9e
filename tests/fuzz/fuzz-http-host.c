/* Fuzz target: the Host header check of an MTA-STS policy request
 * (http_mta_sts_host_domain).  Any bytes: never reads past size, and a
 * domain it accepts is a lowercase host name without CR, LF or NUL. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);
	char *domain = NULL;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);   /* exactly size bytes, no terminator read */
	if (http_mta_sts_host_domain(copy, size, &domain) == 0) {
		size_t n = strlen(domain);
		if (n == 0 || n > 253)
			abort();
		for (size_t i = 0; i < n; i++)
			if (!((domain[i] >= 'a' && domain[i] <= 'z') ||
			      (domain[i] >= '0' && domain[i] <= '9') || domain[i] == '-' ||
			      domain[i] == '.'))
				abort();
		free(domain);
	} else if (domain != NULL) {
		abort();
	}
	free(copy);
	return 0;
}
