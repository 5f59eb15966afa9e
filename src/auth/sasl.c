/* SASL server mechanisms (RFC 4422): PLAIN (RFC 4616), LOGIN (the
 * de-facto "Username:"/"Password:" exchange) and SCRAM-SHA-256 (RFC 5802
 * with RFC 7677's hash).
 *
 * Each auth_sasl is one exchange and moves through its states once; a
 * finished exchange (OK, FAIL, ERROR) answers any further step with
 * ERROR.  Work that may be slow - the credential lookup and password
 * verification - runs on the thread pool, and the step's callback then
 * runs on the event_base (threadpool_submit semantics).  Two documented
 * modes for tests and tools: with pool == NULL the work runs inline and
 * the callback runs before auth_sasl_step() returns; with a pool but
 * base == NULL the callback runs on the pool thread.  Cheap steps
 * (challenges, syntax errors, the SCRAM proof check, which is two HMACs)
 * call back inline.  While a job is queued the auth_sasl belongs to the
 * pool thread: stepping or freeing it then is a caller bug (panic).
 *
 * Unknown users cost the same as known ones: PLAIN/LOGIN verify the
 * password against a dummy hash, and SCRAM answers with a salt derived
 * from the name by an HMAC keyed with a per-process secret (stable for
 * repeated tries), failing only at the proof.  A user without SCRAM keys
 * (imported from Dovecot) gets the same fake exchange.  Passwords are
 * wiped from memory once verified.  No SASLprep (RFC 5802 5.1 asks for
 * it; like Dovecot we compare the bytes as sent). */
#include "auth/auth-private.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/threadpool.h"
#include "store/store.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SASL_MAX_AUTHZID 255
#define SASL_MAX_AUTHCID 255
#define SASL_MAX_SCRAM_MSG 4096      /* a client-first/final is ~200 bytes */
#define SASL_MAX_NONCE 256
#define SASL_SERVER_NONCE_BYTES 24

/* A yescrypt hash of a random string: verifying against it costs what a
 * real check costs, and no password matches it. */
#define SASL_DUMMY_HASH "$y$j9T$xyXWKRq7I/I/t/dyjWwyt/$c7mTfWuAkdmv8o/U2IpNGAw1fe68JchaFgKUl7D7qN8"

enum sasl_mech { MECH_PLAIN, MECH_LOGIN, MECH_SCRAM };

enum sasl_state {
	ST_START,
	ST_PLAIN_RESPONSE,   /* sent the empty challenge */
	ST_LOGIN_USER,       /* sent "Username:" */
	ST_LOGIN_PASS,       /* sent "Password:" */
	ST_SCRAM_FIRST,      /* sent the empty challenge, want client-first */
	ST_SCRAM_FINAL,      /* sent server-first, want client-final */
	ST_BUSY,             /* a job is on the pool */
	ST_DONE,
};

struct auth_sasl {
	enum sasl_mech mech;
	enum sasl_state state;
	enum sasl_state next_state;   /* after the pending job, if it continues */
	struct store *store;
	struct threadpool *pool;
	struct event_base *base;
	auth_sasl_cb *cb;
	void *ctx;
	struct auth_result result;
	struct buf out;
	char *reason;                 /* owned copy behind result.reason */

	char *login_user;             /* LOGIN: raw user name as sent */
	char *user;                   /* normalised authentication identity */
	char *password;               /* pending verification; wiped after */
	char *address;                /* with OK */
	int64_t user_id;

	/* SCRAM */
	char *gs2_header;
	char *client_first_bare;
	char *client_nonce;
	char *server_first;
	char *nonce;                  /* client + server nonce */
	bool scram_real;              /* cred holds the user's real keys */
	const char *scram_fake_reason;
	struct auth_scram_cred cred;
};

const char *auth_sasl_mechanisms(void)
{
	return "PLAIN LOGIN SCRAM-SHA-256";
}

