/*
 * followermaze.c — the seed 004 sequencer: one event source on eventListenerPort, user
 * clients on clientListenerPort, every client gets its notifications in sequence order.
 *
 * Model (all of it runs on one thread with its own h2o evloop; nothing is shared with the
 * main loop but the metrics counters):
 *
 *   event source ──lines──► parser ──► reorder window ──in order──► fan-out ──► client buffers
 *                          (fm_parser)   (fm_window)                 (users,      (one write per
 *                                                                     followers)    client per turn)
 *
 * 1. The event source is read into a fixed 256 KB buffer (its socket is in DONT_READ mode, so
 *    h2o's own input buffer cannot grow with a fast source) and cut into lines (LF or CRLF).
 *    A line that does not parse (fm_parser.h), is longer than HS_FM_MAX_LINE, or is empty is
 *    logged (the first few per stream, then counted only), counted in
 *    herald_fm_malformed_total and skipped.
 * 2. A good event is copied into the reorder ring at its sequence number (fm_window.h). A
 *    number below the next expected one, or one already held, is a duplicate: dropped, counted.
 * 3. Whenever the next expected number is present, the window delivers it and its successors
 *    to the fan-out: F records the follow and notifies `to`, U removes it, B notifies every
 *    registered client, P notifies `to`, S notifies the current followers of `from`. Follows
 *    are recorded for any user, connected or not. A notification appends the line's bytes,
 *    exactly as read (terminator included), to each recipient's pending buffer.
 * 4. At the end of each read of the event source (and of each timer tick), every client with
 *    pending bytes gets one h2o_socket_write of its whole buffer (double buffering: one buffer
 *    in flight, the other filling). A client whose queued bytes pass HERALD_FM_CLIENT_MAX_BUFFER
 *    is cut: a client that does not read cannot make the sequencer's memory grow.
 * 5. Skip policy for a lost number. A 25 ms tick watches the window: when it is blocked on the
 *    same next number for longer than a timeout, the missing numbers up to the lowest held
 *    event are skipped (logged with their count, herald_fm_skipped_total). The timeout follows
 *    the seed: expected wait = missing numbers below the highest seen / the stream's rate
 *    (events/s measured while events arrive); timeout = 4 x that, clamped to
 *    [HERALD_FM_SKIP_MIN_MS, HERALD_FM_SKIP_MAX_MS]. An event further ahead than the window's
 *    bound forces the same skip at once (fm_window.h: hs_fm_window_advance).
 * 6. When the event source disconnects, everything held is delivered in order (holes
 *    skipped and counted): what can be delivered is delivered. The next event source
 *    connection is a fresh stream: window and follows are reset. A second event source
 *    while one is connected is refused (there is one event source).
 * 7. A user client has HERALD_FM_ID_TIMEOUT_MS to send its id line; a bad or overlong id line
 *    cuts it. After the id, whatever it sends is read and discarded (so a disconnect is seen).
 *
 * Memory is bounded by the window (at most HERALD_FM_WINDOW x 64 bytes, grown on demand), the
 * 256 KB input buffer, the clients' buffers (HERALD_FM_CLIENT_MAX_BUFFER each) and the users
 * and follow edges the stream names — never by the stream's length. Nothing is allocated per
 * event.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>

#include "config.h"
#include "fm_graph.h"
#include "fm_parser.h"
#include "fm_window.h"
#include "log.h"
#include "net.h"
#include "metrics.h"
#include "modules.h"
#include "strbuf.h"
#include "timer.h"

#define MODULE "followermaze"
#define FM_NONE UINT32_MAX
#define TICK_MS 25
#define RATE_SAMPLE_MS 100
#define LOG_BURST 10        /* detailed log lines per stream for each kind of bad input */
#define MAX_ID_LINE 64      /* an id line longer than this (no LF yet) cuts the client */
#define SHRINK_ABOVE 262144 /* free a drained write buffer bigger than this */
#define IN_CAP 262144       /* the event source's input buffer (fixed: a fast source cannot grow it) */
#define READS_PER_TURN 16   /* reads of the event source before the loop serves the others */

