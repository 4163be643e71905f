/*
 * broker_api.c — seed 001, "Broker": users, JWT login, scheduled events over SSE.
 *
 *   POST /users               {"username","password","info"}   -> 200 {"id"}
 *   POST /login               {"username","password"}          -> 200 {"jwt"} | 401
 *   GET  /events              public SSE: latest version of every event, then live
 *   POST /insert        (JWT) {"event","timestamp","data"}     -> 200 {"id"}
 *   GET  /events/{event}(JWT) every version of an event         -> 200 [ {...}, ... ]
 *   GET  /events/{id}/cancel (JWT)                              -> 200 {"id","cancelled"}
 *
 * The sidecar does not look inside business JSON: each route passes the request body (text)
 * to a SQL wrapper of sql/install/55_broker_api.sql, which parses and validates it (class 22
 * errors naming the field -> 400), calls the herald.* function and returns the JSON reply.
 * Passwords are hashed in PostgreSQL, never on this loop. Tokens are checked here (auth.c);
 * the wrappers that take an owner raise SQLSTATE 28000 when the token's user no longer
 * exists, which this file answers with 401.
 *
 * /events, /events/{event} and /events/{id}/cancel share one registration ("/events");
 * on_events dispatches on the raw tail of the path.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "config.h"
#include "http_util.h"
#include "log.h"
#include "metrics.h"
#include "modules.h"
#include "pg_async.h"
#include "sse.h"

#define MODULE "broker"
#define SUB_MAX 128
#define JWT_MAX 1024

static const char events_snapshot_sql[] = "SELECT position, kind, data FROM herald.events_snapshot()";

int hs_broker_init(void)
{
    return hs_auth_init();
}

/* reply_db_error answers a failed wrapper call; 28000 (the token's user is gone) is a 401. */
static void reply_db_error(h2o_req_t *req, PGresult *res, const char *error)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state != NULL && strcmp(state, "28000") == 0) {
        HS_METRIC_INC(auth_refused_total);
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        hs_http_send_error(req, 401, "%s", msg ? msg : "the token's user no longer exists");
        return;
    }
    hs_pg_reply_error(req, res, error);
}

/* on_json_result sends the single json value the wrapper returned. */
static void on_json_result(void *data, PGresult *res, const char *error)
{
    h2o_req_t *req = data;
    if (!hs_pg_result_ok(res)) {
        reply_db_error(req, res, error);
        return;
    }
    hs_pg_reply_json(req, 200, res);
}

/* require_token verifies the bearer token and copies its subject (the user id) to sub. */
static int require_token(h2o_req_t *req, char sub[SUB_MAX])
{
    const char *why = NULL;
    if (hs_auth_verify(hs_auth_bearer(req), sub, SUB_MAX, &why) != 0) {
        HS_METRIC_INC(auth_refused_total);
        hs_debug(MODULE, "token refused: %s", why);
        hs_http_send_error(req, 401, "%s", why);
        return -1;
    }
    if (!hs_is_uuid(sub)) {
        HS_METRIC_INC(auth_refused_total);
        hs_http_send_error(req, 401, "this token was not issued by POST /login (its subject is not a user id)");
        return -1;
    }
    return 0;
}

/* ---- POST /users ---- */

static int on_users(h2o_handler_t *self, h2o_req_t *req)
{
    if (!hs_http_require_method(req, "POST"))
        return 0;
    const char *body = hs_http_body_checked(req, 1, NULL);
    if (body == NULL)
        return 0;
    const char *params[] = {body};
    hs_pg_query_req(req, "SELECT herald.api_create_user($1)", 1, params, on_json_result, req);
    return 0;
}

/* ---- POST /login ---- */

static void on_login_result(void *data, PGresult *res, const char *error)
{
    h2o_req_t *req = data;
    if (!hs_pg_result_ok(res)) {
        reply_db_error(req, res, error);
        return;
    }
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        hs_http_send_error(req, 401, "wrong username or password");
        return;
    }
    char jwt[JWT_MAX], body[JWT_MAX + 16];
    const char *name = PQnfields(res) > 1 && !PQgetisnull(res, 0, 1) ? PQgetvalue(res, 0, 1) : NULL;
    if (hs_auth_issue_named(PQgetvalue(res, 0, 0), name, jwt, sizeof(jwt)) != 0) {
        hs_error(MODULE, "could not issue a token");
        hs_http_send_error(req, 500, "internal error");
        return;
    }
    HS_METRIC_INC(auth_tokens_issued_total);
    int n = snprintf(body, sizeof(body), "{\"jwt\":\"%s\"}", jwt);
    hs_http_send_json(req, 200, body, (size_t)n);
}

static int on_login(h2o_handler_t *self, h2o_req_t *req)
{
    if (!hs_http_require_method(req, "POST"))
        return 0;
    const char *body = hs_http_body_checked(req, 1, NULL);
    if (body == NULL)
        return 0;
    const char *params[] = {body};
    /* the CTE runs the (argon2id) login once; the username becomes the token's "name" claim */
    hs_pg_query_req(req,
                    "WITH l AS MATERIALIZED (SELECT herald.api_login($1) AS id) "
                    "SELECT l.id, u.username FROM l LEFT JOIN herald.users u ON u.id = l.id",
                    1, params, on_login_result, req);
    return 0;
}

