/* Shared between the master (serve.c) and the worker (serve-worker.c). */
#ifndef TERN_CLI_SERVE_PRIVATE_H
#define TERN_CLI_SERVE_PRIVATE_H

#include "lib/config.h"
#include <openssl/ssl.h>
#include <stdbool.h>

/* One bound listening socket, owned by the master and inherited by workers. */
struct serve_socket {
	enum listener_kind kind;
	char addr[64];
	int port;
	int fd;
	bool local;   /* the sendmail Unix socket (at cfg->sendmail.socket), kind unused */
};

struct serve_state {
	struct config *cfg;
	SSL_CTX *tls;
	struct serve_socket *socks;
	unsigned sock_count;
};

/* Worker process entry: drops privileges, opens the store, runs the event
 * loops over st's sockets until told to stop.  Never returns. */
void serve_worker_main(const struct serve_state *st) __attribute__((noreturn));

/* Protocols this build serves (the others are configured but not yet bound). */
static inline int serve_kind_implemented(enum listener_kind k)
{
	return k == LISTENER_SMTP || k == LISTENER_SUBMISSION || k == LISTENER_SUBMISSIONS ||
	       k == LISTENER_POP3 || k == LISTENER_POP3S || k == LISTENER_IMAP ||
	       k == LISTENER_IMAPS || k == LISTENER_HTTP || k == LISTENER_HTTPS;
}

#endif
