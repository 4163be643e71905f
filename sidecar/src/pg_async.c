/* pg_async.c — see pg_async.h. */
#include "pg_async.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_util.h"
#include "log.h"
#include "metrics.h"
#include "timer.h"

#define MODULE "pg"

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_READY, CONN_BUSY };

struct st_hs_pg_conn_t {
    h2o_loop_t *loop;
    char *conninfo;
    hs_pg_conn_callbacks_t cbs;
    void *data;
    PGconn *pg;
    h2o_socket_t *sock; /* wraps a dup() of PQsocket, so h2o and libpq each close their own fd */
    int sock_fd;        /* the PQsocket value sock was made for */
    enum conn_state state;
    int attempts;       /* consecutive failed attempts, for the backoff */
    int was_up;         /* has been connected at least once (reconnects are counted) */
    hs_timer_t retry;
    hs_timer_t connect_deadline; /* libpq's connect_timeout only works for blocking connects */
    /* the query in flight */
    hs_pg_result_cb cb;
    void *cb_data;
    PGresult *last;
    int flushing;
};

static void conn_start(hs_pg_conn_t *conn);
static void conn_poll_connect(hs_pg_conn_t *conn);
static void conn_lost(hs_pg_conn_t *conn, const char *why);

/* ---------------- socket plumbing ---------------- */

static void close_sock(hs_pg_conn_t *conn)
{
    if (conn->sock != NULL) {
        h2o_socket_close(conn->sock);
        conn->sock = NULL;
        conn->sock_fd = -1;
    }
}

static void on_readable(h2o_socket_t *sock, const char *err);
static void on_writable(h2o_socket_t *sock, const char *err);

static int wrap_sock(hs_pg_conn_t *conn)
{
    int fd = PQsocket(conn->pg);
    if (fd < 0)
        return -1;
    if (conn->sock != NULL && conn->sock_fd == fd)
        return 0;
    close_sock(conn);
    int dupfd = dup(fd);
    if (dupfd < 0)
        return -1;
    conn->sock = h2o_evloop_socket_create(conn->loop, dupfd, H2O_SOCKET_FLAG_DONT_READ);
    conn->sock->data = conn;
    conn->sock_fd = fd;
    return 0;
}

static void watch_read(hs_pg_conn_t *conn)
{
    h2o_socket_read_start(conn->sock, on_readable);
}

static void watch_write(hs_pg_conn_t *conn)
{
    if (conn->sock->_cb.write == NULL)
        h2o_socket_notify_write(conn->sock, on_writable);
}

/* ---------------- connecting ---------------- */

static void on_retry(hs_timer_t *timer)
{
    hs_pg_conn_t *conn = H2O_STRUCT_FROM_MEMBER(hs_pg_conn_t, retry, timer);
    conn_start(conn);
}

static void schedule_retry(hs_pg_conn_t *conn)
{
    int shift = conn->attempts < 6 ? conn->attempts : 6;
    uint64_t delay = 100u << shift; /* 100 ms .. 6.4 s */
    if (delay > 5000)
        delay = 5000;
    delay = delay / 2 + (uint64_t)(rand() % (int)(delay / 2 + 1)); /* jitter: 50%..100% */
    conn->attempts++;
    hs_timer_start(conn->loop, &conn->retry, delay, on_retry);
}

#define HS_PG_CONNECT_TIMEOUT_MS 5000

static void on_connect_deadline(hs_timer_t *timer)
{
    hs_pg_conn_t *conn = H2O_STRUCT_FROM_MEMBER(hs_pg_conn_t, connect_deadline, timer);
    if (conn->state == CONN_CONNECTING)
        conn_lost(conn, "connection attempt timed out");
}

static void conn_start(hs_pg_conn_t *conn)
{
    conn->state = CONN_CONNECTING;
    hs_timer_start(conn->loop, &conn->connect_deadline, HS_PG_CONNECT_TIMEOUT_MS, on_connect_deadline);
    conn->pg = PQconnectStart(conn->conninfo);
    if (conn->pg == NULL || PQstatus(conn->pg) == CONNECTION_BAD) {
        conn_lost(conn, conn->pg ? PQerrorMessage(conn->pg) : "out of memory");
        return;
    }
    PQsetnonblocking(conn->pg, 1);
    conn_poll_connect(conn);
}