typedef struct st_fm_client_t fm_client_t;
struct st_fm_client_t {
    h2o_socket_t *sock;
    uint32_t user; /* FM_NONE until the id line came */
    uint64_t user_id;
    fm_client_t *user_prev, *user_next; /* clients of the same user */
    fm_client_t *all_prev, *all_next;   /* every client (for shutdown) */
    size_t reg_index;                   /* position in fm.registered */
    hs_timer_t id_timer;
    hs_strbuf_t pending; /* filled by the fan-out */
    hs_strbuf_t writing; /* handed to h2o_socket_write, valid until its callback */
    unsigned dirty : 1, doomed : 1, writing_active : 1;
    const char *doom_reason;
};

typedef struct st_fm_user_t {
    hs_fm_set_t followers; /* user indexes following this user */
    fm_client_t *clients;  /* connected clients with this id */
} fm_user_t;

struct fm_stream_stats {
    uint64_t events, delivered, duplicates, malformed, skipped, notifications;
};

static struct {
    /* thread */
    pthread_t thread;
    int running;
    atomic_int stop;
    int event_fd, client_fd;
    h2o_loop_t *loop;
    h2o_socket_t *event_listener, *client_listener;
    hs_timer_t tick;
    /* registry */
    hs_fm_idmap_t ids;
    fm_user_t *users;
    size_t users_cap;
    fm_client_t *all; /* every client */
    fm_client_t **registered;
    size_t nregistered, registered_cap;
    fm_client_t **dirty;
    size_t ndirty, dirty_cap;
    /* stream */
    h2o_socket_t *source;
    uint64_t stream_no;
    uint64_t stream_started_at;
    hs_fm_window_t window;
    struct fm_stream_stats st;
    int discarding; /* inside an overlong line: drop bytes up to the next LF */
    char *in;       /* IN_CAP bytes: what was read from the event source and not parsed yet */
    size_t in_len;
    /* metrics not yet published (published once per read / tick) */
    struct fm_stream_stats unpublished;
    /* skip policy */
    double rate; /* events/s, exponentially smoothed over samples with events */
    uint64_t rate_events, rate_at;
    int blocked;
    uint64_t blocked_next, blocked_since, blocked_events;
} fm;

/* ---- small helpers ---- */

