/*
 * fm_window.c — the follower-maze reorder ring; see fm_window.h for the model and bounds.
 */
#include "fm_window.h"

#include <stdlib.h>
#include <string.h>

#define INITIAL_CAP 1024

static hs_fm_slot_t *alloc_slots(size_t cap)
{
    hs_fm_slot_t *s = calloc(cap, sizeof(*s));
    if (s == NULL)
        abort();
    return s;
}

static void free_line(hs_fm_slot_t *slot)
{
    if (slot->len > HS_FM_INLINE) {
        char *p;
        memcpy(&p, slot->_line, sizeof(p));
        free(p);
    }
}

void hs_fm_window_init(hs_fm_window_t *w, size_t max_events)
{
    size_t max_cap = 16;
    while (max_cap * 2 <= max_events && max_cap < ((size_t)1 << 40))
        max_cap *= 2;
    w->max_cap = max_cap;
    w->cap = INITIAL_CAP < max_cap ? INITIAL_CAP : max_cap;
    w->slots = alloc_slots(w->cap);
    w->next = 1;
    w->held = 0;
    w->max_seen = 0;
}

void hs_fm_window_dispose(hs_fm_window_t *w)
{
    if (w->held != 0) {
        for (size_t i = 0; i < w->cap; i++)
            if (w->slots[i].seq != 0)
                free_line(&w->slots[i]);
    }
    free(w->slots);
    w->slots = NULL;
}

void hs_fm_window_reset(hs_fm_window_t *w)
{
    if (w->held != 0) {
        for (size_t i = 0; i < w->cap; i++) {
            if (w->slots[i].seq != 0) {
                free_line(&w->slots[i]);
                w->slots[i].seq = 0;
            }
        }
    }
    w->next = 1;
    w->held = 0;
    w->max_seen = 0;
    /* A stream that needed a large ring (a lost number on a fast stream) does not keep it. */
    size_t initial = INITIAL_CAP < w->max_cap ? INITIAL_CAP : w->max_cap;
    if (w->slots != NULL && w->cap > initial) {
        free(w->slots);
        w->slots = alloc_slots(initial);
        w->cap = initial;
    }
}

/* grow re-homes the held events into a ring of new_cap slots. */
static void grow(hs_fm_window_t *w, size_t new_cap)
{
    hs_fm_slot_t *slots = alloc_slots(new_cap);
    if (w->held != 0) {
        for (size_t i = 0; i < w->cap; i++)
            if (w->slots[i].seq != 0)
                slots[w->slots[i].seq & (new_cap - 1)] = w->slots[i];
    }
    free(w->slots);
    w->slots = slots;
    w->cap = new_cap;
}

hs_fm_put_result_t hs_fm_window_put(hs_fm_window_t *w, uint64_t seq, char type, uint32_t from, uint32_t to, const char *line,
                                    size_t len)
{
    if (seq < w->next)
        return HS_FM_PUT_DUPLICATE;
    uint64_t ahead = seq - w->next;
    if (ahead >= w->max_cap)
        return HS_FM_PUT_TOO_FAR;
    if (ahead >= w->cap) {
        size_t new_cap = w->cap;
        while (ahead >= new_cap)
            new_cap *= 2;
        grow(w, new_cap);
    }
    hs_fm_slot_t *slot = &w->slots[seq & (w->cap - 1)];
    if (slot->seq == seq)
        return HS_FM_PUT_DUPLICATE;
    slot->seq = seq;
    slot->from = from;
    slot->to = to;
    slot->type = type;
    slot->len = (uint16_t)len;
    if (len <= HS_FM_INLINE) {
        memcpy(slot->_line, line, len);
    } else {
        char *p = malloc(len);
        if (p == NULL)
            abort();
        memcpy(p, line, len);
        memcpy(slot->_line, &p, sizeof(p));
    }
    w->held++;
    if (seq > w->max_seen)
        w->max_seen = seq;
    return HS_FM_PUT_OK;
}

/* deliver_next hands the slot of next to cb and empties it. */
static inline void deliver_next(hs_fm_window_t *w, hs_fm_slot_t *slot, hs_fm_deliver_cb cb, void *ctx)
{
    cb(ctx, slot);
    free_line(slot);
    slot->seq = 0;
    w->held--;
    w->next++;
}

size_t hs_fm_window_drain(hs_fm_window_t *w, hs_fm_deliver_cb cb, void *ctx)
{
    size_t n = 0;
    while (w->held != 0) {
        hs_fm_slot_t *slot = &w->slots[w->next & (w->cap - 1)];
        if (slot->seq != w->next)
            break;
        deliver_next(w, slot, cb, ctx);
        n++;
    }
    return n;
}

uint64_t hs_fm_window_first_held(const hs_fm_window_t *w)
{
    if (w->held == 0)
        return 0;
    for (size_t i = 0; i < w->cap; i++) {
        uint64_t s = w->next + i;
        if (w->slots[s & (w->cap - 1)].seq == s)
            return s;
    }
    return 0; /* not reached: held events are all in [next, next + cap) */
}

uint64_t hs_fm_window_skip_hole(hs_fm_window_t *w, hs_fm_deliver_cb cb, void *ctx, size_t *delivered)
{
    uint64_t skipped = 0;
    size_t n = 0;
    if (hs_fm_window_blocked(w)) {
        uint64_t first = hs_fm_window_first_held(w);
        skipped = first - w->next;
        w->next = first;
        n = hs_fm_window_drain(w, cb, ctx);
    }
    if (delivered != NULL)
        *delivered = n;
    return skipped;
}

uint64_t hs_fm_window_advance(hs_fm_window_t *w, uint64_t target, hs_fm_deliver_cb cb, void *ctx, size_t *delivered)
{
    uint64_t skipped = 0;
    size_t n = 0;
    while (w->next < target) {
        if (w->held == 0) {
            skipped += target - w->next;
            w->next = target;
            break;
        }
        hs_fm_slot_t *slot = &w->slots[w->next & (w->cap - 1)];
        if (slot->seq == w->next) {
            deliver_next(w, slot, cb, ctx);
            n++;
            continue;
        }
        uint64_t first = hs_fm_window_first_held(w);
        if (first >= target) {
            skipped += target - w->next;
            w->next = target;
            break;
        }
        skipped += first - w->next;
        w->next = first;
    }
    n += hs_fm_window_drain(w, cb, ctx);
    if (delivered != NULL)
        *delivered = n;
    return skipped;
}
