/*
 * main.c — herald-sidecar: start, signals, the main event loop.
 *
 * One h2o evloop on the main thread carries HTTP (SSE, WebSocket, JSON routes), the libpq
 * query pool and the LISTEN connection. The follower-maze sequencer and the tweet relay
 * run on threads of their own (followermaze.c, relay.c). SIGTERM/SIGINT stop everything.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>
#include <sodium.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "modules.h"
#include "net.h"
#include "pg_async.h"
#include "relay_worker.h"
#include "routes.h"
#include "timer.h"

#define MODULE "main"

static h2o_globalconf_t globalconf;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;
static volatile sig_atomic_t stop_requested;

static void on_signal(int signo)
{
    stop_requested = signo;
}

/* raise_nofile lifts RLIMIT_NOFILE to its hard limit: tens of thousands of SSE clients. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            hs_warn(MODULE, "could not raise the open-file limit: %s", strerror(errno));
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        hs_info(MODULE, "open-file limit: %llu", (unsigned long long)rl.rlim_cur);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    for (int i = 0; i < 64; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            return;
        h2o_accept(&accept_ctx, sock);
    }
}

static int create_listener(h2o_loop_t *loop, h2o_socket_t **out)
{
    char err[256];
    int fd = hs_net_listen(hs_config.host, hs_config.port, 4096, err, sizeof(err));
    if (fd < 0) {
        hs_error(MODULE, "%s", err);
        return -1;
    }
    *out = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(*out, on_accept);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], HS_RELAY_WORKER_FLAG) == 0)
        return hs_relay_worker_main(argc, argv); /* a relay worker process (relay_worker.h) */
    int rc = hs_config_load(argc, argv);
    if (rc == 2)
        return 0;
    if (rc != 0)
        return 2;
    hs_log_set_level(hs_config.log_level);
    if (sodium_init() < 0) {
        hs_error(MODULE, "libsodium failed to initialise");
        return 1;
    }
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    if (hs_broker_init() != 0)
        return 2;

    h2o_config_init(&globalconf);
    globalconf.max_request_entity_size = hs_config.max_body * 4 + 65536; /* ours answers 413 with JSON */
    h2o_hostconf_t *host = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    hs_routes_register(host);

    h2o_context_init(&ctx, h2o_evloop_create(), &globalconf);
    accept_ctx.ctx = &ctx;
    accept_ctx.hosts = globalconf.hosts;

    h2o_socket_t *listener = NULL;
    if (create_listener(ctx.loop, &listener) != 0)
        return 1;

    /* Threads started by modules must not take our signals. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    if (hs_config.fm_enabled && hs_followermaze_start() != 0)
        return 1;
    if (hs_config.relay_enabled && hs_relay_start() != 0)
        return 1;
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGHUP, SIG_IGN);

    hs_pg_init(ctx.loop, hs_config.database_url, hs_config.pg_pool_size);
    hs_gateway_start(ctx.loop);
    hs_info(MODULE, "herald-sidecar listening on http://%s:%d/ (database %s)", hs_config.host, hs_config.port,
            hs_config.database_url);

    while (!stop_requested)
        h2o_evloop_run(ctx.loop, 1000);

    hs_info(MODULE, "stopping (signal %d)", (int)stop_requested);
    h2o_socket_read_stop(listener);
    h2o_socket_close(listener);
    hs_relay_stop();
    hs_followermaze_stop();
    hs_gateway_stop();
    hs_pg_shutdown();
    hs_info(MODULE, "stopped");
    return 0;
}
