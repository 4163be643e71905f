/* subscribers.c — see subscribers.h. */
#include "subscribers.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

#define MODULE "streams"
#define REPLAY_SQL "SELECT seq, kind, data FROM herald.replay($1, $2::bigint, $3::int)"
#define REPLAY_LIMIT 500
#define REPLAY_LIMIT_STR "500"
#define RETRY_MS 1000

struct st_hs_stream_t {
    hs_stream_t *next; /* hash chain */
    uint64_t hash;
    char *name;
    int64_t position;  /* last seq delivered to the live list; -1 = not known yet */
    int64_t target;    /* highest seq announced by a doorbell */
    h2o_linklist_t live;
    h2o_linklist_t others; /* waiting for a position, or catching up */
    size_t nsubs;
    int need_fetch;        /* read the outbox even if target <= position (reconnect) */
    int fetching;
    int64_t fetch_target;  /* target when the read in flight was sent */
    hs_pg_query_t *query;
    int delivering;        /* fan-out in progress: do not free */
    hs_timer_t retry;
};

static struct {
    hs_stream_t **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    size_t nsubs;
    h2o_loop_t *loop;
    uint64_t batch;
} reg;

/* ---------------- the hash table ---------------- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static hs_stream_t *lookup(const char *name)
{
    if (reg.nbuckets == 0)
        return NULL;
    uint64_t h = hash_name(name);
    for (hs_stream_t *s = reg.buckets[h & (reg.nbuckets - 1)]; s != NULL; s = s->next)
        if (s->hash == h && strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static void grow(void)
{
    size_t n = reg.nbuckets ? reg.nbuckets * 2 : 64;
    hs_stream_t **b = calloc(n, sizeof(*b));
    if (b == NULL)
        abort();
    for (size_t i = 0; i < reg.nbuckets; i++) {
        hs_stream_t *s = reg.buckets[i];
        while (s != NULL) {
            hs_stream_t *next = s->next;
            s->next = b[s->hash & (n - 1)];
            b[s->hash & (n - 1)] = s;
            s = next;
        }
    }
    free(reg.buckets);
    reg.buckets = b;
    reg.nbuckets = n;
}

static h2o_loop_t *the_loop(void)
{
    return reg.loop;
}

static hs_stream_t *stream_create(const char *name)
{
    if (reg.count + 1 > reg.nbuckets)
        grow();
    hs_stream_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        abort();
    s->name = strdup(name);
    s->hash = hash_name(name);
    s->position = -1;
    s->target = -1;
    h2o_linklist_init_anchor(&s->live);
    h2o_linklist_init_anchor(&s->others);
    size_t i = s->hash & (reg.nbuckets - 1);
    s->next = reg.buckets[i];
    reg.buckets[i] = s;
    reg.count++;
    return s;
}

static void stream_free(hs_stream_t *s)
{
    hs_stream_t **p = &reg.buckets[s->hash & (reg.nbuckets - 1)];
    while (*p != s)
        p = &(*p)->next;
    *p = s->next;
    reg.count--;
    if (s->query != NULL)
        hs_pg_query_cancel(s->query);
    hs_timer_stop(&s->retry);
    free(s->name);
    free(s);
}

static void maybe_free(hs_stream_t *s)
{
    if (s->nsubs == 0 && s->delivering == 0)
        stream_free(s);
}

/* ---------------- delivery ---------------- */

/* deliver gives msg to sub unless sub already has it. A reset moves sub's position to the
 * reset's seq, whatever it was. */
static void deliver(hs_subscriber_t *sub, hs_stream_msg_t *msg, int is_reset)
{
    if (is_reset) {
        sub->_pos = msg->seq;
    } else if (msg->seq > 0) {
        if (msg->seq <= sub->_pos)
            return;
        if (msg->seq != sub->_pos + 1)
            hs_warn(MODULE, "stream %s: hole before seq %" PRId64 " (subscriber at %" PRId64 ")",
                    sub->_stream ? sub->_stream->name : "?", msg->seq, sub->_pos);
        sub->_pos = msg->seq;
    }
    sub->on_message(sub, msg);
}