static void conn_poll_connect(hs_pg_conn_t *conn)
{
    PostgresPollingStatusType st = PQconnectPoll(conn->pg);
    if (st == PGRES_POLLING_FAILED) {
        conn_lost(conn, PQerrorMessage(conn->pg));
        return;
    }
    if (wrap_sock(conn) != 0) {
        conn_lost(conn, "no socket");
        return;
    }
    switch (st) {
    case PGRES_POLLING_READING:
        watch_read(conn);
        break;
    case PGRES_POLLING_WRITING:
        h2o_socket_read_stop(conn->sock);
        watch_write(conn);
        break;
    case PGRES_POLLING_OK:
        hs_timer_stop(&conn->connect_deadline);
        conn->state = CONN_READY;
        conn->attempts = 0;
        if (conn->was_up)
            HS_METRIC_INC(pg_reconnects_total);
        conn->was_up = 1;
        watch_read(conn);
        if (conn->cbs.on_ready)
            conn->cbs.on_ready(conn);
        break;
    default:
        break;
    }
}

static void conn_lost(hs_pg_conn_t *conn, const char *why)
{
    char reason[256];
    snprintf(reason, sizeof(reason), "%s", why ? why : "connection lost");
    size_t n = strlen(reason);
    while (n > 0 && (reason[n - 1] == '\n' || reason[n - 1] == ' '))
        reason[--n] = '\0';
    int was_connected = conn->state == CONN_READY || conn->state == CONN_BUSY;
    hs_pg_result_cb cb = conn->cb;
    void *cb_data = conn->cb_data;
    conn->cb = NULL;
    if (conn->last) {
        PQclear(conn->last);
        conn->last = NULL;
    }
    close_sock(conn);
    if (conn->pg) {
        PQfinish(conn->pg);
        conn->pg = NULL;
    }
    conn->state = CONN_DOWN;
    conn->flushing = 0;
    hs_timer_stop(&conn->connect_deadline);
    if (was_connected || conn->attempts == 0)
        hs_warn(MODULE, "connection to PostgreSQL lost or refused: %s; reconnecting with backoff", reason);
    schedule_retry(conn);
    if (cb) {
        char msg[300];
        snprintf(msg, sizeof(msg), "database unavailable: %s", reason);
        HS_METRIC_INC(pg_query_errors_total);
        cb(cb_data, NULL, msg);
    }
    if (conn->cbs.on_lost)
        conn->cbs.on_lost(conn, reason);
}

/* ---------------- I/O ---------------- */

static void finish_query(hs_pg_conn_t *conn)
{
    hs_pg_result_cb cb = conn->cb;
    void *cb_data = conn->cb_data;
    PGresult *res = conn->last;
    conn->cb = NULL;
    conn->last = NULL;
    conn->state = CONN_READY;
    if (res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR)
        HS_METRIC_INC(pg_query_errors_total);
    if (cb)
        cb(cb_data, res, res ? NULL : "no result");
    if (res)
        PQclear(res);
    /* the callback may have sent another query or reset the connection */
    if (conn->state == CONN_READY && conn->cbs.on_ready)
        conn->cbs.on_ready(conn);
}

static void drain(hs_pg_conn_t *conn)
{
    PGnotify *note;
    while (conn->pg != NULL && (note = PQnotifies(conn->pg)) != NULL) {
        if (conn->cbs.on_notify)
            conn->cbs.on_notify(conn, note);
        PQfreemem(note);
    }
    while (conn->pg != NULL && conn->state == CONN_BUSY && !conn->flushing && !PQisBusy(conn->pg)) {
        PGresult *r = PQgetResult(conn->pg);
        if (r == NULL) {
            finish_query(conn);
            break;
        }
        /* keep the first error, else the last result */
        if (conn->last != NULL && PQresultStatus(conn->last) == PGRES_FATAL_ERROR) {
            PQclear(r);
        } else {
            if (conn->last)
                PQclear(conn->last);
            conn->last = r;
        }
        if (conn->pg != NULL && PQstatus(conn->pg) == CONNECTION_BAD) {
            conn_lost(conn, PQerrorMessage(conn->pg));
            return;
        }
    }
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    hs_pg_conn_t *conn = sock->data;
    if (conn->state == CONN_CONNECTING) {
        conn_poll_connect(conn);
        return;
    }
    if (err != NULL || !PQconsumeInput(conn->pg)) {
        conn_lost(conn, err ? err : PQerrorMessage(conn->pg));
        return;
    }
    drain(conn);
}

