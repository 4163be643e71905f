/*
 * ws_sessions.c — GET /ws?sessionId=<UUID>: session uploads over WebSocket (seed 002).
 * The contract with clients is in ws_sessions.h; this comment is about lifetimes.
 *
 * Each connection is an hs_ws_client_t (its h2o_websocket_conn_t's data). Received text
 * messages wait in a FIFO per connection; one at a time per connection goes to PostgreSQL,
 * which validates and stores it, and its answer becomes one text frame. So the replies come
 * in message order and one connection never has two batches in PostgreSQL at once.
 *
 * Group commit: the messages ready on all connections are stored together, up to
 * HS_WS_GROUP_MAX per call of herald.ingest_session_batches (one transaction, each batch in
 * its own subtransaction: whole or not at all, independently). Every transaction that
 * notifies holds PostgreSQL's notification lock through its commit, so one commit per
 * message would cap all uploads at one message per commit latency. At most HERALD_PG_POOL
 * - 1 groups are in PostgreSQL at once; the others wait, and grow, meanwhile. Groups are formed
 * and answered from a zero-delay timer (the "pump"), never from inside a connection's wslay
 * loop, so a query failing at once cannot re-enter that loop.
 *
 * h2o 2.2.5 + wslay rules this file keeps (reference notes §6.4; h2o issues #1894, #1901,
 * #1944):
 *  - h2o_websocket_proceed runs wslay's send/receive loop, and wslay calls on_ws_msg from
 *    inside it. There we only queue (frames, a close request, a query): freeing the
 *    connection there would leave wslay and proceed running on freed memory.
 *  - The connection and its hs_ws_client_t are freed in one place, destroy(), reached from
 *    on_ws_msg(arg == NULL) — which h2o calls at safe points (a socket error, or proceed
 *    finding nothing left to read or write after the close handshake) — or from the close
 *    grace timer. The other entry points (query results, the idle timer) call
 *    h2o_websocket_proceed as their very last action, because it may end in destroy().
 *  - A group in PostgreSQL points at its clients: destroy() clears the client's slot, so
 *    the answer is dropped. That message may still commit: it was complete, and PostgreSQL
 *    stores it whole or not at all either way.
 *  - When wslay fails a connection itself (1007 invalid UTF-8, 1009 too big, protocol
 *    errors) it stops reading at once, while the client may still be sending. Closing a
 *    socket with unread input makes the kernel answer RST, which can destroy our close
 *    frame before the client has read it; so such sockets are closed "lingering": write
 *    side shut down, input read and discarded until EOF or HS_WS_LINGER_MS.
 */
#include "ws_sessions.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <h2o/websocket.h>

#include "config.h"
#include "http_util.h"
#include "log.h"
#include "metrics.h"
#include "pg_async.h"
#include "strbuf.h"
#include "timer.h"

#define MODULE "ws"
#define HS_WS_CLOSE_GRACE_MS 5000 /* time the client has to answer our close frame */
#define HS_WS_LINGER_MS 2000      /* a lingering close discards input for at most this long */
#define HS_WS_FLUSH_POLL_MS 5     /* how often a waiting close checks that the replies are out */
#define HS_WS_GROUP_MAX 32        /* messages stored by one transaction (subtransactions: keep <= 64) */

struct pending_msg {
    h2o_linklist_t link;
    size_t len;
    char text[]; /* len bytes, then a NUL */
};

typedef struct st_hs_ws_client_t {
    h2o_websocket_conn_t *ws;
    h2o_loop_t *loop;
    char session_id[37];    /* lower case */
    h2o_linklist_t pending; /* struct pending_msg, in arrival order */
    size_t npending;
    size_t pending_bytes;
    struct pending_msg *current;  /* the message waiting for a group (owned until it joins one) */
    h2o_linklist_t waiting;       /* in ingest.waiting while current waits */
    struct ingest_group *group;   /* the group storing the message, or NULL */
    int slot;                     /* ... and our index in it */
    unsigned busy : 1;      /* a message is waiting for or in PostgreSQL */
    unsigned closing : 1;   /* no more messages are taken */
    unsigned close_queued : 1;
    uint16_t close_code;    /* the close frame to send once the reply in progress is out */
    const char *close_reason;
    unsigned flush_polls;
    hs_timer_t timer;       /* idle timeout; once closing, the flush poll, then the close grace period */
} hs_ws_client_t;