static void fan_out(hs_stream_t *s, h2o_linklist_t *list, hs_stream_msg_t *msg, int is_reset)
{
    s->delivering++;
    h2o_linklist_t *node = list->next;
    while (node != list) {
        h2o_linklist_t *next = node->next;
        hs_subscriber_t *sub = H2O_STRUCT_FROM_MEMBER(hs_subscriber_t, _link, node);
        deliver(sub, msg, is_reset);
        node = next;
    }
    s->delivering--;
}

static void free_msg(hs_stream_msg_t *msg)
{
    hs_strbuf_free(&msg->frame);
}

char *hs_user_stream(h2o_mem_pool_t *pool, const char *user)
{
    return h2o_concat(pool, h2o_iovec_init(H2O_STRLIT("user:")), h2o_iovec_init(user, strlen(user))).base;
}

/* ---------------- the stream's own outbox reads ---------------- */

/* row_msg: row i of a herald.replay() result (seq, kind, data) as a message; returns whether it is
 * the leading 'reset' row. The strings point into res. */
static int row_msg(PGresult *res, int i, uint64_t batch, hs_stream_msg_t *msg)
{
    *msg = (hs_stream_msg_t){0};
    msg->batch = batch;
    msg->seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    msg->kind = PQgetvalue(res, i, 1);
    msg->data = PQgetvalue(res, i, 2);
    msg->len = (size_t)PQgetlength(res, i, 2);
    return i == 0 && strcmp(msg->kind, "reset") == 0;
}

static void stream_fetch(hs_stream_t *s);

static void on_stream_retry(hs_timer_t *t)
{
    hs_stream_t *s = H2O_STRUCT_FROM_MEMBER(hs_stream_t, retry, t);
    stream_fetch(s);
}

static void on_stream_rows(void *data, PGresult *res, const char *error)
{
    hs_stream_t *s = data;
    s->query = NULL;
    s->fetching = 0;
    if (!hs_pg_result_ok(res)) {
        hs_warn(MODULE, "stream %s: outbox read failed: %s; retrying", s->name,
                hs_pg_error_message(res, error));
        /* the retry must read again even when no doorbell announced a target (a catch-up after
         * a LISTEN reconnect): without this, a failed catch-up was never retried, and what was
         * committed before the new LISTEN reached nobody until the stream's next message */
        s->need_fetch = 1;
        hs_timer_start(the_loop(), &s->retry, RETRY_MS, on_stream_retry);
        return;
    }
    int n = PQntuples(res);
    int64_t before = s->position;
    uint64_t batch = ++reg.batch;
    s->delivering++;
    for (int i = 0; i < n && s->nsubs > 0; i++) {
        hs_stream_msg_t msg;
        int is_reset = row_msg(res, i, batch, &msg);
        if (is_reset) {
            HS_METRIC_INC(sse_resets_total);
            hs_warn(MODULE, "stream %s: outbox cannot continue after %" PRId64 "; reset to %" PRId64 " (%s)", s->name,
                    s->position, msg.seq, msg.data);
        } else if (msg.seq <= s->position) {
            continue;
        }
        s->position = msg.seq;
        fan_out(s, &s->live, &msg, is_reset);
        free_msg(&msg);
    }
    s->delivering--;
    if (s->nsubs == 0) {
        maybe_free(s);
        return;
    }
    if (n >= REPLAY_LIMIT && s->position != before) {
        stream_fetch(s); /* more to read */
    } else if (s->target > s->position) {
        if (s->fetch_target >= s->target && s->position == before) {
            /* the read was sent after the doorbell and still did not see it: give up on it */
            hs_warn(MODULE, "stream %s: announced seq %" PRId64 " not in the outbox (at %" PRId64 ")", s->name, s->target,
                    s->position);
            s->target = s->position;
        } else {
            stream_fetch(s);
        }
    }
}