struct auth_sasl *auth_sasl_begin(const char *mech, struct store *store,
				  struct threadpool *pool, struct event_base *base)
{
	enum sasl_mech m;
	if (strcasecmp(mech, "PLAIN") == 0)
		m = MECH_PLAIN;
	else if (strcasecmp(mech, "LOGIN") == 0)
		m = MECH_LOGIN;
	else if (strcasecmp(mech, "SCRAM-SHA-256") == 0)
		m = MECH_SCRAM;
	else
		return NULL;
	struct auth_sasl *sasl = xcalloc(1, sizeof(*sasl));
	sasl->mech = m;
	sasl->state = ST_START;
	sasl->store = store;
	sasl->pool = pool;
	sasl->base = base;
	buf_init(&sasl->out, SASL_MAX_SCRAM_MSG);
	return sasl;
}

static void sasl_wipe_password(struct auth_sasl *sasl)
{
	if (sasl->password != NULL) {
		OPENSSL_cleanse(sasl->password, strlen(sasl->password));
		free(sasl->password);
		sasl->password = NULL;
	}
}

void auth_sasl_free(struct auth_sasl **saslp)
{
	struct auth_sasl *sasl = *saslp;
	if (sasl == NULL)
		return;
	if (sasl->state == ST_BUSY)
		panic("auth_sasl_free while a verification is pending");
	sasl_wipe_password(sasl);
	buf_free(&sasl->out);
	free(sasl->reason);
	free(sasl->login_user);
	free(sasl->user);
	free(sasl->address);
	free(sasl->gs2_header);
	free(sasl->client_first_bare);
	free(sasl->client_nonce);
	free(sasl->server_first);
	free(sasl->nonce);
	OPENSSL_cleanse(&sasl->cred, sizeof(sasl->cred));
	free(sasl);
	*saslp = NULL;
}

/* Record the step's verdict (without calling back). */
static void sasl_set(struct auth_sasl *sasl, enum auth_sasl_status status, const char *reason)
{
	free(sasl->reason);
	sasl->reason = reason != NULL ? xstrdup(reason) : NULL;
	if (status == AUTH_SASL_FAIL || status == AUTH_SASL_ERROR)
		buf_reset(&sasl->out);   /* a verdict carries no data */
	sasl->result.status = status;
	sasl->result.reason = sasl->reason;
	sasl->result.out = (const unsigned char *)buf_cstr(&sasl->out);
	sasl->result.out_len = sasl->out.len;
	if (status == AUTH_SASL_OK) {
		sasl->result.user_id = sasl->user_id;
		sasl->result.address = sasl->address;
	} else if (status == AUTH_SASL_FAIL) {
		/* the name tried, for the auth_failed log line (fail2ban) */
		sasl->result.address = sasl->user;
	}
	if (status != AUTH_SASL_CONTINUE)
		sasl->next_state = ST_DONE;
}

static void sasl_callback(struct auth_sasl *sasl)
{
	sasl->state = sasl->next_state;
	sasl->cb(sasl->ctx, &sasl->result);
}

/* Finish this step inline. */
static void sasl_reply(struct auth_sasl *sasl, enum auth_sasl_status status,
		       const char *reason)
{
	sasl_set(sasl, status, reason);
	sasl_callback(sasl);
}

static void sasl_challenge(struct auth_sasl *sasl, const char *text, enum sasl_state next)
{
	buf_reset(&sasl->out);
	buf_append_str(&sasl->out, text);
	sasl->next_state = next;
	sasl_reply(sasl, AUTH_SASL_CONTINUE, NULL);
}

static void sasl_job_done(void *arg)
{
	sasl_callback(arg);
}

/* Run work off the loop (or inline without a pool), then call back. */
static void sasl_run(struct auth_sasl *sasl, void (*work)(void *arg))
{
	sasl->state = ST_BUSY;
	if (sasl->pool == NULL) {
		work(sasl);
		sasl_job_done(sasl);
		return;
	}
	threadpool_submit(sasl->pool, sasl->base, work, sasl_job_done, sasl);
}

