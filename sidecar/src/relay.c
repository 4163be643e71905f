/*
 * relay.c — seed 003: the tweet relay, with supervised worker processes.
 *
 * Everything here runs on one thread with its own h2o evloop (started by hs_relay_start).
 *
 *   telnet client --"twitter"--> session: one receiver per upstream URL + a pool of workers
 *   receiver (SSE over our own HTTP/1.1 client + sse_parser) --event--> router
 *   router --round-robin frame--> worker process --formatted line--> reorder --> client
 *
 * Sessions. As in the Elixir original (a receiver/router/worker tree per connection), each
 * client that types `twitter` gets its own session: its own upstream connections and its
 * own pool of HERALD_RELAY_WORKERS worker processes. A pool that gives up affects only its
 * client; the command server and other clients go on.
 *
 * Workers are processes (relay_worker.h): posix_spawn of /proc/self/exe with
 * `--relay-worker <slot>`, the channel being one end of a socketpair dup'ed to fd 3. Only
 * exec runs in the child before the new image, so spawning from this thread of a threaded
 * process is safe (no malloc/locks after fork), and a worker's crash (abort, segfault) is
 * contained. Death is seen without signals: each worker's pidfd (pidfd_open) sits in the
 * loop and turns readable when the process ends; we reap exactly that pid (never
 * waitpid(-1): other modules' children are not ours). A death is handled once both the pid
 * is reaped and the channel has reached EOF, so every answer the worker wrote before dying
 * is consumed first.
 *
 * Supervisor. On a death the worker is restarted at once in the same slot, unless more than
 * HERALD_RELAY_MAX_RESTARTS deaths happened within HERALD_RELAY_RESTART_PERIOD_MS (OTP's
 * intensity/period): then the pool gives up, which is logged and written to the client, and
 * the session ends (the connection stays open for commands).
 *
 * Delivery. Each upstream numbers its events (seq). A worker answers in request order, so
 * the answer for a frame is the first item of that worker's in-flight list. Items stay in
 * their upstream's ordered queue until delivered; lines are written only from the front, so
 * the client sees each upstream's tweets in upstream order whatever worker formatted them.
 * When a worker dies, its in-flight items are sent again to live workers — except the first
 * one when it is the panic message (the one that killed it), which is dropped. An item that
 * took MAX_ATTEMPTS workers down is dropped as a poison message (logged). Malformed data
 * (invalid JSON, no message.tweet.text: the worker says so; an event above
 * MAX_EVENT_BYTES: the parser skips it) is logged, counted and skipped.
 *
 * A worker that owes an answer for WORKER_STUCK_MS (a hang rather than a crash) is killed,
 * which the supervisor handles like any other death.
 *
 * Flow control: an upstream stops being read while it has UPSTREAM_MAX_PENDING undelivered
 * items, or while its client has more than CLIENT_OUT_HIGH bytes unwritten. At most
 * MAX_SESSIONS clients stream at once (each costs a pool of processes).
 *
 * Upstreams reconnect with exponential backoff (BACKOFF_MIN_MS doubling to BACKOFF_MAX_MS,
 * reset by a good response) after an error, an end of stream or UPSTREAM_IDLE_MS of silence,
 * sending Last-Event-ID when the upstream gave ids (the emulator resumes after it). The
 * upstream's host name is looked up on h2o's getaddrinfo threads (h2o_hostinfo_getaddr, up to
 * LOOKUP_THREADS of them), never on this loop: a slow name delays its own upstream, and others
 * only once every thread is waiting on a slow one.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>

#include "config.h"
#include "log.h"
#include "net.h"
#include "metrics.h"
#include "modules.h"
#include "relay_worker.h"
#include "sse_parser.h"
#include "strbuf.h"
#include "timer.h"

#define MODULE "relay"
#define MAX_EVENT_BYTES (256 * 1024) /* bigger upstream events are skipped */
#define MAX_HEAD_BYTES 16384
#define MAX_COMMAND_LINE 1024
#define UPSTREAM_IDLE_MS 20000       /* silence (no byte, no heartbeat) before reconnecting */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_ATTEMPTS 3
#define LOOKUP_THREADS 4             /* h2o getaddrinfo threads: one slow name does not queue the others */
#define UPSTREAM_MAX_PENDING 4096
#define CLIENT_OUT_HIGH (1u << 20)
#define CLIENT_OUT_LOW (256u << 10)
#define WORKER_STUCK_MS 10000        /* a worker silent this long on a tweet is killed (and restarted) */
#define MAX_SESSIONS 64              /* streaming clients at once (each costs a pool of processes) */

extern char **environ;

/* ---- state ---- */

struct upstream_url {
    char *url, *host, *port, *path;
};

enum item_state { ITEM_QUEUED, ITEM_INFLIGHT, ITEM_DONE, ITEM_DROPPED };

struct item {
    h2o_linklist_t link; /* in a worker's in-flight list or the session's queue */
    uint64_t seq;
    uint32_t up;
    int state, attempts;
    char *data; /* until answered */
    size_t len;
    char *line; /* when DONE */
    size_t line_len;
    char sse_id[24]; /* the upstream's id: field (truncated), for logs */
};

struct session;

/* A name lookup in flight. Every lookup handed to h2o's thread is answered exactly once (so the
 * relay can count them before it shuts down); one whose upstream went away meanwhile is
 * answered to nobody (u == NULL). */
struct lookup {
    struct upstream *u;
};

enum upstream_state { UP_IDLE, UP_RESOLVING, UP_CONNECTING, UP_HEAD, UP_BODY };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

struct upstream {
    struct session *s;
    uint32_t index;
    const struct upstream_url *url;
    h2o_socket_t *sock;
    struct lookup *lookup; /* the name lookup in flight (UP_RESOLVING) */
    int state, reading, chunked, cstate;
    uint64_t cremain;
    hs_strbuf_t req, cline;
    hs_sse_parser_t parser;
    hs_timer_t retry_timer, idle_timer;
    int backoff_ms;
    unsigned attempt; /* which of the host's addresses to try next (advanced by a failed connect) */
    uint64_t next_seq;
    struct item **ring; /* undelivered items, in seq order */
    size_t ring_cap, ring_head, ring_count;
};

