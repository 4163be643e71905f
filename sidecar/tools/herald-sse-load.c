/*
 * herald-sse-load — an SSE load generator and checker (epoll, one thread for the subscribers,
 * blocking keep-alive HTTP/1.1 publisher threads).
 *
 * It opens N subscribers on --sub (a path where "{i}" is replaced by the subscriber's stream
 * number, i mod --streams), waits until all of them have their response headers, measures the
 * server's RSS (--pid) per connection, then publishes --messages messages by HTTP POST on
 * --pub (same "{i}" substitution) at --rate messages/s (0: as fast as one publisher per stream
 * group goes). Every message body is "<per-stream counter> <CLOCK_MONOTONIC ns at send>"; each
 * subscriber checks that it receives 1, 2, 3... of its stream, and records the latency from
 * send to receipt. Works against herald-sidecar (/v2/sse, /v2/message) and nginx + nchan
 * (eventsource subscriber, HTTP publisher): both answer HTTP/1.1, chunked or not.
 *
 * Output: one "RESULT key=value ..." line (and a readable summary on stderr).
 *   herald-sse-load --port 3000 --sub '/v2/sse?username=b{i}' --pub '/v2/message?username=b{i}' \
 *       -n 1000 --streams 1000 --messages 10000 --rate 1000 --pid $(pidof herald-sidecar)
 * --idle: connect, measure memory, and stop (no messages).
 * --db CONNINFO: publish with SELECT herald.send(<--pub expanded>, body) (autocommit) instead of
 * a POST; the latency then runs from before the statement, commit included.
 * --window W: flow control for publishing "as fast as it goes": a publisher sends message k of
 * a stream only once message k-W of that stream has reached every subscriber of the stream
 * (or after 2 s without progress, so that a loss cannot stall the run). The publish rate then
 * follows the fan-out instead of piling up a backlog; 0 (default): no window.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

/* ---------------- options ---------------- */

static struct {
    const char *host;
    int port;
    const char *sub;
    const char *pub;
    int n;
    int streams;
    long messages;
    double rate;
    int publishers;
    int pid;
    int idle;
    int settle_ms;
    int drain_s;
    const char *label;
    int connect_batch;
    const char *db; /* --db: publish with herald.send over libpq; --pub is then the stream */
    long window;    /* --window */
} opt = {"127.0.0.1", 3000, NULL, NULL, 100, 0, 0, 0, 8, 0, 0, 1000, 20, "run", 500, NULL, 0};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "herald-sse-load: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* expand replaces "{i}" in tmpl by i. */
static void expand(char *out, size_t size, const char *tmpl, int i)
{
    const char *p = strstr(tmpl, "{i}");
    if (p == NULL)
        snprintf(out, size, "%s", tmpl);
    else
        snprintf(out, size, "%.*s%d%s", (int)(p - tmpl), tmpl, i, p + 3);
}

static long rss_kb(int pid)
{
    if (pid <= 0)
        return -1;
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static int connect_to(int nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)opt.port);
    inet_pton(AF_INET, opt.host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS)
        die("connect");
    return fd;
}

/* ---------------- latency histogram (µs, log-linear) ---------------- */

#define HBUCKETS (64 * 40)
struct hist {
    uint64_t b[HBUCKETS];
    uint64_t count, max_us;
};
static struct hist h_send;   /* from just before the publish (POST or statement) */
static struct hist h_commit; /* from the publish's acknowledgement (after the commit) */

static int bucket_of(uint64_t us)
{
    if (us < 64)
        return (int)us;
    int e = 63 - __builtin_clzll(us); /* >= 6 */
    int b = (e - 5) * 64 + (int)((us >> (e - 6)) & 63);
    return b < HBUCKETS ? b : HBUCKETS - 1;
}

static uint64_t bucket_value(int b)
{
    if (b < 64)
        return (uint64_t)b;
    int e = b / 64 + 5, m = b % 64;
    return ((uint64_t)(64 + m)) << (e - 6);
}

static void hist_add(struct hist *h, uint64_t us)
{
    h->b[bucket_of(us)]++;
    h->count++;
    if (us > h->max_us)
        h->max_us = us;
}

