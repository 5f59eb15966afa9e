/* Socket helpers: binding listeners, printing addresses, loopback tests,
 * and the per-IP connection counter the protocol servers share. */
#ifndef TERN_LIB_NET_H
#define TERN_LIB_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define NET_ADDR_MAX 64   /* enough for any IPv6 text form plus scope */

/* Bind and listen on addr:port (numeric IPv4 or IPv6; "::" is IPv6-only so
 * that "0.0.0.0" can be bound beside it).  SO_REUSEADDR is set, not
 * SO_REUSEPORT, so a second server on the same port fails loudly.  The fd
 * is non-blocking and close-on-exec.  -1 with *error_r and errno on failure. */
int net_listen(const char *addr, int port, int backlog, const char **error_r);

/* Numeric address text of sa ("192.0.2.1", "2001:db8::1"; IPv4-mapped
 * IPv6 addresses shown as IPv4). */
const char *net_addr_str(const struct sockaddr *sa, char *out, size_t outsz);
int net_addr_port(const struct sockaddr *sa);
bool net_addr_is_loopback(const struct sockaddr *sa);

/* Per-IP concurrent connection counting (thread-safe, process-wide).
 * net_conn_acquire returns false (and counts nothing) when ip already has
 * max connections or when the process has total_max connections. */
bool net_conn_acquire(const char *ip, unsigned max, unsigned total_max);
void net_conn_release(const char *ip);
unsigned net_conn_total(void);

#endif