struct worker {
    struct session *s;
    int slot;
    pid_t pid;
    h2o_socket_t *chan, *pidsock;
    int reaped, status;
    h2o_linklist_t inflight;
    hs_timer_t watchdog; /* armed while the worker owes an answer */
    hs_strbuf_t wbuf[2]; /* [wcur] collects frames while the other is being written */
    int wcur, writing;
};

struct client;

struct session {
    struct client *client;
    struct upstream *ups;
    size_t nups;
    struct worker *workers;
    int nworkers;
    size_t rr;
    h2o_linklist_t queue; /* items waiting for a live worker */
    uint64_t *deaths;     /* ring of death times (ms), max_restarts + 1 */
    size_t ndeaths, deaths_head;
    int client_paused;
};

struct client {
    h2o_linklist_t link;
    h2o_socket_t *sock;
    hs_strbuf_t out[2];
    int cur, writing, closing;
    struct session *session;
};

static struct {
    int running;
    pthread_t thread;
    int listen_fd, wake[2];
    _Atomic int stop;
    h2o_evloop_t *loop;
    h2o_socket_t *listener, *waker;
    /* name lookups run on h2o's getaddrinfo thread (h2o_hostinfo_getaddr) and answer on this
     * queue of the relay's loop, so a slow DNS never stalls the loop */
    h2o_multithread_queue_t *lookups;
    h2o_multithread_receiver_t lookup_receiver;
    int lookups_out; /* lookups dispatched whose answer has not come back (abandoned ones too) */
    h2o_linklist_t clients;
    struct upstream_url *urls;
    size_t nurls;
    int nsessions;
} relay = {.listen_fd = -1, .wake = {-1, -1}};

/* pool state for /metrics (written on the relay thread, read by the metrics writer) */
static _Atomic int64_t m_pools_running, m_pools_given_up, m_workers_alive, m_inflight, m_panics, m_deaths_signal,
    m_deaths_exit, m_poison, m_upstreams_connected;

static void client_write(struct client *c, const char *s, size_t len);
static void session_destroy(struct session *s);
static void upstream_update_reading(struct upstream *u);
static void dispatch(struct session *s, struct item *it);
static void worker_flush(struct worker *w);

/* ---- per-upstream ordered queue ---- */

static void ring_push(struct upstream *u, struct item *it)
{
    if (u->ring_count == u->ring_cap) {
        size_t cap = u->ring_cap ? u->ring_cap * 2 : 256;
        struct item **r = malloc(cap * sizeof(*r));
        if (r == NULL)
            abort();
        for (size_t i = 0; i < u->ring_count; i++)
            r[i] = u->ring[(u->ring_head + i) % u->ring_cap];
        free(u->ring);
        u->ring = r;
        u->ring_cap = cap;
        u->ring_head = 0;
    }
    u->ring[(u->ring_head + u->ring_count++) % u->ring_cap] = it;
}

static void item_free(struct item *it)
{
    free(it->data);
    free(it->line);
    free(it);
}

/* deliver writes the answered items at the front of u's queue, in order. */
static void deliver(struct upstream *u)
{
    struct client *c = u->s->client;
    while (u->ring_count > 0) {
        struct item *it = u->ring[u->ring_head];
        if (it->state != ITEM_DONE && it->state != ITEM_DROPPED)
            break;
        if (it->state == ITEM_DONE) {
            hs_strbuf_t *b = &c->out[c->cur];
            hs_strbuf_append(b, it->line, it->line_len);
            hs_strbuf_append(b, "\r\n", 2);
            HS_METRIC_INC(relay_tweets_out_total);
        }
        u->ring_head = (u->ring_head + 1) % u->ring_cap;
        u->ring_count--;
        item_free(it);
    }
    client_write(c, NULL, 0);
    upstream_update_reading(u);
}

static void item_drop(struct session *s, struct item *it)
{
    it->state = ITEM_DROPPED;
    free(it->data);
    it->data = NULL;
    deliver(&s->ups[it->up]);
}

/* ---- workers ---- */

static void on_worker_read(h2o_socket_t *sock, const char *err);
static void on_worker_pid(h2o_socket_t *sock, const char *err);

static int worker_spawn(struct worker *w)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        hs_error(MODULE, "socketpair: %s", strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dflt;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], HS_RELAY_WORKER_FD);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGCHLD);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGHUP);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dflt);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char slot[16];
    snprintf(slot, sizeof(slot), "%d", w->slot);
    char *argv[] = {"herald-sidecar", HS_RELAY_WORKER_FLAG, slot, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(sv[1]);
    if (rc != 0) {
        hs_error(MODULE, "cannot start a worker: %s", strerror(rc));
        close(sv[0]);
        return -1;
    }
    int pidfd = pidfd_open(pid, 0);
    if (pidfd < 0) {
        hs_error(MODULE, "pidfd_open(%d): %s", (int)pid, strerror(errno));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(sv[0]);
        return -1;
    }
    fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    w->pid = pid;
    w->reaped = 0;
    w->status = 0;
    w->writing = 0;
    hs_strbuf_reset(&w->wbuf[0]);
    hs_strbuf_reset(&w->wbuf[1]);
    h2o_linklist_init_anchor(&w->inflight);
    w->chan = h2o_evloop_socket_create(relay.loop, sv[0], 0);
    w->chan->data = w;
    h2o_socket_read_start(w->chan, on_worker_read);
    w->pidsock = h2o_evloop_socket_create(relay.loop, pidfd, H2O_SOCKET_FLAG_DONT_READ);
    w->pidsock->data = w;
    h2o_socket_read_start(w->pidsock, on_worker_pid);
    atomic_fetch_add(&m_workers_alive, 1);
    hs_debug(MODULE, "worker %d started (pid %d)", w->slot, (int)pid);
    return 0;
}

static int worker_live(struct worker *w)
{
    return w->chan != NULL && !w->reaped;
}