static void stream_fetch(hs_stream_t *s)
{
    if (s->fetching || s->position < 0 || hs_timer_is_active(&s->retry))
        return;
    if (!s->need_fetch && s->target <= s->position)
        return;
    s->need_fetch = 0;
    s->fetching = 1;
    s->fetch_target = s->target;
    char pos[24];
    snprintf(pos, sizeof(pos), "%" PRId64, s->position);
    const char *values[3] = {s->name, pos, REPLAY_LIMIT_STR};
    HS_METRIC_INC(sse_replays_total);
    /* NULL when PostgreSQL is unavailable: the callback has already run (and armed a retry) */
    s->query = hs_pg_query(REPLAY_SQL, 3, values, on_stream_rows, s);
}

/* ---------------- subscribers ---------------- */

static void sub_step(hs_subscriber_t *sub);

static void go_live(hs_subscriber_t *sub)
{
    h2o_linklist_unlink(&sub->_link);
    h2o_linklist_insert(&sub->_stream->live, &sub->_link);
    sub->_state = HS_SUB_LIVE;
}

static void on_sub_retry(hs_timer_t *t)
{
    hs_subscriber_t *sub = H2O_STRUCT_FROM_MEMBER(hs_subscriber_t, _retry, t);
    sub_step(sub);
}

static void on_sub_rows(void *data, PGresult *res, const char *error)
{
    hs_subscriber_t *sub = data;
    hs_stream_t *s = sub->_stream;
    sub->_query = NULL;
    if (!hs_pg_result_ok(res)) {
        hs_warn(MODULE, "stream %s: replay failed: %s; retrying", s->name,
                hs_pg_error_message(res, error));
        hs_timer_start(the_loop(), &sub->_retry, RETRY_MS, on_sub_retry);
        return;
    }
    int n = PQntuples(res);
    int64_t before = sub->_pos;
    int progressed = 0;
    uint64_t batch = ++reg.batch;
    sub->_must_replay = 0;
    s->delivering++;
    for (int i = 0; i < n && sub->_stream != NULL; i++) {
        hs_stream_msg_t msg;
        int is_reset = row_msg(res, i, batch, &msg);
        if (!is_reset && s->position >= 0 && msg.seq > s->position)
            break; /* the stream itself will deliver these */
        if (is_reset) {
            HS_METRIC_INC(sse_resets_total);
            hs_info(MODULE, "stream %s: replay after %" PRId64 " impossible, reset to %" PRId64 " (%s)", s->name, sub->_pos,
                    msg.seq, msg.data);
        }
        deliver(sub, &msg, is_reset);
        free_msg(&msg);
        progressed = 1;
    }
    s->delivering--;
    if (sub->_stream == NULL) { /* detached while delivering */
        maybe_free(s);
        return;
    }
    if (n >= REPLAY_LIMIT && progressed && sub->_pos != before && (s->position < 0 || sub->_pos < s->position)) {
        sub->_must_replay = 1; /* more to read */
        sub_step(sub);
        return;
    }
    if (s->position >= 0 && sub->_pos < s->position && !progressed) {
        /* the stream is ahead of what the outbox showed us: try again shortly */
        hs_timer_start(the_loop(), &sub->_retry, 100, on_sub_retry);
        return;
    }
    sub_step(sub);
}

static void sub_replay(hs_subscriber_t *sub)
{
    hs_stream_t *s = sub->_stream;
    sub->_state = HS_SUB_CATCHING_UP;
    char pos[24];
    snprintf(pos, sizeof(pos), "%" PRId64, sub->_pos);
    const char *values[3] = {s->name, pos, REPLAY_LIMIT_STR};
    HS_METRIC_INC(sse_replays_total);
    /* NULL when PostgreSQL is unavailable: the callback has already run (and armed a retry) */
    sub->_query = hs_pg_query(REPLAY_SQL, 3, values, on_sub_rows, sub);
}

static void sub_step(hs_subscriber_t *sub)
{
    hs_stream_t *s = sub->_stream;
    if (s == NULL)
        return;
    if (!sub->_must_replay) {
        if (s->position < 0) {
            s->position = sub->_pos;
            go_live(sub);
            stream_fetch(s);
            return;
        }
        if (sub->_pos >= s->position) {
            go_live(sub);
            if (sub->_pos > s->target)
                s->target = sub->_pos;
            stream_fetch(s);
            return;
        }
    }
    sub_replay(sub);
}

