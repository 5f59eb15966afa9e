/* A tiny unit-test harness.  Each tests/unit/test-*.c defines test
 * functions and lists them in main() with RUN(fn); main ends with
 * return unit_summary("name").  CHECK() failures are counted per test; a
 * test passes when none of its checks failed.  The summary line
 *   unit NAME: N passed, N failed
 * is what scripts/check.sh adds up. */
#ifndef TERN_UNIT_H
#define TERN_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed, unit_cur_failed;
static const char *unit_cur_name;

#define CHECK(cond) do { \
	if (!(cond)) { \
		unit_cur_failed++; \
		fprintf(stderr, "  FAIL %s:%d in %s: %s\n", __FILE__, __LINE__, unit_cur_name, #cond); \
	} \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *a_ = (a), *b_ = (b); \
	if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) { \
		unit_cur_failed++; \
		fprintf(stderr, "  FAIL %s:%d in %s: %s == \"%s\", expected \"%s\"\n", __FILE__, \
			__LINE__, unit_cur_name, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
	} \
} while (0)

#define RUN(fn) do { \
	unit_cur_name = #fn; \
	unit_cur_failed = 0; \
	fn(); \
	if (unit_cur_failed) unit_failed++; else unit_passed++; \
} while (0)

static inline int unit_summary(const char *name)
{
	printf("unit %s: %d passed, %d failed\n", name, unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
