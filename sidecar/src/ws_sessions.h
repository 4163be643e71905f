/*
 * ws_sessions.h — GET /ws?sessionId=<UUID>: upload of session entries over a WebSocket
 * (seed 002).
 *
 * Contract with the client:
 *   - a missing or malformed sessionId, or a request that is not a WebSocket handshake, is
 *     answered 400 {"error": ...} before any upgrade;
 *   - every text message is one batch (a JSON array of entries) handed whole to PostgreSQL
 *     (herald.ingest_session_batches: the messages ready on all connections are stored by
 *     one transaction, each whole or not at all); messages of one connection are stored
 *     strictly in arrival order, one at a time, and each gets exactly one text frame back:
 *     {"message":"ack","stored":N}, or {"error":"...","index":N|null} (nothing of that
 *     message stored; the connection stays open), or {"message":"bye","stored":N} when the
 *     batch ended the session, followed by a normal close (1000);
 *   - a binary message closes with 1003, invalid UTF-8 with 1007 (wslay checks text frames
 *     as they arrive), a message longer than HERALD_WS_MAX_MESSAGE with 1009, too many
 *     messages sent ahead of their replies (HS_WS_MAX_PENDING*) with 1008; a connection
 *     with nothing received and nothing in progress for HERALD_WS_IDLE_MS is closed with
 *     1000 "idle timeout";
 *   - pings are answered with pongs (wslay).
 * A message that is incomplete when the connection dies is never stored; complete messages
 * not yet sent to PostgreSQL when it dies are dropped (they could not be acknowledged).
 */
#ifndef HS_WS_SESSIONS_H
#define HS_WS_SESSIONS_H

#include <h2o.h>

#include "config.h"

/* Messages a client may send ahead of the replies on one connection (beyond: close 1008).
 * They wait in memory, so the bound is also in bytes. */
#define HS_WS_MAX_PENDING 1024
#define HS_WS_MAX_PENDING_BYTES (16 * hs_config.ws_max_message)

/* hs_ws_sessions_on_req answers GET /ws: an error, or the upgrade. Always returns 0. */
int hs_ws_sessions_on_req(h2o_handler_t *self, h2o_req_t *req);

/* hs_ws_error_index extracts N from an HR030 DETAIL "At entry N (counting from 0).";
 * returns -1 when detail does not name an entry. */
long hs_ws_error_index(const char *detail);

#endif