/* A group of messages of different connections, stored by one transaction. */
struct ingest_group {
    int n;
    hs_ws_client_t *clients[HS_WS_GROUP_MAX]; /* NULL once that client is gone */
};

/* The messages ready to be stored, and the groups in PostgreSQL (main loop only). */
static struct {
    h2o_loop_t *loop;
    h2o_linklist_t waiting; /* hs_ws_client_t.waiting, in arrival order */
    int inflight;
    hs_timer_t pump;
} ingest;

static void on_ws_msg(h2o_websocket_conn_t *ws, const struct wslay_event_on_msg_recv_arg *arg);
static void dispatch(hs_ws_client_t *c);

/* ---------------- lingering close ---------------- */

struct ws_linger {
    h2o_socket_t *sock;
    hs_timer_t timer;
};

static void linger_end(struct ws_linger *l)
{
    hs_timer_stop(&l->timer);
    h2o_socket_close(l->sock);
    free(l);
}

static void on_linger_read(h2o_socket_t *sock, const char *err)
{
    struct ws_linger *l = sock->data;
    if (err != NULL) {
        linger_end(l);
        return;
    }
    h2o_buffer_consume(&sock->input, sock->input->size);
}

static void on_linger_timeout(hs_timer_t *t)
{
    linger_end(H2O_STRUCT_FROM_MEMBER(struct ws_linger, timer, t));
}

/* linger_close takes over a socket that has nothing left to write: shuts down its write
 * side (FIN after our close frame) and discards input until EOF or the timeout. */
static void linger_close(h2o_loop_t *loop, h2o_socket_t *sock)
{
    struct ws_linger *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        h2o_socket_close(sock);
        return;
    }
    l->sock = sock;
    sock->data = l;
    int fd = h2o_socket_get_fd(sock);
    if (fd >= 0)
        shutdown(fd, SHUT_WR);
    h2o_buffer_consume(&sock->input, sock->input->size);
    h2o_socket_read_start(sock, on_linger_read);
    hs_timer_start(loop, &l->timer, HS_WS_LINGER_MS, on_linger_timeout);
}

/* ---------------- lifetime ---------------- */

static void drop_pending(hs_ws_client_t *c)
{
    while (!h2o_linklist_is_empty(&c->pending)) {
        struct pending_msg *m = H2O_STRUCT_FROM_MEMBER(struct pending_msg, link, c->pending.next);
        h2o_linklist_unlink(&m->link);
        free(m);
    }
    c->npending = 0;
    c->pending_bytes = 0;
}

static const char *close_code_name(uint16_t code)
{
    switch (code) {
    case WSLAY_CODE_PROTOCOL_ERROR: return "protocol error";
    case WSLAY_CODE_UNSUPPORTED_DATA: return "binary message";
    case WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA: return "invalid UTF-8";
    case WSLAY_CODE_POLICY_VIOLATION: return "too many unanswered messages";
    case WSLAY_CODE_MESSAGE_TOO_BIG: return "message too big (HERALD_WS_MAX_MESSAGE)";
    default: return NULL;
    }
}

/* destroy frees the client and its connection. Only from a safe point (see the top). */
static void destroy(hs_ws_client_t *c)
{
    h2o_websocket_conn_t *ws = c->ws;
    hs_timer_stop(&c->timer);
    if (h2o_linklist_is_linked(&c->waiting))
        h2o_linklist_unlink(&c->waiting);
    free(c->current);
    if (c->group != NULL)
        c->group->clients[c->slot] = NULL;
    drop_pending(c);
    uint16_t sent = wslay_event_get_status_code_sent(ws->ws_ctx);
    const char *why = close_code_name(sent);
    if (why != NULL && sent != WSLAY_CODE_UNSUPPORTED_DATA && sent != WSLAY_CODE_POLICY_VIOLATION) {
        /* failed by wslay itself (the others were counted and logged when requested) */
        HS_METRIC_INC(ws_errors_total);
        hs_info(MODULE, "session %s: connection closed with %u (%s)", c->session_id, sent, why);
    }
    if (ws->sock != NULL && !h2o_socket_is_writing(ws->sock) && !wslay_event_get_close_received(ws->ws_ctx)) {
        linger_close(c->loop, ws->sock);
        ws->sock = NULL; /* h2o_websocket_close must not close it */
    }
    h2o_websocket_close(ws);
    HS_METRIC_DEC(ws_connections_open);
    free(c);
}

