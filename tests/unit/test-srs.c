/* mail/srs: forward and reverse rewriting, compatibility with postsrsd
 * (vectors produced by Debian's postsrsd 1.10 with the same secret, day
 * and domain), case changes, tampering, expiry and secret rotation. */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "mail/srs.h"
#include "unit.h"

static const char *const secrets[] = { "tern-test-secret" };
#define ONE secrets, 1

/* 2026-11-28, day 20785 since the epoch: stamp 20785 % 1024 = 305 = "JR" */
#define VECTOR_TIME 1795901976

static void set_time(time_t t)
{
	clock_advance((int64_t)(t - clock_now()));
}

static char *fwd(const char *const *s, size_t n, const char *sender, int *ret_r)
{
	struct buf b;
	const char *err = NULL;
	buf_init(&b, BUF_UNLIMITED);
	*ret_r = srs_forward(s, n, "forward.example", sender, &b, &err);
	if (*ret_r < 0)
		CHECK(err != NULL && b.len == 0);
	return buf_steal(&b);
}

static char *rev(const char *const *s, size_t n, const char *addr, unsigned age, int *ret_r)
{
	struct buf b;
	const char *err = NULL;
	buf_init(&b, BUF_UNLIMITED);
	*ret_r = srs_reverse(s, n, addr, age, &b, &err);
	if (*ret_r < 0)
		CHECK(err != NULL && b.len == 0);
	return buf_steal(&b);
}

static void test_postsrsd_vectors(void)
{
	int r;
	char *s;

	set_time(VECTOR_TIME);
	s = fwd(ONE, "alice@origin.example", &r);
	CHECK(r == 0);
	CHECK_STR(s, "SRS0=g4sw=JR=origin.example=alice@forward.example");
	free(s);
	s = fwd(ONE, "SRS0=abcd=XY=orig.example=bob@hop.example", &r);
	CHECK(r == 0);
	CHECK_STR(s, "SRS1=odzK=hop.example==abcd=XY=orig.example=bob@forward.example");
	free(s);
	s = fwd(ONE, "SRS1=abcd=hop.example==wxyz=XY=orig.example=bob@hop2.example", &r);
	CHECK(r == 0);
	CHECK_STR(s, "SRS1=DDgQ=hop.example==wxyz=XY=orig.example=bob@forward.example");
	free(s);

	s = rev(ONE, "SRS0=g4sw=JR=origin.example=alice@forward.example", 0, &r);
	CHECK(r == 0);
	CHECK_STR(s, "alice@origin.example");
	free(s);
	s = rev(ONE, "SRS1=odzK=hop.example==abcd=XY=orig.example=bob@forward.example", 0, &r);
	CHECK(r == 0);
	CHECK_STR(s, "SRS0=abcd=XY=orig.example=bob@hop.example");
	free(s);
}

static void test_round_trip(void)
{
	static const char *const senders[] = {
		"alice@origin.example", "first.last+tag@sub.origin.example",
		"a=b=c@origin.example", "x@y.z", "J\xc3\xb6rg@b\303\274cher.example",
		"o'neil@origin.example",
	};
	int r;

	set_time(VECTOR_TIME + 12345);
	for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		char *s = fwd(ONE, senders[i], &r);
		CHECK(r == 0);
		CHECK(srs_is_srs(s));
		CHECK(strncmp(s, "SRS0=", 5) == 0);
		char *back = rev(ONE, s, 0, &r);
		CHECK(r == 0);
		CHECK_STR(back, senders[i]);
		free(back);
		free(s);
	}
}

static void test_two_hops(void)
{
	const char *const other[] = { "second-hop-secret" };
	int r;

	set_time(VECTOR_TIME);
	/* hop 1 rewrites alice; hop 2 (another forwarder) makes SRS1 */
	char *s0 = fwd(ONE, "alice@origin.example", &r);
	struct buf b;
	const char *err;
	buf_init(&b, BUF_UNLIMITED);
	CHECK(srs_forward(other, 1, "hop2.example", s0, &b, &err) == 0);
	char *s1 = buf_steal(&b);
	CHECK(strncmp(s1, "SRS1=", 5) == 0);
	CHECK(strstr(s1, "=forward.example==") != NULL);
	/* a third forwarder keeps the first hop */
	char *s1b = fwd(ONE, s1, &r);
	CHECK(r == 0);
	CHECK(strstr(s1b, "=forward.example==") != NULL);
	CHECK(strstr(s1b, "@forward.example") != NULL);
	/* the bounce comes back to hop 2: SRS1 reverses to the SRS0 at hop 1 */
	buf_init(&b, BUF_UNLIMITED);
	CHECK(srs_reverse(other, 1, s1, 0, &b, &err) == 0);
	CHECK_STR(buf_cstr(&b), s0);
	/* hop 1 then finds alice */
	char *orig = rev(ONE, buf_cstr(&b), 0, &r);
	CHECK(r == 0);
	CHECK_STR(orig, "alice@origin.example");
	/* hop 1's secret cannot reverse hop 2's SRS1 */
	free(rev(ONE, s1, 0, &r));
	CHECK(r == SRS_ERR_HASH);
	buf_free(&b);
	free(orig);
	free(s1b);
	free(s1);
	free(s0);
}

