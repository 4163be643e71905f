/*
 * pg_async.h — non-blocking libpq on the h2o event loop.
 *
 * Two layers:
 *  - hs_pg_conn_t: one connection whose socket is on the loop (connect, send a
 *    parameterised query, results, notifications, loss and reconnection with capped
 *    exponential backoff and jitter). The LISTEN connection (pg_listen.c) is one of these.
 *  - the query pool (hs_pg_query*): HERALD_PG_POOL connections and a FIFO of queries.
 *    When no connection is up, a query fails at once with an error (routes answer 503).
 *
 * Every query is parameterised (PQsendQueryParams, text format): never paste values into SQL.
 * Everything here runs on the loop thread that called hs_pg_init.
 */
#ifndef HS_PG_ASYNC_H
#define HS_PG_ASYNC_H

#include <h2o.h>
#include <libpq-fe.h>

/* hs_pg_result_cb receives the query's final result (check PQresultStatus: an SQL error is
 * PGRES_FATAL_ERROR with its SQLSTATE), or res == NULL and error set when the query could not
 * run (no connection, connection lost). res is cleared after the callback returns. */
typedef void (*hs_pg_result_cb)(void *data, PGresult *res, const char *error);

/* ---- one connection ---- */
typedef struct st_hs_pg_conn_t hs_pg_conn_t;
typedef struct st_hs_pg_conn_callbacks_t {
    void (*on_ready)(hs_pg_conn_t *conn);                  /* connected (again) */
    void (*on_notify)(hs_pg_conn_t *conn, PGnotify *note); /* note is freed after the call */
    void (*on_lost)(hs_pg_conn_t *conn, const char *why);  /* lost; a reconnect is scheduled */
} hs_pg_conn_callbacks_t;

hs_pg_conn_t *hs_pg_conn_create(h2o_loop_t *loop, const char *conninfo, const hs_pg_conn_callbacks_t *cbs, void *data);
void *hs_pg_conn_data(hs_pg_conn_t *conn);
int hs_pg_conn_is_ready(hs_pg_conn_t *conn); /* connected and idle */
int hs_pg_conn_is_up(hs_pg_conn_t *conn);    /* connected (idle or busy) */
/* hs_pg_conn_send: only when ready; returns -1 otherwise. One query at a time per connection. */
int hs_pg_conn_send(hs_pg_conn_t *conn, const char *sql, int nparams, const char *const *values, hs_pg_result_cb cb, void *data);
/* hs_pg_conn_reset drops the connection (as if lost) and reconnects after backoff. */
void hs_pg_conn_reset(hs_pg_conn_t *conn, const char *why);
void hs_pg_conn_destroy(hs_pg_conn_t *conn);

/* ---- the query pool ---- */
typedef struct st_hs_pg_query_t hs_pg_query_t;

void hs_pg_init(h2o_loop_t *loop, const char *conninfo, int pool_size);
void hs_pg_shutdown(void);
int hs_pg_is_available(void);
/* hs_pg_will_answer: a query queued now will reach the database (a connection is up, or one
 * is being made, e.g. just after start), rather than fail at once with "database unavailable". */
int hs_pg_will_answer(void);
/* hs_pg_query queues a query; values are copied. Returns a handle usable with
 * hs_pg_query_cancel until the callback has run. */
hs_pg_query_t *hs_pg_query(const char *sql, int nparams, const char *const *values, hs_pg_result_cb cb, void *data);
/* hs_pg_query_cancel: the callback will not be called (the query may still run). */
void hs_pg_query_cancel(hs_pg_query_t *q);
/* hs_pg_query_req ties the query to an HTTP request: cancelled if the request goes away first. */
void hs_pg_query_req(h2o_req_t *req, const char *sql, int nparams, const char *const *values, hs_pg_result_cb cb, void *data);

/* hs_pg_reply_json answers the request with the single JSON value of a successful result and
 * status, or with a 500 when the result holds no value. */
void hs_pg_reply_json(h2o_req_t *req, int status, PGresult *res);
/* hs_pg_query_json_req runs a query whose result is one JSON value and answers the request
 * with it and status, or with the error (hs_pg_reply_error). */
void hs_pg_query_json_req(h2o_req_t *req, int status, const char *sql, int nparams, const char *const *values);

/* ---- results to HTTP ---- */
/* hs_pg_error_status maps a failed query to an HTTP status: unavailable -> 503, Herald's
 * SQLSTATEs (class HR) and input errors (class 22, 23) to 4xx, the rest to 500. */
int hs_pg_error_status(PGresult *res, const char *error);
/* hs_pg_error_message: the text of a failed query's error, for logs (never NULL). */
const char *hs_pg_error_message(PGresult *res, const char *error);
/* hs_pg_reply_error sends that status with {"error": <primary message>} (and logs 500s). */
void hs_pg_reply_error(h2o_req_t *req, PGresult *res, const char *error);
/* hs_pg_result_ok: res is a successful result. */
int hs_pg_result_ok(PGresult *res);

#endif