/* printable copies at most 60 bytes of a line for a log message, with '?' for control bytes. */
static const char *printable(const char *s, size_t len, char *out, size_t outsz)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < outsz && i < 60; i++)
        out[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (len > 60 && n + 4 < outsz) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static void publish_metrics(void)
{
    if (fm.unpublished.events)
        HS_METRIC_ADD(fm_events_total, fm.unpublished.events);
    if (fm.unpublished.notifications)
        HS_METRIC_ADD(fm_notifications_total, fm.unpublished.notifications);
    if (fm.unpublished.duplicates)
        HS_METRIC_ADD(fm_duplicates_total, fm.unpublished.duplicates);
    if (fm.unpublished.malformed)
        HS_METRIC_ADD(fm_malformed_total, fm.unpublished.malformed);
    if (fm.unpublished.skipped)
        HS_METRIC_ADD(fm_skipped_total, fm.unpublished.skipped);
    memset(&fm.unpublished, 0, sizeof(fm.unpublished));
    HS_METRIC_SET(fm_window_events, fm.window.held);
    HS_METRIC_SET(fm_window_capacity, fm.window.cap);
}

static fm_user_t *user_at(uint32_t idx)
{
    return &fm.users[idx];
}

/* intern_user returns the index of user id, growing the users array when the id is new. */
static uint32_t intern_user(uint64_t id)
{
    int added;
    uint32_t idx = hs_fm_idmap_intern(&fm.ids, id, &added);
    if (added && idx >= fm.users_cap) {
        size_t cap = fm.users_cap == 0 ? 1024 : fm.users_cap * 2;
        fm_user_t *u = realloc(fm.users, cap * sizeof(*u));
        if (u == NULL)
            abort();
        memset(u + fm.users_cap, 0, (cap - fm.users_cap) * sizeof(*u));
        fm.users = u;
        fm.users_cap = cap;
    }
    return idx;
}

/* ---- clients: output ---- */

static void mark_dirty(fm_client_t *c)
{
    if (c->dirty)
        return;
    if (fm.ndirty == fm.dirty_cap) {
        fm.dirty_cap = fm.dirty_cap == 0 ? 64 : fm.dirty_cap * 2;
        fm.dirty = realloc(fm.dirty, fm.dirty_cap * sizeof(*fm.dirty));
        if (fm.dirty == NULL)
            abort();
    }
    fm.dirty[fm.ndirty++] = c;
    c->dirty = 1;
}

/* doom marks a client to be cut at the next flush (never closed in the middle of a fan-out). */
static void doom(fm_client_t *c, const char *why)
{
    if (c->doomed)
        return;
    c->doomed = 1;
    c->doom_reason = why;
    mark_dirty(c);
}

static inline void notify_client(fm_client_t *c, const char *line, size_t len)
{
    if (c->doomed)
        return;
    if (c->pending.len + c->writing.len + len > hs_config.fm_client_max_buffer) {
        doom(c, "output buffer limit reached (client not reading)");
        return;
    }
    hs_strbuf_append(&c->pending, line, len);
    fm.st.notifications++;
    fm.unpublished.notifications++;
    if (!c->dirty)
        mark_dirty(c);
}

static inline void notify_user(uint32_t user, const char *line, size_t len)
{
    for (fm_client_t *c = user_at(user)->clients; c != NULL; c = c->user_next)
        notify_client(c, line, len);
}

/* on_deliver is the window's delivery callback: one event, in sequence order. */
static void on_deliver(void *ctx, const hs_fm_slot_t *slot)
{
    const char *line = hs_fm_slot_line(slot);
    size_t len = slot->len;
    fm.st.delivered++;
    switch (slot->type) {
    case 'F':
        hs_fm_set_add(&user_at(slot->to)->followers, slot->from);
        notify_user(slot->to, line, len);
        break;
    case 'U':
        hs_fm_set_remove(&user_at(slot->to)->followers, slot->from);
        break;
    case 'B':
        for (size_t i = 0; i < fm.nregistered; i++)
            notify_client(fm.registered[i], line, len);
        break;
    case 'P':
        notify_user(slot->to, line, len);
        break;
    case 'S': {
        hs_fm_set_t *f = &user_at(slot->from)->followers;
        for (uint32_t i = 0; i < f->cap; i++) {
            uint32_t u = f->slots[i];
            if (u < HS_FM_SET_TOMB && fm.users[u].clients != NULL)
                notify_user(u, line, len);
        }
        break;
    }
    }
}

static void client_close(fm_client_t *c, const char *why, int cut);

static void on_client_write(h2o_socket_t *sock, const char *err);

/* client_start_write swaps the pending bytes into the write buffer and writes them. */
static void client_start_write(fm_client_t *c)
{
    hs_strbuf_t t = c->writing;
    c->writing = c->pending;
    c->pending = t;
    c->writing_active = 1;
    h2o_iovec_t iov = h2o_iovec_init(c->writing.base, c->writing.len);
    h2o_socket_write(c->sock, &iov, 1, on_client_write);
}

static void on_client_write(h2o_socket_t *sock, const char *err)
{
    fm_client_t *c = sock->data;
    if (err != NULL) {
        client_close(c, "write failed (disconnected)", 0);
        return;
    }
    c->writing_active = 0;
    c->writing.len = 0;
    if (c->writing.cap > SHRINK_ABOVE)
        hs_strbuf_free(&c->writing);
    if (c->pending.len != 0 && !c->doomed)
        client_start_write(c);
}

/* flush_clients starts one write per client that has pending bytes and none in flight, and
 * cuts the doomed ones. Called at the end of every read of the event source and every tick. */
static void flush_clients(void)
{
    for (size_t i = 0; i < fm.ndirty; i++) {
        fm_client_t *c = fm.dirty[i];
        if (c == NULL)
            continue;
        c->dirty = 0;
        if (c->doomed) {
            client_close(c, c->doom_reason, 1);
            continue;
        }
        if (!c->writing_active && c->pending.len != 0)
            client_start_write(c);
    }
    fm.ndirty = 0;
    publish_metrics();
}

/* ---- clients: lifecycle ---- */

static void client_close(fm_client_t *c, const char *why, int cut)
{
    if (c->dirty) {
        for (size_t i = 0; i < fm.ndirty; i++)
            if (fm.dirty[i] == c)
                fm.dirty[i] = NULL;
    }
    hs_timer_stop(&c->id_timer);
    if (c->user != FM_NONE) {
        if (c->user_prev != NULL)
            c->user_prev->user_next = c->user_next;
        else
            user_at(c->user)->clients = c->user_next;
        if (c->user_next != NULL)
            c->user_next->user_prev = c->user_prev;
        fm_client_t *last = fm.registered[--fm.nregistered];
        fm.registered[c->reg_index] = last;
        last->reg_index = c->reg_index;
        HS_METRIC_DEC(fm_clients_connected);
    }
    if (c->all_prev != NULL)
        c->all_prev->all_next = c->all_next;
    else
        fm.all = c->all_next;
    if (c->all_next != NULL)
        c->all_next->all_prev = c->all_prev;
    if (why != NULL) {
        char id[32] = "?";
        if (c->user != FM_NONE)
            snprintf(id, sizeof(id), "%llu", (unsigned long long)c->user_id);
        if (cut)
            hs_warn(MODULE, "user client %s cut: %s", id, why);
        else if (fm.source != NULL)
            hs_info(MODULE, "user client %s gone mid-stream: %s", id, why);
        else
            hs_debug(MODULE, "user client %s gone: %s", id, why);
    }
    if (cut)
        HS_METRIC_INC(fm_client_cuts_total);
    else
        HS_METRIC_INC(fm_client_disconnects_total);
    h2o_socket_close(c->sock);
    hs_strbuf_free(&c->pending);
    hs_strbuf_free(&c->writing);
    free(c);
}

static void on_id_timeout(hs_timer_t *t)
{
    fm_client_t *c = H2O_STRUCT_FROM_MEMBER(fm_client_t, id_timer, t);
    client_close(c, "no id line in time", 1);
}

static void client_register(fm_client_t *c, uint64_t id)
{
    c->user_id = id;
    c->user = intern_user(id);
    fm_user_t *u = user_at(c->user);
    c->user_prev = NULL;
    c->user_next = u->clients;
    if (u->clients != NULL)
        u->clients->user_prev = c;
    u->clients = c;
    if (fm.nregistered == fm.registered_cap) {
        fm.registered_cap = fm.registered_cap == 0 ? 64 : fm.registered_cap * 2;
        fm.registered = realloc(fm.registered, fm.registered_cap * sizeof(*fm.registered));
        if (fm.registered == NULL)
            abort();
    }
    c->reg_index = fm.nregistered;
    fm.registered[fm.nregistered++] = c;
    hs_timer_stop(&c->id_timer);
    HS_METRIC_INC(fm_clients_connected);
    hs_debug(MODULE, "user client %llu registered (%zu connected)", (unsigned long long)id, fm.nregistered);
}

static void on_client_read(h2o_socket_t *sock, const char *err)
{
    fm_client_t *c = sock->data;
    if (err != NULL) {
        client_close(c, c->user == FM_NONE ? "closed before sending its id" : "disconnected", 0);
        return;
    }
    if (c->user == FM_NONE) {
        h2o_buffer_t *in = sock->input;
        const char *nl = memchr(in->bytes, '\n', in->size);
        if (nl == NULL) {
            if (in->size > MAX_ID_LINE)
                client_close(c, "id line too long", 1);
            return;
        }
        size_t linelen = (size_t)(nl - in->bytes) + 1;
        uint64_t id;
        hs_fm_parse_result_t rc = hs_fm_parse_user_id(in->bytes, hs_fm_line_body_len(in->bytes, linelen), &id);
        if (rc != HS_FM_PARSE_OK) {
            char p[80];
            hs_warn(MODULE, "bad id line \"%s\": %s", printable(in->bytes, linelen, p, sizeof(p)), hs_fm_parse_strerror(rc));
            client_close(c, "bad id line", 1);
            return;
        }
        client_register(c, id);
    }
    /* A user client only reads after its id: whatever else it sends is discarded. */
    h2o_buffer_consume(&sock->input, sock->input->size);
}

static void on_client_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    for (int i = 0; i < 64; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            return;
        int on = 1;
        setsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        fm_client_t *c = calloc(1, sizeof(*c));
        if (c == NULL)
            abort();
        c->sock = sock;
        c->user = FM_NONE;
        sock->data = c;
        c->all_next = fm.all;
        if (fm.all != NULL)
            fm.all->all_prev = c;
        fm.all = c;
        hs_timer_start(fm.loop, &c->id_timer, (uint64_t)hs_config.fm_id_timeout_ms, on_id_timeout);
        h2o_socket_read_start(sock, on_client_read);
    }
}

