/* mail/imap-bodystructure and mail/imap-envelope against golden files:
 * tests/unit/golden/mime/NAME.eml -> NAME.bodystructure, NAME.envelope
 * (byte-exact, one line each; see golden/mime/README for where they come
 * from and how they differ from Dovecot).  Every prefix of every message
 * is parsed and written too, in an exact-size heap copy, so ASan catches
 * any read past the end. */
#include "unit.h"
#include "lib/buf.h"
#include "mail/imap-bodystructure.h"
#include "mail/imap-envelope.h"
#include "mail/imap-string.h"
#include "mail/mime.h"

#include <dirent.h>
#include <stdlib.h>

#define GOLDEN "tests/unit/golden/mime/"

static char *slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char tmp[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	buf_init(&b, BUF_UNLIMITED);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(&b, tmp, n);
	fclose(f);
	*len_r = b.len;
	return buf_steal(&b);
}

static void render(const char *msg, size_t len, char **bs_r, char **env_r, char **body_r)
{
	struct mime_part *root;
	const char *err;
	struct buf b;

	CHECK(mime_parse(msg, len, &root, &err) == 0);
	buf_init(&b, BUF_UNLIMITED);
	imap_bodystructure_write(&b, msg, root, true);
	buf_append_str(&b, "\n");
	*bs_r = buf_steal(&b);
	imap_envelope_write(&b, msg, root->header_size);
	buf_append_str(&b, "\n");
	*env_r = buf_steal(&b);
	imap_bodystructure_write(&b, msg, root, false);
	*body_r = buf_steal(&b);
	mime_part_free(&root);
	CHECK(root == NULL);
}

static unsigned golden_count;

/* The shared test suites (../shared/testdata, or $TERN_SHARED_TESTDATA) are
 * read in place, never copied into this repository: golden/mime holds only
 * our expected output for them, and messages written here (own-*). */
static const char *shared_testdata(void)
{
	const char *dir = getenv("TERN_SHARED_TESTDATA");
	return dir != NULL ? dir : "../shared/testdata";
}

/* NAME.eml of our own, or malformed-NNN / rfc-NNN from the shared
 * mail-parser vectors with LF line ends turned into CRLF (stored form). */
static char *golden_message(const char *name, size_t *len_r)
{
	char path[1024], kind[32];
	unsigned num;
	size_t len;
	char *raw;
	struct buf b;

	if (strncmp(name, "own-", 4) == 0) {
		snprintf(path, sizeof(path), GOLDEN "%s.eml", name);
		return slurp(path, len_r);
	}
	if (sscanf(name, "%31[a-z]-%u", kind, &num) != 2)
		return NULL;
	snprintf(path, sizeof(path), "%s/mime/mail-parser/%s/%03u.eml", shared_testdata(), kind,
		 num);
	raw = slurp(path, &len);
	if (raw == NULL)
		return NULL;
	buf_init(&b, BUF_UNLIMITED);
	for (size_t i = 0; i < len; i++) {
		if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r'))
			buf_append(&b, "\r", 1);
		buf_append(&b, raw + i, 1);
	}
	free(raw);
	*len_r = b.len;
	return buf_steal(&b);
}

