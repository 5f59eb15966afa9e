/* imap/thread: THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256
 * section 3) on a hand-checked corpus of 18 messages (reply chains, a
 * missing parent with one and with two children, In-Reply-To junk, a
 * References field that wins over In-Reply-To, invalid msg-ids, a
 * duplicate Message-ID, a missing Message-ID, a reference loop,
 * "Re:" / "Fwd:" / "[fwd: ...]" subjects merged by base subject), the
 * thread-list output, msg-id scanning, dummy merging, and 10 000 deep
 * chains (no recursion). */
#include "unit.h"
#include "imap/sort.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char *thread(const struct imap_sort_msg *m, size_t n, enum imap_thread_algorithm alg,
		    bool uid)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	imap_thread_messages(m, n, alg, uid, &b);
	return buf_steal(&b);
}

#define MSG(n_, date_, subj_, mid_, irt_, refs_) \
	{ .seq = (n_), .uid = (n_) + 100, .internal_date = 1000 + (n_), .sent_date = (date_), \
	  .subject = (subj_), .message_id = (mid_), .in_reply_to = (irt_), .references = (refs_) }

/* The corpus.  Worked out by hand (REFERENCES):
 *  1 <- 2 (In-Reply-To) <- 3 (References wins over In-Reply-To), 1 <- 5;
 *  17 "[fwd: Project plan]" has no references and merges under 1 by subject;
 *  4 <- 6 through a missing <l0> (a dummy with one child: pruned away),
 *  9 "Fwd: Lunch?" merges under 4;
 *  7 and 8 share the missing <b1>: a dummy with two children stays at the
 *  top, 18 hangs under 8 through the msg-id found inside junk in In-Reply-To;
 *  10 and 11 share a Message-ID: 11 gets its own, 12 refers to 10; 10 and 11
 *  have the same subject, neither a reply: a new dummy holds both;
 *  13 has no Message-ID, 14 "Re: Loose" merges under it;
 *  15 and 16 refer to each other: the loop is not closed, 15 stays under 16. */
static const struct imap_sort_msg corpus[] = {
	MSG(1, 100, "Project plan", "<p1@x>", NULL, NULL),
	MSG(2, 200, "Re: Project plan", "<p2@x>", "<p1@x>", ""),
	MSG(3, 300, "Re: Re: Project plan", "<p3@x>", "<p1@x>", "<p1@x> <p2@x>"),
	MSG(4, 150, "Lunch?", "<l1@x>", NULL, NULL),
	MSG(5, 250, "RE: project PLAN", "<p5@x>", NULL, "<p1@x>"),
	MSG(6, 160, "Re: Lunch?", "<l2@x>", NULL, "<l0@x> garbage <not valid> <l1@x>"),
	MSG(7, 400, "Re: Budget", "<b2@x>", NULL, "<b1@x>"),
	MSG(8, 380, "Re: Budget", "<b3@x>", NULL, "<b1@x>"),
	MSG(9, 500, "Fwd: Lunch?", "<f1@x>", NULL, NULL),
	MSG(10, 600, "Duplicate", "<dup@x>", NULL, NULL),
	MSG(11, 610, "Duplicate", " <dup@x> ", NULL, NULL),
	MSG(12, 620, "Re: Duplicate", "<d3@x>", NULL, "<dup@x>"),
	MSG(13, 50, "Loose", NULL, NULL, NULL),
	MSG(14, 60, "Re: Loose", "<lo2@x>", NULL, NULL),
	MSG(15, 700, "Loop", "<a@x>", NULL, "<b@x>"),
	MSG(16, 710, "Re: Loop", "<b@x>", NULL, "<a@x>"),
	MSG(17, 90, "[fwd: Project plan]", "<p9@x>", NULL, NULL),
	MSG(18, 390, "Re: Budget", "<b4@x>", "Your message of Monday <b3@x>", ""),
};
#define NCORPUS (sizeof(corpus) / sizeof(corpus[0]))

static void test_corpus_references(void)
{
	char *got = thread(corpus, NCORPUS, IMAP_THREAD_REFERENCES, false);

	CHECK_STR(got, "(13 14)(1 (17)(2 3)(5))(4 (6)(9))((8 18)(7))((10 12)(11))(16 15)");
	free(got);
	got = thread(corpus, NCORPUS, IMAP_THREAD_REFERENCES, true);
	CHECK_STR(got, "(113 114)(101 (117)(102 103)(105))(104 (106)(109))((108 118)(107))"
		       "((110 112)(111))(116 115)");
	free(got);
}

static void test_corpus_orderedsubject(void)
{
	char *got = thread(corpus, NCORPUS, IMAP_THREAD_ORDEREDSUBJECT, false);

	CHECK_STR(got, "(13 14)(17 (1)(2)(5)(3))(4 (6)(9))(8 (18)(7))(10 (11)(12))(15 16)");
	free(got);
	got = thread(corpus, NCORPUS, IMAP_THREAD_ORDEREDSUBJECT, true);
	CHECK_STR(got, "(113 114)(117 (101)(102)(105)(103))(104 (106)(109))(108 (118)(107))"
		       "(110 (111)(112))(115 116)");
	free(got);
}

/* A subset (what a search would select) threads on its own. */
static void test_subset(void)
{
	struct imap_sort_msg m[3] = { corpus[1], corpus[2], corpus[4] };   /* 2, 3, 5 */
	char *got = thread(m, 3, IMAP_THREAD_REFERENCES, false);

	/* <p1> is missing now: a dummy with two children (2 and 5) */
	CHECK_STR(got, "((2 3)(5))");
	free(got);
	got = thread(m, 1, IMAP_THREAD_REFERENCES, false);
	CHECK_STR(got, "(2)");
	free(got);
	got = thread(m, 0, IMAP_THREAD_REFERENCES, false);
	CHECK_STR(got, "");
	free(got);
}

