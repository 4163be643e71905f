/*
 * test_fm_window.c — unit test of fm_window.c, the follower-maze reorder ring: in-order and
 * shuffled delivery, duplicates (below next and already held), growth on demand and its cap,
 * an event beyond the window (advance: held events delivered, holes counted), the skip of a
 * hole, end-of-stream delivery, reset, long lines kept outside the slot (freed: LeakSanitizer
 * checks), and a randomized run of a million events in shuffled batches with drops and
 * duplicates checked against a simple model.
 * Exit status: 0 when every check passed; each failure is printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fm_window.h"

#include "unit.h"

/* The delivery log: every delivered seq, and a check that the line matches it. */
static uint64_t *delivered;
static size_t ndelivered, delivered_cap;
static int bad_lines;

static size_t make_line(char *buf, uint64_t seq, size_t pad)
{
    int n = sprintf(buf, "%llu|B", (unsigned long long)seq);
    memset(buf + n, 'x', pad);
    n += (int)pad;
    buf[n++] = '\n';
    return (size_t)n;
}

static void on_deliver(void *ctx, const hs_fm_slot_t *slot)
{
    char head[32];
    size_t h = (size_t)sprintf(head, "%llu|B", (unsigned long long)slot->seq);
    const char *l = hs_fm_slot_line(slot);
    int ok = slot->len >= h + 1 && memcmp(l, head, h) == 0 && l[slot->len - 1] == '\n' && slot->type == 'B' &&
             slot->from == (uint32_t)slot->seq;
    for (size_t i = h; ok && i + 1 < slot->len; i++)
        ok = l[i] == 'x';
    if (!ok)
        bad_lines++;
    if (ndelivered == delivered_cap) {
        delivered_cap = delivered_cap ? delivered_cap * 2 : 1024;
        delivered = realloc(delivered, delivered_cap * sizeof(*delivered));
    }
    delivered[ndelivered++] = slot->seq;
}

static hs_fm_put_result_t put(hs_fm_window_t *w, uint64_t seq, size_t pad)
{
    char line[4096];
    size_t n = make_line(line, seq, pad);
    return hs_fm_window_put(w, seq, 'B', (uint32_t)seq, 0, line, n);
}

