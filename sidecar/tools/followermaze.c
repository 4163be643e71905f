/*
 * followermaze.c — the follower-maze verification program: the event source and the user
 * clients of the original SoundCloud test program, checking every notification.
 *
 *   scripts/followermaze                      (builds it if needed; env vars below)
 *   totalEvents=200000 scripts/followermaze
 *
 * What it does, deterministically from randomSeed:
 * 1. Picks concurrencyLevel distinct users among 1..numberOfUsers, connects one client per
 *    user to clientListenerPort and sends its id line; waits settleMs for the server to
 *    register them; then connects the event source to eventListenerPort.
 * 2. Generates totalEvents events (seq 1..N) with this mix: 22% follow, 18% unfollow (of an
 *    existing follow; the follow graph is capped at 8 x numberOfUsers edges, a follow past
 *    the cap becomes an unfollow), 30% private message, 29.5% status update, 0.5% broadcast.
 *    Events are cut into batches of 1..maxEventSourceBatchSize (random size), each batch is
 *    shuffled and written; writes are up to 256 KB, and generation pauses while more than
 *    PENDING_LIMIT bytes of notifications are still owed to the clients (so neither this
 *    program nor the server needs memory proportional to the stream).
 * 3. While generating, it computes in sequence order what each client must receive (exact
 *    bytes: the line and its terminator) and appends it to that client's expected queue; the
 *    bytes a client reads are compared with the head of its queue and consumed. Memory is the
 *    bytes in flight, not the stream.
 * 4. Ends with "ALL NOTIFICATIONS RECEIVED" (exit 0) once every queue is empty and nothing
 *    more arrived during graceMs, or prints the first difference (exit 1): wrong bytes, an
 *    unexpected notification, a closed connection, or no progress for `timeout` ms.
 *
 * Options (environment): totalEvents (10000000), concurrencyLevel (100), numberOfUsers
 * (concurrencyLevel x 10), randomSeed (666), timeout (20000 ms), maxEventSourceBatchSize (100),
 * logInterval (1000 ms), eventListenerPort (9090), clientListenerPort (9099), HOST (127.0.0.1),
 * and to exercise the server's policies:
 *   dropSeqs=5000,70000   these sequence numbers are never sent (the server must skip them);
 *   malformedEvery=N      after every N-th event line, one malformed line (10 kinds in turn:
 *                         garbage, unknown type, non-numeric id, missing or extra fields, empty,
 *                         overlong, negative seq...) that the server must skip;
 *   duplicateEvery=N      after every N-th event line, a copy of an already sent line;
 *   lateClients=K         K of the clients connect only after event lateAt (default
 *                         totalEvents/2, forced to be a broadcast): the program waits until every
 *                         connected client has everything up to it, connects them, then goes on;
 *   crlf=0|1|2            line terminator LF (default, like the original), CRLF, or mixed;
 *   keepEventSourceOpen=1 keep the event source connected until all is received (default), so
 *                         a dropped number is skipped by the server's timeout; 0 closes it after
 *                         the last event (the server then delivers what it holds);
 *   settleMs=200, graceMs=300.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "timer.h"

#define PENDING_LIMIT (4u << 20) /* notification bytes owed to clients before generation pauses */
#define OUT_CHUNK (256u << 10)
#define READ_CHUNK (256u << 10)
#define SOURCE_TAG UINT32_MAX
#define MAX_DROPS 64

/* ---- options ---- */

static struct {
    uint64_t total_events;
    uint32_t concurrency, users;
    uint64_t seed;
    uint64_t timeout_ms;
    uint32_t max_batch;
    uint64_t log_interval_ms;
    int event_port, client_port;
    const char *host;
    uint64_t drops[MAX_DROPS];
    int ndrops;
    uint64_t malformed_every, duplicate_every;
    uint32_t late_clients;
    uint64_t late_at;
    int crlf;
    int keep_source_open;
    uint64_t settle_ms, grace_ms;
} opt;

static uint64_t env_u64(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return def;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || *v == '-') {
        fprintf(stderr, "followermaze: %s must be a non-negative integer, got \"%s\"\n", name, v);
        exit(2);
    }
    return n;
}