/* Two dummies with the same thread subject merge into one (5.C, first
 * rule); a thread with an empty subject is never merged. */
static void test_dummy_merge(void)
{
	static const struct imap_sort_msg m[] = {
		MSG(1, 10, "S", "<x1@x>", NULL, "<m1@x>"),
		MSG(2, 20, "Re: S", "<x2@x>", NULL, "<m1@x>"),
		MSG(3, 5, "s", "<y1@x>", NULL, "<m2@x>"),
		MSG(4, 40, "S", "<y2@x>", NULL, "<m2@x>"),
		MSG(5, 1, "", "<e1@x>", NULL, NULL),
		MSG(6, 2, "", "<e2@x>", NULL, NULL),
	};
	char *got = thread(m, 6, IMAP_THREAD_REFERENCES, false);

	CHECK_STR(got, "(5)(6)((3)(1)(2)(4))");
	free(got);
	got = thread(m, 6, IMAP_THREAD_ORDEREDSUBJECT, false);
	CHECK_STR(got, "(5 6)(3 (1)(2)(4))");
	free(got);
}

/* Same sent date: the sequence number decides (RFC 5256 2.2); a
 * self-reference does not make a loop. */
static void test_ties_and_self(void)
{
	static const struct imap_sort_msg m[] = {
		MSG(1, 10, "A", "<s@x>", NULL, "<s@x>"),
		MSG(2, 10, "B", "<t@x>", NULL, "<s@x>"),
		MSG(3, 10, "C", "<u@x>", NULL, "<s@x>"),
		MSG(4, 5, "D", "<v@x>", "<v@x>", NULL),
	};
	char *got = thread(m, 4, IMAP_THREAD_REFERENCES, false);

	CHECK_STR(got, "(4)(1 (2)(3))");
	free(got);
}

static void test_msgid_scan(void)
{
	static const struct {
		const char *in, *ids;
	} cases[] = {
		{ "<a@b>", "a@b" },
		{ " junk <a@b> (comment) <c@d>", "a@b c@d" },
		{ "<no-at> <a b@c> <@b> <a@> <> <ok@x>", "ok@x" },
		{ "<<a@b>>", "a@b" },
		{ "<x <a@b>", "a@b" },
		{ "<a@b", "" },
		{ "", "" },
		{ "a@b", "" },
		{ "<a\tb@c><d@e>", "d@e" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b;
		struct slice id;
		size_t pos = 0, len = strlen(cases[i].in);

		buf_init(&b, BUF_UNLIMITED);
		while (imap_thread_next_msgid(cases[i].in, len, &pos, &id)) {
			CHECK(pos <= len);
			if (b.len)
				buf_append_str(&b, " ");
			buf_append_slice(&b, id);
		}
		CHECK(pos == len);
		CHECK_STR(buf_cstr(&b), cases[i].ids);
		buf_free(&b);
	}
}

/* 10 000 deep: one chain through In-Reply-To, and a tree where every
 * message has two children, so the output nests 5 000 lists deep. */
static void test_deep(void)
{
	size_t n = 10001;
	struct imap_sort_msg *m = calloc(n, sizeof(*m));
	char (*ids)[2][32] = calloc(n, sizeof(*ids));
	struct buf want;
	char *got;

	for (size_t i = 0; i < n; i++) {
		m[i].seq = (uint32_t)i + 1;
		m[i].uid = (uint32_t)i + 1;
		m[i].sent_date = (time_t)i;
		m[i].subject = i ? "Re: deep" : "deep";
		snprintf(ids[i][0], sizeof(ids[i][0]), "<m%zu@x>", i + 1);
		m[i].message_id = ids[i][0];
		if (i > 0) {
			snprintf(ids[i][1], sizeof(ids[i][1]), "<m%zu@x>", i);
			m[i].in_reply_to = ids[i][1];
		}
	}
	buf_init(&want, BUF_UNLIMITED);
	buf_append_str(&want, "(");
	for (size_t i = 0; i < n; i++)
		buf_printf(&want, "%s%zu", i ? " " : "", i + 1);
	buf_append_str(&want, ")");
	got = thread(m, n, IMAP_THREAD_REFERENCES, false);
	CHECK_STR(got, buf_cstr(&want));
	free(got);

	/* message k (k >= 2): parent k - 1 when even, k - 2 when odd */
	for (size_t i = 1; i < n; i++) {
		size_t k = i + 1, parent = k % 2 == 0 ? k - 1 : k - 2;
		snprintf(ids[i][1], sizeof(ids[i][1]), "<m%zu@x>", parent);
		m[i].in_reply_to = NULL;
		m[i].references = ids[i][1];
	}
	buf_reset(&want);
	buf_append_str(&want, "(1");
	for (size_t k = 1; 2 * k + 1 <= n; k++)
		buf_printf(&want, " (%zu)(%zu", 2 * k, 2 * k + 1);
	for (size_t k = 1; 2 * k + 1 <= n; k++)
		buf_append_str(&want, ")");
	buf_append_str(&want, ")");
	got = thread(m, n, IMAP_THREAD_REFERENCES, false);
	CHECK_STR(got, buf_cstr(&want));
	free(got);

	buf_free(&want);
	free(ids);
	free(m);
}

int main(void)
{
	RUN(test_corpus_references);
	RUN(test_corpus_orderedsubject);
	RUN(test_subset);
	RUN(test_dummy_merge);
	RUN(test_ties_and_self);
	RUN(test_msgid_scan);
	RUN(test_deep);
	return unit_summary("imap-thread");
}
