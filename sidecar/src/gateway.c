/*
 * gateway.c — seed 000 v1-v3: /v1/sse, /v2/sse + POST /v2/message, /v3/sse + POST
 * /v3/message, and the LISTEN connection that feeds every SSE stream (pg_listen.c).
 *
 * v2 and v3 are the same service (v3 adds the v3_messages channel, which pg_listen.c delivers
 * to every open stream of the user). A message goes through the extension's outbox,
 * herald.send('user:' || username, body), so it is replayable with Last-Event-ID; the SSE
 * stream of a user follows stream user:<username>.
 */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "http_util.h"
#include "log.h"
#include "modules.h"
#include "pg_async.h"
#include "pg_listen.h"
#include "sse.h"
#include "subscribers.h"

#define MODULE "gateway"

/* user_prelude checks the method and returns the username query parameter, or NULL after
 * a 405 or 400. */
static const char *user_prelude(h2o_req_t *req, const char *method)
{
    if (!hs_http_require_method(req, method))
        return NULL;
    const char *u = hs_http_query_param(req, "username");
    if (u == NULL || *u == '\0') {
        hs_http_send_error(req, 400, "missing query parameter username");
        return NULL;
    }
    return u;
}

/* ---------------- v1 ---------------- */

static void on_v1_tick(hs_sse_t *sse, void *data)
{
    hs_sse_send(sse, NULL, NULL, "hi!", 3);
}

static int on_v1_sse(h2o_handler_t *self, h2o_req_t *req)
{
    if (user_prelude(req, "GET") == NULL)
        return 0;
    hs_sse_options_t opts = {0};
    opts.last_event_id = -1;
    opts.keepalive_ms = (uint64_t)hs_config.v1_keepalive_ms;
    opts.keepalive_comment = "keep-alive-text";
    opts.tick_ms = (uint64_t)hs_config.v1_interval_ms;
    opts.on_tick = on_v1_tick;
    opts.tick_at_start = 1;
    hs_sse_start(req, &opts);
    return 0;
}

/* ---------------- v2 / v3 ---------------- */

static int user_sse(h2o_req_t *req)
{
    const char *user = user_prelude(req, "GET");
    if (user == NULL)
        return 0;
    int64_t last = hs_sse_last_event_id(req);
    if (hs_auth_require_user(req, user) != 0)
        return 0;
    hs_sse_options_t opts = {0};
    opts.stream = hs_user_stream(&req->pool, user);
    opts.last_event_id = last;
    hs_sse_start(req, &opts);
    return 0;
}

/* A message POSTed here is fanned out to this process's subscribers as soon as its send has
 * committed (the query's callback runs after PostgreSQL's ReadyForQuery, so after the commit),
 * instead of after the doorbell's round trip through the worker and LISTEN: the registry
 * treats it like a doorbell with the message inline (delivered at once when it is the next
 * seq, else the gap is read from the outbox first; the doorbell arriving later is a seq the
 * stream already has and is skipped). */
typedef struct st_user_message_t {
    h2o_req_t *req;
    char *stream;
    const char *body;
    size_t len;
} user_message_t;

static void on_sent(void *data, PGresult *res, const char *error)
{
    user_message_t *m = data;
    if (!hs_pg_result_ok(res)) {
        hs_pg_reply_error(m->req, res, error);
        return;
    }
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        hs_streams_doorbell(m->stream, strtoll(PQgetvalue(res, 0, 0), NULL, 10), "message", m->body, m->len);
    hs_http_send_no_content(m->req);
}

static int user_message(h2o_req_t *req)
{
    const char *user = user_prelude(req, "POST");
    if (user == NULL)
        return 0;
    size_t len;
    const char *body = hs_http_body_checked(req, 0, &len);
    if (body == NULL)
        return 0;
    if (memchr(body, '\0', len) != NULL) {
        hs_http_send_error(req, 400, "the message must be UTF-8 text without NUL bytes");
        return 0;
    }
    user_message_t *m = h2o_mem_alloc_pool(&req->pool, sizeof(*m));
    m->req = req;
    m->stream = hs_user_stream(&req->pool, user);
    m->body = body;
    m->len = len;
    const char *values[2] = {m->stream, body};
    hs_pg_query_req(req, "SELECT herald.send($1, $2::text)", 2, values, on_sent, m);
    return 0;
}

static int on_user_sse(h2o_handler_t *self, h2o_req_t *req)
{
    return user_sse(req);
}

static int on_user_message(h2o_handler_t *self, h2o_req_t *req)
{
    return user_message(req);
}

void hs_gateway_routes(h2o_hostconf_t *host)
{
    hs_route(host, "/v1/sse", on_v1_sse);
    hs_route(host, "/v2/sse", on_user_sse);
    hs_route(host, "/v2/message", on_user_message);
    hs_route(host, "/v3/sse", on_user_sse);
    hs_route(host, "/v3/message", on_user_message);
}

void hs_gateway_start(h2o_loop_t *loop)
{
    hs_streams_init(loop);
    hs_pg_listen_start(loop, hs_config.database_url);
}

void hs_gateway_stop(void)
{
    hs_pg_listen_stop();
    hs_streams_shutdown();
}
