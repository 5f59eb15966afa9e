/* The Public Suffix List test vectors (../shared/testdata/dmarc/psl/
 * test_psl.txt, or $TERN_SHARED_TESTDATA) against dmarc_psl_registrable()
 * over the system's list (libpsl's newest of its built-in and Debian's
 * publicsuffix data).  Each checkPublicSuffix() line not commented out is
 * one test; a failing one prints what came back. */
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "mailauth/dmarc.h"
#include "unit.h"

static const char *shared_dir(void)
{
	const char *dir = getenv("TERN_SHARED_TESTDATA");
	return dir != NULL ? dir : "../shared/testdata";
}

/* The argument at *p: 'text' (copied into out) or null.  Returns 1 for a
 * string, 0 for null, -1 on a syntax error; *p moves past it. */
static int arg(const char **p, char *out, size_t size)
{
	const char *s = *p;

	while (*s == ' ' || *s == ',')
		s++;
	if (strncmp(s, "null", 4) == 0) {
		*p = s + 4;
		return 0;
	}
	if (*s != '\'')
		return -1;
	const char *end = strchr(s + 1, '\'');
	if (end == NULL || (size_t)(end - s - 1) >= size)
		return -1;
	memcpy(out, s + 1, (size_t)(end - s - 1));
	out[end - s - 1] = '\0';
	*p = end + 1;
	return 1;
}

static struct dmarc_psl *psl;
static int vectors;

static void check_line(const char *line)
{
	char in[512], want[512];
	const char *p = line + strlen("checkPublicSuffix(");
	int hin = arg(&p, in, sizeof(in));
	int hwant = arg(&p, want, sizeof(want));

	vectors++;
	unit_cur_name = line;
	unit_cur_failed = 0;
	CHECK(hin >= 0 && hwant >= 0);
	if (hin >= 0 && hwant >= 0) {
		char *got = dmarc_psl_registrable(psl, hin ? in : NULL);
		if (hwant == 0) {
			if (got != NULL)
				fprintf(stderr, "  FAIL %s: got '%s', expected null\n", line, got);
			CHECK(got == NULL);
		} else {
			if (got == NULL || strcmp(got, want) != 0)
				fprintf(stderr, "  FAIL %s: got '%s'\n", line, got ? got : "null");
			CHECK(got != NULL && strcmp(got, want) == 0);
		}
		free(got);
	}
	if (unit_cur_failed)
		unit_failed++;
	else
		unit_passed++;
}

int main(void)
{
	const char *error = NULL;
	char path[4096];

	log_set_level(LOG_LEVEL_ERROR);
	psl = dmarc_psl_open(NULL, &error);
	if (psl == NULL) {
		fprintf(stderr, "cannot load the PSL: %s\n", error);
		unit_failed++;
		return unit_summary("dmarc-psl");
	}
	snprintf(path, sizeof(path), "%s/dmarc/psl/test_psl.txt", shared_dir());
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "cannot open %s\n", path);
		unit_failed++;
	} else {
		char line[1024];
		while (fgets(line, sizeof(line), f) != NULL) {
			line[strcspn(line, "\r\n")] = '\0';
			const char *s = line;
			while (*s == ' ' || *s == '\t')
				s++;
			if (strncmp(s, "checkPublicSuffix(", 18) == 0)
				check_line(s);
		}
		fclose(f);
	}
	dmarc_psl_free(&psl);
	/* the file has 82 checkPublicSuffix lines, 4 of them commented out
	 * (the "local" TLD): fewer than 78 means a broken reader */
	unit_cur_name = "vector count";
	unit_cur_failed = 0;
	CHECK(vectors == 78);
	if (unit_cur_failed)
		unit_failed++;
	printf("psl: %d passed, %d failed\n", unit_passed, unit_failed);
	return unit_summary("dmarc-psl");
}