static uint64_t hist_pct(struct hist *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t want = (uint64_t)(p * (double)h->count), acc = 0;
    if (want >= h->count)
        want = h->count - 1;
    for (int b = 0; b < HBUCKETS; b++) {
        acc += h->b[b];
        if (acc > want)
            return bucket_value(b);
    }
    return h->max_us;
}

/* ack_ns[k]: when the publisher got message k's acknowledgement (0: not yet) */
static _Atomic uint64_t *ack_ns;
/* --window: recv_count[k] subscribers have message k; stream_subs[s]: subscribers of stream s */
static _Atomic uint32_t *recv_count;
static uint32_t *stream_subs;
static pthread_mutex_t window_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t window_cv = PTHREAD_COND_INITIALIZER;

/* ---------------- subscribers ---------------- */

enum { S_CONNECTING, S_HEAD, S_BODY, S_DEAD };
enum { C_SIZE, C_DATA, C_CRLF };

struct sub {
    int fd;
    int state;
    int stream;
    int chunked, cstate;
    size_t cleft;
    char sizebuf[24]; /* the chunk-size line being read */
    size_t sizelen;
    char *head;
    size_t headlen;
    char *line; /* current SSE line */
    size_t linelen, linecap;
    char *data; /* data of the current event */
    size_t datalen, datacap;
    int has_data;
    uint64_t expect; /* next per-stream counter */
    uint64_t got, dups, gaps, lost;
};

static struct sub *subs;
static int epfd;
static int n_headers, n_dead;
static uint64_t deliveries, total_dups, total_lost, total_reorder;
static uint64_t first_pub_ns, last_rx_ns;
static long *stream_msgs; /* messages per stream */

static void append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
        if (*buf == NULL)
            die("realloc");
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static void dispatch(struct sub *s)
{
    if (!s->has_data)
        return;
    s->has_data = 0;
    char *sp = strchr(s->data, ' ');
    if (sp == NULL)
        return; /* not ours (e.g. a v1 hi!) */
    uint64_t seq = strtoull(s->data, NULL, 10), ts = strtoull(sp + 1, NULL, 10);
    uint64_t now = now_ns();
    last_rx_ns = now;
    if (seq < s->expect) {
        s->dups++;
        total_dups++;
        return;
    }
    if (seq > s->expect) {
        s->gaps++;
        total_reorder++;
        s->lost += seq - s->expect;
        total_lost += seq - s->expect;
    }
    s->expect = seq + 1;
    s->got++;
    deliveries++;
    hist_add(&h_send, now > ts ? (now - ts) / 1000 : 0);
    uint64_t k = (seq - 1) * (uint64_t)opt.streams + (uint64_t)s->stream;
    uint64_t ack = k < (uint64_t)opt.messages ? atomic_load_explicit(&ack_ns[k], memory_order_relaxed) : 0;
    hist_add(&h_commit, ack != 0 && now > ack ? (now - ack) / 1000 : 0); /* 0: here before the ack */
    if (opt.window > 0 && k < (uint64_t)opt.messages &&
        atomic_fetch_add_explicit(&recv_count[k], 1, memory_order_relaxed) + 1 == stream_subs[s->stream]) {
        pthread_mutex_lock(&window_mu);
        pthread_cond_broadcast(&window_cv);
        pthread_mutex_unlock(&window_mu);
    }
}

/* window_wait blocks a publisher until message k has reached every subscriber of its stream
 * (at most 2 s without progress). */
static void window_wait(long k)
{
    uint32_t want = stream_subs[k % opt.streams];
    pthread_mutex_lock(&window_mu);
    uint32_t last = atomic_load(&recv_count[k]);
    while (last < want) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 2;
        if (pthread_cond_timedwait(&window_cv, &window_mu, &ts) != 0) {
            uint32_t now = atomic_load(&recv_count[k]);
            if (now == last)
                break; /* no progress: a loss; the result will show it */
            last = now;
        } else {
            last = atomic_load(&recv_count[k]);
        }
    }
    pthread_mutex_unlock(&window_mu);
}

