/*
 * sse.c — see sse.h.
 *
 * h2o 2.2.5 streaming contract (reference notes §6.3): one h2o_send in flight at a time; the
 * bytes given to it stay alive until the generator's proceed callback. Two string buffers:
 * `pending` receives new frames, `inflight` is what h2o is writing; on proceed they swap.
 * The per-stream object lives in the request's pool; it is unlinked from everything in the
 * generator's stop callback and, in case stop never comes (the response never started), in
 * the pool's dispose callback. After stop, req is never touched again.
 *
 * A subscriber whose unsent output passes HERALD_SSE_MAX_BUFFER (see queue()) is cut: for HTTP/1 the socket is shut down, which makes
 * h2o's pending write fail and close the connection (so a client that does not read at all
 * cannot keep the stream); otherwise the stream ends at the next proceed.
 *
 * Fan-out cost. A broadcast to N subscribers is N socket writes, and the kernel's TCP send
 * path is most of each; everything else is kept off that path:
 *   - HTTP/1.1 responses ("raw" streams) are chunk-framed here, not by h2o's chunked filter
 *     (start_response sets transfer-encoding: chunked itself, so the filter stays out): the
 *     pending buffer keeps CHUNK_HEADROOM bytes in front of its frames for the chunk-size
 *     line, so a whole chunk is one contiguous buffer. Once h2o has written the response head
 *     (first proceed), a flush with nothing in flight writes that buffer straight to the
 *     socket with one send(); only what the socket does not take (a full socket buffer: a
 *     slow reader) goes through h2o_send, already framed, and the next flush waits for its
 *     proceed as before. HTTP/2 and HTTP/1.0 streams always go through h2o_send.
 *   - Flushes are taken from a FIFO list in slices of FLUSH_SLICE subscribers; between two
 *     slices the loop polls its sockets again (the slices are driven by an eventfd that stays
 *     readable while the list is not empty), so a message that arrives while a broadcast is
 *     being written joins the writes of every subscriber not yet written, and the others get
 *     it when their turn comes round again: a message waits at most one pass over the
 *     subscribers (not the rest of the current pass plus a whole next one), and under load
 *     each write carries every message that arrived since that subscriber's previous write.
 */
#include "sse.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "http_util.h"
#include "log.h"
#include "metrics.h"
#include "pg_async.h"
#include "strbuf.h"
#include "subscribers.h"
#include "timer.h"

#define MODULE "sse"
#define IDLE_BUFFER_KEEP 16384 /* larger buffers are freed once drained */
#define CHUNK_HEADROOM 18      /* room for a chunk-size line: 16 hex digits + CRLF */
/* subscribers written between two polls of the loop: small, so that during a long broadcast a
 * request or a PostgreSQL answer waits a few writes (~20-40 us), not a long slice; one poll per
 * 4 writes costs no measurable fan-out speed (10 000 subscribers), while POST /v2/message
 * under a 1 000-subscriber broadcast got ~25 % faster than with slices of 32 */
#define FLUSH_SLICE 4

struct st_hs_sse_t {
    h2o_generator_t super;
    h2o_req_t *req; /* NULL once the stream has ended */
    h2o_loop_t *loop;
    hs_strbuf_t pending;
    hs_strbuf_t inflight;
    unsigned started : 1, sending : 1, ended : 1, cut : 1, has_sub : 1, input_released : 1;
    unsigned raw : 1;       /* HTTP/1.1: chunk-framed here, written directly once head_sent */
    unsigned head_sent : 1; /* h2o has written the response head (first proceed) */
    int fd;                 /* the connection's socket (raw streams) */
    hs_timer_t keepalive;
    hs_timer_t tick;
    uint64_t keepalive_ms;
    uint64_t tick_ms;
    const char *keepalive_comment;
    hs_sse_tick_cb on_tick;
    void (*on_close)(hs_sse_t *sse, void *data);
    void *data;
    hs_pg_query_t *query; /* snapshot or position query in flight */
    uint64_t batch;       /* hs_stream_msg_t.batch of the last message queued */
    uint32_t sent_at;     /* h2o_now (ms, low bits) when the write in flight was started */
    hs_subscriber_t sub;
    h2o_linklist_t dirty; /* linked in flush_list while a flush is scheduled */
};