static void on_writable(h2o_socket_t *sock, const char *err)
{
    hs_pg_conn_t *conn = sock->data;
    if (conn->state == CONN_CONNECTING) {
        conn_poll_connect(conn);
        return;
    }
    if (err != NULL) {
        conn_lost(conn, err);
        return;
    }
    if (conn->flushing) {
        int r = PQflush(conn->pg);
        if (r < 0) {
            conn_lost(conn, PQerrorMessage(conn->pg));
            return;
        }
        if (r == 1) {
            watch_write(conn);
            return;
        }
        conn->flushing = 0;
        drain(conn);
    }
}

/* ---------------- public: one connection ---------------- */

hs_pg_conn_t *hs_pg_conn_create(h2o_loop_t *loop, const char *conninfo, const hs_pg_conn_callbacks_t *cbs, void *data)
{
    hs_pg_conn_t *conn = calloc(1, sizeof(*conn));
    if (conn == NULL)
        abort();
    conn->loop = loop;
    conn->conninfo = strdup(conninfo);
    if (cbs)
        conn->cbs = *cbs;
    conn->data = data;
    conn->sock_fd = -1;
    conn_start(conn);
    return conn;
}

void *hs_pg_conn_data(hs_pg_conn_t *conn)
{
    return conn->data;
}

int hs_pg_conn_is_ready(hs_pg_conn_t *conn)
{
    return conn->state == CONN_READY;
}

int hs_pg_conn_is_up(hs_pg_conn_t *conn)
{
    return conn->state == CONN_READY || conn->state == CONN_BUSY;
}

int hs_pg_conn_send(hs_pg_conn_t *conn, const char *sql, int nparams, const char *const *values, hs_pg_result_cb cb, void *data)
{
    if (conn->state != CONN_READY)
        return -1;
    HS_METRIC_INC(pg_queries_total);
    if (!PQsendQueryParams(conn->pg, sql, nparams, NULL, values, NULL, NULL, 0)) {
        char why[256];
        snprintf(why, sizeof(why), "%s", PQerrorMessage(conn->pg));
        conn_lost(conn, why);
        return -1;
    }
    conn->state = CONN_BUSY;
    conn->cb = cb;
    conn->cb_data = data;
    int r = PQflush(conn->pg);
    if (r < 0) {
        conn_lost(conn, PQerrorMessage(conn->pg));
        return 0; /* the callback has been called with the error */
    }
    if (r == 1) {
        conn->flushing = 1;
        watch_write(conn);
    }
    return 0;
}

void hs_pg_conn_reset(hs_pg_conn_t *conn, const char *why)
{
    if (conn->state == CONN_DOWN)
        return;
    conn->attempts = 0;
    conn_lost(conn, why);
}

void hs_pg_conn_destroy(hs_pg_conn_t *conn)
{
    hs_timer_stop(&conn->retry);
    hs_timer_stop(&conn->connect_deadline);
    close_sock(conn);
    if (conn->last)
        PQclear(conn->last);
    if (conn->pg)
        PQfinish(conn->pg);
    free(conn->conninfo);
    free(conn);
}

/* ---------------- the query pool ---------------- */

struct req_link {
    hs_pg_query_t *q;
};

struct st_hs_pg_query_t {
    h2o_linklist_t link;
    char *sql;
    int nparams;
    char **values;
    hs_pg_result_cb cb;
    void *data;
    struct req_link *req_link;
};

static int pool_is_connecting(void);

static struct {
    h2o_loop_t *loop;
    hs_pg_conn_t **conns;
    int size;
    h2o_linklist_t queue;
} pool;

static void free_query(hs_pg_query_t *q)
{
    if (q->req_link)
        q->req_link->q = NULL;
    for (int i = 0; i < q->nparams; i++)
        free(q->values[i]);
    free(q->values);
    free(q->sql);
    free(q);
}