static void on_worker_write(h2o_socket_t *sock, const char *err)
{
    struct worker *w = sock->data;
    w->writing = 0;
    if (err != NULL)
        return; /* the worker is gone: EOF and the pidfd will tell */
    worker_flush(w);
}

static void worker_flush(struct worker *w)
{
    if (w->writing || w->chan == NULL || w->wbuf[w->wcur].len == 0)
        return;
    hs_strbuf_t *b = hs_strbuf_flip(w->wbuf, &w->wcur);
    h2o_iovec_t buf = h2o_iovec_init(b->base, b->len);
    w->writing = 1;
    h2o_socket_write(w->chan, &buf, 1, on_worker_write);
}

static void on_watchdog(hs_timer_t *t)
{
    struct worker *w = H2O_STRUCT_FROM_MEMBER(struct worker, watchdog, t);
    if (w->pid > 0 && !w->reaped) {
        hs_warn(MODULE, "worker %d (pid %d) silent for %d ms on a tweet: killing it", w->slot, (int)w->pid, WORKER_STUCK_MS);
        kill(w->pid, SIGKILL);
    }
}

static void worker_send(struct worker *w, struct item *it)
{
    hs_relay_frame_hdr_t h = {.len = (uint32_t)it->len, .upstream = it->up, .seq = it->seq};
    hs_strbuf_t *b = &w->wbuf[w->wcur];
    hs_strbuf_append(b, (const char *)&h, sizeof(h));
    hs_strbuf_append(b, it->data, it->len);
    it->state = ITEM_INFLIGHT;
    if (h2o_linklist_is_empty(&w->inflight))
        hs_timer_start(relay.loop, &w->watchdog, WORKER_STUCK_MS, on_watchdog);
    h2o_linklist_insert(&w->inflight, &it->link);
    atomic_fetch_add(&m_inflight, 1);
    worker_flush(w);
}

static void dispatch(struct session *s, struct item *it)
{
    for (int k = 0; k < s->nworkers; k++) {
        struct worker *w = &s->workers[(s->rr + (size_t)k) % (size_t)s->nworkers];
        if (worker_live(w)) {
            s->rr = (s->rr + (size_t)k + 1) % (size_t)s->nworkers;
            worker_send(w, it);
            return;
        }
    }
    it->state = ITEM_QUEUED;
    h2o_linklist_insert(&s->queue, &it->link);
}

static void dispatch_queue(struct session *s)
{
    h2o_linklist_t q;
    h2o_linklist_init_anchor(&q);
    h2o_linklist_insert_list(&q, &s->queue);
    while (!h2o_linklist_is_empty(&q)) {
        struct item *it = H2O_STRUCT_FROM_MEMBER(struct item, link, q.next);
        h2o_linklist_unlink(&it->link);
        dispatch(s, it);
    }
}

/* worker_kill_now ends a worker we no longer want (session teardown): SIGKILL and reap. */
static void worker_kill_now(struct worker *w)
{
    hs_timer_stop(&w->watchdog);
    if (w->chan != NULL) {
        h2o_socket_close(w->chan);
        w->chan = NULL;
    }
    if (w->pidsock != NULL) {
        h2o_socket_close(w->pidsock);
        w->pidsock = NULL;
    }
    if (w->pid > 0 && !w->reaped) {
        kill(w->pid, SIGKILL);
        while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        atomic_fetch_sub(&m_workers_alive, 1);
    }
    w->reaped = 1;
    w->pid = 0;
}

static void give_up(struct session *s, size_t deaths)
{
    struct client *c = s->client;
    hs_error(MODULE, "worker pool of client %p gave up: %zu restarts within %d ms (limit %d)", (void *)c, deaths,
             hs_config.relay_restart_period_ms, hs_config.relay_max_restarts);
    atomic_fetch_add(&m_pools_given_up, 1);
    char msg[256];
    int n = snprintf(msg, sizeof(msg),
                     "[Supervisor] worker pool gave up: %zu restarts within %d ms (limit %d); tweets stopped\r\n", deaths,
                     hs_config.relay_restart_period_ms, hs_config.relay_max_restarts);
    session_destroy(s);
    client_write(c, msg, (size_t)n);
}

/* worker_died runs once the pid is reaped and the channel drained: requeue, then restart. */
static void worker_died(struct worker *w)
{
    struct session *s = w->s;
    int st = w->status;
    hs_timer_stop(&w->watchdog);
    atomic_fetch_sub(&m_workers_alive, 1);
    if (WIFSIGNALED(st))
        atomic_fetch_add(&m_deaths_signal, 1);
    else
        atomic_fetch_add(&m_deaths_exit, 1);

    /* Take the in-flight items; the first one is what the worker was working on. */
    h2o_linklist_t q;
    h2o_linklist_init_anchor(&q);
    h2o_linklist_insert_list(&q, &w->inflight);
    int first = 1, panic = 0;
    size_t resend = 0;
    while (!h2o_linklist_is_empty(&q)) {
        struct item *it = H2O_STRUCT_FROM_MEMBER(struct item, link, q.next);
        h2o_linklist_unlink(&it->link);
        atomic_fetch_sub(&m_inflight, 1);
        if (first && hs_relay_is_panic(it->data, it->len)) {
            panic = 1;
            atomic_fetch_add(&m_panics, 1);
            item_drop(s, it);
        } else if (first && ++it->attempts >= MAX_ATTEMPTS) {
            hs_warn(MODULE, "%s: event (id %s) dropped: %d workers died handling it", s->ups[it->up].url->url,
                    it->sse_id, it->attempts);
            atomic_fetch_add(&m_poison, 1);
            item_drop(s, it);
        } else {
            h2o_linklist_insert(&s->queue, &it->link); /* re-sent below (or freed with the session) */
            resend++;
        }
        first = 0;
    }
    hs_info(MODULE, "worker %d (pid %d) %s %d%s; %zu in-flight tweets re-sent", w->slot, (int)w->pid,
            WIFSIGNALED(st) ? "killed by signal" : "exited with", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
            panic ? " (panic message)" : "", resend);
    w->pid = 0;

    /* Intensity: more than max_restarts deaths within the period ⇒ give up on the pool. */
    uint64_t now = hs_now_ms();
    size_t cap = (size_t)hs_config.relay_max_restarts + 1;
    s->deaths[(s->deaths_head + s->ndeaths) % cap] = now;
    if (s->ndeaths < cap)
        s->ndeaths++;
    else
        s->deaths_head = (s->deaths_head + 1) % cap;
    size_t recent = 0;
    for (size_t i = 0; i < s->ndeaths; i++)
        if (now - s->deaths[(s->deaths_head + i) % cap] <= (uint64_t)hs_config.relay_restart_period_ms)
            recent++;
    if (recent > (size_t)hs_config.relay_max_restarts) {
        give_up(s, recent);
        return;
    }
    if (worker_spawn(w) != 0) {
        give_up(s, recent);
        return;
    }
    HS_METRIC_INC(relay_worker_restarts_total);
    dispatch_queue(s);
}