/* ---- the event stream ---- */

static void stream_reset(void)
{
    hs_fm_window_reset(&fm.window);
    for (size_t i = 0; i < fm.ids.count; i++)
        hs_fm_set_clear(&fm.users[i].followers);
    memset(&fm.st, 0, sizeof(fm.st));
    fm.discarding = 0;
    fm.rate = 0;
    fm.rate_events = 0;
    fm.rate_at = fm.stream_started_at = h2o_now(fm.loop);
    fm.blocked = 0;
}

static void count_malformed(const char *line, size_t len, const char *why)
{
    fm.st.malformed++;
    fm.unpublished.malformed++;
    if (fm.st.malformed <= LOG_BURST) {
        char p[80];
        printable(line, hs_fm_line_body_len(line, len), p, sizeof(p));
        hs_warn(MODULE, "skipped malformed line \"%s\" (%zu bytes): %s%s", p, len, why,
                fm.st.malformed == LOG_BURST ? "; further ones in this stream are only counted" : "");
    }
}

static void log_skip(uint64_t from, uint64_t count, const char *why)
{
    hs_warn(MODULE, "skipped %llu missing sequence number%s (the first: %llu): %s", (unsigned long long)count,
            count == 1 ? "" : "s", (unsigned long long)from, why);
}

/* handle_line takes one complete line (terminator included) from the event source. */
static void handle_line(const char *line, size_t len)
{
    hs_fm_event_t ev;
    hs_fm_parse_result_t rc = hs_fm_parse_event(line, hs_fm_line_body_len(line, len), &ev);
    if (rc != HS_FM_PARSE_OK) {
        count_malformed(line, len, hs_fm_parse_strerror(rc));
        return;
    }
    fm.st.events++;
    fm.unpublished.events++;
    uint32_t from = FM_NONE, to = FM_NONE;
    if (ev.type != 'B')
        from = intern_user(ev.from);
    if (ev.type == 'F' || ev.type == 'U' || ev.type == 'P')
        to = intern_user(ev.to);

    hs_fm_put_result_t r = hs_fm_window_put(&fm.window, ev.seq, ev.type, from, to, line, len);
    if (r == HS_FM_PUT_TOO_FAR) {
        uint64_t start = fm.window.next, target = ev.seq - fm.window.max_cap + 1;
        size_t delivered;
        uint64_t skipped = hs_fm_window_advance(&fm.window, target, on_deliver, NULL, &delivered);
        char why[160];
        snprintf(why, sizeof(why), "event %llu is beyond the reorder window (%zu events)", (unsigned long long)ev.seq,
                 fm.window.max_cap);
        if (skipped != 0)
            log_skip(start, skipped, why);
        fm.st.skipped += skipped;
        fm.unpublished.skipped += skipped;
        r = hs_fm_window_put(&fm.window, ev.seq, ev.type, from, to, line, len);
    }
    if (r == HS_FM_PUT_DUPLICATE) {
        fm.st.duplicates++;
        fm.unpublished.duplicates++;
        if (fm.st.duplicates <= LOG_BURST)
            hs_warn(MODULE, "dropped duplicate event %llu%s", (unsigned long long)ev.seq,
                    fm.st.duplicates == LOG_BURST ? "; further ones in this stream are only counted" : "");
        return;
    }
    if (ev.seq == fm.window.next)
        hs_fm_window_drain(&fm.window, on_deliver, NULL);
}

