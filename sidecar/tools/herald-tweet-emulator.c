/*
 * herald-tweet-emulator — an SSE server standing in for the course's tweet server (seed 003).
 *
 * GET /tweets/<n> (n >= 1) streams events `data: {"message": {"tweet": {...}}}` (Twitter v1.1
 * status objects: created_at, id, id_str, text, user{id, screen_name, name, ...}, entities,
 * ...) with `id: <i>` (i = 1, 2, 3, ... per stream). Event i of stream n depends only on
 * (EMULATOR_SEED, n, i): every connection to a stream sees the same sequence, and a client
 * reconnecting with Last-Event-ID: k resumes at k + 1. A fraction of the events is the
 * seed's panic message `{"message": panic}`; optionally a fraction is malformed (invalid JSON,
 * no text field, or a 1 MB event). With EMULATOR_COUNT the stream holds that many events,
 * then only heartbeat comments. Run with --help for the settings.
 */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>
#include <jansson.h>

#include "net.h"
#include "strbuf.h"
#include "timer.h"

static struct {
    const char *host;
    int port;
    unsigned long long seed;
    double rate, panic_ratio, malformed_ratio;
    unsigned long long count;
    int heartbeat_ms;
} emu;

static h2o_globalconf_t globalconf;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;

static void usage(void)
{
    printf("usage: herald-tweet-emulator [--help]\n\n"
           "An SSE tweet-stream server for herald's relay: GET /tweets/<n> (n >= 1).\n"
           "Events: id: <i> + data: {\"message\": {\"tweet\": {...}}} (Twitter v1.1 shape), and the\n"
           "panic message data: {\"message\": panic}. Event i of stream n depends only on the seed,\n"
           "n and i, so every connection sees the same stream; Last-Event-ID resumes after it.\n\n"
           "Settings (environment):\n"
           "  HOST                      address to bind (default 127.0.0.1)\n"
           "  PORT                      port (default 4000)\n"
           "  EMULATOR_SEED             seed of the generated streams (default 1)\n"
           "  EMULATOR_RATE             events per second per stream (default 200)\n"
           "  EMULATOR_PANIC_RATIO      fraction of events that are the panic message (default 0.01)\n"
           "  EMULATOR_MALFORMED_RATIO  fraction of malformed events: invalid JSON, no text field or\n"
           "                            a 1 MB event, in turn (default 0)\n"
           "  EMULATOR_COUNT            events per stream, then only heartbeats (default 0 = endless)\n"
           "  EMULATOR_HEARTBEAT_MS     comment line sent when idle, in ms (default 2000)\n");
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : def;
}

