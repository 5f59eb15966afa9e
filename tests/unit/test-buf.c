/* lib/buf and lib/log value escaping */
#include "unit.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_buf_limit(void)
{
	struct buf b;
	buf_init(&b, 8);
	CHECK(buf_append_str(&b, "hello") == 0);
	CHECK(buf_append_str(&b, "abcd") == -1);
	CHECK_STR(buf_cstr(&b), "hello");
	CHECK(buf_printf(&b, "%d", 123) == 0);
	CHECK(b.len == 8);
	CHECK(buf_printf(&b, "x") == -1);
	buf_consume(&b, 5);
	CHECK_STR(buf_cstr(&b), "123");
	buf_free(&b);
	CHECK_STR(buf_cstr(&b), "");
}

static void test_log_value(void)
{
	char out[64];
	CHECK_STR(log_value(out, sizeof(out), "plain", 5), "plain");
	CHECK_STR(log_value(out, sizeof(out), "a b", 3), "\"a b\"");
	CHECK_STR(log_value(out, sizeof(out), "x\r\nuser=root", 12), "\"x\\x0d\\x0auser=root\"");
	CHECK_STR(log_value(out, sizeof(out), "", 0), "\"\"");
	CHECK_STR(log_quote("q\"\\"), "\"q\\\"\\\\\"");
}

/* buf_append_file: the first len bytes, fewer at end of file, nothing
 * past the maximum, and the file position untouched. */
static void test_buf_append_file(void)
{
	char path[] = "/tmp/tern-buf-XXXXXX";
	int fd = mkstemp(path);
	struct buf b;

	CHECK(fd >= 0);
	CHECK(write(fd, "hello, world", 12) == 12);
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, ">");
	CHECK(buf_append_file(&b, fd, 5) == 5);
	CHECK_STR(buf_cstr(&b), ">hello");
	CHECK(buf_append_file(&b, fd, 100) == 12);
	CHECK_STR(buf_cstr(&b), ">hellohello, world");
	CHECK(lseek(fd, 0, SEEK_CUR) == 12);
	buf_free(&b);
	buf_init(&b, 8);
	CHECK(buf_append_file(&b, fd, 12) == -1);
	CHECK(b.len == 0);
	buf_free(&b);
	close(fd);
	unlink(path);
}

int main(void)
{
	RUN(test_buf_limit);
	RUN(test_log_value);
	RUN(test_buf_append_file);
	return unit_summary("buf");
}
