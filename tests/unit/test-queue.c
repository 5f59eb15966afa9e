/* The queue's retry schedule (queue/queue.h): retry_min doubled per
 * attempt, capped at retry_max, with the defaults (5 min to 1 h) and
 * with odd settings. */
#include "queue/queue.h"
#include "unit.h"

static void test_retry_delay(void)
{
	/* defaults: 5, 10, 20, 40 minutes, then an hour */
	CHECK(queue_retry_delay(300, 3600, 1) == 300);
	CHECK(queue_retry_delay(300, 3600, 2) == 600);
	CHECK(queue_retry_delay(300, 3600, 3) == 1200);
	CHECK(queue_retry_delay(300, 3600, 4) == 2400);
	CHECK(queue_retry_delay(300, 3600, 5) == 3600);
	CHECK(queue_retry_delay(300, 3600, 1000) == 3600);
	/* first attempt count 0 or negative: the minimum */
	CHECK(queue_retry_delay(300, 3600, 0) == 300);
	CHECK(queue_retry_delay(300, 3600, -5) == 300);
	/* max below min: max wins; min 0 counts as one second */
	CHECK(queue_retry_delay(600, 60, 3) == 60);
	CHECK(queue_retry_delay(0, 100, 1) == 1);
	CHECK(queue_retry_delay(0, 100, 3) == 4);
	/* no overflow on huge attempt counts with a huge cap */
	CHECK(queue_retry_delay(1, 7 * 86400, 2000000000) == 7 * 86400);
}

int main(void)
{
	RUN(test_retry_delay);
	return unit_summary("queue");
}