static void load_options(void)
{
    opt.total_events = env_u64("totalEvents", 10000000);
    opt.concurrency = (uint32_t)env_u64("concurrencyLevel", 100);
    opt.users = (uint32_t)env_u64("numberOfUsers", (uint64_t)opt.concurrency * 10);
    opt.seed = env_u64("randomSeed", 666);
    opt.timeout_ms = env_u64("timeout", 20000);
    opt.max_batch = (uint32_t)env_u64("maxEventSourceBatchSize", 100);
    opt.log_interval_ms = env_u64("logInterval", 1000);
    opt.event_port = (int)env_u64("eventListenerPort", 9090);
    opt.client_port = (int)env_u64("clientListenerPort", 9099);
    opt.host = getenv("HOST") && *getenv("HOST") ? getenv("HOST") : "127.0.0.1";
    opt.malformed_every = env_u64("malformedEvery", 0);
    opt.duplicate_every = env_u64("duplicateEvery", 0);
    opt.late_clients = (uint32_t)env_u64("lateClients", 0);
    opt.late_at = env_u64("lateAt", opt.total_events / 2);
    opt.crlf = (int)env_u64("crlf", 0);
    opt.keep_source_open = (int)env_u64("keepEventSourceOpen", 1);
    opt.settle_ms = env_u64("settleMs", 200);
    opt.grace_ms = env_u64("graceMs", 300);
    const char *d = getenv("dropSeqs");
    while (d != NULL && *d != '\0') {
        char *end;
        unsigned long long s = strtoull(d, &end, 10);
        if (end == d || s == 0 || opt.ndrops == MAX_DROPS) {
            fprintf(stderr, "followermaze: dropSeqs must be up to %d comma-separated sequence numbers\n", MAX_DROPS);
            exit(2);
        }
        opt.drops[opt.ndrops++] = s;
        d = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0') {
            fprintf(stderr, "followermaze: bad dropSeqs\n");
            exit(2);
        }
    }
    if (opt.concurrency == 0 || opt.users < opt.concurrency || opt.users < 2 || opt.max_batch == 0 || opt.crlf > 2) {
        fprintf(stderr, "followermaze: need 1 <= concurrencyLevel <= numberOfUsers (>= 2), maxEventSourceBatchSize >= 1, "
                        "crlf 0..2\n");
        exit(2);
    }
    if (opt.late_clients != 0 && (opt.late_clients >= opt.concurrency || opt.late_at == 0 || opt.late_at >= opt.total_events)) {
        fprintf(stderr, "followermaze: lateClients must be below concurrencyLevel and lateAt within 1..totalEvents-1\n");
        exit(2);
    }
}

/* ---- utilities ---- */

static uint64_t t0;

/* vsay prints one time-stamped line: "[seconds] <prefix><message>". */
static void vsay(const char *prefix, const char *fmt, va_list ap)
{
    printf("[%7.3f] %s", (double)(hs_now_ms() - t0) / 1000.0, prefix);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay("", fmt, ap);
    va_end(ap);
}

static uint64_t rng_state;
static inline uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline uint64_t rnd_below(uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rnd() * n) >> 64);
}

static inline char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

struct buf {
    char *b;
    size_t head, tail, cap;
};

static void buf_room(struct buf *x, size_t extra)
{
    if (x->tail + extra <= x->cap)
        return;
    if (x->head != 0) {
        memmove(x->b, x->b + x->head, x->tail - x->head);
        x->tail -= x->head;
        x->head = 0;
    }
    if (x->tail + extra <= x->cap)
        return;
    size_t cap = x->cap ? x->cap : 4096;
    while (cap < x->tail + extra)
        cap *= 2;
    x->b = realloc(x->b, cap);
    if (x->b == NULL) {
        fprintf(stderr, "followermaze: out of memory\n");
        exit(1);
    }
    x->cap = cap;
}

static inline void buf_add(struct buf *x, const char *s, size_t n)
{
    buf_room(x, n);
    memcpy(x->b + x->tail, s, n);
    x->tail += n;
}

/* ---- state ---- */

struct client {
    int fd;
    uint32_t user;
    int late;       /* connects after event lateAt */
    int connected;  /* counts for expectations */
    struct buf exp; /* bytes it still has to receive */
    uint64_t received, lines, expected_notifications;
};