static void stream_end(const char *why)
{
    if (fm.in_len != 0 && !fm.discarding)
        count_malformed(fm.in, fm.in_len, "unterminated line at the end of the stream");
    fm.in_len = 0;
    if (fm.window.held != 0) {
        uint64_t start = fm.window.next;
        size_t delivered;
        uint64_t skipped = hs_fm_window_advance(&fm.window, fm.window.max_seen + 1, on_deliver, NULL, &delivered);
        if (skipped != 0)
            log_skip(start, skipped, "the event source disconnected; delivering what it sent");
        fm.st.skipped += skipped;
        fm.unpublished.skipped += skipped;
    }
    h2o_socket_close(fm.source);
    fm.source = NULL;
    flush_clients();
    hs_info(MODULE,
            "stream #%llu ended (%s): %llu events, %llu delivered, %llu duplicates, %llu malformed lines, %llu skipped, "
            "%llu notifications, window grew to %zu slots",
            (unsigned long long)fm.stream_no, why, (unsigned long long)fm.st.events, (unsigned long long)fm.st.delivered,
            (unsigned long long)fm.st.duplicates, (unsigned long long)fm.st.malformed, (unsigned long long)fm.st.skipped,
            (unsigned long long)fm.st.notifications, fm.window.cap);
}

/* parse_lines handles every complete line of buf[0..len) and returns the bytes consumed (a
 * partial last line, always shorter than HS_FM_MAX_LINE, stays for the next read). */
