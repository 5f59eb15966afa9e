/* Fuzz target: config_parse_string() on arbitrary text.  It must never
 * crash, leak or read out of bounds, whatever libconfig accepts or
 * rejects; every outcome is either a config or an error message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libconfig 1.5 itself leaks its pending string buffer when a syntax error
 * follows a string token (scanner bugs, fixed upstream in later releases);
 * leaks whose stack passes through libconfig are ignored; any leak of ours
 * is still reported. */
const char *__lsan_default_suppressions(void)
{
	return "leak:libconfig\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xmalloc(size + 1);
	char *error = NULL;
	struct config *cfg;

	memcpy(text, data, size);
	text[size] = '\0';
	cfg = config_parse_string(text, "fuzz.conf", &error);
	if (cfg == NULL && error == NULL)
		abort();
	if (cfg != NULL && (cfg->hostname == NULL || cfg->data_dir[0] != '/'))
		abort();
	config_free(&cfg);
	free(error);
	free(text);
	return 0;
}
