/* IMAP URL parser (imap/url.h): the RFC 4469 and RFC 5092 example forms,
 * percent-decoding, optional parts, and the refusals. */
#include "imap/url.h"
#include "unit.h"

static int parse(const char *s, struct imap_arena *a, struct imap_url *u)
{
	const char *error = NULL;
	int rc = imap_url_parse((struct slice){ s, strlen(s) }, a, u, &error);
	if (rc < 0)
		CHECK(error != NULL && error[0] != '\0');
	return rc;
}

static void test_relative(void)
{
	struct imap_arena a = { 0 };
	struct imap_url u;

	CHECK(parse("/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.MIME", &a, &u) == 0);
	CHECK(u.host == NULL && u.user == NULL);
	CHECK_STR(u.mailbox, "INBOX");
	CHECK(u.uidvalidity == 385759045 && u.uid == 20);
	CHECK_STR(u.section, "1.MIME");
	CHECK(!u.has_partial);

	CHECK(parse("/Drafts/;uid=7", &a, &u) == 0);
	CHECK_STR(u.mailbox, "Drafts");
	CHECK(u.uidvalidity == 0 && u.uid == 7 && u.section == NULL);

	CHECK(parse("/Lists/tern%20dev/;UID=3/;SECTION=HEADER.FIELDS%20(FROM%20TO)/;PARTIAL=10.20",
		    &a, &u) == 0);
	CHECK_STR(u.mailbox, "Lists/tern dev");
	CHECK_STR(u.section, "HEADER.FIELDS (FROM TO)");
	CHECK(u.has_partial && u.offset == 10 && u.length == 20);

	CHECK(parse("/INBOX/;UID=1/;PARTIAL=5", &a, &u) == 0);
	CHECK(u.has_partial && u.offset == 5 && u.length == 0);

	/* UTF-8 mailbox, percent-encoded (RFC 5092 3) */
	CHECK(parse("/Entw%C3%BCrfe/;UID=2", &a, &u) == 0);
	CHECK_STR(u.mailbox, "Entw\xc3\xbc" "rfe");
	imap_arena_clear(&a);
}

static void test_absolute(void)
{
	struct imap_arena a = { 0 };
	struct imap_url u;

	CHECK(parse("imap://joe@example.com/INBOX/;UID=5", &a, &u) == 0);
	CHECK_STR(u.user, "joe");
	CHECK_STR(u.host, "example.com");
	CHECK(u.port == 0 && u.uid == 5);

	CHECK(parse("IMAP://bob%40example.org;AUTH=*@mail.example.org:143/Sent;UIDVALIDITY=9/;UID=11",
		    &a, &u) == 0);
	CHECK_STR(u.user, "bob@example.org");
	CHECK_STR(u.host, "mail.example.org");
	CHECK(u.port == 143 && u.uidvalidity == 9 && u.uid == 11);
	CHECK_STR(u.mailbox, "Sent");
	imap_arena_clear(&a);
}

static void test_refused(void)
{
	static const char *bad[] = {
		"", "INBOX/;UID=1", "/INBOX", "/INBOX/;UID=0", "/INBOX/;UID=x",
		"/INBOX/;UID=4294967296", "/;UID=1", "/INBOX;UIDVALIDITY=0/;UID=1",
		"/INBOX/;UID=1;URLAUTH=anonymous:internal:abc", "/INBOX/;UID=1/;SECTION=",
		"/IN%00BOX/;UID=1", "/IN%zzBOX/;UID=1", "/INBOX%/;UID=1", "/IN BOX/;UID=1",
		"/%FF%FE/;UID=1", "/INBOX/;UID=1/;PARTIAL=1.0", "/INBOX/;UID=1/;EXPIRE=x",
		"imap:///INBOX/;UID=1", "imap://host:99999/INBOX/;UID=1", "/INBOX/;UID=1/x",
		"/INBOX?SUBJECT%20x",
	};
	struct imap_arena a = { 0 };
	struct imap_url u;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &a, &u) == 0)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK(parse(bad[i], &a, &u) < 0);
	}
	imap_arena_clear(&a);
}

int main(void)
{
	RUN(test_relative);
	RUN(test_absolute);
	RUN(test_refused);
	return unit_summary("imap-url");
}