static void sse_bytes(struct sub *s, const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        append(&s->line, &s->linelen, &s->linecap, p, take);
        if (nl == NULL)
            return;
        p += take + 1;
        n -= take + 1;
        char *line = s->line;
        size_t len = s->linelen;
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len == 0) {
            dispatch(s);
            s->datalen = 0;
        } else if (strncmp(line, "data:", 5) == 0) {
            const char *v = line + 5;
            if (*v == ' ')
                v++;
            if (s->has_data)
                append(&s->data, &s->datalen, &s->datacap, "\n", 1);
            append(&s->data, &s->datalen, &s->datacap, v, len - (size_t)(v - line));
            s->has_data = 1;
        }
        s->linelen = 0;
    }
}

static void body_bytes(struct sub *s, const char *p, size_t n)
{
    if (!s->chunked) {
        sse_bytes(s, p, n);
        return;
    }
    while (n > 0) {
        if (s->cstate == C_SIZE) {
            const char *nl = memchr(p, '\n', n);
            size_t take = nl ? (size_t)(nl - p) + 1 : n;
            if (s->sizelen + take < sizeof(s->sizebuf)) {
                memcpy(s->sizebuf + s->sizelen, p, take);
                s->sizelen += take;
            }
            p += take;
            n -= take;
            if (nl != NULL) {
                s->sizebuf[s->sizelen] = '\0';
                s->cleft = strtoul(s->sizebuf, NULL, 16);
                s->sizelen = 0;
                if (s->cleft == 0) {
                    s->state = S_DEAD;
                    return;
                }
                s->cstate = C_DATA;
            }
        } else if (s->cstate == C_DATA) {
            size_t take = n < s->cleft ? n : s->cleft;
            sse_bytes(s, p, take);
            p += take;
            n -= take;
            s->cleft -= take;
            if (s->cleft == 0) {
                s->cstate = C_CRLF;
                s->cleft = 2;
            }
        } else {
            size_t take = n < s->cleft ? n : s->cleft;
            p += take;
            n -= take;
            s->cleft -= take;
            if (s->cleft == 0)
                s->cstate = C_SIZE;
        }
    }
}

static void sub_dead(struct sub *s, const char *why)
{
    if (s->state == S_DEAD)
        return;
    if (s->state != S_HEAD || n_headers > 0)
        fprintf(stderr, "subscriber %d: %s\n", (int)(s - subs), why);
    s->state = S_DEAD;
    n_dead++;
    epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
}

static void sub_open(struct sub *s, int i)
{
    s->fd = connect_to(1);
    s->state = S_CONNECTING;
    s->stream = i % opt.streams;
    s->expect = 1;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) != 0)
        die("epoll_ctl");
}

static void sub_event(struct sub *s, uint32_t events)
{
    if (s->state == S_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err != 0) {
            sub_dead(s, strerror(err));
            return;
        }
        char path[512], req[1024];
        expand(path, sizeof(path), opt.sub, s->stream);
        int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path, opt.host);
        if (write(s->fd, req, (size_t)n) != n) {
            sub_dead(s, "short write");
            return;
        }
        s->state = S_HEAD;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
        epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev);
        return;
    }
    char buf[65536];
    for (;;) {
        ssize_t r = read(s->fd, buf, sizeof(buf));
        if (r == 0) {
            sub_dead(s, "closed by the server");
            return;
        }
        if (r < 0) {
            if (errno == EAGAIN)
                return;
            sub_dead(s, strerror(errno));
            return;
        }
        const char *p = buf;
        size_t n = (size_t)r;
        if (s->state == S_HEAD) {
            size_t cap = s->headlen + n + 1;
            s->head = realloc(s->head, cap);
            memcpy(s->head + s->headlen, p, n);
            s->headlen += n;
            s->head[s->headlen] = '\0';
            char *end = strstr(s->head, "\r\n\r\n");
            if (end == NULL)
                continue;
            if (strncmp(s->head, "HTTP/1.1 200", 12) != 0) {
                fprintf(stderr, "subscriber %d: %.*s\n", (int)(s - subs), (int)(strchr(s->head, '\r') - s->head), s->head);
                sub_dead(s, "not 200");
                return;
            }
            *end = '\0';
            for (char *h = s->head; *h; h++)
                if (strncasecmp(h, "\ntransfer-encoding:", 19) == 0 && strcasestr(h, "chunked") != NULL)
                    s->chunked = 1;
            size_t rest = s->headlen - (size_t)(end + 4 - s->head);
            char *restp = end + 4;
            s->state = S_BODY;
            n_headers++;
            if (rest > 0)
                body_bytes(s, restp, rest);
            free(s->head);
            s->head = NULL;
            continue;
        }
        body_bytes(s, p, n);
        if (s->state == S_DEAD) {
            sub_dead(s, "stream ended");
            return;
        }
        if ((size_t)r < sizeof(buf))
            return; /* drained (level-triggered: more data makes it ready again) */
    }
}

