/* config.c — see config.h. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

hs_config_t hs_config;

enum opt_type { OPT_STR, OPT_INT, OPT_SIZE, OPT_BOOL };

struct option_def {
    const char *env;
    const char *flag;
    enum opt_type type;
    void *target;
    const char *def;
    const char *help;
};

#define C(field) ((void *)&hs_config.field)
static const struct option_def options[] = {
    {"HOST", "host", OPT_STR, C(host), "127.0.0.1", "address to bind the HTTP server to"},
    {"PORT", "port", OPT_INT, C(port), "3000", "HTTP port"},
    {"ORIGIN", "origin", OPT_STR, C(origin), "", "allowed CORS origins, comma-separated (empty: no CORS)"},
    {"HERALD_MAX_BODY", "max-body", OPT_SIZE, C(max_body), "1048576", "request body limit in bytes (413 above)"},
    {"HERALD_STATIC_DIR", "static-dir", OPT_STR, C(static_dir), "", "directory of the web page (default: sidecar/static beside the binary)"},
    {"DATABASE_URL", "database-url", OPT_STR, C(database_url), "postgresql://postgres@127.0.0.1:5433/herald", "PostgreSQL connection string"},
    {"HERALD_PG_POOL", "pg-pool", OPT_INT, C(pg_pool_size), "4", "query connections to PostgreSQL"},
    {"HERALD_LISTEN_CHECK_MS", "listen-check-ms", OPT_INT, C(listen_check_ms), "5000", "interval of the LISTEN round-trip check"},
    {"SECRET", "secret", OPT_STR, C(secret), "", "JWT signing key (required unless bound to loopback)"},
    {"EXPIRY", "expiry", OPT_INT, C(expiry), "3600", "JWT lifetime in seconds"},
    {"HERALD_AUTH", "auth", OPT_STR, C(auth), "auto", "per-user stream auth: auto (on unless loopback), on, off"},
    {"HERALD_SSE_RETRY_MS", "sse-retry-ms", OPT_INT, C(sse_retry_ms), "2000", "SSE retry: field sent at stream start"},
    {"HERALD_SSE_KEEPALIVE_MS", "sse-keepalive-ms", OPT_INT, C(sse_keepalive_ms), "30000", "SSE keep-alive comment interval"},
    {"HERALD_V1_INTERVAL_MS", "v1-interval-ms", OPT_INT, C(v1_interval_ms), "15000", "/v1/sse message interval"},
    {"HERALD_V1_KEEPALIVE_MS", "v1-keepalive-ms", OPT_INT, C(v1_keepalive_ms), "3000", "/v1/sse keep-alive comment interval"},
    {"HERALD_EVENTS_STATUS_MS", "events-status-ms", OPT_INT, C(events_status_ms), "10000", "/events internal_status interval"},
    {"HERALD_SSE_MAX_BUFFER", "sse-max-buffer", OPT_SIZE, C(sse_max_buffer), "4194304", "bytes queued for one SSE subscriber before it is cut off"},
    {"HERALD_WS_MAX_MESSAGE", "ws-max-message", OPT_SIZE, C(ws_max_message), "1048576", "largest WebSocket message in bytes (close 1009 above)"},
    {"HERALD_WS_IDLE_MS", "ws-idle-ms", OPT_INT, C(ws_idle_ms), "60000", "idle WebSocket connections are closed after this"},
    {"HERALD_FOLLOWERMAZE", "followermaze", OPT_BOOL, C(fm_enabled), "1", "run the follower-maze sequencer"},
    {"eventListenerPort", "event-listener-port", OPT_INT, C(fm_event_port), "9090", "follower-maze event source port"},
    {"clientListenerPort", "client-listener-port", OPT_INT, C(fm_client_port), "9099", "follower-maze user client port"},
    {"HERALD_FM_WINDOW", "fm-window", OPT_SIZE, C(fm_window), "1048576", "follower-maze reorder window (events)"},
    {"HERALD_FM_SKIP_MIN_MS", "fm-skip-min-ms", OPT_INT, C(fm_skip_min_ms), "200", "floor of the adaptive skip timeout"},
    {"HERALD_FM_SKIP_MAX_MS", "fm-skip-max-ms", OPT_INT, C(fm_skip_max_ms), "5000", "ceiling of the adaptive skip timeout"},
    {"HERALD_FM_CLIENT_MAX_BUFFER", "fm-client-max-buffer", OPT_SIZE, C(fm_client_max_buffer), "8388608", "bytes queued per follower-maze client before it is cut"},
    {"HERALD_FM_ID_TIMEOUT_MS", "fm-id-timeout-ms", OPT_INT, C(fm_id_timeout_ms), "10000", "time a user client has to send its id line"},
    {"HERALD_RELAY", "relay", OPT_BOOL, C(relay_enabled), "1", "run the tweet relay"},
    {"HERALD_RELAY_PORT", "relay-port", OPT_INT, C(relay_port), "8080", "relay command (telnet) port"},
    {"HERALD_RELAY_UPSTREAMS", "relay-upstreams", OPT_STR, C(relay_upstreams),
     "http://localhost:4000/tweets/1,http://localhost:4000/tweets/2", "upstream SSE URLs, comma-separated"},
    {"HERALD_RELAY_WORKERS", "relay-workers", OPT_INT, C(relay_workers), "4", "worker processes per relay pool"},
    {"HERALD_RELAY_MAX_RESTARTS", "relay-max-restarts", OPT_INT, C(relay_max_restarts), "100", "restart intensity: max restarts ..."},
    {"HERALD_RELAY_RESTART_PERIOD_MS", "relay-restart-period-ms", OPT_INT, C(relay_restart_period_ms), "5000", "... within this many ms"},
    {"HERALD_LOG_LEVEL", "log-level", OPT_STR, C(log_level), "info", "debug, info, warn or error"},
};
#undef C
#define NUM_OPTIONS (sizeof(options) / sizeof(options[0]))

static int set_option(const struct option_def *o, const char *value, const char *source)
{
    char *end;
    errno = 0;
    switch (o->type) {
    case OPT_STR:
        *(char **)o->target = (char *)value;
        return 0;
    case OPT_BOOL:
        if (strcmp(value, "1") == 0 || strcasecmp(value, "on") == 0 || strcasecmp(value, "true") == 0 || strcasecmp(value, "yes") == 0)
            *(int *)o->target = 1;
        else if (strcmp(value, "0") == 0 || strcasecmp(value, "off") == 0 || strcasecmp(value, "false") == 0 || strcasecmp(value, "no") == 0)
            *(int *)o->target = 0;
        else
            goto Invalid;
        return 0;
    case OPT_INT: {
        long v = strtol(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || v < 0 || v > INT_MAX)
            goto Invalid;
        *(int *)o->target = (int)v;
        return 0;
    }
    case OPT_SIZE: {
        unsigned long long v = strtoull(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || value[0] == '-')
            goto Invalid;
        *(size_t *)o->target = (size_t)v;
        return 0;
    }
    }
Invalid:
    fprintf(stderr, "herald-sidecar: invalid value \"%s\" for %s (from %s)\n", value, o->env, source);
    return 1;
}

static void print_help(void)
{
    printf("usage: herald-sidecar [--name=value ...]\n\n"
           "herald-sidecar turns Herald's PostgreSQL notifications into SSE streams, takes WebSocket\n"
           "session uploads, runs the follower-maze sequencer and the tweet relay.\n\n"
           "Every setting comes from its environment variable or its flag (flags win):\n\n");
    printf("  %-32s %-28s %-22s %s\n", "flag", "environment variable", "default", "meaning");
    for (size_t i = 0; i < NUM_OPTIONS; i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", options[i].flag);
        printf("  %-32s %-28s %-22s %s\n", flag, options[i].env, options[i].def[0] ? options[i].def : "\"\"", options[i].help);
    }
    printf("\n  --help                           print this and exit\n");
}

int hs_config_load(int argc, char **argv)
{
    for (size_t i = 0; i < NUM_OPTIONS; i++)
        if (set_option(&options[i], options[i].def, "default") != 0)
            return 1;
    for (size_t i = 0; i < NUM_OPTIONS; i++) {
        const char *v = getenv(options[i].env);
        if (v != NULL && set_option(&options[i], v, "environment") != 0)
            return 1;
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help();
            return 2;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "herald-sidecar: unexpected argument \"%s\" (see --help)\n", arg);
            return 1;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const struct option_def *o = NULL;
        for (size_t i = 0; i < NUM_OPTIONS; i++)
            if (strlen(options[i].flag) == name_len && strncmp(options[i].flag, name, name_len) == 0)
                o = &options[i];
        if (o == NULL) {
            fprintf(stderr, "herald-sidecar: unknown option \"%s\" (see --help)\n", arg);
            return 1;
        }
        const char *value = eq ? eq + 1 : (a + 1 < argc ? argv[++a] : NULL);
        if (value == NULL) {
            fprintf(stderr, "herald-sidecar: option \"%s\" needs a value\n", arg);
            return 1;
        }
        if (set_option(o, value, "command line") != 0)
            return 1;
    }
    if (hs_config.port == 0 || hs_config.port > 65535) {
        fprintf(stderr, "herald-sidecar: PORT must be between 1 and 65535\n");
        return 1;
    }
    if (strcmp(hs_config.auth, "auto") != 0 && strcmp(hs_config.auth, "on") != 0 && strcmp(hs_config.auth, "off") != 0) {
        fprintf(stderr, "herald-sidecar: HERALD_AUTH must be auto, on or off\n");
        return 1;
    }
    return 0;
}

int hs_config_is_loopback(void)
{
    const char *h = hs_config.host;
    return strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0 || strcmp(h, "localhost") == 0;
}

int hs_config_auth_required(void)
{
    if (strcmp(hs_config.auth, "on") == 0)
        return 1;
    if (strcmp(hs_config.auth, "off") == 0)
        return 0;
    return !hs_config_is_loopback();
}
