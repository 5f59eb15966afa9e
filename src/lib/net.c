/* Listeners, address formatting and per-IP connection counting. */
#include "lib/net.h"
#include "lib/buf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int net_listen(const char *addr, int port, int backlog, const char **error_r)
{
	static __thread char err[256];
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, on = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		len = sizeof(*sin6);
	} else {
		snprintf(err, sizeof(err), "'%s' is not a numeric IPv4 or IPv6 address", addr);
		*error_r = err;
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* SO_REUSEADDR only: SO_REUSEPORT would let a second server bind the
	 * same port silently and split the connections with us. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	{
		int saved = errno;
		snprintf(err, sizeof(err), "cannot listen on [%s]:%d: %s", addr, port,
			 strerror(saved));
		*error_r = err;
		if (fd >= 0)
			close(fd);
		errno = saved;
	}
	return -1;
}

const char *net_addr_str(const struct sockaddr *sa, char *out, size_t outsz)
{
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outsz);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)outsz);
		else
			inet_ntop(AF_INET6, a, out, (socklen_t)outsz);
	} else {
		snprintf(out, outsz, "unknown");
	}
	return out;
}

int net_addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

bool net_addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			return a->s6_addr[12] == 127;
		return IN6_IS_ADDR_LOOPBACK(a);
	}
	return false;
}

/* A small open-addressing table would do; a linked list per bucket keeps
 * removal simple.  The number of entries is bounded by the connection limit. */
struct conn_entry {
	struct conn_entry *next;
	unsigned count;
	char ip[NET_ADDR_MAX];
};

#define CONN_BUCKETS 1024
static struct conn_entry *conn_table[CONN_BUCKETS];
static unsigned conn_total;
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned conn_hash(const char *ip)
{
	unsigned h = 2166136261u;
	for (; *ip; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h % CONN_BUCKETS;
}

bool net_conn_acquire(const char *ip, unsigned max, unsigned total_max)
{
	struct conn_entry **pe, *e;
	bool ok = false;

	pthread_mutex_lock(&conn_lock);
	pe = &conn_table[conn_hash(ip)];
	for (e = *pe; e != NULL && strcmp(e->ip, ip) != 0; e = e->next)
		;
	if (conn_total >= total_max || (e != NULL && e->count >= max))
		goto out;
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		snprintf(e->ip, sizeof(e->ip), "%s", ip);
		e->next = *pe;
		*pe = e;
	}
	e->count++;
	conn_total++;
	ok = true;
out:
	pthread_mutex_unlock(&conn_lock);
	return ok;
}

void net_conn_release(const char *ip)
{
	struct conn_entry **pe, *e;

	pthread_mutex_lock(&conn_lock);
	for (pe = &conn_table[conn_hash(ip)]; (e = *pe) != NULL; pe = &e->next) {
		if (strcmp(e->ip, ip) != 0)
			continue;
		conn_total--;
		if (--e->count == 0) {
			*pe = e->next;
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&conn_lock);
}

unsigned net_conn_total(void)
{
	unsigned n;
	pthread_mutex_lock(&conn_lock);
	n = conn_total;
	pthread_mutex_unlock(&conn_lock);
	return n;
}