static void on_close_grace(hs_timer_t *t)
{
    hs_ws_client_t *c = H2O_STRUCT_FROM_MEMBER(hs_ws_client_t, timer, t);
    hs_info(MODULE, "session %s: no close frame from the client within %d ms; dropping the connection", c->session_id,
            HS_WS_CLOSE_GRACE_MS);
    destroy(c);
}

static void queue_close(hs_ws_client_t *c);

static void on_flush_poll(hs_timer_t *t)
{
    hs_ws_client_t *c = H2O_STRUCT_FROM_MEMBER(hs_ws_client_t, timer, t);
    if (++c->flush_polls * HS_WS_FLUSH_POLL_MS > HS_WS_CLOSE_GRACE_MS) {
        hs_info(MODULE, "session %s: the client does not read its replies; dropping the connection", c->session_id);
        destroy(c);
        return;
    }
    queue_close(c);
    if (c->close_queued)
        h2o_websocket_proceed(c->ws); /* last: may free c */
}

/* queue_close queues the requested close frame once no reply is outstanding: none in
 * PostgreSQL, none in wslay's queue. wslay sends control frames before queued data frames,
 * so a close queued earlier would overtake (and cancel) the replies; h2o tells nobody when
 * its writes complete, so the queue is polled. */
static void queue_close(hs_ws_client_t *c)
{
    if (!c->closing || c->close_queued || c->busy)
        return;
    if (wslay_event_get_queued_msg_count(c->ws->ws_ctx) > 0) {
        hs_timer_start(c->loop, &c->timer, HS_WS_FLUSH_POLL_MS, on_flush_poll);
        return;
    }
    c->close_queued = 1;
    wslay_event_queue_close(c->ws->ws_ctx, c->close_code, (const uint8_t *)c->close_reason, strlen(c->close_reason));
    hs_timer_start(c->loop, &c->timer, HS_WS_CLOSE_GRACE_MS, on_close_grace);
}

/* request_close stops taking messages, drops those not yet in PostgreSQL and closes with
 * code after the reply to the one in PostgreSQL, if any. reason must be a static string.
 * The caller makes proceed run (it is running, or it calls it last). */
static void request_close(hs_ws_client_t *c, uint16_t code, const char *reason)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->close_code = code;
    c->close_reason = reason;
    drop_pending(c);
    queue_close(c);
}

static void on_idle(hs_timer_t *t);

static void arm_idle(hs_ws_client_t *c)
{
    if (!c->closing && hs_config.ws_idle_ms > 0)
        hs_timer_start(c->loop, &c->timer, (uint64_t)hs_config.ws_idle_ms, on_idle);
}

static void on_idle(hs_timer_t *t)
{
    hs_ws_client_t *c = H2O_STRUCT_FROM_MEMBER(hs_ws_client_t, timer, t);
    if (c->busy || c->npending > 0 || c->ws->sock == NULL) { /* working, or the upgrade is not done */
        arm_idle(c);
        return;
    }
    hs_debug(MODULE, "session %s: idle for %d ms, closing", c->session_id, hs_config.ws_idle_ms);
    request_close(c, WSLAY_CODE_NORMAL_CLOSURE, "idle timeout");
    h2o_websocket_proceed(c->ws); /* last: may free c */
}

/* ---------------- replies ---------------- */

static void send_text(hs_ws_client_t *c, const char *text, size_t len)
{
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)text, len};
    if (wslay_event_queue_msg(c->ws->ws_ctx, &msg) != 0)
        hs_debug(MODULE, "session %s: reply dropped, the connection is closing", c->session_id);
}

