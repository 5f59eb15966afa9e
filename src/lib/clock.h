/* The one clock source.  Everything that schedules or expires (timeouts
 * excepted, which use the event loop's monotonic clock) asks clock_now(), so
 * tests can move time forward: the environment variable TERN_CLOCK_OFFSET
 * (seconds, may be negative) is added at start-up, and clock_advance() moves
 * it at run time. */
#ifndef TERN_LIB_CLOCK_H
#define TERN_LIB_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Wall-clock seconds since the epoch, plus the test offset. */
time_t clock_now(void);
/* Milliseconds since the epoch, plus the test offset. */
int64_t clock_now_ms(void);
/* Add seconds to the offset (tests). */
void clock_advance(int64_t seconds);
/* RFC 5322 date-time for t in local time, e.g. "Sat, 28 Nov 2026 18:40:00 +0000". */
void clock_rfc5322(time_t t, char *out, size_t outsz);

#endif