void hs_subscriber_attach(hs_subscriber_t *sub, const char *name)
{
    hs_stream_t *s = lookup(name);
    if (s == NULL)
        s = stream_create(name);
    sub->_stream = s;
    sub->_state = HS_SUB_WAITING;
    sub->_pos = -1;
    sub->_must_replay = 0;
    sub->_query = NULL;
    h2o_linklist_insert(&s->others, &sub->_link);
    s->nsubs++;
    reg.nsubs++;
}

void hs_subscriber_start(hs_subscriber_t *sub, int64_t position, int replay_first)
{
    if (sub->_stream == NULL)
        return;
    sub->_pos = position < 0 ? 0 : position;
    sub->_must_replay = replay_first;
    sub_step(sub);
}

void hs_subscriber_detach(hs_subscriber_t *sub)
{
    hs_stream_t *s = sub->_stream;
    if (s == NULL)
        return;
    if (sub->_query != NULL) {
        hs_pg_query_cancel(sub->_query);
        sub->_query = NULL;
    }
    hs_timer_stop(&sub->_retry);
    h2o_linklist_unlink(&sub->_link);
    sub->_stream = NULL;
    sub->_state = HS_SUB_IDLE;
    s->nsubs--;
    reg.nsubs--;
    maybe_free(s);
}

int64_t hs_subscriber_position(hs_subscriber_t *sub)
{
    return sub->_pos;
}

/* ---------------- notifications ---------------- */

void hs_streams_doorbell(const char *name, int64_t seq, const char *kind, const char *data, size_t len)
{
    hs_stream_t *s = lookup(name);
    if (s == NULL)
        return;
    if (seq > s->target)
        s->target = seq;
    if (s->position < 0 || seq <= s->position)
        return;
    if (data != NULL && seq == s->position + 1 && !s->fetching && !hs_timer_is_active(&s->retry)) {
        hs_stream_msg_t msg = {0};
        msg.batch = ++reg.batch;
        msg.seq = seq;
        msg.kind = kind ? kind : "message";
        msg.data = data;
        msg.len = len;
        s->position = seq;
        fan_out(s, &s->live, &msg, 0);
        free_msg(&msg);
        maybe_free(s);
        return;
    }
    stream_fetch(s);
}

void hs_streams_direct(const char *name, const char *kind, const char *data, size_t len)
{
    hs_stream_t *s = lookup(name);
    if (s == NULL)
        return;
    hs_stream_msg_t msg = {0};
    msg.batch = ++reg.batch;
    msg.seq = 0;
    msg.kind = kind ? kind : "message";
    msg.data = data;
    msg.len = len;
    fan_out(s, &s->live, &msg, 0);
    fan_out(s, &s->others, &msg, 0);
    free_msg(&msg);
    maybe_free(s);
}

void hs_streams_catch_up_all(void)
{
    for (size_t i = 0; i < reg.nbuckets; i++)
        for (hs_stream_t *s = reg.buckets[i]; s != NULL; s = s->next) {
            s->need_fetch = 1;
            hs_timer_stop(&s->retry);
            stream_fetch(s);
        }
}

size_t hs_streams_count(void)
{
    return reg.count;
}

size_t hs_streams_subscribers(void)
{
    return reg.nsubs;
}

void hs_streams_init(h2o_loop_t *loop)
{
    reg.loop = loop;
}

void hs_streams_shutdown(void)
{
    for (size_t i = 0; i < reg.nbuckets; i++) {
        hs_stream_t *s = reg.buckets[i];
        while (s != NULL) {
            hs_stream_t *next = s->next;
            s->delivering++; /* keep s while its subscribers go */
            while (!h2o_linklist_is_empty(&s->live))
                hs_subscriber_detach(H2O_STRUCT_FROM_MEMBER(hs_subscriber_t, _link, s->live.next));
            while (!h2o_linklist_is_empty(&s->others))
                hs_subscriber_detach(H2O_STRUCT_FROM_MEMBER(hs_subscriber_t, _link, s->others.next));
            s->delivering--;
            stream_free(s);
            s = next;
        }
    }
    free(reg.buckets);
    reg.buckets = NULL;
    reg.nbuckets = 0;
}
