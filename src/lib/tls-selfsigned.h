/* A self-signed certificate for a fresh installation (`tern init`), so
 * STARTTLS and implicit TLS work from the first start.  Replace it with a
 * certificate from a CA (ACME) for clients that check names. */
#ifndef TERN_LIB_TLS_SELFSIGNED_H
#define TERN_LIB_TLS_SELFSIGNED_H

/* Make an EC P-256 key and an X.509v3 certificate for hostname
 * (subject CN and subjectAltName DNS:hostname, valid 10 years, serverAuth),
 * signed with itself (SHA-256).  Writes key_path (PKCS#8 PEM, created with
 * mode 0600, never overwritten) and cert_path (PEM, mode 0644, never
 * overwritten).  Returns 0, or -1 with *error_r; on error neither file is
 * left behind. */
int tls_selfsigned_create(const char *hostname, const char *cert_path, const char *key_path,
			  const char **error_r);

#endif