/* reply_error sends {"error": message, "index": index or null}. */
static void reply_error(hs_ws_client_t *c, const char *message, long index)
{
    hs_strbuf_t sb = {0};
    hs_strbuf_appends(&sb, "{\"error\":");
    hs_strbuf_append_json_string(&sb, message, strlen(message));
    if (index >= 0)
        hs_strbuf_printf(&sb, ",\"index\":%ld}", index);
    else
        hs_strbuf_appends(&sb, ",\"index\":null}");
    HS_METRIC_INC(ws_errors_total);
    send_text(c, sb.base, sb.len);
    hs_strbuf_free(&sb);
}

long hs_ws_error_index(const char *detail)
{
    static const char prefix[] = "At entry ";
    if (detail == NULL || strncmp(detail, prefix, sizeof(prefix) - 1) != 0)
        return -1;
    const char *p = detail + sizeof(prefix) - 1;
    if (!isdigit((unsigned char)*p))
        return -1;
    char *end;
    long n = strtol(p, &end, 10);
    return (*end == ' ' || *end == '.' || *end == '\0') ? n : -1;
}

/* reply_refusal answers a message that PostgreSQL refused: its error (SQLSTATE, primary
 * message, detail) for input errors and conflicts, a generic message for anything else. */
static void reply_refusal(hs_ws_client_t *c, const char *state, const char *message, const char *detail)
{
    if (state == NULL || message == NULL) {
        reply_error(c, "internal error; the message was not stored", -1);
        return;
    }
    if (strncmp(state, "HR", 2) == 0 || strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0 ||
        strncmp(state, "40", 2) == 0) {
        reply_error(c, message, strcmp(state, "HR030") == 0 ? hs_ws_error_index(detail) : -1);
        return;
    }
    hs_error(MODULE, "session %s: ingest failed: %s %s", c->session_id, state, message);
    reply_error(c, "internal error; the message was not stored", -1);
}

/* reply_failure answers a message whose whole group failed (no database, or the call failed). */
static void reply_failure(hs_ws_client_t *c, PGresult *res, const char *error)
{
    int status = hs_pg_error_status(res, error);
    if (res == NULL || status == 503) {
        hs_warn(MODULE, "session %s: batch not stored: %s", c->session_id,
                hs_pg_error_message(res, error));
        reply_error(c, "database unavailable; the message was not stored", -1);
        return;
    }
    reply_refusal(c, PQresultErrorField(res, PG_DIAG_SQLSTATE), PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
                  PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
}

/* answer delivers the outcome of c's message (row of res, or the group's failure), takes
 * the next message and lets wslay send. Called from the pump or a query result (safe
 * points); the last action may free c. */
static void answer(hs_ws_client_t *c, PGresult *res, int row, const char *error)
{
    c->group = NULL;
    c->busy = 0;
    if (row < 0) {
        reply_failure(c, res, error);
    } else if (!PQgetisnull(res, row, 0)) {
        HS_METRIC_ADD(ws_entries_stored_total, strtoll(PQgetvalue(res, row, 2), NULL, 10));
        send_text(c, PQgetvalue(res, row, 0), (size_t)PQgetlength(res, row, 0));
        if (strcmp(PQgetvalue(res, row, 1), "t") == 0) {
            hs_debug(MODULE, "session %s: ended, closing", c->session_id);
            request_close(c, WSLAY_CODE_NORMAL_CLOSURE, "bye");
        }
    } else {
        reply_refusal(c, PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3),
                      PQgetisnull(res, row, 4) ? NULL : PQgetvalue(res, row, 4),
                      PQgetisnull(res, row, 5) ? NULL : PQgetvalue(res, row, 5));
    }
    queue_close(c); /* a close may have waited for this reply */
    dispatch(c);
    arm_idle(c);
    h2o_websocket_proceed(c->ws); /* last: may free c */
}

static void schedule_pump(void);