/* Frames queued while nothing is in flight are written at the end of the loop iteration (a
 * zero-delay timer runs after the iteration's I/O), so every message that arrived in one
 * iteration (several doorbells read at once, a replay) goes out in one write per subscriber.
 * A longer list is written FLUSH_SLICE subscribers per loop iteration, driven by pump_fd (an
 * eventfd kept readable while the list is not empty; see the file comment). */
static h2o_linklist_t flush_list = {&flush_list, &flush_list};
static int pump_fd = -1;
static h2o_socket_t *pump_sock;
static int pump_armed;

/* A write still in flight after this long, with more than HERALD_SSE_MAX_BUFFER waiting behind
 * it, marks a slow consumer. */
#define SLOW_WRITE_MS 50
static hs_timer_t flush_timer;

/* ---------------- framing ---------------- */

/* append_field_value appends s without CR or LF (they would end the field). */
static void append_field_value(hs_strbuf_t *out, const char *s)
{
    for (; *s; s++)
        hs_strbuf_append(out, (*s == '\r' || *s == '\n') ? " " : s, 1);
}

/* format_frame appends one SSE frame: id, event (unless "message"), one data line per line of
 * data (CRLF, LF and CR all end a line), then the blank line. */
static void format_frame(hs_strbuf_t *out, const char *event, const char *id, const char *data, size_t len)
{
    hs_strbuf_reserve(out, len + 64);
    if (id != NULL) {
        hs_strbuf_append(out, "id: ", 4);
        append_field_value(out, id);
        hs_strbuf_append(out, "\n", 1);
    }
    if (event != NULL && strcmp(event, "message") != 0) {
        hs_strbuf_append(out, "event: ", 7);
        append_field_value(out, event);
        hs_strbuf_append(out, "\n", 1);
    }
    size_t start = 0;
    for (size_t i = 0;; i++) {
        if (i == len || data[i] == '\r' || data[i] == '\n') {
            hs_strbuf_append(out, "data: ", 6);
            hs_strbuf_append(out, data + start, i - start);
            hs_strbuf_append(out, "\n", 1);
            if (i == len)
                break;
            if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
                i++;
            start = i + 1;
        }
    }
    hs_strbuf_append(out, "\n", 1);
}

/* ---------------- output ---------------- */

static void end_stream(hs_sse_t *sse);

static void release_buffers(hs_sse_t *sse)
{
    hs_strbuf_free(&sse->pending);
    hs_strbuf_free(&sse->inflight);
}

/* pending_append adds framed SSE bytes to the pending buffer (after the chunk-size room of a
 * raw stream); pending_bytes counts them. */
static void pending_append(hs_sse_t *sse, const char *p, size_t n)
{
    if (sse->raw && sse->pending.len == 0)
        hs_strbuf_append(&sse->pending, "                  ", CHUNK_HEADROOM);
    hs_strbuf_append(&sse->pending, p, n);
}

static size_t pending_bytes(hs_sse_t *sse)
{
    return sse->pending.len == 0 ? 0 : sse->pending.len - (sse->raw ? CHUNK_HEADROOM : 0);
}

/* write_direct writes as much of p as the socket takes now; returns the bytes written (0 on
 * EAGAIN or an error: h2o's own write then meets the error and closes the connection). send()
 * rather than write(): a socket's send skips the file layer (vfs_write, fdget_pos), about 2 % of
 * a broadcast's kernel time. (MSG_NOSIGNAL only restates main's ignored SIGPIPE, so that this
 * function is safe on its own.) */