static int delivered_is(const uint64_t *want, size_t n)
{
    if (ndelivered != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (delivered[i] != want[i])
            return 0;
    return 1;
}

static void test_in_order_and_shuffled(void)
{
    hs_fm_window_t w;
    hs_fm_window_init(&w, 1 << 20);
    ndelivered = 0;
    for (uint64_t s = 1; s <= 100; s++) {
        CHECK(put(&w, s, 0) == HS_FM_PUT_OK, "put %llu", (unsigned long long)s);
        hs_fm_window_drain(&w, on_deliver, NULL);
    }
    CHECK(ndelivered == 100 && w.next == 101 && w.held == 0, "in order: %zu delivered, next %llu", ndelivered,
          (unsigned long long)w.next);

    /* 105 104 103 102 101: nothing until 101, then all five */
    ndelivered = 0;
    for (uint64_t s = 105; s >= 102; s--)
        put(&w, s, 0);
    CHECK(hs_fm_window_blocked(&w), "blocked on 101");
    CHECK(hs_fm_window_drain(&w, on_deliver, NULL) == 0, "nothing to drain before 101");
    CHECK(hs_fm_window_first_held(&w) == 102, "first held 102");
    put(&w, 101, 0);
    CHECK(hs_fm_window_drain(&w, on_deliver, NULL) == 5, "five drained");
    uint64_t want[] = {101, 102, 103, 104, 105};
    CHECK(delivered_is(want, 5), "101..105 in order");
    CHECK(!hs_fm_window_blocked(&w) && w.held == 0, "empty");
    hs_fm_window_dispose(&w);
}

static void test_duplicates(void)
{
    hs_fm_window_t w;
    hs_fm_window_init(&w, 1024);
    ndelivered = 0;
    put(&w, 1, 0);
    hs_fm_window_drain(&w, on_deliver, NULL);
    CHECK(put(&w, 1, 0) == HS_FM_PUT_DUPLICATE, "1 again is below next");
    CHECK(put(&w, 5, 0) == HS_FM_PUT_OK, "5 held");
    CHECK(put(&w, 5, 0) == HS_FM_PUT_DUPLICATE, "5 again is already held");
    CHECK(w.held == 1, "one held");
    hs_fm_window_dispose(&w);
}

static void test_growth_and_cap(void)
{
    hs_fm_window_t w;
    hs_fm_window_init(&w, 100000); /* max_cap: 65536 */
    CHECK(w.max_cap == 65536, "max_cap %zu", w.max_cap);
    CHECK(w.cap == 1024, "starts at 1024 slots, not %zu", w.cap);
    ndelivered = 0;
    put(&w, 3, 0);
    put(&w, 5000, 60); /* a long line */
    CHECK(w.cap == 8192, "grew to 8192, not %zu", w.cap);
    CHECK(hs_fm_window_first_held(&w) == 3, "held events survive growth");
    CHECK(put(&w, 65536, 0) == HS_FM_PUT_OK, "65536 fits (next 1 + 65535)");
    CHECK(w.cap == 65536, "grew to the cap");
    CHECK(put(&w, 65537, 0) == HS_FM_PUT_TOO_FAR, "65537 is beyond the window");
    /* advance so that 65537 fits: target 2; 1 skipped */
    uint64_t skipped = hs_fm_window_advance(&w, 65537 - w.max_cap + 1, on_deliver, NULL, NULL);
    CHECK(skipped == 1 && w.next == 2, "skipped %llu, next %llu", (unsigned long long)skipped, (unsigned long long)w.next);
    CHECK(put(&w, 65537, 0) == HS_FM_PUT_OK, "65537 fits now");
    /* a far jump: everything held is delivered in order, the holes counted */
    ndelivered = 0;
    size_t n = 0;
    skipped = hs_fm_window_advance(&w, 1000000, on_deliver, NULL, &n);
    uint64_t want[] = {3, 5000, 65536, 65537};
    CHECK(delivered_is(want, 4) && n == 4, "held events delivered in order on advance (%zu)", ndelivered);
    CHECK(skipped == 1000000 - 2 - 4, "skipped %llu", (unsigned long long)skipped);
    CHECK(w.next == 1000000 && w.held == 0, "next %llu", (unsigned long long)w.next);
    CHECK(bad_lines == 0, "lines intact (%d bad)", bad_lines);
    hs_fm_window_dispose(&w);
}

static void test_skip_hole_and_end(void)
{
    hs_fm_window_t w;
    hs_fm_window_init(&w, 1024);
    ndelivered = 0;
    put(&w, 3, 0);
    put(&w, 4, 0);
    put(&w, 6, 0);
    put(&w, 9, 100);
    size_t n = 0;
    CHECK(hs_fm_window_skip_hole(&w, on_deliver, NULL, &n) == 2 && n == 2, "skip 1-2, deliver 3-4");
    CHECK(w.next == 5, "next 5");
    CHECK(hs_fm_window_skip_hole(&w, on_deliver, NULL, &n) == 1 && n == 1, "skip 5, deliver 6");
    /* end of stream: deliver what is held */
    uint64_t skipped = hs_fm_window_advance(&w, w.max_seen + 1, on_deliver, NULL, &n);
    CHECK(skipped == 2 && n == 1 && w.next == 10, "end: skipped 7-8, delivered 9");
    uint64_t want[] = {3, 4, 6, 9};
    CHECK(delivered_is(want, 4), "3 4 6 9");
    CHECK(hs_fm_window_skip_hole(&w, on_deliver, NULL, &n) == 0 && n == 0, "empty window: nothing to skip");
    /* reset drops held events (including a long line) and starts at 1 again */
    put(&w, 20, 200);
    put(&w, 12, 0);
    hs_fm_window_reset(&w);
    CHECK(w.next == 1 && w.held == 0 && w.max_seen == 0, "reset");
    hs_fm_window_t w2;
    hs_fm_window_init(&w2, 1 << 16);
    put(&w2, 900, 0);
    put(&w2, 5000, 100);
    CHECK(w2.cap == 8192, "grown");
    hs_fm_window_reset(&w2);
    CHECK(w2.cap == 1024 && w2.held == 0, "a reset shrinks the ring back (cap %zu)", w2.cap);
    hs_fm_window_dispose(&w2);
    CHECK(put(&w, 1, 0) == HS_FM_PUT_OK, "1 accepted after reset");
    CHECK(bad_lines == 0, "lines intact");
    hs_fm_window_dispose(&w);
}

/* A million events in shuffled batches of up to 1000, some dropped and some duplicated,
 * with a skip whenever the window is blocked for a while (as the timer would). Model: the
 * delivered sequence is increasing, contains every sent seq exactly once, nothing else. */
static void test_random(void)
{
    const uint64_t total = 1000000;
    uint64_t rng = 42;
#define RND() (rng = rng * 6364136223846793005ull + 1442695040888963407ull, rng >> 33)
    unsigned char *sent = calloc(total + 1, 1);
    uint64_t *batch = malloc(1000 * sizeof(*batch));
    hs_fm_window_t w;
    hs_fm_window_init(&w, 4096);
    ndelivered = 0;
    uint64_t skipped = 0, dups = 0, next = 1, nsent = 0;
    while (next <= total) {
        uint64_t n = 1 + RND() % 1000;
        if (n > total - next + 1)
            n = total - next + 1;
        for (uint64_t i = 0; i < n; i++)
            batch[i] = next + i;
        for (uint64_t i = n - 1; i > 0; i--) {
            uint64_t j = RND() % (i + 1), t = batch[i];
            batch[i] = batch[j];
            batch[j] = t;
        }
        for (uint64_t i = 0; i < n; i++) {
            if (RND() % 5000 == 0)
                continue; /* lost */
            hs_fm_put_result_t r = put(&w, batch[i], RND() % 300 == 0 ? 50 : 0);
            if (r == HS_FM_PUT_TOO_FAR) {
                skipped += hs_fm_window_advance(&w, batch[i] - w.max_cap + 1, on_deliver, NULL, NULL);
                r = put(&w, batch[i], 0);
            }
            if (r == HS_FM_PUT_OK) {
                sent[batch[i]] = 1;
                nsent++;
            }
            if (RND() % 1000 == 0)
                dups += put(&w, batch[i], 0) == HS_FM_PUT_DUPLICATE;
            hs_fm_window_drain(&w, on_deliver, NULL);
        }
        if (RND() % 3 == 0)
            skipped += hs_fm_window_skip_hole(&w, on_deliver, NULL, NULL);
        next += n;
    }
    skipped += hs_fm_window_advance(&w, w.max_seen + 1, on_deliver, NULL, NULL);
    int increasing = 1, all_sent = 1;
    for (size_t i = 0; i < ndelivered; i++) {
        if (i > 0 && delivered[i] <= delivered[i - 1])
            increasing = 0;
        if (!sent[delivered[i]])
            all_sent = 0;
        sent[delivered[i]] = 2;
    }
    uint64_t lost_sent = 0;
    for (uint64_t s = 1; s <= total; s++)
        lost_sent += sent[s] == 1;
    CHECK(increasing, "delivery order is increasing");
    CHECK(all_sent, "only sent events are delivered");
    /* an event is never delivered only if it arrived after its number had been skipped
     * (it was then refused as a duplicate, so sent[] was not set) */
    CHECK(lost_sent == 0, "%llu accepted events never delivered", (unsigned long long)lost_sent);
    CHECK(ndelivered == nsent, "delivered %zu, accepted %llu", ndelivered, (unsigned long long)nsent);
    CHECK(skipped + ndelivered == w.next - 1, "every number delivered or skipped: %llu + %zu vs %llu", (unsigned long long)skipped,
          ndelivered, (unsigned long long)(w.next - 1));
    CHECK(dups > 0, "duplicates were exercised");
    CHECK(w.cap <= 4096, "never above the cap");
    CHECK(bad_lines == 0, "lines intact (%d bad)", bad_lines);
    hs_fm_window_dispose(&w);
    free(sent);
    free(batch);
}

int main(void)
{
    CHECK(sizeof(hs_fm_slot_t) == 64, "a slot is one cache line, not %zu bytes", sizeof(hs_fm_slot_t));
    test_in_order_and_shuffled();
    test_duplicates();
    test_growth_and_cap();
    test_skip_hole_and_end();
    test_random();
    free(delivered);
    printf("test_fm_window: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
