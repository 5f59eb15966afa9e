/* TLS glue over OpenSSL 3 for the server side: one SSL_CTX per certificate
 * set, built by the master (which can read root-only keys) before the
 * worker starts, and rebuilt on SIGHUP.  Settings: TLS 1.2 and 1.3 only,
 * OpenSSL's default secure ciphers, server cipher preference, no
 * compression, no renegotiation (RFC 7457 attacks). */
#ifndef TERN_LIB_TLS_H
#define TERN_LIB_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* Load cert (PEM chain) and key; NULL with *error_r (a static or
 * thread-local string) on failure. */
SSL_CTX *tls_server_ctx_create(const char *cert_file, const char *key_file, const char **error_r);

/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" for Received
 * headers and logs. */
void tls_describe(SSL *ssl, char *out, size_t outsz);

/* The last OpenSSL error as a string (thread-local buffer), for logs. */
const char *tls_last_error(void);

#endif
