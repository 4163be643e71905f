/*
 * sse.h — Server-Sent-Events responses fed by Herald's outbox streams.
 *
 * hs_sse_start turns a request into an endless text/event-stream response:
 *   - status 200, content-type: text/event-stream, cache-control: no-cache, then "retry:".
 *   - when opts->stream is set, the subscriber follows that outbox stream: it resumes after
 *     opts->last_event_id (replay from the outbox, then live), or, without a Last-Event-ID,
 *     starts with opts->snapshot_sql (if any) and continues live from the snapshot's position,
 *     or (no snapshot) from the stream's current position. No duplicate, no hole; a position
 *     the outbox no longer holds gives an "event: reset" frame.
 *   - frames: "id: <seq>", "event: <kind>" unless the kind is "message", one "data:" line per
 *     line of the message (CR, LF and CRLF all split lines).
 *   - a keep-alive comment every keepalive_ms; an optional periodic on_tick callback.
 *   - a subscriber whose unsent output passes HERALD_SSE_MAX_BUFFER is disconnected.
 *
 * Snapshot SQL contract: it returns rows (position bigint, kind text, data text), every row
 * with the same position = the stream's last seq in the same statement snapshot; rows with
 * a NULL kind carry only the position (an empty snapshot returns one such row). Snapshot
 * messages are sent in row order; the last one carries "id: <position>".
 *
 * Everything runs on the main loop thread.
 */
#ifndef HS_SSE_H
#define HS_SSE_H

#include <h2o.h>
#include <stdint.h>

typedef struct st_hs_sse_t hs_sse_t;
typedef void (*hs_sse_tick_cb)(hs_sse_t *sse, void *data);

typedef struct st_hs_sse_options_t {
    const char *stream;              /* outbox stream to follow; NULL: only what the caller sends */
    int64_t last_event_id;           /* resume after this seq; -1 = none; -2 (hs_sse_last_event_id:
                                      * malformed) answers 400 */
    const char *snapshot_sql;        /* optional, see above; used only when last_event_id < 0 */
    int snapshot_nparams;
    const char *const *snapshot_params;
    uint64_t keepalive_ms;           /* 0 = HERALD_SSE_KEEPALIVE_MS */
    const char *keepalive_comment;   /* text of the comment line; NULL = "keep-alive" */
    uint64_t tick_ms;                /* 0 = no tick */
    hs_sse_tick_cb on_tick;          /* called every tick_ms (and once at start if tick_at_start) */
    int tick_at_start;
    void *data;                      /* passed to on_tick and on_close */
    /* optional: called once when the stream ends (client gone, cut, shutdown); after it returns
     * the hs_sse_t must not be used any more. */
    void (*on_close)(hs_sse_t *sse, void *data);
} hs_sse_options_t;

/* hs_sse_start answers req with an SSE stream. Returns NULL after having sent an error
 * (e.g. 503 when the stream needs PostgreSQL and it is unavailable). With a stream and no
 * Last-Event-ID, the response starts once the snapshot / stream position has been read; if
 * that query fails, the error (503, or the mapped SQLSTATE) is sent then and on_close runs.
 * Frames sent before the start are queued. Keep the returned pointer only until on_close. */
hs_sse_t *hs_sse_start(h2o_req_t *req, const hs_sse_options_t *opts);
/* hs_sse_send queues one frame (event NULL = "message"; id NULL = no id line). */
void hs_sse_send(hs_sse_t *sse, const char *event, const char *id, const char *data, size_t len);
/* hs_sse_comment queues a comment line. */
void hs_sse_comment(hs_sse_t *sse, const char *text);
/* hs_sse_last_event_id reads the Last-Event-ID header, or the lastEventId query parameter;
 * -1 when absent; -2 when present but not a non-negative integer (answer 400). */
int64_t hs_sse_last_event_id(h2o_req_t *req);

#endif