/* ---- deterministic generation ---- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s)
{
    return (double)(splitmix(s) >> 11) / 9007199254740992.0;
}

static const char *words[] = {
    "the", "relay", "stream", "tweet", "elixir", "actor", "supervisor", "worker", "panic", "restart", "erlang",
    "process", "message", "router", "round", "robin", "server", "sent", "events", "postgres", "herald", "today",
    "really", "love", "this", "new", "music", "game", "coffee", "morning", "night", "city", "rain", "sun", "weekend",
    "friends", "code", "bug", "deploy", "friday", "café", "naïve", "résumé", "日本", "🚀", "🔥", "\"quoted\"",
    "back\\slash", "tab\there", "is", "a", "of", "and", "to", "in", "we", "you", "they", "great", "bad", "why",
    "how", "what", "never", "always", "soon", "again", "with", "without", "about", "maybe", "yes", "no", "OTP",
    "BEAM", "latency", "throughput", "queue", "backoff", "retry", "crash", "let", "it", "fail", "#rtp", "#sse",
    "#elixir", "@alice", "@bob", "@carol", "http://t.co/x1", "lol", "wow", "omg", "100%", "<3",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))
static const char *names[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
                              "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter"};
#define NNAMES (sizeof(names) / sizeof(names[0]))

enum { EV_TWEET, EV_PANIC, EV_BAD_JSON, EV_NO_TEXT, EV_HUGE };

/* gen_event appends event i of stream n (SSE framing included) to out. */
static void gen_event(hs_strbuf_t *out, unsigned stream, uint64_t i)
{
    uint64_t s = emu.seed * 0x100000001b3ULL ^ ((uint64_t)stream << 40) ^ i;
    splitmix(&s);
    double r = unit(&s);
    int kind = EV_TWEET;
    if (r < emu.panic_ratio)
        kind = EV_PANIC;
    else if (r < emu.panic_ratio + emu.malformed_ratio)
        kind = EV_BAD_JSON + (int)(splitmix(&s) % 3);
    hs_strbuf_printf(out, "id: %llu\n", (unsigned long long)i);
    switch (kind) {
    case EV_PANIC:
        hs_strbuf_appends(out, "data: {\"message\": panic}\n\n");
        return;
    case EV_BAD_JSON:
        hs_strbuf_printf(out, "data: {\"message\": {\"tweet\": {\"text\": \"unterminated %llu\n\n", (unsigned long long)i);
        return;
    case EV_HUGE: {
        size_t n = 1024 * 1024;
        hs_strbuf_appends(out, "data: {\"message\": {\"tweet\": {\"text\": \"");
        hs_strbuf_reserve(out, n);
        memset(out->base + out->len, 'x', n);
        out->len += n;
        out->base[out->len] = '\0';
        hs_strbuf_appends(out, "\"}}}\n\n");
        return;
    }
    default:
        break;
    }
    hs_strbuf_t text = {0};
    int nw = 5 + (int)(splitmix(&s) % 10);
    for (int k = 0; k < nw; k++) {
        if (k > 0)
            hs_strbuf_appends(&text, unit(&s) < 0.04 ? "\n" : " ");
        hs_strbuf_appends(&text, words[splitmix(&s) % NWORDS]);
    }
    uint64_t uid = splitmix(&s) % NNAMES;
    uint64_t tid = 1000000000000000000ULL + (uint64_t)stream * 100000000000ULL + i;
    char idstr[32], date[64];
    snprintf(idstr, sizeof(idstr), "%llu", (unsigned long long)tid);
    time_t t = (time_t)(1600000000 + i);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a %b %d %H:%M:%S +0000 %Y", &tm);
    json_t *tweet = json_pack("{s:s, s:I, s:s, s:s, s:s, s:b, s:s, s:{s:I, s:s, s:s, s:I, s:I, s:s}, s:I, s:I, s:{s:[]}}",
                              "created_at", date, "id", (json_int_t)tid, "id_str", idstr, "text", text.base, "source",
                              "<a href=\"http://herald.example\">herald emulator</a>", "truncated", 0, "lang", "en",
                              "user", "id", (json_int_t)(uid + 1), "screen_name", names[uid], "name", names[uid],
                              "followers_count", (json_int_t)(splitmix(&s) % 10000), "friends_count",
                              (json_int_t)(splitmix(&s) % 1000), "lang", "en", "retweet_count",
                              (json_int_t)(splitmix(&s) % 100), "favorite_count", (json_int_t)(splitmix(&s) % 500),
                              "entities", "hashtags");
    if (kind == EV_NO_TEXT)
        json_object_del(tweet, "text");
    json_t *root = json_pack("{s:{s:o}}", "message", "tweet", tweet);
    char *js = json_dumps(root, JSON_COMPACT);
    hs_strbuf_appends(out, "data: ");
    hs_strbuf_appends(out, js);
    hs_strbuf_appends(out, "\n\n");
    free(js);
    json_decref(root);
    hs_strbuf_free(&text);
}

/* ---- streaming ---- */

struct stream {
    h2o_generator_t super;
    h2o_req_t *req;
    unsigned n;
    uint64_t next, first;
    uint64_t started_ms, last_send_ms;
    hs_strbuf_t buf[2];
    int cur, sending, done;
    hs_timer_t tick;
};

static void flush(struct stream *st)
{
    if (st->sending || st->done || st->buf[st->cur].len == 0)
        return;
    hs_strbuf_t *b = hs_strbuf_flip(st->buf, &st->cur);
    h2o_iovec_t vec = h2o_iovec_init(b->base, b->len);
    st->sending = 1;
    st->last_send_ms = hs_now_ms();
    h2o_send(st->req, &vec, 1, H2O_SEND_STATE_IN_PROGRESS);
}

static void on_tick(hs_timer_t *t)
{
    struct stream *st = H2O_STRUCT_FROM_MEMBER(struct stream, tick, t);
    if (st->done)
        return;
    uint64_t now = hs_now_ms();
    if (!st->sending) {
        uint64_t due = st->first + (uint64_t)((double)(now - st->started_ms) * emu.rate / 1000.0);
        if (emu.count > 0 && due > emu.count + 1)
            due = emu.count + 1;
        hs_strbuf_t *b = &st->buf[st->cur];
        while (st->next < due && b->len < 256 * 1024)
            gen_event(b, st->n, st->next++);
        if (b->len == 0 && now - st->last_send_ms >= (uint64_t)emu.heartbeat_ms)
            hs_strbuf_appends(b, ": heartbeat\n\n");
        flush(st);
    }
    hs_timer_start(ctx.loop, &st->tick, 10, on_tick);
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    struct stream *st = (struct stream *)g;
    st->sending = 0;
    flush(st);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    struct stream *st = (struct stream *)g;
    st->done = 1;
    hs_timer_stop(&st->tick);
}

