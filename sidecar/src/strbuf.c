/* strbuf.c — see strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hs_strbuf_reserve(hs_strbuf_t *sb, size_t extra)
{
    if (sb->len + extra + 1 <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + extra + 1)
        cap *= 2;
    char *p = realloc(sb->base, cap);
    if (p == NULL)
        abort();
    sb->base = p;
    sb->cap = cap;
}

void hs_strbuf_append(hs_strbuf_t *sb, const char *s, size_t len)
{
    hs_strbuf_reserve(sb, len);
    memcpy(sb->base + sb->len, s, len);
    sb->len += len;
    sb->base[sb->len] = '\0';
}

void hs_strbuf_appends(hs_strbuf_t *sb, const char *s)
{
    hs_strbuf_append(sb, s, strlen(s));
}

void hs_strbuf_printf(hs_strbuf_t *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    hs_strbuf_reserve(sb, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(sb->base + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void hs_strbuf_append_json_string(hs_strbuf_t *sb, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    hs_strbuf_reserve(sb, len + 2);
    hs_strbuf_append(sb, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': hs_strbuf_append(sb, "\\\"", 2); break;
        case '\\': hs_strbuf_append(sb, "\\\\", 2); break;
        case '\n': hs_strbuf_append(sb, "\\n", 2); break;
        case '\r': hs_strbuf_append(sb, "\\r", 2); break;
        case '\t': hs_strbuf_append(sb, "\\t", 2); break;
        default:
            if (c < 0x20) {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                hs_strbuf_append(sb, esc, 6);
            } else {
                hs_strbuf_append(sb, (const char *)&s[i], 1);
            }
        }
    }
    hs_strbuf_append(sb, "\"", 1);
}

void hs_strbuf_reset(hs_strbuf_t *sb)
{
    sb->len = 0;
    if (sb->base)
        sb->base[0] = '\0';
}

void hs_strbuf_free(hs_strbuf_t *sb)
{
    free(sb->base);
    sb->base = NULL;
    sb->len = sb->cap = 0;
}

hs_strbuf_t *hs_strbuf_flip(hs_strbuf_t pair[2], int *cur)
{
    hs_strbuf_t *filled = &pair[*cur];
    *cur ^= 1;
    hs_strbuf_reset(&pair[*cur]);
    return filled;
}