static int sasl_user_get(struct auth_sasl *sasl, const char *address,
			 struct store_user *user_r, const char **error_r)
{
	if (auth_hooks.user_get != NULL)
		return auth_hooks.user_get(sasl->store, address, user_r, error_r);
	if (sasl->store == NULL) {
		*error_r = "no store";
		return -1;
	}
	return store_user_get(sasl->store, address, user_r, error_r);
}

/* ---- PLAIN and LOGIN: password verification on the pool ---- */

static void sasl_verify_work(void *arg)
{
	struct auth_sasl *sasl = arg;
	struct store_user u;
	const char *error = NULL;
	const char *dummy = auth_hooks.dummy_hash != NULL ? auth_hooks.dummy_hash :
			    SASL_DUMMY_HASH;
	memset(&u, 0, sizeof(u));
	buf_reset(&sasl->out);

	if (sasl->user == NULL) {
		(void)auth_password_verify(sasl->password, dummy);
		sasl_set(sasl, AUTH_SASL_FAIL, "user name is not an address");
		goto out;
	}
	int r = sasl_user_get(sasl, sasl->user, &u, &error);
	if (r < 0) {
		char *msg = xasprintf("user lookup failed: %s", error != NULL ? error : "?");
		sasl_set(sasl, AUTH_SASL_FAIL, msg);
		free(msg);
		goto out;
	}
	if (r == 0 || u.password_hash == NULL) {
		(void)auth_password_verify(sasl->password, dummy);
		sasl_set(sasl, AUTH_SASL_FAIL, r == 0 ? "unknown user" : "user has no password");
		goto out;
	}
	r = auth_password_verify(sasl->password, u.password_hash);
	if (r < 0) {
		log_warn("auth", "event=bad_stored_hash user=%s", log_quote(sasl->user));
		sasl_set(sasl, AUTH_SASL_FAIL, "unsupported stored password hash");
	} else if (r == 0) {
		sasl_set(sasl, AUTH_SASL_FAIL, "wrong password");
	} else {
		sasl->user_id = u.id;
		sasl->address = xstrdup(u.address != NULL ? u.address : sasl->user);
		sasl_set(sasl, AUTH_SASL_OK, NULL);
	}
out:
	sasl_wipe_password(sasl);
	store_user_clear(&u);
}

/* PLAIN message (RFC 4616 section 2): [authzid] NUL authcid NUL passwd. */
static void sasl_plain(struct auth_sasl *sasl, const unsigned char *in, size_t len)
{
	const unsigned char *nul1 = memchr(in, '\0', len);
	const unsigned char *nul2 = nul1 != NULL ?
		memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - in)) : NULL;
	if (nul2 == NULL) {
		sasl_reply(sasl, AUTH_SASL_ERROR, "PLAIN message needs two NUL separators");
		return;
	}
	size_t zlen = (size_t)(nul1 - in);
	const char *authcid = (const char *)nul1 + 1;
	size_t clen = (size_t)(nul2 - nul1 - 1);
	const char *passwd = (const char *)nul2 + 1;
	size_t plen = len - (size_t)(nul2 + 1 - in);
	if (memchr(passwd, '\0', plen) != NULL) {
		sasl_reply(sasl, AUTH_SASL_ERROR, "PLAIN message has more than two NULs");
		return;
	}
	if (zlen > SASL_MAX_AUTHZID || clen > SASL_MAX_AUTHCID || plen > AUTH_MAX_PASSWORD) {
		sasl_reply(sasl, AUTH_SASL_ERROR, "PLAIN field too long");
		return;
	}
	if (clen == 0 || plen == 0) {
		sasl_reply(sasl, AUTH_SASL_ERROR, "PLAIN authcid or password empty");
		return;
	}
	sasl->user = auth_username_normalize(authcid, clen);
	if (zlen > 0) {
		char *authzid = auth_username_normalize((const char *)in, zlen);
		bool same = authzid != NULL && sasl->user != NULL &&
			    strcmp(authzid, sasl->user) == 0;
		free(authzid);
		if (!same) {
			sasl_reply(sasl, AUTH_SASL_FAIL, "authorization identity differs");
			return;
		}
	}
	sasl->password = xstrndup(passwd, plen);
	sasl_run(sasl, sasl_verify_work);
}

