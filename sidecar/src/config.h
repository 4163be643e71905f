/*
 * config.h — every setting of herald-sidecar, from environment variables and flags.
 *
 * Each setting has one environment variable (the seeds' own names where they had one:
 * PORT, ORIGIN, EXPIRY, SECRET, eventListenerPort, clientListenerPort) and one flag
 * (--name=value or --name value); flags win. `herald-sidecar --help` prints the table.
 * To add a setting: a field here, a row in config.c's table.
 */
#ifndef HS_CONFIG_H
#define HS_CONFIG_H

#include <stddef.h>

typedef struct st_hs_config_t {
    /* HTTP */
    char *host;            /* HOST: address to bind */
    int port;              /* PORT */
    char *origin;          /* ORIGIN: comma-separated allowed CORS origins ("" = none) */
    size_t max_body;       /* HERALD_MAX_BODY: request body limit in bytes */
    char *static_dir;      /* HERALD_STATIC_DIR: the web page's files */
    /* PostgreSQL */
    char *database_url;    /* DATABASE_URL */
    int pg_pool_size;      /* HERALD_PG_POOL */
    int listen_check_ms;   /* HERALD_LISTEN_CHECK_MS: NOTIFY round-trip check interval */
    /* auth */
    char *secret;          /* SECRET: JWT HMAC key ("" = random per start, loopback only) */
    int expiry;            /* EXPIRY: JWT lifetime in seconds */
    char *auth;            /* HERALD_AUTH: auto|on|off (auto = on unless bound to loopback) */
    /* SSE */
    int sse_retry_ms;      /* HERALD_SSE_RETRY_MS: the retry: field sent at stream start */
    int sse_keepalive_ms;  /* HERALD_SSE_KEEPALIVE_MS: keep-alive comment for /v2 /v3 /v4 /database_events */
    int v1_interval_ms;    /* HERALD_V1_INTERVAL_MS: /v1/sse "hi!" period */
    int v1_keepalive_ms;   /* HERALD_V1_KEEPALIVE_MS: /v1/sse keep-alive comment period */
    int events_status_ms;  /* HERALD_EVENTS_STATUS_MS: /events internal_status period */
    size_t sse_max_buffer; /* HERALD_SSE_MAX_BUFFER: bytes queued for one subscriber before it is cut */
    /* WebSocket */
    size_t ws_max_message; /* HERALD_WS_MAX_MESSAGE: bytes */
    int ws_idle_ms;        /* HERALD_WS_IDLE_MS */
    /* follower maze */
    int fm_enabled;        /* HERALD_FOLLOWERMAZE: 1|0 */
    int fm_event_port;     /* eventListenerPort */
    int fm_client_port;    /* clientListenerPort */
    size_t fm_window;      /* HERALD_FM_WINDOW: max events held for reordering */
    int fm_skip_min_ms;    /* HERALD_FM_SKIP_MIN_MS: floor of the adaptive skip timeout */
    int fm_skip_max_ms;    /* HERALD_FM_SKIP_MAX_MS: ceiling of the adaptive skip timeout */
    size_t fm_client_max_buffer; /* HERALD_FM_CLIENT_MAX_BUFFER: bytes queued per client before cut */
    int fm_id_timeout_ms;  /* HERALD_FM_ID_TIMEOUT_MS: time for a client to send its id line */
    /* relay */
    int relay_enabled;     /* HERALD_RELAY: 1|0 */
    int relay_port;        /* HERALD_RELAY_PORT */
    char *relay_upstreams; /* HERALD_RELAY_UPSTREAMS: comma-separated SSE URLs */
    int relay_workers;     /* HERALD_RELAY_WORKERS: worker processes per pool */
    int relay_max_restarts;    /* HERALD_RELAY_MAX_RESTARTS: intensity limit ... */
    int relay_restart_period_ms; /* HERALD_RELAY_RESTART_PERIOD_MS: ... within this period */
    /* logging */
    char *log_level;       /* HERALD_LOG_LEVEL */
} hs_config_t;

extern hs_config_t hs_config;

/* hs_config_load fills hs_config from defaults, the environment and argv. Returns 0, or
 * prints a message and returns 1 (bad value) or 2 (--help printed: exit 0). */
int hs_config_load(int argc, char **argv);
/* hs_config_is_loopback: the bind address is a loopback one. */
int hs_config_is_loopback(void);
/* hs_config_auth_required: per-user streams need a token (HERALD_AUTH and the bind address). */
int hs_config_auth_required(void);

#endif