static void test_case_changes(void)
{
	int r;
	char *s;

	set_time(VECTOR_TIME);
	/* some MTAs lowercase or uppercase the whole address */
	s = rev(ONE, "srs0=G4SW=jr=ORIGIN.example=Alice@Forward.Example", 0, &r);
	CHECK(r == 0);
	CHECK_STR(s, "Alice@ORIGIN.example");
	free(s);
	s = rev(ONE, "SRS0=G4SW=JR=ORIGIN.EXAMPLE=ALICE@FORWARD.EXAMPLE", 0, &r);
	CHECK(r == 0);
	free(s);
	/* the other separators after the tag */
	s = rev(ONE, "SRS0+g4sw=JR=origin.example=alice@forward.example", 0, &r);
	CHECK(r == 0);
	CHECK_STR(s, "alice@origin.example");
	free(s);
	s = rev(ONE, "srs0-g4sw=JR=origin.example=alice@forward.example", 0, &r);
	CHECK(r == 0);
	free(s);
}

static void test_tampering(void)
{
	static const char *const forged[] = {
		"SRS0=g4sw=JR=origin.example=mallory@forward.example",  /* other user */
		"SRS0=g4sw=JR=evil.example=alice@forward.example",      /* other domain */
		"SRS0=g4sw=JQ=origin.example=alice@forward.example",    /* other day */
		"SRS0=g4sx=JR=origin.example=alice@forward.example",    /* other hash */
		"SRS0=g4s=JR=origin.example=alice@forward.example",     /* short hash */
		"SRS0=g4swx=JR=origin.example=alice@forward.example",   /* long hash */
		"SRS1=odzK=hop.example==abcd=XY=orig.example=eve@forward.example",
		"SRS1=odzK=evil.example==abcd=XY=orig.example=bob@forward.example",
	};
	int r;

	set_time(VECTOR_TIME);
	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		free(rev(ONE, forged[i], 0, &r));
		CHECK(r == SRS_ERR_HASH);
	}

	static const char *const malformed[] = {
		"SRS0=g4sw@forward.example", "SRS0=g4sw=JR@forward.example",
		"SRS0=g4sw=JR=origin.example@forward.example",
		"SRS0=g4sw=JR=origin.example=@forward.example",
		"SRS0=g4sw=J=origin.example=alice@forward.example",
		"SRS0=g4sw=J1=origin.example=alice@forward.example",
		"SRS0=g4sw=JR==alice@forward.example", "SRS1=odzK@forward.example",
		"SRS1=odzK=hop.example=@forward.example", "SRS1=odzK==x@forward.example",
		"SRS0=g4sw=JR=origin.example=alice", "@forward.example", "", "SRS0=@",
		"SRS0=g4sw=JR=orig\x01in.example=alice@forward.example",
	};
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		free(rev(ONE, malformed[i], 0, &r));
		CHECK(r == SRS_ERR_SYNTAX || r == SRS_ERR_HASH);
		if (r == 0)
			fprintf(stderr, "  accepted %s\n", malformed[i]);
	}

	free(rev(ONE, "alice@forward.example", 0, &r));
	CHECK(r == SRS_ERR_NOT_SRS);
	free(rev(ONE, "SRS2=g4sw=JR=origin.example=alice@forward.example", 0, &r));
	CHECK(r == SRS_ERR_NOT_SRS);
}

