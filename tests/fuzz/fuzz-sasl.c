/* Fuzz target for the SASL server mechanisms (src/auth/sasl.c): feeds
 * arbitrary client messages to PLAIN, LOGIN and SCRAM-SHA-256.
 *
 * Input: byte 0 picks the mechanism (mod 3: PLAIN, LOGIN, SCRAM-SHA-256),
 * byte 1 bit 0 set means "no initial response" for the first step, and
 * the rest is the client's messages separated by '\n'.  Credentials come
 * from a stub lookup (auth_hooks) that knows one user,
 * alice@example.org, password "secret", with cheap {SSHA512} and SCRAM
 * keys; the SCRAM server nonce is fixed so a seed can hold a complete
 * valid exchange.  Checks: every step calls back exactly once, and OK is
 * only ever given for alice. */
#include "auth/auth-private.h"
#include "store/store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_USER "alice@example.org"

static int fuzz_user_get(struct store *store, const char *address, struct store_user *u,
			 const char **error_r)
{
	(void)store; (void)error_r;
	if (strcmp(address, FUZZ_USER) != 0)
		return 0;
	memset(u, 0, sizeof(*u));
	u->id = 1;
	u->address = strdup(FUZZ_USER);
	/* base64(SHA-512("secret" "SALT1234") "SALT1234") */
	u->password_hash = strdup("{SSHA512}JbcNrBrlAe1IOqE1Gr3ZDy2f8/EK7zjUUsDtsNKcEVzBtlcYxRww1j6OhC/SiQhyw/UwzdSPLvDXjJkDCEtDj1NBTFQxMjM0");
	/* password "secret", salt "fuzzsaltfuzzsalt", 4096 iterations */
	u->scram_sha256 = strdup("SCRAM-SHA-256$4096:ZnV6enNhbHRmdXp6c2FsdA==$TCnU9zZwgMHA0atYLto/LdeTnnmosGMdPx5UzvHXMFw=:z06OjNYKhkK6j04SOt6EHHoCciSqDJda6KIh9NDfB94=");
	return 1;
}

struct fuzz_state {
	int calls;
	enum auth_sasl_status status;
};

static void fuzz_cb(void *ctx, const struct auth_result *r)
{
	struct fuzz_state *st = ctx;
	st->calls++;
	st->status = r->status;
	if (r->out_len > 0 && r->out == NULL)
		__builtin_trap();
	if (r->status == AUTH_SASL_OK &&
	    (r->address == NULL || strcmp(r->address, FUZZ_USER) != 0 || r->user_id != 1))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const mechs[] = { "PLAIN", "LOGIN", "SCRAM-SHA-256" };
	auth_hooks.user_get = fuzz_user_get;
	auth_hooks.server_nonce = "FUZZNONCE";
	auth_hooks.dummy_hash = "{SHA512}c2hvcnQ=";
	if (size < 2)
		return 0;
	struct auth_sasl *sasl = auth_sasl_begin(mechs[data[0] % 3], NULL, NULL, NULL);
	bool first_empty = (data[1] & 1) != 0;
	const uint8_t *p = data + 2, *end = data + size;
	struct fuzz_state st = { 0, AUTH_SASL_CONTINUE };
	bool first = true;
	int steps = 0;
	while (st.status == AUTH_SASL_CONTINUE && steps++ < 16) {
		int before = st.calls;
		if (first && first_empty) {
			auth_sasl_step(sasl, NULL, 0, false, fuzz_cb, &st);
		} else {
			const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
			const uint8_t *stop = nl != NULL ? nl : end;
			auth_sasl_step(sasl, p, (size_t)(stop - p), true, fuzz_cb, &st);
			p = nl != NULL ? nl + 1 : end;
		}
		first = false;
		if (st.calls != before + 1)
			__builtin_trap();
		if (p >= end && st.status == AUTH_SASL_CONTINUE && !(steps == 1 && first_empty))
			break;
	}
	/* a finished exchange must refuse more input */
	if (st.status != AUTH_SASL_CONTINUE) {
		auth_sasl_step(sasl, (const uint8_t *)"x", 1, true, fuzz_cb, &st);
		if (st.status != AUTH_SASL_ERROR)
			__builtin_trap();
	}
	auth_sasl_free(&sasl);
	return 0;
}
