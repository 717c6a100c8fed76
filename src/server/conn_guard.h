/* Connection admission and request deadlines for the HTTP daemon.
 *
 * libmicrohttpd's own timeout is an idle timeout that each incoming byte resets, so a
 * client that trickles its request (slowloris) could hold a connection for as long as
 * it likes. The guard caps connections overall and per client address, keeps the last
 * slots for addresses that hold none yet, and shuts down connections (held by the
 * acceptor or by libmicrohttpd) whose request has not fully arrived within a deadline
 * that incoming bytes do not reset.
 *
 * Threading: every function may be called from any thread. */
#ifndef WGLLM_SERVER_CONN_GUARD_H
#define WGLLM_SERVER_CONN_GUARD_H

#include <microhttpd.h>
#include <stdbool.h>
#include <sys/socket.h>

typedef struct srv_guard srv_guard;

typedef struct srv_guard_params {
    int max_connections; /* all clients together */
    int max_per_ip;      /* 0: no per-address limit */
    double request_timeout; /* seconds from connection (or from the previous answer) to a whole request */
} srv_guard_params;

/* Starts the reaper thread. NULL on failure (out of memory or threads). Caller frees with srv_guard_free. */
srv_guard *srv_guard_create(const srv_guard_params *p);
/* Stops the reaper. Call after the daemon has stopped (every connection has been notified closed). */
void srv_guard_free(srv_guard *g);

/* Whether a new connection from addr may be accepted now. */
bool srv_guard_admit(srv_guard *g, const struct sockaddr *addr);
/* Counts an accepted connection and starts its request deadline; fd may be shut down by
   the reaper until srv_guard_untrack, which must come before the descriptor is closed.
   NULL when out of memory. */
void *srv_guard_track(srv_guard *g, int fd, const struct sockaddr *addr);
void srv_guard_untrack(srv_guard *g, void *track);
/* Before MHD_add_connection: MHD's "started" notification adopts the record, so the
   request deadline keeps counting from the accept. If MHD refuses the connection, call
   srv_guard_hand_over_failed (not srv_guard_untrack: MHD may have freed the record). */
void srv_guard_hand_over(srv_guard *g, void *track);
void srv_guard_hand_over_failed(srv_guard *g, void *track);
/* MHD_OPTION_NOTIFY_CONNECTION (cls: the guard): tracks each connection from start to close
   (with srv_guard_track and srv_guard_untrack). */
void srv_guard_notify(void *cls, struct MHD_Connection *mhd, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);

/* The connection's request has fully arrived (or been answered early): its deadline stops. */
void srv_guard_request_received(struct MHD_Connection *mhd);
/* The connection's answer is complete: the deadline of the next request on it starts now. */
void srv_guard_request_done(struct MHD_Connection *mhd);

#endif
