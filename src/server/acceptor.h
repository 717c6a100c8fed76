/* Accepts connections for the HTTP daemon and holds each one, without a thread, until
 * its first request head has arrived and passed srv_head_check; then hands it to
 * libmicrohttpd. A client that trickles its head costs a descriptor, not a thread, and
 * a malformed head is answered with JSON here (libmicrohttpd would answer with HTML).
 * Later requests on a kept-alive connection are parsed by libmicrohttpd alone. */
#ifndef WGLLM_SERVER_ACCEPTOR_H
#define WGLLM_SERVER_ACCEPTOR_H

#include <microhttpd.h>
#include <stddef.h>

#include "server/conn_guard.h"
#include "server/metrics.h"

typedef struct srv_acceptor srv_acceptor;

/* Takes ownership of listen_fd (a non-blocking listening socket). The daemon must have
   been started with MHD_USE_NO_LISTEN_SOCKET and MHD_USE_ITC. Refused heads are counted
   in metrics (route "other"). NULL on failure (listen_fd is closed). */
srv_acceptor *srv_acceptor_start(int listen_fd, struct MHD_Daemon *daemon, srv_guard *guard, srv_metrics *metrics,
                                 int max_pending, double timeout, size_t max_body);
/* Stops accepting: closes the listening socket and the connections not handed over yet. */
void srv_acceptor_stop(srv_acceptor *a);

#endif
