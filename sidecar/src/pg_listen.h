/*
 * pg_listen.h — the LISTEN connection: channels `herald` (the outbox doorbell) and
 * `v3_messages` (seed 000's "username:message"), on the main loop.
 *
 * It is one hs_pg_conn_t (pg_async.h): lost connections come back with capped exponential
 * backoff and jitter; after every (re)connect it LISTENs again and then makes every followed
 * stream read what it missed from the outbox (subscribers.h). Every HERALD_LISTEN_CHECK_MS it
 * checks the connection end to end: `SELECT pg_notify('herald', '{"ping":"<token>"}')` through
 * the query pool must come back on the LISTEN connection within a deadline (metric
 * listen_roundtrip_ms), else the LISTEN connection is reset.
 *
 * v3_messages are not in the outbox (every sidecar hears them; if each inserted them, users
 * would get them once per sidecar): each one goes to the local subscribers of stream
 * user:<username> as a live frame without an id.
 */
#ifndef HS_PG_LISTEN_H
#define HS_PG_LISTEN_H

#include <h2o.h>

void hs_pg_listen_start(h2o_loop_t *loop, const char *conninfo);
void hs_pg_listen_stop(void);
/* hs_pg_listen_is_up: connected and listening on both channels. */
int hs_pg_listen_is_up(void);
/* hs_pg_listen_handle_payload handles one notification (exposed for unit tests). */
void hs_pg_listen_handle(const char *channel, const char *payload);

#endif