static struct client *clients;
static int32_t *client_of_user; /* user -> client index, -1 */
static uint64_t *fbits;         /* followers_of[user]: bitset of client indexes following user */
static size_t fwords;
static uint64_t *edges; /* generator's follow edges, (from << 32) | to */
static size_t nedges, max_edges;
static uint64_t pending_total; /* expected bytes not yet received, all clients */
static uint64_t next_seq = 1;  /* next event to generate */
static uint64_t lines_sent, notifications_expected, malformed_sent, duplicates_sent;
static int source_fd = -1, epfd;
static uint32_t source_mask;
static struct buf out;    /* bytes for the event source */
static char *batch_lines; /* the current batch's lines */
static uint32_t *batch_off, *batch_len, *batch_perm;
static char last_line[64];
static size_t last_line_len;
static int failed;
static int late_connected;

enum { SENDING, PAUSE_DRAIN, PAUSE_SETTLE, WAITING, GRACE } state = SENDING;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay("FAILED: ", fmt, ap);
    va_end(ap);
    failed = 1;
}

static int is_dropped(uint64_t seq)
{
    for (int i = 0; i < opt.ndrops; i++)
        if (opt.drops[i] == seq && !(opt.late_clients != 0 && seq == opt.late_at))
            return 1;
    return 0;
}

static inline void expect(uint32_t ci, const char *line, size_t len)
{
    struct client *c = &clients[ci];
    if (!c->connected)
        return;
    buf_add(&c->exp, line, len);
    c->expected_notifications++;
    notifications_expected++;
    pending_total += len;
}

static inline void expect_user(uint32_t user, const char *line, size_t len)
{
    int32_t ci = client_of_user[user];
    if (ci >= 0)
        expect((uint32_t)ci, line, len);
}

/* gen_event produces event seq into p (returns the end) and applies its expected effects. */
static char *gen_event(uint64_t seq, char *p)
{
    char *start = p;
    uint64_t r = rnd_below(1000);
    char type;
    uint32_t from = 0, to = 0;
    if (opt.late_clients != 0 && seq == opt.late_at)
        r = 0; /* the pause point is a broadcast: once every client has it, the server is past it */
    if (r < 5)
        type = 'B';
    else if (r < 305)
        type = 'P';
    else if (r < 600)
        type = 'S';
    else if (r < 820)
        type = nedges < max_edges ? 'F' : 'U';
    else
        type = nedges > 0 ? 'U' : 'F';
    switch (type) {
    case 'F':
    case 'P':
        from = 1 + (uint32_t)rnd_below(opt.users);
        to = 1 + (uint32_t)rnd_below(opt.users - 1);
        if (to >= from)
            to++;
        if (type == 'F')
            edges[nedges++] = ((uint64_t)from << 32) | to;
        break;
    case 'U': {
        size_t i = rnd_below(nedges);
        from = (uint32_t)(edges[i] >> 32);
        to = (uint32_t)edges[i];
        edges[i] = edges[--nedges];
        break;
    }
    case 'S':
        from = 1 + (uint32_t)rnd_below(opt.users);
        break;
    }
    p = put_u64(p, seq);
    *p++ = '|';
    *p++ = type;
    if (type != 'B') {
        *p++ = '|';
        p = put_u64(p, from);
    }
    if (type == 'F' || type == 'U' || type == 'P') {
        *p++ = '|';
        p = put_u64(p, to);
    }
    if (opt.crlf == 1 || (opt.crlf == 2 && (rnd() & 1)))
        *p++ = '\r';
    *p++ = '\n';
    if (is_dropped(seq))
        return p; /* sent never, so it happens never */

    size_t len = (size_t)(p - start);
    int32_t fci = type == 'B' ? -1 : client_of_user[from];
    switch (type) {
    case 'F':
        if (fci >= 0)
            fbits[(size_t)to * fwords + (uint32_t)fci / 64] |= 1ull << ((uint32_t)fci % 64);
        expect_user(to, start, len);
        break;
    case 'U':
        if (fci >= 0)
            fbits[(size_t)to * fwords + (uint32_t)fci / 64] &= ~(1ull << ((uint32_t)fci % 64));
        break;
    case 'P':
        expect_user(to, start, len);
        break;
    case 'B':
        for (uint32_t ci = 0; ci < opt.concurrency; ci++)
            expect(ci, start, len);
        break;
    case 'S':
        for (size_t w = 0; w < fwords; w++) {
            uint64_t bits = fbits[(size_t)from * fwords + w];
            while (bits != 0) {
                uint32_t ci = (uint32_t)(w * 64 + (uint32_t)__builtin_ctzll(bits));
                bits &= bits - 1;
                expect(ci, start, len);
            }
        }
        break;
    }
    return p;
}