static void worker_maybe_died(struct worker *w)
{
    if (w->chan == NULL && w->reaped && w->pid > 0)
        worker_died(w);
}

static void worker_close_channel(struct worker *w)
{
    h2o_socket_close(w->chan);
    w->chan = NULL;
    w->writing = 0;
    if (!w->reaped)
        kill(w->pid, SIGKILL); /* closed its channel: it is dying or broken; make sure */
    worker_maybe_died(w);
}

static void on_worker_read(h2o_socket_t *sock, const char *err)
{
    struct worker *w = sock->data;
    if (err != NULL) {
        worker_close_channel(w);
        return;
    }
    struct session *s = w->s;
    while (sock->input->size >= sizeof(hs_relay_frame_hdr_t)) {
        hs_relay_frame_hdr_t h;
        memcpy(&h, sock->input->bytes, sizeof(h));
        struct item *it = h2o_linklist_is_empty(&w->inflight) ? NULL
                                                              : H2O_STRUCT_FROM_MEMBER(struct item, link, w->inflight.next);
        if (h.len < 1 || h.len > HS_RELAY_FRAME_MAX || it == NULL || it->seq != h.seq || it->up != h.upstream) {
            hs_error(MODULE, "worker %d (pid %d) broke the protocol; killing it", w->slot, (int)w->pid);
            worker_close_channel(w);
            return;
        }
        if (sock->input->size < sizeof(h) + h.len)
            break;
        const char *p = sock->input->bytes + sizeof(h);
        int status = (unsigned char)p[0];
        h2o_linklist_unlink(&it->link);
        if (h2o_linklist_is_empty(&w->inflight))
            hs_timer_stop(&w->watchdog);
        else
            hs_timer_start(relay.loop, &w->watchdog, WORKER_STUCK_MS, on_watchdog);
        atomic_fetch_sub(&m_inflight, 1);
        if (status == HS_RELAY_OK) {
            it->line_len = h.len - 1;
            if ((it->line = malloc(it->line_len + 1)) == NULL)
                abort();
            memcpy(it->line, p + 1, it->line_len);
            it->line[it->line_len] = '\0';
            it->state = ITEM_DONE;
            free(it->data);
            it->data = NULL;
            h2o_buffer_consume(&sock->input, sizeof(h) + h.len);
            deliver(&s->ups[it->up]);
        } else {
            HS_METRIC_INC(relay_malformed_total);
            hs_warn(MODULE, "%s: event (id %s) skipped: %.*s", s->ups[it->up].url->url, it->sse_id,
                    (int)(h.len - 1 > 200 ? 200 : h.len - 1), p + 1);
            h2o_buffer_consume(&sock->input, sizeof(h) + h.len);
            item_drop(s, it);
        }
    }
}

static void on_worker_pid(h2o_socket_t *sock, const char *err)
{
    struct worker *w = sock->data;
    int st;
    pid_t r = waitpid(w->pid, &st, WNOHANG);
    if (r == 0)
        return; /* spurious */
    if (r < 0 && errno == EINTR)
        return;
    w->reaped = 1;
    w->status = r < 0 ? 0 : st;
    h2o_socket_close(w->pidsock);
    w->pidsock = NULL;
    worker_maybe_died(w); /* else: wait for the channel's EOF (answers written before death first) */
}

/* ---- upstream receivers ---- */

static void upstream_connect(struct upstream *u);

static void upstream_close_sock(struct upstream *u)
{
    if (u->lookup != NULL) {
        u->lookup->u = NULL; /* abandoned: its answer still comes back, to nobody */
        u->lookup = NULL;
    }
    if (u->sock != NULL) {
        if (u->state == UP_BODY)
            atomic_fetch_sub(&m_upstreams_connected, 1);
        h2o_socket_close(u->sock);
        u->sock = NULL;
    }
    u->state = UP_IDLE;
    u->reading = 0;
    hs_timer_stop(&u->idle_timer);
}

static void on_retry_timer(hs_timer_t *t)
{
    struct upstream *u = H2O_STRUCT_FROM_MEMBER(struct upstream, retry_timer, t);
    HS_METRIC_INC(relay_upstream_reconnects_total);
    upstream_connect(u);
}

static void upstream_fail(struct upstream *u, const char *why)
{
    upstream_close_sock(u);
    int delay = u->backoff_ms + (rand() % 4) * 25; /* small jitter, few distinct timer durations */
    hs_warn(MODULE, "%s: %s; reconnecting in %d ms", u->url->url, why, delay);
    u->backoff_ms = u->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : u->backoff_ms * 2;
    hs_timer_start(relay.loop, &u->retry_timer, (uint64_t)delay, on_retry_timer);
}

static void on_idle_timer(hs_timer_t *t)
{
    struct upstream *u = H2O_STRUCT_FROM_MEMBER(struct upstream, idle_timer, t);
    upstream_fail(u, "silent for too long");
}