/* ---- POST /insert ---- */

static int on_insert(h2o_handler_t *self, h2o_req_t *req)
{
    char sub[SUB_MAX];
    if (!hs_http_require_method(req, "POST") || require_token(req, sub) != 0)
        return 0;
    const char *body = hs_http_body_checked(req, 1, NULL);
    if (body == NULL)
        return 0;
    const char *params[] = {sub, body};
    hs_pg_query_req(req, "SELECT herald.api_insert_event($1::uuid, $2)", 2, params, on_json_result, req);
    return 0;
}

/* ---- GET /events (SSE) ---- */

/* on_status_tick sends the liveness frame "event: internal_status" (no id: it is not part of
 * the stream, so it never moves a client's Last-Event-ID). */
static void on_status_tick(hs_sse_t *sse, void *data)
{
    char now[32], body[160];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
    int up = hs_pg_is_available();
    int n = snprintf(body, sizeof(body), "{\"status\":\"%s\",\"database\":\"%s\",\"time\":\"%s\"}", up ? "ok" : "degraded",
                     up ? "up" : "unavailable", now);
    hs_sse_send(sse, "internal_status", NULL, body, (size_t)n);
}

static int start_events_stream(h2o_req_t *req)
{
    int64_t last = hs_sse_last_event_id(req);
    hs_sse_options_t opts = {0};
    opts.stream = "events";
    opts.last_event_id = last;
    opts.snapshot_sql = events_snapshot_sql;
    opts.tick_ms = hs_config.events_status_ms > 0 ? (uint64_t)hs_config.events_status_ms : 0;
    opts.on_tick = opts.tick_ms > 0 ? on_status_tick : NULL;
    hs_sse_start(req, &opts);
    return 0;
}

/* ---- GET /events/{event} and /events/{id}/cancel ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* path_segment_decode percent-decodes one path segment ('+' stays '+') into the pool.
 * Returns NULL for a decoded NUL byte (which no event name can hold). */
static char *path_segment_decode(h2o_mem_pool_t *pool, const char *s, size_t len)
{
    char *out = h2o_mem_alloc_pool(pool, len + 1), *p = out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *p++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *p++ = s[i];
        }
    }
    *p = '\0';
    return (size_t)(p - out) == strlen(out) ? out : NULL;
}

static int on_event_log(h2o_req_t *req, const char *event)
{
    char sub[SUB_MAX];
    if (!hs_http_require_method(req, "GET") || require_token(req, sub) != 0)
        return 0;
    const char *params[] = {sub, event};
    hs_pg_query_req(req, "SELECT herald.api_event_log($1::uuid, $2)", 2, params, on_json_result, req);
    return 0;
}

static int on_cancel(h2o_req_t *req, const char *id)
{
    char sub[SUB_MAX];
    if (!hs_http_require_method(req, "GET, POST") || require_token(req, sub) != 0)
        return 0;
    if (!hs_is_uuid(id)) {
        hs_http_send_error(req, 404, "no event with id \"%s\" (event ids are UUIDs)", id);
        return 0;
    }
    const char *params[] = {sub, id};
    hs_pg_query_req(req, "SELECT herald.api_cancel_event($1::uuid, $2::uuid)", 2, params, on_json_result, req);
    return 0;
}

/* on_events: "/events" (SSE), "/events/{event}" (log), "/events/{id}/cancel". */
static int on_events(h2o_handler_t *self, h2o_req_t *req)
{
    static const char prefix[] = "/events";
    size_t path_len = hs_http_path_len(req);
    const char *path = req->path.base;
    if (path_len < sizeof(prefix) - 1 || memcmp(path, prefix, sizeof(prefix) - 1) != 0)
        return -1;
    const char *tail = path + sizeof(prefix) - 1, *end = path + path_len;
    if (tail == end || (tail + 1 == end && *tail == '/')) {
        if (!hs_http_require_method(req, "GET"))
            return 0;
        return start_events_stream(req);
    }
    if (*tail != '/')
        return -1; /* "/eventsX": not ours */
    tail++;
    const char *slash = memchr(tail, '/', (size_t)(end - tail));
    char *first = path_segment_decode(&req->pool, tail, (size_t)((slash ? slash : end) - tail));
    if (first == NULL || first[0] == '\0') {
        hs_http_send_error(req, 404, "no route for this path: use /events, /events/{event} or /events/{id}/cancel");
        return 0;
    }
    if (slash == NULL)
        return on_event_log(req, first);
    if ((size_t)(end - slash) == sizeof("/cancel") - 1 && memcmp(slash, "/cancel", sizeof("/cancel") - 1) == 0)
        return on_cancel(req, first);
    hs_http_send_error(req, 404, "no route for this path: use /events, /events/{event} or /events/{id}/cancel");
    return 0;
}

void hs_broker_routes(h2o_hostconf_t *host)
{
    hs_route(host, "/users", on_users);
    hs_route(host, "/login", on_login);
    hs_route(host, "/insert", on_insert);
    hs_route(host, "/events", on_events);
}