static size_t parse_lines(const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (fm.discarding) {
            if (nl == NULL) {
                p = end;
                break;
            }
            p = nl + 1;
            fm.discarding = 0;
            continue;
        }
        if (nl == NULL) {
            if ((size_t)(end - p) >= HS_FM_MAX_LINE) {
                count_malformed(p, (size_t)(end - p), "line too long");
                fm.discarding = 1;
                p = end;
            }
            break;
        }
        size_t linelen = (size_t)(nl - p) + 1;
        if (linelen > HS_FM_MAX_LINE)
            count_malformed(p, linelen, "line too long");
        else
            handle_line(p, linelen);
        p = nl + 1;
    }
    return (size_t)(p - buf);
}

/* on_source_readable reads the event source itself (the socket is in DONT_READ mode) into a
 * fixed buffer, so that its memory does not depend on how fast the source writes. */
static void on_source_readable(h2o_socket_t *sock, const char *err)
{
    if (err != NULL) {
        stream_end(err);
        return;
    }
    int fd = h2o_socket_get_fd(sock);
    for (int i = 0; i < READS_PER_TURN; i++) {
        size_t room = IN_CAP - fm.in_len;
        ssize_t n;
        while ((n = read(fd, fm.in + fm.in_len, room)) < 0 && errno == EINTR)
            ;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            stream_end(strerror(errno));
            return;
        }
        if (n == 0) {
            stream_end("closed by the event source");
            return;
        }
        fm.in_len += (size_t)n;
        size_t used = parse_lines(fm.in, fm.in_len);
        memmove(fm.in, fm.in + used, fm.in_len - used);
        fm.in_len -= used;
        if ((size_t)n < room)
            break; /* drained */
    }
    flush_clients();
}