static void on_sse_event(void *ctx, const hs_sse_event_t *ev)
{
    struct upstream *u = ctx;
    struct item *it = calloc(1, sizeof(*it));
    if (it == NULL || (it->data = malloc(ev->data_len + 1)) == NULL)
        abort();
    memcpy(it->data, ev->data, ev->data_len);
    it->data[ev->data_len] = '\0';
    it->len = ev->data_len;
    snprintf(it->sse_id, sizeof(it->sse_id), "%s", ev->id[0] ? ev->id : "-");
    it->up = u->index;
    it->seq = u->next_seq++;
    HS_METRIC_INC(relay_tweets_in_total);
    ring_push(u, it);
    dispatch(u->s, it);
}

static void on_sse_skip(void *ctx, const char *reason, size_t bytes)
{
    struct upstream *u = ctx;
    HS_METRIC_INC(relay_malformed_total);
    hs_warn(MODULE, "%s: event skipped: %s (%zu bytes, limit %d)", u->url->url, reason, bytes, MAX_EVENT_BYTES);
}

/* feed_chunked decodes Transfer-Encoding: chunked into the SSE parser; 1 = stream ended, -1 = bad. */
static int feed_chunked(struct upstream *u, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        switch (u->cstate) {
        case CH_DATA: {
            size_t take = n - i < u->cremain ? n - i : (size_t)u->cremain;
            hs_sse_parser_feed(&u->parser, p + i, take);
            i += take;
            if ((u->cremain -= take) == 0)
                u->cstate = CH_DATA_END;
            break;
        }
        case CH_DATA_END:
            if (p[i] == '\n')
                u->cstate = CH_SIZE;
            else if (p[i] != '\r')
                return -1;
            i++;
            break;
        case CH_SIZE:
        case CH_TRAILER:
            if (p[i] != '\n') {
                if (u->cline.len > 256)
                    return -1;
                hs_strbuf_append(&u->cline, p + i++, 1);
                break;
            }
            i++;
            if (u->cline.len > 0 && u->cline.base[u->cline.len - 1] == '\r')
                u->cline.base[--u->cline.len] = '\0';
            if (u->cstate == CH_TRAILER) {
                if (u->cline.len == 0)
                    return 1;
            } else {
                char *end;
                if (u->cline.len == 0)
                    return -1;
                unsigned long long size = strtoull(u->cline.base, &end, 16);
                if (end == u->cline.base || (*end != '\0' && *end != ';' && *end != ' '))
                    return -1;
                if (size == 0) {
                    u->cstate = CH_TRAILER;
                } else {
                    u->cremain = size;
                    u->cstate = CH_DATA;
                }
            }
            hs_strbuf_reset(&u->cline);
            break;
        }
    }
    return 0;
}

/* parse_head reads the response head; returns its length, 0 if incomplete, -1 if refused. */
static long parse_head(struct upstream *u, const char *p, size_t n)
{
    const char *end = NULL;
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] == '\n' && (p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n'))) {
            end = p + i + (p[i + 1] == '\n' ? 2 : 3);
            break;
        }
    }
    if (end == NULL)
        return n > MAX_HEAD_BYTES ? -1 : 0;
    int status = 0, minor = 0;
    char first[64]; /* the status line, NUL-terminated for sscanf (the input buffer is not) */
    size_t flen = (size_t)((const char *)memchr(p, '\n', (size_t)(end - p)) - p);
    if (flen >= sizeof(first))
        flen = sizeof(first) - 1;
    memcpy(first, p, flen);
    first[flen] = '\0';
    if (sscanf(first, "HTTP/1.%d %d", &minor, &status) != 2) {
        hs_warn(MODULE, "%s: not an HTTP/1 response", u->url->url);
        return -1;
    }
    int sse = 0;
    u->chunked = 0;
    const char *line = (const char *)memchr(p, '\n', (size_t)(end - p)) + 1;
    while (line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        size_t len = (size_t)(eol - line);
        if (len > 0 && line[len - 1] == '\r')
            len--;
        const char *colon = memchr(line, ':', len);
        if (colon != NULL) {
            size_t nlen = (size_t)(colon - line);
            const char *v = colon + 1;
            while (v < line + len && (*v == ' ' || *v == '\t'))
                v++;
            size_t vlen = (size_t)(line + len - v);
            if (nlen == 12 && strncasecmp(line, "content-type", 12) == 0 && vlen >= 17 &&
                strncasecmp(v, "text/event-stream", 17) == 0)
                sse = 1;
            if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0 && vlen >= 7 &&
                strncasecmp(v + vlen - 7, "chunked", 7) == 0)
                u->chunked = 1;
        }
        line = eol + 1;
    }
    if (status != 200) {
        hs_warn(MODULE, "%s: HTTP status %d", u->url->url, status);
        return -1;
    }
    if (!sse) {
        hs_warn(MODULE, "%s: not a text/event-stream response", u->url->url);
        return -1;
    }
    return end - p;
}

static void on_upstream_read(h2o_socket_t *sock, const char *err)
{
    struct upstream *u = sock->data;
    if (err != NULL) {
        upstream_fail(u, u->state == UP_BODY ? "stream closed" : "connection closed before the response");
        return;
    }
    hs_timer_start(relay.loop, &u->idle_timer, UPSTREAM_IDLE_MS, on_idle_timer);
    if (u->state == UP_HEAD) {
        long head = parse_head(u, sock->input->bytes, sock->input->size);
        if (head == 0)
            return;
        if (head < 0) {
            upstream_fail(u, "bad response");
            return;
        }
        h2o_buffer_consume(&sock->input, (size_t)head);
        u->state = UP_BODY;
        u->cstate = CH_SIZE;
        hs_strbuf_reset(&u->cline);
        u->backoff_ms = BACKOFF_MIN_MS;
        atomic_fetch_add(&m_upstreams_connected, 1);
        const char *id = hs_sse_parser_last_id(&u->parser);
        hs_info(MODULE, "%s: streaming%s%s", u->url->url, id[0] ? " after event id " : "", id);
        hs_sse_parser_reset_stream(&u->parser);
    }
    size_t n = sock->input->size;
    if (n == 0)
        return;
    int rc = 0;
    if (u->chunked) {
        rc = feed_chunked(u, sock->input->bytes, n);
    } else {
        hs_sse_parser_feed(&u->parser, sock->input->bytes, n);
    }
    h2o_buffer_consume(&sock->input, n);
    if (rc != 0)
        upstream_fail(u, rc > 0 ? "stream ended" : "bad chunked encoding");
}