static const char *malformed_line(uint64_t k, uint64_t seq, char *p)
{
    switch (k % 10) {
    case 0:
        p += sprintf(p, "garbage");
        break;
    case 1:
        p += sprintf(p, "%llu|X|1|2", (unsigned long long)seq);
        break;
    case 2:
        p += sprintf(p, "%llu|F|abc|3", (unsigned long long)seq);
        break;
    case 3:
        p += sprintf(p, "|B");
        break;
    case 4:
        p += sprintf(p, "%llu|P|", (unsigned long long)seq);
        memset(p, '7', 3000);
        p += 3000;
        break;
    case 5:
        break; /* empty line */
    case 6:
        p += sprintf(p, "%llu|S", (unsigned long long)seq);
        break;
    case 7:
        p += sprintf(p, "%llu|F|1|2|3", (unsigned long long)seq);
        break;
    case 8:
        p += sprintf(p, "%llu|B|7", (unsigned long long)seq);
        break;
    case 9:
        p += sprintf(p, "-%llu|B", (unsigned long long)seq);
        break;
    }
    *p++ = '\n';
    *p = '\0';
    return p;
}

static int can_generate(void)
{
    if (state != SENDING || next_seq > opt.total_events)
        return 0;
    if (opt.late_clients != 0 && next_seq > opt.late_at && !late_connected)
        return 0; /* the pause: the late clients connect first */
    return pending_total < PENDING_LIMIT;
}

/* gen_batch generates one batch, shuffles it and appends it (with injections) to out. */
static void gen_batch(void)
{
    uint64_t n = 1 + rnd_below(opt.max_batch);
    if (n > opt.total_events - next_seq + 1)
        n = opt.total_events - next_seq + 1;
    if (opt.late_clients != 0 && next_seq <= opt.late_at && next_seq + n - 1 > opt.late_at)
        n = opt.late_at - next_seq + 1;
    char *p = batch_lines;
    for (uint64_t i = 0; i < n; i++) {
        batch_off[i] = (uint32_t)(p - batch_lines);
        char *e = gen_event(next_seq + i, p);
        batch_len[i] = (uint32_t)(e - p);
        batch_perm[i] = (uint32_t)i;
        p = e;
    }
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = rnd_below(i + 1);
        uint32_t t = batch_perm[i];
        batch_perm[i] = batch_perm[j];
        batch_perm[j] = t;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint32_t k = batch_perm[i];
        uint64_t seq = next_seq + k;
        if (is_dropped(seq))
            continue;
        const char *line = batch_lines + batch_off[k];
        buf_add(&out, line, batch_len[k]);
        lines_sent++;
        if (opt.duplicate_every != 0 && lines_sent % opt.duplicate_every == 0 && last_line_len != 0) {
            buf_add(&out, last_line, last_line_len);
            duplicates_sent++;
        }
        if (batch_len[k] < sizeof(last_line)) {
            memcpy(last_line, line, batch_len[k]);
            last_line_len = batch_len[k];
        }
        if (opt.malformed_every != 0 && lines_sent % opt.malformed_every == 0) {
            static char bad[4096];
            const char *e = malformed_line(malformed_sent, seq, bad);
            buf_add(&out, bad, (size_t)(e - bad));
            malformed_sent++;
        }
    }
    next_seq += n;
}

static void set_source_mask(uint32_t mask)
{
    if (source_fd < 0 || mask == source_mask)
        return;
    struct epoll_event ev = {.events = mask, .data.u32 = SOURCE_TAG};
    epoll_ctl(epfd, EPOLL_CTL_MOD, source_fd, &ev);
    source_mask = mask;
}

