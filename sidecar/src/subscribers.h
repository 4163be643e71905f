/*
 * subscribers.h — the outbox streams this process follows, and their subscribers.
 *
 * One hs_stream_t per stream name that has at least one subscriber. It knows `position`, the
 * last seq delivered to its live subscribers, and `target`, the highest seq announced by a
 * doorbell. Messages reach the stream in three ways:
 *   - a doorbell with the message inline and seq == position + 1: delivered at once;
 *   - a doorbell without data (count) or with a gap: the stream reads herald.replay(stream,
 *     position, limit) once (not once per subscriber) and fans the rows out, again until it
 *     reaches target;
 *   - hs_streams_catch_up_all after the LISTEN connection (re)connects: the same read.
 * A subscriber starts from its own position (Last-Event-ID, a snapshot's position, or the
 * stream's position when it connected). While it is behind the stream it reads the outbox on
 * its own ("catching up"); once it reaches the stream's position it joins the live list.
 * Every subscriber skips what it already has (seq <= its position), so a message is
 * delivered once, in order, without holes. A "reset" row from herald.replay (the outbox no
 * longer holds what follows the position) is passed on as a message of kind "reset" whose
 * seq is the position to continue after.
 *
 * Everything runs on the main loop thread.
 */
#ifndef HS_SUBSCRIBERS_H
#define HS_SUBSCRIBERS_H

#include <h2o.h>
#include <stdint.h>

#include "pg_async.h"
#include "strbuf.h"
#include "timer.h"

typedef struct st_hs_stream_t hs_stream_t;
typedef struct st_hs_subscriber_t hs_subscriber_t;

/* One message on its way to subscribers. frame is a cache the subscribers' owner may fill
 * (e.g. the SSE encoding) with the first delivery and reuse for the others; the registry
 * frees it after the fan-out. */
typedef struct st_hs_stream_msg_t {
    int64_t seq; /* 0: not from the outbox (no id) */
    const char *kind;
    const char *data;
    size_t len;
    uint64_t batch; /* messages delivered by one event (doorbell, outbox read) share it */
    hs_strbuf_t frame;
} hs_stream_msg_t;

enum hs_subscriber_state { HS_SUB_IDLE, HS_SUB_WAITING, HS_SUB_CATCHING_UP, HS_SUB_LIVE };

struct st_hs_subscriber_t {
    /* set by the owner before hs_subscriber_attach */
    void (*on_message)(hs_subscriber_t *sub, hs_stream_msg_t *msg);
    void *data;
    /* private to subscribers.c */
    hs_stream_t *_stream;
    h2o_linklist_t _link;
    enum hs_subscriber_state _state;
    int64_t _pos;
    int _must_replay;
    hs_pg_query_t *_query;
    hs_timer_t _retry;
};

/* hs_streams_init: the loop the registry's timers run on (call once, before any attach). */
void hs_streams_init(h2o_loop_t *loop);

/* hs_subscriber_attach registers sub on stream (created if needed) before its start
 * position is known, so that doorbells arriving meanwhile are remembered. */
void hs_subscriber_attach(hs_subscriber_t *sub, const char *stream);
/* hs_subscriber_start gives the position to continue after. replay_first: read the outbox
 * from there even if the stream does not know of anything newer (Last-Event-ID). */
void hs_subscriber_start(hs_subscriber_t *sub, int64_t position, int replay_first);
/* hs_subscriber_detach unregisters sub (the stream is freed with its last subscriber). */
void hs_subscriber_detach(hs_subscriber_t *sub);
/* hs_subscriber_position: the last seq sub received (or its start position). */
int64_t hs_subscriber_position(hs_subscriber_t *sub);

/* hs_user_stream returns the name of a user's stream, "user:<user>" (as herald.send and the
 * state machine name it), allocated in pool. */
char *hs_user_stream(h2o_mem_pool_t *pool, const char *user);

/* hs_streams_doorbell handles one doorbell of channel herald; data NULL: not inline. */
void hs_streams_doorbell(const char *stream, int64_t seq, const char *kind, const char *data, size_t len);
/* hs_streams_direct gives a message that is not in the outbox (no seq) to every subscriber of
 * stream (v3_messages). */
void hs_streams_direct(const char *stream, const char *kind, const char *data, size_t len);
/* hs_streams_catch_up_all makes every stream read what it missed (LISTEN reconnected). */
void hs_streams_catch_up_all(void);
/* hs_streams_count: streams followed; hs_streams_subscribers: subscribers attached. */
size_t hs_streams_count(void);
size_t hs_streams_subscribers(void);
/* hs_streams_shutdown detaches everything (process exit). */
void hs_streams_shutdown(void);

#endif