static void sasl_login_user(struct auth_sasl *sasl, const unsigned char *in, size_t len)
{
	if (len == 0 || len > SASL_MAX_AUTHCID || memchr(in, '\0', len) != NULL) {
		sasl_reply(sasl, AUTH_SASL_ERROR, "LOGIN user name empty, too long or has NUL");
		return;
	}
	sasl->login_user = xstrndup((const char *)in, len);
	sasl_challenge(sasl, "Password:", ST_LOGIN_PASS);
}

static void sasl_login_pass(struct auth_sasl *sasl, const unsigned char *in, size_t len)
{
	if (len == 0 || len > AUTH_MAX_PASSWORD || memchr(in, '\0', len) != NULL) {
		sasl_reply(sasl, AUTH_SASL_ERROR, "LOGIN password empty, too long or has NUL");
		return;
	}
	/* checked only now so every user name gets asked for a password */
	sasl->user = auth_username_normalize(sasl->login_user, strlen(sasl->login_user));
	sasl->password = xstrndup((const char *)in, len);
	sasl_run(sasl, sasl_verify_work);
}

/* ---- SCRAM-SHA-256 ---- */

static unsigned char scram_fake_secret[32];
static pthread_once_t scram_fake_once = PTHREAD_ONCE_INIT;

static void scram_fake_init(void)
{
	if (RAND_bytes(scram_fake_secret, sizeof(scram_fake_secret)) != 1)
		fatal("auth: no random bytes for the SCRAM secret");
}

/* saslname (RFC 5802 section 7): "=2C" is ',', "=3D" is '=', any other
 * '=' is an error.  Returns a malloc'd string or NULL. */
static char *scram_decode_saslname(const char *p, size_t len)
{
	if (len == 0)
		return NULL;
	struct buf b;
	buf_init(&b, len);
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		if (c == '=') {
			if (i + 2 < len && p[i + 1] == '2' && p[i + 2] == 'C')
				c = ',';
			else if (i + 2 < len && p[i + 1] == '3' && p[i + 2] == 'D')
				c = '=';
			else {
				buf_free(&b);
				return NULL;
			}
			i += 2;
		}
		buf_append(&b, &c, 1);
	}
	return buf_steal(&b);
}

/* Next ','-separated attribute of s[*pos..len); advances *pos past it. */
static struct slice scram_next_attr(const char *s, size_t len, size_t *pos)
{
	size_t start = *pos;
	const char *comma = memchr(s + start, ',', len - start);
	size_t end = comma != NULL ? (size_t)(comma - s) : len;
	*pos = comma != NULL ? end + 1 : len + 1;
	return (struct slice){ s + start, end - start };
}

static bool scram_printable_nonce(struct slice v)
{
	if (v.len == 0 || v.len > SASL_MAX_NONCE)
		return false;
	for (size_t i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.p[i];
		if (c < 0x21 || c > 0x7e || c == ',')
			return false;
	}
	return true;
}