static size_t write_direct(int fd, const char *p, size_t n)
{
    ssize_t w;
    while ((w = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return w > 0 ? (size_t)w : 0;
}

static void flush(hs_sse_t *sse)
{
    if (sse->req == NULL || !sse->started || sse->sending || sse->cut || pending_bytes(sse) == 0)
        return;
    const char *base = sse->pending.base;
    size_t len = sse->pending.len;
    if (sse->raw) {
        /* one chunk: its size line in the room before the payload, CRLF after it */
        char line[CHUNK_HEADROOM + 1];
        int n = snprintf(line, sizeof(line), "%zx\r\n", sse->pending.len - CHUNK_HEADROOM);
        memcpy(sse->pending.base + CHUNK_HEADROOM - n, line, (size_t)n);
        hs_strbuf_append(&sse->pending, "\r\n", 2);
        base = sse->pending.base + CHUNK_HEADROOM - n;
        len = sse->pending.len - (size_t)(CHUNK_HEADROOM - n);
        if (sse->head_sent) {
            size_t w = write_direct(sse->fd, base, len);
            if (w == len) { /* all of it: nothing in flight, hold no buffer */
                hs_strbuf_free(&sse->pending);
                return;
            }
            base += w;
            len -= w;
        }
    }
    hs_strbuf_t t = sse->inflight;
    sse->inflight = sse->pending; /* base points into it */
    sse->pending = t;
    sse->pending.len = 0;
    sse->sending = 1;
    sse->sent_at = (uint32_t)h2o_now(sse->loop);
    h2o_iovec_t buf = h2o_iovec_init(base, len);
    h2o_send(sse->req, &buf, 1, H2O_SEND_STATE_IN_PROGRESS);
}

static void pump_set(int on)
{
    uint64_t v = 1;
    if (on == pump_armed || pump_fd < 0)
        return;
    pump_armed = on;
    ssize_t r = on ? write(pump_fd, &v, sizeof(v)) : read(pump_fd, &v, sizeof(v));
    (void)r;
}

static void flush_slice(void)
{
    for (int i = 0; i < FLUSH_SLICE && !h2o_linklist_is_empty(&flush_list); i++) {
        hs_sse_t *sse = H2O_STRUCT_FROM_MEMBER(hs_sse_t, dirty, flush_list.next);
        h2o_linklist_unlink(&sse->dirty);
        flush(sse);
    }
    pump_set(!h2o_linklist_is_empty(&flush_list));
}

static void on_pump(h2o_socket_t *sock, const char *err)
{
    flush_slice();
}

static void on_flush_timer(hs_timer_t *t)
{
    flush_slice();
}

static void pump_init(h2o_loop_t *loop)
{
    if (pump_fd >= 0)
        return;
    pump_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pump_fd < 0) {
        hs_error(MODULE, "eventfd: %s; long fan-outs are written in one go", strerror(errno));
        return;
    }
    pump_sock = h2o_evloop_socket_create(loop, pump_fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(pump_sock, on_pump);
}

/* schedule_flush puts sse at the end of the flush list (the next slice, or when its turn
 * comes round in the current pass). */
static void schedule_flush(hs_sse_t *sse)
{
    if (h2o_linklist_is_linked(&sse->dirty))
        return;
    h2o_linklist_insert(&flush_list, &sse->dirty);
    if (!pump_armed && !hs_timer_is_active(&flush_timer))
        hs_timer_start(sse->loop, &flush_timer, 0, on_flush_timer);
}

/* http1_socket returns the socket of an HTTP/1 connection. h2o 2.2.5 keeps it right after the
 * h2o_conn_t in its (private) struct st_h2o_http1_conn_t; the peer address is compared to
 * make sure the layout is the expected one. */
static h2o_socket_t *http1_socket(h2o_req_t *req)
{
    struct http1_conn_prefix {
        h2o_conn_t super;
        h2o_socket_t *sock;
    };
    if (req->version >= 0x200 || req->conn == NULL || req->conn->callbacks == NULL ||
        req->conn->callbacks->get_peername == NULL)
        return NULL;
    h2o_socket_t *sock = ((struct http1_conn_prefix *)req->conn)->sock;
    if (sock == NULL)
        return NULL;
    struct sockaddr_storage a, b;
    socklen_t la = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&a);
    socklen_t lb = h2o_socket_getpeername(sock, (struct sockaddr *)&b);
    if (la == 0 || la != lb || memcmp(&a, &b, la) != 0)
        return NULL;
    return sock;
}

/* release_input gives back the HTTP/1 connection's input buffer (8 KiB of capacity: most of
 * an idle stream's memory). Called once the response head has been written: h2o 2.2.5 reads
 * the request's bytes (method, headers) there until then, and never again for a response that
 * does not end normally — an SSE response only ends by an error or a cut, and both close the
 * connection instead of reading the next request (lib/http1.c: on_send_complete with
 * http1_is_persistent = 0, close_connection). Skipped when more than this request's bytes
 * might be buffered (a pipelined request). */
static void release_input(h2o_req_t *req)
{
    h2o_socket_t *sock = http1_socket(req);
    if (sock == NULL || sock->input == NULL || sock->input->bytes == NULL)
        return;
    if (sock->input->size > 4096)
        return;
    req->http1_is_persistent = 0; /* never read a next request from this connection */
    h2o_buffer_dispose(&sock->input);
    h2o_buffer_init(&sock->input, &h2o_socket_buffer_prototype);
}

static void cut(hs_sse_t *sse)
{
    HS_METRIC_INC(sse_slow_consumer_cuts_total);
    hs_warn(MODULE, "slow consumer cut off: %zu bytes not yet written to it (HERALD_SSE_MAX_BUFFER=%zu); it may reconnect with Last-Event-ID",
            sse->pending.len + sse->inflight.len, hs_config.sse_max_buffer);
    sse->cut = 1;
    hs_strbuf_free(&sse->pending);
    hs_timer_stop(&sse->keepalive);
    hs_timer_stop(&sse->tick);
    if (sse->has_sub)
        hs_subscriber_detach(&sse->sub);
    h2o_socket_t *sock = http1_socket(sse->req);
    if (sock != NULL) {
        int fd = h2o_socket_get_fd(sock);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR); /* the write in flight fails; h2o closes and calls stop */
    }
    if (!sse->sending) { /* nothing in flight: end it now */
        h2o_send(sse->req, NULL, 0, H2O_SEND_STATE_ERROR);
        end_stream(sse);
    }
}