static void on_group_result(void *data, PGresult *res, const char *error)
{
    struct ingest_group *g = data;
    ingest.inflight--;
    int ok = hs_pg_result_ok(res) && PQntuples(res) == g->n && PQnfields(res) == 6;
    if (hs_pg_result_ok(res) && !ok)
        hs_error(MODULE, "ingest_session_batches returned %d rows for %d messages", PQntuples(res), g->n);
    for (int i = 0; i < g->n; i++) {
        hs_ws_client_t *c = g->clients[i];
        if (c != NULL)
            answer(c, ok ? res : NULL, ok ? i : -1, ok ? NULL : (res == NULL ? error : "internal error"));
    }
    free(g);
    schedule_pump();
}

/* group_sql returns the call for n messages: $1, $3, ... are session ids, $2, $4, ... batches. */
static const char *group_sql(int n)
{
    static char *sql[HS_WS_GROUP_MAX + 1];
    if (sql[n] == NULL) {
        hs_strbuf_t sb = {0};
        hs_strbuf_appends(&sb, "SELECT answer::text, ended, stored, error_state, error_message, error_detail "
                               "FROM herald.ingest_session_batches(ARRAY[");
        for (int i = 0; i < n; i++)
            hs_strbuf_printf(&sb, "%s$%d", i ? "," : "", 2 * i + 1);
        hs_strbuf_appends(&sb, "]::uuid[], ARRAY[");
        for (int i = 0; i < n; i++)
            hs_strbuf_printf(&sb, "%s$%d", i ? "," : "", 2 * i + 2);
        hs_strbuf_appends(&sb, "]::text[])");
        sql[n] = sb.base; /* kept for the life of the process */
    }
    return sql[n];
}

/* on_pump sends the waiting messages to PostgreSQL in groups, while fewer than
 * HERALD_PG_POOL - 1 groups are there (one connection stays free for the other routes). */
static void on_pump(hs_timer_t *t)
{
    int max_groups = hs_config.pg_pool_size > 1 ? hs_config.pg_pool_size - 1 : 1;
    while (ingest.inflight < max_groups && !h2o_linklist_is_empty(&ingest.waiting)) {
        struct ingest_group *g = calloc(1, sizeof(*g));
        if (g == NULL)
            abort();
        const char *values[2 * HS_WS_GROUP_MAX];
        struct pending_msg *msgs[HS_WS_GROUP_MAX];
        while (g->n < HS_WS_GROUP_MAX && !h2o_linklist_is_empty(&ingest.waiting)) {
            hs_ws_client_t *c = H2O_STRUCT_FROM_MEMBER(hs_ws_client_t, waiting, ingest.waiting.next);
            h2o_linklist_unlink(&c->waiting);
            msgs[g->n] = c->current; /* the group owns it now */
            c->current = NULL;
            c->group = g;
            c->slot = g->n;
            values[2 * g->n] = c->session_id;
            values[2 * g->n + 1] = msgs[g->n]->text;
            g->clients[g->n++] = c;
        }
        int n = g->n;
        ingest.inflight++;
        /* the values are copied; with no database the callback runs (and frees g) at once */
        hs_pg_query(group_sql(n), 2 * n, values, on_group_result, g);
        for (int i = 0; i < n; i++)
            free(msgs[i]);
    }
}

static void schedule_pump(void)
{
    if (!h2o_linklist_is_empty(&ingest.waiting) && !hs_timer_is_active(&ingest.pump))
        hs_timer_start(ingest.loop, &ingest.pump, 0, on_pump);
}

/* dispatch makes c's oldest message wait for the next group, when c has none in progress. */
static void dispatch(hs_ws_client_t *c)
{
    while (!c->busy && !c->closing && !h2o_linklist_is_empty(&c->pending)) {
        struct pending_msg *m = H2O_STRUCT_FROM_MEMBER(struct pending_msg, link, c->pending.next);
        h2o_linklist_unlink(&m->link);
        c->npending--;
        c->pending_bytes -= m->len;
        if (memchr(m->text, '\0', m->len) != NULL) {
            /* libpq takes NUL-terminated text; a raw NUL is never valid JSON anyway */
            reply_error(c, "batch is not valid JSON: it contains a NUL byte", -1);
            free(m);
            continue;
        }
        c->busy = 1;
        c->current = m;
        h2o_linklist_insert(&ingest.waiting, &c->waiting);
        schedule_pump();
    }
}