static void on_pool_result(void *data, PGresult *res, const char *error)
{
    hs_pg_query_t *q = data;
    hs_pg_result_cb cb = q->cb;
    void *cb_data = q->data;
    free_query(q);
    if (cb)
        cb(cb_data, res, error);
}

static void pool_dispatch(void)
{
    for (int i = 0; i < pool.size && !h2o_linklist_is_empty(&pool.queue); i++) {
        hs_pg_conn_t *conn = pool.conns[i];
        if (conn == NULL)
            continue;
        while (hs_pg_conn_is_ready(conn) && !h2o_linklist_is_empty(&pool.queue)) {
            hs_pg_query_t *q = H2O_STRUCT_FROM_MEMBER(hs_pg_query_t, link, pool.queue.next);
            h2o_linklist_unlink(&q->link);
            if (q->cb == NULL) { /* cancelled while queued */
                free_query(q);
                continue;
            }
            if (hs_pg_conn_send(conn, q->sql, q->nparams, (const char *const *)q->values, on_pool_result, q) != 0) {
                h2o_linklist_insert(pool.queue.next, &q->link); /* back to the head; connection went down */
                break;
            }
        }
    }
}

static void fail_queue_if_unavailable(void)
{
    if (hs_pg_will_answer())
        return;
    while (!h2o_linklist_is_empty(&pool.queue)) {
        hs_pg_query_t *q = H2O_STRUCT_FROM_MEMBER(hs_pg_query_t, link, pool.queue.next);
        h2o_linklist_unlink(&q->link);
        on_pool_result(q, NULL, "database unavailable");
    }
}

static void on_pool_ready(hs_pg_conn_t *conn)
{
    pool_dispatch();
}

static void on_pool_lost(hs_pg_conn_t *conn, const char *why)
{
    fail_queue_if_unavailable();
}

void hs_pg_init(h2o_loop_t *loop, const char *conninfo, int pool_size)
{
    static const hs_pg_conn_callbacks_t cbs = {on_pool_ready, NULL, on_pool_lost};
    pool.loop = loop;
    pool.size = pool_size > 0 ? pool_size : 1;
    pool.conns = calloc((size_t)pool.size, sizeof(*pool.conns));
    h2o_linklist_init_anchor(&pool.queue);
    for (int i = 0; i < pool.size; i++)
        pool.conns[i] = hs_pg_conn_create(loop, conninfo, &cbs, NULL);
}

void hs_pg_shutdown(void)
{
    while (!h2o_linklist_is_empty(&pool.queue)) {
        hs_pg_query_t *q = H2O_STRUCT_FROM_MEMBER(hs_pg_query_t, link, pool.queue.next);
        h2o_linklist_unlink(&q->link);
        free_query(q);
    }
    for (int i = 0; i < pool.size; i++)
        hs_pg_conn_destroy(pool.conns[i]);
    free(pool.conns);
    pool.conns = NULL;
    pool.size = 0;
}

int hs_pg_is_available(void)
{
    for (int i = 0; i < pool.size; i++)
        if (pool.conns[i] != NULL && hs_pg_conn_is_up(pool.conns[i])) /* NULL while hs_pg_init creates them */
            return 1;
    return 0;
}

/* pool_is_connecting: some connection is in a connection attempt (bounded by
 * HS_PG_CONNECT_TIMEOUT_MS): queries wait for it instead of failing, e.g. just after start. */
static int pool_is_connecting(void)
{
    for (int i = 0; i < pool.size; i++)
        if (pool.conns[i] != NULL && pool.conns[i]->state == CONN_CONNECTING)
            return 1;
    return 0;
}

int hs_pg_will_answer(void)
{
    return hs_pg_is_available() || pool_is_connecting();
}

