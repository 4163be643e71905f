/* sse.c — see sse.h. (Skeleton: the SSE gateway issue implements it.) */
#include "sse.h"

#include "http_util.h"

hs_sse_t *hs_sse_start(h2o_req_t *req, const hs_sse_options_t *opts)
{
    hs_http_send_error(req, 503, "SSE is not implemented yet");
    return NULL;
}
void hs_sse_send(hs_sse_t *sse, const char *event, const char *id, const char *data, size_t len) {}
void hs_sse_comment(hs_sse_t *sse, const char *text) {}
int64_t hs_sse_last_event_id(h2o_req_t *req) { return -1; }
