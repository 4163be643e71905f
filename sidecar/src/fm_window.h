/*
 * fm_window.h — the follower-maze reorder window: a ring of slots indexed by sequence number.
 *
 * Events arrive out of order; the window holds them until every lower sequence number has
 * been delivered. Slot i holds sequence number s with s % cap == i, for s in [next, next+cap):
 * insertion, lookup and delivery are O(1) and nothing is allocated per event (lines of up to
 * HS_FM_INLINE bytes live inside the slot; longer ones, which the generated test streams never
 * have, get one malloc).
 *
 * Memory is bounded: the ring starts small and doubles only when an event arrives further
 * ahead than it can hold, up to max_cap slots (the largest power of two <= the configured
 * window, HERALD_FM_WINDOW), i.e. at most max_cap * 64 bytes however long the stream is.
 * An event at or beyond next + max_cap does not fit: the caller then gives up on the oldest
 * holes with hs_fm_window_advance (delivering what it holds below the new start, in order,
 * and counting the missing numbers as skipped) and inserts again.
 *
 * Single-threaded; owned by the sequencer's loop.
 */
#ifndef HS_FM_WINDOW_H
#define HS_FM_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#define HS_FM_INLINE 44

typedef struct st_hs_fm_slot_t {
    uint64_t seq;  /* 0: empty */
    uint32_t from; /* the caller's user indexes (meaning depends on type) */
    uint32_t to;
    char type; /* 'F', 'U', 'B', 'P', 'S' */
    uint8_t _pad;
    uint16_t len;             /* bytes of the line, terminator included */
    char _line[HS_FM_INLINE]; /* the line if len <= HS_FM_INLINE, else a malloc'd pointer to it */
} hs_fm_slot_t;

typedef struct st_hs_fm_window_t {
    hs_fm_slot_t *slots;
    size_t cap;        /* power of two */
    size_t max_cap;    /* power of two */
    uint64_t next;     /* next sequence number to deliver */
    size_t held;       /* events in the window */
    uint64_t max_seen; /* highest sequence number held since the last reset (0: none) */
} hs_fm_window_t;

typedef enum en_hs_fm_put_result_t {
    HS_FM_PUT_OK = 0,
    HS_FM_PUT_DUPLICATE, /* below next, or that number is already held: dropped */
    HS_FM_PUT_TOO_FAR,   /* seq >= next + max_cap: advance the window first */
} hs_fm_put_result_t;

/* Delivery callback: the slot is valid only during the call. */
typedef void (*hs_fm_deliver_cb)(void *ctx, const hs_fm_slot_t *slot);

/* hs_fm_window_init prepares an empty window expecting seq 1 that can grow to max_events slots
 * (rounded down to a power of two, at least 16). */
void hs_fm_window_init(hs_fm_window_t *w, size_t max_events);
void hs_fm_window_dispose(hs_fm_window_t *w);
/* hs_fm_window_reset drops everything held, shrinks the ring back to its initial size and
 * expects seq 1 again (a fresh stream). */
void hs_fm_window_reset(hs_fm_window_t *w);

/* hs_fm_window_put stores a copy of the line (len bytes, 1..65535) under seq. */
hs_fm_put_result_t hs_fm_window_put(hs_fm_window_t *w, uint64_t seq, char type, uint32_t from, uint32_t to, const char *line,
                                    size_t len);

static inline const char *hs_fm_slot_line(const hs_fm_slot_t *slot)
{
    if (slot->len <= HS_FM_INLINE)
        return slot->_line;
    const char *p;
    __builtin_memcpy(&p, slot->_line, sizeof(p));
    return p;
}

/* hs_fm_window_drain delivers next, next+1, ... while they are held; returns how many. */
size_t hs_fm_window_drain(hs_fm_window_t *w, hs_fm_deliver_cb cb, void *ctx);

/* hs_fm_window_blocked: events are held but next is missing. */
static inline int hs_fm_window_blocked(const hs_fm_window_t *w)
{
    return w->held != 0 && w->slots[w->next & (w->cap - 1)].seq != w->next;
}

/* hs_fm_window_first_held returns the lowest held sequence number, 0 when empty. */
uint64_t hs_fm_window_first_held(const hs_fm_window_t *w);

/* hs_fm_window_skip_hole gives up on the missing numbers before the lowest held event and
 * delivers from there (like drain). Returns the count of numbers skipped; *delivered (if not
 * NULL) gets the count delivered. Nothing happens when the window is empty or not blocked. */
uint64_t hs_fm_window_skip_hole(hs_fm_window_t *w, hs_fm_deliver_cb cb, void *ctx, size_t *delivered);

/* hs_fm_window_advance moves next up to target (if it is higher): held events below target are
 * delivered in order, the missing numbers below target are skipped (returned as a count).
 * Then it drains from target. Used when an event is too far ahead, and with target =
 * max_seen + 1 to deliver everything that can be delivered when the stream ends. */
uint64_t hs_fm_window_advance(hs_fm_window_t *w, uint64_t target, hs_fm_deliver_cb cb, void *ctx, size_t *delivered);

#endif
