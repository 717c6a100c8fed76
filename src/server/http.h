/* The libmicrohttpd daemon: one thread per connection, so a request may wait for
 * its generation (or stream it) without holding up anyone else. */
#ifndef WGLLM_SERVER_HTTP_H
#define WGLLM_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct srv_server;

/* Binds and listens (a port in use fails here), before the model loads: connections wait in
   the backlog until srv_http_start serves them. */
bool srv_http_listen(struct srv_server *srv, char *err, size_t err_size);
/* Serves the listening socket (opening it first if srv_http_listen was not called). */
bool srv_http_start(struct srv_server *srv, char *err, size_t err_size);
int srv_http_port(struct srv_server *srv);
/* Closes the listening socket; connections already accepted carry on. */
void srv_http_stop_accepting(struct srv_server *srv);
void srv_http_stop(struct srv_server *srv);

#endif
