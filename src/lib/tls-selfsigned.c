/* Self-signed certificate generation with the OpenSSL 3 API
 * (see tls-selfsigned.h).
 *
 * Profile (RFC 5280): version 3, random positive 127-bit serial, subject
 * and issuer CN=hostname, validity now-1h .. now+10 years, extensions
 * basicConstraints CA:FALSE (critical), keyUsage digitalSignature
 * (critical; ECDHE key exchange needs no keyEncipherment),
 * extendedKeyUsage serverAuth, subjectAltName DNS:hostname (RFC 6125: the
 * name clients check), subjectKeyIdentifier.  Files are opened O_EXCL so
 * an existing key is never replaced, and the key file is 0600 from the
 * moment it exists. */
#include "lib/tls-selfsigned.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/buf.h"

#define SELFSIGNED_DAYS 3650

static __thread char selfsigned_error[512];

static int selfsigned_fail(const char **error_r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int selfsigned_fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;
	size_t len;
	unsigned long e = ERR_get_error();

	va_start(ap, fmt);
	vsnprintf(selfsigned_error, sizeof(selfsigned_error), fmt, ap);
	va_end(ap);
	len = strlen(selfsigned_error);
	if (e != 0 && len + 3 < sizeof(selfsigned_error)) {
		strcpy(selfsigned_error + len, ": ");
		ERR_error_string_n(e, selfsigned_error + len + 2, sizeof(selfsigned_error) - len - 2);
	}
	ERR_clear_error();
	*error_r = selfsigned_error;
	return -1;
}

static int add_ext(X509 *cert, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -1;
	int ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static X509 *make_cert(EVP_PKEY *key, const char *hostname, const char **error_r)
{
	X509 *cert = X509_new();
	X509_NAME *name;
	BIGNUM *serial = BN_new();
	char *san = NULL;

	if (cert == NULL || serial == NULL)
		goto fail;
	if (!X509_set_version(cert, X509_VERSION_3))
		goto fail;
	/* RFC 5280 4.1.2.2: positive, at most 20 octets, unpredictable */
	if (!BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) == NULL)
		goto fail;
	if (X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(cert), SELFSIGNED_DAYS, 0, NULL) == NULL)
		goto fail;
	if (!X509_set_pubkey(cert, key))
		goto fail;
	name = X509_get_subject_name(cert);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)hostname, -1, -1, 0) ||
	    !X509_set_issuer_name(cert, name))
		goto fail;
	san = xasprintf("DNS:%s", hostname);
	if (add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(cert, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(cert, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_ext(cert, NID_subject_alt_name, san) < 0 ||
	    add_ext(cert, NID_subject_key_identifier, "hash") < 0)
		goto fail;
	if (X509_sign(cert, key, EVP_sha256()) == 0)
		goto fail;
	free(san);
	BN_free(serial);
	return cert;
fail:
	selfsigned_fail(error_r, "making the certificate for %s", hostname);
	free(san);
	BN_free(serial);
	X509_free(cert);
	return NULL;
}

static FILE *create_file(const char *path, mode_t mode, const char **error_r)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		selfsigned_fail(error_r, "%s: %s", path, strerror(errno));
		return NULL;
	}
	/* the umask must not widen or narrow what we asked for */
	if (fchmod(fd, mode) < 0) {
		selfsigned_fail(error_r, "chmod %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return NULL;
	}
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		selfsigned_fail(error_r, "%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
	}
	return f;
}

static int finish_file(FILE *f, const char *path, bool ok, const char **error_r)
{
	if (ok && fflush(f) != 0)
		ok = false;
	if (ok && fsync(fileno(f)) < 0)
		ok = false;
	if (fclose(f) != 0)
		ok = false;
	if (!ok)
		return selfsigned_fail(error_r, "writing %s", path);
	return 0;
}

int tls_selfsigned_create(const char *hostname, const char *cert_path, const char *key_path,
			  const char **error_r)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	FILE *kf = NULL, *cf = NULL;
	int ret = -1;

	key = EVP_EC_gen("P-256");
	if (key == NULL) {
		selfsigned_fail(error_r, "generating an EC P-256 key");
		goto out;
	}
	cert = make_cert(key, hostname, error_r);
	if (cert == NULL)
		goto out;
	kf = create_file(key_path, 0600, error_r);
	if (kf == NULL)
		goto out;
	bool ok = PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL) == 1;
	if (finish_file(kf, key_path, ok, error_r) < 0) {
		unlink(key_path);
		goto out;
	}
	cf = create_file(cert_path, 0644, error_r);
	if (cf == NULL) {
		unlink(key_path);
		goto out;
	}
	ok = PEM_write_X509(cf, cert) == 1;
	if (finish_file(cf, cert_path, ok, error_r) < 0) {
		unlink(cert_path);
		unlink(key_path);
		goto out;
	}
	ret = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return ret;
}