static void upstream_update_reading(struct upstream *u)
{
    if (u->sock == NULL || u->state < UP_HEAD)
        return;
    int want = !u->s->client_paused && u->ring_count < UPSTREAM_MAX_PENDING;
    if (want && !u->reading) {
        h2o_socket_read_start(u->sock, on_upstream_read);
        hs_timer_start(relay.loop, &u->idle_timer, UPSTREAM_IDLE_MS, on_idle_timer);
        u->reading = 1;
    } else if (!want && u->reading) {
        h2o_socket_read_stop(u->sock);
        hs_timer_stop(&u->idle_timer);
        u->reading = 0;
    }
}

static void on_request_written(h2o_socket_t *sock, const char *err)
{
    if (err != NULL) {
        upstream_fail(sock->data, "cannot send the request");
        return;
    }
}

static void on_upstream_connect(h2o_socket_t *sock, const char *err)
{
    struct upstream *u = sock->data;
    if (err != NULL) {
        u->attempt++;
        upstream_fail(u, err);
        return;
    }
    u->state = UP_HEAD;
    hs_strbuf_reset(&u->req);
    hs_strbuf_printf(&u->req,
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
                     "User-Agent: herald-relay\r\n",
                     u->url->path, u->url->host, u->url->port);
    const char *id = hs_sse_parser_last_id(&u->parser);
    if (id[0] != '\0')
        hs_strbuf_printf(&u->req, "Last-Event-ID: %s\r\n", id);
    hs_strbuf_appends(&u->req, "\r\n");
    h2o_iovec_t buf = h2o_iovec_init(u->req.base, u->req.len);
    h2o_socket_write(sock, &buf, 1, on_request_written);
    u->reading = 0;
    upstream_update_reading(u);
}

/* on_resolved connects to one of the upstream host's addresses: IPv4 first ("localhost" often
 * lists ::1 first while servers listen on 127.0.0.1); a failed connect moves on to the next
 * address for the following attempt. h2o frees res after this returns. */
static void on_resolved(h2o_hostinfo_getaddr_req_t *req, const char *errstr, struct addrinfo *res, void *data)
{
    struct lookup *l = data;
    struct upstream *u = l->u;
    relay.lookups_out--;
    free(l);
    if (u == NULL)
        return;
    u->lookup = NULL;
    if (errstr != NULL || res == NULL) {
        upstream_fail(u, errstr != NULL ? errstr : "no address");
        return;
    }
    struct addrinfo *list[16];
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (struct addrinfo *a = res; a != NULL && n < 16; a = a->ai_next)
            if ((a->ai_family == AF_INET) == (pass == 0))
                list[n++] = a;
    struct addrinfo *a = list[u->attempt % n];
    u->sock = h2o_socket_connect(relay.loop, a->ai_addr, a->ai_addrlen, on_upstream_connect);
    if (u->sock == NULL) {
        u->attempt++;
        upstream_fail(u, strerror(errno));
        return;
    }
    u->sock->data = u;
    u->state = UP_CONNECTING;
}

static void upstream_connect(struct upstream *u)
{
    const char *host = u->url->host, *port = u->url->port;
    struct lookup *l = malloc(sizeof(*l));
    if (l == NULL)
        abort();
    l->u = u;
    u->lookup = l;
    u->state = UP_RESOLVING;
    relay.lookups_out++;
    h2o_hostinfo_getaddr(&relay.lookup_receiver, h2o_iovec_init(host, strlen(host)), h2o_iovec_init(port, strlen(port)), AF_UNSPEC,
                         SOCK_STREAM, IPPROTO_TCP, AI_NUMERICSERV, on_resolved, l);
}

/* ---- sessions ---- */

static struct session *session_create(struct client *c)
{
    struct session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        abort();
    s->client = c;
    h2o_linklist_init_anchor(&s->queue);
    s->nworkers = hs_config.relay_workers > 0 ? hs_config.relay_workers : 1;
    s->workers = calloc((size_t)s->nworkers, sizeof(*s->workers));
    s->deaths = calloc((size_t)hs_config.relay_max_restarts + 1, sizeof(*s->deaths));
    s->nups = relay.nurls;
    s->ups = calloc(s->nups ? s->nups : 1, sizeof(*s->ups));
    if (s->workers == NULL || s->deaths == NULL || s->ups == NULL)
        abort();
    atomic_fetch_add(&m_pools_running, 1);
    relay.nsessions++;
    for (int i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        w->s = s;
        w->slot = i + 1;
        h2o_linklist_init_anchor(&w->inflight);
        if (worker_spawn(w) != 0) {
            w->reaped = 1; /* an empty slot */
        }
    }
    for (size_t i = 0; i < s->nups; i++) {
        struct upstream *u = &s->ups[i];
        u->s = s;
        u->index = (uint32_t)i;
        u->url = &relay.urls[i];
        u->backoff_ms = BACKOFF_MIN_MS;
        u->next_seq = 1;
        hs_sse_parser_init(&u->parser, MAX_EVENT_BYTES, on_sse_event, on_sse_skip, u);
        upstream_connect(u);
    }
    hs_info(MODULE, "client %p: streaming from %zu upstreams with %d workers", (void *)c, s->nups, s->nworkers);
    return s;
}

static void session_destroy(struct session *s)
{
    for (int i = 0; i < s->nworkers; i++)
        worker_kill_now(&s->workers[i]);
    for (size_t i = 0; i < s->nups; i++) {
        struct upstream *u = &s->ups[i];
        upstream_close_sock(u);
        hs_timer_stop(&u->retry_timer);
        hs_sse_parser_dispose(&u->parser);
        hs_strbuf_free(&u->req);
        hs_strbuf_free(&u->cline);
        for (size_t k = 0; k < u->ring_count; k++) {
            struct item *it = u->ring[(u->ring_head + k) % u->ring_cap];
            if (it->state == ITEM_INFLIGHT)
                atomic_fetch_sub(&m_inflight, 1);
            item_free(it);
        }
        free(u->ring);
    }
    for (int i = 0; i < s->nworkers; i++) {
        hs_strbuf_free(&s->workers[i].wbuf[0]);
        hs_strbuf_free(&s->workers[i].wbuf[1]);
    }
    atomic_fetch_sub(&m_pools_running, 1);
    relay.nsessions--;
    s->client->session = NULL;
    free(s->ups);
    free(s->workers);
    free(s->deaths);
    free(s);
}

