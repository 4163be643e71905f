/*
 * net.h — TCP listeners, shared by the HTTP server, the follower maze, the relay and the tools.
 */
#ifndef HS_NET_H
#define HS_NET_H

#include <stddef.h>

/* hs_net_listen binds host:port (SO_REUSEADDR, close-on-exec, non-blocking) and listens with
 * the given backlog. Returns the fd, or -1 with a message for a person in err. */
int hs_net_listen(const char *host, int port, int backlog, char *err, size_t err_size);

#endif