static void update_source_mask(void)
{
    set_source_mask(EPOLLRDHUP | ((out.tail > out.head || can_generate()) ? EPOLLOUT : 0));
}

static void on_source_writable(void)
{
    for (;;) {
        if (out.tail == out.head) {
            out.head = out.tail = 0;
            if (!can_generate())
                break;
            while (out.tail < OUT_CHUNK && can_generate())
                gen_batch();
        }
        ssize_t w = write(source_fd, out.b + out.head, out.tail - out.head);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            fail("event source: write failed: %s (the server closed the connection?)", strerror(errno));
            return;
        }
        out.head += (size_t)w;
        if (out.head < out.tail)
            break;
    }
    update_source_mask();
}

/* ---- comparing what clients receive ---- */

static void show_line(const char *label, const char *s, size_t len)
{
    size_t n = 0;
    while (n < len && s[n] != '\n' && n < 120)
        n++;
    printf("    %s \"", label);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r')
            printf("\\r");
        else if (ch >= 0x20 && ch < 0x7f)
            putchar(ch);
        else
            printf("\\x%02x", ch);
    }
    printf("%s\"\n", n < len && s[n] == '\n' ? "\\n" : (n == len ? " (no more bytes)" : "..."));
}

static void report_difference(struct client *c, const char *got, size_t gotlen, size_t i)
{
    const char *exp = c->exp.b + c->exp.head;
    size_t explen = c->exp.tail - c->exp.head;
    size_t s = i;
    while (s > 0 && got[s - 1] != '\n')
        s--;
    uint64_t line_no = c->lines + 1;
    for (size_t k = 0; k < s; k++)
        if (got[k] == '\n')
            line_no++;
    if (i >= explen)
        fail("client for user %u received a notification it should not have (its notification #%llu, byte %llu)", c->user,
             (unsigned long long)line_no, (unsigned long long)(c->received + s));
    else
        fail("client for user %u: notification #%llu differs (byte %llu of its stream)", c->user, (unsigned long long)line_no,
             (unsigned long long)(c->received + s));
    if (s < explen)
        show_line("expected", exp + s, explen - s);
    else
        printf("    expected nothing more\n");
    show_line("received", got + s, gotlen - s);
    fflush(stdout);
}

static uint64_t last_progress;

static void on_client_readable(uint32_t ci)
{
    static char rb[READ_CHUNK];
    struct client *c = &clients[ci];
    for (;;) {
        ssize_t n = read(c->fd, rb, sizeof(rb));
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            fail("client for user %u: read failed: %s", c->user, strerror(errno));
            return;
        }
        if (n == 0) {
            size_t pend = c->exp.tail - c->exp.head;
            fail("client for user %u: the server closed the connection (%llu bytes received, %zu still expected)", c->user,
                 (unsigned long long)c->received, pend);
            if (pend != 0)
                show_line("next expected", c->exp.b + c->exp.head, pend);
            return;
        }
        size_t len = (size_t)n, pend = c->exp.tail - c->exp.head;
        size_t cmp = len < pend ? len : pend;
        if (memcmp(c->exp.b + c->exp.head, rb, cmp) != 0) {
            size_t i = 0;
            while (c->exp.b[c->exp.head + i] == rb[i])
                i++;
            report_difference(c, rb, len, i);
            return;
        }
        if (len > pend) {
            report_difference(c, rb, len, pend);
            return;
        }
        for (const char *q = rb, *e = rb + len; (q = memchr(q, '\n', (size_t)(e - q))) != NULL; q++)
            c->lines++;
        c->exp.head += len;
        if (c->exp.head == c->exp.tail)
            c->exp.head = c->exp.tail = 0;
        c->received += len;
        pending_total -= len;
        last_progress = hs_now_ms();
        if ((size_t)n < sizeof(rb))
            return;
    }
}

/* ---- connections ---- */

static int connect_to(int port)
{
    struct addrinfo hints = {0}, *res = NULL;
    char sport[16];
    snprintf(sport, sizeof(sport), "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gai = getaddrinfo(opt.host, sport, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "followermaze: cannot resolve %s: %s\n", opt.host, gai_strerror(gai));
        exit(1);
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        printf("FAILED: cannot connect to %s:%d: %s\n", opt.host, port, strerror(errno));
        exit(1);
    }
    freeaddrinfo(res);
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    return fd;
}