hs_pg_query_t *hs_pg_query(const char *sql, int nparams, const char *const *values, hs_pg_result_cb cb, void *data)
{
    if (!hs_pg_will_answer()) {
        HS_METRIC_INC(pg_unavailable_total);
        cb(data, NULL, "database unavailable");
        return NULL;
    }
    hs_pg_query_t *q = calloc(1, sizeof(*q));
    if (q == NULL)
        abort();
    q->sql = strdup(sql);
    q->nparams = nparams;
    q->values = calloc((size_t)(nparams > 0 ? nparams : 1), sizeof(char *));
    for (int i = 0; i < nparams; i++)
        q->values[i] = values[i] ? strdup(values[i]) : NULL;
    q->cb = cb;
    q->data = data;
    h2o_linklist_insert(&pool.queue, &q->link);
    pool_dispatch();
    return q;
}

void hs_pg_query_cancel(hs_pg_query_t *q)
{
    if (q == NULL)
        return;
    q->cb = NULL; /* freed when dispatched or when its result arrives */
    if (q->req_link) {
        q->req_link->q = NULL;
        q->req_link = NULL;
    }
}

static void on_req_link_dispose(void *p)
{
    struct req_link *link = p;
    if (link->q != NULL)
        hs_pg_query_cancel(link->q);
}

void hs_pg_query_req(h2o_req_t *req, const char *sql, int nparams, const char *const *values, hs_pg_result_cb cb, void *data)
{
    struct req_link *link = h2o_mem_alloc_shared(&req->pool, sizeof(*link), on_req_link_dispose);
    link->q = NULL;
    hs_pg_query_t *q = hs_pg_query(sql, nparams, values, cb, data);
    if (q != NULL) {
        q->req_link = link;
        link->q = q;
    }
}

/* ---------------- results to HTTP ---------------- */

int hs_pg_result_ok(PGresult *res)
{
    if (res == NULL)
        return 0;
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK || st == PGRES_SINGLE_TUPLE;
}

const char *hs_pg_error_message(PGresult *res, const char *error)
{
    return res ? PQresultErrorMessage(res) : error ? error : "database unavailable";
}

int hs_pg_error_status(PGresult *res, const char *error)
{
    if (res == NULL)
        return 503;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state == NULL)
        return 500;
    static const struct {
        const char *code;
        int status;
    } map[] = {
        {"HR001", 409}, /* invalid report transition */
        {"HR002", 404}, /* unknown report */
        {"HR010", 400}, /* username taken */
        {"HR020", 404}, /* unknown event */
        {"HR021", 409}, /* event already published */
        {"HR022", 404}, /* another user's event: not revealed */
        {"HR023", 409}, /* event already cancelled */
        {"HR030", 400}, /* invalid session batch */
        {"HR031", 404}, /* unknown session */
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(state, map[i].code) == 0)
            return map[i].status;
    if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
        return 400;
    if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 || strcmp(state, "57P03") == 0)
        return 503;
    return 500;
}

void hs_pg_reply_error(h2o_req_t *req, PGresult *res, const char *error)
{
    int status = hs_pg_error_status(res, error);
    if (res == NULL) {
        hs_http_send_error(req, 503, "%s", error ? error : "database unavailable");
        return;
    }
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (status == 500) {
        hs_error(MODULE, "query failed: %s", PQresultErrorMessage(res));
        hs_http_send_error(req, 500, "internal error");
        return;
    }
    hs_http_send_error(req, status, "%s", msg ? msg : "request refused by the database");
}

/* ---------------- one JSON value to HTTP ---------------- */

struct json_reply {
    h2o_req_t *req;
    int status;
};

void hs_pg_reply_json(h2o_req_t *req, int status, PGresult *res)
{
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        hs_error(MODULE, "a query that answers one JSON value returned none");
        hs_http_send_error(req, 500, "internal error");
        return;
    }
    hs_http_send_json(req, status, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

static void on_json_result(void *data, PGresult *res, const char *error)
{
    struct json_reply *r = data;
    if (!hs_pg_result_ok(res)) {
        hs_pg_reply_error(r->req, res, error);
        return;
    }
    hs_pg_reply_json(r->req, r->status, res);
}

void hs_pg_query_json_req(h2o_req_t *req, int status, const char *sql, int nparams, const char *const *values)
{
    struct json_reply *r = h2o_mem_alloc_pool(&req->pool, sizeof(*r));
    r->req = req;
    r->status = status;
    hs_pg_query_req(req, sql, nparams, values, on_json_result, r);
}
