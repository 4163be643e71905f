/*
 * herald-ws-load — load generator for seed 002's session uploads, and its baselines.
 *
 * C client threads each upload S sessions of M events in messages of K entries (the first
 * message starts with SESSION_START, the last ends with SESSION_END), and count what is sent
 * and what the server acknowledges. One mode per run:
 *
 *   ws      GET /ws?sessionId=... on the sidecar, one connection per session, each message
 *           answered before the next is sent; acked = the sum of the acks' "stored".
 *   insert  straight to PostgreSQL: one INSERT (UPDATE for SESSION_END) per entry, each
 *           its own transaction — what a naive per-event client does.
 *   copy    straight to PostgreSQL: one transaction per message of K entries, its events
 *           written with COPY — the fastest way into the same tables.
 *
 * With --check, the program then counts what the database holds (sessions started and
 * ended, events) and fails unless it equals what was sent (and, for ws, acknowledged); the
 * caller empties the tables before each run.
 *
 * Output: one line "mode=... entries_sent=... entries_acked=... seconds=... entries_per_s=..."
 * (and "check=ok|FAILED ..."). Exit status 0 only if no error and the check passed.
 *
 * The WebSocket client side is written out here (a client sends masked frames and reads
 * small unmasked ones: a few dozen lines), with blocking sockets, one thread per client.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "strbuf.h"

#define NAMES 20
#define T0 1624422533298LL

static struct {
    const char *mode;
    const char *host;
    const char *port;
    const char *database_url;
    int clients;
    int sessions; /* per client */
    int events;   /* per session */
    int batch;    /* entries per message */
    int check;
} opt = {"ws", "127.0.0.1", "3000", NULL, 8, 10, 1000, 100, 0};

static int name_ids[NAMES];
static atomic_long entries_sent, entries_acked, errors;
static pthread_barrier_t barrier;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "herald-ws-load: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void new_uuid(char out[37])
{
    unsigned char b[16];
    randombytes_buf(b, sizeof(b));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4],
             b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* ---------------- the entries of one session ---------------- */

enum entry_type { START, EVENT, END };

struct entry {
    enum entry_type type;
    long long ts;
    int name; /* EVENT: index into the names */
};

/* session_entries: SESSION_START, M events (names round-robin, timestamps shuffled a little),
 * SESSION_END. */
static struct entry *session_entries(int *n)
{
    *n = opt.events + 2;
    struct entry *e = calloc((size_t)*n, sizeof(*e));
    e[0] = (struct entry){START, T0, 0};
    for (int i = 0; i < opt.events; i++)
        e[i + 1] = (struct entry){EVENT, T0 + 1 + (i ^ 3), i % NAMES};
    e[*n - 1] = (struct entry){END, T0 + opt.events + 10, 0};
    return e;
}

static void append_entry_json(hs_strbuf_t *sb, const struct entry *e, const char *sid)
{
    switch (e->type) {
    case START:
        hs_strbuf_printf(sb, "{\"timestamp\":%lld,\"type\":\"SESSION_START\",\"session_id\":\"%s\"}", e->ts, sid);
        break;
    case EVENT:
        hs_strbuf_printf(sb, "{\"timestamp\":%lld,\"type\":\"EVENT\",\"name\":\"event%d\"}", e->ts, e->name);
        break;
    case END:
        hs_strbuf_printf(sb, "{\"timestamp\":%lld,\"type\":\"SESSION_END\",\"session_id\":\"%s\"}", e->ts, sid);
        break;
    }
}

/* ---------------- a minimal blocking WebSocket client ---------------- */

struct ws {
    int fd;
    char rbuf[65536];
    size_t rlen, roff;
};

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_exact(struct ws *w, void *p, size_t n)
{
    char *out = p;
    while (n > 0) {
        if (w->roff == w->rlen) {
            ssize_t r = read(w->fd, w->rbuf, sizeof(w->rbuf));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
            w->rlen = (size_t)r;
            w->roff = 0;
        }
        size_t k = w->rlen - w->roff < n ? w->rlen - w->roff : n;
        memcpy(out, w->rbuf + w->roff, k);
        w->roff += k;
        out += k;
        n -= k;
    }
    return 0;
}

