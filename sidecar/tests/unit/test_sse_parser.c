/* test_sse_parser.c — unit tests of sse_parser.c (and the relay worker's pure helpers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay_worker.h"
#include "sse_parser.h"
#include "strbuf.h"

static int failures;

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                                   \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

/* Events are recorded as "type|id|data" lines (data with \n shown as '~'), skips as "SKIP <bytes>". */
struct rec {
    hs_strbuf_t log;
    int events, skips;
};

static void on_event(void *ctx, const hs_sse_event_t *ev)
{
    struct rec *r = ctx;
    hs_strbuf_printf(&r->log, "%s|%s|", ev->type, ev->id);
    for (size_t i = 0; i < ev->data_len; i++)
        hs_strbuf_append(&r->log, ev->data[i] == '\n' ? "~" : &ev->data[i], 1);
    hs_strbuf_append(&r->log, "\n", 1);
    CHECK(ev->data[ev->data_len] == '\0');
    r->events++;
}

static void on_skip(void *ctx, const char *reason, size_t bytes)
{
    struct rec *r = ctx;
    hs_strbuf_printf(&r->log, "SKIP %zu\n", bytes);
    r->skips++;
}

/* parse feeds input in pieces of `step` bytes (0 = all at once) and returns the log (caller frees). */
static char *parse(const char *input, size_t len, size_t step, size_t max_data, long *retry)
{
    struct rec r = {{0}, 0, 0};
    hs_sse_parser_t p;
    hs_sse_parser_init(&p, max_data, on_event, on_skip, &r);
    if (step == 0)
        step = len ? len : 1;
    for (size_t off = 0; off < len; off += step)
        hs_sse_parser_feed(&p, input + off, len - off < step ? len - off : step);
    if (retry != NULL)
        *retry = p.retry_ms;
    hs_sse_parser_dispose(&p);
    hs_strbuf_append(&r.log, "", 0);
    return r.log.base;
}

/* expect checks the log for every split of the input from 1 byte to all at once. */
static void expect(const char *input, const char *want, int line)
{
    size_t len = strlen(input);
    for (size_t step = 0; step <= len; step++) {
        char *got = parse(input, len, step, 1024, NULL);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "line %d, step %zu:\n  input %s\n  want  %s\n  got   %s\n", line, step, input, want, got);
            failures++;
            free(got);
            return;
        }
        free(got);
    }
}
#define EXPECT(input, want) expect(input, want, __LINE__)

static void test_fields(void)
{
    EXPECT("data: hello\n\n", "message||hello\n");
    EXPECT("data:hello\n\n", "message||hello\n");
    EXPECT("data:  two spaces\n\n", "message|| two spaces\n");         /* only one space stripped */
    EXPECT("data: a\ndata: b\ndata\n\n", "message||a~b~\n");            /* multi-line, bare field name */
    EXPECT("event: tweet\ndata: x\n\ndata: y\n\n", "tweet||x\nmessage||y\n"); /* type resets per event */
    EXPECT("id: 7\ndata: x\n\ndata: y\n\n", "message|7|x\nmessage|7|y\n");   /* last id persists */
    EXPECT("id: 7\ndata: x\n\nid\ndata: y\n\n", "message|7|x\nmessage||y\n"); /* empty id resets */
    EXPECT(": comment\ndata: x\n:another\n\n", "message||x\n");
    EXPECT("event: only\n\nid: 3\n\n", "");                               /* no data: nothing dispatched */
    EXPECT("foo: bar\ndata: x\n\n", "message||x\n");                     /* unknown field ignored */
    EXPECT("data: x:y: z\n\n", "message||x:y: z\n");
    EXPECT("data: unterminated", "");                                     /* incomplete event dropped */
    EXPECT("data: x\n", "");
    EXPECT("data:\n\n", "message||\n");
}

static void test_line_ends(void)
{
    EXPECT("data: a\r\ndata: b\r\n\r\n", "message||a~b\n");
    EXPECT("data: a\rdata: b\r\r", "message||a~b\n");
    EXPECT("data: a\r\n\rdata: b\n\r\n", "message||a\nmessage||b\n");
    EXPECT("data: a\n\r\n", "message||a\n");
    EXPECT("\xEF\xBB\xBF" "data: bom\n\n", "message||bom\n");        /* BOM dropped */
    EXPECT("\xEF\xBB" "data: x\n\n", "");                           /* partial BOM: field name "\xEF\xBBdata" */
}

static void test_retry(void)
{
    long retry;
    free(parse("retry: 1500\n\n", 13, 0, 1024, &retry));
    CHECK(retry == 1500);
    free(parse("retry: 15x0\n\n", 13, 0, 1024, &retry));
    CHECK(retry == -1);
    free(parse("retry:\n\n", 8, 0, 1024, &retry));
    CHECK(retry == -1);
}

