/*
 * http_util.h — small helpers every route uses: JSON replies and errors, query
 * parameters, request checks, CORS, and route registration.
 *
 * Errors are always a JSON body {"error": "<message a person can act on>"} with the
 * matching status (hs_http_send_error).
 */
#ifndef HS_HTTP_UTIL_H
#define HS_HTTP_UTIL_H

#include <h2o.h>
#include <stddef.h>

typedef int (*hs_route_cb)(h2o_handler_t *self, h2o_req_t *req);

/* hs_route registers on_req for path (and everything below it). The wrapper counts the
 * request, adds CORS headers for an allowed Origin and answers OPTIONS preflights. */
void hs_route(h2o_hostconf_t *host, const char *path, hs_route_cb on_req);

/* Replies. The body is copied into the request's pool. */
void hs_http_send(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len);
void hs_http_send_json(h2o_req_t *req, int status, const char *json, size_t len);
void hs_http_send_error(h2o_req_t *req, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void hs_http_send_no_content(h2o_req_t *req);
const char *hs_http_reason(int status);

/* hs_http_query_param finds name in the query string and URL-decodes it into the request's
 * pool (NUL-terminated). Returns NULL when absent. */
const char *hs_http_query_param(h2o_req_t *req, const char *name);
/* hs_http_path_tail returns the path (without query) after prefix, e.g. "/events/" on
 * "/events/abc?x" gives "abc" (pool-allocated); NULL if the path does not start with prefix. */
const char *hs_http_path_tail(h2o_req_t *req, const char *prefix);
/* hs_http_path_len: the length of the request's path without its query string. */
size_t hs_http_path_len(h2o_req_t *req);
/* hs_http_require_path: 1 if the request's path is exactly path; otherwise answers 404
 * {"error":"no route for <path>"} and returns 0. For handlers registered on a prefix. */
int hs_http_require_path(h2o_req_t *req, const char *path);
/* hs_http_header returns the value of a request header (pool-allocated, NUL-terminated) or NULL. */
const char *hs_http_header(h2o_req_t *req, const char *lowercase_name);
int hs_http_method_is(h2o_req_t *req, const char *method);
/* hs_http_require_method: 1 if the request's method is one of allow ("GET" or a list such as
 * "GET, POST"); otherwise answers 405 with an Allow header and a JSON error, and returns 0. */
int hs_http_require_method(h2o_req_t *req, const char *allow);
/* hs_http_body_checked: for requests with a body, enforces HERALD_MAX_BODY (413) and, when
 * want_json, a JSON content type (415). Returns the body as a NUL-terminated string in the
 * pool, or NULL after having sent the error. */
const char *hs_http_body_checked(h2o_req_t *req, int want_json, size_t *len);

/* hs_is_uuid: s is a UUID in its canonical 8-4-4-4-12 hex form. */
int hs_is_uuid(const char *s);

#endif
