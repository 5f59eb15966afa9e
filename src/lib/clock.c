/* Wall clock with a test offset (see clock.h). */
#include "lib/clock.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

static _Atomic int64_t offset_s;
static atomic_int offset_loaded;

static int64_t clock_offset(void)
{
	if (!atomic_load(&offset_loaded)) {
		const char *env = getenv("TERN_CLOCK_OFFSET");
		if (env != NULL)
			atomic_fetch_add(&offset_s, strtoll(env, NULL, 10));
		atomic_store(&offset_loaded, 1);
	}
	return atomic_load(&offset_s);
}

time_t clock_now(void)
{
	return time(NULL) + (time_t)clock_offset();
}

int64_t clock_now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return ((int64_t)tv.tv_sec + clock_offset()) * 1000 + tv.tv_usec / 1000;
}

void clock_advance(int64_t seconds)
{
	clock_offset();
	atomic_fetch_add(&offset_s, seconds);
}

void clock_rfc5322(time_t t, char *out, size_t outsz)
{
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(out, outsz, "%a, %d %b %Y %H:%M:%S %z", &tm);
}
