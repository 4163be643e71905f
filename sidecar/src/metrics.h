/*
 * metrics.h — process-wide counters and gauges, rendered at GET /metrics in Prometheus
 * text format. Updated from any thread with relaxed atomics.
 *
 * To add a metric, add one line to HS_METRICS below: X(name, type, help). The exported
 * name is "herald_<name>". For anything richer (labels, histograms), register a writer.
 */
#ifndef HS_METRICS_H
#define HS_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "strbuf.h"

#define HS_METRICS(X)                                                                                                  \
    X(http_requests_total, counter, "HTTP requests received")                                                          \
    X(http_connections_open, gauge, "Open HTTP connections")                                                           \
    X(pg_reconnects_total, counter, "Reconnections to PostgreSQL (query pool and LISTEN)")                             \
    X(pg_queries_total, counter, "Queries sent to PostgreSQL")                                                         \
    X(pg_query_errors_total, counter, "Queries that failed (server error or connection lost)")                        \
    X(pg_unavailable_total, counter, "Requests refused with 503 because PostgreSQL was unavailable")                  \
    X(sse_streams_open, gauge, "Open SSE streams")                                                                     \
    X(sse_messages_in_total, counter, "Stream messages received from PostgreSQL")                                      \
    X(sse_messages_out_total, counter, "SSE messages written to subscribers")                                          \
    X(sse_replays_total, counter, "Replays from the outbox (Last-Event-ID, gaps, reconnects)")                         \
    X(sse_resets_total, counter, "Reset events sent (position older than retention)")                                 \
    X(sse_slow_consumer_cuts_total, counter, "Subscribers disconnected for exceeding the output bound")               \
    X(listen_roundtrip_ms, gauge, "Last LISTEN/NOTIFY round-trip time in milliseconds")                               \
    X(ws_connections_open, gauge, "Open WebSocket connections")                                                        \
    X(ws_messages_total, counter, "WebSocket messages received")                                                       \
    X(ws_entries_stored_total, counter, "Session entries stored from WebSocket uploads")                              \
    X(ws_errors_total, counter, "WebSocket messages refused or connections closed for bad input")                     \
    X(auth_tokens_issued_total, counter, "JWTs issued by POST /login")                                                \
    X(auth_refused_total, counter, "Requests refused with 401 for a missing, invalid or expired token")               \
    X(fm_events_total, counter, "Follower-maze events received")                                                       \
    X(fm_notifications_total, counter, "Follower-maze notifications delivered")                                        \
    X(fm_clients_connected, gauge, "Follower-maze user clients connected")                                             \
    X(fm_window_events, gauge, "Follower-maze events held in the reorder window")                                      \
    X(fm_skipped_total, counter, "Follower-maze sequence numbers skipped by the skip policy")                          \
    X(fm_duplicates_total, counter, "Follower-maze events dropped as duplicates")                                      \
    X(fm_malformed_total, counter, "Follower-maze malformed lines skipped")                                            \
    X(fm_client_cuts_total, counter, "Follower-maze clients cut (slow, silent or bad id)")                            \
    X(fm_client_disconnects_total, counter, "Follower-maze user clients that disconnected by themselves")              \
    X(fm_window_capacity, gauge, "Follower-maze reorder window slots allocated (64 bytes each)")                       \
    X(fm_streams_total, counter, "Follower-maze event source connections (each one a fresh stream)")                  \
    X(relay_tweets_in_total, counter, "Tweets read from upstream SSE streams")                                         \
    X(relay_tweets_out_total, counter, "Tweet lines written to relay clients")                                         \
    X(relay_worker_restarts_total, counter, "Relay worker processes restarted by the supervisor")                     \
    X(relay_malformed_total, counter, "Upstream events skipped as malformed")                                          \
    X(relay_upstream_reconnects_total, counter, "Reconnections to upstream SSE streams")                              \
    X(relay_clients_open, gauge, "Open relay (telnet) clients")

typedef struct st_hs_metrics_t {
#define HS_METRIC_FIELD(name, type, help) _Atomic int64_t name;
    HS_METRICS(HS_METRIC_FIELD)
#undef HS_METRIC_FIELD
} hs_metrics_t;

extern hs_metrics_t hs_metrics;

#define HS_METRIC_ADD(name, v) atomic_fetch_add_explicit(&hs_metrics.name, (int64_t)(v), memory_order_relaxed)
#define HS_METRIC_INC(name) HS_METRIC_ADD(name, 1)
#define HS_METRIC_DEC(name) HS_METRIC_ADD(name, -1)
#define HS_METRIC_SET(name, v) atomic_store_explicit(&hs_metrics.name, (int64_t)(v), memory_order_relaxed)
#define HS_METRIC_GET(name) atomic_load_explicit(&hs_metrics.name, memory_order_relaxed)

/* A writer appends extra Prometheus text (with its own # HELP/# TYPE lines). */
typedef void (*hs_metrics_writer_cb)(hs_strbuf_t *out);
void hs_metrics_register_writer(hs_metrics_writer_cb cb);
/* hs_metrics_render appends the whole exposition to out. */
void hs_metrics_render(hs_strbuf_t *out);

#endif
