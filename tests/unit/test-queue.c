/* The queue's retry schedule (queue/queue.h): retry_min doubled per
 * attempt, capped at retry_max, with the defaults (5 min to 1 h) and
 * with odd settings; the queue group's smarthost and mta_sts settings
 * (lib/config): defaults, values, and errors that name the line. */
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
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

static void test_config(void)
{
	char *error = NULL;
	struct config *cfg = config_parse_string("hostname = \"mx.example.org\";\n", "t.conf",
						 &error);

	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK(cfg->queue.smarthost.host == NULL);
		CHECK(cfg->queue.smarthost.port == 587);
		CHECK(cfg->queue.ca_file == NULL);
		CHECK(cfg->queue.mta_sts.enabled);
		CHECK(cfg->queue.mta_sts.port == 443);
		CHECK(cfg->queue.mta_sts.ca_file == NULL);
		config_free(&cfg);
	}
	cfg = config_parse_string("hostname = \"mx.example.org\";\n"
				  "queue = {\n  ca_file = \"/etc/ca.pem\";\n"
				  "  smarthost = { host = \"smtp.provider.example\"; port = 465;\n"
				  "    user = \"me@example.org\"; password_file = \"/etc/pw\"; };\n"
				  "  mta_sts = { enabled = false; ca_file = \"/etc/sts.pem\"; "
				  "port = 8443; timeout = 3; };\n};\n", "t.conf", &error);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_STR(cfg->queue.ca_file, "/etc/ca.pem");
		CHECK_STR(cfg->queue.smarthost.host, "smtp.provider.example");
		CHECK(cfg->queue.smarthost.port == 465);
		CHECK_STR(cfg->queue.smarthost.user, "me@example.org");
		CHECK_STR(cfg->queue.smarthost.password_file, "/etc/pw");
		CHECK(!cfg->queue.mta_sts.enabled);
		CHECK_STR(cfg->queue.mta_sts.ca_file, "/etc/sts.pem");
		CHECK(cfg->queue.mta_sts.port == 8443 && cfg->queue.mta_sts.timeout == 3);
		config_free(&cfg);
	}
	/* "" means no smarthost */
	cfg = config_parse_string("hostname = \"mx.example.org\";\n"
				  "queue = { smarthost = { host = \"\"; }; };\n", "t.conf", &error);
	CHECK(cfg != NULL && cfg->queue.smarthost.host == NULL);
	config_free(&cfg);
	/* errors name the line */
	cfg = config_parse_string("hostname = \"mx.example.org\";\nqueue = {\n"
				  "  smarthost = { host = \"bad host!\"; };\n};\n", "t.conf", &error);
	CHECK(cfg == NULL && error != NULL && strstr(error, "t.conf:3:") != NULL &&
	      strstr(error, "smarthost") != NULL);
	free(error);
	error = NULL;
	cfg = config_parse_string("hostname = \"mx.example.org\";\nqueue = {\n"
				  "  mta_sts = { mode = \"enforce\"; };\n};\n", "t.conf", &error);
	CHECK(cfg == NULL && error != NULL && strstr(error, ":3:") != NULL &&
	      strstr(error, "mode") != NULL);
	free(error);
	error = NULL;
	cfg = config_parse_string("hostname = \"mx.example.org\";\nqueue = {\n"
				  "  smarthost = { port = 0; };\n};\n", "t.conf", &error);
	CHECK(cfg == NULL && error != NULL && strstr(error, ":3:") != NULL);
	free(error);
}

int main(void)
{
	RUN(test_retry_delay);
	RUN(test_config);
	return unit_summary("queue");
}
