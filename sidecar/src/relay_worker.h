/*
 * relay_worker.h — the worker-process side of the tweet relay (seed 003), and the frame
 * protocol between the relay (relay.c) and its workers.
 *
 * A worker is the sidecar binary itself re-executed as `herald-sidecar --relay-worker <slot>`
 * (posix_spawn of /proc/self/exe from the relay thread: nothing but the kernel's exec runs
 * between fork and exec, so forking from a multi-threaded process is safe). Its channel to
 * the relay is a stream socket on fd HS_RELAY_WORKER_FD. It reads request frames, formats
 * each tweet with jansson and writes one response frame per request, in request order.
 * The data `{"message": panic}` (matched literally: it is not JSON) makes it abort() — a
 * real crash, which the relay's supervisor sees and answers with a restart.
 *
 * Frame = hs_relay_frame_hdr_t (native byte order, same host) + len payload bytes.
 *   request payload:  the SSE event's data
 *   response payload: one status byte (HS_RELAY_*) + the formatted line (OK, no line end)
 *                     or a reason (INVALID_JSON / NO_TEXT)
 */
#ifndef HS_RELAY_WORKER_H
#define HS_RELAY_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define HS_RELAY_WORKER_FLAG "--relay-worker"
#define HS_RELAY_WORKER_FD 3
#define HS_RELAY_FRAME_MAX (16u << 20)

typedef struct st_hs_relay_frame_hdr_t {
    uint32_t len;      /* payload bytes */
    uint32_t upstream; /* index of the upstream the event came from */
    uint64_t seq;      /* the event's sequence number on that upstream */
} hs_relay_frame_hdr_t;

enum { HS_RELAY_OK = 0, HS_RELAY_INVALID_JSON = 1, HS_RELAY_NO_TEXT = 2 };

/* hs_relay_is_panic: data is `{"message": panic}` (surrounding whitespace ignored). */
int hs_relay_is_panic(const char *data, size_t len);
/* hs_relay_format_tweet parses data (JSON) and appends "[worker <slot> pid <pid>] <text>"
 * to out, text = message.tweet.text with '\\', CR, LF and other control characters escaped.
 * Returns HS_RELAY_OK, or another status with a reason appended to out instead. */
int hs_relay_format_tweet(const char *data, size_t len, int slot, int pid, hs_strbuf_t *out);
/* hs_relay_worker_main is main() of a worker process (argv[1] == HS_RELAY_WORKER_FLAG). */
int hs_relay_worker_main(int argc, char **argv);

#endif
