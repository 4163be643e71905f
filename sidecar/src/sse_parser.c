/* sse_parser.c — see sse_parser.h. */
#include "sse_parser.h"

#include <stdlib.h>
#include <string.h>

#define LINE_SLACK 256 /* room for a field name and colon beyond max_data */

void hs_sse_parser_init(hs_sse_parser_t *p, size_t max_data, hs_sse_event_cb on_event, hs_sse_skip_cb on_skip, void *ctx)
{
    memset(p, 0, sizeof(*p));
    p->max_data = max_data;
    p->on_event = on_event;
    p->on_skip = on_skip;
    p->ctx = ctx;
    p->retry_ms = -1;
}

static void reset_event(hs_sse_parser_t *p)
{
    hs_strbuf_reset(&p->_data);
    hs_strbuf_reset(&p->_type);
    p->_has_data = 0;
    p->_event_dropped = 0;
}

void hs_sse_parser_reset_stream(hs_sse_parser_t *p)
{
    reset_event(p);
    hs_strbuf_reset(&p->_line);
    p->_line_dropped = 0;
    p->_after_cr = 0;
    p->_bom_state = 0;
}

const char *hs_sse_parser_last_id(const hs_sse_parser_t *p)
{
    return p->_id.len ? p->_id.base : "";
}

void hs_sse_parser_dispose(hs_sse_parser_t *p)
{
    hs_strbuf_free(&p->_line);
    hs_strbuf_free(&p->_data);
    hs_strbuf_free(&p->_type);
    hs_strbuf_free(&p->_id);
}

static void dispatch(hs_sse_parser_t *p)
{
    if (p->_event_dropped > 0) {
        if (p->on_skip != NULL)
            p->on_skip(p->ctx, "event larger than the limit", p->_event_dropped);
    } else if (p->_has_data) {
        if (p->_data.len > 0 && p->_data.base[p->_data.len - 1] == '\n')
            p->_data.base[--p->_data.len] = '\0';
        hs_sse_event_t ev = {
            .type = p->_type.len ? p->_type.base : "message",
            .data = p->_data.len ? p->_data.base : "",
            .data_len = p->_data.len,
            .id = hs_sse_parser_last_id(p),
        };
        p->on_event(p->ctx, &ev);
    }
    reset_event(p);
}

static int field_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(name, want, len) == 0;
}

static void process_line(hs_sse_parser_t *p, const char *line, size_t len, size_t dropped)
{
    if (dropped > 0) {
        /* Too long to keep: whatever field it was, the event it belongs to is skipped. */
        p->_event_dropped += p->_data.len + len + dropped;
        hs_strbuf_reset(&p->_data);
        return;
    }
    if (len == 0) {
        dispatch(p);
        return;
    }
    if (line[0] == ':')
        return; /* comment */
    const char *colon = memchr(line, ':', len), *value;
    size_t name_len, value_len;
    if (colon != NULL) {
        name_len = (size_t)(colon - line);
        value = colon + 1;
        value_len = len - name_len - 1;
        if (value_len > 0 && value[0] == ' ')
            value++, value_len--;
    } else {
        name_len = len;
        value = line + len;
        value_len = 0;
    }
    if (field_is(line, name_len, "data")) {
        if (p->_event_dropped > 0) {
            p->_event_dropped += value_len + 1;
        } else if (p->_data.len + value_len + 1 > p->max_data) {
            p->_event_dropped = p->_data.len + value_len + 1;
            hs_strbuf_reset(&p->_data);
        } else {
            hs_strbuf_append(&p->_data, value, value_len);
            hs_strbuf_append(&p->_data, "\n", 1);
        }
        p->_has_data = 1;
    } else if (field_is(line, name_len, "event")) {
        hs_strbuf_reset(&p->_type);
        hs_strbuf_append(&p->_type, value, value_len);
    } else if (field_is(line, name_len, "id")) {
        if (memchr(value, '\0', value_len) == NULL) {
            hs_strbuf_reset(&p->_id);
            hs_strbuf_append(&p->_id, value, value_len);
        }
    } else if (field_is(line, name_len, "retry")) {
        long v = 0;
        size_t i;
        for (i = 0; i < value_len && value[i] >= '0' && value[i] <= '9'; i++)
            if (v < 100000000)
                v = v * 10 + (value[i] - '0');
        if (value_len > 0 && i == value_len)
            p->retry_ms = v;
    }
    /* other fields are ignored */
}

static void append_line(hs_sse_parser_t *p, const char *s, size_t n)
{
    size_t limit = p->max_data + LINE_SLACK;
    if (p->_line_dropped > 0 || p->_line.len + n > limit) {
        size_t keep = p->_line_dropped > 0 || p->_line.len >= limit ? 0 : limit - p->_line.len;
        hs_strbuf_append(&p->_line, s, keep);
        p->_line_dropped += n - keep;
        return;
    }
    hs_strbuf_append(&p->_line, s, n);
}

static void end_line(hs_sse_parser_t *p)
{
    process_line(p, p->_line.len ? p->_line.base : "", p->_line.len, p->_line_dropped);
    hs_strbuf_reset(&p->_line);
    p->_line_dropped = 0;
}

void hs_sse_parser_feed(hs_sse_parser_t *p, const char *buf, size_t len)
{
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    size_t i = 0;
    while (p->_bom_state < 3 && i < len) {
        if ((unsigned char)buf[i] == bom[p->_bom_state]) {
            p->_bom_state++;
            i++;
        } else {
            /* not a BOM: the bytes matched so far are ordinary data */
            append_line(p, (const char *)bom, (size_t)p->_bom_state);
            p->_bom_state = 3;
        }
    }
    while (i < len) {
        if (p->_after_cr) {
            p->_after_cr = 0;
            if (buf[i] == '\n') {
                i++;
                continue;
            }
        }
        size_t j = i;
        while (j < len && buf[j] != '\n' && buf[j] != '\r')
            j++;
        append_line(p, buf + i, j - i);
        if (j == len)
            break;
        p->_after_cr = buf[j] == '\r';
        end_line(p);
        i = j + 1;
    }
}