/* queue appends bytes (already framed) and sends them when nothing is in flight.
 * The output bound (HERALD_SSE_MAX_BUFFER = B) counts bytes not yet handed to h2o:
 *  - at the start of each delivery (new_batch: a doorbell, an outbox read, a comment, a
 *    caller's frame) a subscriber that still has more than B unsent behind a write in flight
 *    for SLOW_WRITE_MS or more is cut: it has not drained what it was given before;
 *  - within one delivery (an outbox read fans out up to a few hundred rows at once) the
 *    backlog may grow past B, up to 8 B (plus one frame larger than B), then it is cut. */
static void queue(hs_sse_t *sse, const char *p, size_t n, int new_batch)
{
    if (sse->req == NULL || sse->cut)
        return;
    size_t bound = hs_config.sse_max_buffer;
    /* only a subscriber whose write has been in flight for a while is slow: bytes merely
     * waiting for this loop turn's flush, or behind a write started moments ago (one large
     * message followed at once by another), are not */
    if (sse->started && new_batch && sse->sending && sse->pending.len > bound &&
        (uint32_t)h2o_now(sse->loop) - sse->sent_at >= SLOW_WRITE_MS) {
        cut(sse);
        return;
    }
    pending_append(sse, p, n);
    if (sse->started && sse->pending.len > bound * 8 + (n > bound ? n : 0)) {
        cut(sse);
        return;
    }
    if (sse->started && !sse->sending)
        schedule_flush(sse);
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    hs_sse_t *sse = (hs_sse_t *)gen;
    sse->sending = 0;
    sse->inflight.len = 0;
    if (sse->req == NULL)
        return;
    if (sse->cut) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        end_stream(sse);
        return;
    }
    if (!sse->input_released) {
        sse->input_released = 1;
        release_input(req);
    }
    sse->head_sent = 1;
    if (sse->inflight.cap > IDLE_BUFFER_KEEP)
        hs_strbuf_free(&sse->inflight);
    if (pending_bytes(sse) > 0) /* its turn comes after the subscribers already waiting */
        schedule_flush(sse);
    else /* idle: hold no buffer at all */
        release_buffers(sse);
}

/* ---------------- lifetime ---------------- */

static void end_stream(hs_sse_t *sse)
{
    if (sse->ended)
        return;
    sse->ended = 1;
    if (sse->started)
        HS_METRIC_DEC(sse_streams_open);
    sse->req = NULL;
    if (h2o_linklist_is_linked(&sse->dirty))
        h2o_linklist_unlink(&sse->dirty);
    hs_timer_stop(&sse->keepalive);
    hs_timer_stop(&sse->tick);
    if (sse->has_sub)
        hs_subscriber_detach(&sse->sub);
    if (sse->query != NULL) {
        hs_pg_query_cancel(sse->query);
        sse->query = NULL;
    }
    hs_strbuf_free(&sse->pending);
    if (sse->on_close != NULL)
        sse->on_close(sse, sse->data);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    end_stream((hs_sse_t *)gen);
}

static void on_dispose(void *p)
{
    hs_sse_t *sse = p;
    end_stream(sse);
    release_buffers(sse);
}

