/* COMPRESS (RFC 4978): "COMPRESS DEFLATE" turns on raw DEFLATE in both
 * directions, starting with the byte after the CRLF of the tagged OK
 * (which goes out uncompressed); lib/conn.c stacks the compression under
 * IMAP and above TLS, so every other command is unaware of it.
 *
 * RFC 4978 section 3: allowed once authenticated (the grammar adds it to
 * command-auth, which the selected state accepts too, as Dovecot does);
 * a second COMPRESS, or one while TLS itself compresses, answers NO
 * [COMPRESSIONACTIVE] (RFC 5530 3); an unknown mechanism is BAD.  Bytes
 * the client pipelined after the command are already compressed, and are
 * inflated before the next command is read. */
#include "imap/imap-private.h"
#include "lib/log.h"

#include <openssl/ssl.h>

void imap_cmd_compress(struct imap_session *s, const struct imap_command *cmd)
{
	const char *error = NULL;

	if (cmd->nargs != 1 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_bad(s, "Syntax: COMPRESS DEFLATE");
		return;
	}
	if (!imap_arg_atom_is(&cmd->args[0], "DEFLATE")) {
		imap_bad(s, "Unknown compression mechanism (only DEFLATE)");
		return;
	}
	if (conn_compressed(&s->c)) {
		imap_tagged(s, "NO", "[COMPRESSIONACTIVE] DEFLATE is already active");
		return;
	}
	if (s->c.ssl != NULL && SSL_get_current_compression(s->c.ssl) != NULL) {
		imap_tagged(s, "NO", "[COMPRESSIONACTIVE] TLS compresses this connection already");
		return;
	}
	imap_tagged(s, "OK", "DEFLATE active");
	if (conn_start_compress(&s->c, &error) < 0) {
		/* the client compresses from now on: nothing more can be said */
		log_error("imap", "sid=%s event=compress_failed error=%s", s->c.id, log_quote(error));
		conn_disconnect(&s->c, "compression failed");
	}
}
