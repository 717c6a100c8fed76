/* One JSON line per request on stderr. */
#ifndef WGLLM_SERVER_ACCESS_LOG_H
#define WGLLM_SERVER_ACCESS_LOG_H

#include <stdbool.h>

struct srv_conn;
void srv_access_log(const struct srv_conn *c, bool completed, double seconds);

#endif