static void start_response(hs_sse_t *sse)
{
    h2o_req_t *req = sse->req;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-accel-buffering"), 0, NULL, H2O_STRLIT("no"));
    if (sse->raw) /* framed here: h2o's chunked filter steps aside when the header is set */
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_TRANSFER_ENCODING, NULL, H2O_STRLIT("chunked"));
    sse->started = 1;
    HS_METRIC_INC(sse_streams_open);
    h2o_start_response(req, &sse->super);
    flush(sse);
}

/* fail_before_start answers an error instead of the stream (the response has not started). */
static void fail_before_start(hs_sse_t *sse, PGresult *res, const char *error)
{
    h2o_req_t *req = sse->req;
    end_stream(sse);
    hs_pg_reply_error(req, res, error);
}

/* ---------------- timers ---------------- */

static void on_keepalive(hs_timer_t *t)
{
    hs_sse_t *sse = H2O_STRUCT_FROM_MEMBER(hs_sse_t, keepalive, t);
    hs_timer_start(sse->loop, &sse->keepalive, sse->keepalive_ms, on_keepalive);
    if (sse->started)
        hs_sse_comment(sse, sse->keepalive_comment);
}

static void on_tick_timer(hs_timer_t *t)
{
    hs_sse_t *sse = H2O_STRUCT_FROM_MEMBER(hs_sse_t, tick, t);
    hs_timer_start(sse->loop, &sse->tick, sse->tick_ms, on_tick_timer);
    sse->on_tick(sse, sse->data);
}

/* ---------------- following a stream ---------------- */

static void on_stream_message(hs_subscriber_t *sub, hs_stream_msg_t *msg)
{
    hs_sse_t *sse = sub->data;
    if (msg->frame.len == 0) {
        char id[24];
        if (msg->seq > 0)
            snprintf(id, sizeof(id), "%" PRId64, msg->seq);
        format_frame(&msg->frame, msg->kind, msg->seq > 0 ? id : NULL, msg->data, msg->len);
    }
    HS_METRIC_INC(sse_messages_out_total);
    int new_batch = msg->batch != sse->batch;
    sse->batch = msg->batch;
    queue(sse, msg->frame.base, msg->frame.len, new_batch);
}

static void on_position(void *data, PGresult *res, const char *error)
{
    hs_sse_t *sse = data;
    sse->query = NULL;
    if (!hs_pg_result_ok(res) || PQntuples(res) < 1) {
        fail_before_start(sse, res, error ? error : (res && PQntuples(res) < 1 ? "no stream position" : NULL));
        return;
    }
    int64_t pos = PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    start_response(sse);
    hs_subscriber_start(&sse->sub, pos, 0);
}

static void on_snapshot(void *data, PGresult *res, const char *error)
{
    hs_sse_t *sse = data;
    sse->query = NULL;
    if (!hs_pg_result_ok(res)) {
        fail_before_start(sse, res, error);
        return;
    }
    int n = PQntuples(res);
    if (n < 1 || PQnfields(res) < 3 || PQgetisnull(res, 0, 0)) {
        hs_error(MODULE, "snapshot query returned no position (%d rows)", n);
        h2o_req_t *req = sse->req;
        end_stream(sse);
        hs_http_send_error(req, 500, "internal error");
        return;
    }
    const char *position = PQgetvalue(res, 0, 0);
    int last = -1;
    for (int i = 0; i < n; i++)
        if (!PQgetisnull(res, i, 1))
            last = i;
    hs_strbuf_t frame = {0};
    for (int i = 0; i <= last; i++) {
        if (PQgetisnull(res, i, 1))
            continue;
        hs_strbuf_reset(&frame);
        format_frame(&frame, PQgetvalue(res, i, 1), i == last ? position : NULL, PQgetvalue(res, i, 2),
                     (size_t)PQgetlength(res, i, 2));
        HS_METRIC_INC(sse_messages_out_total);
        pending_append(sse, frame.base, frame.len);
    }
    hs_strbuf_free(&frame);
    start_response(sse);
    hs_subscriber_start(&sse->sub, strtoll(position, NULL, 10), 0);
}

/* ---------------- public ---------------- */