static void test_expiry(void)
{
	int r;
	char *s, *back;

	set_time(VECTOR_TIME);
	s = fwd(ONE, "alice@origin.example", &r);
	/* 21 days later: still good; 22: expired; a custom limit */
	set_time(VECTOR_TIME + 21 * 86400);
	back = rev(ONE, s, 0, &r);
	CHECK(r == 0);
	free(back);
	set_time(VECTOR_TIME + 22 * 86400);
	free(rev(ONE, s, 0, &r));
	CHECK(r == SRS_ERR_EXPIRED);
	free(rev(ONE, s, 30, &r));
	CHECK(r == 0);
	/* the 1024-day stamp wraps: 1024 days later it would look fresh, but
	 * 1030 days later it is six days old; a stamp from the future is old */
	set_time(VECTOR_TIME - 86400);
	free(rev(ONE, s, 0, &r));
	CHECK(r == SRS_ERR_EXPIRED);
	set_time(VECTOR_TIME + 1030 * 86400);
	free(rev(ONE, s, 0, &r));
	CHECK(r == 0);
	free(s);
}

static void test_rotation(void)
{
	const char *const old_only[] = { "old-secret" };
	const char *const rotated[] = { "new-secret", "old-secret" };
	int r;

	set_time(VECTOR_TIME);
	char *s_old = fwd(old_only, 1, "alice@origin.example", &r);
	char *s_new = fwd(rotated, 2, "alice@origin.example", &r);
	CHECK(strcmp(s_old, s_new) != 0);
	char *b = rev(rotated, 2, s_old, 0, &r);
	CHECK(r == 0);
	CHECK_STR(b, "alice@origin.example");
	free(b);
	b = rev(rotated, 2, s_new, 0, &r);
	CHECK(r == 0);
	free(b);
	free(rev(old_only, 1, s_new, 0, &r));
	CHECK(r == SRS_ERR_HASH);
	free(s_old);
	free(s_new);
}

static void test_refused(void)
{
	const char *const empty[] = { "" };
	struct buf b;
	const char *err = NULL;
	int r;

	free(fwd(ONE, "", &r));
	CHECK(r == SRS_ERR_SYNTAX);
	free(fwd(ONE, "postmaster", &r));
	CHECK(r == SRS_ERR_SYNTAX);
	free(fwd(ONE, "a b@origin.example", &r));
	CHECK(r == SRS_ERR_SYNTAX);
	free(fwd(ONE, "\"a\"@origin.example", &r));
	CHECK(r == SRS_ERR_SYNTAX);
	free(fwd(ONE, "a@[192.0.2.1]", &r));
	CHECK(r == SRS_ERR_SYNTAX);
	free(fwd(ONE, "a@bad..domain", &r));
	CHECK(r == SRS_ERR_SYNTAX);
	free(fwd(ONE, "a\r\n@origin.example", &r));
	CHECK(r == SRS_ERR_SYNTAX);
	free(fwd(ONE, "SRS1=x@origin.example", &r));
	CHECK(r == SRS_ERR_SYNTAX);
	free(fwd(empty, 1, "a@origin.example", &r));
	CHECK(r == SRS_ERR_CONFIG);
	free(fwd(NULL, 0, "a@origin.example", &r));
	CHECK(r == SRS_ERR_CONFIG);
	free(rev(empty, 1, "SRS0=g4sw=JR=origin.example=alice@forward.example", 0, &r));
	CHECK(r == SRS_ERR_CONFIG);
	buf_init(&b, BUF_UNLIMITED);
	CHECK(srs_forward(ONE, "bad domain", "a@origin.example", &b, &err) == SRS_ERR_CONFIG);
	/* output limit: all or nothing */
	buf_free(&b);
	buf_init(&b, 10);
	CHECK(srs_forward(ONE, "forward.example", "a@origin.example", &b, &err) < 0);
	CHECK(b.len == 0);
	buf_free(&b);

	CHECK(srs_is_srs("SRS0=a=b=c=d@e"));
	CHECK(srs_is_srs("srs1+x@y"));
	CHECK(srs_is_srs("SRS0-x"));
	CHECK(!srs_is_srs("SRS0@x"));
	CHECK(!srs_is_srs("SRS2=a@x"));
	CHECK(!srs_is_srs("xSRS0=a@x"));
	CHECK(!srs_is_srs(""));
	CHECK(!srs_is_srs("alice@SRS0=x"));
}

int main(void)
{
	RUN(test_postsrsd_vectors);
	RUN(test_round_trip);
	RUN(test_two_hops);
	RUN(test_case_changes);
	RUN(test_tampering);
	RUN(test_expiry);
	RUN(test_rotation);
	RUN(test_refused);
	return unit_summary("srs");
}
