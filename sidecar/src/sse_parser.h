/*
 * sse_parser.h — an incremental text/event-stream parser (WHATWG HTML "Server-sent events",
 * section "Event stream interpretation"), for the relay's upstream receivers.
 *
 * Feed it bytes in any split; it calls on_event for each dispatched event. Lines end with
 * CRLF, LF or CR (a CRLF split across two feeds counts once). A leading UTF-8 BOM is
 * dropped. Fields: data (lines joined with LF), event (type, default "message"), id (kept
 * across events as the last event id, ignored if it contains NUL), retry (digits only);
 * lines starting with ':' are comments; unknown fields are ignored; an empty line
 * dispatches, and an event with no data is not dispatched.
 *
 * Bounded: an event whose data (or any line) exceeds max_data bytes is not buffered; the
 * parser discards its bytes and, at its end, calls on_skip with a reason instead of
 * on_event. Memory per parser stays about max_data.
 */
#ifndef HS_SSE_PARSER_H
#define HS_SSE_PARSER_H

#include <stddef.h>

#include "strbuf.h"

typedef struct st_hs_sse_event_t {
    const char *type; /* "message" unless an event: field said otherwise; NUL-terminated */
    const char *data; /* NUL-terminated; data_len bytes (may contain NULs) */
    size_t data_len;
    const char *id;   /* the last event id after this event ("" if none); NUL-terminated */
} hs_sse_event_t;

typedef void (*hs_sse_event_cb)(void *ctx, const hs_sse_event_t *event);
typedef void (*hs_sse_skip_cb)(void *ctx, const char *reason, size_t bytes);

typedef struct st_hs_sse_parser_t {
    size_t max_data;
    hs_sse_event_cb on_event;
    hs_sse_skip_cb on_skip; /* may be NULL */
    void *ctx;
    long retry_ms;          /* last retry: value, -1 if none seen */
    /* private */
    hs_strbuf_t _line, _data, _type, _id;
    size_t _line_dropped;   /* bytes of the current line not kept (too long) */
    size_t _event_dropped;  /* bytes of the current event not kept (too large); >0 = skip it */
    int _after_cr;          /* the previous byte ended a line with CR (swallow a following LF) */
    int _bom_state;         /* 0: start of stream, 1..2: matched BOM bytes, 3: past it */
    int _has_data;
} hs_sse_parser_t;

void hs_sse_parser_init(hs_sse_parser_t *p, size_t max_data, hs_sse_event_cb on_event, hs_sse_skip_cb on_skip, void *ctx);
/* hs_sse_parser_feed parses len bytes; callbacks run from inside it. */
void hs_sse_parser_feed(hs_sse_parser_t *p, const char *buf, size_t len);
/* hs_sse_parser_reset_stream forgets a partial line/event (a new connection), keeps the last id. */
void hs_sse_parser_reset_stream(hs_sse_parser_t *p);
/* hs_sse_parser_last_id: the last event id ("" if none). */
const char *hs_sse_parser_last_id(const hs_sse_parser_t *p);
void hs_sse_parser_dispose(hs_sse_parser_t *p);

#endif