static void poll_once(int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(epfd, evs, 512, timeout_ms);
    for (int i = 0; i < n; i++)
        sub_event(evs[i].data.ptr, evs[i].events);
}

/* ---------------- publishers ---------------- */

struct publisher {
    pthread_t th;
    int index;
    int fd;
    long sent, errors;
    int joined;
};

static int read_response(int fd, char *buf, size_t size)
{
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, size - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        size_t body = len - (size_t)(end + 4 - buf);
        const char *cl = strcasestr(buf, "\ncontent-length:");
        long want = cl && cl < end ? strtol(cl + 16, NULL, 10) : 0;
        if (strcasestr(buf, "\ntransfer-encoding: chunked") != NULL) {
            while (strstr(end + 4, "0\r\n\r\n") == NULL) {
                r = read(fd, buf + len, size - 1 - len);
                if (r <= 0)
                    return -1;
                len += (size_t)r;
                buf[len] = '\0';
            }
        } else {
            while ((long)body < want) {
                r = read(fd, buf + len, size - 1 - len);
                if (r <= 0)
                    return -1;
                len += (size_t)r;
                body += (size_t)r;
                buf[len] = '\0';
            }
        }
        return atoi(buf + 9);
    }
}

static void *publisher_main(void *arg)
{
    struct publisher *p = arg;
    PGconn *pg = NULL;
    if (opt.db != NULL) {
        pg = PQconnectdb(opt.db);
        if (PQstatus(pg) != CONNECTION_OK) {
            fprintf(stderr, "publisher %d: %s", p->index, PQerrorMessage(pg));
            p->errors++;
            PQfinish(pg);
            return NULL;
        }
    } else {
        p->fd = connect_to(0);
    }
    uint64_t start = first_pub_ns;
    char path[512], req[1024], resp[8192], body[64];
    for (long k = 0; k < opt.messages; k++) {
        int stream = (int)(k % opt.streams);
        if (stream % opt.publishers != p->index)
            continue;
        if (opt.window > 0 && k >= opt.window * opt.streams)
            window_wait(k - opt.window * opt.streams);
        if (opt.rate > 0) {
            uint64_t due = start + (uint64_t)((double)k * 1e9 / opt.rate);
            uint64_t now = now_ns();
            if (due > now) {
                struct timespec ts = {(time_t)((due - now) / 1000000000ull), (long)((due - now) % 1000000000ull)};
                nanosleep(&ts, NULL);
            }
        }
        long seq = k / opt.streams + 1;
        expand(path, sizeof(path), opt.pub, stream);
        int bl = snprintf(body, sizeof(body), "%ld %" PRIu64, seq, now_ns());
        if (pg != NULL) { /* the time runs from before the statement: it includes the commit */
            const char *values[2] = {path, body};
            PGresult *res = PQexecParams(pg, "SELECT herald.send($1, $2)", 2, NULL, values, NULL, NULL, 0);
            atomic_store_explicit(&ack_ns[k], now_ns(), memory_order_relaxed);
            if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                if (p->errors++ < 3)
                    fprintf(stderr, "publisher %d: %s", p->index, PQresultErrorMessage(res));
            } else {
                p->sent++;
            }
            PQclear(res);
            continue;
        }
        int n = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
                         path, opt.host, bl, body);
        if (write(p->fd, req, (size_t)n) != n) {
            p->errors++;
            break;
        }
        int status = read_response(p->fd, resp, sizeof(resp));
        atomic_store_explicit(&ack_ns[k], now_ns(), memory_order_relaxed);
        if (status < 200 || status >= 300) {
            if (p->errors++ < 3)
                fprintf(stderr, "publisher %d: status %d\n", p->index, status);
            if (status < 0)
                break;
        } else {
            p->sent++;
        }
    }
    if (pg != NULL)
        PQfinish(pg);
    else
        close(p->fd);
    return NULL;
}