static void on_dispose(void *p)
{
    struct stream *st = p;
    st->done = 1;
    hs_timer_stop(&st->tick);
    hs_strbuf_free(&st->buf[0]);
    hs_strbuf_free(&st->buf[1]);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    const char *p = req->path_normalized.base;
    size_t len = req->path_normalized.len;
    unsigned n = 0;
    if (len > 8 && memcmp(p, "/tweets/", 8) == 0) {
        for (size_t i = 8; i < len && n < 1000000; i++) {
            if (p[i] < '0' || p[i] > '9') {
                n = 0;
                break;
            }
            n = n * 10 + (unsigned)(p[i] - '0');
        }
    }
    if (n == 0) {
        req->res.status = 404;
        req->res.reason = "Not Found";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain"));
        h2o_send_inline(req, H2O_STRLIT("streams are at /tweets/1, /tweets/2, ...\n"));
        return 0;
    }
    struct stream *st = h2o_mem_alloc_shared(&req->pool, sizeof(*st), on_dispose);
    memset(st, 0, sizeof(*st));
    st->super.proceed = on_proceed;
    st->super.stop = on_stop;
    st->req = req;
    st->n = n;
    st->first = 1;
    ssize_t idx = h2o_find_header_by_str(&req->headers, H2O_STRLIT("last-event-id"), -1);
    if (idx >= 0) {
        h2o_iovec_t v = req->headers.entries[idx].value;
        char tmp[32];
        if (v.len < sizeof(tmp)) {
            memcpy(tmp, v.base, v.len);
            tmp[v.len] = '\0';
            char *end;
            unsigned long long last = strtoull(tmp, &end, 10);
            if (end != tmp && *end == '\0')
                st->first = last + 1;
        }
    }
    st->next = st->first;
    st->started_ms = st->last_send_ms = hs_now_ms();
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    h2o_start_response(req, &st->super);
    hs_strbuf_printf(&st->buf[st->cur], ": herald tweet emulator, stream %u from event %llu\nretry: 500\n\n", n,
                     (unsigned long long)st->first);
    flush(st);
    hs_timer_start(ctx.loop, &st->tick, 10, on_tick);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_socket_t *sock;
    while ((sock = h2o_evloop_socket_accept(listener)) != NULL)
        h2o_accept(&accept_ctx, sock);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return 0;
        }
        fprintf(stderr, "herald-tweet-emulator: unexpected argument \"%s\" (see --help)\n", argv[i]);
        return 2;
    }
    emu.host = env_or("HOST", "127.0.0.1");
    emu.port = atoi(env_or("PORT", "4000"));
    emu.seed = strtoull(env_or("EMULATOR_SEED", "1"), NULL, 10);
    emu.rate = atof(env_or("EMULATOR_RATE", "200"));
    emu.panic_ratio = atof(env_or("EMULATOR_PANIC_RATIO", "0.01"));
    emu.malformed_ratio = atof(env_or("EMULATOR_MALFORMED_RATIO", "0"));
    emu.count = strtoull(env_or("EMULATOR_COUNT", "0"), NULL, 10);
    emu.heartbeat_ms = atoi(env_or("EMULATOR_HEARTBEAT_MS", "2000"));
    if (emu.port <= 0 || emu.rate <= 0 || emu.panic_ratio < 0 || emu.malformed_ratio < 0 ||
        emu.panic_ratio + emu.malformed_ratio > 1 || emu.heartbeat_ms <= 0) {
        fprintf(stderr, "herald-tweet-emulator: bad settings (see --help)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    h2o_config_init(&globalconf);
    h2o_hostconf_t *host = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(pathconf, sizeof(*h));
    h->on_req = on_req;
    h2o_context_init(&ctx, h2o_evloop_create(), &globalconf);
    accept_ctx.ctx = &ctx;
    accept_ctx.hosts = globalconf.hosts;

    char err[256];
    int fd = hs_net_listen(emu.host, emu.port, 128, err, sizeof(err));
    if (fd < 0) {
        fprintf(stderr, "herald-tweet-emulator: %s\n", err);
        return 1;
    }
    h2o_socket_t *listener = h2o_evloop_socket_create(ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(listener, on_accept);
    printf("herald-tweet-emulator on http://%s:%d/tweets/<n>: seed %llu, %g events/s per stream, panic ratio %g, "
           "malformed ratio %g, count %llu\n",
           emu.host, emu.port, emu.seed, emu.rate, emu.panic_ratio, emu.malformed_ratio, emu.count);
    fflush(stdout);
    while (h2o_evloop_run(ctx.loop, INT32_MAX) == 0)
        ;
    return 0;
}
