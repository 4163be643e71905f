/*
 * reports_api.c — seed 000 v4, the report status app: HTTP routes.
 *
 *   POST /v4/new/report?user_id=U          201 {"userId","reportId","reportStatus":"pending"}
 *   GET  /v4/reports?user_id=U             200 [report, ...] (oldest first; [] when none)
 *   PUT  /v4/report?user_id=U  {"id","status"}
 *                                          200 report | 404 unknown (or another user's) report
 *                                          | 409 transition not in the table | 400 bad body
 *   GET  /v4/report/history?user_id=U&id=R 200 [{version, status, at...}, ...] | 404
 *   GET  /v4/sse?user_id=U                 text/event-stream of stream "user:U": without a
 *                                          Last-Event-ID it starts with one
 *                                          report_status_update per current report (snapshot)
 *                                          and goes on live from the snapshot's position.
 *
 * user_id must be a UUID on every route (else 400). Bound to loopback the routes are open,
 * as in the seed; otherwise (auth.h) each needs a token whose sub is user_id (else 401), sent
 * as "Authorization: Bearer" or ?access_token= (EventSource cannot set headers). The sidecar never parses business JSON:
 * each route is one parameterised call of a herald.* function (sql/install/15_reports_api.sql)
 * whose JSON answer is returned as is; SQL errors map to HTTP through hs_pg_reply_error
 * (HR001 → 409, HR002 → 404, class 22 → 400, no database → 503).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "http_util.h"
#include "modules.h"
#include "pg_async.h"
#include "sse.h"
#include "subscribers.h"

#define MODULE "reports"

/* route_prelude checks path, method, user_id (a UUID, returned in lower case) and, when auth
 * is required, the caller's token; returns NULL after having answered 404, 405, 400 or 401. */
static const char *route_prelude(h2o_req_t *req, const char *path, const char *method)
{
    if (!hs_http_require_path(req, path))
        return NULL;
    if (!hs_http_require_method(req, method))
        return NULL;
    const char *user = hs_http_query_param(req, "user_id");
    if (user == NULL || user[0] == '\0') {
        hs_http_send_error(req, 400, "missing user_id query parameter");
        return NULL;
    }
    if (!hs_is_uuid(user)) {
        hs_http_send_error(req, 400, "user_id must be a UUID");
        return NULL;
    }
    /* canonical lower case: the stream is named user:<uuid as PostgreSQL prints it> */
    char *lower = h2o_mem_alloc_pool(&req->pool, 37);
    for (int i = 0; i < 36; i++)
        lower[i] = (char)tolower((unsigned char)user[i]);
    lower[36] = '\0';
    /* per-user data: off a loopback bind, a token whose sub is this user (auth.h) */
    if (hs_auth_require_user(req, lower) != 0)
        return NULL;
    return lower;
}

static int on_new_report(h2o_handler_t *self, h2o_req_t *req)
{
    const char *user = route_prelude(req, "/v4/new/report", "POST");
    if (user == NULL)
        return 0;
    const char *values[] = {user};
    hs_pg_query_json_req(req, 201, "SELECT herald.api_create_report($1::uuid)", 1, values);
    return 0;
}

static int on_reports(h2o_handler_t *self, h2o_req_t *req)
{
    const char *user = route_prelude(req, "/v4/reports", "GET");
    if (user == NULL)
        return 0;
    const char *values[] = {user};
    hs_pg_query_json_req(req, 200, "SELECT herald.reports_json($1::uuid)", 1, values);
    return 0;
}

static int on_report(h2o_handler_t *self, h2o_req_t *req)
{
    const char *user = route_prelude(req, "/v4/report", "PUT");
    if (user == NULL)
        return 0;
    size_t len;
    const char *body = hs_http_body_checked(req, 0, &len);
    if (body == NULL)
        return 0;
    if (len == 0 || strlen(body) != len) {
        hs_http_send_error(req, 400, len == 0 ? "missing JSON body {\"id\":\"<report>\",\"status\":\"<new status>\"}"
                                              : "the body must be UTF-8 JSON without NUL bytes");
        return 0;
    }
    const char *values[] = {user, body};
    hs_pg_query_json_req(req, 200, "SELECT herald.api_transition($1::uuid, $2)", 2, values);
    return 0;
}

static int on_report_history(h2o_handler_t *self, h2o_req_t *req)
{
    const char *user = route_prelude(req, "/v4/report/history", "GET");
    if (user == NULL)
        return 0;
    const char *id = hs_http_query_param(req, "id");
    if (id == NULL || !hs_is_uuid(id)) {
        hs_http_send_error(req, 400, "id must be the report's UUID");
        return 0;
    }
    const char *values[] = {user, id};
    hs_pg_query_json_req(req, 200, "SELECT herald.report_history_json($1::uuid, $2::uuid)", 2, values);
    return 0;
}

static const char SNAPSHOT_SQL[] = "SELECT * FROM herald.reports_snapshot($1::uuid)";

static int on_sse(h2o_handler_t *self, h2o_req_t *req)
{
    const char *user = route_prelude(req, "/v4/sse", "GET");
    if (user == NULL)
        return 0;
    int64_t last = hs_sse_last_event_id(req);
    const char *stream = hs_user_stream(&req->pool, user);
    const char **params = h2o_mem_alloc_pool(&req->pool, sizeof(*params));
    params[0] = user;
    hs_sse_options_t opts = {0};
    opts.stream = stream;
    opts.last_event_id = last;
    opts.snapshot_sql = SNAPSHOT_SQL;
    opts.snapshot_nparams = 1;
    opts.snapshot_params = params;
    hs_sse_start(req, &opts);
    return 0;
}

void hs_reports_routes(h2o_hostconf_t *host)
{
    /* h2o matches the first registered prefix, segment-aware: specific paths first. */
    hs_route(host, "/v4/new/report", on_new_report);
    hs_route(host, "/v4/reports", on_reports);
    hs_route(host, "/v4/report/history", on_report_history);
    hs_route(host, "/v4/report", on_report);
    hs_route(host, "/v4/sse", on_sse);
}
