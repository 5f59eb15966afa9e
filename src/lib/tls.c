/* Server TLS contexts (see tls.h). */
#include "lib/tls.h"

#include <stdio.h>
#include <openssl/err.h>

const char *tls_last_error(void)
{
	static __thread char msg[256];
	unsigned long e = ERR_get_error();

	if (e == 0)
		return "no OpenSSL error";
	ERR_error_string_n(e, msg, sizeof(msg));
	ERR_clear_error();
	return msg;
}

SSL_CTX *tls_server_ctx_create(const char *cert_file, const char *key_file, const char **error_r)
{
	static __thread char err[512];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		*error_r = tls_last_error();
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* bufferevent_openssl writes may move between buffers */
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"tern", 4);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		snprintf(err, sizeof(err), "cannot load certificate %s: %s", cert_file, tls_last_error());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, sizeof(err), "cannot load key %s: %s", key_file, tls_last_error());
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, sizeof(err), "key %s does not match certificate %s", key_file, cert_file);
		goto fail;
	}
	return ctx;
fail:
	*error_r = err;
	SSL_CTX_free(ctx);
	return NULL;
}

void tls_describe(SSL *ssl, char *out, size_t outsz)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int alg = 0, bits = c != NULL ? SSL_CIPHER_get_bits(c, &alg) : 0;

	snprintf(out, outsz, "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
		 c != NULL ? SSL_CIPHER_get_name(c) : "none", bits, alg);
}