/* ---------------- main ---------------- */

static void usage(void)
{
    fprintf(stderr, "usage: herald-sse-load --sub PATH [--pub PATH] [-n N] [--streams U] [--messages M] [--rate R]\n"
                    "       [--publishers P] [--host H] [--port P] [--pid PID] [--idle] [--label L]\n"
                    "       [--db CONNINFO (publish with SELECT herald.send(<--pub>, body) instead of POST)]\n"
                    "       [--window W (publish message k once message k-W reached every subscriber)]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {
        {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"sub", 1, 0, 's'}, {"pub", 1, 0, 'P'}, {"n", 1, 0, 'n'},
        {"streams", 1, 0, 'u'}, {"messages", 1, 0, 'm'}, {"rate", 1, 0, 'r'}, {"publishers", 1, 0, 'j'},
        {"pid", 1, 0, 'k'}, {"idle", 0, 0, 'i'}, {"label", 1, 0, 'l'}, {"settle-ms", 1, 0, 'S'},
        {"drain", 1, 0, 'd'}, {"db", 1, 0, 'D'}, {"window", 1, 0, 'w'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "n:", longs, NULL)) != -1) {
        switch (c) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 's': opt.sub = optarg; break;
        case 'P': opt.pub = optarg; break;
        case 'n': opt.n = atoi(optarg); break;
        case 'u': opt.streams = atoi(optarg); break;
        case 'm': opt.messages = atol(optarg); break;
        case 'r': opt.rate = atof(optarg); break;
        case 'j': opt.publishers = atoi(optarg); break;
        case 'k': opt.pid = atoi(optarg); break;
        case 'i': opt.idle = 1; break;
        case 'l': opt.label = optarg; break;
        case 'S': opt.settle_ms = atoi(optarg); break;
        case 'd': opt.drain_s = atoi(optarg); break;
        case 'D': opt.db = optarg; break;
        case 'w': opt.window = atol(optarg); break;
        default: usage();
        }
    }
    if (opt.sub == NULL || opt.n <= 0 || (!opt.idle && (opt.pub == NULL || opt.messages <= 0)))
        usage();
    if (opt.streams <= 0)
        opt.streams = opt.n;
    if (opt.publishers > opt.streams)
        opt.publishers = opt.streams;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    epfd = epoll_create1(0);
    subs = calloc((size_t)opt.n, sizeof(*subs));
    long rss0 = rss_kb(opt.pid);
    uint64_t t0 = now_ns();
    /* connect in batches so that neither side's accept queue overflows */
    int opened = 0;
    while (n_headers + n_dead < opt.n) {
        while (opened < opt.n && opened - n_headers - n_dead < opt.connect_batch) {
            sub_open(&subs[opened], opened);
            opened++;
        }
        poll_once(100);
        if (now_ns() - t0 > 60ull * 1000000000ull) {
            fprintf(stderr, "herald-sse-load: only %d of %d subscribers connected after 60 s\n", n_headers, opt.n);
            break;
        }
    }
    uint64_t t_conn = now_ns();
    uint64_t settle_end = now_ns() + (uint64_t)opt.settle_ms * 1000000ull;
    while (now_ns() < settle_end)
        poll_once(50);
    long rss1 = rss_kb(opt.pid);
    double per_conn = rss0 > 0 && rss1 > 0 && n_headers > 0 ? (double)(rss1 - rss0) * 1024.0 / n_headers : -1;
    fprintf(stderr, "%s: %d subscribers connected in %.2f s (%d failed); server RSS %ld -> %ld kB: %.0f bytes per connection\n",
            opt.label, n_headers, (double)(t_conn - t0) / 1e9, n_dead, rss0, rss1, per_conn);
    if (opt.idle) {
        printf("RESULT label=%s subs=%d connected=%d rss_before_kb=%ld rss_after_kb=%ld bytes_per_conn=%.0f\n", opt.label, opt.n,
               n_headers, rss0, rss1, per_conn);
        return n_dead > 0;
    }

    stream_msgs = calloc((size_t)opt.streams, sizeof(long));
    ack_ns = calloc((size_t)opt.messages, sizeof(*ack_ns));
    for (long k = 0; k < opt.messages; k++)
        stream_msgs[k % opt.streams]++;
    uint64_t expected = 0;
    recv_count = calloc((size_t)opt.messages, sizeof(*recv_count));
    stream_subs = calloc((size_t)opt.streams, sizeof(*stream_subs));
    for (int i = 0; i < opt.n; i++)
        if (subs[i].state == S_BODY) {
            expected += (uint64_t)stream_msgs[subs[i].stream];
            stream_subs[subs[i].stream]++;
        }

    struct publisher *pubs = calloc((size_t)opt.publishers, sizeof(*pubs));
    first_pub_ns = now_ns();
    for (int i = 0; i < opt.publishers; i++) {
        pubs[i].index = i;
        pthread_create(&pubs[i].th, NULL, publisher_main, &pubs[i]);
    }
    uint64_t last_progress = now_ns(), seen = 0;
    int joined = 0;
    uint64_t pub_end = 0;
    for (;;) {
        poll_once(20);
        if (!joined) {
            int done = 1;
            for (int i = 0; i < opt.publishers; i++) {
                if (!pubs[i].joined && pthread_tryjoin_np(pubs[i].th, NULL) == 0)
                    pubs[i].joined = 1;
                if (!pubs[i].joined)
                    done = 0;
            }
            if (done) {
                joined = 1;
                pub_end = now_ns();
            }
        }
        if (deliveries != seen) {
            seen = deliveries;
            last_progress = now_ns();
        }
        if (joined && deliveries + total_lost >= expected)
            break;
        if (joined && now_ns() - last_progress > (uint64_t)opt.drain_s * 1000000000ull)
            break;
    }
    long sent = 0, errors = 0;
    for (int i = 0; i < opt.publishers; i++) {
        sent += pubs[i].sent;
        errors += pubs[i].errors;
    }
    /* messages a subscriber never got at the end count as lost */
    uint64_t missing = 0;
    for (int i = 0; i < opt.n; i++)
        if (subs[i].state == S_BODY || subs[i].state == S_DEAD)
            if ((long)subs[i].expect - 1 < stream_msgs[subs[i].stream] && subs[i].fd > 0)
                missing += (uint64_t)(stream_msgs[subs[i].stream] - ((long)subs[i].expect - 1));
    double span = (double)((last_rx_ns > first_pub_ns ? last_rx_ns : now_ns()) - first_pub_ns) / 1e9;
    double pub_span = (double)(pub_end - first_pub_ns) / 1e9;
    printf("RESULT label=%s subs=%d streams=%d messages=%ld published=%ld pub_errors=%ld pub_rate=%.0f deliveries=%" PRIu64
           " expected=%" PRIu64 " lost=%" PRIu64 " dup=%" PRIu64 " reordered=%" PRIu64 " p50_us=%" PRIu64 " p99_us=%" PRIu64
           " max_us=%" PRIu64 " ack_p50_us=%" PRIu64 " ack_p99_us=%" PRIu64 " ack_max_us=%" PRIu64
           " deliveries_per_s=%.0f seconds=%.2f bytes_per_conn=%.0f\n",
           opt.label, opt.n, opt.streams, opt.messages, sent, errors, pub_span > 0 ? (double)sent / pub_span : 0, deliveries,
           expected, total_lost + missing, total_dups, total_reorder, hist_pct(&h_send, 0.50), hist_pct(&h_send, 0.99), h_send.max_us,
           hist_pct(&h_commit, 0.50), hist_pct(&h_commit, 0.99), h_commit.max_us, span > 0 ? (double)deliveries / span : 0, span,
           per_conn);
    fprintf(stderr, "%s: %" PRIu64 "/%" PRIu64 " deliveries, lost %" PRIu64 ", dup %" PRIu64 ", from publish p50 %.2f / p99 %.2f / max %.2f ms,"
            " from ack p50 %.2f / p99 %.2f ms, %.0f deliveries/s\n",
            opt.label, deliveries, expected, total_lost + missing, total_dups, hist_pct(&h_send, 0.50) / 1000.0,
            hist_pct(&h_send, 0.99) / 1000.0, h_send.max_us / 1000.0, hist_pct(&h_commit, 0.50) / 1000.0,
            hist_pct(&h_commit, 0.99) / 1000.0, span > 0 ? (double)deliveries / span : 0);
    return 0;
}