static void scram_lookup_work(void *arg)
{
	struct auth_sasl *sasl = arg;
	struct store_user u;
	const char *error = NULL;
	memset(&u, 0, sizeof(u));

	int r = sasl_user_get(sasl, sasl->user, &u, &error);
	if (r < 0) {
		char *msg = xasprintf("user lookup failed: %s", error != NULL ? error : "?");
		buf_reset(&sasl->out);
		sasl_set(sasl, AUTH_SASL_FAIL, msg);
		free(msg);
		store_user_clear(&u);
		return;
	}
	sasl->scram_real = false;
	if (r == 0) {
		sasl->scram_fake_reason = "unknown user";
	} else if (u.scram_sha256 == NULL || auth_scram_parse(u.scram_sha256, &sasl->cred) < 0) {
		sasl->scram_fake_reason = u.scram_sha256 == NULL ? "user has no SCRAM keys" :
					  "malformed stored SCRAM keys";
	} else {
		sasl->scram_real = true;
		sasl->user_id = u.id;
		sasl->address = xstrdup(u.address != NULL ? u.address : sasl->user);
	}
	store_user_clear(&u);
	if (!sasl->scram_real) {
		/* deterministic per name, so repeated tries see the same salt */
		unsigned char mac[AUTH_SCRAM_KEY_LEN];
		pthread_once(&scram_fake_once, scram_fake_init);
		auth_hmac_sha256(scram_fake_secret, sizeof(scram_fake_secret),
				 sasl->user, strlen(sasl->user), mac);
		memset(&sasl->cred, 0, sizeof(sasl->cred));
		memcpy(sasl->cred.salt, mac, AUTH_SCRAM_SALT_LEN);
		sasl->cred.salt_len = AUTH_SCRAM_SALT_LEN;
		sasl->cred.iterations = AUTH_SCRAM_ITERATIONS;
	}

	char *snonce;
	if (auth_hooks.server_nonce != NULL) {
		snonce = xstrdup(auth_hooks.server_nonce);
	} else {
		unsigned char rnd[SASL_SERVER_NONCE_BYTES];
		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			buf_reset(&sasl->out);
			sasl_set(sasl, AUTH_SASL_FAIL, "no random bytes for the nonce");
			return;
		}
		snonce = base64_encode_str(rnd, sizeof(rnd));
	}
	sasl->nonce = xasprintf("%s%s", sasl->client_nonce, snonce);
	free(snonce);
	char *salt = base64_encode_str(sasl->cred.salt, sasl->cred.salt_len);
	sasl->server_first = xasprintf("r=%s,s=%s,i=%u", sasl->nonce, salt, sasl->cred.iterations);
	free(salt);
	buf_reset(&sasl->out);
	buf_append_str(&sasl->out, sasl->server_first);
	sasl->next_state = ST_SCRAM_FINAL;
	sasl_set(sasl, AUTH_SASL_CONTINUE, NULL);
}

/* client-first-message (RFC 5802 section 7). */
static void scram_client_first(struct auth_sasl *sasl, const unsigned char *in, size_t len)
{
	const char *s = (const char *)in;
	if (len == 0 || len > SASL_MAX_SCRAM_MSG || memchr(in, '\0', len) != NULL) {
		sasl_reply(sasl, AUTH_SASL_ERROR, "SCRAM client-first empty, too long or has NUL");
		return;
	}
	size_t pos = 0;
	struct slice flag = scram_next_attr(s, len, &pos);
	if (flag.len >= 2 && flag.p[0] == 'p' && flag.p[1] == '=') {
		sasl_reply(sasl, AUTH_SASL_ERROR, "SCRAM channel binding is not supported");
		return;
	}
	if (flag.len != 1 || (flag.p[0] != 'n' && flag.p[0] != 'y') || pos > len) {
		sasl_reply(sasl, AUTH_SASL_ERROR, "SCRAM bad gs2-cbind-flag");
		return;
	}
	struct slice authz = scram_next_attr(s, len, &pos);
	if (pos > len) {
		sasl_reply(sasl, AUTH_SASL_ERROR, "SCRAM gs2 header not terminated");
		return;
	}
	char *authzid = NULL;
	if (authz.len > 0) {
		if (authz.len < 3 || authz.p[0] != 'a' || authz.p[1] != '=' ||
		    (authzid = scram_decode_saslname(authz.p + 2, authz.len - 2)) == NULL) {
			sasl_reply(sasl, AUTH_SASL_ERROR, "SCRAM bad authzid");
			return;
		}
	}
	sasl->gs2_header = xstrndup(s, pos);
	sasl->client_first_bare = xstrndup(s + pos, len - pos);

	struct slice a = scram_next_attr(s, len, &pos);
	if (a.len >= 2 && a.p[0] == 'm' && a.p[1] == '=') {
		free(authzid);
		sasl_reply(sasl, AUTH_SASL_ERROR, "SCRAM mandatory extension not supported");
		return;
	}
	char *user = NULL;
	if (a.len < 3 || a.p[0] != 'n' || a.p[1] != '=' ||
	    (user = scram_decode_saslname(a.p + 2, a.len - 2)) == NULL) {
		free(authzid);
		sasl_reply(sasl, AUTH_SASL_ERROR, "SCRAM bad username attribute");
		return;
	}
	struct slice r = pos <= len ? scram_next_attr(s, len, &pos) : (struct slice){ "", 0 };
	if (r.len < 3 || r.p[0] != 'r' || r.p[1] != '=' ||
	    !scram_printable_nonce((struct slice){ r.p + 2, r.len - 2 })) {
		free(authzid);
		free(user);
		sasl_reply(sasl, AUTH_SASL_ERROR, "SCRAM bad nonce attribute");
		return;
	}
	/* remaining attributes are optional extensions, ignored */
	sasl->client_nonce = xstrndup(r.p + 2, r.len - 2);
	sasl->user = auth_username_normalize(user, strlen(user));
	bool authz_ok = true;
	if (authzid != NULL) {
		char *z = auth_username_normalize(authzid, strlen(authzid));
		authz_ok = z != NULL && sasl->user != NULL && strcmp(z, sasl->user) == 0;
		free(z);
	}
	free(authzid);
	free(user);
	if (sasl->user == NULL) {
		sasl_reply(sasl, AUTH_SASL_FAIL, "user name is not an address");
		return;
	}
	if (!authz_ok) {
		sasl_reply(sasl, AUTH_SASL_FAIL, "authorization identity differs");
		return;
	}
	sasl_run(sasl, scram_lookup_work);
}

