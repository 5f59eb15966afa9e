/* The outbound queue's scheduler: finds due recipients in the store's
 * queue (store/queue.c), delivers them per destination domain through
 * DNS (dns/) and the SMTP client (smtp/client.h), records each outcome,
 * retries with growing intervals, and sends DSNs (mail/dsn.h) to the
 * sender on failure and on long delays.  Runs on one event loop of the
 * worker.  docs/delivery.md describes it for administrators. */
#ifndef TERN_QUEUE_QUEUE_H
#define TERN_QUEUE_QUEUE_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <time.h>

struct config;
struct dns_resolver;
struct event_base;
struct store;
struct queue;

struct queue_deps {
	struct event_base *base;     /* the loop everything runs on */
	struct store *store;
	struct dns_resolver *dns;
	SSL_CTX *tls;                /* from smtp_client_tls_ctx_create(), or NULL: the
					queue makes one with the system's CA store */
	const struct config *cfg;    /* hostname, queue group, limits */
};

/* Start scanning (first scan soon).  NULL with *error_r on failure. */
struct queue *queue_start(const struct queue_deps *d, const char **error_r);
/* New mail was queued: scan now rather than at the next interval.  Safe
 * from any thread. */
void queue_kick(struct queue *q);
/* Pause for shutdown, on the queue's loop: no new attempt starts and
 * attempts in flight are abandoned (their recipients stay due: delivery is
 * at least once).  queue_kick stays safe from any thread until
 * queue_stop. */
void queue_pause(struct queue *q);
/* Free the queue (paused first if needed), once no thread can kick it any
 * more.  *q = NULL. */
void queue_stop(struct queue **q);

/* The wait before attempt number attempts + 1 (attempts >= 1 made so
 * far): retry_min doubled per attempt, at most retry_max. */
time_t queue_retry_delay(unsigned retry_min, unsigned retry_max, int attempts);

#endif
