/* http_util.c — see http_util.h. */
#include "http_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "metrics.h"
#include "strbuf.h"

struct route_handler {
    h2o_handler_t super;
    hs_route_cb on_req;
};

const char *hs_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

/* origin_allowed: the request's Origin is one of ORIGIN's comma-separated entries. */
static int origin_allowed(const char *origin)
{
    const char *list = hs_config.origin;
    size_t olen = strlen(origin);
    while (list != NULL && *list != '\0') {
        while (*list == ' ' || *list == ',')
            list++;
        const char *end = strchr(list, ',');
        size_t len = end ? (size_t)(end - list) : strlen(list);
        while (len > 0 && list[len - 1] == ' ')
            len--;
        if (len > 0 && (len == olen && strncmp(list, origin, len) == 0))
            return 1;
        if (len == 1 && list[0] == '*')
            return 1;
        list = end;
    }
    return 0;
}

static int on_route(h2o_handler_t *_self, h2o_req_t *req)
{
    struct route_handler *self = (void *)_self;
    HS_METRIC_INC(http_requests_total);
    const char *origin = hs_http_header(req, "origin");
    int allowed = origin != NULL && origin_allowed(origin);
    if (allowed) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL, origin, strlen(origin));
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("vary"), 0, NULL, H2O_STRLIT("Origin"));
    }
    if (hs_http_method_is(req, "OPTIONS")) {
        if (!allowed) {
            hs_http_send_error(req, 403, "origin %s is not allowed (ORIGIN)", origin ? origin : "(none)");
            return 0;
        }
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-methods"), 0, NULL, H2O_STRLIT("GET, POST"));
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-headers"), 0,
                              NULL, H2O_STRLIT("Authorization, Accept, Content-Type, Last-Event-ID"));
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-max-age"), 0, NULL, H2O_STRLIT("600"));
        hs_http_send_no_content(req);
        return 0;
    }
    return self->on_req(_self, req);
}

void hs_route(h2o_hostconf_t *host, const char *path, hs_route_cb on_req)
{
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, path, 0);
    struct route_handler *h = (void *)h2o_create_handler(pathconf, sizeof(*h));
    h->super.on_req = on_route;
    h->on_req = on_req;
}

void hs_http_send(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = hs_http_reason(status);
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    req->res.content_length = len;
    h2o_iovec_t buf = h2o_strdup(&req->pool, body, len);
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

void hs_http_send_json(h2o_req_t *req, int status, const char *json, size_t len)
{
    hs_http_send(req, status, "application/json", json, len);
}

void hs_http_send_no_content(h2o_req_t *req)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = 204;
    req->res.reason = "No Content";
    h2o_start_response(req, &generator);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

void hs_http_send_error(h2o_req_t *req, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    hs_strbuf_t sb = {0};
    hs_strbuf_appends(&sb, "{\"error\":");
    hs_strbuf_append_json_string(&sb, msg, strlen(msg));
    hs_strbuf_appends(&sb, "}");
    hs_http_send_json(req, status, sb.base, sb.len);
    hs_strbuf_free(&sb);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static char *url_decode(h2o_mem_pool_t *pool, const char *s, size_t len)
{
    char *out = h2o_mem_alloc_pool(pool, len + 1), *p = out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            *p++ = ' ';
        } else if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *p++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *p++ = s[i];
        }
    }
    *p = '\0';
    return out;
}

const char *hs_http_query_param(h2o_req_t *req, const char *name)
{
    if (req->query_at == SIZE_MAX)
        return NULL;
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nlen = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pend = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pend - q));
        const char *kend = eq ? eq : pend;
        if ((size_t)(kend - q) == nlen && memcmp(q, name, nlen) == 0)
            return eq ? url_decode(&req->pool, eq + 1, (size_t)(pend - eq - 1)) : "";
        q = pend + 1;
    }
    return NULL;
}

size_t hs_http_path_len(h2o_req_t *req)
{
    return req->query_at != SIZE_MAX ? req->query_at : req->path.len;
}

/* path_is: the request's path (without the query) is exactly path. */
static int path_is(h2o_req_t *req, const char *path)
{
    return h2o_memis(req->path.base, hs_http_path_len(req), path, strlen(path));
}

int hs_http_require_path(h2o_req_t *req, const char *path)
{
    if (path_is(req, path))
        return 1;
    hs_http_send_error(req, 404, "no route for %.*s", (int)hs_http_path_len(req), req->path.base);
    return 0;
}

const char *hs_http_path_tail(h2o_req_t *req, const char *prefix)
{
    size_t plen = strlen(prefix);
    size_t path_len = hs_http_path_len(req);
    if (path_len < plen || memcmp(req->path.base, prefix, plen) != 0)
        return NULL;
    return url_decode(&req->pool, req->path.base + plen, path_len - plen);
}

const char *hs_http_header(h2o_req_t *req, const char *lowercase_name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, lowercase_name, strlen(lowercase_name), -1);
    if (i == -1)
        return NULL;
    h2o_iovec_t v = req->headers.entries[i].value;
    return h2o_strdup(&req->pool, v.base, v.len).base;
}

int hs_http_method_is(h2o_req_t *req, const char *method)
{
    return h2o_memis(req->method.base, req->method.len, method, strlen(method));
}

int hs_http_require_method(h2o_req_t *req, const char *allow)
{
    for (const char *p = allow; *p != '\0';) {
        size_t n = strcspn(p, ", ");
        if (n > 0 && h2o_memis(req->method.base, req->method.len, p, n))
            return 1;
        p += n;
        p += strspn(p, ", ");
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    hs_http_send_error(req, 405, "method %.*s is not allowed here: use %s", (int)req->method.len, req->method.base,
                       allow);
    return 0;
}

const char *hs_http_body_checked(h2o_req_t *req, int want_json, size_t *len)
{
    if (req->entity.len > hs_config.max_body) {
        hs_http_send_error(req, 413, "request body of %zu bytes exceeds the limit of %zu bytes (HERALD_MAX_BODY)", req->entity.len,
                           hs_config.max_body);
        return NULL;
    }
    if (want_json) {
        const char *ct = hs_http_header(req, "content-type");
        if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
            hs_http_send_error(req, 415, "content-type must be application/json (got %s)", ct ? ct : "none");
            return NULL;
        }
    }
    if (len != NULL)
        *len = req->entity.len;
    return req->entity.base ? h2o_strdup(&req->pool, req->entity.base, req->entity.len).base : "";
}

int hs_is_uuid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}