/* client-final-message (RFC 5802 section 7) and the proof check of
 * section 3: ClientKey = proof XOR HMAC(StoredKey, AuthMessage) must hash
 * to StoredKey. */
static void scram_client_final(struct auth_sasl *sasl, const unsigned char *in, size_t len)
{
	const char *s = (const char *)in;
	if (len == 0 || len > SASL_MAX_SCRAM_MSG || memchr(in, '\0', len) != NULL) {
		sasl_reply(sasl, AUTH_SASL_ERROR, "SCRAM client-final empty, too long or has NUL");
		return;
	}
	size_t pos = 0;
	struct slice c = scram_next_attr(s, len, &pos);
	char *cb_expect = base64_encode_str(sasl->gs2_header, strlen(sasl->gs2_header));
	bool c_ok = c.len == strlen(cb_expect) + 2 && c.p[0] == 'c' && c.p[1] == '=' &&
		    memcmp(c.p + 2, cb_expect, c.len - 2) == 0;
	free(cb_expect);
	if (!c_ok || pos > len) {
		sasl_reply(sasl, AUTH_SASL_ERROR, "SCRAM channel binding attribute mismatch");
		return;
	}
	struct slice r = scram_next_attr(s, len, &pos);
	if (r.len != strlen(sasl->nonce) + 2 || r.p[0] != 'r' || r.p[1] != '=' ||
	    memcmp(r.p + 2, sasl->nonce, r.len - 2) != 0 || pos > len) {
		sasl_reply(sasl, AUTH_SASL_ERROR, "SCRAM nonce mismatch");
		return;
	}
	/* the proof is the last attribute; extensions may sit before it */
	struct slice p = { NULL, 0 };
	size_t proof_start = 0;
	while (pos <= len) {
		size_t at = pos;
		struct slice a = scram_next_attr(s, len, &pos);
		if (a.len >= 2 && a.p[0] == 'p' && a.p[1] == '=') {
			p = a;
			proof_start = at;
		}
	}
	unsigned char proof[AUTH_SCRAM_KEY_LEN];
	if (p.p == NULL || p.p + p.len != s + len ||
	    base64_decode_exact(p.p + 2, p.len - 2, proof, sizeof(proof)) < 0) {
		sasl_reply(sasl, AUTH_SASL_ERROR, "SCRAM bad proof attribute");
		return;
	}
	/* client-final-message-without-proof ends before the ",p=" */
	struct buf am;
	buf_init(&am, BUF_UNLIMITED);
	buf_printf(&am, "%s,%s,", sasl->client_first_bare, sasl->server_first);
	buf_append(&am, s, proof_start - 1);

	unsigned char sig[AUTH_SCRAM_KEY_LEN], client_key[AUTH_SCRAM_KEY_LEN];
	unsigned char stored[AUTH_SCRAM_KEY_LEN];
	auth_hmac_sha256(sasl->cred.stored_key, AUTH_SCRAM_KEY_LEN, am.data, am.len, sig);
	for (size_t i = 0; i < sizeof(client_key); i++)
		client_key[i] = proof[i] ^ sig[i];
	if (EVP_Digest(client_key, sizeof(client_key), stored, NULL, EVP_sha256(), NULL) != 1)
		memset(stored, 0, sizeof(stored));
	bool match = CRYPTO_memcmp(stored, sasl->cred.stored_key, AUTH_SCRAM_KEY_LEN) == 0;

	buf_reset(&sasl->out);
	if (!sasl->scram_real) {
		sasl_reply(sasl, AUTH_SASL_FAIL, sasl->scram_fake_reason);
	} else if (!match) {
		sasl_reply(sasl, AUTH_SASL_FAIL, "wrong password");
	} else {
		auth_hmac_sha256(sasl->cred.server_key, AUTH_SCRAM_KEY_LEN, am.data, am.len, sig);
		buf_append_str(&sasl->out, "v=");
		base64_encode(&sasl->out, sig, sizeof(sig));
		sasl_reply(sasl, AUTH_SASL_OK, NULL);
	}
	OPENSSL_cleanse(client_key, sizeof(client_key));
	buf_free(&am);
}

