/* routes.c — every path of the HTTP server, in one table. h2o 2.2.5 picks the first
 * registered prefix that matches, so specific paths come before "/". */
#include "routes.h"

#include "http_util.h"
#include "metrics.h"
#include "modules.h"
#include "pg_async.h"
#include "pg_listen.h"
#include "strbuf.h"

#include <stdio.h>

static int on_healthcheck(h2o_handler_t *self, h2o_req_t *req)
{
    hs_http_send(req, 200, "text/plain; charset=utf-8", "OK", 2);
    return 0;
}

/* /readyz: whether this process can serve streams now, for load balancers and orchestrators
 * (/healthcheck only says that it runs): a query connection to PostgreSQL is up and the
 * LISTEN connection listens. 200 when both, 503 otherwise; the JSON says which is missing. */
static int on_readyz(h2o_handler_t *self, h2o_req_t *req)
{
    int database = hs_pg_is_available(), listen = hs_pg_listen_is_up();
    char body[64];
    int len = snprintf(body, sizeof(body), "{\"ready\":%s,\"database\":%s,\"listen\":%s}",
                       database && listen ? "true" : "false", database ? "true" : "false", listen ? "true" : "false");
    hs_http_send_json(req, database && listen ? 200 : 503, body, (size_t)len);
    return 0;
}

static int on_metrics(h2o_handler_t *self, h2o_req_t *req)
{
    hs_strbuf_t sb = {0};
    hs_metrics_render(&sb);
    hs_http_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", sb.base, sb.len);
    hs_strbuf_free(&sb);
    return 0;
}

static int on_fallback(h2o_handler_t *self, h2o_req_t *req)
{
    if (hs_static_serve(req) == 0)
        return 0;
    hs_http_send_error(req, 404, "no route for %.*s %.*s", (int)req->method.len, req->method.base,
                       (int)hs_http_path_len(req), req->path.base);
    return 0;
}

void hs_routes_register(h2o_hostconf_t *host)
{
    hs_route(host, "/healthcheck", on_healthcheck);
    hs_route(host, "/readyz", on_readyz);
    hs_route(host, "/metrics", on_metrics);
    hs_gateway_routes(host);  /* /v1/sse /v2/... /v3/... */
    hs_reports_routes(host);  /* /v4/... */
    hs_broker_routes(host);   /* /users /login /events /insert */
    hs_sessions_routes(host); /* /ws /session /database_events */
    hs_route(host, "/", on_fallback);
}