static int tcp_connect(void)
{
    struct addrinfo hints = {0}, *res;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(opt.host, opt.port, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
}

static int ws_open(struct ws *w, const char *sid)
{
    w->rlen = w->roff = 0;
    if ((w->fd = tcp_connect()) < 0)
        return -1;
    unsigned char raw[16];
    char key[32];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(key, sizeof(key), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /ws?sessionId=%s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     sid, opt.host, opt.port, key);
    if (write_all(w->fd, req, (size_t)n) != 0)
        return -1;
    /* the response head, byte by byte up to the blank line (then frames follow) */
    char head[2048];
    size_t len = 0;
    while (len < sizeof(head) - 1) {
        if (read_exact(w, head + len, 1) != 0)
            return -1;
        len++;
        if (len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[len] = '\0';
    return strncmp(head, "HTTP/1.1 101", 12) == 0 ? 0 : -1;
}

static int ws_send(struct ws *w, int opcode, const char *data, size_t len, hs_strbuf_t *scratch)
{
    unsigned char h[14];
    size_t hl = 0;
    h[hl++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        h[hl++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        h[hl++] = 0x80 | 126;
        h[hl++] = (unsigned char)(len >> 8);
        h[hl++] = (unsigned char)len;
    } else {
        h[hl++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[hl++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    unsigned char mask[4];
    randombytes_buf(mask, sizeof(mask));
    memcpy(h + hl, mask, 4);
    hl += 4;
    hs_strbuf_reset(scratch);
    hs_strbuf_append(scratch, (const char *)h, hl);
    hs_strbuf_reserve(scratch, len);
    for (size_t i = 0; i < len; i++)
        scratch->base[hl + i] = (char)(data[i] ^ mask[i & 3]);
    scratch->len = hl + len;
    return write_all(w->fd, scratch->base, scratch->len);
}

/* ws_recv reads one (unfragmented, unmasked) frame into out (NUL-terminated). */
static int ws_recv(struct ws *w, int *opcode, hs_strbuf_t *out)
{
    unsigned char h[2];
    if (read_exact(w, h, 2) != 0)
        return -1;
    *opcode = h[0] & 0x0f;
    uint64_t len = h[1] & 0x7f;
    if (len == 126) {
        unsigned char x[2];
        if (read_exact(w, x, 2) != 0)
            return -1;
        len = ((uint64_t)x[0] << 8) | x[1];
    } else if (len == 127) {
        unsigned char x[8];
        if (read_exact(w, x, 8) != 0)
            return -1;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | x[i];
    }
    hs_strbuf_reset(out);
    hs_strbuf_reserve(out, len + 1);
    if (read_exact(w, out->base, len) != 0)
        return -1;
    out->len = len;
    out->base[len] = '\0';
    return 0;
}

/* upload_ws uploads one session; returns the entries acknowledged, -1 on failure. */
static long upload_ws(struct entry *e, int n, hs_strbuf_t *msg, hs_strbuf_t *scratch, hs_strbuf_t *reply)
{
    char sid[37];
    new_uuid(sid);
    struct ws w;
    if (ws_open(&w, sid) != 0) {
        fprintf(stderr, "herald-ws-load: cannot open a WebSocket to %s:%s\n", opt.host, opt.port);
        if (w.fd >= 0)
            close(w.fd);
        return -1;
    }
    long acked = 0;
    int ok = 1;
    for (int i = 0; i < n && ok; i += opt.batch) {
        int m = n - i < opt.batch ? n - i : opt.batch;
        hs_strbuf_reset(msg);
        hs_strbuf_append(msg, "[", 1);
        for (int k = 0; k < m; k++) {
            if (k > 0)
                hs_strbuf_append(msg, ",", 1);
            append_entry_json(msg, &e[i + k], sid);
        }
        hs_strbuf_append(msg, "]", 1);
        if (ws_send(&w, 1, msg->base, msg->len, scratch) != 0) {
            ok = 0;
            break;
        }
        atomic_fetch_add(&entries_sent, m);
        int opcode;
        if (ws_recv(&w, &opcode, reply) != 0 || opcode != 1) {
            fprintf(stderr, "herald-ws-load: session %s: no reply\n", sid);
            ok = 0;
            break;
        }
        const char *s = strstr(reply->base, "\"stored\":");
        if (s == NULL) {
            fprintf(stderr, "herald-ws-load: session %s: refused: %s\n", sid, reply->base);
            ok = 0;
            break;
        }
        acked += strtol(s + 9, NULL, 10);
    }
    if (ok) { /* after the bye: the server's close frame; answer it */
        int opcode;
        if (ws_recv(&w, &opcode, reply) == 0 && opcode == 8)
            ws_send(&w, 8, reply->base, reply->len >= 2 ? 2 : 0, scratch);
    }
    close(w.fd);
    atomic_fetch_add(&entries_acked, acked);
    return ok ? acked : -1;
}

/* ---------------- baselines: straight to PostgreSQL ---------------- */

static PGconn *pg_connect(void)
{
    PGconn *pg = PQconnectdb(opt.database_url);
    if (PQstatus(pg) != CONNECTION_OK)
        die("cannot connect to %s: %s", opt.database_url, PQerrorMessage(pg));
    return pg;
}

static int pg_ok(PGresult *r, const char *what)
{
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN;
    if (!ok)
        fprintf(stderr, "herald-ws-load: %s: %s", what, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

static void prepare(PGconn *pg)
{
    pg_ok(PQprepare(pg, "start", "INSERT INTO herald.sessions (session_id, session_start) VALUES ($1, herald.from_unix_ms($2))", 2, NULL),
          "prepare");
    pg_ok(PQprepare(pg, "event",
                    "INSERT INTO herald.session_events (event_timestamp, event_name_id, session_id) "
                    "VALUES (herald.from_unix_ms($1), $2, $3)",
                    3, NULL),
          "prepare");
    pg_ok(PQprepare(pg, "end", "UPDATE herald.sessions SET session_end = herald.from_unix_ms($2) WHERE session_id = $1", 2, NULL),
          "prepare");
}

static int exec_entry(PGconn *pg, const struct entry *e, const char *sid)
{
    char ts[24], name[8];
    snprintf(ts, sizeof(ts), "%lld", e->ts);
    if (e->type == EVENT) {
        snprintf(name, sizeof(name), "%d", name_ids[e->name]);
        const char *v[3] = {ts, name, sid};
        return pg_ok(PQexecPrepared(pg, "event", 3, v, NULL, NULL, 0), "insert");
    }
    const char *v[2] = {sid, ts};
    return pg_ok(PQexecPrepared(pg, e->type == START ? "start" : "end", 2, v, NULL, NULL, 0), "insert");
}

static long upload_insert(PGconn *pg, struct entry *e, int n)
{
    char sid[37];
    new_uuid(sid);
    for (int i = 0; i < n; i++) {
        if (!exec_entry(pg, &e[i], sid))
            return -1;
        atomic_fetch_add(&entries_sent, 1);
        atomic_fetch_add(&entries_acked, 1);
    }
    return n;
}

static long upload_copy(PGconn *pg, struct entry *e, int n, hs_strbuf_t *buf)
{
    char sid[37];
    new_uuid(sid);
    for (int i = 0; i < n; i += opt.batch) {
        int m = n - i < opt.batch ? n - i : opt.batch;
        if (!pg_ok(PQexec(pg, "BEGIN"), "begin"))
            return -1;
        hs_strbuf_reset(buf);
        int nev = 0;
        for (int k = 0; k < m; k++) {
            const struct entry *x = &e[i + k];
            if (x->type != EVENT)
                continue;
            time_t secs = (time_t)(x->ts / 1000);
            struct tm tm;
            gmtime_r(&secs, &tm);
            hs_strbuf_printf(buf, "%04d-%02d-%02d %02d:%02d:%02d.%03lld+00\t%d\t%s\n", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                             tm.tm_hour, tm.tm_min, tm.tm_sec, x->ts % 1000, name_ids[x->name], sid);
            nev++;
        }
        if (e[i].type == START && !exec_entry(pg, &e[i], sid))
            return -1;
        if (nev > 0) {
            if (!pg_ok(PQexec(pg, "COPY herald.session_events (event_timestamp, event_name_id, session_id) FROM STDIN"), "copy"))
                return -1;
            if (PQputCopyData(pg, buf->base, (int)buf->len) != 1 || PQputCopyEnd(pg, NULL) != 1)
                die("copy: %s", PQerrorMessage(pg));
            if (!pg_ok(PQgetResult(pg), "copy"))
                return -1;
            PGresult *r;
            while ((r = PQgetResult(pg)) != NULL)
                PQclear(r);
        }
        if (e[i + m - 1].type == END && !exec_entry(pg, &e[i + m - 1], sid))
            return -1;
        if (!pg_ok(PQexec(pg, "COMMIT"), "commit"))
            return -1;
        atomic_fetch_add(&entries_sent, m);
        atomic_fetch_add(&entries_acked, m);
    }
    return n;
}

/* ---------------- threads ---------------- */

static void *client_main(void *arg)
{
    int n;
    struct entry *e = session_entries(&n);
    hs_strbuf_t msg = {0}, scratch = {0}, reply = {0};
    PGconn *pg = NULL;
    if (strcmp(opt.mode, "ws") != 0) {
        pg = pg_connect();
        prepare(pg);
    }
    pthread_barrier_wait(&barrier);
    for (int s = 0; s < opt.sessions; s++) {
        long r;
        if (strcmp(opt.mode, "ws") == 0)
            r = upload_ws(e, n, &msg, &scratch, &reply);
        else if (strcmp(opt.mode, "insert") == 0)
            r = upload_insert(pg, e, n);
        else
            r = upload_copy(pg, e, n, &msg);
        if (r != n)
            atomic_fetch_add(&errors, 1);
    }
    if (pg)
        PQfinish(pg);
    hs_strbuf_free(&msg);
    hs_strbuf_free(&scratch);
    hs_strbuf_free(&reply);
    free(e);
    return NULL;
}

/* load_names makes sure the event names exist and learns their ids (baselines resolve names
 * on the client, as a bulk loader would). */
static void load_names(void)
{
    PGconn *pg = pg_connect();
    pg_ok(PQexec(pg, "INSERT INTO herald.session_event_names (event_name) SELECT 'event' || g FROM generate_series(0, 19) g "
                     "WHERE NOT EXISTS (SELECT 1 FROM herald.session_event_names WHERE event_name = 'event' || g)"),
          "names");
    PGresult *r = PQexec(pg, "SELECT substr(event_name, 6)::int, event_name_id FROM herald.session_event_names "
                             "WHERE event_name ~ '^event[0-9]+$' AND substr(event_name, 6)::int < 20");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != NAMES)
        die("cannot read the event names: %s", PQresultErrorMessage(r));
    for (int i = 0; i < PQntuples(r); i++)
        name_ids[atoi(PQgetvalue(r, i, 0))] = atoi(PQgetvalue(r, i, 1));
    PQclear(r);
    PQfinish(pg);
}

/* check compares what the database holds with what was sent and acknowledged. */
static int check(void)
{
    PGconn *pg = pg_connect();
    PGresult *r = PQexec(pg, "SELECT (SELECT count(*) FROM herald.sessions), (SELECT count(*) FROM herald.sessions WHERE "
                             "session_end IS NOT NULL), (SELECT count(*) FROM herald.session_events)");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("check: %s", PQresultErrorMessage(r));
    long started = atol(PQgetvalue(r, 0, 0)), ended = atol(PQgetvalue(r, 0, 1)), events = atol(PQgetvalue(r, 0, 2));
    PQclear(r);
    PQfinish(pg);
    long in_db = started + ended + events;
    long sent = atomic_load(&entries_sent), acked = atomic_load(&entries_acked);
    int ok = in_db == sent && in_db == acked;
    printf("check=%s mode=%s db_sessions=%ld db_ended=%ld db_events=%ld db_entries=%ld entries_sent=%ld entries_acked=%ld\n",
           ok ? "ok" : "FAILED", opt.mode, started, ended, events, in_db, sent, acked);
    return ok;
}

static void usage(void)
{
    printf("usage: herald-ws-load [options]\n"
           "  --mode ws|insert|copy   what to measure (default ws)\n"
           "  --host H --port P       the sidecar (ws mode; default 127.0.0.1:3000, or $PORT)\n"
           "  --database-url URL      PostgreSQL (insert, copy, --check; default $DATABASE_URL)\n"
           "  --clients C             concurrent clients (default 8)\n"
           "  --sessions S            sessions per client (default 10)\n"
           "  --events M              events per session (default 1000)\n"
           "  --batch K               entries per message / transaction (default 100)\n"
           "  --check                 afterwards, compare the database's counts with sent and acked\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"mode", 1, NULL, 'm'},     {"host", 1, NULL, 'h'},   {"port", 1, NULL, 'p'},  {"database-url", 1, NULL, 'd'},
        {"clients", 1, NULL, 'c'},  {"sessions", 1, NULL, 's'}, {"events", 1, NULL, 'e'}, {"batch", 1, NULL, 'k'},
        {"check", 0, NULL, 'x'},    {"help", 0, NULL, '?'},   {NULL, 0, NULL, 0}};
    if (getenv("PORT"))
        opt.port = getenv("PORT");
    opt.database_url = getenv("DATABASE_URL");
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'm': opt.mode = optarg; break;
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = optarg; break;
        case 'd': opt.database_url = optarg; break;
        case 'c': opt.clients = atoi(optarg); break;
        case 's': opt.sessions = atoi(optarg); break;
        case 'e': opt.events = atoi(optarg); break;
        case 'k': opt.batch = atoi(optarg); break;
        case 'x': opt.check = 1; break;
        default: usage(); return ch == '?' ? 0 : 2;
        }
    }
    if (strcmp(opt.mode, "ws") != 0 && strcmp(opt.mode, "insert") != 0 && strcmp(opt.mode, "copy") != 0)
        die("unknown mode %s", opt.mode);
    if (opt.clients < 1 || opt.sessions < 1 || opt.events < 0 || opt.batch < 1)
        die("clients, sessions and batch must be positive");
    if ((strcmp(opt.mode, "ws") != 0 || opt.check) && opt.database_url == NULL)
        die("--database-url (or DATABASE_URL) is required for mode %s%s", opt.mode, opt.check ? " and --check" : "");
    if (sodium_init() < 0)
        die("libsodium failed to initialise");
    if (strcmp(opt.mode, "ws") != 0)
        load_names();

    pthread_t *th = calloc((size_t)opt.clients, sizeof(*th));
    pthread_barrier_init(&barrier, NULL, (unsigned)opt.clients + 1);
    for (int i = 0; i < opt.clients; i++)
        if (pthread_create(&th[i], NULL, client_main, NULL) != 0)
            die("cannot start thread %d", i);
    pthread_barrier_wait(&barrier);
    double t0 = now_s();
    for (int i = 0; i < opt.clients; i++)
        pthread_join(th[i], NULL);
    double secs = now_s() - t0;
    free(th);

    long sent = atomic_load(&entries_sent), acked = atomic_load(&entries_acked);
    printf("mode=%s clients=%d sessions=%d events_per_session=%d batch=%d entries_sent=%ld entries_acked=%ld errors=%ld "
           "seconds=%.3f entries_per_s=%.0f\n",
           opt.mode, opt.clients, opt.clients * opt.sessions, opt.events, opt.batch, sent, acked, atomic_load(&errors), secs,
           secs > 0 ? acked / secs : 0.0);
    fflush(stdout);
    int ok = atomic_load(&errors) == 0;
    if (opt.check && !check())
        ok = 0;
    return ok ? 0 : 1;
}