/* ---- dispatch ---- */

void auth_sasl_step(struct auth_sasl *sasl, const unsigned char *in, size_t in_len,
		    bool have_input, auth_sasl_cb *cb, void *ctx)
{
	if (sasl->state == ST_BUSY)
		panic("auth_sasl_step while a verification is pending");
	sasl->cb = cb;
	sasl->ctx = ctx;
	memset(&sasl->result, 0, sizeof(sasl->result));
	sasl->next_state = ST_DONE;
	if (in == NULL) {
		in = (const unsigned char *)"";
		in_len = 0;
	}
	/* only the first step may come without a response */
	if (!have_input && sasl->state != ST_START)
		have_input = true;

	switch (sasl->state) {
	case ST_START:
		if (sasl->mech == MECH_PLAIN) {
			if (have_input)
				sasl_plain(sasl, in, in_len);
			else
				sasl_challenge(sasl, "", ST_PLAIN_RESPONSE);
		} else if (sasl->mech == MECH_LOGIN) {
			if (have_input)
				sasl_login_user(sasl, in, in_len);
			else
				sasl_challenge(sasl, "Username:", ST_LOGIN_USER);
		} else {
			if (have_input)
				scram_client_first(sasl, in, in_len);
			else
				sasl_challenge(sasl, "", ST_SCRAM_FIRST);
		}
		return;
	case ST_PLAIN_RESPONSE:
		sasl_plain(sasl, in, in_len);
		return;
	case ST_LOGIN_USER:
		sasl_login_user(sasl, in, in_len);
		return;
	case ST_LOGIN_PASS:
		sasl_login_pass(sasl, in, in_len);
		return;
	case ST_SCRAM_FIRST:
		scram_client_first(sasl, in, in_len);
		return;
	case ST_SCRAM_FINAL:
		scram_client_final(sasl, in, in_len);
		return;
	case ST_BUSY:
	case ST_DONE:
		break;
	}
	sasl_reply(sasl, AUTH_SASL_ERROR, "authentication exchange already finished");
}