static void test_id_with_nul(void)
{
    const char in[] = "id: 1\ndata: a\n\nid: x\0y\ndata: b\n\n";
    char *got = parse(in, sizeof(in) - 1, 0, 1024, NULL);
    CHECK(strcmp(got, "message|1|a\nmessage|1|b\n") == 0);
    free(got);
}

static void test_bounds(void)
{
    /* An event of 1 MB with a 64 KB limit is skipped, not buffered; the next one arrives. */
    size_t big = 1024 * 1024;
    hs_strbuf_t in = {0};
    hs_strbuf_appends(&in, "data: small\n\ndata: ");
    hs_strbuf_reserve(&in, big);
    memset(in.base + in.len, 'x', big);
    in.len += big;
    hs_strbuf_appends(&in, "\ndata: more\n\ndata: after\n\n");
    for (size_t step = 1; step <= 4096 * 64; step *= 64) {
        char *got = parse(in.base, in.len, step, 64 * 1024, NULL);
        char want[128];
        snprintf(want, sizeof(want), "message||small\nSKIP %zu\nmessage||after\n", big + 6 + 5);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "bounds, step %zu: got %.200s\n", step, got);
            failures++;
        }
        free(got);
    }
    /* Many lines adding up past the limit also trip it. */
    hs_strbuf_reset(&in);
    for (int i = 0; i < 100; i++)
        hs_strbuf_appends(&in, "data: 0123456789\n");
    hs_strbuf_appends(&in, "\ndata: ok\n\n");
    char *got = parse(in.base, in.len, 7, 500, NULL);
    CHECK(strncmp(got, "SKIP ", 5) == 0 && strstr(got, "message||ok\n") != NULL);
    free(got);
    /* Exactly at the limit is kept: "data: " + 9 bytes = 10 with the joining LF. */
    got = parse("data: 123456789\n\n", 17, 0, 10, NULL);
    CHECK(strcmp(got, "message||123456789\n") == 0);
    free(got);
    got = parse("data: 1234567890\n\n", 18, 0, 10, NULL);
    CHECK(strncmp(got, "SKIP", 4) == 0);
    free(got);
    hs_strbuf_free(&in);
}

static void test_reset_stream(void)
{
    struct rec r = {{0}, 0, 0};
    hs_sse_parser_t p;
    hs_sse_parser_init(&p, 1024, on_event, on_skip, &r);
    hs_sse_parser_feed(&p, "id: 41\ndata: a\n\ndata: half", 26);
    hs_sse_parser_reset_stream(&p); /* connection lost mid-event */
    hs_sse_parser_feed(&p, "data: b\n\n", 9);
    hs_strbuf_append(&r.log, "", 0);
    CHECK(strcmp(r.log.base, "message|41|a\nmessage|41|b\n") == 0);
    CHECK(strcmp(hs_sse_parser_last_id(&p), "41") == 0);
    hs_sse_parser_dispose(&p);
    hs_strbuf_free(&r.log);
}

static void test_worker_helpers(void)
{
    CHECK(hs_relay_is_panic("{\"message\": panic}", 18));
    CHECK(hs_relay_is_panic(" {\"message\": panic}\r\n", 21));
    CHECK(!hs_relay_is_panic("{\"message\":panic}", 17));
    CHECK(!hs_relay_is_panic("{\"message\": \"panic\"}", 20));
    CHECK(!hs_relay_is_panic("", 0));

    hs_strbuf_t out = {0};
    const char *ok = "{\"message\":{\"tweet\":{\"text\":\"a\\nb\\\\c\\r\\u0001 caf\\u00e9\",\"id\":1}}}";
    CHECK(hs_relay_format_tweet(ok, strlen(ok), 3, 42, &out) == HS_RELAY_OK);
    CHECK(out.len > 0 && strcmp(out.base, "[worker 3 pid 42] a\\nb\\\\c\\r\\x01 caf\xc3\xa9") == 0);
    hs_strbuf_reset(&out);
    CHECK(hs_relay_format_tweet("{\"message\": panic}", 18, 1, 1, &out) == HS_RELAY_INVALID_JSON);
    hs_strbuf_reset(&out);
    CHECK(hs_relay_format_tweet("{\"message\":{\"tweet\":{}}}", 24, 1, 1, &out) == HS_RELAY_NO_TEXT);
    hs_strbuf_reset(&out);
    CHECK(hs_relay_format_tweet("{\"message\":{\"tweet\":{\"text\":5}}}", 32, 1, 1, &out) == HS_RELAY_NO_TEXT);
    hs_strbuf_reset(&out);
    CHECK(hs_relay_format_tweet("[1,2]", 5, 1, 1, &out) == HS_RELAY_NO_TEXT);
    hs_strbuf_free(&out);
}

int main(void)
{
    test_fields();
    test_line_ends();
    test_retry();
    test_id_with_nul();
    test_bounds();
    test_reset_stream();
    test_worker_helpers();
    if (failures > 0) {
        fprintf(stderr, "test_sse_parser: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_sse_parser: ok\n");
    return 0;
}