static void on_event_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            return;
        if (fm.source != NULL) {
            hs_warn(MODULE, "refused a second event source: stream #%llu is still connected", (unsigned long long)fm.stream_no);
            h2o_socket_close(sock);
            continue;
        }
        fm.source = sock;
        fm.in_len = 0;
        fm.stream_no++;
        HS_METRIC_INC(fm_streams_total);
        stream_reset();
        publish_metrics();
        hs_info(MODULE, "event source connected: stream #%llu starts at sequence number 1 (%zu user clients)",
                (unsigned long long)fm.stream_no, fm.nregistered);
        h2o_socket_dont_read(sock, 1);
        h2o_socket_read_start(sock, on_source_readable);
    }
}

/* skip_timeout_ms is the seed's adaptive wait for the window's current hole. */
static uint64_t skip_timeout_ms(uint64_t now)
{
    uint64_t span = fm.window.max_seen - fm.window.next + 1;
    uint64_t missing = span > fm.window.held ? span - fm.window.held : 1;
    double rate = fm.rate;
    if (rate <= 0) {
        uint64_t elapsed = now > fm.stream_started_at ? now - fm.stream_started_at : 1;
        rate = (double)fm.st.events * 1000.0 / (double)elapsed;
    }
    double ms = rate > 0 ? 4000.0 * (double)missing / rate : (double)hs_config.fm_skip_max_ms;
    if (ms < hs_config.fm_skip_min_ms)
        ms = hs_config.fm_skip_min_ms;
    if (ms > hs_config.fm_skip_max_ms)
        ms = hs_config.fm_skip_max_ms;
    return (uint64_t)ms;
}

static void on_tick(hs_timer_t *t)
{
    uint64_t now = h2o_now(fm.loop);
    if (fm.source != NULL && now - fm.rate_at >= RATE_SAMPLE_MS) {
        uint64_t n = fm.st.events - fm.rate_events;
        if (n != 0) {
            double inst = (double)n * 1000.0 / (double)(now - fm.rate_at);
            fm.rate = fm.rate == 0 ? inst : 0.7 * fm.rate + 0.3 * inst;
        }
        fm.rate_events = fm.st.events;
        fm.rate_at = now;
    }
    if (hs_fm_window_blocked(&fm.window)) {
        if (!fm.blocked || fm.blocked_next != fm.window.next) {
            fm.blocked = 1;
            fm.blocked_next = fm.window.next;
            fm.blocked_since = now;
            fm.blocked_events = fm.st.events;
        } else {
            uint64_t timeout = skip_timeout_ms(now), waited = now - fm.blocked_since;
            uint64_t arrived = fm.st.events - fm.blocked_events;
            if (waited >= timeout) {
                uint64_t start = fm.window.next;
                uint64_t skipped = hs_fm_window_skip_hole(&fm.window, on_deliver, NULL, NULL);
                char why[200];
                snprintf(why, sizeof(why),
                         "waited %llu ms, %llu events arrived meanwhile (adaptive timeout %llu ms at %.0f events/s)",
                         (unsigned long long)waited, (unsigned long long)arrived, (unsigned long long)timeout, fm.rate);
                log_skip(start, skipped, why);
                fm.st.skipped += skipped;
                fm.unpublished.skipped += skipped;
                fm.blocked = 0;
            }
        }
    } else {
        fm.blocked = 0;
    }
    flush_clients();
    hs_timer_start(fm.loop, &fm.tick, TICK_MS, on_tick);
}