/* ---------------- messages ---------------- */

static void take_message(hs_ws_client_t *c, const uint8_t *text, size_t len)
{
    if (c->npending >= HS_WS_MAX_PENDING || c->pending_bytes + len > HS_WS_MAX_PENDING_BYTES) {
        HS_METRIC_INC(ws_errors_total);
        hs_info(MODULE, "session %s: too many unanswered messages (%zu, %zu bytes), closing with 1008", c->session_id,
                c->npending, c->pending_bytes);
        request_close(c, WSLAY_CODE_POLICY_VIOLATION, "too many unanswered messages");
        return;
    }
    struct pending_msg *m = malloc(sizeof(*m) + len + 1);
    if (m == NULL) {
        request_close(c, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    m->link = (h2o_linklist_t){NULL, NULL};
    m->len = len;
    memcpy(m->text, text, len);
    m->text[len] = '\0';
    h2o_linklist_insert(&c->pending, &m->link);
    c->npending++;
    c->pending_bytes += len;
    dispatch(c);
}

/* on_ws_msg is called by wslay, inside h2o_websocket_proceed, for every message; and by
 * h2o with arg == NULL when the connection is over. */
static void on_ws_msg(h2o_websocket_conn_t *ws, const struct wslay_event_on_msg_recv_arg *arg)
{
    hs_ws_client_t *c = ws->data;
    if (arg == NULL) {
        destroy(c);
        return;
    }
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        HS_METRIC_INC(ws_messages_total);
        if (!c->closing)
            take_message(c, arg->msg, arg->msg_length);
        break;
    case WSLAY_BINARY_FRAME:
        HS_METRIC_INC(ws_messages_total);
        if (!c->closing) {
            HS_METRIC_INC(ws_errors_total);
            hs_info(MODULE, "session %s: binary message refused, closing with 1003", c->session_id);
            request_close(c, WSLAY_CODE_UNSUPPORTED_DATA, "binary messages are not accepted; send JSON text");
        }
        break;
    case WSLAY_CONNECTION_CLOSE:
        /* wslay answers it; what is still waiting could not be acknowledged: drop it */
        if (!c->closing) {
            c->closing = 1;
            c->close_queued = 1;
            drop_pending(c);
            hs_timer_start(c->loop, &c->timer, HS_WS_CLOSE_GRACE_MS, on_close_grace);
        }
        break;
    default: /* ping (wslay answers it), pong */
        break;
    }
    arm_idle(c);
}

/* ---------------- the route ---------------- */

int hs_ws_sessions_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    if (!hs_http_require_path(req, "/ws"))
        return 0;
    const char *id = hs_http_query_param(req, "sessionId");
    if (id == NULL || id[0] == '\0') {
        hs_http_send_error(req, 400, "missing sessionId query parameter");
        return 0;
    }
    if (!hs_is_uuid(id)) {
        hs_http_send_error(req, 400, "sessionId must be a UUID");
        return 0;
    }
    const char *key = NULL;
    if (req->version >= 0x200 || h2o_is_websocket_handshake(req, &key) != 0 || key == NULL) {
        hs_http_send_error(req, 400, "GET /ws expects a WebSocket handshake (HTTP/1.1, Upgrade: websocket, Sec-WebSocket-Key)");
        return 0;
    }
    hs_ws_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        hs_http_send_error(req, 503, "out of memory");
        return 0;
    }
    c->loop = req->conn->ctx->loop;
    if (ingest.loop == NULL) {
        ingest.loop = c->loop;
        h2o_linklist_init_anchor(&ingest.waiting);
    }
    for (int i = 0; i < 36; i++)
        c->session_id[i] = (char)tolower((unsigned char)id[i]);
    h2o_linklist_init_anchor(&c->pending);
    c->ws = h2o_upgrade_to_websocket(req, key, c, on_ws_msg);
    wslay_event_config_set_max_recv_msg_length(c->ws->ws_ctx, (uint64_t)hs_config.ws_max_message);
    HS_METRIC_INC(ws_connections_open);
    arm_idle(c);
    return 0;
}