hs_sse_t *hs_sse_start(h2o_req_t *req, const hs_sse_options_t *opts)
{
    if (opts->last_event_id < -1) { /* hs_sse_last_event_id: present but not a seq */
        hs_http_send_error(req, 400, "Last-Event-ID must be a non-negative integer (an id: of this stream)");
        return NULL;
    }
    /* as a query would: refused when no connection is up nor being made (not just after start) */
    if (opts->stream != NULL && !hs_pg_will_answer()) {
        HS_METRIC_INC(pg_unavailable_total);
        hs_http_send_error(req, 503, "database unavailable");
        return NULL;
    }
    hs_sse_t *sse = h2o_mem_alloc_shared(&req->pool, sizeof(*sse), on_dispose);
    memset(sse, 0, sizeof(*sse));
    sse->super.proceed = on_proceed;
    sse->super.stop = on_stop;
    sse->req = req;
    sse->loop = req->conn->ctx->loop;
    sse->keepalive_ms = opts->keepalive_ms ? opts->keepalive_ms : (uint64_t)hs_config.sse_keepalive_ms;
    sse->keepalive_comment = h2o_strdup(&req->pool, opts->keepalive_comment ? opts->keepalive_comment : "keep-alive", SIZE_MAX).base;
    sse->tick_ms = opts->tick_ms;
    sse->on_tick = opts->on_tick;
    sse->on_close = opts->on_close;
    sse->data = opts->data;

    h2o_socket_t *sock = req->version == 0x101 && hs_http_method_is(req, "GET") ? http1_socket(req) : NULL;
    sse->fd = sock != NULL && sock->ssl == NULL ? h2o_socket_get_fd(sock) : -1; /* plain TCP only */
    sse->raw = sse->fd >= 0;
    pump_init(sse->loop);
    char retry[48];
    int rn = snprintf(retry, sizeof(retry), "retry: %d\n\n", hs_config.sse_retry_ms);
    pending_append(sse, retry, (size_t)rn);
    if (sse->keepalive_ms > 0)
        hs_timer_start(sse->loop, &sse->keepalive, sse->keepalive_ms, on_keepalive);

    if (opts->stream == NULL) {
        start_response(sse);
    } else {
        sse->sub.on_message = on_stream_message;
        sse->sub.data = sse;
        sse->has_sub = 1;
        hs_subscriber_attach(&sse->sub, opts->stream);
        if (opts->last_event_id >= 0) {
            start_response(sse);
            hs_subscriber_start(&sse->sub, opts->last_event_id, 1);
        } else if (opts->snapshot_sql != NULL) {
            sse->query = hs_pg_query(opts->snapshot_sql, opts->snapshot_nparams, opts->snapshot_params, on_snapshot, sse);
        } else {
            const char *values[1] = {opts->stream};
            sse->query = hs_pg_query("SELECT herald.stream_position($1)", 1, values, on_position, sse);
        }
        if (sse->ended)
            return NULL; /* the query failed at once; the error has been sent */
    }
    if (sse->on_tick != NULL && sse->tick_ms > 0) {
        hs_timer_start(sse->loop, &sse->tick, sse->tick_ms, on_tick_timer);
        if (opts->tick_at_start)
            sse->on_tick(sse, sse->data);
    }
    return sse->ended ? NULL : sse;
}

void hs_sse_send(hs_sse_t *sse, const char *event, const char *id, const char *data, size_t len)
{
    if (sse == NULL || sse->req == NULL || sse->cut)
        return;
    hs_strbuf_t frame = {0};
    format_frame(&frame, event, id, data ? data : "", data ? len : 0);
    HS_METRIC_INC(sse_messages_out_total);
    queue(sse, frame.base, frame.len, 1);
    hs_strbuf_free(&frame);
}

void hs_sse_comment(hs_sse_t *sse, const char *text)
{
    if (sse == NULL || sse->req == NULL || sse->cut)
        return;
    hs_strbuf_t line = {0};
    hs_strbuf_append(&line, ": ", 2);
    append_field_value(&line, text ? text : "");
    hs_strbuf_append(&line, "\n\n", 2);
    queue(sse, line.base, line.len, 1);
    hs_strbuf_free(&line);
}

int64_t hs_sse_last_event_id(h2o_req_t *req)
{
    const char *v = hs_http_header(req, "last-event-id");
    if (v == NULL || *v == '\0')
        v = hs_http_query_param(req, "lastEventId");
    if (v == NULL || *v == '\0')
        return -1;
    int64_t n = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9' || p - v >= 18)
            return -2;
        n = n * 10 + (*p - '0');
    }
    return n;
}
