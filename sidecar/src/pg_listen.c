/* pg_listen.c — see pg_listen.h. */
#include "pg_listen.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "pg_async.h"
#include "subscribers.h"
#include "timer.h"

#define MODULE "listen"

enum listen_step { STEP_HERALD, STEP_V3, STEP_DONE };

static struct {
    h2o_loop_t *loop;
    hs_pg_conn_t *conn;
    enum listen_step step;
    int sending; /* a LISTEN in flight */
    hs_timer_t check;
    hs_timer_t deadline;
    char token[32];   /* the ping in flight ("" = none) */
    uint64_t ping_sent_ms;
    uint64_t counter;
    hs_pg_query_t *ping_query;
} L;

/* ---------------- payloads ---------------- */

static void on_ping_echo(const char *token)
{
    if (L.token[0] == '\0' || strcmp(token, L.token) != 0)
        return; /* another sidecar's ping, or a late one */
    uint64_t rtt = hs_now_ms() - L.ping_sent_ms;
    HS_METRIC_SET(listen_roundtrip_ms, (int64_t)rtt);
    L.token[0] = '\0';
    hs_timer_stop(&L.deadline);
}

static void handle_doorbell(const char *payload)
{
    json_error_t err;
    json_t *root = json_loads(payload, 0, &err);
    if (root == NULL || !json_is_object(root)) {
        hs_warn(MODULE, "malformed herald notification skipped: %.200s", payload);
        json_decref(root);
        return;
    }
    json_t *ping = json_object_get(root, "ping");
    if (ping != NULL) {
        if (json_is_string(ping))
            on_ping_echo(json_string_value(ping));
        json_decref(root);
        return;
    }
    json_t *stream = json_object_get(root, "stream"), *seq = json_object_get(root, "seq");
    if (!json_is_string(stream) || !json_is_integer(seq)) {
        hs_warn(MODULE, "herald notification without stream/seq skipped: %.200s", payload);
        json_decref(root);
        return;
    }
    HS_METRIC_INC(sse_messages_in_total);
    json_t *data = json_object_get(root, "data"), *kind = json_object_get(root, "kind");
    json_t *count = json_object_get(root, "count");
    const char *d = NULL;
    size_t len = 0;
    if (count == NULL && json_is_string(data)) {
        d = json_string_value(data);
        len = json_string_length(data);
    }
    hs_streams_doorbell(json_string_value(stream), (int64_t)json_integer_value(seq),
                        json_is_string(kind) ? json_string_value(kind) : "message", d, len);
    json_decref(root);
}

static void handle_v3(const char *payload)
{
    const char *colon = strchr(payload, ':');
    if (colon == NULL || colon == payload) {
        hs_warn(MODULE, "malformed v3_messages payload skipped (want username:message): %.200s", payload);
        return;
    }
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    h2o_iovec_t user = h2o_strdup(&pool, payload, (size_t)(colon - payload));
    HS_METRIC_INC(sse_messages_in_total);
    hs_streams_direct(hs_user_stream(&pool, user.base), "message", colon + 1, strlen(colon + 1));
    h2o_mem_clear_pool(&pool);
}

void hs_pg_listen_handle(const char *channel, const char *payload)
{
    if (strcmp(channel, "herald") == 0)
        handle_doorbell(payload);
    else if (strcmp(channel, "v3_messages") == 0)
        handle_v3(payload);
}

/* ---------------- the connection ---------------- */

static void on_listen_result(void *data, PGresult *res, const char *error)
{
    L.sending = 0;
    if (!hs_pg_result_ok(res)) {
        if (res != NULL) {
            hs_error(MODULE, "LISTEN failed: %s", PQresultErrorMessage(res));
            hs_pg_conn_reset(L.conn, "LISTEN failed");
        }
        return;
    }
    L.step++;
    if (L.step == STEP_DONE) {
        hs_info(MODULE, "listening on channels herald and v3_messages; catching up %zu streams", hs_streams_count());
        hs_streams_catch_up_all();
    }
}

static void on_ready(hs_pg_conn_t *conn)
{
    if (L.sending || L.step == STEP_DONE)
        return;
    const char *sql = L.step == STEP_HERALD ? "LISTEN herald" : "LISTEN v3_messages";
    L.sending = 1;
    if (hs_pg_conn_send(conn, sql, 0, NULL, on_listen_result, NULL) != 0)
        L.sending = 0;
}

static void on_notify(hs_pg_conn_t *conn, PGnotify *note)
{
    hs_pg_listen_handle(note->relname, note->extra ? note->extra : "");
}

static void on_lost(hs_pg_conn_t *conn, const char *why)
{
    L.step = STEP_HERALD;
    L.sending = 0;
    L.token[0] = '\0';
    hs_timer_stop(&L.deadline);
}

/* ---------------- the round-trip check ---------------- */

static void on_check(hs_timer_t *t);

static void arm_check(void)
{
    hs_timer_start(L.loop, &L.check, (uint64_t)(hs_config.listen_check_ms > 0 ? hs_config.listen_check_ms : 5000), on_check);
}

static void on_deadline(hs_timer_t *t)
{
    if (L.token[0] == '\0')
        return;
    hs_warn(MODULE, "no NOTIFY round trip within %d ms: resetting the LISTEN connection", hs_config.listen_check_ms * 2);
    L.token[0] = '\0';
    hs_pg_conn_reset(L.conn, "NOTIFY round trip timed out");
}

static void on_ping_sent(void *data, PGresult *res, const char *error)
{
    L.ping_query = NULL;
    if (!hs_pg_result_ok(res)) {
        /* the pool, not the LISTEN connection, failed: do not judge the latter */
        L.token[0] = '\0';
        hs_timer_stop(&L.deadline);
    }
}

static void on_check(hs_timer_t *t)
{
    arm_check();
    if (L.step != STEP_DONE || !hs_pg_is_available() || L.token[0] != '\0')
        return;
    snprintf(L.token, sizeof(L.token), "%08x%" PRIu64, (unsigned)rand(), ++L.counter);
    char payload[64];
    snprintf(payload, sizeof(payload), "{\"ping\":\"%s\"}", L.token);
    const char *values[1] = {payload};
    L.ping_sent_ms = hs_now_ms();
    uint64_t deadline = (uint64_t)(hs_config.listen_check_ms > 0 ? hs_config.listen_check_ms : 5000) * 2;
    if (deadline < 2000)
        deadline = 2000;
    hs_timer_start(L.loop, &L.deadline, deadline, on_deadline);
    L.ping_query = hs_pg_query("SELECT pg_notify('herald', $1)", 1, values, on_ping_sent, NULL);
}

/* ---------------- public ---------------- */

void hs_pg_listen_start(h2o_loop_t *loop, const char *conninfo)
{
    static const hs_pg_conn_callbacks_t cbs = {on_ready, on_notify, on_lost};
    L.loop = loop;
    L.step = STEP_HERALD;
    L.conn = hs_pg_conn_create(loop, conninfo, &cbs, NULL);
    arm_check();
}

void hs_pg_listen_stop(void)
{
    hs_timer_stop(&L.check);
    hs_timer_stop(&L.deadline);
    if (L.ping_query != NULL) {
        hs_pg_query_cancel(L.ping_query);
        L.ping_query = NULL;
    }
    if (L.conn != NULL) {
        hs_pg_conn_destroy(L.conn);
        L.conn = NULL;
    }
}

int hs_pg_listen_is_up(void)
{
    return L.conn != NULL && L.step == STEP_DONE && hs_pg_conn_is_up(L.conn);
}