/* ---- thread and listeners ---- */

static int bind_port(int port)
{
    char err[256];
    int fd = hs_net_listen(hs_config.host, port, 4096, err, sizeof(err));
    if (fd < 0)
        hs_error(MODULE, "%s", err);
    return fd;
}

static void *fm_main(void *arg)
{
    fm.loop = h2o_evloop_create();
    fm.in = malloc(IN_CAP);
    if (fm.in == NULL)
        abort();
    hs_fm_window_init(&fm.window, hs_config.fm_window);
    hs_fm_idmap_init(&fm.ids);
    fm.event_listener = h2o_evloop_socket_create(fm.loop, fm.event_fd, H2O_SOCKET_FLAG_DONT_READ);
    fm.client_listener = h2o_evloop_socket_create(fm.loop, fm.client_fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(fm.event_listener, on_event_accept);
    h2o_socket_read_start(fm.client_listener, on_client_accept);
    hs_timer_start(fm.loop, &fm.tick, TICK_MS, on_tick);
    publish_metrics();

    while (!atomic_load(&fm.stop))
        h2o_evloop_run(fm.loop, 100);

    hs_timer_stop(&fm.tick);
    if (fm.source != NULL) {
        h2o_socket_close(fm.source);
        fm.source = NULL;
    }
    while (fm.all != NULL)
        client_close(fm.all, NULL, 0);
    h2o_socket_read_stop(fm.event_listener);
    h2o_socket_close(fm.event_listener);
    h2o_socket_read_stop(fm.client_listener);
    h2o_socket_close(fm.client_listener);
    /* One more turn frees the closed sockets (h2o_evloop_destroy would close pending ones again). */
    h2o_evloop_run(fm.loop, 0);
    hs_timer_dispose_all(fm.loop);
    h2o_evloop_destroy(fm.loop);
    hs_fm_window_dispose(&fm.window);
    for (size_t i = 0; i < fm.ids.count; i++)
        hs_fm_set_dispose(&fm.users[i].followers);
    hs_fm_idmap_dispose(&fm.ids);
    free(fm.users);
    free(fm.registered);
    free(fm.dirty);
    free(fm.in);
    fm.in = NULL;
    fm.users = NULL;
    fm.registered = NULL;
    fm.dirty = NULL;
    fm.users_cap = fm.nregistered = fm.registered_cap = fm.ndirty = fm.dirty_cap = 0;
    return NULL;
}

int hs_followermaze_start(void)
{
    if (fm.running)
        return 0;
    if ((fm.event_fd = bind_port(hs_config.fm_event_port)) < 0)
        return -1;
    if ((fm.client_fd = bind_port(hs_config.fm_client_port)) < 0) {
        close(fm.event_fd);
        return -1;
    }
    atomic_store(&fm.stop, 0);
    int rc = pthread_create(&fm.thread, NULL, fm_main, NULL);
    if (rc != 0) {
        hs_error(MODULE, "cannot start the follower-maze thread: %s", strerror(rc));
        close(fm.event_fd);
        close(fm.client_fd);
        return -1;
    }
    pthread_setname_np(fm.thread, "herald-fm");
    fm.running = 1;
    hs_info(MODULE, "follower maze: event source on %s:%d, user clients on %s:%d (window %zu events, skip %d..%d ms)",
            hs_config.host, hs_config.fm_event_port, hs_config.host, hs_config.fm_client_port, hs_config.fm_window,
            hs_config.fm_skip_min_ms, hs_config.fm_skip_max_ms);
    return 0;
}

void hs_followermaze_stop(void)
{
    if (!fm.running)
        return;
    atomic_store(&fm.stop, 1);
    pthread_join(fm.thread, NULL);
    fm.running = 0;
    hs_info(MODULE, "follower maze stopped");
}
