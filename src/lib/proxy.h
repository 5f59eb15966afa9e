/* HAProxy PROXY protocol, versions 1 (text) and 2 (binary), server side.
 * Shared by SMTP, IMAP and POP3 listeners; accepted only from addresses the
 * administrator trusts (config proxy_trusted).  Spec:
 * https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt */
#ifndef TERN_LIB_PROXY_H
#define TERN_LIB_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 107          /* longest v1 header including CRLF */
#define PROXY_V2_MAX (16 + 2048)  /* we refuse larger TLVs */

enum proxy_status { PROXY_ERROR = -1, PROXY_NEED_MORE = 0, PROXY_OK = 1 };

struct proxy_info {
	bool local;                  /* v2 LOCAL / v1 UNKNOWN: keep the real peer */
	struct sockaddr_storage src; /* the client, when !local */
	struct sockaddr_storage dst;
	socklen_t src_len, dst_len;
};

/* Parse a header at the start of data[0..len).  PROXY_NEED_MORE when more
 * bytes are needed (never more than PROXY_V2_MAX in all), PROXY_OK with
 * *consumed_r bytes to drop, PROXY_ERROR with *error_r. */
enum proxy_status proxy_parse(const unsigned char *data, size_t len, struct proxy_info *info_r,
			      size_t *consumed_r, const char **error_r);

/* Is addr inside one of the "a.b.c.d", "a.b.c.d/n", "::1", "x::/n" entries? */
bool proxy_addr_trusted(const struct sockaddr *addr, const char *const *cidrs, unsigned count);

#endif