/* ---- the command server ---- */

static void client_destroy(struct client *c)
{
    if (c->session != NULL)
        session_destroy(c->session);
    h2o_socket_close(c->sock);
    h2o_linklist_unlink(&c->link);
    hs_strbuf_free(&c->out[0]);
    hs_strbuf_free(&c->out[1]);
    HS_METRIC_DEC(relay_clients_open);
    free(c);
}

static void set_client_paused(struct client *c, int paused)
{
    struct session *s = c->session;
    if (s == NULL || s->client_paused == paused)
        return;
    s->client_paused = paused;
    for (size_t i = 0; i < s->nups; i++)
        upstream_update_reading(&s->ups[i]);
}

static void on_client_written(h2o_socket_t *sock, const char *err)
{
    struct client *c = sock->data;
    c->writing = 0;
    if (err != NULL) {
        client_destroy(c);
        return;
    }
    client_write(c, NULL, 0);
}

/* client_write appends s (if any) and starts a write when none is in flight. */
static void client_write(struct client *c, const char *s, size_t len)
{
    if (len > 0)
        hs_strbuf_append(&c->out[c->cur], s, len);
    size_t pending = c->out[c->cur].len;
    if (!c->writing && pending > 0) {
        hs_strbuf_t *b = hs_strbuf_flip(c->out, &c->cur);
        h2o_iovec_t buf = h2o_iovec_init(b->base, b->len);
        c->writing = 1;
        h2o_socket_write(c->sock, &buf, 1, on_client_written);
        pending = 0;
    }
    if (pending > CLIENT_OUT_HIGH)
        set_client_paused(c, 1);
    else if (pending < CLIENT_OUT_LOW)
        set_client_paused(c, 0);
    if (c->closing && !c->writing)
        client_destroy(c);
}

static void run_command(struct client *c, const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
        len--;
    while (len > 0 && (*line == ' ' || *line == '\t'))
        line++, len--;
    if (len == 0)
        return;
    if (len == 7 && memcmp(line, "twitter", 7) == 0) {
        static const char ok[] = "[Command] run :twitter\r\n";
        hs_strbuf_append(&c->out[c->cur], ok, sizeof(ok) - 1);
        if (c->session == NULL && relay.nsessions >= MAX_SESSIONS) {
            hs_warn(MODULE, "client %p: refused, %d clients are streaming already", (void *)c, relay.nsessions);
            hs_strbuf_printf(&c->out[c->cur], "[Supervisor] too many streaming clients (%d); try again later\r\n",
                             MAX_SESSIONS);
        } else if (c->session == NULL) {
            c->session = session_create(c);
        }
    } else if (len == 4 && memcmp(line, "quit", 4) == 0) {
        c->closing = 1;
        if (c->session != NULL)
            session_destroy(c->session);
    } else {
        static const char unknown[] = "UNKNOWN COMMAND\r\n";
        hs_strbuf_append(&c->out[c->cur], unknown, sizeof(unknown) - 1);
    }
}

static void on_client_read(h2o_socket_t *sock, const char *err)
{
    struct client *c = sock->data;
    if (err != NULL) {
        client_destroy(c);
        return;
    }
    while (!c->closing && sock->input->size > 0) {
        char *nl = memchr(sock->input->bytes, '\n', sock->input->size);
        if (nl == NULL)
            break;
        size_t n = (size_t)(nl - sock->input->bytes);
        run_command(c, sock->input->bytes, n);
        h2o_buffer_consume(&sock->input, n + 1);
    }
    if (!c->closing && sock->input->size > MAX_COMMAND_LINE) {
        h2o_buffer_consume(&sock->input, sock->input->size);
        run_command(c, "?", 1);
    }
    if (c->closing)
        h2o_socket_read_stop(sock);
    client_write(c, NULL, 0); /* may destroy c (quit) */
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            return;
        struct client *c = calloc(1, sizeof(*c));
        if (c == NULL)
            abort();
        c->sock = sock;
        sock->data = c;
        h2o_linklist_insert(&relay.clients, &c->link);
        HS_METRIC_INC(relay_clients_open);
        h2o_socket_read_start(sock, on_client_read);
    }
}

/* ---- thread, start, stop ---- */

static void on_wake(h2o_socket_t *sock, const char *err)
{
    char buf[64];
    while (read(relay.wake[0], buf, sizeof(buf)) > 0)
        ;
}