static void connect_client(uint32_t ci)
{
    struct client *c = &clients[ci];
    c->fd = connect_to(opt.client_port);
    char line[32], *p = put_u64(line, c->user);
    if (opt.crlf == 1)
        *p++ = '\r';
    *p++ = '\n';
    if (write(c->fd, line, (size_t)(p - line)) != p - line) {
        printf("FAILED: cannot send the id of user %u: %s\n", c->user, strerror(errno));
        exit(1);
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = ci};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    c->connected = 1;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void setup(void)
{
    rng_state = opt.seed;
    clients = calloc(opt.concurrency, sizeof(*clients));
    client_of_user = malloc(((size_t)opt.users + 1) * sizeof(*client_of_user));
    fwords = (opt.concurrency + 63) / 64;
    fbits = calloc(((size_t)opt.users + 1) * fwords, sizeof(*fbits));
    max_edges = (size_t)opt.users * 8;
    edges = malloc(max_edges * sizeof(*edges));
    batch_lines = malloc((size_t)opt.max_batch * 64);
    batch_off = malloc((size_t)opt.max_batch * sizeof(uint32_t));
    batch_len = malloc((size_t)opt.max_batch * sizeof(uint32_t));
    batch_perm = malloc((size_t)opt.max_batch * sizeof(uint32_t));
    uint32_t *pool = malloc(((size_t)opt.users) * sizeof(uint32_t));
    if (!clients || !client_of_user || !fbits || !edges || !batch_lines || !batch_off || !batch_len || !batch_perm || !pool) {
        fprintf(stderr, "followermaze: out of memory\n");
        exit(1);
    }
    for (uint32_t u = 0; u <= opt.users; u++)
        client_of_user[u] = -1;
    for (uint32_t i = 0; i < opt.users; i++)
        pool[i] = i + 1;
    for (uint32_t i = 0; i < opt.concurrency; i++) {
        uint32_t j = i + (uint32_t)rnd_below(opt.users - i);
        uint32_t t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
        clients[i].user = pool[i];
        clients[i].fd = -1;
        clients[i].late = i >= opt.concurrency - opt.late_clients;
        client_of_user[pool[i]] = (int32_t)i;
    }
    free(pool);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    load_options();
    t0 = hs_now_ms();
    setup();
    epfd = epoll_create1(EPOLL_CLOEXEC);

    say("followermaze: %llu events, %u clients (%u late) of %u users, seed %llu, batches up to %u, ports %d/%d on %s",
        (unsigned long long)opt.total_events, opt.concurrency, opt.late_clients, opt.users, (unsigned long long)opt.seed,
        opt.max_batch, opt.event_port, opt.client_port, opt.host);
    for (uint32_t ci = 0; ci < opt.concurrency; ci++)
        if (!clients[ci].late)
            connect_client(ci);
    sleep_ms(opt.settle_ms);
    source_fd = connect_to(opt.event_port);
    int sndbuf = 4 << 20;
    setsockopt(source_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    fcntl(source_fd, F_SETFL, fcntl(source_fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event sev = {.events = EPOLLOUT | EPOLLRDHUP, .data.u32 = SOURCE_TAG};
    epoll_ctl(epfd, EPOLL_CTL_ADD, source_fd, &sev);
    source_mask = sev.events;

    uint64_t start = hs_now_ms(), next_log = start + opt.log_interval_ms, resume_at = 0, grace_until = 0;
    last_progress = start;
    struct epoll_event evs[256];
    while (!failed) {
        int n = epoll_wait(epfd, evs, 256, 20);
        for (int i = 0; i < n && !failed; i++) {
            if (evs[i].data.u32 == SOURCE_TAG) {
                if (evs[i].events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
                    fail("event source: the server closed the connection");
                    break;
                }
                on_source_writable();
            } else {
                on_client_readable(evs[i].data.u32);
            }
        }
        if (failed)
            break;
        uint64_t now = hs_now_ms();
        if (pending_total == 0)
            last_progress = now;
        if (state == SENDING && opt.late_clients != 0 && !late_connected && next_seq > opt.late_at && out.head == out.tail) {
            state = PAUSE_DRAIN;
            say("paused after event %llu: waiting for the connected clients to catch up", (unsigned long long)opt.late_at);
        }
        if (state == PAUSE_DRAIN && pending_total == 0) {
            for (uint32_t ci = 0; ci < opt.concurrency; ci++)
                if (clients[ci].late)
                    connect_client(ci);
            late_connected = 1;
            say("connected %u late clients", opt.late_clients);
            resume_at = now + opt.settle_ms;
            state = PAUSE_SETTLE;
        }
        if (state == PAUSE_SETTLE && now >= resume_at) {
            state = SENDING;
            update_source_mask();
        }
        if (state == SENDING && next_seq > opt.total_events && out.head == out.tail) {
            state = WAITING;
            say("all %llu events sent (%llu lines, %llu malformed, %llu duplicates) in %.3f s",
                (unsigned long long)opt.total_events, (unsigned long long)lines_sent, (unsigned long long)malformed_sent,
                (unsigned long long)duplicates_sent, (double)(now - start) / 1000.0);
            if (!opt.keep_source_open) {
                epoll_ctl(epfd, EPOLL_CTL_DEL, source_fd, NULL);
                close(source_fd);
                source_fd = -1;
            }
        }
        if (state == WAITING && pending_total == 0) {
            state = GRACE;
            grace_until = now + opt.grace_ms;
        }
        if (state == GRACE && pending_total != 0)
            state = WAITING; /* cannot happen: nothing is generated any more */
        if (state == GRACE && now >= grace_until)
            break;
        if (state == SENDING)
            update_source_mask();
        if (pending_total != 0 && now - last_progress > opt.timeout_ms) {
            for (uint32_t ci = 0; ci < opt.concurrency; ci++) {
                struct client *c = &clients[ci];
                if (c->exp.tail != c->exp.head) {
                    fail("client for user %u: no notification for %llu ms (received %llu notifications, %zu bytes still expected)",
                         c->user, (unsigned long long)opt.timeout_ms, (unsigned long long)c->lines, c->exp.tail - c->exp.head);
                    show_line("next expected", c->exp.b + c->exp.head, c->exp.tail - c->exp.head);
                    break;
                }
            }
            break;
        }
        if (opt.log_interval_ms != 0 && now >= next_log) {
            uint64_t got = 0;
            for (uint32_t ci = 0; ci < opt.concurrency; ci++)
                got += clients[ci].lines;
            say("sent %llu events (%.0f/s), %llu of %llu notifications received", (unsigned long long)(next_seq - 1),
                (double)(next_seq - 1) * 1000.0 / (double)(now - start + 1), (unsigned long long)got,
                (unsigned long long)notifications_expected);
            next_log = now + opt.log_interval_ms;
        }
    }
    uint64_t end = hs_now_ms();
    double secs = (double)(end - start - (state == GRACE ? opt.grace_ms : 0)) / 1000.0;
    uint64_t got = 0;
    for (uint32_t ci = 0; ci < opt.concurrency; ci++)
        got += clients[ci].lines;
    if (failed) {
        say("%llu of %llu events generated, %llu of %llu notifications received", (unsigned long long)(next_seq - 1),
            (unsigned long long)opt.total_events, (unsigned long long)got, (unsigned long long)notifications_expected);
        return 1;
    }
    say("ALL NOTIFICATIONS RECEIVED: %llu events, %llu notifications to %u clients in %.3f s (%.0f events/s)",
        (unsigned long long)opt.total_events, (unsigned long long)got, opt.concurrency, secs,
        secs > 0 ? (double)opt.total_events / secs : 0.0);
    printf("result events=%llu notifications=%llu seconds=%.3f events_per_s=%.0f\n", (unsigned long long)opt.total_events,
           (unsigned long long)got, secs, secs > 0 ? (double)opt.total_events / secs : 0.0);
    if (source_fd >= 0) {
        close(source_fd);
        sleep_ms(50); /* the stream ends before its clients leave: they were not "gone mid-stream" */
    }
    for (uint32_t ci = 0; ci < opt.concurrency; ci++)
        if (clients[ci].fd >= 0)
            close(clients[ci].fd);
    return 0;
}
