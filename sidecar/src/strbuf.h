/*
 * strbuf.h — a growable byte string (malloc'd), for building responses and SSE frames.
 * Out of memory aborts: the process cannot do anything useful without memory.
 */
#ifndef HS_STRBUF_H
#define HS_STRBUF_H

#include <stddef.h>

typedef struct st_hs_strbuf_t {
    char *base; /* NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
} hs_strbuf_t;

void hs_strbuf_reserve(hs_strbuf_t *sb, size_t extra);
void hs_strbuf_append(hs_strbuf_t *sb, const char *s, size_t len);
void hs_strbuf_appends(hs_strbuf_t *sb, const char *s);
void hs_strbuf_printf(hs_strbuf_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* hs_strbuf_append_json_string appends s (len bytes) as a quoted JSON string. */
void hs_strbuf_append_json_string(hs_strbuf_t *sb, const char *s, size_t len);
void hs_strbuf_reset(hs_strbuf_t *sb);
void hs_strbuf_free(hs_strbuf_t *sb);
/* hs_strbuf_flip: double buffering. pair[*cur] collects bytes while the other one is being
 * written; returns the filled pair[*cur], makes the other (emptied) buffer current. */
hs_strbuf_t *hs_strbuf_flip(hs_strbuf_t pair[2], int *cur);

#endif
