/* The ARC half of the re-signing after a conversion (sign-hook.h): find
 * the ARC set Tern's sealer put on top of a queued message, and seal the
 * converted message again with the same instance, cv= and
 * ARC-Authentication-Results payload.
 *
 * Which set is Tern's: sign_hook_seal prepends exactly "ARC-Seal",
 * "ARC-Message-Signature", "ARC-Authentication-Results" (in that order)
 * to a message whose first field is already Tern's own Received field
 * (every message enters the queue through the SMTP server, which puts
 * Received first; DSNs carry no ARC fields on top).  So a set that starts
 * the header section, with one instance N on all three, N the highest ARC
 * instance in the message, the same d= on the seal and the message
 * signature, and cv= what our sealer writes (none for N = 1, pass above),
 * was made here.  Anything else is left alone.
 *
 * Why the chain still passes after a reseal: RFC 8617 section 5.2 checks
 * only the newest ARC-Message-Signature (the body change breaks the older
 * ones, which only lowers oldest-pass), and every ARC-Seal signs ARC
 * header fields only (section 5.1.1), which the conversion leaves as they
 * were.  The new set keeps i=N and cv= (section 5.1.2: cv= records what
 * the chain below verified as when we first sealed) and the same AAR
 * payload (section 4.1.1: our results when the message arrived).
 *
 * Invariants: nothing here allocates more than the header fields it
 * reads (each bounded by the message); the tag parser accepts FWS around
 * tags and values (RFC 6376 3.2) and refuses a value with inner white
 * space for the tags it reads. */
#include "queue/sign-hook.h"

#include "lib/log.h"
#include "mail/header.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARC_INSTANCE_MAX 50     /* RFC 8617 section 4.2.1 */

static bool fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The value of tag name in the tag list v[0..len) (RFC 6376 3.2), FWS
 * around it removed; NULL when absent, empty, or holding white space. */
static char *tag_get(const char *v, size_t len, const char *name)
{
	size_t i = 0, nl = strlen(name);

	while (i < len) {
		size_t end = i;
		while (end < len && v[end] != ';')
			end++;
		size_t a = i, b = end;
		while (a < b && fws(v[a]))
			a++;
		const char *eq = memchr(v + a, '=', b - a);
		if (eq != NULL) {
			size_t ne = (size_t)(eq - v);
			while (ne > a && fws(v[ne - 1]))
				ne--;
			if (ne - a == nl && strncasecmp(v + a, name, nl) == 0) {
				size_t va = (size_t)(eq - v) + 1;
				while (va < b && fws(v[va]))
					va++;
				while (b > va && fws(v[b - 1]))
					b--;
				for (size_t k = va; k < b; k++)
					if (fws(v[k]) || v[k] == '\0')
						return NULL;
				return b > va ? xstrndup(v + va, b - va) : NULL;
			}
		}
		i = end + 1;
	}
	return NULL;
}

/* i= of an ARC field value as a number 1..50, else 0. */
static unsigned instance_of(struct slice value)
{
	char *s = tag_get(value.p, value.len, "i");
	unsigned n = 0;

	if (s != NULL && strlen(s) <= 2 && strspn(s, "0123456789") == strlen(s) && s[0] != '0')
		n = (unsigned)atoi(s);
	free(s);
	return n <= ARC_INSTANCE_MAX ? n : 0;
}

static const char *const set_names[3] = {
	"ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results",
};

/* Which ARC field name this is: 0..2 as in set_names, -1 for another. */
static int arc_kind(struct slice name)
{
	for (int k = 0; k < 3; k++)
		if (slice_eq_ci(name, set_names[k]))
			return k;
	return -1;
}

/* The AAR payload: the value after "i=N;" with the white space before it
 * skipped (folds inside are kept: the sealer keeps them too). */
static char *aar_payload(struct slice value)
{
	const char *semi = memchr(value.p, ';', value.len);
	size_t off = 0;

	/* "i=N" comes first, as the sealer writes it */
	while (off < value.len && fws(value.p[off]))
		off++;
	if (semi == NULL || off + 1 >= value.len || value.p[off] != 'i' ||
	    (value.p[off + 1] != '=' && !fws(value.p[off + 1])))
		return NULL;
	off = (size_t)(semi - value.p) + 1;
	while (off < value.len && fws(value.p[off]))
		off++;
	if (off == value.len || memchr(value.p + off, '\0', value.len - off) != NULL)
		return NULL;
	return xstrndup(value.p + off, value.len - off);
}

void sign_hook_arc_set_free(struct sign_hook_arc_set *set)
{
	free(set->domain);
	free(set->aar);
	memset(set, 0, sizeof(*set));
}

size_t sign_hook_arc_top(const char *data, size_t len, struct sign_hook_arc_set *set)
{
	struct header_iter it;
	struct header_field f, top[3];
	unsigned highest = 0, n = 0;
	size_t end = 0;
	int r;

	memset(set, 0, sizeof(*set));
	header_iter_init(&it, data, len);
	/* the three fields, in the sealer's order, from the very first byte */
	for (int k = 0; k < 3; k++) {
		if (header_iter_next(&it, &top[k]) != 1 || arc_kind(top[k].name) != k ||
		    (size_t)(top[k].raw.p - data) != end ||
		    top[k].raw.p[top[k].raw.len - 1] != '\n')
			return 0;
		end += top[k].raw.len;
		unsigned i = instance_of(top[k].value);
		if (i == 0 || (k > 0 && i != n))
			return 0;
		n = i;
	}
	/* N must be the newest instance of the whole message */
	while ((r = header_iter_next(&it, &f)) != 0) {
		if (r == 1 && arc_kind(f.name) >= 0) {
			unsigned i = instance_of(f.value);
			if (i > highest)
				highest = i;
		}
	}
	if (highest >= n)
		return 0;
	char *d = tag_get(top[0].value.p, top[0].value.len, "d");
	char *ams_d = tag_get(top[1].value.p, top[1].value.len, "d");
	char *cv = tag_get(top[0].value.p, top[0].value.len, "cv");
	char *aar = aar_payload(top[2].value);
	bool ok = d != NULL && ams_d != NULL && cv != NULL && aar != NULL &&
		  strcasecmp(d, ams_d) == 0 &&
		  strcasecmp(cv, n == 1 ? "none" : "pass") == 0;
	free(ams_d);
	free(cv);
	if (!ok) {
		free(d);
		free(aar);
		return 0;
	}
	set->instance = n;
	set->cv_pass = n > 1;
	set->domain = d;
	set->aar = aar;
	return end;
}

int sign_hook_arc_reseal(const struct sign_hook_arc_set *set, const char *data, size_t len,
			 struct buf *out, const char **error_r)
{
	struct sign_hook_arc_set now;
	int ret;

	ret = sign_hook_seal(set->domain, data, len, set->aar, out, error_r);
	if (ret < 0)
		return -1;
	if (ret == 0) {
		*error_r = "no active key for the sealing domain";
		return -1;
	}
	/* the new set must be the one removed, made again: same i=, cv=, d= */
	if (sign_hook_arc_top(buf_cstr(out), out->len, &now) == 0 ||
	    now.instance != set->instance || now.cv_pass != set->cv_pass ||
	    strcasecmp(now.domain, set->domain) != 0) {
		sign_hook_arc_set_free(&now);
		buf_reset(out);
		*error_r = "the new ARC set does not have the removed set's instance, cv= or domain";
		return -1;
	}
	sign_hook_arc_set_free(&now);
	return 0;
}
