/*
 * sessions_api.c — seed 002 ("eventservice"): the HTTP routes.
 *
 *   GET /ws?sessionId=<UUID>  WebSocket upload of session entries (ws_sessions.c)
 *   GET /session/<UUID>       200 {"type":"SESSION","start","end","children":[{"type":"EVENT",
 *                             "timestamp","name"}...]} (ms, children in time order)
 *                             | 400 not a UUID | 404 unknown session
 *   GET /database_events      text/event-stream of stream "database_events": every stored
 *                             session entry as it commits (event: message, data: row JSON,
 *                             id: seq), resumable with Last-Event-ID, with keep-alive comments
 *
 * PostgreSQL builds every answer (herald.session_json, herald.ingest_session_batch in
 * sql/install/60_sessions.sql); the sidecar checks the identifiers and passes them on.
 */
#include <string.h>

#include "http_util.h"
#include "modules.h"
#include "pg_async.h"
#include "sse.h"
#include "ws_sessions.h"

#define MODULE "sessions"

static int on_session(h2o_handler_t *self, h2o_req_t *req)
{
    if (!hs_http_require_method(req, "GET, HEAD"))
        return 0;
    const char *id = hs_http_path_tail(req, "/session/");
    if (id == NULL || id[0] == '\0') {
        hs_http_send_error(req, 400, "missing session id: GET /session/<UUID>");
        return 0;
    }
    if (!hs_is_uuid(id)) {
        hs_http_send_error(req, 400, "session id must be a UUID");
        return 0;
    }
    const char *values[] = {id};
    hs_pg_query_json_req(req, 200, "SELECT herald.session_json($1::uuid)", 1, values); /* HR031 -> 404 */
    return 0;
}

static int on_database_events(h2o_handler_t *self, h2o_req_t *req)
{
    if (!hs_http_require_path(req, "/database_events"))
        return 0;
    if (!hs_http_require_method(req, "GET"))
        return 0;
    int64_t last = hs_sse_last_event_id(req);
    hs_sse_options_t opts = {0};
    opts.stream = "database_events";
    opts.last_event_id = last;
    hs_sse_start(req, &opts);
    return 0;
}

void hs_sessions_routes(h2o_hostconf_t *host)
{
    hs_route(host, "/ws", hs_ws_sessions_on_req);
    hs_route(host, "/session", on_session);
    hs_route(host, "/database_events", on_database_events);
}