static void *relay_main(void *arg)
{
    h2o_hostinfo_max_threads = LOOKUP_THREADS;
    relay.loop = h2o_evloop_create();
    relay.lookups = h2o_multithread_create_queue(relay.loop);
    h2o_multithread_register_receiver(relay.lookups, &relay.lookup_receiver, h2o_hostinfo_getaddr_receiver);
    h2o_linklist_init_anchor(&relay.clients);
    relay.listener = h2o_evloop_socket_create(relay.loop, relay.listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(relay.listener, on_accept);
    relay.waker = h2o_evloop_socket_create(relay.loop, relay.wake[0], H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(relay.waker, on_wake);
    while (!atomic_load(&relay.stop))
        h2o_evloop_run(relay.loop, INT32_MAX);
    while (!h2o_linklist_is_empty(&relay.clients))
        client_destroy(H2O_STRUCT_FROM_MEMBER(struct client, link, relay.clients.next));
    h2o_socket_close(relay.listener);
    h2o_socket_close(relay.waker); /* closes wake[0] */
    relay.wake[0] = -1;
    /* every lookup is answered, abandoned ones too: wait for those answers (a while) before
     * the queue goes; a lookup still hanging then keeps the queue (the process ends) */
    for (int i = 0; i < 200 && relay.lookups_out > 0; i++)
        h2o_evloop_run(relay.loop, 10);
    if (relay.lookups_out == 0) {
        h2o_multithread_unregister_receiver(relay.lookups, &relay.lookup_receiver);
        h2o_multithread_destroy_queue(relay.lookups);
        relay.lookups = NULL;
    } else {
        hs_warn(MODULE, "%d upstream name lookups still running at shutdown", relay.lookups_out);
    }
    h2o_evloop_run(relay.loop, 0);
    hs_timer_dispose_all(relay.loop);
    return NULL;
}

static void metrics_writer(hs_strbuf_t *out)
{
    hs_strbuf_printf(out,
                     "# HELP herald_relay_pools Relay worker pools (one per streaming client) by state\n"
                     "# TYPE herald_relay_pools gauge\n"
                     "herald_relay_pools{state=\"running\"} %lld\n"
                     "# HELP herald_relay_pools_given_up_total Pools stopped by the restart-intensity limit\n"
                     "# TYPE herald_relay_pools_given_up_total counter\n"
                     "herald_relay_pools_given_up_total %lld\n"
                     "# HELP herald_relay_workers_alive Relay worker processes running\n"
                     "# TYPE herald_relay_workers_alive gauge\n"
                     "herald_relay_workers_alive %lld\n"
                     "# HELP herald_relay_worker_deaths_total Relay worker processes that ended, by cause\n"
                     "# TYPE herald_relay_worker_deaths_total counter\n"
                     "herald_relay_worker_deaths_total{cause=\"signal\"} %lld\n"
                     "herald_relay_worker_deaths_total{cause=\"exit\"} %lld\n"
                     "# HELP herald_relay_panics_total Panic messages that crashed a worker (and were dropped)\n"
                     "# TYPE herald_relay_panics_total counter\n"
                     "herald_relay_panics_total %lld\n"
                     "# HELP herald_relay_poison_total Tweets dropped after killing several workers\n"
                     "# TYPE herald_relay_poison_total counter\n"
                     "herald_relay_poison_total %lld\n"
                     "# HELP herald_relay_inflight Tweets handed to workers and not answered yet\n"
                     "# TYPE herald_relay_inflight gauge\n"
                     "herald_relay_inflight %lld\n"
                     "# HELP herald_relay_upstreams_connected Upstream SSE streams currently connected\n"
                     "# TYPE herald_relay_upstreams_connected gauge\n"
                     "herald_relay_upstreams_connected %lld\n",
                     (long long)atomic_load(&m_pools_running), (long long)atomic_load(&m_pools_given_up),
                     (long long)atomic_load(&m_workers_alive), (long long)atomic_load(&m_deaths_signal),
                     (long long)atomic_load(&m_deaths_exit), (long long)atomic_load(&m_panics),
                     (long long)atomic_load(&m_poison), (long long)atomic_load(&m_inflight),
                     (long long)atomic_load(&m_upstreams_connected));
}

/* parse_url accepts http://host[:port][/path]; 0 or -1. */
static int parse_url(const char *s, struct upstream_url *u)
{
    if (strncmp(s, "http://", 7) != 0)
        return -1;
    const char *h = s + 7, *slash = strchr(h, '/'), *end = slash ? slash : h + strlen(h);
    const char *colon = memchr(h, ':', (size_t)(end - h));
    if (h[0] == '[')
        return -1; /* IPv6 literals: not supported */
    const char *hend = colon ? colon : end;
    if (hend == h)
        return -1;
    u->url = strdup(s);
    u->host = strndup(h, (size_t)(hend - h));
    u->port = colon ? strndup(colon + 1, (size_t)(end - colon - 1)) : strdup("80");
    u->path = strdup(slash ? slash : "/");
    return 0;
}

int hs_relay_start(void)
{
    /* upstream URLs */
    char *list = strdup(hs_config.relay_upstreams), *save = NULL;
    for (char *tok = strtok_r(list, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
        struct upstream_url u;
        if (parse_url(tok, &u) != 0) {
            hs_warn(MODULE, "ignoring upstream \"%s\" (only http://host[:port]/path)", tok);
            continue;
        }
        relay.urls = realloc(relay.urls, (relay.nurls + 1) * sizeof(*relay.urls));
        relay.urls[relay.nurls++] = u;
    }
    free(list);

    /* command port */
    char err[256];
    int fd = hs_net_listen(hs_config.host, hs_config.relay_port, 128, err, sizeof(err));
    if (fd < 0) {
        hs_error(MODULE, "%s", err);
        return -1;
    }
    if (pipe2(relay.wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        hs_error(MODULE, "pipe: %s", strerror(errno));
        close(fd);
        return -1;
    }
    relay.listen_fd = fd;
    atomic_store(&relay.stop, 0);
    static int writer_registered;
    if (!writer_registered) {
        hs_metrics_register_writer(metrics_writer);
        writer_registered = 1;
    }
    if (pthread_create(&relay.thread, NULL, relay_main, NULL) != 0) {
        hs_error(MODULE, "cannot start the relay thread");
        return -1;
    }
    relay.running = 1;
    hs_info(MODULE, "tweet relay on %s:%d (%zu upstreams, %d workers per client, at most %d restarts in %d ms)",
            hs_config.host, hs_config.relay_port, relay.nurls, hs_config.relay_workers, hs_config.relay_max_restarts,
            hs_config.relay_restart_period_ms);
    return 0;
}

void hs_relay_stop(void)
{
    if (!relay.running)
        return;
    atomic_store(&relay.stop, 1);
    if (write(relay.wake[1], "x", 1) < 0)
        hs_warn(MODULE, "cannot wake the relay thread: %s", strerror(errno));
    pthread_join(relay.thread, NULL);
    close(relay.wake[1]);
    relay.wake[1] = -1;
    relay.running = 0;
    for (size_t i = 0; i < relay.nurls; i++) {
        free(relay.urls[i].url);
        free(relay.urls[i].host);
        free(relay.urls[i].port);
        free(relay.urls[i].path);
    }
    free(relay.urls);
    relay.urls = NULL;
    relay.nurls = 0;
}