static void test_golden(void)
{
	DIR *d = opendir(GOLDEN);
	struct dirent *e;
	unsigned own = 0, missing = 0;

	CHECK(d != NULL);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t nl = strlen(e->d_name), len, blen, elen;
		char path[512], name[256], *msg, *want_bs, *want_env, *bs, *env, *body;
		static const char suffix[] = ".bodystructure";

		if (nl <= sizeof(suffix) - 1 || nl - (sizeof(suffix) - 1) >= sizeof(name) ||
		    strcmp(e->d_name + nl - (sizeof(suffix) - 1), suffix) != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(nl - (sizeof(suffix) - 1)), e->d_name);
		msg = golden_message(name, &len);
		if (msg == NULL) {
			/* a shared vector not present on this machine: not counted */
			missing++;
			continue;
		}
		snprintf(path, sizeof(path), GOLDEN "%s.bodystructure", name);
		want_bs = slurp(path, &blen);
		snprintf(path, sizeof(path), GOLDEN "%s.envelope", name);
		want_env = slurp(path, &elen);
		CHECK(want_bs != NULL && want_env != NULL);
		if (want_bs == NULL || want_env == NULL) {
			free(msg);
			free(want_bs);
			free(want_env);
			continue;
		}
		render(msg, len, &bs, &env, &body);
		if (strcmp(bs, want_bs) != 0 || strcmp(env, want_env) != 0)
			fprintf(stderr, "  golden mismatch: %s\n", name);
		CHECK_STR(bs, want_bs);
		CHECK_STR(env, want_env);
		CHECK(body[0] == '(');
		free(bs);
		free(env);
		free(body);
		golden_count++;
		own += strncmp(name, "own-", 4) == 0;

		/* every prefix, exact-size copies */
		for (size_t cut = 0; cut <= len; cut++) {
			char *copy = malloc(cut ? cut : 1);
			memcpy(copy, msg, cut);
			render(copy, cut, &bs, &env, &body);
			CHECK(bs[0] == '(' && env[0] == '(');
			free(bs);
			free(env);
			free(body);
			free(copy);
		}
		free(msg);
		free(want_bs);
		free(want_env);
	}
	closedir(d);
	CHECK(own >= 5);
	if (missing > 0)
		printf("note: %u shared mail-parser vectors not found under %s (not counted)\n",
		       missing, shared_testdata());
}

static void test_body_vs_bodystructure(void)
{
	const char *m = "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
			"Content-Type: text/plain; charset=utf-8\r\nContent-Language: fr\r\n\r\n"
			"salut\r\n--q--\r\n";
	char *bs, *env, *body;

	render(m, strlen(m), &bs, &env, &body);
	CHECK_STR(body, "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0) \"mixed\")");
	CHECK_STR(bs, "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0 NIL NIL "
		      "(\"fr\") NIL) \"mixed\" (\"boundary\" \"q\") NIL NIL NIL)\n");
	CHECK_STR(env, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)\n");
	free(bs);
	free(env);
	free(body);
}

static void test_strings(void)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	imap_append_nstr(&b, NULL);
	buf_append_str(&b, " ");
	imap_append_nstr(&b, "a\"b\\c");
	buf_append_str(&b, " ");
	imap_append_nstr(&b, "");
	buf_append_str(&b, " ");
	imap_append_nstring(&b, "x\r\ny", 4);
	buf_append_str(&b, " ");
	imap_append_nstr(&b, "caf\xc3\xa9");
	buf_append_str(&b, " ");
	imap_append_nstring(&b, "a\0b", 3);
	buf_append_str(&b, " ");
	imap_append_nstring_nolf(&b, "x\r\n y", 5);
	CHECK_STR(buf_cstr(&b), "NIL \"a\\\"b\\\\c\" \"\" {4}\r\nx\r\ny {5}\r\ncaf\xc3\xa9 {2}\r\nab \"x y\"");
	buf_free(&b);
}

static void test_envelope_edge(void)
{
	const char *h = "From: foo, <>, Some One\r\nTo: \"unterminated\r\nCc: x@y (c\r\n"
			"Subject:\r\nDate: \r\nBcc: G:a@b\r\n\r\n";
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	imap_envelope_write(&b, h, strlen(h));
	CHECK_STR(buf_cstr(&b),
		  "(\"\" \"\" ((NIL NIL \"foo\" \"MISSING_DOMAIN\")(NIL NIL \"MISSING_MAILBOX\" "
		  "\"MISSING_DOMAIN\")(\"Some One\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) "
		  "((NIL NIL \"foo\" \"MISSING_DOMAIN\")(NIL NIL \"MISSING_MAILBOX\" "
		  "\"MISSING_DOMAIN\")(\"Some One\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) "
		  "((NIL NIL \"foo\" \"MISSING_DOMAIN\")(NIL NIL \"MISSING_MAILBOX\" "
		  "\"MISSING_DOMAIN\")(\"Some One\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) "
		  "((NIL NIL \"unterminated\" \"MISSING_DOMAIN\")) ((NIL NIL \"x\" \"y\")) "
		  "((NIL NIL \"G\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL NIL NIL)) NIL NIL)");
	buf_free(&b);
}

int main(void)
{
	RUN(test_golden);
	RUN(test_body_vs_bodystructure);
	RUN(test_strings);
	RUN(test_envelope_edge);
	return unit_summary("imap-bodystructure");
}
